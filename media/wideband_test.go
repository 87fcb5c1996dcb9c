package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/media/g711"
	"github.com/sipbridge/sipbridge/media/g722"
)

var callerAddr = netip.MustParseAddrPort("192.0.2.1:4000")

// g722Packets encodes pcm (16 kHz) as consecutive 20 ms G.722 RTP packets.
func g722Packets(t testing.TB, pcm []int16, seq0 uint16, ts0 uint32) [][]byte {
	enc := g722.NewEncoder()
	var out [][]byte
	for i := 0; (i+1)*320 <= len(pcm); i++ {
		payload := make([]byte, 160)
		enc.Encode(payload, pcm[320*i:320*(i+1)])
		b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 9, SequenceNumber: seq0 + uint16(i),
			Timestamp: ts0 + uint32(160*i), SSRC: 0x5151}, Payload: payload}).Marshal()
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

// A 5 kHz tone (beyond G.711's band) sent as G.722 reaches the model as
// 24 kHz PCM at its level: wideband end to end on the caller side.
func TestG722CallerToModelWideband(t *testing.T) {
	for _, freq := range []float64{1000, 5000, 6500} {
		sink := &frameSink{}
		s := newStream(t, StreamConfig{Codec: CodecG722, DTMFPayloadType: -1, ModelFormat: ModelPCM24, Sink: sink})
		const amp, packets = 8000.0, 60
		now := time.Now()
		for _, p := range g722Packets(t, tone(packets*320, freq, 16000, amp, 0), 10, 0) {
			s.processInbound(p, callerAddr, now)
		}
		s.in.jb.Flush()
		s.drainJitter(now)
		frames := sink.waitFrames(t, packets)
		require.Len(t, frames, packets)
		var out []int16
		for _, f := range frames {
			require.Len(t, f, 960)
			x := make([]int16, 480)
			g711.PCM16LEToInt16(x, f)
			out = append(out, x...)
		}
		win := out[2*480 : 2*480+24000] // 1 s after start-up: whole cycles
		require.Equal(t, freq, dominant(win, 24000, 11000))
		lvl := 20 * math.Log10(amplitude(win, freq, 24000)/amp)
		require.InDelta(t, 0, lvl, 1.0, "%v Hz level through G.722 and Up16To24", freq)
		require.Greater(t, amplitude(win, freq, 24000)/math.Sqrt2/rms(win), 0.95, "%v Hz purity", freq)
		require.Zero(t, s.Stats().IgnoredPT)
		s.conn.Close()
	}
}

// A G.722 call with a G.711 model: 16 → 24 → 8 kHz, μ-law frames.
func TestG722CallerToG711Model(t *testing.T) {
	sink := &frameSink{}
	s := newStream(t, StreamConfig{Codec: CodecG722, DTMFPayloadType: -1, ModelFormat: ModelPCMU, Sink: sink})
	defer s.conn.Close()
	now := time.Now()
	for _, p := range g722Packets(t, tone(60*320, 1000, 16000, 8000, 0), 10, 0) {
		s.processInbound(p, callerAddr, now)
	}
	frames := sink.waitFrames(t, 50)
	var out []int16
	for _, f := range frames[5:45] {
		require.Len(t, f, 160)
		x := make([]int16, 160)
		g711.DecodeUlaw(x, f)
		out = append(out, x...)
	}
	require.Equal(t, 1000.0, dominant(out, 8000, 3900))
	require.InDelta(t, 0, 20*math.Log10(amplitude(out, 1000, 8000)/8000), 1.0)
}

// decodeG722RTP decodes the payloads of packets built by the pacer.
func decodeG722RTP(t testing.TB, pkts [][]byte) []int16 {
	dec := g722.NewDecoder()
	var out []int16
	var lastTS uint32
	for i, b := range pkts {
		var p rtp.Packet
		require.NoError(t, p.Unmarshal(b))
		require.Equal(t, uint8(9), p.PayloadType)
		require.Len(t, p.Payload, 160)
		if i > 0 {
			require.Equal(t, lastTS+160, p.Timestamp, "G.722 RTP clock is 8000: 160 per 20 ms")
		}
		lastTS = p.Timestamp
		pcm := make([]int16, 320)
		dec.Decode(pcm, p.Payload)
		out = append(out, pcm...)
	}
	return out
}

