package failover

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

// TestFrameToEndedSessionIsNotDropped: a caller frame that reaches the
// active session after its socket dropped, before the conversation took
// the end, is refused by the session but not lost: the swap replays it to
// the next session, so it is not counted as dropped (the soak's "caller
// frames dropped" counted swaps). A live session takes the frame as
// before; one whose send queue is full refuses it, and that frame is lost
// and counted.
func TestFrameToEndedSessionIsNotDropped(t *testing.T) {
	for _, tc := range []struct {
		name        string
		endFirst    bool
		queueFull   bool
		wantDropped float64
	}{
		{"socket dropped before the frame: replayed, not counted", true, false, 0},
		{"live session takes it", false, false, 0},
		{"live session's send queue full: the frame is lost, counted", false, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s1 := startActive(t, Config{}, testRegions())
			h.userTurn(s1, "u1", 1, 5)
			h.answer(s1, "r1", "a1", "Hi.", 200)
			h.pump()
			if tc.endFirst {
				s1.end(&realtime.CloseError{Code: -1})
			}
			s1.mu.Lock()
			s1.queueFull = tc.queueFull
			s1.mu.Unlock()
			h.run(h.frameInput(7)) // before the end is taken: the session is still the active one
			require.Equal(t, tc.wantDropped, h.metric("sipbridge_failover_caller_frames_dropped_total"))
			if tc.queueFull {
				require.False(t, bytes.HasSuffix(s1.appended(), frameOf(7)))
				return
			}
			if !tc.endFirst {
				require.True(t, bytes.HasSuffix(s1.appended(), frameOf(7)))
				return
			}
			s2 := h.session(2)
			h.waitActive(s2)
			require.True(t, bytes.Contains(s2.appended(), frameOf(7)), "the frame reached the next session")
		})
	}
}
