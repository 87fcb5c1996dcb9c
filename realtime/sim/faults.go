package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Faults are failures the simulator injects, settable at construction, at
// run time (Server.SetFaults) and, through the binary's config, per region.
// Counting faults (FailBeforeAudio, StallNoResponse, ErrorEventServerError,
// FailAfterAudioCount, RefuseAudioItems, and the one-shot
// CloseAfterAudioMs) are consumed across the whole server, so "the next
// response in this region fails once" is expressible whatever session it
// lands in. The yaml tags let the
// binary's per-region config carry a Faults block as is.
//
// When several apply to one response, the first in this order wins:
// StallNoResponse, StallFirstAudio, ErrorEventServerError, FailBeforeAudio,
// Sticky, FailureRate, RateLimitResponses, RateLimitRate; a response none of
// these hit gets its first-output delay (FirstAudioMedian, LatencySpikeRate)
// and may turn text-only (TextAfterReplayRate); then the mid-audio faults (FailAfterAudioMs, StallMidAudioMs,
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
	// audio. Every random fault draws from one generator seeded with Seed:
	// a non-zero Seed reproduces the same draws (tests); 0 seeds from the
	// clock.
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
	// JSON error body; 0 = accept. 429 and 503 carry Retry-After.
	RefuseStatus int `yaml:"refuse_status"`
	// RefuseCount: only the next N upgrades are refused with RefuseStatus,
	// then the region accepts again (a throttle that lifts); 0 = every
	// upgrade while RefuseStatus is set.
	RefuseCount int `yaml:"refuse_count"`
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

	// LatencySpikeRate is the probability (0..1) that a response's first
	// output is held back a further LatencySpike (e.g. 0.05 and 8s: one
	// response in twenty is 8 s late). Drawn from the seeded generator.
	LatencySpikeRate float64       `yaml:"latency_spike_rate"`
	LatencySpike     time.Duration `yaml:"latency_spike"`
	// FirstAudioMedian, when set, replaces Config.ResponseDelay with a
	// heavy-tailed (log-normal) time to first output: the median, spread by
	// FirstAudioSigma (ln-space standard deviation, default 0.5) and capped
	// at FirstAudioMax (default 20 × the median). Real time to first audio
	// has a long right tail (§6.4 latency reports); a fixed delay hides it.
	FirstAudioMedian time.Duration `yaml:"first_audio_median"`
	FirstAudioSigma  float64       `yaml:"first_audio_sigma"`
	FirstAudioMax    time.Duration `yaml:"first_audio_max"`

	// TextAfterReplayRate is the probability (0..1) that a response answers
	// in text only, with no audio, when its context holds a text item a
	// client created with conversation.item.create (a replayed history:
	// assistant text, system notes, user input_text) after the last user
	// turn that is caller audio (or there is no such turn; a system note
	// injected mid-call counts, as in #58). Documented real behaviour (§9:
	// openai-realtime-api-beta #58/#72, openai-realtime-console #464,
	// livekit/agents #1143/#2015/#2471): it happened with audio modalities
	// configured, so an explicit audio modality (session or response.create)
	// does not prevent it; caller audio as the last user turn (committed
	// from the buffer or an input_audio item) does: livekit #2015 recovered
	// by adding a user audio item and asking again.
	TextAfterReplayRate float64 `yaml:"text_after_replay_rate"`

	// RateLimitResponses: the next N responses are throttled: response.created,
	// rate_limits.updated with nothing remaining, then response.done failed
	// with invalid_request_error / inference_rate_limit_exceeded (§3.7, §6.1)
	// and a "Please try again in …" message giving RetryAfter.
	RateLimitResponses int `yaml:"rate_limit_responses"`
	// RateLimitRate: random per-response probability (0..1) of the same.
	RateLimitRate float64 `yaml:"rate_limit_rate"`
	// RetryAfter is the wait a throttled response and a 429/503 refusal ask
	// for (the Retry-After header, whole seconds, rounded up); default 1s.
	RetryAfter time.Duration `yaml:"retry_after"`

	// RefuseAudioItems: the next N conversation.item.create events whose
	// item carries an input_audio content part are refused the way the real
	// service refuses an item (§2.3, §9: an `error`, invalid_request_error
	// / invalid_value, param naming the part's type, carrying the client's
	// event_id); the item is not added. A replay must notice and repair it
	// (audio → transcript) or move on, never lose it silently.
	RefuseAudioItems int `yaml:"refuse_audio_items"`
}

// FaultError names the faults key (its yaml name) that is invalid, so the
// binary's config can report regions[i].simulator.faults.<Key>.
type FaultError struct {
	Key    string
	Reason string
}

func (e *FaultError) Error() string { return "sim: faults." + e.Key + ": " + e.Reason }

