package media

import (
	"net/netip"
	"time"

	"github.com/pion/rtp"
	"github.com/sipbridge/sipbridge/media/dtmf"
	"github.com/sipbridge/sipbridge/media/g711"
	"github.com/sipbridge/sipbridge/media/g722"
	"github.com/sipbridge/sipbridge/media/jitter"
	"github.com/sipbridge/sipbridge/media/resample"
)

// inbound is the receive state of a stream; only the goroutine receiving
// its RTP touches it (see the Stream doc: a clock shard on Linux).
type inbound struct {
	plain   [readBufSize]byte // decrypted SRTP
	srtpHdr rtp.Header        // scratch for the SRTP library
	pkt     rtp.Packet        // reused: Unmarshal parses in place, Payload aliases buf
	jb      *jitter.Buffer
	det     dtmf.Detector
	presses []dtmf.Press
	up      resample.Up3      // 8 → 24 kHz
	up16    resample.Up16To24 // 16 → 24 kHz (G.722)
	down    resample.Down3    // 24 → 8 kHz (G.722 call, G.711 model)
	g722    *g722.Decoder     // G.722 calls only

	// keys/prevKeys: the SRTP keys in use and, after a re-key, the old ones
	// (see unprotect); lastSSRC is the caller's SSRC for the ROC carry-over.
	keys, prevKeys *srtpKeys
	lastSSRC       uint32
	ssrcKnown      bool

	acc  [maxFrameSamples]int16 // samples of the frame being assembled, at the codec's rate
	accN int
	pcm  [maxPacketPCM]int16 // concealment scratch
	last [maxPacketPCM]int16 // last good packet: decoded here, kept for concealment
	// lastN is the length of the last good packet in samples: one lost packet
	// is concealed with that much audio, so 30 ms ptime stays in step.
	lastN   int
	lossRun int // consecutive lost packets

	lastPacket time.Time // arrival of the last valid RTP packet
	// fillNext is when the next silence frame is due while the caller sends
	// no RTP (zero when not filling); see fillSilence.
	fillNext time.Time

	latch latchRule // whose RTP is the caller's
	// arrival is the kernel's receive time of the packet being processed
	// (SO_TIMESTAMPNS, recv_linux.go), zero where there is none. The latch
	// rule judges whether the latched source has gone quiet by it: a shard
	// drains a flood's backlog over many ticks, and by processing time the
	// caller's packets queued behind it would look a second late.
	arrival time.Time

	frame24 [3 * frameSamples]int16
	frame8  [frameSamples + 1]int16

	// chunk assembles the uplink chunk in the model format: chunkN bytes
	// of chunkFrames frames so far (Stream.chunkFrames make one). It is
	// allocated once, at NewStream.
	chunk       []byte
	chunkN      int
	chunkFrames int
	// quiet: the caller has sent no RTP for flushAfter and the partial
	// chunk went out then; cleared by the next packet.
	quiet bool

	badLog, latchLog logLimiter
}

// chunkSlack is room per frame in the chunk buffer beyond the model
// format's frame size: the 16 → 24 → 8 kHz path may yield a sample more.
const chunkSlack = 2

func (in *inbound) init(jb *jitter.Buffer, dtmfClock, chunkBytes int) {
	in.jb = jb
	in.chunk = make([]byte, chunkBytes)
	in.det.ClockRate = dtmfClock
	in.g722 = g722.NewDecoder()
	in.presses = make([]dtmf.Press, 0, 2)
	in.lastN = frameSamples
	in.badLog.every, in.latchLog.every = logEvery, logEvery
}

// nextFill is when the next silence frame is due, if the caller has gone
// quiet on the wire.
func (s *Stream) nextFill() (time.Time, bool) {
	in := &s.in
	if in.lastPacket.IsZero() {
		return time.Time{}, false // nothing heard yet: nothing to keep going
	}
	start := in.lastPacket.Add(silenceFillAfter)
	if in.fillNext.After(start) {
		return in.fillNext, true
	}
	return start, true
}

