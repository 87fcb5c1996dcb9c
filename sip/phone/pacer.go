package phone

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/zaf/g711"
)

// pacerSlots spread the calls of one Pacer over the 20 ms frame: a call
// sends in one slot, so the far end gets a steady stream rather than every
// call's packet at the same instant.
const pacerSlots = 10

// Pacer sends the RTP of many calls from a few goroutines on one clock,
// one per CPU (a lane): every 2 ms a lane sends the next frame of its calls
// in that slot, with a non-blocking send (a full socket buffer drops the
// packet, as the network would). A load generator with hundreds of calls
// then costs a few timers instead of hundreds, and the far end's pacing is
// measured, not the load generator's scheduling. Calls join with
// CallOptions.Pacer.
type Pacer struct {
	lanes []*pacerLane
	mu    sync.Mutex
	next  int // calls added: spreads them over lanes and slots
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// pacerLane is one goroutine's share of a Pacer's calls.
type pacerLane struct {
	mu    sync.Mutex // held while a slot is sent: remove waits for it
	slots [pacerSlots][]*Call
}

// NewPacer starts a pacer; Close stops it.
func NewPacer() *Pacer {
	p := &Pacer{stop: make(chan struct{})}
	for range max(1, runtime.GOMAXPROCS(0)) {
		l := &pacerLane{}
		p.lanes = append(p.lanes, l)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			l.run(p.stop)
		}()
	}
	return p
}

// Close stops the pacer; calls still on it send nothing more.
func (p *Pacer) Close() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}

func (l *pacerLane) run(stop <-chan struct{}) {
	const step = frameDur / pacerSlots
	t := time.NewTimer(step)
	defer t.Stop()
	start := time.Now()
	for n := 1; ; n++ {
		// Frames late by a stall are sent at once, as a call's own
		// sendLoop does, so a call's RTP timestamps keep up with the clock.
		t.Reset(time.Until(start.Add(time.Duration(n) * step)))
		select {
		case <-stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		for _, c := range l.slots[n%pacerSlots] {
			c.sendPaced()
			if pacerPolls && c.paced.raw != nil {
				c.paced.pollRecv(c)
			}
		}
		l.mu.Unlock()
	}
}

// add puts c in the next lane and slot, unless its media has already
// been stopped (a BYE can stop a call while it is being set up).
func (p *Pacer) add(c *Call) {
	ps := newPacedSender(c)
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-c.stop:
		ps.closeRecv()
		return
	default:
	}
	i := p.next
	p.next++
	l := p.lanes[i%len(p.lanes)]
	ps.lane, ps.slot = l, (i/len(p.lanes))%pacerSlots
	l.mu.Lock()
	defer l.mu.Unlock()
	c.paced = ps
	l.slots[ps.slot] = append(l.slots[ps.slot], c)
}

// remove takes c off the pacer (its c.stop already closed, so add no
// longer puts it on); once it returns the pacer no longer touches c.
func (p *Pacer) remove(c *Call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := c.paced
	if ps == nil {
		return
	}
	l := ps.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.slots[ps.slot]
	for i, x := range *s {
		if x == c {
			(*s)[i] = (*s)[len(*s)-1]
			(*s)[len(*s)-1] = nil
			*s = (*s)[:len(*s)-1]
			break
		}
	}
	c.paced = nil
	ps.closeRecv()
}

// pacedSender is one call's RTP sending state, used by its pacer only.
type pacedSender struct {
	lane     *pacerLane
	slot     int
	ssrc     uint32
	seq      uint16
	ts       uint32
	first    bool
	speaking bool
	noise    int // next precomputed noise frame
	frame    [frameSamples]int16
	payload  [frameSamples]byte
	buf      [1500]byte
	out      []byte // the packet being sent
	to       syscall.Sockaddr
	send     func(fd uintptr) bool // sends out once, never waits
	raw      syscall.RawConn
	recv     recvPoller // pacerPolls: the call's receiving side
}

func newPacedSender(c *Call) *pacedSender {
	ps := &pacedSender{ssrc: rand.Uint32(), seq: uint16(rand.IntN(1 << 15)), ts: rand.Uint32(), first: true}
	raw, err := c.conn.SyscallConn()
	if err != nil {
		return ps // the socket is closed: nothing to send on
	}
	ps.raw = raw
	family := syscall.AF_INET
	_ = raw.Control(func(fd uintptr) {
		if sa, err := syscall.Getsockname(int(fd)); err == nil {
			if _, ok := sa.(*syscall.SockaddrInet6); ok {
				family = syscall.AF_INET6
			}
		}
	})
	if family == syscall.AF_INET && c.remote.Addr().Unmap().Is4() {
		ps.to = &syscall.SockaddrInet4{Port: int(c.remote.Port()), Addr: c.remote.Addr().Unmap().As4()}
	} else {
		ps.to = &syscall.SockaddrInet6{Port: int(c.remote.Port()), Addr: c.remote.Addr().As16()}
	}
	ps.send = func(fd uintptr) bool {
		_ = syscall.Sendto(int(fd), ps.out, syscall.MSG_DONTWAIT, ps.to)
		return true // never wait for the socket to drain
	}
	if pacerPolls {
		ps.initRecv(c)
	}
	return ps
}

