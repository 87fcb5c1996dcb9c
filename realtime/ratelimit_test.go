package realtime

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"120", 2 * time.Minute, true},
		{"999999999999", time.Hour, true},
		{"Mon, 07 Dec 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Mon, 07 Dec 2026 11:00:00 GMT", 0, true},
		{"Tue, 08 Dec 2026 12:00:00 GMT", time.Hour, true},
		{"", 0, false},
		{"-3", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := ParseRetryAfter(tc.in, now)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRetryAfterFromMessage(t *testing.T) {
	tests := []struct {
		msg  string
		want time.Duration
		ok   bool
	}{
		{"Rate limit reached for gpt-realtime on requests per min (RPM). Please try again in 3s. Visit …", 3 * time.Second, true},
		{"… Please try again in 1.234s.", 1234 * time.Millisecond, true},
		{"Please try again in 350ms.", 350 * time.Millisecond, true},
		{"Please try again in 1m30s.", 90 * time.Second, true},
		{"Please Try Again In 20 seconds.", 20 * time.Second, true},
		{"try again in 2 minutes", 2 * time.Minute, true},
		{"try again in 9999h", time.Hour, true},
		{"You exceeded your current quota", 0, false},
		{"try again later", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			got, ok := RetryAfterFromMessage(tc.msg)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRateLimitFromEvent(t *testing.T) {
	failed := func(code, msg string) ServerEvent {
		return ServerEvent{Type: EvResponseDone, Response: &ResponseInfo{Status: StatusFailed,
			StatusDetails: &StatusDetails{Type: StatusFailed, Error: &ErrorDetail{Type: "invalid_request_error", Code: code, Message: msg}}}}
	}
	tests := []struct {
		name   string
		ev     ServerEvent
		source string
		wait   time.Duration
	}{
		{"response failed, inference limit", failed(CodeInferenceRateLimitExceeded, "Please try again in 2s."), RateLimitResponse, 2 * time.Second},
		{"response failed, no wait given", failed(CodeInferenceRateLimitExceeded, ""), RateLimitResponse, 0},
		{"error event", ServerEvent{Type: EvError, Error: &ErrorDetail{Code: CodeRateLimitExceeded, Message: "try again in 500ms"}}, RateLimitErrorEvent, 500 * time.Millisecond},
		{"server error is an outage", failed("", "The server had an error"), "", 0},
		{"quota is not throttling", failed("insufficient_quota", "You exceeded your current quota"), "", 0},
		{"completed", ServerEvent{Type: EvResponseDone, Response: &ResponseInfo{Status: StatusCompleted}}, "", 0},
		{"failed without details", ServerEvent{Type: EvResponseDone, Response: &ResponseInfo{Status: StatusFailed}}, "", 0},
		{"other event", ServerEvent{Type: EvRateLimitsUpdated}, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rl, ok := RateLimitFromEvent("east", tc.ev)
			if tc.source == "" {
				require.False(t, ok)
				return
			}
			require.True(t, ok)
			require.Equal(t, tc.source, rl.Source)
			require.Equal(t, "east", rl.Region)
			require.Equal(t, tc.wait, rl.RetryAfter)
			require.Contains(t, rl.Error(), "east rate limited")
		})
	}
}

func TestRateLimitFromHTTP(t *testing.T) {
	now := time.Now()
	h := func(v string) http.Header {
		if v == "" {
			return http.Header{}
		}
		return http.Header{"Retry-After": {v}}
	}
	body := `{"error":{"message":"Rate limit reached for requests. Please try again in 4s.","type":"requests","code":"rate_limit_exceeded"}}`
	rl := rateLimitFromHTTP("r", 429, h("7"), body, now)
	require.NotNil(t, rl)
	require.Equal(t, 7*time.Second, rl.RetryAfter, "the header wins")
	require.Equal(t, CodeRateLimitExceeded, rl.Code)
	require.Equal(t, 4*time.Second, rateLimitFromHTTP("r", 429, h(""), body, now).RetryAfter, "else the body")
	require.Zero(t, rateLimitFromHTTP("r", 429, h(""), "{}", now).RetryAfter)
	require.NotNil(t, rateLimitFromHTTP("r", 503, h("2"), "", now), "overload with a stated wait")
	require.Nil(t, rateLimitFromHTTP("r", 503, h(""), "", now), "a bare 503 is an outage")
	require.Nil(t, rateLimitFromHTTP("r", 401, h("2"), "", now))

	de := &DialError{Region: "r", StatusCode: 429, Err: errors.Join(rl, errors.New("ws: 429"))}
	got, ok := AsRateLimit(de)
	require.True(t, ok)
	require.Same(t, rl, got)
	_, ok = AsRateLimit(&DialError{Region: "r", StatusCode: 500})
	require.False(t, ok)
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "0", "Mon, 07 Dec 2026 12:00:30 GMT", "-1", "1e9", "99999999999999999999999", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if !ok {
			require.Zero(t, d)
			return
		}
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, time.Hour)
	})
}

func FuzzRetryAfterFromMessage(f *testing.F) {
	for _, s := range []string{"Please try again in 3s.", "try again in 1m30.5s", "try again in 20 seconds", "try again in 99999999999999999999h", "try again in .s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := RetryAfterFromMessage(s)
		if !ok {
			require.Zero(t, d)
			return
		}
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, time.Hour)
	})
}
