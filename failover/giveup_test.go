package failover

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

// TestGiveUpWaitsForTheApology: ControlGiveUp (after which the call may hang
// up or transfer at once) comes only when the apology has played, or when
// its playout deadline passed without a report — and at once when nobody
// can hear it (the call still rings: answer when ready, no session ever).
func TestGiveUpWaitsForTheApology(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answered bool // the call was answered before the AI was ready
		advance  func(h *harness)
		waits    bool
	}{
		{"played", true, func(h *harness) { h.player.setPlayed(apologyItem, 1000); h.conv.PlayoutDone("other", 0) }, true},
		{"deadline", true, func(h *harness) { h.advance(1000*time.Millisecond + endCallSlack) }, true},
		{"still ringing", false, func(*harness) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{MaxSwapsInRow: 2, Session: testSessionConfig(), AnsweredBeforeReady: tc.answered}
			cfg.ApologyAudio = make([]byte, 1000*cfg.outputFormat().BytesPerMs()) // 1 s
			h := newHarness(t, cfg, testRegions())
			for _, r := range []string{"A", "B", "C"} {
				h.dialer.then(r, dialStep{err: &realtime.DialError{Region: r, StatusCode: 401, Body: "invalid api key"}})
			}
			h.start()
			require.Equal(t, len(cfg.ApologyAudio), h.player.bytesFor(apologyItem), "the apology is queued")
			if !tc.waits {
				require.Len(t, h.controlsOf(ControlGiveUp), 1, "nobody hears the apology: give up at once")
				require.ErrorIs(t, h.stop(), ErrAllRegionsFailed)
				return
			}
			h.player.setPlayed(apologyItem, 500)
			h.conv.PlayoutDone("other", 0)
			h.pump()
			require.Empty(t, h.controlsOf(ControlGiveUp), "half the apology played")
			tc.advance(h)
			h.pump()
			require.Len(t, h.controlsOf(ControlGiveUp), 1)
			require.ErrorIs(t, h.stop(), ErrAllRegionsFailed)
		})
	}
}
