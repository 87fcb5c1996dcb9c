package media

import (
	"context"
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/media/g711"
)

// wait is the generous deadline for anything that should happen "soon":
// the machine is shared and tests may run under -race.
const wait = 10 * time.Second

// frameSink collects caller frames.
type frameSink struct {
	mu     sync.Mutex
	frames [][]byte
}

func (f *frameSink) WriteCallerAudio(b []byte) {
	f.mu.Lock()
	f.frames = append(f.frames, append([]byte(nil), b...))
	f.mu.Unlock()
}

func (f *frameSink) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.frames)
}

func (f *frameSink) waitFrames(t *testing.T, n int) [][]byte {
	t.Helper()
	require.Eventually(t, func() bool { return f.count() >= n }, wait, 5*time.Millisecond,
		"waiting for %d caller frames", n)
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.frames...)
}

func listen(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	require.NoError(t, err)
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// newStream builds a stream on a fresh loopback socket (not running).
func newStream(t testing.TB, cfg StreamConfig) *Stream {
	t.Helper()
	if cfg.Conn == nil {
		cfg.Conn = listen(t)
	}
	s, err := NewStream(cfg)
	require.NoError(t, err)
	return s
}

// running is a stream whose Run goroutine the test controls.
type running struct {
	*Stream
	cancel context.CancelFunc
	errc   chan error
}

// stop cancels Run and returns its result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.errc:
		r.errc <- err // keep it for the cleanup
		return err
	case <-time.After(wait):
		t.Fatal("Run did not return")
		return nil
	}
}

func start(t *testing.T, s *Stream) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Stream: s, cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- s.Run(ctx) }()
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

// rtpSender builds RTP packets of one source.
type rtpSender struct {
	conn *net.UDPConn
	to   netip.AddrPort
	hdr  rtp.Header
}

func newSender(t testing.TB, to netip.AddrPort, pt uint8) *rtpSender {
	c := listen(t)
	t.Cleanup(func() { _ = c.Close() })
	return &rtpSender{conn: c, to: to, hdr: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: 65500,
		Timestamp: 1000, SSRC: 0x1234}}
}

// packet marshals one packet with the given sequence offset and payload.
func (r *rtpSender) packet(t testing.TB, seq uint16, ts uint32, pt uint8, payload []byte) []byte {
	h := r.hdr
	h.SequenceNumber, h.Timestamp, h.PayloadType = seq, ts, pt
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	require.NoError(t, err)
	return b
}

func (r *rtpSender) send(t testing.TB, b []byte) {
	_, err := r.conn.WriteToUDPAddrPort(b, r.to)
	require.NoError(t, err)
}

// tone8k is a sine at 8 kHz.
func tone(n int, freq, rate, amp float64, phase0 int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i+phase0)/rate)))
	}
	return s
}

func pcmBytes(x []int16) []byte {
	b := make([]byte, 2*len(x))
	g711.Int16ToPCM16LE(b, x)
	return b
}

func amplitude(x []int16, freq, rate float64) float64 {
	var re, im float64
	w := 2 * math.Pi * freq / rate
	for i, v := range x {
		re += float64(v) * math.Cos(w*float64(i))
		im -= float64(v) * math.Sin(w*float64(i))
	}
	return 2 * math.Hypot(re, im) / float64(len(x))
}

// dominant is the strongest of 100 Hz … maxHz in 50 Hz steps.
func dominant(x []int16, rate, maxHz float64) float64 {
	best, bestA := 0.0, -1.0
	for f := 100.0; f <= maxHz; f += 50 {
		if a := amplitude(x, f, rate); a > bestA {
			best, bestA = f, a
		}
	}
	return best
}

func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(1, len(x))))
}

// dBov is the RMS level relative to a full-scale sine.
func dBov(x []int16) float64 { return 20 * math.Log10(rms(x)/(32767/math.Sqrt2)) }

func waitEvent(t *testing.T, s *Stream, kind EventKind) Event {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev := <-s.Events():
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event of kind %d", kind)
		}
	}
}
