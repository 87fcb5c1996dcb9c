package media

import (
	"github.com/pion/rtp"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/media/dtmf"
	"github.com/sipbridge/sipbridge/media/g711"
)

// A 1 kHz tone sent as G.711 RTP reaches the sink as 24 kHz PCM16 frames
// with 1 kHz dominant at the sent level, in order, with losses concealed.
func TestCallerToModelTone(t *testing.T) {
	tests := []struct {
		name  string
		codec Codec
	}{
		{"PCMU", CodecPCMU},
		{"PCMA", CodecPCMA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &frameSink{}
			s := start(t, newStream(t, StreamConfig{Codec: tc.codec, DTMFPayloadType: -1, ModelFormat: ModelPCM24, Sink: sink}))
			snd := newSender(t, s.LocalAddr(), uint8(tc.codec))
			const amp, packets = 10000.0, 50
			pcm := tone(packets*160, 1000, 8000, amp, 0)
			// Send with pairs swapped (reordering the jitter buffer undoes)
			// and one duplicate.
			order := []int{0}
			for i := 1; i+1 < packets; i += 2 {
				order = append(order, i+1, i)
			}
			order = append(order, packets-1)
			order = append(order[:10], append([]int{order[9]}, order[10:]...)...)
			for _, i := range order {
				payload := make([]byte, 160)
				tc.codec.law().Encode(payload, pcm[160*i:160*(i+1)])
				snd.send(t, snd.packet(t, uint16(100+i), uint32(160*i), uint8(tc.codec), payload))
			}
			frames := sink.waitFrames(t, packets)
			require.Len(t, frames, packets)
			var out []int16
			for _, f := range frames {
				require.Len(t, f, 960)
				x := make([]int16, 480)
				g711.PCM16LEToInt16(x, f)
				out = append(out, x...)
			}
			// Skip the first frame (filter start-up); 1 s window = whole cycles.
			win := out[480 : 480+24*800]
			require.Equal(t, 1000.0, dominant(win, 24000, 4000))
			lvl := 20 * math.Log10(amplitude(win, 1000, 24000)/amp)
			require.InDelta(t, 0, lvl, 0.5, "level through G.711 and Up3")
			// In order: the tone is continuous, so nearly all its energy is in
			// the 1 kHz bin (a swapped pair would splatter it).
			require.Greater(t, amplitude(win, 1000, 24000)/math.Sqrt2/rms(win), 0.98)
			st := s.Stats()
			require.Equal(t, uint64(packets+1), st.PacketsIn)
			require.Equal(t, uint64(1), st.Duplicates)
			require.Zero(t, st.Lost)
		})
	}
}

// Byte-exact ordering, duplicates, losses and late packets, seen through
// PCMU → PCMU (decode and re-encode is the identity for G.711).
func TestCallerToModelOrderLossDuplicates(t *testing.T) {
	sink := &frameSink{}
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU, Sink: sink}))
	snd := newSender(t, s.LocalAddr(), 0)
	code := func(seq int) byte { return byte(0x90 + seq) } // distinct positive levels
	send := func(seqs ...int) {
		for _, q := range seqs {
			p := make([]byte, 160)
			for i := range p {
				p[i] = code(q)
			}
			snd.send(t, snd.packet(t, uint16(65530+q), uint32(160*q), 0, p))
		}
	}
	// 7 lost; 13 and 14 lost; 3/4 swapped; 5 duplicated; 7 arrives too late.
	send(1, 2, 4, 3, 5, 5, 6, 8, 9, 10, 11, 12, 15, 16, 17)
	half := func(c byte) byte {
		var v [1]int16
		g711.DecodeUlaw(v[:], []byte{c})
		v[0] /= 2
		var b [1]byte
		g711.EncodeUlaw(b[:], v[:])
		return b[0]
	}
	want := []byte{code(1), code(2), code(3), code(4), code(5), code(6), half(code(6)), code(8), code(9),
		code(10), code(11), code(12), half(code(12)), g711.SilenceUlaw, code(15), code(16), code(17)}
	frames := sink.waitFrames(t, len(want))
	require.Len(t, frames, len(want))
	for i, f := range frames {
		require.Len(t, f, 160)
		for _, b := range f {
			require.Equal(t, want[i], b, "frame %d", i)
		}
	}
	send(7)
	require.Eventually(t, func() bool { return s.Stats().Late == 1 }, wait, 5*time.Millisecond)
	st := s.Stats()
	require.Equal(t, uint64(1), st.Duplicates)
	require.Equal(t, uint64(3), st.Lost)
	require.Equal(t, uint64(3), st.Concealed)
	require.Equal(t, uint64(16), st.PacketsIn)
	require.Len(t, sink.waitFrames(t, 0), len(want), "late packet produces no frame")
}

