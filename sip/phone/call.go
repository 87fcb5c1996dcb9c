package phone

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/sipbridge/sipbridge/media/g722"
)

const (
	sampleRate   = 8000
	frameSamples = 160
	frameDur     = 20 * time.Millisecond
)

// Call is one answered call: its dialog and its RTP.
type Call struct {
	phone  *Phone
	dialog *sipgo.DialogClientSession
	conn   *net.UDPConn
	offer  []byte

	// Negotiated from the answer.
	remote  netip.AddrPort
	pt      uint8
	tePT    int
	answer  string
	started time.Time

	mu          sync.Mutex
	provisional []int
	outQueue    []int16   // samples waiting to be sent
	heard       []int16   // everything received, decoded, in arrival order (gaps filled)
	heardAt     time.Time // when heard[0] arrived
	lastArrival time.Time // when the last RTP packet arrived
	maxGap      time.Duration
	ended       chan struct{}
	endReason   string
	stop        chan struct{}
	wg          sync.WaitGroup
	pktsIn      int
	markers     int
	lastSeq     uint16
	seqErrors   int
	dtmfQueue   []byte
	stopOnce    sync.Once
	endOnce     sync.Once
	noiseLevel  float64
	sentPackets int
	srtp        *srtpState // nil: clear RTP
	// G.722 (PT 9): the phone's audio stays 8 kHz; it is taken to 16 kHz
	// (sample repeat) to encode and back (pair average) after decoding.
	g722enc *g722.Encoder // sendLoop only
	g722dec *g722.Decoder // recvLoop only
	wide    []int16
	decoded []int16 // recvLoop's scratch for one packet's samples

	// pacer, if set, sends this call's RTP instead of its own sendLoop
	// (pacer.go); paced is that sender's state.
	pacer *Pacer
	paced *pacedSender
	// tones, if set, replace the recording: the received audio is only
	// scanned for these tones as it arrives (pacer.go), so heard stays
	// empty and heardN counts the samples.
	tones  []toneTrack
	heardN int
	block  [frameSamples]int16 // the 20 ms block being filled
	blockN int
}

func newCall(p *Phone, d *sipgo.DialogClientSession, conn *net.UDPConn, offer []byte) *Call {
	return &Call{phone: p, dialog: d, conn: conn, offer: offer, ended: make(chan struct{}), stop: make(chan struct{}),
		noiseLevel: dbToAmp(-70)}
}

// Phone is the phone that placed the call.
func (c *Call) Phone() *Phone { return c.phone }

// CallID is the SIP Call-ID.
func (c *Call) CallID() string { return c.dialog.InviteRequest.CallID().Value() }

// Answer is the SDP answer body.
func (c *Call) Answer() string { return c.answer }

// PayloadType is the negotiated audio payload type (0 PCMU, 8 PCMA).
func (c *Call) PayloadType() uint8 { return c.pt }

// Provisional lists the 1xx status codes received before the answer.
func (c *Call) Provisional() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.provisional...)
}

func (c *Call) addProvisional(code int) {
	c.mu.Lock()
	c.provisional = append(c.provisional, code)
	c.mu.Unlock()
}

// Ended is closed when the far end hung up (BYE received) or we did.
func (c *Call) Ended() <-chan struct{} { return c.ended }

// EndReason says how the call ended ("bye-received", "bye-sent").
func (c *Call) EndReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endReason
}

func (c *Call) markEnded(reason string) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.endReason = reason
		c.mu.Unlock()
		close(c.ended)
	})
	c.stopMedia()
}

