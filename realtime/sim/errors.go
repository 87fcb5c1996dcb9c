package sim

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Error types and codes the simulator puts in `error` events and in failed
// responses' status_details (realtime-protocol.md §3.2, §6.1).
const (
	errTypeInvalidRequest = "invalid_request_error"
	errTypeServer         = "server_error"

	codeInvalidEvent          = "invalid_event"
	codeInvalidValue          = "invalid_value"
	codeInvalidType           = "invalid_type"
	codeUnknownParameter      = "unknown_parameter"
	codeMissingRequired       = "missing_required_parameter"
	codeStringTooLong         = "string_above_max_length"
	codeCommitEmpty           = "input_audio_buffer_commit_empty"
	codeActiveResponse        = "conversation_already_has_active_response"
	codeCancelNotActive       = "response_cancel_not_active"
	codeCannotUpdateVoice     = "cannot_update_voice"
	codeUnsupportedContent    = "unsupported_content_type"
	codeSessionExpired        = "session_expired"
	codeBetaShapeDisabled     = "beta_api_shape_disabled"
	codeInvalidAPIKey         = "invalid_api_key"
	codeRateLimitExceeded     = "rate_limit_exceeded"
	codeInferenceRateLimit    = "inference_rate_limit_exceeded"
	maxEventIDLen             = 512 // GA spec: event_id is at most 512 characters (§2)
	maxAppendBytes            = 15 << 20
	minCommitMs               = 100 // observed minimum for input_audio_buffer.commit (§2.2)
	betaDisabledMessage       = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
	closeCodeBetaDisabled     = 4000
	truncateNotAudioMessage   = "Only model output audio messages can be truncated"
	cancelNotActiveMessage    = "Cancellation failed: no active response found"
	cannotUpdateVoiceMessage  = "Cannot update a conversation's voice if assistant audio is present."
	typeFieldMissingMessage   = "The 'type' field is missing."
	outputAudioBufferWSReason = "output_audio_buffer.clear is only supported on WebRTC and SIP connections."
)

// apiError is the `error` object of an `error` event. Empty Code/Param are
// sent as JSON null, as the real service does (§3.2).
type apiError struct {
	Type    string
	Code    string
	Message string
	Param   string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s/%s: %s", e.Type, e.Code, e.Message)
}

// wire renders the error object, echoing the client's event_id (§2: "If that
// event causes an error, the server echoes it back in error.event_id").
func (e *apiError) wire(clientEventID string) map[string]any {
	return map[string]any{
		"type":     e.Type,
		"code":     nullIfEmpty(e.Code),
		"message":  e.Message,
		"param":    nullIfEmpty(e.Param),
		"event_id": nullIfEmpty(clientEventID),
	}
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func invalidReq(code, param, format string, args ...any) *apiError {
	return &apiError{Type: errTypeInvalidRequest, Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

func errUnknownParam(param string) *apiError {
	return invalidReq(codeUnknownParameter, param, "Unknown parameter: '%s'.", param)
}

func errMissingParam(param string) *apiError {
	return invalidReq(codeMissingRequired, param, "Missing required parameter: '%s'.", param)
}

func errInvalidType(param, want, got string) *apiError {
	return invalidReq(codeInvalidType, param, "Invalid type for '%s': expected %s, but got %s instead.", param, want, got)
}

// errInvalidEnum follows the API's wording for enum violations:
// "Invalid value: 'x'. Supported values are: 'a', 'b', and 'c'."
func errInvalidEnum(param, got string, supported []string) *apiError {
	return invalidReq(codeInvalidValue, param, "Invalid value: '%s'. Supported values are: %s.", got, quoteList(supported))
}

// errOutOfRange is used for numeric range violations. The brief asks for the
// invalid_value code; the message follows the API's usual range wording.
func errOutOfRange(param string, got float64, lo, hi float64) *apiError {
	if got < lo {
		return invalidReq(codeInvalidValue, param, "Invalid '%s': value below minimum. Expected a value >= %s, but got %s instead.", param, fmtNum(lo), fmtNum(got))
	}
	return invalidReq(codeInvalidValue, param, "Invalid '%s': value above maximum. Expected a value <= %s, but got %s instead.", param, fmtNum(hi), fmtNum(got))
}

func errItemNotFound(param, id string) *apiError {
	return invalidReq(codeInvalidValue, param, "Invalid value: '%s'. No conversation item with this id exists.", id)
}

func errActiveResponse(activeID string) *apiError {
	// Exact wording from §2.6.
	return invalidReq(codeActiveResponse, "",
		"Conversation already has an active response in progress: %s. Wait until the response is finished before creating a new one.", activeID)
}

func errCommitEmpty(bufferedMs float64) *apiError {
	// Exact wording from §2.2.
	return invalidReq(codeCommitEmpty, "",
		"Error committing input audio buffer: buffer too small. Expected at least %dms of audio, but buffer only has %.2fms of audio.", minCommitMs, bufferedMs)
}

func errSessionExpired(minutes int) *apiError {
	return invalidReq(codeSessionExpired, "", "%s", sessionExpiredMessage(minutes))
}

func sessionExpiredMessage(minutes int) string {
	return fmt.Sprintf("Your session hit the maximum duration of %d minutes.", minutes)
}

// serverErrorMessage is the transient-fault text of §3.7, carrying this
// session's id so a bridge can log it the way operators are asked to.
func serverErrorMessage(sessionID string) string {
	return "The server had an error while processing your request. Sorry about that! " +
		"You can retry your request, or contact us through our help center at help.openai.com if the error persists. " +
		"(include session ID in your message: " + sessionID + "). We recommend you retry your request."
}

// rateLimitMessage follows the API's rate-limit wording ("Rate limit
// reached for … Please try again in 1.2s."); the exact realtime text is not
// in the reference, so the usual REST wording is used.
func rateLimitMessage(model string, seconds float64) string {
	return fmt.Sprintf("Rate limit reached for %s on requests per min (RPM). Please try again in %ss. "+
		"Visit https://platform.openai.com/account/rate-limits to learn more.", model, fmtNum(seconds))
}

// retryAfterSeconds is d in whole seconds, rounded up, at least 1: the
// Retry-After header carries integer seconds (RFC 9110 §10.2.3).
func retryAfterSeconds(d time.Duration) float64 {
	return max(1, math.Ceil(d.Seconds()))
}

func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + v + "'"
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	case 2:
		return q[0] + " and " + q[1]
	}
	return strings.Join(q[:len(q)-1], ", ") + ", and " + q[len(q)-1]
}

func fmtNum(f float64) string {
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%g", f)
}
