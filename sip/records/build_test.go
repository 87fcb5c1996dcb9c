package records

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

func TestResponseFromDone(t *testing.T) {
	done := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	decode := func(s string) realtime.ServerEvent {
		ev, err := realtime.DecodeServerEvent([]byte(s), realtime.DialectGA)
		require.NoError(t, err)
		return ev
	}
	u := realtime.Usage{Kind: realtime.UsageTokens, TotalTokens: 5}
	tests := []struct {
		name string
		ev   realtime.ServerEvent
		want Response
	}{
		{"completed", decode(`{"type":"response.done","response":{"id":"resp_1","status":"completed"}}`),
			Response{ResponseID: "resp_1", Status: "completed"}},
		{"failed, server_error (§3.7)", decode(`{"type":"response.done","response":{"id":"resp_2","status":"failed",
			"status_details":{"type":"failed","error":{"type":"server_error","code":null,"message":"The server had an error"}}}}`),
			Response{ResponseID: "resp_2", Status: "failed", ErrorType: "server_error", ErrorMessage: "The server had an error"}},
		{"failed, rate limit", decode(`{"type":"response.done","response":{"id":"resp_3","status":"failed",
			"status_details":{"type":"failed","error":{"type":"invalid_request_error","code":"inference_rate_limit_exceeded"}}}}`),
			Response{ResponseID: "resp_3", Status: "failed", ErrorType: "invalid_request_error", ErrorCode: "inference_rate_limit_exceeded"}},
		{"cancelled by turn", decode(`{"type":"response.done","response":{"id":"resp_4","status":"cancelled","status_details":{"type":"cancelled","reason":"turn_detected"}}}`),
			Response{ResponseID: "resp_4", Status: "cancelled", Reason: "turn_detected"}},
		{"no response object", realtime.ServerEvent{Type: realtime.EvResponseDone},
			Response{Status: "failed", ErrorType: "no_response"}},
		{"no status", decode(`{"type":"response.done","response":{"id":"resp_5"}}`),
			Response{ResponseID: "resp_5", Status: "failed", ErrorType: "no_status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ResponseFromDone("eu", "sess_1", realtime.PurposeReplay, tt.ev, u, done)
			tt.want.Region, tt.want.SessionID, tt.want.Purpose, tt.want.Done, tt.want.Usage = "eu", "sess_1", realtime.PurposeReplay, done, u
			require.Equal(t, tt.want, got)
		})
	}
}

func TestResponseAccount(t *testing.T) {
	r := Response{Status: realtime.StatusCancelled, AudioMs: 4000, PlayedMs: 1000,
		Usage: realtime.Usage{Kind: realtime.UsageTokens, TotalTokens: 300, InputTokens: 100, OutputTokens: 200, OutputAudio: 200}}
	r.Account(realtime.Prices{OutputAudio: 80})
	require.InDelta(t, 0.016, r.Cost, 1e-12)
	require.Equal(t, int64(150), r.WastedTokens)
}

func TestTruncateUTF8(t *testing.T) {
	require.Equal(t, "abc", truncateUTF8("abc", 5))
	require.Equal(t, "ab…", truncateUTF8("abcdef", 2))
	got := truncateUTF8(strings.Repeat("é", 10), 5) // 2 bytes each: cut to 4
	require.Equal(t, "éé…", got)
}