// A hole at the end of a burst is not stuck: after ~60 ms without packets
// the buffer flushes and the held packet comes out behind a concealed frame.
func TestJitterFlushWhenQuiet(t *testing.T) {
	sink := &frameSink{}
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMA, DTMFPayloadType: -1, ModelFormat: ModelPCMA, Sink: sink}))
	snd := newSender(t, s.LocalAddr(), 8)
	p := make([]byte, 160)
	for i := range p {
		p[i] = 0xAA
	}
	snd.send(t, snd.packet(t, 1, 0, 8, p))
	snd.send(t, snd.packet(t, 3, 320, 8, p)) // 2 lost, and the caller goes quiet
	frames := sink.waitFrames(t, 3)
	require.Len(t, frames, 3)
	require.Equal(t, byte(0xAA), frames[2][0])
	require.Equal(t, uint64(1), s.Stats().Lost)
}

// 30 ms packets (ptime 30) are re-framed into 20 ms frames.
func TestCallerPtime30(t *testing.T) {
	sink := &frameSink{}
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU, Sink: sink}))
	snd := newSender(t, s.LocalAddr(), 0)
	for i := range 4 {
		p := make([]byte, 240)
		for j := range p {
			p[j] = byte(0x80 + i)
		}
		snd.send(t, snd.packet(t, uint16(i), uint32(240*i), 0, p))
	}
	frames := sink.waitFrames(t, 6)
	require.Len(t, frames, 6) // 4 × 30 ms = 6 × 20 ms
	require.Equal(t, byte(0x80), frames[0][0])
	require.Equal(t, byte(0x81), frames[1][80]) // the second packet starts at sample 240
	require.Equal(t, byte(0x83), frames[5][159])
}

// Packets of other payload types (and non-RTP) are ignored.
func TestIgnoresOtherPayloadTypes(t *testing.T) {
	sink := &frameSink{}
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: 101, ModelFormat: ModelPCMU, Sink: sink}))
	snd := newSender(t, s.LocalAddr(), 0)
	snd.send(t, snd.packet(t, 1, 0, 8, make([]byte, 160))) // PCMA not negotiated
	snd.send(t, snd.packet(t, 2, 0, 13, make([]byte, 1)))  // comfort noise
	snd.send(t, []byte{0x00, 0x01, 0x02})                  // garbage
	snd.send(t, snd.packet(t, 3, 0, 0, make([]byte, 160))) // the real one
	snd.send(t, snd.packet(t, 4, 160, 101, []byte{1, 2}))  // truncated event
	sink.waitFrames(t, 1)
	require.Eventually(t, func() bool {
		st := s.Stats()
		return st.IgnoredPT == 2 && st.Invalid == 2 && st.PacketsIn == 1
	}, wait, 5*time.Millisecond)
}