func (c *Call) applyAnswer(body []byte) error {
	c.answer = string(body)
	var ip, port string
	c.tePT = -1
	c.pt = 255
	for _, line := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "c=IN IP4 "), strings.HasPrefix(line, "c=IN IP6 "):
			if ip == "" || !strings.HasPrefix(line, "c=") {
				ip = strings.TrimSpace(line[9:])
			}
		case strings.HasPrefix(line, "m=audio "):
			f := strings.Fields(line)
			if len(f) < 4 {
				return fmt.Errorf("phone: bad m= line %q", line)
			}
			port = f[1]
			pt, err := strconv.Atoi(f[3])
			if err != nil {
				return fmt.Errorf("phone: bad payload type in %q", line)
			}
			c.pt = uint8(pt)
		case strings.HasPrefix(line, "a=rtpmap:") && strings.Contains(line, "telephone-event"):
			v := strings.TrimPrefix(line, "a=rtpmap:")
			if n, err := strconv.Atoi(strings.Fields(v)[0]); err == nil {
				c.tePT = n
			}
		}
	}
	if ip == "" || port == "" || c.pt == 255 {
		return errors.New("phone: answer has no usable audio stream")
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(ip, port))
	if err != nil {
		return err
	}
	c.remote = ap
	return nil
}

func (c *Call) startMedia() {
	c.started = time.Now()
	if c.pacer == nil || !pacerPolls {
		c.wg.Add(1)
		go c.recvLoop()
	}
	if c.pacer != nil {
		c.pacer.add(c)
		return
	}
	c.wg.Add(1)
	go c.sendLoop()
}

func (c *Call) stopMedia() {
	c.stopOnce.Do(func() {
		close(c.stop)
		if c.pacer != nil {
			c.pacer.remove(c) // the pacer no longer touches c once this returns
		}
		_ = c.conn.Close()
	})
	c.wg.Wait()
}

// Hangup sends BYE and stops media.
func (c *Call) Hangup(ctx context.Context) error {
	err := c.dialog.Bye(ctx)
	c.markEnded("bye-sent")
	c.phone.forget(c)
	return err
}

// Speak queues a tone of hz at level dBov (e.g. -20) for d: the simulator's
// VAD hears it as speech.
func (c *Call) Speak(hz float64, d time.Duration, dbov float64) {
	s := toneSamples(hz, int(d.Seconds()*sampleRate), dbov)
	c.mu.Lock()
	c.outQueue = append(c.outQueue, s...)
	c.mu.Unlock()
}

// SendPCM queues raw 8 kHz samples.
func (c *Call) SendPCM(s []int16) {
	c.mu.Lock()
	c.outQueue = append(c.outQueue, s...)
	c.mu.Unlock()
}

// SpeakingDone reports whether everything queued has been sent.
func (c *Call) SpeakingDone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.outQueue) == 0
}

// SendDTMF queues RFC 4733 events for the digits (needs telephone-event negotiated).
func (c *Call) SendDTMF(digits string) error {
	if c.tePT < 0 {
		return errors.New("phone: telephone-event not negotiated")
	}
	if c.pacer != nil {
		return errors.New("phone: DTMF needs the call's own sender (placed without a Pacer)")
	}
	c.mu.Lock()
	c.dtmfQueue = append(c.dtmfQueue, digits...)
	c.mu.Unlock()
	return nil
}

func dbToAmp(db float64) float64 { return 32767 * math.Pow(10, db/20) }

func (c *Call) encode(dst []byte, s []int16) {
	if c.pt == 9 {
		if c.g722enc == nil {
			c.g722enc = g722.NewEncoder()
		}
		wide := make([]int16, 2*len(s))
		for i, v := range s {
			wide[2*i], wide[2*i+1] = v, v
		}
		c.g722enc.Encode(dst, wide)
		return
	}
	for i, v := range s {
		if c.pt == 8 {
			dst[i] = g711.EncodeAlawFrame(v)
		} else {
			dst[i] = g711.EncodeUlawFrame(v)
		}
	}
}

