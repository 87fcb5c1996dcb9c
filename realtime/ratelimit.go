package realtime

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Where a RateLimitError came from.
const (
	// RateLimitHTTP is a refused upgrade: HTTP 429 (Retry-After header).
	RateLimitHTTP = "http_429"
	// RateLimitErrorEvent is an `error` event with a rate-limit code.
	RateLimitErrorEvent = "error_event"
	// RateLimitResponse is a response.done failed with a rate-limit error
	// in status_details (inference_rate_limit_exceeded, §3.7).
	RateLimitResponse = "response_failed"
)

// The rate-limit error codes are CodeInferenceRateLimitExceeded and
// CodeRateLimitExceeded (wire.go; rate_limit_exceeded is the REST and upgrade
// code). insufficient_quota is not one: it is billing, not throttling, and
// waiting does not cure it.

// RateLimitError is the provider throttling a region: not an outage. The
// region should be set aside for RetryAfter (when the provider said; 0 =
// not given) and taken back afterwards.
type RateLimitError struct {
	Region     string
	Source     string // RateLimitHTTP, RateLimitErrorEvent, RateLimitResponse
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	s := fmt.Sprintf("realtime: %s rate limited (%s", e.Region, e.Source)
	if e.Code != "" {
		s += " " + e.Code
	}
	s += ")"
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %v", e.RetryAfter)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// AsRateLimit finds a *RateLimitError in err's chain (a Dial refused with
// 429 carries one).
func AsRateLimit(err error) (*RateLimitError, bool) {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl, true
	}
	// An upgrade refused with 429 is throttling whatever else it carries.
	var de *DialError
	if errors.As(err, &de) && de.StatusCode == http.StatusTooManyRequests {
		return &RateLimitError{Region: de.Region, Source: RateLimitHTTP, Code: CodeRateLimitExceeded, RetryAfter: de.RetryAfter}, true
	}
	return nil, false
}

// IsRateLimitCode reports whether an error code means throttling.
func IsRateLimitCode(code string) bool {
	return code == CodeInferenceRateLimitExceeded || code == CodeRateLimitExceeded
}

// RateLimitFromEvent classifies a server event: an `error` event with a
// rate-limit code, or a response.done failed with one in
// status_details.error. RetryAfter comes from the message's "try again in
// …" when the provider gave one. region fills RateLimitError.Region.
func RateLimitFromEvent(region string, ev ServerEvent) (*RateLimitError, bool) {
	var d *ErrorDetail
	source := ""
	switch ev.Type {
	case EvError:
		d, source = ev.Error, RateLimitErrorEvent
	case EvResponseDone:
		if r := ev.Response; r != nil && r.Status == StatusFailed && r.StatusDetails != nil {
			d, source = r.StatusDetails.Error, RateLimitResponse
		}
	}
	if d == nil || !IsRateLimitCode(d.Code) {
		return nil, false
	}
	wait, _ := RetryAfterFromMessage(d.Message)
	return &RateLimitError{Region: region, Source: source, Code: d.Code, Message: d.Message, RetryAfter: wait}, true
}

// maxRetryAfter bounds a provider's wait: a larger or absurd value is
// capped, not trusted blindly (a region out for days by one header).
const maxRetryAfter = time.Hour

// ParseRetryAfter reads an HTTP Retry-After value (RFC 9110 §10.2.3):
// delay-seconds or an HTTP-date, relative to now. A date in the past is
// 0; values above an hour are capped. ok is false for anything else.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		if n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}

// retryInRE matches the API's "Please try again in 1.2s." / "in 350ms" /
// "in 1m30s" / "in 20 seconds".
var retryInRE = regexp.MustCompile(`(?i)try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+|\d+(?:\.\d+)? ?(?:seconds?|secs?|minutes?|mins?))\b`)

// RetryAfterFromMessage extracts the wait from an error message ("…
// Please try again in 1.5s."). ok is false when the message gives none.
func RetryAfterFromMessage(msg string) (time.Duration, bool) {
	m := retryInRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, false
	}
	s := strings.ToLower(strings.ReplaceAll(m[1], " ", ""))
	for _, u := range []struct{ long, short string }{{"seconds", "s"}, {"second", "s"}, {"secs", "s"}, {"sec", "s"},
		{"minutes", "m"}, {"minute", "m"}, {"mins", "m"}, {"min", "m"}} {
		if strings.HasSuffix(s, u.long) {
			s = strings.TrimSuffix(s, u.long) + u.short
			break
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

// rateLimitFromHTTP builds the RateLimitError of a refused upgrade: 429,
// or a 503 that gives Retry-After (overload with a stated wait), from the
// Retry-After header, else the body's message.
func rateLimitFromHTTP(region string, status int, h http.Header, body string, now time.Time) *RateLimitError {
	wait, ok := ParseRetryAfter(h.Get("Retry-After"), now)
	if status != http.StatusTooManyRequests && !(status == http.StatusServiceUnavailable && ok) {
		return nil
	}
	if !ok {
		wait, _ = RetryAfterFromMessage(body)
	}
	code := ""
	if strings.Contains(body, CodeRateLimitExceeded) {
		code = CodeRateLimitExceeded
	}
	return &RateLimitError{Region: region, Source: RateLimitHTTP, Code: code, Message: body, RetryAfter: wait}
}

// RateLimit is one entry of rate_limits.updated (§3.8): the named limit
// (requests, tokens), how much of it is left and when it resets.
type RateLimit struct {
	Name         string  `json:"name"`
	Limit        int64   `json:"limit"`
	Remaining    int64   `json:"remaining"`
	ResetSeconds float64 `json:"reset_seconds"`
}
