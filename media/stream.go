package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/sipbridge/sipbridge/media/g711"
	"github.com/sipbridge/sipbridge/media/jitter"
	"github.com/sipbridge/sipbridge/media/resample"
)

const (
	rtpClock = 8000 // RTP clock of G.711, G.722 and telephone-event (RFC 3551 §4.5.2, §4.5.14; RFC 4733 §2.1)
	frameDur = 20 * time.Millisecond
	// frameSamples is one 20 ms frame in RTP clock ticks, which is also the
	// payload size of G.711 and of G.722 (160 bytes) and the G.711 sample
	// count; G.722 frames hold 2·frameSamples samples at 16 kHz.
	frameSamples = rtpClock * 20 / 1000
	// maxFrameSamples is the largest PCM frame: 20 ms at 16 kHz.
	maxFrameSamples = 2 * frameSamples

	// maxPacketSamples is the longest inbound payload we take: 60 ms of
	// G.711 or G.722 (ptime 10–60 covers what trunks send), in bytes.
	maxPacketSamples = 480
	// maxPacketPCM is that payload decoded (60 ms at 16 kHz).
	maxPacketPCM = 2 * maxPacketSamples
	// readBufSize takes any sane RTP datagram; longer ones are truncated and
	// then fail to parse or exceed maxPacketSamples.
	readBufSize  = 1500
	rtpHeaderLen = 12

	defaultComfortNoiseDB = -65.0
	eventQueue            = 64

	// flushAfter: when no packet arrived for this long, the jitter buffer
	// releases what it holds (3 frames: the sender has gone quiet, not
	// reordered).
	flushAfter = 60 * time.Millisecond
	// silenceFillAfter: after this long without caller RTP the model gets
	// silence frames (fillSilence); past the jitter flush, so no reordered
	// packet is overtaken by filler.
	silenceFillAfter = 80 * time.Millisecond
	// maxFillBurst caps filler frames sent at once after a late wake-up: a
	// receive normally fills one uplink chunk's frames (recv_linux.go), at
	// most MaxUplinkChunk's.
	maxFillBurst = int(2 * MaxUplinkChunk / frameDur)
	// latchConfirm is how many consecutive packets a new source must send
	// before symmetric RTP moves to it (one stray or spoofed packet must not
	// redirect the call's audio).
	latchConfirm = 3
	// relatchQuiet is how long the latched RTP source must have been
	// silent before another may take over (latchRule): a live caller's
	// stream cannot be hijacked, a NAT rebinding costs this much audio.
	relatchQuiet = time.Second
	// maxCatchUp: when the pacer wakes up at most this many frames late it
	// sends the missed frames back to back (ordinary timer jitter); later
	// than that it skips ahead instead of bursting.
	maxCatchUp = 2
	logEvery   = 10 * time.Second
)

// Stats are a stream's counters.
type Stats struct {
	PacketsIn, PacketsOut, Lost, Late, Duplicates, Concealed uint64
	// CallerFramesDropped: caller frames not delivered (no Sink configured).
	CallerFramesDropped uint64

	Invalid        uint64 // datagrams that are not RTP version 2
	IgnoredPT      uint64 // RTP with a payload type we did not negotiate
	Restarts       uint64 // jitter restarts (new SSRC, sequence jump)
	WriteErrors    uint64 // failed sends
	SkippedFrames  uint64 // pacer frames skipped after a long stall
	EventsDropped  uint64 // events lost because the Events channel was full
	PlayoutDropped uint64 // ms of Play audio refused (queue at its maximum)
	Latches        uint64 // symmetric-RTP address changes
	Foreign        uint64 // RTP from a source other than the latched one, dropped
	SilenceFilled  uint64 // silence frames given to the model while the caller sent no RTP

	SRTPAuthFailed    uint64 // received packets dropped: SRTP authentication failed (or clear RTP on an SRTP call)
	SRTPReplayed      uint64 // received packets dropped: SRTP replay protection
	SRTPProtectFailed uint64 // packets not sent because encryption failed
}

// counters mirror Stats with atomics, updated by the media goroutines.
type counters struct {
	packetsIn, packetsOut, lost, late, duplicates, concealed, framesDropped             atomic.Uint64
	invalid, ignoredPT, restarts, writeErrors, skipped, eventsDropped, latches, foreign atomic.Uint64
	silenceFilled, srtpAuthFailed, srtpReplayed, srtpProtectFailed                      atomic.Uint64
}

