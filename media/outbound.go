package media

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/sipbridge/sipbridge/media/g711"
	"github.com/sipbridge/sipbridge/media/g722"
)

// minNoisePeak is the smallest comfort-noise peak that G.711 does not
// encode as silence.
const minNoisePeak = 8

// outbound is the pacing state of a stream; only the shared clock shard
// driving the stream touches it (one goroutine at a time, under its lock).
type outbound struct {
	hdr  rtp.Header
	pcm  [maxFrameSamples]int16
	pkt  [rtpHeaderLen + frameSamples]byte
	law  [frameSamples]byte                                  // a frame of the model's G.711 (Stream.lawQ)
	wire [rtpHeaderLen + frameSamples + maxSRTPOverhead]byte // the SRTP packet

	g722    *g722.Encoder // G.722 calls only
	keys    *srtpKeys     // SRTP keys in use (see protect)
	sealHdr rtp.Header    // scratch for the SRTP library

	// started: the first packet has been built (it carries the marker).
	started bool
	// idle: the last frame had no queued audio, so the next one with audio
	// starts a talk-spurt.
	idle bool
	// gap: time passed without packets (hold, a stall skipped): the next
	// packet carries the marker so the receiver resynchronises its playout.
	gap bool

	rng      uint64 // xorshift64 state for comfort noise, never 0
	noiseAmp int32  // peak of the uniform comfort noise

	writeLog logLimiter
	snd      rawSender // the non-blocking send path (clock_send_*.go)
}

// init prepares the sender; wideband (a G.722 call, fixed for the stream's
// life) makes the G.722 encoder, which a G.711 call does not hold.
func (o *outbound) init(noiseDB float64, wideband bool) {
	o.hdr = randomHeader(0)
	if wideband {
		o.g722 = g722.NewEncoder()
	}
	o.rng = rand.Uint64() | 1
	// 0 dBov is a full-scale sine (RMS 32767/√2, ITU-T G.711 convention).
	// Uniform noise on [−A, A] has RMS A/√3.
	// The peak is at least minNoisePeak: below that μ-law encodes every
	// sample as zero (|x| < 4 → 0xFF/0x7F), so very low settings are raised
	// to about −74 dBov rather than becoming digital silence.
	rmsLevel := 32767 / math.Sqrt2 * math.Pow(10, noiseDB/20)
	o.noiseAmp = int32(max(minNoisePeak, math.Round(rmsLevel*math.Sqrt(3))))
	o.writeLog.every = logEvery
}

// noise fills x with comfort noise: never digital silence, which some
// gateways and listeners take for a dead line (and which stops some
// carriers' media-inactivity timers from seeing us as alive).
func (o *outbound) noise(x []int16) {
	a := o.noiseAmp
	for i := range x {
		o.rng ^= o.rng << 13
		o.rng ^= o.rng >> 7
		o.rng ^= o.rng << 17
		// Top 16 bits scaled onto [0, 2a], shifted to [−a, a].
		x[i] = int16(int32((o.rng>>48)*uint64(2*a+1)>>16) - a)
	}
}

// sendFrame sends this tick's packet (or, on hold or without an address,
// only lets RTP time advance) and reports whether it tried to send. The
// shared clock calls it (clock.go).
func (s *Stream) sendFrame(now time.Time) bool {
	remote := s.remote.Load()
	if !s.sending.Load() || remote == nil || !remote.IsValid() {
		s.out.hdr.Timestamp += frameSamples
		s.out.gap = true
		return false
	}
	pkt, ok := s.protect(s.out.wire[:0], s.nextOutboundPacket(s.out.pkt[:]))
	if !ok {
		return false // never clear RTP on an SRTP call; counted in protect
	}
	// The send never blocks the shared clock: a full socket buffer (a dead
	// interface) fails it at once and the packet is lost like any other
	// UDP loss (see sendTo).
	if err := s.sendTo(pkt, *remote); err != nil {
		s.stats.writeErrors.Add(1)
		if ok, n := s.out.writeLog.allow(now); ok {
			s.log.Warn("media: rtp send failed", "remote", *remote, "error", err, "suppressed", n)
		}
		return true
	}
	s.stats.packetsOut.Add(1)
	return true
}

// nextOutboundPacket builds the next 20 ms RTP packet into buf (at least
// 172 bytes) and returns it: queued audio, or comfort noise when nothing is
// queued. It advances the sequence number and timestamp. This is the
// per-frame hot path of the pacer and does not allocate.
func (s *Stream) nextOutboundPacket(buf []byte) []byte {
	o := &s.out
	pcm := o.pcm[:s.frameLen]
	var (
		k       int
		flushed bool
	)
	s.qMu.Lock()
	if s.lawQ {
		k, flushed = s.qLaw.take(o.law[:])
	} else {
		k, flushed = s.q.take(pcm)
	}
	s.qMu.Unlock()
	if flushed {
		o.idle = true
	}
	if k < len(pcm) {
		o.noise(pcm[k:]) // pad the tail of the last frame of a spurt too
	}
	// RFC 3551 §4.1: the marker is set on the first packet of a talk-spurt
	// (and we also set it on the very first packet and after a gap in
	// transmission), and is zero otherwise. pion's Packetizer would set it on
	// every packet (pion/rtp #69), hence the hand-kept header.
	o.hdr.Marker = !o.started || o.gap || (k > 0 && o.idle)
	o.started, o.gap, o.idle = true, false, k == 0

	codec := Codec(s.codec.Load())
	o.hdr.PayloadType = uint8(codec)
	n, err := o.hdr.MarshalTo(buf)
	if err != nil || len(buf) < n+frameSamples {
		return nil // buf too short: a programming error, never with out.pkt
	}
	switch {
	case codec == CodecG722:
		n += o.g722.Encode(buf[n:], pcm) // 320 samples → 160 bytes
	case s.lawQ:
		// The model's G.711 in the call's law (a re-INVITE may have
		// switched PCMU ↔ PCMA): the bytes decoding it and encoding the
		// samples would give, by one table lookup each.
		t := lawTranscode(s.cfg.ModelFormat.law(), codec.law())
		for i, b := range o.law[:k] {
			buf[n+i] = t[b]
		}
		codec.law().Encode(buf[n+k:n+frameSamples], pcm[k:])
		n += frameSamples
	default:
		n += codec.law().Encode(buf[n:], pcm)
	}
	o.hdr.SequenceNumber++
	o.hdr.Timestamp += frameSamples // RTP clock ticks: 8000 Hz for G.722 too
	return buf[:n]
}

// lawTables[from][to] maps a G.711 byte of law from to the byte of law to
// that encodes the same sample (from == to: the byte itself, but μ-law's
// negative zero 0x7F becomes 0xFF, as decoding and encoding it does).
var lawTables = sync.OnceValue(func() *[2][2][256]byte {
	t := new([2][2][256]byte)
	var pcm [256]int16
	var in [256]byte
	for i := range in {
		in[i] = byte(i)
	}
	for from, fl := range []g711.Law{g711.Ulaw, g711.Alaw} {
		fl.Decode(pcm[:], in[:])
		for to, tl := range []g711.Law{g711.Ulaw, g711.Alaw} {
			tl.Encode(t[from][to][:], pcm[:])
		}
	}
	return t
})

// lawTranscode is the table from law from to law to.
func lawTranscode(from, to g711.Law) *[256]byte {
	i, j := 0, 0
	if from == g711.Alaw {
		i = 1
	}
	if to == g711.Alaw {
		j = 1
	}
	return &lawTables()[i][j]
}
