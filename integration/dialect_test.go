package integration

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// TestPreviewFallbackRegionTakesTheCall: the assistant's voice is marin, a
// GA-only voice the preview (beta) shape refuses on session.update. The
// fallback region speaks that shape; when the GA region fails, the fallback
// must still take the turn: its session is configured with the documented
// stand-in voice (coral), accepted, and the caller hears its answer.
func TestPreviewFallbackRegionTakesTheCall(t *testing.T) {
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	west.URL = west.URL[:len(west.URL)-len("/openai/v1/realtime?model=gpt-realtime")] +
		"/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-realtime"
	br := startBridge(t, "assistant:\n  voice: marin\n", east, west)
	ph := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target()})
	require.NoError(t, err)
	turn(t, ctx, call, eastHz, 20*time.Second)
	waitFor(t, 10*time.Second, "turn 1 to complete", func() bool {
		rec, _ := lastSession(east)
		return completedResponses(rec) >= 1 && call.SpeakingDone()
	})
	time.Sleep(2 * time.Second) // let the first answer play out

	east.Sim.SetFaults(sim.Faults{FailBeforeAudio: 1, Sticky: true})
	turn(t, ctx, call, westHz, 30*time.Second)
	br.WaitLog(10*time.Second, "session swapped", "new_region=west")

	waitFor(t, 20*time.Second, "west's answer to complete", func() bool {
		rec, _ := lastSession(west)
		return completedResponses(rec) >= 1
	})
	rec, ok := lastSession(west)
	require.True(t, ok)
	require.Equal(t, realtime.DialectPreview, rec.Dialect)
	require.NotEmpty(t, rec.SessionUpdates)
	for _, raw := range rec.SessionUpdates {
		var s struct {
			Voice string `json:"voice"`
			Model string `json:"model"`
		}
		require.NoError(t, json.Unmarshal(raw, &s))
		require.Equal(t, "coral", s.Voice, "the preview region gets the stand-in for marin")
		require.Empty(t, s.Model, "session.model is never sent")
	}
	for _, e := range rec.Errors {
		require.NotContains(t, e.Message, "Invalid value", "the preview region refused the session")
	}
}