// Model audio (24 kHz PCM, or G.711) played on a G.722 call leaves as
// G.722 carrying the tone at its level, wideband included.
func TestG722ModelToCaller(t *testing.T) {
	for _, tc := range []struct {
		name  string
		model ModelFormat
		freq  float64
		audio func() []byte
	}{
		{"PCM24 5 kHz", ModelPCM24, 5000, func() []byte { return pcmBytes(tone(24000*3/2, 5000, 24000, 8000, 0)) }},
		{"PCM24 1 kHz", ModelPCM24, 1000, func() []byte { return pcmBytes(tone(24000*3/2, 1000, 24000, 8000, 0)) }},
		{"PCMA 1 kHz", ModelPCMA, 1000, func() []byte {
			b := make([]byte, 12000)
			g711.EncodeAlaw(b, tone(12000, 1000, 8000, 8000, 0))
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream(t, StreamConfig{Codec: CodecG722, DTMFPayloadType: -1, ModelFormat: tc.model})
			defer s.conn.Close()
			s.Play("item", tc.audio())
			require.InDelta(t, 1500, s.QueuedMs(), 2)
			var pkts [][]byte
			for range 80 {
				pkts = append(pkts, append([]byte(nil), s.nextOutboundPacket(make([]byte, 200))...))
			}
			out := decodeG722RTP(t, pkts)
			win := out[5*320 : 5*320+16000]
			require.Equal(t, tc.freq, dominant(win, 16000, 7500))
			require.InDelta(t, 0, 20*math.Log10(amplitude(win, tc.freq, 16000)/8000), 1.0)
			require.Equal(t, 1500, s.PlayedMs("item"))
		})
	}
}

func TestStreamCodecConfig(t *testing.T) {
	_, err := NewStream(StreamConfig{Conn: listen(t), Codec: 18, DTMFPayloadType: -1})
	require.ErrorIs(t, err, ErrBadConfig)
	_, err = NewStream(StreamConfig{Conn: listen(t), Codec: CodecG722, DTMFPayloadType: 9})
	require.ErrorIs(t, err, ErrBadConfig)
	_, err = NewStream(StreamConfig{Conn: listen(t), Codec: CodecG722, DTMFPayloadType: 101, DTMFClockRate: 44100})
	require.ErrorIs(t, err, ErrBadConfig)
	require.Equal(t, 16000, CodecG722.SampleRate())
	require.Equal(t, 8000, CodecPCMA.SampleRate())

	// SetRemote keeps the sample rate: G.722 stays, PCMU ↔ PCMA switches.
	s := newStream(t, StreamConfig{Codec: CodecG722, DTMFPayloadType: -1})
	defer s.conn.Close()
	s.SetRemote(callerAddr, CodecPCMU, -1)
	require.Equal(t, uint32(CodecG722), s.codec.Load())
	s2 := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1})
	defer s2.conn.Close()
	s2.SetRemote(callerAddr, CodecG722, 9)
	require.Equal(t, uint32(CodecPCMU), s2.codec.Load())
	require.Equal(t, int32(-1), s2.dtmfPT.Load())
	s2.SetRemote(callerAddr, CodecPCMA, -1)
	require.Equal(t, uint32(CodecPCMA), s2.codec.Load())
}