// Validate checks every field; the first problem is returned as a
// *FaultError. New and SetFaults apply faults as given, so callers that
// read faults from a file validate first (each rule lives here, once).
func (f Faults) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &FaultError{Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	for _, c := range []struct {
		key string
		v   int
	}{
		{"fail_before_audio", f.FailBeforeAudio}, {"fail_after_audio_ms", f.FailAfterAudioMs},
		{"fail_after_audio_count", f.FailAfterAudioCount}, {"stall_no_response", f.StallNoResponse},
		{"stall_mid_audio_ms", f.StallMidAudioMs}, {"close_after_audio_ms", f.CloseAfterAudioMs},
		{"drop_after_audio_ms", f.DropAfterAudioMs}, {"error_event_server_error", f.ErrorEventServerError},
		{"stall_first_audio", f.StallFirstAudio}, {"rate_limit_responses", f.RateLimitResponses},
		{"refuse_count", f.RefuseCount}, {"refuse_audio_items", f.RefuseAudioItems},
	} {
		if c.v < 0 {
			return bad(c.key, "%d is negative", c.v)
		}
	}
	for _, c := range []struct {
		key string
		v   float64
	}{
		{"failure_rate", f.FailureRate}, {"latency_spike_rate", f.LatencySpikeRate},
		{"text_after_replay_rate", f.TextAfterReplayRate}, {"rate_limit_rate", f.RateLimitRate},
	} {
		if !(c.v >= 0 && c.v <= 1) { // also rejects NaN
			return bad(c.key, "%v is outside 0..1", c.v)
		}
	}
	for _, c := range []struct {
		key string
		v   time.Duration
	}{
		{"expire_after", f.ExpireAfter}, {"handshake_delay", f.HandshakeDelay}, {"latency_spike", f.LatencySpike},
		{"first_audio_median", f.FirstAudioMedian}, {"first_audio_max", f.FirstAudioMax}, {"retry_after", f.RetryAfter},
	} {
		if c.v < 0 {
			return bad(c.key, "%v is negative", c.v)
		}
	}
	if f.RefuseStatus != 0 && (f.RefuseStatus < 400 || f.RefuseStatus > 599) {
		return bad("refuse_status", "%d is not an HTTP error status (400..599)", f.RefuseStatus)
	}
	if f.RefuseCount > 0 && f.RefuseStatus == 0 {
		return bad("refuse_status", "must be set when refuse_count is")
	}
	if f.LatencySpikeRate > 0 && f.LatencySpike == 0 {
		return bad("latency_spike", "must be set when latency_spike_rate is")
	}
	if !(f.FirstAudioSigma >= 0 && f.FirstAudioSigma <= maxFirstAudioSigma) {
		return bad("first_audio_sigma", "%v is outside 0..%v", f.FirstAudioSigma, maxFirstAudioSigma)
	}
	if (f.FirstAudioSigma != 0 || f.FirstAudioMax != 0) && f.FirstAudioMedian == 0 {
		return bad("first_audio_median", "must be set when first_audio_sigma or first_audio_max is")
	}
	if f.FirstAudioMax != 0 && f.FirstAudioMax < f.FirstAudioMedian {
		return bad("first_audio_max", "%v is below first_audio_median %v", f.FirstAudioMax, f.FirstAudioMedian)
	}
	return nil
}

// Defaults of the latency and throttling faults.
const (
	defaultFirstAudioSigma = 0.5
	maxFirstAudioSigma     = 3.0
	firstAudioMaxFactor    = 20
	defaultRetryAfter      = time.Second
)

// retryAfter is RetryAfter or its default.
func (f Faults) retryAfter() time.Duration {
	if f.RetryAfter > 0 {
		return f.RetryAfter
	}
	return defaultRetryAfter
}

type faultKind uint8

const (
	faultNone faultKind = iota
	faultStall
	faultErrorEvent
	faultFailBefore
	faultStallAfterCreated
	faultRateLimited
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
	seed := uint64(f.Seed)
	if seed == 0 {
		// Seed 0 means "not reproducible": a time seed, so a demo region
		// with failure_rate does not fail the same responses every run.
		seed = uint64(time.Now().UnixNano())
	}
	fs.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
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
	case f.RateLimitResponses > 0:
		f.RateLimitResponses--
		rf.kind = faultRateLimited
		return rf
	case f.RateLimitRate > 0 && fs.rng.Float64() < f.RateLimitRate:
		rf.kind = faultRateLimited
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

// takeRefusal says whether this upgrade is refused, and with what status,
// consuming RefuseCount.
func (fs *faultState) takeRefusal() (status int, retryAfter time.Duration) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := &fs.f
	if f.RefuseStatus == 0 {
		return 0, 0
	}
	status, retryAfter = f.RefuseStatus, f.retryAfter()
	if f.RefuseCount > 0 {
		f.RefuseCount--
		if f.RefuseCount == 0 {
			f.RefuseStatus = 0 // used up: accept from now on
		}
	}
	return status, retryAfter
}

// takeAudioItemRefusal says whether this input_audio item is refused,
// consuming RefuseAudioItems.
func (fs *faultState) takeAudioItemRefusal() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.f.RefuseAudioItems <= 0 {
		return false
	}
	fs.f.RefuseAudioItems--
	return true
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

// firstOutputDelay is how long a response waits before its first output:
// base (Config.ResponseDelay), or a log-normal draw around
// FirstAudioMedian, plus LatencySpike with probability LatencySpikeRate.
// The second result says whether a spike was added.
func (fs *faultState) firstOutputDelay(base time.Duration) (time.Duration, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := &fs.f
	d := base
	if f.FirstAudioMedian > 0 {
		sigma := f.FirstAudioSigma
		if sigma == 0 {
			sigma = defaultFirstAudioSigma
		}
		limit := f.FirstAudioMax
		if limit == 0 {
			limit = firstAudioMaxFactor * f.FirstAudioMedian
		}
		d = time.Duration(float64(f.FirstAudioMedian) * math.Exp(sigma*fs.rng.NormFloat64()))
		d = min(max(d, 0), limit)
	}
	spiked := false
	if f.LatencySpikeRate > 0 && fs.rng.Float64() < f.LatencySpikeRate {
		d += f.LatencySpike
		spiked = true
	}
	return d, spiked
}

// draw reports true with probability p from the seeded generator.
func (fs *faultState) draw(p float64) bool {
	if p <= 0 {
		return false
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.rng.Float64() < p
}