func (c *Call) sendLoop() {
	defer c.wg.Done()
	ssrc := rand.Uint32()
	seq := uint16(rand.IntN(1 << 15))
	ts := rand.Uint32()
	dst := net.UDPAddrFromAddrPort(c.remote)
	frame := make([]int16, frameSamples)
	payload := make([]byte, frameSamples)
	buf := make([]byte, 1500)
	start := time.Now()
	first := true
	speaking := false
	for n := 0; ; n++ {
		next := start.Add(time.Duration(n) * frameDur)
		select {
		case <-c.stop:
			return
		case <-time.After(time.Until(next)):
		}
		c.mu.Lock()
		var digit byte
		if len(c.dtmfQueue) > 0 {
			digit = c.dtmfQueue[0]
			c.dtmfQueue = c.dtmfQueue[1:]
		}
		got := copy(frame, c.outQueue)
		c.outQueue = c.outQueue[got:]
		c.mu.Unlock()
		if digit != 0 {
			// One event of 100 ms: 5 packets, the last one (E) sent three times (RFC 4733 §2.5.1.4).
			evTS := ts
			for i := 1; i <= 5; i++ {
				end := i == 5
				dur := uint16(i * frameSamples)
				reps := 1
				if end {
					reps = 3
				}
				for r := 0; r < reps; r++ {
					pl := []byte{dtmfEvent(digit), 10, byte(dur >> 8), byte(dur)}
					if end {
						pl[1] |= 0x80
					}
					h := rtp.Header{Version: 2, Marker: i == 1 && r == 0, PayloadType: uint8(c.tePT), SequenceNumber: seq, Timestamp: evTS, SSRC: ssrc}
					seq++
					if b, err := (&rtp.Packet{Header: h, Payload: pl}).Marshal(); err == nil {
						_, _ = c.conn.WriteToUDP(c.secure(b), dst)
					}
				}
				if !end {
					time.Sleep(frameDur)
				}
			}
			ts += 5 * frameSamples
			n += 5
			start = time.Now().Add(-time.Duration(n) * frameDur)
			continue
		}
		for i := got; i < frameSamples; i++ {
			frame[i] = int16(c.noiseLevel * (rand.Float64()*2 - 1))
		}
		c.encode(payload, frame)
		marker := first || (got > 0 && !speaking)
		speaking = got > 0
		first = false
		h := rtp.Header{Version: 2, Marker: marker, PayloadType: c.pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}
		seq++
		ts += frameSamples
		n2, err := (&rtp.Packet{Header: h, Payload: payload}).MarshalTo(buf)
		if err == nil {
			_, _ = c.conn.WriteToUDP(c.secure(buf[:n2]), dst)
			c.mu.Lock()
			c.sentPackets++
			c.mu.Unlock()
		}
	}
}

func dtmfEvent(d byte) byte {
	switch {
	case d >= '0' && d <= '9':
		return d - '0'
	case d == '*':
		return 10
	case d == '#':
		return 11
	case d >= 'A' && d <= 'D':
		return 12 + d - 'A'
	}
	return 0
}

// secure protects pkt when the call runs SRTP.
func (c *Call) secure(pkt []byte) []byte {
	if c.srtp == nil {
		return pkt
	}
	return c.srtp.protect(pkt)
}

func (c *Call) recvLoop() {
	defer c.wg.Done()
	buf := make([]byte, 1500)
	var rs recvState
	for {
		n, _, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		c.receive(buf[:n], time.Now(), &rs)
	}
}

// recvState is what the receiver of one socket keeps between packets.
type recvState struct {
	pkt    rtp.Packet
	lastTS uint32
	haveTS bool
}