// fillSilence keeps the model's audio clock running while the caller sends
// no RTP: phones with silence suppression (RFC 3551 §4.1, comfort noise or
// nothing at all between talk-spurts) and SIPp after its capture ends go
// quiet on the wire, and a server VAD that receives no audio never sees the
// silence that ends the caller's turn, so the answer would never come. Each
// 20 ms without RTP after silenceFillAfter becomes one frame of silence.
func (s *Stream) fillSilence(now time.Time) {
	next, ok := s.nextFill()
	if !ok {
		return
	}
	for i := 0; !now.Before(next) && i < maxFillBurst; i++ {
		s.pushCallerAudio(silenceFrame[:s.frameLen])
		s.stats.silenceFilled.Add(1)
		next = next.Add(frameDur)
	}
	if now.Sub(next) > frameDur*time.Duration(maxFillBurst) {
		next = now // the reader was stalled: do not burst the backlog
	}
	s.in.fillNext = next
}

// silenceFrame is 20 ms of digital silence at up to 16 kHz.
var silenceFrame [maxFrameSamples]int16

// timeoutAt is when the media timeout fires, if it is armed: not while on
// hold, and counted from the later of the last packet and the last resume.
func (s *Stream) timeoutAt() (time.Time, bool) {
	if s.cfg.MediaTimeout <= 0 || !s.sending.Load() {
		return time.Time{}, false
	}
	base := s.epoch.Add(time.Duration(s.resumeAt.Load()))
	if s.in.lastPacket.After(base) {
		base = s.in.lastPacket
	}
	return base.Add(s.cfg.MediaTimeout), true
}

func (s *Stream) checkTimeout(now time.Time) error {
	if t, ok := s.timeoutAt(); ok && !now.Before(t) {
		return ErrMediaTimeout // the call logs it with its end reason
	}
	return nil
}

// idle does the timed receive work (each clock tick on Linux, when a read
// times out elsewhere): release the jitter buffer after flushAfter of
// silence, report a DTMF event whose end was lost, deliver the partial
// uplink chunk once the caller has gone quiet or while on hold, and keep
// the model's audio clock running with silence (fillSilence).
func (s *Stream) idle(now time.Time) {
	in := &s.in
	quiet := !in.lastPacket.IsZero() && now.Sub(in.lastPacket) >= flushAfter
	if in.jb.Pending() > 0 && quiet {
		in.jb.Flush()
		s.drainJitter(now)
	}
	s.reportPresses(in.det.Expire(in.presses[:0], now))
	// What the caller said before going quiet reaches the model now, not
	// when silence fill completes the chunk; on hold (SetSending(false))
	// audio already received goes out before the conversation stops
	// listening. Silence frames then make whole chunks again.
	if (quiet && !in.quiet) || !s.sending.Load() {
		s.flushChunk()
	}
	in.quiet = in.quiet || quiet
	s.fillSilence(now)
}

// processInbound handles one datagram from the caller: parse, filter by
// payload type, latch, reorder and decode into model frames for the Sink.
// It is the per-packet hot path and does not allocate.
func (s *Stream) processInbound(b []byte, from netip.AddrPort, now time.Time) {
	in := &s.in
	if len(b) > 0 && b[0]>>6 == 2 {
		if len(b) > 1 && b[1] >= 192 && b[1] <= 223 && s.srtpKeys.Load() != nil {
			// (S)RTCP multiplexed on the RTP port (RFC 5761 §4): we send no
			// RTCP and do not read it; it is not an SRTP failure.
			s.stats.ignoredPT.Add(1)
			return
		}
		// SRTP (when negotiated) authenticates before anything else looks
		// at the packet: a forged or replayed one is dropped and counted,
		// never played, and never moves symmetric-RTP latching.
		var ok bool
		if b, ok = s.unprotect(in.plain[:0], b, &in.srtpHdr); !ok {
			return
		}
	}
	if err := in.pkt.Unmarshal(b); err != nil || in.pkt.Version != 2 {
		s.stats.invalid.Add(1)
		if ok, n := in.badLog.allow(now); ok {
			s.log.Debug("media: ignoring non-RTP datagram", "from", from, "len", len(b), "suppressed", n)
		}
		return
	}
	// Only the caller's source counts (latchRule): another source's
	// packets are dropped here, before the jitter buffer.
	if !s.fromCaller(from, now) {
		return
	}
	// Any RTP from the caller proves the media path alive, even a payload
	// type we ignore (e.g. comfort noise, RFC 3389).
	in.lastPacket, in.quiet = now, false
	h := &in.pkt.Header
	codec := Codec(s.codec.Load())
	dtmfPT := s.dtmfPT.Load()
	if h.PayloadType != uint8(codec) && (dtmfPT < 0 || h.PayloadType != uint8(dtmfPT)) {
		// RFC 3550 §5.1: a receiver ignores payload types it does not know.
		s.stats.ignoredPT.Add(1)
		return
	}
	isDTMF := h.PayloadType != uint8(codec)
	if len(in.pkt.Payload) > maxPacketSamples || (isDTMF && len(in.pkt.Payload) < dtmf.PayloadLen) {
		s.stats.invalid.Add(1) // longer than 60 ms of G.711, or a truncated event
		return
	}
	s.stats.packetsIn.Add(1)
	switch in.jb.Push(jitter.Packet{SSRC: h.SSRC, Seq: h.SequenceNumber, Timestamp: h.Timestamp,
		PayloadType: h.PayloadType, Marker: h.Marker, Payload: in.pkt.Payload}) {
	case jitter.Duplicate:
		s.stats.duplicates.Add(1)
	case jitter.Late:
		s.stats.late.Add(1)
	case jitter.Restarted:
		s.stats.restarts.Add(1)
		in.det.Reset()
	}
	s.drainJitter(now)
	// A key whose end packets were all lost is reported after a timeout,
	// also while audio keeps flowing.
	if t, ok := in.det.Deadline(); ok && !now.Before(t) {
		s.reportPresses(in.det.Expire(in.presses[:0], now))
	}
}