// telephone-event/16000 on a G.722 call reports durations in ms.
func TestDTMFClock16k(t *testing.T) {
	s := newStream(t, StreamConfig{Codec: CodecG722, DTMFPayloadType: 101, DTMFClockRate: 16000})
	defer s.conn.Close()
	now := time.Now()
	for i, d := range []uint16{1600, 3200, 3200} { // 200 ms at 16 kHz, end sent 3 times
		b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: uint16(i), Timestamp: 1000, SSRC: 1},
			Payload: []byte{5, map[bool]byte{true: 0x80, false: 0}[i > 0] | 10, byte(d >> 8), byte(d)}}).Marshal()
		require.NoError(t, err)
		s.processInbound(b, callerAddr, now)
	}
	ev := waitEvent(t, s, EventDTMF)
	require.Equal(t, '5', ev.Digit)
	require.Equal(t, 200, ev.DurationMs)
}

// --- SRTP ---

func testKeys(seed byte) []byte { return bytes.Repeat([]byte{seed}, 30) }

// srtpPeer is the caller's side of an SRTP session with a stream whose
// LocalKey is peerRemote and RemoteKey is peerLocal.
type srtpPeer struct {
	enc, dec *srtp.Context
}

func newSRTPPeer(t testing.TB, profile srtp.ProtectionProfile, local, remote []byte) *srtpPeer {
	kl, _ := profile.KeyLen()
	enc, err := srtp.CreateContext(local[:kl], local[kl:], profile)
	require.NoError(t, err)
	dec, err := srtp.CreateContext(remote[:kl], remote[kl:], profile, srtp.SRTPReplayProtection(64))
	require.NoError(t, err)
	return &srtpPeer{enc: enc, dec: dec}
}

func (p *srtpPeer) seal(t testing.TB, clear []byte) []byte {
	b, err := p.enc.EncryptRTP(nil, clear, nil)
	require.NoError(t, err)
	return b
}

// SRTP both ways for each suite: the caller's protected packets play, the
// stream's packets decrypt at the caller and carry no clear payload;
// replays, tampering and clear RTP are dropped and counted, never played.
func TestSRTPRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		suite   string
		profile srtp.ProtectionProfile
		keyLen  int
	}{
		{SuiteAES128CMSHA1_80, srtp.ProtectionProfileAes128CmHmacSha1_80, 30},
		{SuiteAES128CMSHA1_32, srtp.ProtectionProfileAes128CmHmacSha1_32, 30},
		{SuiteAES256CMSHA1_80, srtp.ProtectionProfileAes256CmHmacSha1_80, 46},
		{SuiteAEADAES128GCM, srtp.ProtectionProfileAeadAes128Gcm, 28},
		{SuiteAEADAES256GCM, srtp.ProtectionProfileAeadAes256Gcm, 44},
	} {
		t.Run(tc.suite, func(t *testing.T) {
			ours, theirs := bytes.Repeat([]byte{1}, tc.keyLen), bytes.Repeat([]byte{2}, tc.keyLen)
			sink := &frameSink{}
			failures := map[bool]int{}
			s := newStream(t, StreamConfig{Codec: CodecG722, DTMFPayloadType: -1, ModelFormat: ModelPCM24, Sink: sink,
				SRTP: &SRTPConfig{Suite: tc.suite, LocalKey: ours, RemoteKey: theirs}, SymmetricRTP: true, Remote: callerAddr,
				OnSRTPFailure: func(replay bool) { failures[replay]++ }})
			defer s.conn.Close()
			peer := newSRTPPeer(t, tc.profile, theirs, ours)
			now := time.Now()

			clear := g722Packets(t, tone(12*320, 1000, 16000, 8000, 0), 100, 0)
			var sealed [][]byte
			for _, p := range clear {
				sealed = append(sealed, peer.seal(t, p))
			}
			require.NotContains(t, string(sealed[3]), string(clear[3][12:40]), "payload is encrypted")
			for _, p := range sealed[:10] {
				s.processInbound(p, callerAddr, now)
			}
			require.Equal(t, uint64(10), s.Stats().PacketsIn)

			// Replay, tamper, clear RTP, garbage: all dropped.
			s.processInbound(sealed[4], callerAddr, now)
			bad := append([]byte(nil), sealed[10]...)
			bad[20] ^= 1
			s.processInbound(bad, callerAddr, now)
			s.processInbound(clear[11], netip.MustParseAddrPort("203.0.113.9:9"), now)
			s.processInbound([]byte{0x80, 0, 0}, callerAddr, now)
			s.processInbound([]byte{0x81, 200, 0, 6, 0, 0, 0x51, 0x51, 1, 2, 3, 4}, callerAddr, now) // an SRTCP SR
			st := s.Stats()
			require.Equal(t, uint64(1), st.IgnoredPT, "RTCP on the RTP port is ignored, not an SRTP failure")
			require.Equal(t, uint64(10), st.PacketsIn, "nothing dropped was played")
			require.Equal(t, uint64(1), st.SRTPReplayed)
			require.Equal(t, uint64(3), st.SRTPAuthFailed)
			require.Equal(t, map[bool]int{true: 1, false: 3}, failures)
			require.Zero(t, st.Latches, "a forged packet never moves latching")

			// The untampered packet still plays afterwards.
			s.processInbound(sealed[10], callerAddr, now)
			require.Equal(t, uint64(11), s.Stats().PacketsIn)

			// Outbound: encrypted, authenticated, decryptable by the caller.
			s.Play("item", pcmBytes(tone(4800, 1000, 24000, 8000, 0)))
			for range 5 {
				pkt := s.nextOutboundPacket(make([]byte, 200))
				plain := append([]byte(nil), pkt...)
				wire, ok := s.protect(make([]byte, 0, 300), pkt)
				require.True(t, ok)
				require.Greater(t, len(wire), len(plain))
				require.NotContains(t, string(wire), string(plain[12:60]))
				got, err := peer.dec.DecryptRTP(nil, wire, nil)
				require.NoError(t, err)
				require.Equal(t, plain, got)
			}
		})
	}
}

