package media

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/media/dtmf"
	"github.com/sipbridge/sipbridge/media/g711"
)

// copySink keeps the last frame without allocating.
type copySink struct {
	last [960]byte
	n    int
}

func (c *copySink) WriteCallerAudio(b []byte) { c.n += copy(c.last[:], b) }

// inboundFixture is one PCMU packet whose sequence number and timestamp
// are bumped in place for each use.
type inboundFixture struct {
	s    *Stream
	pkt  []byte
	from netip.AddrPort
	seq  uint16
	ts   uint32
}

func newInboundFixture(t testing.TB, model ModelFormat) *inboundFixture {
	sink := &copySink{}
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: 101, ModelFormat: model, Sink: sink,
		SymmetricRTP: true})
	payload := make([]byte, 160)
	g711.EncodeUlaw(payload, tone(160, 1000, 8000, 8000, 0))
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 42}, Payload: payload}).Marshal()
	require.NoError(t, err)
	return &inboundFixture{s: s, pkt: b, from: netip.MustParseAddrPort("192.0.2.1:4000")}
}

func (f *inboundFixture) next(now time.Time) {
	f.seq++
	f.ts += 160
	binary.BigEndian.PutUint16(f.pkt[2:], f.seq)
	binary.BigEndian.PutUint32(f.pkt[4:], f.ts)
	f.s.processInbound(f.pkt, f.from, now)
}

// outboundFixture keeps the playout queue topped up with decimated audio.
type outboundFixture struct {
	s     *Stream
	buf   []byte
	audio []int16
}

func newOutboundFixture(t testing.TB) *outboundFixture {
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCM24})
	return &outboundFixture{s: s, buf: make([]byte, 200), audio: tone(8000, 800, 8000, 12000, 0)}
}

func (f *outboundFixture) tick() []byte {
	if f.s.q.n < frameSamples { // refill outside Play: Play is measured on its own
		f.s.qMu.Lock()
		f.s.q.push("item", f.audio)
		f.s.qMu.Unlock()
	}
	return f.s.nextOutboundPacket(f.buf)
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	t.Run("inbound PCMU to PCM24", func(t *testing.T) {
		f := newInboundFixture(t, ModelPCM24)
		defer f.s.conn.Close()
		now := time.Now()
		f.next(now) // latch, first-use setup
		require.Zero(t, testing.AllocsPerRun(500, func() { f.next(now) }))
		require.Equal(t, uint64(502), f.s.Stats().PacketsIn) // + AllocsPerRun's warm-up call
	})
	t.Run("inbound with loss, reorder and DTMF", func(t *testing.T) {
		f := newInboundFixture(t, ModelPCMA)
		defer f.s.conn.Close()
		now := time.Now()
		ev := make([]byte, 4)
		dtmfPkt, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SSRC: 42}, Payload: ev}).Marshal()
		require.NoError(t, err)
		f.next(now)
		i := 0
		require.Zero(t, testing.AllocsPerRun(500, func() {
			i++
			switch i % 10 {
			case 3:
				f.seq++ // a loss, concealed once 3 more packets arrive
			case 8: // the next two packets swapped
				f.seq++
				f.ts += 160
				f.next(now)
				f.seq -= 2
				f.ts -= 320
				f.next(now)
				f.seq++
				f.ts += 160
			case 6:
				// A key press that fits in one end packet.
				f.seq++
				f.ts += 160
				_, _ = dtmf.Payload{Event: uint8(i % 16), End: true, Duration: 160}.Encode(ev)
				copy(dtmfPkt[12:], ev)
				binary.BigEndian.PutUint16(dtmfPkt[2:], f.seq)
				binary.BigEndian.PutUint32(dtmfPkt[4:], f.ts)
				f.s.processInbound(dtmfPkt, f.from, now)
			}
			f.next(now)
			for range len(f.s.events) { // the test plays the event consumer
				<-f.s.events
			}
		}))
		st := f.s.Stats()
		require.Positive(t, st.Concealed)
		require.Zero(t, st.Invalid+st.Late+st.Duplicates)
	})
	t.Run("outbound tick", func(t *testing.T) {
		f := newOutboundFixture(t)
		defer f.s.conn.Close()
		require.Len(t, f.tick(), rtpHeaderLen+frameSamples)
		require.Zero(t, testing.AllocsPerRun(500, func() { f.tick() }))
		require.Len(t, f.tick(), rtpHeaderLen+frameSamples)
	})
	t.Run("outbound send", func(t *testing.T) {
		peer := listen(t)
		defer peer.Close()
		s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, Remote: addrOf(peer)})
		defer s.conn.Close()
		now := time.Now()
		s.sendFrame(now)
		require.Zero(t, testing.AllocsPerRun(100, func() { s.sendFrame(now) }))
		st := s.Stats()
		require.Equal(t, uint64(102), st.PacketsOut+st.WriteErrors) // + AllocsPerRun's warm-up call
	})
	t.Run("silence fill", func(t *testing.T) {
		f := newInboundFixture(t, ModelPCM24)
		defer f.s.conn.Close()
		now := time.Now()
		f.next(now)
		i := 0
		require.Zero(t, testing.AllocsPerRun(100, func() {
			i++
			f.s.fillSilence(now.Add(silenceFillAfter + time.Duration(i)*frameDur))
		}))
		require.Positive(t, f.s.Stats().SilenceFilled)
	})
	t.Run("Play 100 ms of PCM24", func(t *testing.T) {
		s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCM24})
		defer s.conn.Close()
		delta := pcmBytes(tone(2400, 800, 24000, 12000, 0))
		s.Play("item", delta)
		require.Zero(t, testing.AllocsPerRun(500, func() {
			s.Play("item", delta)
			if s.QueuedMs() > 4000 {
				s.Flush()
			}
		}))
	})
	t.Run("outbound frame from G.711 model audio", func(t *testing.T) {
		s := newStream(t, StreamConfig{Codec: CodecPCMA, DTMFPayloadType: -1, ModelFormat: ModelPCMU})
		defer s.conn.Close()
		delta := make([]byte, 800)
		buf := make([]byte, 200)
		s.Play("item", delta)
		s.nextOutboundPacket(buf)
		require.Zero(t, testing.AllocsPerRun(500, func() {
			if s.QueuedMs() < 20 {
				s.Play("item", delta)
			}
			s.nextOutboundPacket(buf)
		}))
	})
	t.Run("Play 100 ms of PCMA", func(t *testing.T) {
		s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMA})
		defer s.conn.Close()
		delta := make([]byte, 800)
		s.Play("item", delta)
		require.Zero(t, testing.AllocsPerRun(500, func() {
			s.Play("item", delta)
			if s.QueuedMs() > 4000 {
				s.Flush()
			}
		}))
	})
}

