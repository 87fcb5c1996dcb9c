package failover

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"

	"github.com/sipbridge/sipbridge/realtime"
)

// Trigger is why a conversation left its session. Each failure is classified
// once, here; String is the label used in logs and metrics.
type Trigger uint8

const (
	// TriggerResponseFailed: response.done status failed with server_error
	// (or an error the bridge does not know).
	TriggerResponseFailed Trigger = iota + 1
	// TriggerRateLimited: response.done failed with inference_rate_limit_exceeded
	// or rate_limit_exceeded.
	TriggerRateLimited
	// TriggerAuth: insufficient_quota, invalid_api_key or another auth error;
	// the region's breaker opens at once.
	TriggerAuth
	// TriggerServerError: an `error` event of type server_error.
	TriggerServerError
	// TriggerExpiry: session_expired, close 1001, or expires_at reached.
	TriggerExpiry
	// TriggerClosed: the WebSocket closed with another code (1011, 4000, …)
	// or the session ended on a fatal protocol error.
	TriggerClosed
	// TriggerDropped: the connection dropped without a close frame, or the
	// event stream ended without a reason.
	TriggerDropped
	// TriggerStallNoResponse: no response.created StallNoResponse after the
	// caller's turn ended (or after our response.create).
	TriggerStallNoResponse
	// TriggerStallFirstAudio: no output StallFirstAudio after response.created.
	TriggerStallFirstAudio
	// TriggerStallMidAudio: audio stopped StallMidAudio mid-answer with no
	// response.done.
	TriggerStallMidAudio
	// TriggerRotation: proactive move to a fresh session at a turn boundary
	// before the session limit. Not a failure.
	TriggerRotation
	// TriggerConnect: the first session of the call could not be opened
	// (used for the give-up log and metrics of calls that never connected).
	TriggerConnect
	// TriggerSilentAnswer: the model answered in text, or with nothing, in
	// an audio call, again after being asked once more with the caller's
	// audio last (silent.go).
	TriggerSilentAnswer
)

func (t Trigger) String() string {
	switch t {
	case TriggerResponseFailed:
		return "response_failed"
	case TriggerRateLimited:
		return "rate_limited"
	case TriggerAuth:
		return "auth"
	case TriggerServerError:
		return "server_error_event"
	case TriggerExpiry:
		return "expiry"
	case TriggerClosed:
		return "closed"
	case TriggerDropped:
		return "dropped"
	case TriggerStallNoResponse:
		return "stall_no_response"
	case TriggerStallFirstAudio:
		return "stall_first_audio"
	case TriggerStallMidAudio:
		return "stall_mid_audio"
	case TriggerRotation:
		return "rotation"
	case TriggerConnect:
		return "connect"
	case TriggerSilentAnswer:
		return "silent_answer"
	}
	return "unknown"
}

// outcome is what the trigger says about the region's health (0 = nothing:
// expiry and rotation are the provider's limits, not faults).
func (t Trigger) outcome() Outcome {
	switch t {
	case TriggerRateLimited:
		return OutcomeThrottled
	case TriggerResponseFailed, TriggerServerError, TriggerSilentAnswer:
		return OutcomeResponseFailed
	case TriggerAuth:
		return OutcomeAuthError
	case TriggerClosed, TriggerDropped:
		return OutcomeSessionLost
	case TriggerStallNoResponse, TriggerStallFirstAudio, TriggerStallMidAudio:
		return OutcomeStall
	}
	return 0
}

// codeActiveResponse is the error a response.create racing one in flight
// gets; the conversation recovers from it (the code itself is realtime's
// wire vocabulary).
const codeActiveResponse = realtime.CodeActiveResponse

// classifyFailedResponse classifies a response.done with status failed.
// Every failed response swaps: a session that failed once tends to keep
// failing (protocol doc §6.4), so retrying in the same session is not tried.
func classifyFailedResponse(r *realtime.ResponseInfo) Trigger {
	var d *realtime.ErrorDetail
	if r != nil && r.StatusDetails != nil {
		d = r.StatusDetails.Error
	}
	switch {
	case realtime.IsAuthError(d):
		return TriggerAuth
	case d != nil && (d.Code == realtime.CodeRateLimitExceeded || d.Code == realtime.CodeInferenceRateLimitExceeded):
		return TriggerRateLimited
	}
	return TriggerResponseFailed
}

// classifyErrorEvent classifies an `error` event: a trigger, or 0 when the
// error is recoverable (most are: the session stays open, §3.2) and is only
// logged.
func classifyErrorEvent(d *realtime.ErrorDetail) Trigger {
	if d == nil {
		return 0
	}
	switch {
	case d.Code == realtime.CodeSessionExpired:
		return TriggerExpiry
	case d.Type == realtime.TypeServerError:
		return TriggerServerError
	case realtime.IsAuthError(d):
		return TriggerAuth
	case realtime.IsRateLimitCode(d.Code):
		// Throttled: the turn goes elsewhere at once (throttle.go).
		return TriggerRateLimited
	}
	return 0
}

// classifySessionEnd classifies the end of a session's event stream by its
// Err(). pastExpiry says the session's deadline has passed, so whatever
// ended it was the provider's limit.
func classifySessionEnd(err error, pastExpiry bool) Trigger {
	if pastExpiry {
		return TriggerExpiry
	}
	var ce *realtime.CloseError
	if errors.As(err, &ce) {
		switch {
		case ce.Code == 1001:
			return TriggerExpiry
		case ce.Code < 0:
			return TriggerDropped
		}
		return TriggerClosed
	}
	var pe *realtime.ProtocolError
	if errors.As(err, &pe) {
		if pe.Detail.Code == realtime.CodeSessionExpired {
			return TriggerExpiry
		}
		if realtime.IsAuthError(&pe.Detail) {
			return TriggerAuth
		}
		return TriggerClosed
	}
	return TriggerDropped
}

// dialErrorKind is the bounded `kind` label of a failed dial, and whether it
// is an auth failure (the breaker opens at once).
func dialErrorKind(err error) (kind string, auth bool) {
	var de *realtime.DialError
	if errors.As(err, &de) && de.StatusCode != 0 {
		switch {
		case de.StatusCode == 401 || de.StatusCode == 403:
			return "auth", true
		case de.StatusCode == 429:
			return "rate_limited", false
		case de.StatusCode >= 500:
			return "http_5xx", false
		case de.StatusCode >= 400:
			return "http_4xx", false
		}
		return "other", false
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout", false
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused", false
	case de != nil, errors.As(err, &ne):
		return "network", false
	}
	return "other", false
}

// recoverableErrorLevel says how loudly a recoverable error event is logged:
// the ones the protocol doc lists as expected races are not warnings.
func recoverableExpected(d *realtime.ErrorDetail) bool {
	switch d.Code {
	case realtime.CodeActiveResponse, realtime.CodeCancelNotActive, realtime.CodeCommitEmpty:
		return true
	}
	// Truncate races: "already shorter than", "Only model output audio
	// messages can be truncated" (§2.4).
	return strings.Contains(d.Message, "truncat") || strings.Contains(d.Message, "already shorter")
}
