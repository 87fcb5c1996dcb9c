package media

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/media/g711"
)

// rx is one RTP packet received from the stream, decoded.
type rx struct {
	hdr   rtp.Header
	pcm   []int16
	audio bool // loud: a played tone, not comfort noise
}

// receiver reads our RTP on the far end.
type receiver struct {
	t    *testing.T
	conn *net.UDPConn
	got  []rx
}

func (r *receiver) next() rx {
	r.t.Helper()
	require.NoError(r.t, r.conn.SetReadDeadline(time.Now().Add(wait)))
	buf := make([]byte, 1500)
	n, _, err := r.conn.ReadFromUDPAddrPort(buf)
	require.NoError(r.t, err)
	var p rtp.Packet
	require.NoError(r.t, p.Unmarshal(buf[:n]))
	require.Len(r.t, p.Payload, 160)
	pcm := make([]int16, 160)
	Codec(p.PayloadType).law().Decode(pcm, p.Payload)
	x := rx{hdr: p.Header, pcm: pcm, audio: rms(pcm) > 1000}
	r.got = append(r.got, x)
	return x
}

// until reads packets until cond holds for the latest one.
func (r *receiver) until(cond func(rx) bool) {
	r.t.Helper()
	for !cond(r.next()) {
	}
}

func countAudio(ps []rx) int {
	n := 0
	for _, p := range ps {
		if p.audio {
			n++
		}
	}
	return n
}

// checkRTP verifies the header rules over everything received: sequence +1
// per packet, timestamp +160 per packet (or a whole number of frames more
// after a pacer stall, which must then carry the marker), marker on the
// first packet and on each talk-spurt start only.
func checkRTP(t *testing.T, ps []rx, extra ...any) {
	t.Helper()
	require.True(t, ps[0].hdr.Marker, "first packet carries the marker")
	for i := 1; i < len(ps); i++ {
		prev, cur := ps[i-1].hdr, ps[i].hdr
		require.Equal(t, prev.SequenceNumber+1, cur.SequenceNumber, "packet %d %s", i, extra)
		require.Equal(t, prev.SSRC, cur.SSRC)
		dts := cur.Timestamp - prev.Timestamp
		require.Zero(t, dts%160, "packet %d", i)
		require.GreaterOrEqual(t, dts, uint32(160))
		spurtStart := cur.Timestamp != prev.Timestamp+160 || (ps[i].audio && !ps[i-1].audio)
		require.Equal(t, spurtStart, cur.Marker, "marker of packet %d (audio %v after %v, dts %d)",
			i, ps[i].audio, ps[i-1].audio, dts)
	}
}

func TestModelToCaller(t *testing.T) {
	tests := []struct {
		name  string
		codec Codec
	}{
		{"PCMU", CodecPCMU},
		{"PCMA", CodecPCMA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caller := listen(t)
			defer caller.Close()
			st := newStream(t, StreamConfig{Codec: tc.codec, DTMFPayloadType: -1, ModelFormat: ModelPCM24, Remote: addrOf(caller)})
			// 1 s of 800 Hz at 24 kHz, in 100 ms deltas like the realtime API's.
			pcm := pcmBytes(tone(24000, 800, 24000, 16000, 0))
			for i := 0; i < len(pcm); i += 4800 {
				st.Play("item1", pcm[i:i+4800])
			}
			require.Equal(t, 1000, st.QueuedMs())
			s := start(t, st)
			r := &receiver{t: t, conn: caller}

			// The tone, then comfort noise.
			r.until(func(p rx) bool { return !p.audio && countAudio(r.got) > 0 })
			for range 5 {
				r.next()
			}
			ev := waitEvent(t, s.Stream, EventPlayoutDone)
			require.Equal(t, Event{Kind: EventPlayoutDone, ItemID: "item1", PlayedMs: 1000}, ev)
			require.Equal(t, 1000, s.PlayedMs("item1"))
			require.Equal(t, 50, countAudio(r.got), "one packet per 20 ms of played audio")
			require.Zero(t, s.QueuedMs())

			var heard []int16
			for _, p := range r.got {
				if p.audio {
					heard = append(heard, p.pcm...)
				}
			}
			win := heard[160 : 160+8*800] // whole cycles, past the filter start
			require.Equal(t, 800.0, dominant(win, 8000, 3900))
			require.InDelta(t, 0, 20*math.Log10(amplitude(win, 800, 8000)/16000), 0.5)

			// Comfort noise: never digital silence, around -65 dBov.
			last := r.got[len(r.got)-1]
			require.False(t, last.audio)
			silent := true
			for _, v := range last.pcm {
				silent = silent && v == 0
			}
			require.False(t, silent, "comfort noise is not digital silence")
			require.InDelta(t, -65, dBov(last.pcm), 6)

			// A second item: the first packet starts a talk-spurt.
			s.Play("item2", pcmBytes(tone(2400, 800, 24000, 16000, 0))) // 100 ms
			r.until(func(p rx) bool { return p.audio })
			r.until(func(p rx) bool { return !p.audio })
			checkRTP(t, r.got, fmt.Sprintf("%+v", s.Stats()))
			require.Equal(t, 100, s.PlayedMs("item2"))
			require.Equal(t, 1000, s.PlayedMs("item1"))
			// The counter moves just after the send returns.
			require.Eventually(t, func() bool { return s.Stats().PacketsOut >= uint64(len(r.got)) },
				wait, time.Millisecond)
			require.Zero(t, s.Stats().WriteErrors)
		})
	}
}