// RFC 4733 packets, with the redundant end packets, give one event per key.
func TestDTMFEvents(t *testing.T) {
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: 101, ModelFormat: ModelPCM24, Sink: &frameSink{}}))
	snd := newSender(t, s.LocalAddr(), 0)
	seq := uint16(10)
	for k, key := range "1#9" {
		ev, _ := dtmf.EventCode(key)
		ts := uint32(10000 + 8000*k)
		for i := 1; i <= 6; i++ {
			p := dtmf.Payload{Event: ev, Volume: 10, Duration: uint16(160 * i)}
			if i >= 4 {
				p.End, p.Duration = true, 640
			}
			if k == 2 && i == 1 {
				seq++
				continue // the start packet of '9' is lost
			}
			b := make([]byte, 4)
			_, err := p.Encode(b)
			require.NoError(t, err)
			snd.send(t, snd.packet(t, seq, ts, 101, b))
			seq++
		}
	}
	var got []rune
	for range 3 {
		ev := waitEvent(t, s.Stream, EventDTMF)
		got = append(got, ev.Digit)
		require.Equal(t, 80, ev.DurationMs)
	}
	require.Equal(t, []rune{'1', '#', '9'}, got)
	// No spurious extra event follows (the lost start packet of '9' was a
	// hole the jitter buffer concealed as audio).
	select {
	case ev := <-s.Events():
		require.NotEqual(t, EventDTMF, ev.Kind, "extra DTMF event %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}
}

// Symmetric RTP: send to where the caller's RTP comes from, not to the SDP
// address; another source takes over only once the latched one went quiet,
// and its audio never reaches the model before that.
func TestSymmetricRTPLatching(t *testing.T) {
	sdpSock := listen(t)
	defer sdpSock.Close()
	sink := &frameSink{}
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU,
		SymmetricRTP: true, Remote: addrOf(sdpSock), Sink: sink}))

	a := newSender(t, s.LocalAddr(), 0)
	a.send(t, a.packet(t, 1, 0, 0, make([]byte, 160)))
	ev := waitEvent(t, s.Stream, EventRemoteLatched)
	require.Equal(t, addrOf(a.conn), ev.Addr)
	expectRTPAt(t, a.conn)

	// A hijacker sending while the caller is alive gets nowhere: not one
	// packet, not latchConfirm of them.
	b := newSender(t, s.LocalAddr(), 0)
	for i := range 2 * latchConfirm {
		b.send(t, b.packet(t, uint16(100+i), uint32(160*(100+i)), 0, make([]byte, 160)))
		a.send(t, a.packet(t, uint16(2+i), uint32(160*(2+i)), 0, make([]byte, 160)))
	}
	require.Eventually(t, func() bool { return s.Stats().Foreign == 2*latchConfirm }, wait, 5*time.Millisecond)
	require.Equal(t, uint64(1), s.Stats().Latches)
	require.Equal(t, uint64(1+2*latchConfirm), s.Stats().PacketsIn, "only the caller's packets are taken")

	// The caller goes quiet (a NAT rebinding): a consistent new source
	// takes over after relatchQuiet.
	time.Sleep(relatchQuiet + 100*time.Millisecond)
	for i := range latchConfirm {
		b.send(t, b.packet(t, uint16(200+i), uint32(160*(200+i)), 0, make([]byte, 160)))
	}
	ev = waitEvent(t, s.Stream, EventRemoteLatched)
	require.Equal(t, addrOf(b.conn), ev.Addr)
	expectRTPAt(t, b.conn)
	require.Equal(t, uint64(2), s.Stats().Latches)
}

// TestLatchRule: whose RTP is the caller's, packet by packet.
func TestLatchRule(t *testing.T) {
	caller := netip.MustParseAddrPort("192.0.2.1:4000")
	sdpAddr := netip.MustParseAddrPort("192.0.2.9:5000")
	other := netip.MustParseAddrPort("198.51.100.7:6000")
	other2 := netip.MustParseAddrPort("198.51.100.8:6000")
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	quiet := int(relatchQuiet / time.Millisecond)
	type pkt struct {
		from      netip.AddrPort
		ms        int
		ok, moved bool
	}
	for _, tc := range []struct {
		name      string
		signalled netip.AddrPort
		pkts      []pkt
	}{
		{"first source latches", sdpAddr, []pkt{{caller, 0, true, true}, {caller, 20, true, false}}},
		{"hijack while alive", sdpAddr, []pkt{{caller, 0, true, true}, {other, 10, false, false}, {other, 20, false, false},
			{other, 30, false, false}, {other, 40, false, false}, {caller, 40, true, false}}},
		{"takeover after quiet", sdpAddr, []pkt{{caller, 0, true, true}, {other, quiet + 1, false, false},
			{other, quiet + 21, false, false}, {other, quiet + 41, true, true}, {caller, quiet + 60, false, false}}},
		{"an interleaved stray resets the count", sdpAddr, []pkt{{caller, 0, true, true}, {other, quiet, false, false},
			{other2, quiet + 10, false, false}, {other, quiet + 20, false, false}, {other, quiet + 30, false, false},
			{other, quiet + 40, true, true}}},
		{"the SDP address always wins", sdpAddr, []pkt{{other, 0, true, true}, {sdpAddr, 10, true, true}, {other, 20, false, false}}},
		{"no SDP address (late offer)", netip.AddrPort{}, []pkt{{caller, 0, true, true}, {other, 10, false, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l latchRule
			for i, p := range tc.pkts {
				ok, moved := l.admit(p.from, tc.signalled, at(p.ms))
				require.Equal(t, p.ok, ok, "packet %d ok", i)
				require.Equal(t, p.moved, moved, "packet %d moved", i)
			}
		})
	}
}

// expectRTPAt reads one of our RTP packets on c.
func expectRTPAt(t *testing.T, c interface {
	SetReadDeadline(time.Time) error
	ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
}) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	buf := make([]byte, 1500)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	require.Equal(t, 12+160, n)
}

func TestMediaTimeout(t *testing.T) {
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, MediaTimeout: 300 * time.Millisecond}))
	select {
	case err := <-s.errc:
		require.ErrorIs(t, err, ErrMediaTimeout)
		s.errc <- err
	case <-time.After(wait):
		t.Fatal("no media timeout")
	}
}

// While on hold the caller may send nothing: no timeout until we resume.
func TestMediaTimeoutSuspendedOnHold(t *testing.T) {
	st := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, MediaTimeout: 300 * time.Millisecond})
	st.SetSending(false)
	s := start(t, st)
	select {
	case err := <-s.errc:
		t.Fatalf("Run returned %v while on hold", err)
	case <-time.After(900 * time.Millisecond):
	}
	s.SetSending(true)
	select {
	case err := <-s.errc:
		require.ErrorIs(t, err, ErrMediaTimeout)
		s.errc <- err
	case <-time.After(wait):
		t.Fatal("no media timeout after resuming")
	}
}

// RTP keeps the stream alive; Run ends with nil when ctx is cancelled and
// the socket is closed.
func TestRunEndsWithContextAndClosesSocket(t *testing.T) {
	st := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, MediaTimeout: time.Second, Sink: &frameSink{}})
	s := start(t, st)
	snd := newSender(t, s.LocalAddr(), 0)
	for i := range 75 { // 1.5 s of packets, longer than the timeout
		snd.send(t, snd.packet(t, uint16(i), uint32(160*i), 0, make([]byte, 160)))
		time.Sleep(20 * time.Millisecond)
		select {
		case err := <-s.errc:
			t.Fatalf("Run returned %v while RTP was flowing", err)
		default:
		}
	}
	require.NoError(t, s.stop(t))
	_, err := st.conn.WriteToUDPAddrPort([]byte{1}, addrOf(snd.conn))
	require.Error(t, err, "socket closed")
	require.ErrorIs(t, st.Run(t.Context()), ErrAlreadyRunning)
}