// Re-keying (re-INVITE): packets still under the old key play until the
// caller's first packet under the new key; the pacer switches at once and
// carries its rollover counter across a sequence wrap.
func TestSRTPRekey(t *testing.T) {
	p80 := srtp.ProtectionProfileAes128CmHmacSha1_80
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU, Sink: &frameSink{},
		SRTP: &SRTPConfig{Suite: SuiteAES128CMSHA1_80, LocalKey: testKeys(1), RemoteKey: testKeys(2)}})
	defer s.conn.Close()
	now := time.Now()
	oldPeer := newSRTPPeer(t, p80, testKeys(2), testKeys(1))
	pkt := func(seq uint16) []byte {
		b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 77},
			Payload: make([]byte, 160)}).Marshal()
		require.NoError(t, err)
		return b
	}
	// Our sequence wraps before the re-key: ROC 1 from then on.
	s.out.hdr.SequenceNumber = 65533
	for range 5 {
		_, ok := s.protect(nil, s.nextOutboundPacket(make([]byte, 200)))
		require.True(t, ok)
	}
	s.processInbound(oldPeer.seal(t, pkt(1)), callerAddr, now)

	require.NoError(t, s.Rekey(SRTPConfig{Suite: SuiteAES128CMSHA1_80, LocalKey: testKeys(3), RemoteKey: testKeys(4)}))
	newPeer := newSRTPPeer(t, p80, testKeys(4), testKeys(3))
	s.processInbound(oldPeer.seal(t, pkt(2)), callerAddr, now) // in flight: still plays
	s.processInbound(newPeer.seal(t, pkt(3)), callerAddr, now) // the caller switched
	s.processInbound(oldPeer.seal(t, pkt(4)), callerAddr, now) // old key no longer accepted
	st := s.Stats()
	require.Equal(t, uint64(3), st.PacketsIn)
	require.Equal(t, uint64(1), st.SRTPAuthFailed)

	// Our next packet uses the new key with ROC 1: a receiver that knows
	// the ROC decrypts it; one that assumes ROC 0 cannot.
	wire, ok := s.protect(nil, s.nextOutboundPacket(make([]byte, 200)))
	require.True(t, ok)
	var h rtp.Header
	_, err := h.Unmarshal(wire)
	require.NoError(t, err)
	require.Equal(t, uint16(2), h.SequenceNumber)
	withROC := newSRTPPeer(t, p80, testKeys(4), testKeys(3))
	withROC.dec.SetROC(h.SSRC, 1)
	_, err = withROC.dec.DecryptRTP(nil, wire, nil)
	require.NoError(t, err)
	noROC := newSRTPPeer(t, p80, testKeys(4), testKeys(3))
	_, err = noROC.dec.DecryptRTP(nil, wire, nil)
	require.Error(t, err)
	_, err = oldPeer.dec.DecryptRTP(nil, wire, nil)
	require.Error(t, err, "not under the old key")

	// Bad keys and clear streams are refused.
	require.ErrorIs(t, s.Rekey(SRTPConfig{Suite: "NOPE", LocalKey: testKeys(3), RemoteKey: testKeys(4)}), ErrBadConfig)
	clear := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1})
	defer clear.conn.Close()
	require.ErrorIs(t, clear.Rekey(SRTPConfig{Suite: SuiteAES128CMSHA1_80, LocalKey: testKeys(3), RemoteKey: testKeys(4)}), ErrBadConfig)
}