// drainJitter turns everything the jitter buffer releases into audio (or
// DTMF).
func (s *Stream) drainJitter(now time.Time) {
	in := &s.in
	for {
		f, ok := in.jb.Pop()
		if !ok {
			return
		}
		switch {
		case f.Lost:
			s.stats.lost.Add(1)
			s.conceal()
		case f.PayloadType == uint8(CodecPCMU) || f.PayloadType == uint8(CodecPCMA):
			law := Codec(f.PayloadType).law()
			// Decoded straight into last: it is kept for concealment anyway.
			n := law.Decode(in.last[:], f.Payload)
			in.lastN, in.lossRun = max(n, 1), 0
			s.pushCallerAudio(in.last[:n])
		case f.PayloadType == uint8(CodecG722):
			n := in.g722.Decode(in.last[:], f.Payload) // payload ≤ maxPacketSamples: fits
			in.lastN, in.lossRun = max(n, 1), 0
			s.pushCallerAudio(in.last[:n])
		default: // telephone-event (the only other type let through)
			p, err := dtmf.Decode(f.Payload)
			if err != nil {
				continue // cannot happen: length checked before Push
			}
			s.reportPresses(in.det.Packet(in.presses[:0], f.Timestamp, p, now))
		}
	}
}

// conceal fills one lost packet: the last good packet at half level once
// (−6 dB, masks a single loss), then silence, so the model's audio clock
// stays continuous without inventing speech.
func (s *Stream) conceal() {
	in := &s.in
	s.stats.concealed.Add(1)
	n := in.lastN
	if in.lossRun == 0 {
		for i, v := range in.last[:n] {
			in.pcm[i] = v / 2
		}
	} else {
		clear(in.pcm[:n])
	}
	in.lossRun++
	s.pushCallerAudio(in.pcm[:n])
}

// pushCallerAudio assembles 20 ms frames and adds each to the uplink chunk.
func (s *Stream) pushCallerAudio(x []int16) {
	in := &s.in
	for len(x) > 0 {
		c := copy(in.acc[in.accN:s.frameLen], x)
		in.accN += c
		x = x[c:]
		if in.accN == s.frameLen {
			in.accN = 0
			s.deliverFrame()
		}
	}
}