// BenchmarkInboundFrame: one RTP datagram → parse → jitter → G.711 decode
// → Up3 → PCM16 → sink (PCMU → PCM24).
func BenchmarkInboundFrame(b *testing.B) {
	f := newInboundFixture(b, ModelPCM24)
	defer f.s.conn.Close()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		f.next(now)
	}
}

// BenchmarkOutboundFrame: one pacer tick without the socket: take 20 ms
// from the queue, encode G.711, marshal the header.
func BenchmarkOutboundFrame(b *testing.B) {
	f := newOutboundFixture(b)
	defer f.s.conn.Close()
	b.ReportAllocs()
	for b.Loop() {
		f.tick()
	}
}

// BenchmarkPlay: Play of a 100 ms 24 kHz delta (decode PCM16, Down3,
// enqueue).
func BenchmarkPlay(b *testing.B) {
	s := newStream(b, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCM24})
	defer s.conn.Close()
	delta := pcmBytes(tone(2400, 800, 24000, 12000, 0))
	b.ReportAllocs()
	for b.Loop() {
		s.Play("item", delta)
		if s.q.n > 8000*4 {
			s.Flush()
		}
	}
}

// FuzzProcessInbound feeds arbitrary datagrams to the receive path: no
// panic, each datagram counted exactly once (RTP taken, ignored payload
// type, or invalid), and every frame the sink sees has the model's size.
func FuzzProcessInbound(f *testing.F) {
	good, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 7, SSRC: 1},
		Payload: make([]byte, 160)}).Marshal()
	ev, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 8, SSRC: 1},
		Payload: []byte{1, 0x8A, 0, 160}}).Marshal()
	ext, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, Extension: true, ExtensionProfile: 0xBEDE,
		Extensions: []rtp.Extension{}, SequenceNumber: 9, SSRC: 1, CSRC: []uint32{5}}, Payload: make([]byte, 80)}).Marshal()
	f.Add(good, good)
	f.Add(ev, good)
	f.Add(ext, []byte{0x80})
	f.Add([]byte{0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 2}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		sink := &sizeSink{t: t, size: 960}
		s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: 101, ModelFormat: ModelPCM24, Sink: sink, SymmetricRTP: true})
		defer s.conn.Close()
		now := time.Unix(1000, 0)
		from := netip.MustParseAddrPort("192.0.2.9:5000")
		for i, d := range [][]byte{a, b, a, b} {
			s.processInbound(d, from, now.Add(time.Duration(i)*20*time.Millisecond))
		}
		s.idle(now.Add(time.Second)) // flush the jitter buffer and DTMF
		st := s.Stats()
		require.Equal(t, uint64(4), st.PacketsIn+st.IgnoredPT+st.Invalid)
	})
}

type sizeSink struct {
	t    *testing.T
	size int
}

func (s *sizeSink) WriteCallerAudio(b []byte) { require.Len(s.t, b, s.size) }

// BenchmarkOutboundFrameG711Model: one pacer tick on a PCMU call whose
// model audio is PCMU (the audio_format auto default), with the Play that
// queued it counted per frame: 20 ms taken from the queue, marshalled.
func BenchmarkOutboundFrameG711Model(b *testing.B) {
	s := newStream(b, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU})
	defer s.conn.Close()
	delta := make([]byte, 800) // 100 ms
	for i := range delta {
		delta[i] = byte(i)
	}
	buf := make([]byte, 200)
	b.ReportAllocs()
	for b.Loop() {
		if s.QueuedMs() < 20 {
			s.Play("item", delta)
		}
		s.nextOutboundPacket(buf)
	}
}