// Stream is one call's RTP session: Run starts the reader and registers
// the stream with the shared media clock, which paces its outbound RTP.
//
// Ownership of the fields, so the rest of the file can be read safely:
//   - set by NewStream, read-only afterwards: cfg, log, conn, local,
//     events, epoch;
//   - atomics, written by any goroutine: remote, codec, dtmfPT, sending,
//     relatch, resumeAt, stats, running;
//   - the receiving goroutine only: in and rx. On Linux that is the clock
//     shard driving the stream, from Run's registration until the shard's
//     remove returns (recv_linux.go); elsewhere Run's reader goroutine.
//     Before and after, Run's own goroutine (the final chunk flush);
//   - the clock shard driving the stream only (under the shard's lock,
//     from Run's registration until Run returns): out;
//   - convMu: the Play-side conversion state (conv, carry, scratch);
//   - qMu: the playout queue q or qLaw (Play/Flush/PlayedMs/QueuedMs and the pacer).
//     Lock order: convMu before qMu.
type Stream struct {
	cfg    StreamConfig
	log    *slog.Logger
	conn   *net.UDPConn
	local  netip.AddrPort
	events chan Event
	epoch  time.Time // monotonic reference for resumeAt

	// rate is the PCM sample rate of the codec (8000 or 16000), frameLen
	// the samples of a 20 ms frame and perMs the samples of 1 ms at it;
	// all three are fixed at NewStream.
	rate, frameLen, perMs int

	remote atomic.Pointer[netip.AddrPort] // where RTP goes (SDP or latched)
	// signalled is the SDP address (unmapped; nil or invalid: unknown): its
	// RTP is always the caller's (latchRule).
	signalled atomic.Pointer[netip.AddrPort]
	srtpKeys  atomic.Pointer[srtpKeys] // nil: clear RTP; replaced by Rekey
	codec     atomic.Uint32            // Codec
	dtmfPT    atomic.Int32             // <0: none
	sending   atomic.Bool
	relatch   atomic.Bool  // SetRemote happened: latch to the next source at once
	resumeAt  atomic.Int64 // ns since epoch when the media timeout last restarted
	running   atomic.Bool
	stats     counters

	in  inbound
	rx  rxState // the socket's receive side (recv_*.go)
	out outbound

	// chunkFrames is how many 20 ms frames make one uplink chunk, and
	// chunkLimit how many the chunk buffer holds before it must go to the
	// sink (chunkFrames; two chunks' worth where a receive every chunk ends
	// each chunk, batchedReceive); both fixed at NewStream.
	chunkFrames, chunkLimit int

	convMu sync.Mutex
	// conv resamples model audio to the call's rate; nil when none is
	// needed (G.711 model audio on a G.711 call, the audio_format auto
	// default), which keeps its 6 KiB out of the stream.
	conv    *playConvert
	carry   [1]byte // odd byte of PCM16 left over from the previous Play
	hasCry  bool
	cryID   string     // item the carried byte belongs to
	pcm8    [320]int16 // decoded G.711 model audio
	playLog logLimiter

	qMu sync.Mutex
	// The playout queue: q holds PCM at the codec's rate, except on a
	// G.711 call whose model audio is G.711 (lawQ, fixed at NewStream),
	// where qLaw holds the model's bytes as they came: half the memory of
	// the samples, and no decoding until a frame is sent. The other one is
	// never used.
	q    playQueue[int16]
	qLaw playQueue[byte]
	lawQ bool
}

// playConvert is the Play-side resampling state of a stream whose model
// audio is not at the call's rate (guarded by convMu).
type playConvert struct {
	down   resample.Down3      // 24 → 8 kHz (G.711 calls)
	down16 resample.Down24To16 // 24 → 16 kHz (G.722 calls)
	up8    resample.Up3        // 8 → 24 kHz (G.711 model audio on a G.722 call)
	pcm24  [960]int16
	pcmQ   [961]int16 // converted audio on its way into the queue
}