// deliverFrame converts the assembled 20 ms frame to the model format,
// straight into the uplink chunk, and hands the chunk to the Sink when it
// holds chunkLimit frames (where a receive ends each chunk, it normally
// goes at the receive's end, before that).
func (s *Stream) deliverFrame() {
	in := &s.in
	if s.cfg.Sink == nil {
		s.stats.framesDropped.Add(1)
		return
	}
	out := in.chunk[in.chunkN:]
	acc := in.acc[:s.frameLen]
	var n int
	switch {
	case s.cfg.ModelFormat == ModelPCM24 && s.rate == 8000:
		k, _ := in.up.Process(in.frame24[:], acc) // frame24 is exactly 3× acc
		n = g711.Int16ToPCM16LE(out, in.frame24[:k])
	case s.cfg.ModelFormat == ModelPCM24: // G.722
		k, _ := in.up16.Process(in.frame24[:], acc) // 320 → 480, phase-aligned per frame
		n = g711.Int16ToPCM16LE(out, in.frame24[:k])
	case s.rate == 8000: // ModelPCMU, ModelPCMA
		n = s.cfg.ModelFormat.law().Encode(out, acc)
	default: // G.722 call, G.711 model: 16 → 24 → 8 kHz
		k, _ := in.up16.Process(in.frame24[:], acc)
		m, _ := in.down.Process(in.frame8[:], in.frame24[:k])
		n = s.cfg.ModelFormat.law().Encode(out, in.frame8[:m])
	}
	in.chunkN += n
	in.chunkFrames++
	if in.chunkFrames == s.chunkLimit {
		s.flushChunk()
	}
}

// flushChunk hands the chunk assembled so far, if any, to the Sink.
func (s *Stream) flushChunk() {
	in := &s.in
	if in.chunkN == 0 {
		return
	}
	n := in.chunkN
	in.chunkN, in.chunkFrames = 0, 0
	s.cfg.Sink.WriteCallerAudio(in.chunk[:n])
}

func (s *Stream) reportPresses(ps []dtmf.Press) {
	for _, p := range ps {
		s.emit(Event{Kind: EventDTMF, Digit: p.Digit, DurationMs: p.DurationMs})
	}
}

// latchRule decides whose RTP is the caller's. The stream takes audio
// from one source at a time, the latched one: the first source to send
// (again after a re-INVITE), or the SDP address whenever it sends. Another
// source takes over only once the latched one has been quiet for
// relatchQuiet and the newcomer has sent latchConfirm consecutive packets
// (a NAT rebinding, a media server handing over). Until then its packets
// are foreign: counted, never played to the model, never moving where our
// RTP goes (no hijack of a latched stream by a spoofer or a scanner). It
// is a plain value owned by the reader goroutine.
type latchRule struct {
	latched   bool
	addr      netip.AddrPort
	last      time.Time // last packet from addr
	candidate netip.AddrPort
	candN     int
}

// admit reports whether a packet from `from` (unmapped) is the caller's,
// and whether it moved the latch there. signalled is the SDP address
// (invalid when unknown).
func (l *latchRule) admit(from, signalled netip.AddrPort, now time.Time) (ok, moved bool) {
	switch {
	case l.latched && from == l.addr:
		l.last, l.candN = now, 0
		return true, false
	case !l.latched, signalled.IsValid() && from == signalled:
		// The first source, or the address the caller signalled.
	case now.Sub(l.last) < relatchQuiet:
		return false, false // the latched source is alive: no takeover
	default:
		if from != l.candidate {
			l.candidate, l.candN = from, 0
		}
		l.candN++
		if l.candN < latchConfirm {
			return false, false
		}
	}
	l.latched, l.addr, l.last, l.candN = true, from, now, 0
	return true, true
}

// fromCaller applies the latch rule to a packet and, with symmetric RTP
// (RFC 4961; the COMEDIA behaviour of RFC 4145 §4 applied to RTP), moves
// our RTP to where the caller's comes from, which gets through NATs that
// rewrote the SDP address. It reports whether the packet is the caller's.
func (s *Stream) fromCaller(from netip.AddrPort, now time.Time) bool {
	in := &s.in
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if s.relatch.Swap(false) {
		in.latch.latched = false
	}
	var signalled netip.AddrPort
	if p := s.signalled.Load(); p != nil {
		signalled = *p
	}
	at := now
	if !in.arrival.IsZero() {
		at = in.arrival
	}
	ok, moved := in.latch.admit(from, signalled, at)
	if !ok {
		s.stats.foreign.Add(1)
		return false
	}
	if !moved || !s.cfg.SymmetricRTP {
		return true
	}
	if cur := s.remote.Load(); cur != nil && *cur == from {
		return true // the SDP address was right
	}
	s.setRemote(from)
	s.stats.latches.Add(1)
	if ok, n := in.latchLog.allow(now); ok {
		s.log.Info("media: symmetric RTP latched", "addr", from, "suppressed", n)
	}
	s.emit(Event{Kind: EventRemoteLatched, Addr: from})
	return true
}
