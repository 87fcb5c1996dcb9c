package failover

import (
	"testing"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/stretchr/testify/require"
)

func TestSingleResponseInFlight(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"),
		realtime.ServerEvent{Type: realtime.EvOutputItemDone, ResponseID: "r1",
			Item: &realtime.Item{ID: "fc1", Type: "function_call", CallID: "call_1", Name: "lookup", Arguments: `{}`}})
	outs := s1.items()
	require.Len(t, outs, 1)
	require.Equal(t, "function_call_output", outs[0].Type)
	require.Equal(t, "call_1", outs[0].CallID)
	require.JSONEq(t, `{"ok":false,"error":"unknown function \"lookup\""}`, outs[0].Output)
	require.Empty(t, s1.responses(), "the follow-up waits for response.done")

	// A DTMF while the response runs is queued too.
	h.conv.DTMF('4')
	h.waitActor(func(c *Conversation) bool { return len(c.turns.queue) == 2 }, "two creates queued")
	require.Empty(t, s1.responses())

	h.push(s1, done("r1", realtime.StatusCompleted, nil))
	require.Len(t, s1.responses(), 1, "one create at a time")
	// The server's race error is not fatal: no swap, the create is dropped.
	h.push(s1, realtime.ServerEvent{Type: realtime.EvError, Error: &realtime.ErrorDetail{Type: "invalid_request_error",
		Code: "conversation_already_has_active_response", Message: "Conversation already has an active response"}})
	h.push(s1, created("r2"), done("r2", realtime.StatusCompleted, nil))
	require.Len(t, s1.responses(), 2, "the next queued create goes after response.done")
	require.Len(t, h.dialer.dialed(), 1, "recoverable errors never swap")
	note := s1.items()[1]
	require.Equal(t, "system", note.Role)
	require.Equal(t, "The caller pressed 4.", note.Content[0].Text)
}

func TestRecoverableErrorsDoNotSwap(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	for _, d := range []realtime.ErrorDetail{
		{Type: "invalid_request_error", Code: "response_cancel_not_active", Message: "Cancellation failed: no active response found"},
		{Type: "invalid_request_error", Code: "input_audio_buffer_commit_empty", Message: "buffer too small"},
		{Type: "invalid_request_error", Message: "Audio content of 900ms is already shorter than 1500ms"},
		{Type: "invalid_request_error", Code: "invalid_value", Message: "Only model output audio messages can be truncated"},
		{Type: "invalid_request_error", Code: "unknown_parameter", Message: "Unknown parameter"},
	} {
		h.push(s1, realtime.ServerEvent{Type: realtime.EvError, EventID: "event_1", Error: &d})
	}
	h.push(s1, realtime.ServerEvent{Type: "some.future.event"})
	require.Len(t, h.dialer.dialed(), 1)
	require.Empty(t, h.controlsOf(ControlSwapStarted))
	lines := h.logs.lines("failover: recoverable error event")
	require.Len(t, lines, 5)
	require.Equal(t, "event_1", lines[0]["event_id"])
	require.Equal(t, "response_cancel_not_active", lines[0]["code"])
	require.Equal(t, "call-1", lines[0]["call_id"])
	require.Equal(t, s1.id, lines[0]["session_id"])
	require.Equal(t, "A", lines[0]["region"])
}

// TestWatchdogs: (events, clock) → the stall trigger that swaps, or none.
func TestWatchdogs(t *testing.T) {
	cfg := Config{StallNoResponse: 3 * time.Second, StallFirstAudio: 4 * time.Second, StallMidAudio: 2 * time.Second}
	delta := func(ms int) realtime.ServerEvent {
		return realtime.ServerEvent{Type: realtime.EvOutputAudioDelta, ResponseID: "r1", ItemID: "a1", Audio: make([]byte, ms*bpm)}
	}
	for _, tc := range []struct {
		name    string
		events  []realtime.ServerEvent
		advance time.Duration
		want    string // ControlSwapStarted's reason; "" = no swap
	}{
		{"turn committed, no response.created", nil, 3 * time.Second, "stall_no_response"},
		{"turn committed, not yet stalled", nil, 2900 * time.Millisecond, ""},
		{"response.created, no output", []realtime.ServerEvent{created("r1")}, 4 * time.Second, "stall_first_audio"},
		{"response.created, not yet stalled", []realtime.ServerEvent{created("r1")}, 3 * time.Second, ""},
		{"audio stopped mid-answer", []realtime.ServerEvent{created("r1"), delta(100)}, 2 * time.Second, "stall_mid_audio"},
		{"audio done: no mid-answer watchdog", []realtime.ServerEvent{created("r1"), delta(100),
			{Type: realtime.EvOutputAudioDone, ResponseID: "r1", ItemID: "a1"}}, 2 * time.Second, ""},
		{"response done: nothing armed", []realtime.ServerEvent{created("r1"), delta(100),
			done("r1", realtime.StatusCompleted, nil)}, time.Minute, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s1 := startActive(t, cfg, testRegions())
			h.userTurn(s1, "u1", 1, 5)
			if len(tc.events) > 0 {
				h.push(s1, tc.events...)
			}
			h.advance(tc.advance)
			swaps := h.controlsOf(ControlSwapStarted)
			if tc.want == "" {
				require.Empty(t, swaps)
				return
			}
			require.Len(t, swaps, 1)
			require.Equal(t, tc.want, swaps[0].Reason)
		})
	}
}
