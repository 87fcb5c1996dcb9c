package sip

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/emiago/sipgo/sip"
)

// EndReason is every way a call ends, including INVITEs we reject. Each one
// maps once (terminations below) to the final response sent when the call
// was not answered yet, the BYE Reason header (RFC 3326) sent when it was
// and we hang up, a metric label and a log level.
type EndReason uint8

const (
	EndInternal EndReason = iota // a bug or an unexpected error; the zero value

	// The call was answered (or being answered) and ended.
	EndCallerBye    // the caller sent BYE
	EndCancelled    // CANCEL before our 200 (sipgo answers 487)
	EndNoACK        // no ACK for our 200 within ACKTimeout (RFC 3261 §13.3.1.4)
	EndMediaTimeout // no RTP from the caller for MediaTimeout
	EndMediaError   // the RTP stream failed
	EndModelHangup  // the model ended the call (end_call tool)
	EndTransferred  // REFER accepted and the target answered (RFC 3515)
	EndAIFailed     // the conversation failed: every region failed, nobody to transfer to
	EndShutdown     // the server is stopping (HangupAll, Serve context ended)
	EndDialogEnded  // sipgo ended the dialog under us (transaction terminated)
	EndBadAnswer    // late offer: the ACK carried no acceptable SDP answer (RFC 3261 §13.2.1)

	// Session timers (RFC 4028 §10, timers.go).
	EndSessionExpired // the caller was the refresher and no refresh came in time
	EndRefreshFailed  // our session refresh got 408 or 481, or no answer

	// The INVITE was rejected before any media or AI was set up.
	EndRejectBadRequest           // malformed request (400)
	EndRejectUnsupportedMediaType // body not application/sdp (415)
	EndRejectBadExtension         // Require: an extension we lack (420)
	EndRejectUnsupportedURIScheme // Request-URI not sip/sips/tel (416)
	EndRejectVersion              // not SIP/2.0 (505)
	EndRejectTooManyHops          // Max-Forwards: 0 (483)
	EndRejectNoCommonCodec        // no PCMU/PCMA over plain RTP (488)
	EndRejectMaxCalls             // MaxCalls reached (503)
	EndRejectDraining             // Drain was called (503)
	EndRejectNoRTPPort            // the RTP port range is exhausted (503)
	EndRejectMediaSetup           // the RTP stream could not be created (500)
	EndRejectAIUnavailable        // the conversation could not be created (503)
	EndRejectSessionInterval      // Session-Expires below our Min-SE (422, RFC 4028 §6)
	EndRejectNoCapacity           // every region is at max_sessions or throttled (503, Retry-After from the pool)
	EndRejectUnconfirmed          // the source holds MaxUnconfirmedPerSource un-ACKed calls (503, limits.go)

	endReasonCount
)

// Termination is what one EndReason means.
type Termination struct {
	// Label is the metric label (sipbridge_call_end_total{reason}).
	Label string
	// Status and Phrase are the final response when the call ends before
	// our 200 OK was sent.
	Status int
	Phrase string
	// RetryAfter adds Retry-After to that response (RFC 3261 §21.5.4).
	RetryAfter bool
	// Hangup: after answering, we send BYE carrying Reason (RFC 3326).
	Hangup bool
	Reason string
	// Level is the level of the call's end log line.
	Level slog.Level
}

