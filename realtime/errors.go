package realtime

import (
	"errors"
	"fmt"
	"time"
)

// ErrSessionClosed is returned by sends on a session that has ended.
var ErrSessionClosed = errors.New("realtime: session closed")

// DialError is a failed WebSocket upgrade: refused connection, timeout, or
// an HTTP status other than 101 (401, 429, 5xx, …). StatusCode is 0 when no
// HTTP response arrived.
type DialError struct {
	Region     string
	StatusCode int
	Body       string // first bytes of the response body, if any
	// RetryAfter is the wait a 429 (or 503) asked for: the Retry-After
	// header, else the body's "try again in …"; 0 = not given. A 429 also
	// carries a *RateLimitError in Err (AsRateLimit).
	RetryAfter time.Duration
	Err        error
}

func (e *DialError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("realtime: dial %s: HTTP %d: %s", e.Region, e.StatusCode, e.Body)
	}
	return fmt.Sprintf("realtime: dial %s: %v", e.Region, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// CloseError is a session that ended because the WebSocket closed or dropped.
// Code is the close code (1001 session limit, 1011, 4000 beta disabled, …),
// or -1 when the connection dropped without a close frame.
type CloseError struct {
	Code   int
	Reason string
	Err    error
}

func (e *CloseError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("realtime: connection dropped: %v", e.Err)
	}
	return fmt.Sprintf("realtime: closed %d %q", e.Code, e.Reason)
}

func (e *CloseError) Unwrap() error { return e.Err }

// ProtocolError is an `error` event the session treated as fatal (for
// example beta_api_shape_disabled or session_expired).
type ProtocolError struct {
	Detail ErrorDetail
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("realtime: %s/%s: %s", e.Detail.Type, e.Detail.Code, e.Detail.Message)
}