// NewStream prepares a stream on cfg.Conn; Run starts it. On error the
// socket is left to the caller.
func NewStream(cfg StreamConfig) (*Stream, error) {
	if cfg.Conn == nil {
		return nil, fmt.Errorf("media: new stream: nil Conn: %w", ErrBadConfig)
	}
	if !cfg.Codec.Valid() {
		return nil, fmt.Errorf("media: new stream: codec %d is not PCMU (0), PCMA (8) or G722 (9): %w", cfg.Codec, ErrBadConfig)
	}
	if cfg.DTMFClockRate == 0 {
		cfg.DTMFClockRate = rtpClock
	}
	if cfg.DTMFClockRate != 8000 && cfg.DTMFClockRate != 16000 {
		return nil, fmt.Errorf("media: new stream: telephone-event clock %d is not 8000 or 16000: %w", cfg.DTMFClockRate, ErrBadConfig)
	}
	var keys *srtpKeys
	if cfg.SRTP != nil {
		k, err := newSRTPKeys(*cfg.SRTP)
		if err != nil {
			return nil, fmt.Errorf("media: new stream: %w: %w", ErrBadConfig, err)
		}
		keys = k
	}
	if cfg.ModelFormat > ModelPCMA {
		return nil, fmt.Errorf("media: new stream: model format %d: %w", cfg.ModelFormat, ErrBadConfig)
	}
	if cfg.DTMFPayloadType > 127 || (cfg.DTMFPayloadType >= 0 && Codec(cfg.DTMFPayloadType).Valid()) {
		return nil, fmt.Errorf("media: new stream: telephone-event payload type %d: %w", cfg.DTMFPayloadType, ErrBadConfig)
	}
	if cfg.ComfortNoiseDB == 0 {
		cfg.ComfortNoiseDB = defaultComfortNoiseDB
	}
	if cfg.ComfortNoiseDB > -20 || cfg.ComfortNoiseDB < -96 || math.IsNaN(cfg.ComfortNoiseDB) {
		return nil, fmt.Errorf("media: new stream: comfort noise %v dBov outside -96..-20: %w", cfg.ComfortNoiseDB, ErrBadConfig)
	}
	if cfg.MediaTimeout < 0 {
		return nil, fmt.Errorf("media: new stream: negative media timeout: %w", ErrBadConfig)
	}
	chunk := cfg.UplinkChunk
	if chunk == 0 {
		chunk = frameDur // frame by frame
	}
	if err := CheckUplinkChunk(chunk); err != nil {
		return nil, fmt.Errorf("media: new stream: %w: %w", ErrBadConfig, err)
	}
	jb, err := jitter.New(cfg.JitterDepth, maxPacketSamples)
	if err != nil {
		return nil, fmt.Errorf("media: new stream: %w: %w", ErrBadConfig, err)
	}
	ua, ok := cfg.Conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("media: new stream: socket has no UDP address: %w", ErrBadConfig)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rate := cfg.Codec.SampleRate()
	s := &Stream{
		cfg:      cfg,
		log:      log,
		conn:     cfg.Conn,
		local:    ua.AddrPort(),
		events:   make(chan Event, eventQueue),
		epoch:    time.Now(),
		rate:     rate,
		frameLen: rate / 50,
		perMs:    rate / 1000,

		chunkFrames: int(chunk / frameDur),
	}
	s.chunkLimit = s.chunkFrames
	if batchedReceive && s.chunkFrames > 1 {
		s.chunkLimit *= 2
	}
	s.srtpKeys.Store(keys)
	s.setSignalled(cfg.Remote)
	if !s.strictLatch() {
		s.setRemote(cfg.Remote)
	}
	s.codec.Store(uint32(cfg.Codec))
	s.dtmfPT.Store(int32(max(cfg.DTMFPayloadType, -1)))
	s.sending.Store(true)
	s.in.init(jb, cfg.DTMFClockRate, s.chunkLimit*(cfg.ModelFormat.FrameBytes()+chunkSlack))
	s.rx.init(s.chunkFrames)
	s.out.init(cfg.ComfortNoiseDB, rate != 8000)
	s.playLog.every = logEvery
	s.lawQ = rate == 8000 && cfg.ModelFormat != ModelPCM24
	if s.lawQ {
		s.qLaw = newPlayQueue[byte](rate, s.playoutDone)
	} else {
		s.q = newPlayQueue[int16](rate, s.playoutDone)
	}
	if cfg.ModelFormat == ModelPCM24 || rate != 8000 {
		s.conv = &playConvert{}
	}
	if err := s.initSender(); err != nil {
		return nil, fmt.Errorf("media: new stream: %w: %w", ErrBadConfig, err)
	}
	return s, nil
}