// receive takes one datagram that arrived at now: RTP of the negotiated
// payload type is counted, decoded and heard; anything else is ignored.
func (c *Call) receive(in []byte, now time.Time, rs *recvState) {
	if c.srtp != nil {
		if in = c.srtp.unprotect(in); in == nil {
			return
		}
	}
	pkt := &rs.pkt
	if err := pkt.Unmarshal(in); err != nil {
		return
	}
	if pkt.PayloadType != c.pt {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pktsIn > 0 && pkt.SequenceNumber != c.lastSeq+1 {
		c.seqErrors++
	}
	c.lastSeq = pkt.SequenceNumber
	if c.pktsIn > 0 {
		c.maxGap = max(c.maxGap, now.Sub(c.lastArrival))
	}
	c.lastArrival = now
	c.pktsIn++
	if pkt.Marker {
		c.markers++
	}
	if c.heardSamples() == 0 {
		c.heardAt = now
	}
	// Fill timestamp gaps with silence so positions in heard map to time.
	if rs.haveTS {
		gap := int(int32(pkt.Timestamp - rs.lastTS - uint32(len(pkt.Payload))))
		if gap > 0 && gap < 10*sampleRate {
			c.hearSilence(gap)
		}
	}
	c.decoded = c.decoded[:0]
	payload := pkt.Payload
	if c.pt == 9 {
		if c.g722dec == nil {
			c.g722dec = g722.NewDecoder()
		}
		c.wide = slices.Grow(c.wide[:0], g722.DecodedLen(len(payload)))[:g722.DecodedLen(len(payload))]
		n := c.g722dec.Decode(c.wide, payload)
		for i := 0; i+1 < n; i += 2 {
			c.decoded = append(c.decoded, int16((int32(c.wide[i])+int32(c.wide[i+1]))/2))
		}
		payload = nil
	}
	for _, b := range payload {
		if c.pt == 8 {
			c.decoded = append(c.decoded, g711.DecodeAlawFrame(b))
		} else {
			c.decoded = append(c.decoded, g711.DecodeUlawFrame(b))
		}
	}
	c.hear(c.decoded)
	rs.lastTS, rs.haveTS = pkt.Timestamp, true
}

// RTPStats reports received packet counters.
type RTPStats struct {
	PacketsIn, Markers, SeqErrors, PacketsOut int
}

// Stats returns the RTP counters.
func (c *Call) Stats() RTPStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return RTPStats{PacketsIn: c.pktsIn, Markers: c.markers, SeqErrors: c.seqErrors, PacketsOut: c.sentPackets}
}

// Heard returns a copy of everything received so far (8 kHz); nil for a
// call placed with CallOptions.TrackTones, which keeps no recording.
func (c *Call) Heard() []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int16(nil), c.heard...)
}

// spansSince is ToneSpans of the audio heard from fromMs (a multiple of
// 20 ms) on, in positions of the whole recording.
func (c *Call) spansSince(fromMs int, hz float64) []Span {
	if c.tones != nil {
		return c.trackedSpansSince(fromMs, hz)
	}
	c.mu.Lock()
	x := append([]int16(nil), c.heard[min(fromMs*8, len(c.heard)):]...)
	c.mu.Unlock()
	spans := ToneSpans(x, hz)
	for i := range spans {
		spans[i].StartMs += fromMs
		spans[i].EndMs += fromMs
	}
	return spans
}

// MaxGap is the longest time between two received RTP packets since the
// previous MaxGap call (0 before two packets): a caller-side view of how
// evenly the bridge paces its RTP.
func (c *Call) MaxGap() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.maxGap
	c.maxGap = 0
	return g
}

// HeardMs is how much audio has been received.
func (c *Call) HeardMs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.heardSamples() / 8
}

