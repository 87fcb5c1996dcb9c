package sim

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Faults are failures the simulator injects, settable at construction, at
// run time (Server.SetFaults) and, through the binary's config, per region.
// Counting faults (FailBeforeAudio, StallNoResponse, ErrorEventServerError,
// FailAfterAudioCount, and the one-shot CloseAfterAudioMs) are consumed
// across the whole server, so "the next response in this region fails once"
// is expressible whatever session it lands in. The yaml tags let the
// binary's per-region config carry a Faults block as is.
//
// When several apply to one response, the first in this order wins:
// StallNoResponse, ErrorEventServerError, FailBeforeAudio, Sticky,
// FailureRate; then the mid-audio faults (FailAfterAudioMs, StallMidAudioMs,
// CloseAfterAudioMs, DropAfterAudioMs) act at the smallest threshold.
type Faults struct {
	// FailBeforeAudio: the next N responses fail before any audio:
	// response.created, then response.done status failed with a server_error
	// carrying this session's id (§3.7), output [].
	FailBeforeAudio int `yaml:"fail_before_audio"`
	// FailAfterAudioMs: responses fail after this many ms of audio were
	// streamed (partial output, then response.done failed).
	FailAfterAudioMs int `yaml:"fail_after_audio_ms"`
	// FailAfterAudioCount: how many responses FailAfterAudioMs applies to
	// (0 = all).
	FailAfterAudioCount int `yaml:"fail_after_audio_count"`
	// Sticky: after a session's first failed response every later response in
	// that session fails too (Azure, livekit/agents #6040; §6.4).
	Sticky bool `yaml:"sticky"`
	// FailureRate: random per-response failure probability (0..1), before
	// audio, drawn from a generator seeded with Seed for determinism.
	FailureRate float64 `yaml:"failure_rate"`
	Seed        int64   `yaml:"seed"`
	// StallNoResponse: the next N responses never start: no response.created,
	// nothing. They still count as the active response (a second
	// response.create is rejected) and response.cancel ends them with a bare
	// response.done, the quirk §3.6 notes.
	StallNoResponse int `yaml:"stall_no_response"`
	// StallMidAudioMs: responses stop streaming after this many ms of audio
	// and never finish (until cancelled or interrupted).
	StallMidAudioMs int `yaml:"stall_mid_audio_ms"`
	// CloseAfterAudioMs: close the WebSocket with 1011 after this many ms of
	// audio in a response; fires once, then disarms itself.
	CloseAfterAudioMs int `yaml:"close_after_audio_ms"`
	// DropAfterAudioMs: drop the TCP connection without a close frame after
	// this many ms of audio in a response (every response while set).
	DropAfterAudioMs int `yaml:"drop_after_audio_ms"`
	// RefuseStatus: refuse upgrades with this HTTP status (429, 503, …) and a
	// JSON error body; 0 = accept.
	RefuseStatus int `yaml:"refuse_status"`
	// RefuseConnect: reject at TCP level: accepted connections are reset
	// before any HTTP is read (Listen only; ServeHTTP hijacks and resets).
	RefuseConnect bool `yaml:"refuse_connect"`
	// ExpireAfter: session_expired + close 1001 this long after session start
	// (overrides SessionLimit if smaller). Applies to live sessions too when
	// set through SetFaults.
	ExpireAfter time.Duration `yaml:"expire_after"`
	// ErrorEventServerError: the next N responses get an `error` event of
	// type server_error instead of starting (no response.created).
	ErrorEventServerError int `yaml:"error_event_server_error"`
	// StallFirstAudio: the next N responses send response.created and then
	// nothing at all (no output, no response.done): the "created but no
	// first audio" stall seen as client timeouts at peak hours.
	StallFirstAudio int `yaml:"stall_first_audio"`
	// HandshakeDelay holds session.created back this long after the
	// upgrade (a slow or overloaded region).
	HandshakeDelay time.Duration `yaml:"handshake_delay"`
}

type faultKind uint8

const (
	faultNone faultKind = iota
	faultStall
	faultErrorEvent
	faultFailBefore
	faultStallAfterCreated
)

// respFault is what one response will suffer, decided when it starts.
type respFault struct {
	kind         faultKind
	failAfterMs  int
	stallMidMs   int
	closeAfterMs int
	dropAfterMs  int
}

// nextThreshold is the smallest armed mid-audio threshold (0 = none).
func (f respFault) nextThreshold() int {
	t := 0
	for _, v := range []int{f.failAfterMs, f.stallMidMs, f.closeAfterMs, f.dropAfterMs} {
		if v > 0 && (t == 0 || v < t) {
			t = v
		}
	}
	return t
}

// faultState is the server-wide, mutable copy of Faults.
type faultState struct {
	mu               sync.Mutex
	f                Faults
	rng              *rand.Rand
	failAfterLimited bool
	failAfterLeft    int
	gen              uint64 // bumped on every SetFaults
}

func (fs *faultState) set(f Faults) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.f = f
	fs.rng = rand.New(rand.NewPCG(uint64(f.Seed), uint64(f.Seed)^0x9e3779b97f4a7c15))
	fs.failAfterLimited = f.FailAfterAudioCount > 0
	fs.failAfterLeft = f.FailAfterAudioCount
	fs.gen++
}

func (fs *faultState) snapshot() Faults {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.f
}

// decide consumes the counting faults for one response.
func (fs *faultState) decide(sessionFailed bool) respFault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := &fs.f
	var rf respFault
	switch {
	case f.StallNoResponse > 0:
		f.StallNoResponse--
		rf.kind = faultStall
		return rf
	case f.StallFirstAudio > 0:
		f.StallFirstAudio--
		rf.kind = faultStallAfterCreated
		return rf
	case f.ErrorEventServerError > 0:
		f.ErrorEventServerError--
		rf.kind = faultErrorEvent
		return rf
	case f.FailBeforeAudio > 0:
		f.FailBeforeAudio--
		rf.kind = faultFailBefore
		return rf
	case f.Sticky && sessionFailed:
		rf.kind = faultFailBefore
		return rf
	case f.FailureRate > 0 && fs.rng.Float64() < f.FailureRate:
		rf.kind = faultFailBefore
		return rf
	}
	if f.FailAfterAudioMs > 0 {
		if !fs.failAfterLimited {
			rf.failAfterMs = f.FailAfterAudioMs
		} else if fs.failAfterLeft > 0 {
			fs.failAfterLeft--
			rf.failAfterMs = f.FailAfterAudioMs
		}
	}
	rf.stallMidMs = f.StallMidAudioMs
	rf.closeAfterMs = f.CloseAfterAudioMs
	rf.dropAfterMs = f.DropAfterAudioMs
	return rf
}

// takeCloseOnce disarms CloseAfterAudioMs; false if another response already
// fired it or it was cleared meanwhile.
func (fs *faultState) takeCloseOnce() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.f.CloseAfterAudioMs <= 0 {
		return false
	}
	fs.f.CloseAfterAudioMs = 0
	return true
}