// sendPaced sends c's next 20 ms frame (pacer goroutine only): queued
// speech, else low noise (precomputed for G.711).
func (c *Call) sendPaced() {
	ps := c.paced
	if ps.raw == nil {
		return
	}
	c.mu.Lock()
	got := copy(ps.frame[:], c.outQueue)
	c.outQueue = c.outQueue[got:]
	c.sentPackets++
	c.mu.Unlock()
	var payload []byte
	if got == 0 && (c.pt == 0 || c.pt == 8) {
		payload = noiseFrame(c.pt == 8, ps.noise)
		ps.noise++
	} else {
		for i := got; i < frameSamples; i++ {
			ps.frame[i] = int16(c.noiseLevel * (rand.Float64()*2 - 1))
		}
		payload = ps.payload[:frameSamples] // G.711 and G.722 alike: 160 bytes per 20 ms
		c.encode(payload, ps.frame[:])
	}
	marker := ps.first || (got > 0 && !ps.speaking)
	ps.speaking = got > 0
	ps.first = false
	b := ps.buf[:12+len(payload)]
	b[0] = 0x80
	b[1] = c.pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], ps.seq)
	binary.BigEndian.PutUint32(b[4:], ps.ts)
	binary.BigEndian.PutUint32(b[8:], ps.ssrc)
	copy(b[12:], payload)
	ps.seq++
	ps.ts += frameSamples
	ps.out = c.secure(b)
	if ps.out != nil {
		_ = ps.raw.Write(ps.send)
	}
}

// noiseFrames are G.711 frames of the phone's line noise (-70 dBov), made
// once: a paced call cycles through them instead of drawing and encoding
// 160 random samples every 20 ms.
var noiseFrames struct {
	once       sync.Once
	ulaw, alaw [50][frameSamples]byte
}

func noiseFrame(alaw bool, i int) []byte {
	noiseFrames.once.Do(func() {
		level := dbToAmp(-70)
		for f := range noiseFrames.ulaw {
			for j := range frameSamples {
				v := int16(level * (rand.Float64()*2 - 1))
				noiseFrames.ulaw[f][j] = g711.EncodeUlawFrame(v)
				noiseFrames.alaw[f][j] = g711.EncodeAlawFrame(v)
			}
		}
	})
	if alaw {
		return noiseFrames.alaw[i%len(noiseFrames.alaw)][:]
	}
	return noiseFrames.ulaw[i%len(noiseFrames.ulaw)][:]
}

// toneCache holds the samples of tones already spoken: a load run speaks
// the same second of tone thousands of times.
var toneCache sync.Map // toneKey → []int16 (never modified)

type toneKey struct {
	hz, dbov float64
	n        int
}

// toneSamples is n samples of a sine at hz with peak level dbov; the
// result is shared and must not be modified.
func toneSamples(hz float64, n int, dbov float64) []int16 {
	k := toneKey{hz, dbov, n}
	if s, ok := toneCache.Load(k); ok {
		return s.([]int16)
	}
	amp := dbToAmp(dbov)
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(amp * math.Sin(2*math.Pi*hz*float64(i)/sampleRate))
	}
	if n <= 10*sampleRate { // keep only short tones (a caller's turns)
		toneCache.Store(k, s)
	}
	return s
}

// toneTrack is where one tone was heard, kept as the audio arrives
// (CallOptions.TrackTones): closed spans of 20 ms blocks in which it
// dominated, and the one still open.
type toneTrack struct {
	hz        float64
	spans     []Span // unmerged, closed
	open      bool
	openStart int
}

// heardSamples is how many samples have been received (mu held).
func (c *Call) heardSamples() int {
	if c.tones != nil {
		return c.heardN
	}
	return len(c.heard)
}

// hear adds received samples (mu held): to the recording, or to the tone
// tracks block by block.
func (c *Call) hear(s []int16) {
	if c.tones == nil {
		c.heard = append(c.heard, s...)
		return
	}
	c.heardN += len(s)
	for len(s) > 0 {
		k := copy(c.block[c.blockN:], s)
		c.blockN += k
		s = s[k:]
		if c.blockN < frameSamples {
			return
		}
		c.blockN = 0
		ms := (c.heardN-len(s))/8 - 20 // where the block started
		for i := range c.tones {
			t := &c.tones[i]
			ok := toneDominates(c.block[:], t.hz)
			switch {
			case ok && !t.open:
				t.open, t.openStart = true, ms
			case !ok && t.open:
				t.open = false
				t.spans = append(t.spans, Span{t.openStart, ms})
			}
		}
	}
}

var silentBlock [frameSamples]int16

// hearSilence adds n samples of silence (mu held).
func (c *Call) hearSilence(n int) {
	if c.tones == nil {
		c.heard = append(c.heard, make([]int16, n)...)
		return
	}
	for n > 0 {
		k := min(n, frameSamples)
		c.hear(silentBlock[:k])
		n -= k
	}
}

func (c *Call) track(hz float64) *toneTrack {
	for i := range c.tones {
		if c.tones[i].hz == hz {
			return &c.tones[i]
		}
	}
	return nil
}

// trackedSpansSince is spansSince from the tone tracks: what ToneSpans
// would find in the recording from fromMs (a multiple of 20 ms) on.
func (c *Call) trackedSpansSince(fromMs int, hz float64) []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.track(hz)
	if t == nil {
		return nil
	}
	var raw []Span
	for _, s := range t.spans {
		if s.EndMs > fromMs {
			raw = append(raw, Span{max(s.StartMs, fromMs), s.EndMs})
		}
	}
	if evaluated := (c.heardN - c.blockN) / 8; t.open && evaluated > fromMs {
		raw = append(raw, Span{max(t.openStart, fromMs), c.heardN / 8})
	}
	return mergeSpans(raw)
}