// Flush (barge-in) stops the audio within a frame, keeps PlayedMs right and
// makes the next audio a new talk-spurt.
func TestFlushBargeIn(t *testing.T) {
	caller := listen(t)
	defer caller.Close()
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCM24, Remote: addrOf(caller)}))
	r := &receiver{t: t, conn: caller}
	s.Play("long", pcmBytes(tone(5*24000, 800, 24000, 16000, 0))) // 5 s
	r.until(func(rx) bool { return countAudio(r.got) >= 10 })
	s.Flush()
	atFlush := s.PlayedMs("long")
	require.Zero(t, s.QueuedMs())
	// Read until comfort noise has been flowing for a while.
	quiet := 0
	r.until(func(p rx) bool {
		if p.audio {
			quiet = 0
		} else {
			quiet++
		}
		return quiet >= 5
	})
	final := s.PlayedMs("long")
	require.LessOrEqual(t, final-atFlush, 20, "at most the frame in progress is finished")
	require.Less(t, final, 5000)
	require.Equal(t, final/20, countAudio(r.got), "PlayedMs matches the audio frames received")

	s.Play("next", pcmBytes(tone(2400, 800, 24000, 16000, 0)))
	p := r.next()
	for !p.audio {
		p = r.next()
	}
	require.True(t, p.hdr.Marker, "talk-spurt after a flush starts with the marker")
	checkRTP(t, r.got)
	// No PlayoutDone for the flushed item (it was not played out).
	for ev := range drainEvents(s.Stream) {
		require.NotEqual(t, "long", ev.ItemID)
	}
}

func drainEvents(s *Stream) chan Event {
	out := make(chan Event, eventQueue)
	for {
		select {
		case ev := <-s.Events():
			out <- ev
		default:
			close(out)
			return out
		}
	}
}

// On hold nothing is sent; on resume the timestamp reflects the time spent
// and the first packet carries the marker.
func TestHoldStopsSending(t *testing.T) {
	caller := listen(t)
	defer caller.Close()
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, Remote: addrOf(caller)}))
	r := &receiver{t: t, conn: caller}
	first := r.next()
	s.SetSending(false)
	time.Sleep(100 * time.Millisecond)
	// Drain what was sent before the hold took effect.
	require.NoError(t, caller.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	buf := make([]byte, 1500)
	for {
		if _, _, err := caller.ReadFromUDPAddrPort(buf); err != nil {
			break
		}
	}
	out := s.Stats().PacketsOut
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, out, s.Stats().PacketsOut, "nothing sent on hold")
	s.SetSending(true)
	p := r.next()
	require.True(t, p.hdr.Marker)
	elapsed := p.hdr.Timestamp - first.hdr.Timestamp
	require.Greater(t, elapsed, uint32(8*300), "timestamp advanced through the hold")
	require.Greater(t, p.hdr.SequenceNumber-first.hdr.SequenceNumber, uint16(0))
}

func TestComfortNoiseLevels(t *testing.T) {
	tests := []struct {
		name string
		db   float64
		law  Codec
	}{
		{"default PCMU", 0, CodecPCMU},
		{"-65 PCMA", -65, CodecPCMA},
		{"-50 PCMU", -50, CodecPCMU},
		{"-90 PCMU still not silent", -90, CodecPCMU},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream(t, StreamConfig{Codec: tc.law, DTMFPayloadType: -1, ComfortNoiseDB: tc.db})
			defer s.conn.Close()
			var all []int16
			notSilence := 0
			buf := make([]byte, 200)
			for range 50 {
				p := s.nextOutboundPacket(buf)
				require.Len(t, p, 172)
				for _, b := range p[12:] {
					if b != tc.law.law().Silence() {
						notSilence++
					}
				}
				pcm := make([]int16, 160)
				tc.law.law().Decode(pcm, p[12:])
				all = append(all, pcm...)
			}
			require.Greater(t, notSilence, 50*160/10, "comfort noise, not the silence code")
			want := tc.db
			if want == 0 {
				want = -65
			}
			if want > -70 { // lower settings are raised to G.711's smallest steps
				require.InDelta(t, want, dBov(all), 3)
			}
		})
	}
}