func TestSRTPConfigErrors(t *testing.T) {
	for _, c := range []SRTPConfig{
		{Suite: "F8_128_HMAC_SHA1_80", LocalKey: testKeys(1), RemoteKey: testKeys(2)},
		{Suite: SuiteAES128CMSHA1_80, LocalKey: testKeys(1)[:29], RemoteKey: testKeys(2)},
		{Suite: SuiteAES128CMSHA1_80, LocalKey: testKeys(1), RemoteKey: nil},
	} {
		_, err := NewStream(StreamConfig{Conn: listen(t), Codec: CodecPCMU, DTMFPayloadType: -1, SRTP: &c})
		require.ErrorIs(t, err, ErrBadConfig)
		require.NotContains(t, err.Error(), string(testKeys(1)))
	}
	require.NotContains(t, SRTPConfig{Suite: SuiteAES128CMSHA1_80, LocalKey: []byte("secretkey")}.String(), "secret")
}

// An SRTP stream sends only SRTP on the wire, through the real socket.
func TestSRTPOnTheWire(t *testing.T) {
	peerConn := listen(t)
	defer peerConn.Close()
	s := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, Remote: addrOf(peerConn),
		SRTP: &SRTPConfig{Suite: SuiteAES128CMSHA1_80, LocalKey: testKeys(1), RemoteKey: testKeys(2)}}))
	peer := newSRTPPeer(t, srtp.ProtectionProfileAes128CmHmacSha1_80, testKeys(2), testKeys(1))
	buf := make([]byte, 1500)
	_ = peerConn.SetReadDeadline(time.Now().Add(wait))
	for range 5 {
		n, err := peerConn.Read(buf)
		require.NoError(t, err)
		require.Equal(t, rtpHeaderLen+frameSamples+10, n, "RTP + 10-byte HMAC tag")
		_, err = peer.dec.DecryptRTP(nil, buf[:n], nil)
		require.NoError(t, err)
	}
	_ = s
}

// --- allocation and cost of the new per-frame paths ---

type srtpInboundFixture struct {
	s      *Stream
	peer   *srtpPeer
	clear  []byte
	sealed []byte
	hdr    rtp.Header
	seq    uint16
	ts     uint32
}