var terminations = [endReasonCount]Termination{
	EndInternal:     {Label: "internal_error", Status: sip.StatusInternalServerError, Phrase: "Server Internal Error", Hangup: true, Reason: `Q.850;cause=41;text="internal error"`, Level: slog.LevelError},
	EndCallerBye:    {Label: "caller_bye", Status: sip.StatusRequestTerminated, Phrase: "Request Terminated", Level: slog.LevelInfo},
	EndCancelled:    {Label: "cancelled", Status: sip.StatusRequestTerminated, Phrase: "Request Terminated", Level: slog.LevelInfo},
	EndNoACK:        {Label: "no_ack", Status: sip.StatusRequestTimeout, Phrase: "Request Timeout", Hangup: true, Reason: `SIP;cause=408;text="ACK timeout"`, Level: slog.LevelWarn},
	EndMediaTimeout: {Label: "media_timeout", Status: sip.StatusRequestTimeout, Phrase: "Request Timeout", Hangup: true, Reason: `Q.850;cause=102;text="RTP timeout"`, Level: slog.LevelWarn},
	EndMediaError:   {Label: "media_error", Status: sip.StatusInternalServerError, Phrase: "Server Internal Error", Hangup: true, Reason: `Q.850;cause=41;text="media error"`, Level: slog.LevelError},
	EndModelHangup:  {Label: "model_hangup", Status: sip.StatusTemporarilyUnavailable, Phrase: "Temporarily Unavailable", Hangup: true, Reason: `Q.850;cause=16;text="model ended call"`, Level: slog.LevelInfo},
	EndTransferred:  {Label: "transferred", Status: sip.StatusTemporarilyUnavailable, Phrase: "Temporarily Unavailable", Hangup: true, Reason: `Q.850;cause=16;text="transferred"`, Level: slog.LevelInfo},
	EndAIFailed:     {Label: "ai_failed", Status: sip.StatusServiceUnavailable, Phrase: "Service Unavailable", RetryAfter: true, Hangup: true, Reason: `Q.850;cause=41;text="AI unavailable"`, Level: slog.LevelError},
	EndShutdown:     {Label: "shutdown", Status: sip.StatusServiceUnavailable, Phrase: "Service Unavailable", RetryAfter: true, Hangup: true, Reason: `Q.850;cause=41;text="server shutting down"`, Level: slog.LevelInfo},
	EndDialogEnded:  {Label: "dialog_ended", Status: sip.StatusInternalServerError, Phrase: "Server Internal Error", Level: slog.LevelWarn},
	EndBadAnswer:    {Label: "bad_sdp_answer", Status: sip.StatusNotAcceptableHere, Phrase: "Not Acceptable Here", Hangup: true, Reason: `SIP;cause=488;text="no acceptable SDP answer"`, Level: slog.LevelWarn},

	EndSessionExpired: {Label: "session_expired", Status: sip.StatusRequestTimeout, Phrase: "Request Timeout", Hangup: true, Reason: `SIP;cause=408;text="Session timer expired"`, Level: slog.LevelWarn},
	EndRefreshFailed:  {Label: "session_refresh_failed", Status: sip.StatusRequestTimeout, Phrase: "Request Timeout", Hangup: true, Reason: `SIP;cause=408;text="Session refresh failed"`, Level: slog.LevelWarn},

	EndRejectBadRequest:           {Label: "bad_request", Status: sip.StatusBadRequest, Phrase: "Bad Request", Level: slog.LevelWarn},
	EndRejectUnsupportedMediaType: {Label: "unsupported_media_type", Status: sip.StatusUnsupportedMediaType, Phrase: "Unsupported Media Type", Level: slog.LevelWarn},
	EndRejectBadExtension:         {Label: "bad_extension", Status: sip.StatusBadExtension, Phrase: "Bad Extension", Level: slog.LevelInfo},
	EndRejectUnsupportedURIScheme: {Label: "unsupported_uri_scheme", Status: 416, Phrase: "Unsupported URI Scheme", Level: slog.LevelInfo},
	EndRejectVersion:              {Label: "version_not_supported", Status: sip.StatusVersionNotSupported, Phrase: "Version Not Supported", Level: slog.LevelWarn},
	EndRejectTooManyHops:          {Label: "too_many_hops", Status: sip.StatusTooManyHops, Phrase: "Too Many Hops", Level: slog.LevelWarn},
	EndRejectNoCommonCodec:        {Label: "no_common_codec", Status: sip.StatusNotAcceptableHere, Phrase: "Not Acceptable Here", Level: slog.LevelInfo},
	EndRejectMaxCalls:             {Label: "max_calls", Status: sip.StatusServiceUnavailable, Phrase: "Service Unavailable", RetryAfter: true, Level: slog.LevelWarn},
	EndRejectDraining:             {Label: "draining", Status: sip.StatusServiceUnavailable, Phrase: "Service Unavailable", RetryAfter: true, Level: slog.LevelInfo},
	EndRejectNoRTPPort:            {Label: "no_rtp_port", Status: sip.StatusServiceUnavailable, Phrase: "Service Unavailable", RetryAfter: true, Level: slog.LevelError},
	EndRejectMediaSetup:           {Label: "media_setup_failed", Status: sip.StatusInternalServerError, Phrase: "Server Internal Error", Level: slog.LevelError},
	EndRejectNoCapacity:           {Label: "no_capacity", Status: sip.StatusServiceUnavailable, Phrase: "Service Unavailable", Level: slog.LevelWarn},
	EndRejectAIUnavailable:        {Label: "ai_unavailable", Status: sip.StatusServiceUnavailable, Phrase: "Service Unavailable", RetryAfter: true, Level: slog.LevelError},
	EndRejectSessionInterval:      {Label: "session_interval_too_small", Status: 422, Phrase: "Session Interval Too Small", Level: slog.LevelInfo},
	EndRejectUnconfirmed:          {Label: "unconfirmed_per_source", Status: sip.StatusServiceUnavailable, Phrase: "Service Unavailable", RetryAfter: true, Level: slog.LevelWarn},
}

// Termination returns what r means.
func (r EndReason) Termination() Termination {
	if r >= endReasonCount {
		return terminations[EndInternal]
	}
	return terminations[r]
}

// String returns the metric label.
func (r EndReason) String() string { return r.Termination().Label }

// IsRejection reports whether r is an INVITE rejected before setup.
func (r EndReason) IsRejection() bool { return r >= EndRejectBadRequest && r < endReasonCount }

// endCause is the cause of a call context's cancellation: why it ended and
// what to say in the final response when it ends before the answer.
type endCause struct {
	reason EndReason
	err    error
	phrase string       // overrides Termination.Phrase (a reason for a 400)
	hdrs   []sip.Header // extra headers on the final response (Accept, Unsupported, Warning)
}

func (e *endCause) Error() string {
	if e.err != nil {
		return fmt.Sprintf("sip: call ended: %s: %v", e.reason, e.err)
	}
	return "sip: call ended: " + e.reason.String()
}

func (e *endCause) Unwrap() error { return e.err }

// reasonOf finds the EndReason in a context cause (EndInternal when none).
func reasonOf(cause error) (*endCause, bool) {
	var ec *endCause
	if errors.As(cause, &ec) {
		return ec, true
	}
	return nil, false
}