// The marker sits on the first packet and on talk-spurt starts; sequence
// and timestamp are continuous. Checked on nextOutboundPacket directly.
func TestOutboundHeaderSequence(t *testing.T) {
	s := newStream(t, StreamConfig{Codec: CodecPCMA, DTMFPayloadType: -1, ModelFormat: ModelPCMA})
	defer s.conn.Close()
	loud := make([]byte, 160*3)
	n := g711.EncodeAlaw(loud, tone(480, 500, 8000, 20000, 0))
	require.Equal(t, 480, n)

	type step struct {
		play   int // frames to queue before this packet
		flush  bool
		marker bool
	}
	steps := []step{
		{marker: true},          // first packet (noise)
		{},                      // noise
		{play: 2, marker: true}, // talk-spurt
		{},                      // second audio frame
		{},                      // noise
		{play: 3, marker: true}, // talk-spurt
		{flush: true},           // flushed: noise
		{play: 1, marker: true}, // new spurt after flush
		{play: 1, flush: true},  // flushed before the pacer took it: noise, no marker
		{play: 1, marker: true},
	}
	buf := make([]byte, 200)
	var prev rtp.Header
	for i, st := range steps {
		if st.play > 0 {
			s.Play("x", loud[:160*st.play])
		}
		if st.flush {
			s.Flush()
		}
		var h rtp.Header
		_, err := h.Unmarshal(s.nextOutboundPacket(buf))
		require.NoError(t, err)
		require.Equal(t, st.marker, h.Marker, "step %d", i)
		require.Equal(t, uint8(8), h.PayloadType)
		if i > 0 {
			require.Equal(t, prev.SequenceNumber+1, h.SequenceNumber)
			require.Equal(t, prev.Timestamp+160, h.Timestamp)
			require.Equal(t, prev.SSRC, h.SSRC)
		}
		prev = h
	}
}

// PlayedMs survives playout for the recent items; PlayoutDone fires when
// the queue moves on to another item.
func TestPlayedMsAndPlayoutDone(t *testing.T) {
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU})
	defer s.conn.Close()
	frame := make([]byte, 160)
	for i := range frame {
		frame[i] = 0x90
	}
	s.Play("a", frame)
	s.Play("a", frame[:80]) // 30 ms of a
	s.Play("b", frame)      // 20 ms of b
	require.Equal(t, 50, s.QueuedMs())
	buf := make([]byte, 200)
	s.nextOutboundPacket(buf)
	require.Equal(t, 20, s.PlayedMs("a"))
	require.Empty(t, drainEvents(s))
	s.nextOutboundPacket(buf) // the rest of a and half of b
	require.Equal(t, 30, s.PlayedMs("a"))
	require.Equal(t, 10, s.PlayedMs("b"))
	evs := drainEvents(s)
	require.Len(t, evs, 1)
	require.Equal(t, Event{Kind: EventPlayoutDone, ItemID: "a", PlayedMs: 30}, <-evs)
	s.nextOutboundPacket(buf)
	require.Equal(t, Event{Kind: EventPlayoutDone, ItemID: "b", PlayedMs: 20}, <-drainEvents(s))
	require.Zero(t, s.PlayedMs("unknown"))

	// Many items later, the oldest records are recycled but recent ones stay.
	for i := range 2 * recentItems {
		s.Play(string(rune('A'+i%26))+string(rune('a'+i/26)), frame)
		s.nextOutboundPacket(buf)
	}
	last := string(rune('A'+(2*recentItems-1)%26)) + string(rune('a'+(2*recentItems-1)/26))
	require.Equal(t, 20, s.PlayedMs(last))
	require.Zero(t, s.PlayedMs("a"), "evicted")
}