// Run receives RTP, and has the shared media clock (clock.go) pace the
// outbound RTP, until ctx ends (it returns nil) or no RTP arrived
// for MediaTimeout (ErrMediaTimeout). On Linux the clock shard driving the
// stream also receives its RTP (recv_linux.go); elsewhere a reader
// goroutine does (recv_other.go). It delivers the last partial uplink
// chunk, closes the socket on return and may be called once.
func (s *Stream) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	s.resumeAt.Store(int64(time.Since(s.epoch)))
	err := s.runReceive(ctx)
	// Nothing else touches the inbound state now: what the caller said last
	// goes to the sink before the stream ends.
	s.flushChunk()
	if cerr := s.closeSocket(); cerr != nil {
		s.log.Debug("media: close rtp socket", "error", cerr)
	}
	if errors.Is(err, ErrMediaTimeout) {
		return ErrMediaTimeout
	}
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// Play queues model audio (StreamConfig.ModelFormat) for itemID. It copies
// the audio, never blocks on the network and may be called from any
// goroutine.
func (s *Stream) Play(itemID string, audio []byte) {
	s.convMu.Lock()
	defer s.convMu.Unlock()
	if s.hasCry && s.cryID != itemID {
		s.hasCry = false // a new item starts on a sample boundary
	}
	dropped := 0
	switch s.cfg.ModelFormat {
	case ModelPCM24:
		if s.hasCry && len(audio) > 0 {
			// Complete the sample split across two deltas.
			s.hasCry = false
			s.conv.pcm24[0] = int16(uint16(s.carry[0]) | uint16(audio[0])<<8)
			dropped += s.push24(itemID, s.conv.pcm24[:1])
			audio = audio[1:]
		}
		for len(audio) >= 2 {
			k := min(len(audio)/2, len(s.conv.pcm24))
			g711.PCM16LEToInt16(s.conv.pcm24[:k], audio[:2*k])
			dropped += s.push24(itemID, s.conv.pcm24[:k])
			audio = audio[2*k:]
		}
		if len(audio) == 1 {
			s.carry[0], s.hasCry, s.cryID = audio[0], true, itemID
		}
	default:
		if s.lawQ {
			s.qMu.Lock()
			dropped += s.qLaw.push(itemID, audio)
			s.qMu.Unlock()
			break
		}
		law := s.cfg.ModelFormat.law()
		for len(audio) > 0 {
			// 320 samples at a time: on a G.722 call they become 960 at 24 kHz.
			k := law.Decode(s.pcm8[:], audio)
			if s.rate == 8000 {
				s.qMu.Lock()
				dropped += s.q.push(itemID, s.pcm8[:k])
				s.qMu.Unlock()
			} else {
				// 8 → 24 → 16 kHz through the two tested converters.
				n, _ := s.conv.up8.Process(s.conv.pcm24[:], s.pcm8[:k]) // pcm24 holds 3·320
				dropped += s.push24(itemID, s.conv.pcm24[:n])
			}
			audio = audio[k:]
		}
	}
	if dropped > 0 {
		if ok, n := s.playLog.allow(time.Now()); ok {
			s.log.Warn("media: playout queue full, audio dropped", "item_id", itemID,
				"dropped_ms", dropped/s.perMs, "suppressed", n)
		}
	}
}

// push24 converts 24 kHz samples to the codec's rate into the queue
// (convMu held).
func (s *Stream) push24(itemID string, x []int16) int {
	var (
		n   int
		err error
	)
	c := s.conv
	if s.rate == 8000 {
		n, err = c.down.Process(c.pcmQ[:], x)
	} else {
		n, err = c.down16.Process(c.pcmQ[:], x)
	}
	if err != nil { // cannot happen: pcmQ holds 2·len(pcm24)/3+1 samples
		return len(x) * s.rate / 24000
	}
	s.qMu.Lock()
	d := s.q.push(itemID, c.pcmQ[:n])
	s.qMu.Unlock()
	return d
}

// Flush drops all queued playout at once (barge-in). A frame already being
// sent finishes; the next audio starts a new talk-spurt (marker bit).
func (s *Stream) Flush() {
	s.convMu.Lock()
	defer s.convMu.Unlock()
	if c := s.conv; c != nil {
		c.down.Reset()
		c.down16.Reset()
		c.up8.Reset()
	}
	s.hasCry = false
	s.qMu.Lock()
	if s.lawQ {
		s.qLaw.flush()
	} else {
		s.q.flush()
	}
	s.qMu.Unlock()
}

// PlayedMs is how many ms of itemID were sent as RTP (for
// conversation.item.truncate audio_end_ms). It remembers the last 64 items.
func (s *Stream) PlayedMs(itemID string) int {
	s.qMu.Lock()
	defer s.qMu.Unlock()
	if s.lawQ {
		return s.qLaw.playedMs(itemID)
	}
	return s.q.playedMs(itemID)
}

// QueuedMs is how much audio waits to be sent.
func (s *Stream) QueuedMs() int {
	s.qMu.Lock()
	defer s.qMu.Unlock()
	if s.lawQ {
		return s.qLaw.n / s.perMs
	}
	return s.q.n / s.perMs
}

// Events reports DTMF, playout completion and latching. It is buffered and
// never closed; when it is full, events are dropped and counted rather than
// blocking the media goroutines.
func (s *Stream) Events() <-chan Event { return s.events }

// LocalAddr is the RTP socket's address.
func (s *Stream) LocalAddr() netip.AddrPort { return s.local }