// WaitTone waits until the received audio, from position fromMs on, holds
// at least minDur of a tone at hz, and returns the ms position where that tone
// started. It fails after timeout.
func (c *Call) WaitTone(ctx context.Context, hz float64, fromMs int, minDur, timeout time.Duration) (int, error) {
	if c.tones != nil && c.track(hz) == nil {
		return 0, fmt.Errorf("phone: %.0f Hz is not among the call's TrackTones", hz)
	}
	deadline := time.Now().Add(timeout)
	// Only the audio from shortly before fromMs is analysed (from a frame
	// boundary, so the spans are those of the whole recording): a long call
	// would otherwise cost a copy and a tone scan of everything heard every
	// 50 ms, which starves a load generator running hundreds of calls.
	cut := max(0, fromMs-500) / 20 * 20
	// A call that tracks tones is one of hundreds in a load run: it looks
	// less often (the position found is the same, only found later).
	poll := 50 * time.Millisecond
	if c.tones != nil {
		poll = 200 * time.Millisecond
	}
	for {
		spans := c.spansSince(cut, hz)
		for _, s := range spans {
			if s.EndMs > fromMs && time.Duration(s.EndMs-max(s.StartMs, fromMs))*time.Millisecond >= minDur {
				return max(s.StartMs, fromMs), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("phone: no %.0f Hz tone of %v after %d ms within %v (heard %d ms; spans %v)", hz, minDur, fromMs, timeout, c.HeardMs(), spans)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-c.ended:
			// keep checking what was already heard, once
			spans = c.spansSince(cut, hz)
			for _, s := range spans {
				if s.EndMs > fromMs && time.Duration(s.EndMs-max(s.StartMs, fromMs))*time.Millisecond >= minDur {
					return max(s.StartMs, fromMs), nil
				}
			}
			return 0, fmt.Errorf("phone: call ended before a %.0f Hz tone was heard (spans %v)", hz, spans)
		case <-time.After(poll):
		}
	}
}

// Span is a stretch of received audio, in ms from the first packet.
type Span struct{ StartMs, EndMs int }

func (s Span) String() string { return fmt.Sprintf("[%d-%d]", s.StartMs, s.EndMs) }

// ToneSpans finds where a tone at hz dominates 20 ms blocks of 8 kHz audio at
// a level a person would hear (above -45 dBov), merging blocks into spans.
func ToneSpans(s []int16, hz float64) []Span {
	var out []Span
	in := false
	var cur Span
	for b := 0; b+frameSamples <= len(s); b += frameSamples {
		blk := s[b : b+frameSamples]
		ok := toneDominates(blk, hz)
		ms := b / 8
		if ok && !in {
			cur = Span{StartMs: ms}
			in = true
		}
		if !ok && in {
			cur.EndMs = ms
			out = append(out, cur)
			in = false
		}
	}
	if in {
		cur.EndMs = len(s) / 8
		out = append(out, cur)
	}
	return mergeSpans(out)
}

// mergeSpans joins spans separated by short dips (the simulator's syllable
// envelope): 200 ms or less.
func mergeSpans(spans []Span) []Span {
	var merged []Span
	for _, sp := range spans {
		if n := len(merged); n > 0 && sp.StartMs-merged[n-1].EndMs <= 200 {
			merged[n-1].EndMs = sp.EndMs
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

func toneDominates(blk []int16, hz float64) bool {
	var energy float64
	for _, v := range blk {
		f := float64(v)
		energy += f * f
	}
	rms := math.Sqrt(energy / float64(len(blk)))
	if rms < dbToAmp(-45) {
		return false
	}
	p := goertzel(blk, hz)
	// Power of a pure tone of amplitude A over N samples is (A·N/2)²; compare
	// against the total energy so a broadband signal does not pass.
	n := float64(len(blk))
	toneEnergy := 2 * p / n
	return toneEnergy > 0.5*energy
}

func goertzel(s []int16, hz float64) float64 {
	k := 2 * math.Cos(2*math.Pi*hz/sampleRate)
	var s1, s2 float64
	for _, v := range s {
		s0 := float64(v) + k*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - k*s1*s2
}

// LevelDBov is the RMS level of samples in dBov.
func LevelDBov(s []int16) float64 {
	if len(s) == 0 {
		return -120
	}
	var e float64
	for _, v := range s {
		e += float64(v) * float64(v)
	}
	rms := math.Sqrt(e / float64(len(s)))
	if rms == 0 {
		return -120
	}
	return 20 * math.Log10(rms/32767)
}

// SendRequest sends an in-dialog request (INFO, re-INVITE…) and returns the response.
func (c *Call) SendRequest(ctx context.Context, method sip.RequestMethod, body []byte, hdrs ...sip.Header) (*sip.Response, error) {
	req := sip.NewRequest(method, c.dialog.InviteResponse.Contact().Address)
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if body != nil {
		req.SetBody(body)
	}
	return c.dialog.Do(ctx, req)
}

// Offer is the SDP offer we sent.
func (c *Call) Offer() []byte { return c.offer }

// LocalRTP is the phone's RTP address for this call.
func (c *Call) LocalRTP() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }
