package phone

import (
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
	"github.com/zaf/g711"
)

// TestTrackedSpansMatchRecording feeds the same audio, in packet-sized
// pieces with a silent gap, to a recording call and to a tracking one: the
// tracker must find the spans ToneSpans finds in the recording, from any
// 20 ms position on.
func TestTrackedSpansMatchRecording(t *testing.T) {
	var s []int16
	s = append(s, tone(440, 500, -120)...)
	s = append(s, tone(440, 610, -20)...) // ends mid-block
	s = append(s, tone(440, 90, -120)...) // a short dip: merged
	s = append(s, tone(440, 300, -20)...)
	s = append(s, tone(660, 400, -20)...)
	s = append(s, tone(440, 400, -60)...)
	s = append(s, tone(660, 250, -20)...) // still open at the end
	rec := &Call{}
	tr := &Call{tones: []toneTrack{{hz: 440}, {hz: 660}}}
	for i, c := range []*Call{rec, tr} {
		for off := 0; off < len(s); off += 160 {
			c.hear(s[off:min(off+160, len(s))])
			if off == 800*8 {
				c.hearSilence(1000) // a timestamp gap, not a whole number of blocks
			}
		}
		require.Equal(t, len(s)+1000, c.heardSamples(), i)
	}
	require.Nil(t, tr.Heard())
	for _, hz := range []float64{440, 660} {
		for from := 0; from <= len(s)/8+200; from += 20 {
			require.Equal(t, rec.spansSince(from, hz), tr.spansSince(from, hz), "%v Hz from %d ms", hz, from)
		}
	}
	require.NotEmpty(t, tr.spansSince(0, 660))
	require.Nil(t, tr.spansSince(0, 1000), "an untracked tone")
}

// TestPacerSendsEachCallsFrames runs two calls on one pacer against a
// socket standing in for the far end: each call's stream has consecutive
// sequence numbers and timestamps, a marker on the first packet and when
// speech starts, and its speech arrives encoded.
func TestPacerSendsEachCallsFrames(t *testing.T) {
	far, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer far.Close()
	p := NewPacer()
	defer p.Close()
	var calls []*Call
	for range 2 {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		c := &Call{conn: conn, pt: 0, remote: far.LocalAddr().(*net.UDPAddr).AddrPort(), pacer: p,
			ended: make(chan struct{}), stop: make(chan struct{}), noiseLevel: dbToAmp(-70)}
		c.startMedia()
		calls = append(calls, c)
	}
	type stream struct {
		n, markers int
		seq        uint16
		ts         uint32
		loud       bool
	}
	streams := map[uint32]*stream{}
	buf := make([]byte, 1500)
	received := 0
	require.NoError(t, far.SetReadDeadline(time.Now().Add(30*time.Second)))
	for done := false; !done; {
		n, _, err := far.ReadFromUDP(buf)
		require.NoError(t, err)
		var pkt rtp.Packet
		require.NoError(t, pkt.Unmarshal(buf[:n]))
		require.Equal(t, uint8(0), pkt.PayloadType)
		require.Len(t, pkt.Payload, 160)
		st := streams[pkt.SSRC]
		if st == nil {
			st = &stream{}
			streams[pkt.SSRC] = st
			require.True(t, pkt.Marker, "the first packet")
		} else {
			require.Equal(t, st.seq+1, pkt.SequenceNumber)
			require.Equal(t, st.ts+160, pkt.Timestamp)
		}
		st.n++
		if received++; received == 10 {
			calls[1].Speak(1000, 100*time.Millisecond, -10) // after its first packet
		}
		st.seq, st.ts = pkt.SequenceNumber, pkt.Timestamp
		if pkt.Marker {
			st.markers++
		}
		if LevelDBov(decodeUlaw(pkt.Payload)) > -20 {
			st.loud = true
		}
		done = len(streams) == 2
		for _, st := range streams {
			done = done && st.n >= 30
		}
	}
	loud := 0
	for _, st := range streams {
		if st.loud {
			loud++
			require.Equal(t, 2, st.markers, "first packet and start of speech")
		}
	}
	require.Equal(t, 1, loud, "one call spoke")
	for _, c := range calls {
		c.stopMedia()
		require.Nil(t, c.paced)
	}
	require.True(t, calls[1].SpeakingDone())
	for _, l := range p.lanes {
		for _, slot := range l.slots {
			require.Empty(t, slot)
		}
	}
	require.Error(t, (&Call{pacer: p, tePT: 101}).SendDTMF("1"))
}

func decodeUlaw(b []byte) []int16 {
	out := make([]int16, len(b))
	for i, v := range b {
		out[i] = g711.DecodeUlawFrame(v)
	}
	return out
}

// TestToneSamplesShared: a tone is computed once and shared.
func TestToneSamplesShared(t *testing.T) {
	a := toneSamples(300, 8000, -20)
	b := toneSamples(300, 8000, -20)
	require.Equal(t, &a[0], &b[0])
	require.Equal(t, tone(300, 1000, -20), a)
}

// TestPacedCallHears: a paced call receives what the far end sends (polled
// by the pacer on Linux) and finds the tone it tracks, timed by arrival.
func TestPacedCallHears(t *testing.T) {
	far, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer far.Close()
	p := NewPacer()
	defer p.Close()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	c := &Call{conn: conn, pt: 0, remote: far.LocalAddr().(*net.UDPAddr).AddrPort(), pacer: p,
		ended: make(chan struct{}), stop: make(chan struct{}), noiseLevel: dbToAmp(-70),
		tones: []toneTrack{{hz: 440}}}
	c.startMedia()
	defer c.stopMedia()
	s := tone(440, 600, -20)
	for i := range 30 {
		payload := make([]byte, 160)
		for j := range payload {
			payload[j] = g711.EncodeUlawFrame(s[i*160+j])
		}
		b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(i), Timestamp: uint32(i * 160), SSRC: 7},
			Payload: payload}).Marshal()
		require.NoError(t, err)
		_, err = far.WriteToUDP(b, conn.LocalAddr().(*net.UDPAddr))
		require.NoError(t, err)
		if i == 14 {
			time.Sleep(100 * time.Millisecond) // a gap the call must see
		}
	}
	require.Eventually(t, func() bool { return c.Stats().PacketsIn == 30 }, 30*time.Second, 10*time.Millisecond)
	require.Zero(t, c.Stats().SeqErrors)
	require.Equal(t, 600, c.HeardMs())
	require.Equal(t, []Span{{0, 600}}, c.spansSince(0, 440))
	require.GreaterOrEqual(t, c.MaxGap(), 100*time.Millisecond, "arrival times are the packets', not the poll's")
}