// SetRemote applies a re-INVITE: new SDP address, codec and telephone-event
// payload type (<0 for none). With symmetric RTP the next valid packet
// latches again, from wherever it comes. The codec may change only within
// its sample rate (PCMU ↔ PCMA); another one is ignored and logged, so the
// re-INVITE answer must offer only same-rate codecs (Codec.SampleRate).
// SRTP keys change with Rekey.
func (s *Stream) SetRemote(remote netip.AddrPort, codec Codec, dtmfPT int) {
	s.setSignalled(remote)
	if !s.strictLatch() {
		s.setRemote(remote)
	}
	switch {
	case codec.Valid() && codec.SampleRate() == s.rate:
		s.codec.Store(uint32(codec))
	default:
		s.log.Warn("media: re-INVITE codec change across sample rates ignored",
			"codec", int(codec), "current", int(s.codec.Load()))
	}
	if dtmfPT > 127 || (dtmfPT >= 0 && Codec(dtmfPT).Valid()) {
		dtmfPT = -1 // never take audio packets for events
	}
	s.dtmfPT.Store(int32(max(dtmfPT, -1)))
	s.relatch.Store(true)
}

// strictLatch: RTP goes only to the latched source, never the SDP address.
func (s *Stream) strictLatch() bool { return s.cfg.SymmetricRTP && s.cfg.LatchBeforeSend }

func (s *Stream) setSignalled(a netip.AddrPort) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	s.signalled.Store(&a)
}

func (s *Stream) setRemote(a netip.AddrPort) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	s.remote.Store(&a)
}

// SetSending(false) stops sending RTP while the caller holds us (we
// answered recvonly or inactive, RFC 3264 §5.1); the media timeout is
// suspended meanwhile, since a holding caller may send nothing.
// SetSending(true) resumes and restarts the timeout.
func (s *Stream) SetSending(on bool) {
	if on && !s.sending.Load() {
		s.resumeAt.Store(int64(time.Since(s.epoch)))
	}
	s.sending.Store(on)
}

// Stats returns the counters.
func (s *Stream) Stats() Stats {
	c := &s.stats
	s.qMu.Lock()
	dropped := s.q.dropped + s.qLaw.dropped
	s.qMu.Unlock()
	return Stats{
		PacketsIn: c.packetsIn.Load(), PacketsOut: c.packetsOut.Load(), Lost: c.lost.Load(),
		Late: c.late.Load(), Duplicates: c.duplicates.Load(), Concealed: c.concealed.Load(),
		CallerFramesDropped: c.framesDropped.Load(), Invalid: c.invalid.Load(),
		IgnoredPT: c.ignoredPT.Load(), Restarts: c.restarts.Load(), WriteErrors: c.writeErrors.Load(),
		SkippedFrames: c.skipped.Load(), EventsDropped: c.eventsDropped.Load(),
		PlayoutDropped: uint64(dropped / s.perMs), Latches: c.latches.Load(), Foreign: c.foreign.Load(),
		SilenceFilled: c.silenceFilled.Load(), SRTPAuthFailed: c.srtpAuthFailed.Load(),
		SRTPReplayed: c.srtpReplayed.Load(), SRTPProtectFailed: c.srtpProtectFailed.Load(),
	}
}

// emit delivers an event without ever blocking a media goroutine.
func (s *Stream) emit(ev Event) {
	select {
	case s.events <- ev:
	default:
		s.stats.eventsDropped.Add(1)
	}
}

// playoutDone is the queue's done callback (qMu held).
func (s *Stream) playoutDone(it *itemRec) {
	s.emit(Event{Kind: EventPlayoutDone, ItemID: it.id, PlayedMs: it.played / s.perMs})
}

func (c Codec) law() g711.Law {
	if c == CodecPCMA {
		return g711.Alaw
	}
	return g711.Ulaw
}

// law is the G.711 law of a G.711 model format (μ-law for ModelPCM24,
// which has none).
func (f ModelFormat) law() g711.Law {
	if f == ModelPCMA {
		return g711.Alaw
	}
	return g711.Ulaw
}

// randomHeader starts an outbound RTP header: random SSRC (RFC 3550 §8),
// random initial sequence number and timestamp (§5.1). The sequence starts
// below 2^15 as pion's random sequencer does, leaving SRTP rollover room.
func randomHeader(pt uint8) rtp.Header {
	return rtp.Header{
		Version:        2,
		PayloadType:    pt,
		SequenceNumber: uint16(rand.N(1 << 15)),
		Timestamp:      rand.Uint32(),
		SSRC:           rand.Uint32(),
	}
}