func newSRTPInboundFixture(t testing.TB, codec Codec, withSRTP bool) *srtpInboundFixture {
	cfg := StreamConfig{Codec: codec, DTMFPayloadType: -1, ModelFormat: ModelPCM24, Sink: &copySink{}, SymmetricRTP: true}
	if withSRTP {
		cfg.SRTP = &SRTPConfig{Suite: SuiteAES128CMSHA1_80, LocalKey: testKeys(1), RemoteKey: testKeys(2)}
	}
	s := newStream(t, cfg)
	payload := make([]byte, 160)
	if codec == CodecG722 {
		g722.NewEncoder().Encode(payload, tone(320, 1000, 16000, 8000, 0))
	} else {
		g711.EncodeUlaw(payload, tone(160, 1000, 8000, 8000, 0))
	}
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: uint8(codec), SSRC: 42}, Payload: payload}).Marshal()
	require.NoError(t, err)
	return &srtpInboundFixture{s: s, peer: newSRTPPeer(t, srtp.ProtectionProfileAes128CmHmacSha1_80, testKeys(2), testKeys(1)),
		clear: b, sealed: make([]byte, 0, 256)}
}

// next sends the next packet; sealing (the caller's work) is not measured
// apart from the stream's own when withSRTP.
func (f *srtpInboundFixture) next(now time.Time) {
	f.seq++
	f.ts += 160
	binary.BigEndian.PutUint16(f.clear[2:], f.seq)
	binary.BigEndian.PutUint32(f.clear[4:], f.ts)
	b := f.clear
	if f.s.srtpKeys.Load() != nil {
		b, _ = f.peer.enc.EncryptRTP(f.sealed[:0], f.clear, &f.hdr)
	}
	f.s.processInbound(b, callerAddr, now)
}

func TestWidebandSRTPHotPathsDoNotAllocate(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name  string
		codec Codec
		srtp  bool
	}{{"G722", CodecG722, false}, {"G722+SRTP", CodecG722, true}, {"PCMU+SRTP", CodecPCMU, true}} {
		t.Run("inbound "+tc.name, func(t *testing.T) {
			f := newSRTPInboundFixture(t, tc.codec, tc.srtp)
			defer f.s.conn.Close()
			f.next(now)
			allocs := testing.AllocsPerRun(300, func() { f.next(now) })
			require.Equal(t, uint64(302), f.s.Stats().PacketsIn)
			if tc.srtp && raceEnabled {
				t.Skipf("%v allocs/op under -race (sync.Pool); run without -race to check", allocs)
			}
			require.Zero(t, allocs)
		})
		t.Run("outbound "+tc.name, func(t *testing.T) {
			cfg := StreamConfig{Codec: tc.codec, DTMFPayloadType: -1, ModelFormat: ModelPCM24}
			if tc.srtp {
				cfg.SRTP = &SRTPConfig{Suite: SuiteAES128CMSHA1_80, LocalKey: testKeys(1), RemoteKey: testKeys(2)}
			}
			s := newStream(t, cfg)
			defer s.conn.Close()
			audio := tone(16000, 800, float64(s.rate), 12000, 0)
			tick := func() {
				if s.q.n < s.frameLen {
					s.qMu.Lock()
					s.q.push("item", audio)
					s.qMu.Unlock()
				}
				_, ok := s.protect(s.out.wire[:0], s.nextOutboundPacket(s.out.pkt[:]))
				require.True(t, ok)
			}
			tick()
			allocs := testing.AllocsPerRun(300, tick)
			if tc.srtp && raceEnabled {
				t.Skipf("%v allocs/op under -race (sync.Pool); run without -race to check", allocs)
			}
			require.Zero(t, allocs)
		})
	}
	t.Run("Play PCM24 on G722", func(t *testing.T) {
		s := newStream(t, StreamConfig{Codec: CodecG722, DTMFPayloadType: -1, ModelFormat: ModelPCM24})
		defer s.conn.Close()
		delta := pcmBytes(tone(2400, 800, 24000, 12000, 0))
		s.Play("item", delta)
		require.Zero(t, testing.AllocsPerRun(300, func() {
			s.Play("item", delta)
			if s.QueuedMs() > 4000 {
				s.Flush()
			}
		}))
	})
}

// BenchmarkInboundFrameG722: datagram → G.722 decode → Up16To24 → sink.
func BenchmarkInboundFrameG722(b *testing.B) { benchInbound(b, CodecG722, false) }