// PCM24 deltas with an odd byte count: the split sample is carried.
func TestPlayOddByteDeltas(t *testing.T) {
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCM24})
	defer s.conn.Close()
	whole := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCM24})
	defer whole.conn.Close()
	pcm := pcmBytes(tone(4800, 800, 24000, 16000, 0))
	whole.Play("x", pcm)
	for i := 0; i < len(pcm); i += 333 {
		s.Play("x", pcm[i:min(i+333, len(pcm))])
	}
	require.Equal(t, whole.QueuedMs(), s.QueuedMs())
	a, b := make([]int16, 1600), make([]int16, 1600)
	s.qMu.Lock()
	na, _ := s.q.take(a)
	s.qMu.Unlock()
	whole.qMu.Lock()
	nb, _ := whole.q.take(b)
	whole.qMu.Unlock()
	require.Equal(t, nb, na)
	require.Equal(t, b[:nb], a[:na])
}

// The queue grows chunk by chunk and keeps the audio in order.
func TestPlayQueueGrows(t *testing.T) {
	q := newPlayQueue[int16](8000, func(*itemRec) {})
	audio := make([]int16, 8000)
	for i := range audio {
		audio[i] = int16(i)
	}
	out := make([]int16, 5000)
	q.push("x", audio)
	q.take(out[:3000]) // move the head across a chunk
	for range 10 {
		q.push("x", audio)
	}
	require.Equal(t, 5000+80000, q.n)
	require.Equal(t, (3000+85000+chunkSamples-1)/chunkSamples-3000/chunkSamples, q.heldChunks())
	n, _ := q.take(out[:5000])
	require.Equal(t, 5000, n)
	require.Equal(t, int16(3000), out[0])
	require.Equal(t, int16(7999), out[4999])
	n, _ = q.take(out[:10])
	require.Equal(t, 10, n)
	require.Equal(t, []int16{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, out[:10])
}

// Beyond maxQueue, Play audio is dropped and counted, never blocking.
func TestPlayQueueBounded(t *testing.T) {
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU})
	defer s.conn.Close()
	big := make([]byte, samplesAt(8000, maxQueue)+8000) // 1 s too much
	s.Play("x", big)
	require.Equal(t, int(maxQueue/time.Millisecond), s.QueuedMs())
	require.Equal(t, uint64(1000), s.Stats().PlayoutDropped)
	s.Flush()
	require.Zero(t, s.QueuedMs())
}

// A re-INVITE changes the codec of what we send and the telephone-event
// type we accept.
func TestSetRemoteChangesCodec(t *testing.T) {
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: 101, ModelFormat: ModelPCMU, Sink: &frameSink{}})
	defer s.conn.Close()
	buf := make([]byte, 200)
	var h rtp.Header
	_, err := h.Unmarshal(s.nextOutboundPacket(buf))
	require.NoError(t, err)
	require.Equal(t, uint8(0), h.PayloadType)

	s.SetRemote(netip.MustParseAddrPort("192.0.2.7:4000"), CodecPCMA, 96)
	_, err = h.Unmarshal(s.nextOutboundPacket(buf))
	require.NoError(t, err)
	require.Equal(t, uint8(8), h.PayloadType)
	require.Equal(t, netip.MustParseAddrPort("192.0.2.7:4000"), *s.remote.Load())

	from := netip.MustParseAddrPort("192.0.2.8:4000")
	ev, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 3, SequenceNumber: 1},
		Payload: []byte{11, 0x8A, 0, 160}}).Marshal()
	require.NoError(t, err)
	s.processInbound(ev, from, time.Now())
	got := waitEvent(t, s, EventDTMF)
	require.Equal(t, '#', got.Digit)
	old, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SSRC: 3, SequenceNumber: 2},
		Payload: []byte{1, 0x8A, 0, 160}}).Marshal()
	require.NoError(t, err)
	s.processInbound(old, from, time.Now())
	require.Equal(t, uint64(1), s.Stats().IgnoredPT, "the old event type is no longer negotiated")
}