func TestNewStreamValidates(t *testing.T) {
	conn := listen(t)
	defer conn.Close()
	tests := []struct {
		name string
		cfg  StreamConfig
	}{
		{"no conn", StreamConfig{}},
		{"bad codec", StreamConfig{Conn: conn, Codec: 9}},
		{"bad model format", StreamConfig{Conn: conn, ModelFormat: 7}},
		{"dtmf pt clashes with audio", StreamConfig{Conn: conn, DTMFPayloadType: 8}},
		{"dtmf pt too big", StreamConfig{Conn: conn, DTMFPayloadType: 128}},
		{"noise too loud", StreamConfig{Conn: conn, DTMFPayloadType: -1, ComfortNoiseDB: -10}},
		{"noise too quiet", StreamConfig{Conn: conn, DTMFPayloadType: -1, ComfortNoiseDB: -120}},
		{"jitter too deep", StreamConfig{Conn: conn, DTMFPayloadType: -1, JitterDepth: 1000}},
		{"negative timeout", StreamConfig{Conn: conn, DTMFPayloadType: -1, MediaTimeout: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewStream(tc.cfg)
			require.ErrorIs(t, err, ErrBadConfig)
		})
	}
	s, err := NewStream(StreamConfig{Conn: conn, DTMFPayloadType: -1})
	require.NoError(t, err)
	require.Equal(t, addrOf(conn), s.LocalAddr())
}

// TestSilenceFillWhenCallerGoesQuiet: a caller using silence suppression (or
// a capture that ends) stops sending RTP mid-call; the model keeps receiving
// 20 ms frames of silence so its VAD can end the caller's turn.
func TestSilenceFillWhenCallerGoesQuiet(t *testing.T) {
	sink := &frameSink{}
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCM24, Sink: sink}))
	snd := newSender(t, s.LocalAddr(), 0)
	const packets = 10
	pcm := tone(packets*160, 1000, 8000, 10000, 0)
	for i := 0; i < packets; i++ {
		payload := make([]byte, 160)
		CodecPCMU.law().Encode(payload, pcm[160*i:160*(i+1)])
		snd.send(t, snd.packet(t, uint16(i), uint32(160*i), 0, payload))
	}
	// No more RTP: at least 10 more frames (200 ms) must follow, silent.
	frames := sink.waitFrames(t, packets+10)
	// The first filler frame still holds the resampler tail of the tone.
	for _, f := range frames[packets+1:] {
		x := make([]int16, 480)
		g711.PCM16LEToInt16(x, f)
		require.Less(t, rms(x), 5.0, "filler frames are silence")
	}
	require.GreaterOrEqual(t, s.Stats().SilenceFilled, uint64(10))
}

// TestLatchBeforeSend: with strict latching nothing goes to the SDP address;
// RTP starts once the caller's first packet is heard, toward its source.
func TestLatchBeforeSend(t *testing.T) {
	sdpAddr := listen(t) // where the SDP says to send: must get nothing
	caller := listen(t)  // where the caller really sends from
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCM24,
		Sink: &frameSink{}, Remote: addrOf(sdpAddr), SymmetricRTP: true, LatchBeforeSend: true}))
	buf := make([]byte, 1500)
	require.NoError(t, sdpAddr.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, _, err := sdpAddr.ReadFromUDP(buf)
	require.Error(t, err, "nothing may be sent before the caller's RTP is heard")
	require.Zero(t, s.Stats().PacketsOut)

	snd := &rtpSender{conn: caller, to: s.LocalAddr(), hdr: rtp.Header{Version: 2, SSRC: 0x42}}
	snd.send(t, snd.packet(t, 1, 160, 0, make([]byte, 160)))
	require.NoError(t, caller.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err = caller.ReadFromUDP(buf)
	require.NoError(t, err, "RTP starts toward the latched source")
	require.NoError(t, sdpAddr.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	_, _, err = sdpAddr.ReadFromUDP(buf)
	require.Error(t, err, "and never to the SDP address")
}