// BenchmarkInboundFrameG722SRTP: the same behind SRTP unprotect (the
// caller's EncryptRTP is inside the loop too; see BenchmarkSRTP*).
func BenchmarkInboundFrameG722SRTP(b *testing.B) { benchInbound(b, CodecG722, true) }

func benchInbound(b *testing.B, codec Codec, withSRTP bool) {
	f := newSRTPInboundFixture(b, codec, withSRTP)
	defer f.s.conn.Close()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		f.next(now)
	}
}

// BenchmarkOutboundFrameG722SRTP: one pacer tick: queue → G.722 encode →
// header → SRTP protect.
func BenchmarkOutboundFrameG722SRTP(b *testing.B) {
	s := newStream(b, StreamConfig{Codec: CodecG722, DTMFPayloadType: -1, ModelFormat: ModelPCM24,
		SRTP: &SRTPConfig{Suite: SuiteAES128CMSHA1_80, LocalKey: testKeys(1), RemoteKey: testKeys(2)}})
	defer s.conn.Close()
	audio := tone(16000, 800, 16000, 12000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if s.q.n < s.frameLen {
			s.qMu.Lock()
			s.q.push("item", audio)
			s.qMu.Unlock()
		}
		s.protect(s.out.wire[:0], s.nextOutboundPacket(s.out.pkt[:]))
	}
}

// BenchmarkSRTPProtect / Unprotect: SRTP alone on one 172-byte RTP packet
// (20 ms of G.711 or G.722), per suite.
func BenchmarkSRTPProtect(b *testing.B) {
	for _, suite := range []string{SuiteAES128CMSHA1_80, SuiteAES128CMSHA1_32, SuiteAEADAES128GCM} {
		b.Run(suite, func(b *testing.B) {
			key := testKeys(1)[:srtpKeyLen(b, suite)]
			k, err := newSRTPKeys(SRTPConfig{Suite: suite, LocalKey: key, RemoteKey: key})
			require.NoError(b, err)
			pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
			dst := make([]byte, 0, 256)
			var h rtp.Header
			b.ReportAllocs()
			for b.Loop() {
				binary.BigEndian.PutUint16(pkt[2:], binary.BigEndian.Uint16(pkt[2:])+1)
				_, _ = k.enc.EncryptRTP(dst, pkt, &h)
			}
		})
	}
}