// A burst holds the chunks its audio fills; each goes back to the pool as
// soon as it has been played, and a played-out or flushed queue holds none,
// so an idle call holds no playout memory and a playing one only what is
// still queued.
func TestPlayQueueReleasesChunksAsItPlays(t *testing.T) {
	q := newPlayQueue[int16](8000, func(*itemRec) {})
	require.Zero(t, q.heldChunks(), "a new call holds no playout memory")
	burst := make([]int16, 10*chunkSamples+100)
	for i := range burst {
		burst[i] = int16(i)
	}
	q.push("a", burst)
	require.Equal(t, 11, q.heldChunks())
	out := make([]int16, len(burst))
	n, _ := q.take(out[:4*chunkSamples+50])
	require.Equal(t, 4*chunkSamples+50, n)
	require.Equal(t, 7, q.heldChunks(), "played chunks went back at once")
	n2, _ := q.take(out[n:])
	require.Equal(t, len(burst), n+n2)
	require.Equal(t, burst, out)
	require.Zero(t, q.heldChunks(), "played out: nothing held")

	q.push("b", burst)
	q.flush()
	require.Zero(t, q.heldChunks(), "flushed: nothing held")
	q.push("c", burst[:10])
	n, _ = q.take(out[:10])
	require.Equal(t, burst[:10], out[:n])
	require.Zero(t, q.heldChunks())

	// Long playout in small takes, pushes between: the chunk list is
	// reused, not grown without end.
	for range 200 {
		q.push("d", burst[:1000])
		q.take(out[:900])
	}
	require.LessOrEqual(t, cap(q.chunks), 16)
	require.Equal(t, 200*100, q.n)
}

// TestG722EncoderOnlyForWidebandCalls: a G.711 call (its codec's rate is
// fixed for the stream's life) does not hold the G.722 encoder's 800 bytes
// (issue 10); a G.722 call has it from the start.
func TestG722EncoderOnlyForWidebandCalls(t *testing.T) {
	for _, tc := range []struct {
		codec Codec
		want  bool
	}{{CodecPCMU, false}, {CodecPCMA, false}, {CodecG722, true}} {
		s := newStream(t, StreamConfig{Codec: tc.codec, DTMFPayloadType: -1})
		require.Equal(t, tc.want, s.out.g722 != nil, "codec %d", tc.codec)
		require.NoError(t, s.conn.Close())
	}
}

// TestLawQueueSendsWhatDecodingWould: on a G.711 call whose model audio is
// G.711 the queue holds the model's bytes (half the memory of samples), and
// the packets carry exactly what decoding them to samples and encoding in
// the call's law gave: in the same law, after a re-INVITE switched the law
// (PCMU ↔ PCMA), every one of the 256 codes, and a partial last frame
// padded with comfort noise.
func TestLawQueueSendsWhatDecodingWould(t *testing.T) {
	all := make([]byte, 0, 2*256+100)
	for i := range 2*256 + 100 { // every code, then part of a frame
		all = append(all, byte(i*7+i/256)) // a permutation of the codes per 256
	}
	for _, tc := range []struct {
		model       ModelFormat
		codec, then Codec
	}{
		{ModelPCMU, CodecPCMU, CodecPCMU}, {ModelPCMU, CodecPCMU, CodecPCMA},
		{ModelPCMA, CodecPCMA, CodecPCMA}, {ModelPCMA, CodecPCMA, CodecPCMU},
		{ModelPCMA, CodecPCMU, CodecPCMU},
	} {
		s := newStream(t, StreamConfig{Codec: tc.codec, DTMFPayloadType: -1, ModelFormat: tc.model})
		require.True(t, s.lawQ)
		s.Play("item", all)
		require.Equal(t, len(all)/8, s.QueuedMs())
		s.SetRemote(netip.MustParseAddrPort("192.0.2.1:4000"), tc.then, -1)
		pcm := make([]int16, len(all))
		tc.model.law().Decode(pcm, all)
		buf := make([]byte, 200)
		for off := 0; off < len(all); off += frameSamples {
			pkt := s.nextOutboundPacket(buf)
			require.Len(t, pkt, rtpHeaderLen+frameSamples)
			want := make([]byte, frameSamples)
			k := tc.then.law().Encode(want, pcm[off:min(off+frameSamples, len(pcm))])
			require.Equal(t, want[:k], pkt[rtpHeaderLen:rtpHeaderLen+k], "model %d, call %d then %d, offset %d", tc.model, tc.codec, tc.then, off)
		}
		require.Zero(t, s.QueuedMs())
		require.NoError(t, s.conn.Close())
	}
}

// TestLawQueueHalvesQueuedMemory: 6 s of a G.711 answer queued hold 48 KB
// of 2 KiB chunks, not the 96 KB of samples they decode to.
func TestLawQueueHalvesQueuedMemory(t *testing.T) {
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU})
	defer s.conn.Close()
	s.Play("item", make([]byte, 6*8000))
	s.qMu.Lock()
	defer s.qMu.Unlock()
	require.Zero(t, s.q.heldChunks())
	require.Equal(t, (6*8000+chunkSamples-1)/chunkSamples, s.qLaw.heldChunks())
	require.Equal(t, chunkSamples, len(*s.qLaw.chunks[0]), "a chunk of bytes")
}
