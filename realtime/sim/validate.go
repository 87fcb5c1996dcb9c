package sim

import (
	"fmt"
	"time"
)

// FaultError names the faults key (its yaml name) that is invalid, so the
// binary's config can report regions[i].simulator.faults.<Key>.
type FaultError struct {
	Key    string
	Reason string
}

func (e *FaultError) Error() string { return "sim: faults." + e.Key + ": " + e.Reason }

// Validate checks every field; the first problem is returned as a
// *FaultError. New and SetFaults apply faults as given, so callers that read
// faults from a file validate first.
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
		{"stall_first_audio", f.StallFirstAudio},
	} {
		if c.v < 0 {
			return bad(c.key, "%d is negative", c.v)
		}
	}
	if !(f.FailureRate >= 0 && f.FailureRate <= 1) { // also rejects NaN
		return bad("failure_rate", "%v is outside 0..1", f.FailureRate)
	}
	for _, c := range []struct {
		key string
		v   time.Duration
	}{{"expire_after", f.ExpireAfter}, {"handshake_delay", f.HandshakeDelay}} {
		if c.v < 0 {
			return bad(c.key, "%v is negative", c.v)
		}
	}
	if f.RefuseStatus != 0 && (f.RefuseStatus < 400 || f.RefuseStatus > 599) {
		return bad("refuse_status", "%d is not an HTTP error status (400..599)", f.RefuseStatus)
	}
	return nil
}