func BenchmarkSRTPUnprotect(b *testing.B) {
	for _, suite := range []string{SuiteAES128CMSHA1_80, SuiteAES128CMSHA1_32, SuiteAEADAES128GCM} {
		b.Run(suite, func(b *testing.B) {
			key := testKeys(1)[:srtpKeyLen(b, suite)]
			k, err := newSRTPKeys(SRTPConfig{Suite: suite, LocalKey: key, RemoteKey: key})
			require.NoError(b, err)
			// Pre-seal enough distinct packets (the replay window refuses repeats).
			const n = 1 << 16
			sealed := make([][]byte, 0, 4096)
			pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
			for i := range 4096 {
				binary.BigEndian.PutUint16(pkt[2:], uint16(i))
				c, err := k.enc.EncryptRTP(nil, pkt, nil)
				require.NoError(b, err)
				sealed = append(sealed, c)
			}
			_ = n
			dst := make([]byte, 0, 256)
			var h rtp.Header
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if i == len(sealed) { // new context: the window would refuse a second pass
					b.StopTimer()
					k, _ = newSRTPKeys(SRTPConfig{Suite: suite, LocalKey: key, RemoteKey: key})
					i = 0
					b.StartTimer()
				}
				if _, err := k.dec.DecryptRTP(dst, sealed[i], &h); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func srtpKeyLen(t testing.TB, suite string) int {
	p, err := srtpProfile(suite)
	require.NoError(t, err)
	kl, _ := p.KeyLen()
	sl, _ := p.SaltLen()
	return kl + sl
}

// FuzzProcessInboundSRTP: arbitrary datagrams (and arbitrary plaintexts
// sealed under the right key) into an SRTP G.722 stream: no panic, each
// datagram counted exactly once, frames always 20 ms at 24 kHz.
func FuzzProcessInboundSRTP(f *testing.F) {
	good, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 9, SequenceNumber: 7, SSRC: 1},
		Payload: make([]byte, 160)}).Marshal()
	f.Add(good, good, true)
	f.Add(good, []byte{0x80, 9, 0, 1}, false)
	f.Add([]byte{0x80, 101, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x8A, 0, 160}, good, true)
	f.Fuzz(func(t *testing.T, a, b []byte, sealA bool) {
		s := newStream(t, StreamConfig{Codec: CodecG722, DTMFPayloadType: 101, ModelFormat: ModelPCM24,
			Sink: &sizeSink{t: t, size: 960}, SymmetricRTP: true,
			SRTP: &SRTPConfig{Suite: SuiteAES128CMSHA1_32, LocalKey: testKeys(1), RemoteKey: testKeys(2)}})
		defer s.conn.Close()
		enc, err := srtp.CreateContext(testKeys(2)[:16], testKeys(2)[16:], srtp.ProtectionProfileAes128CmHmacSha1_32)
		require.NoError(t, err)
		if sealA {
			if c, err := enc.EncryptRTP(nil, a, nil); err == nil {
				a = c
			}
		}
		now := time.Unix(1000, 0)
		for i, d := range [][]byte{a, b, a, b} {
			s.processInbound(d, callerAddr, now.Add(time.Duration(i)*20*time.Millisecond))
		}
		s.idle(now.Add(time.Second))
		st := s.Stats()
		require.Equal(t, uint64(4), st.PacketsIn+st.IgnoredPT+st.Invalid+st.SRTPAuthFailed+st.SRTPReplayed)
	})
}

// Two streams talk G.722 over SRTP through real sockets: a 5 kHz tone
// played on one is heard by the other's sink at 24 kHz, at its level.
func TestG722SRTPStreamToStream(t *testing.T) {
	connA, connB := listen(t), listen(t)
	k1, k2 := testKeys(7), testKeys(8)
	sinkB := &frameSink{}
	a := start(t, newStream(t, StreamConfig{Conn: connA, Remote: addrOf(connB), Codec: CodecG722, DTMFPayloadType: -1,
		ModelFormat: ModelPCM24, SRTP: &SRTPConfig{Suite: SuiteAEADAES128GCM, LocalKey: k1[:28], RemoteKey: k2[:28]}}))
	b := start(t, newStream(t, StreamConfig{Conn: connB, Remote: addrOf(connA), Codec: CodecG722, DTMFPayloadType: -1,
		ModelFormat: ModelPCM24, Sink: sinkB, SRTP: &SRTPConfig{Suite: SuiteAEADAES128GCM, LocalKey: k2[:28], RemoteKey: k1[:28]}}))
	const amp = 8000.0
	a.Play("greeting", pcmBytes(tone(24000, 5000, 24000, amp, 0))) // 1 s
	done := waitEvent(t, a.Stream, EventPlayoutDone)
	require.Equal(t, "greeting", done.ItemID)
	require.Equal(t, 1000, done.PlayedMs)
	// Count the frames carrying the tone at level (comfort noise precedes
	// and follows them); the first and last may straddle its edges.
	hits := func() int {
		sinkB.mu.Lock()
		defer sinkB.mu.Unlock()
		n := 0
		for _, f := range sinkB.frames {
			x := make([]int16, 480)
			g711.PCM16LEToInt16(x, f)
			if lvl := 20 * math.Log10(amplitude(x, 5000, 24000)/amp); lvl > -1 && lvl < 1 {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return hits() >= 48 }, wait, 10*time.Millisecond, "tone frames heard: %d", hits())
	require.Zero(t, b.Stats().SRTPAuthFailed+b.Stats().SRTPReplayed)
	require.Zero(t, a.Stats().SRTPProtectFailed)
}
