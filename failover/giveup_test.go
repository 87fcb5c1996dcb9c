package failover

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

// TestGiveUpWaitsForTheApology: ControlGiveUp (after which the call may hang
// up or transfer at once) comes only when the apology has played, or when
// its playout deadline passed without a report.
func TestGiveUpWaitsForTheApology(t *testing.T) {
	for _, tc := range []struct {
		name    string
		advance func(h *harness)
	}{
		{"played", func(h *harness) { h.player.setPlayed(apologyItem, 1000) }},
		{"deadline", func(h *harness) { h.clock.Advance(1000*time.Millisecond + endCallSlack) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{MaxSwapsInRow: 2, Session: testSessionConfig()}
			cfg.ApologyAudio = make([]byte, 1000*cfg.outputFormat().BytesPerMs()) // 1 s
			apology := cfg.ApologyAudio
			h := newHarness(t, cfg, testRegions())
			for _, r := range []string{"A", "B", "C"} {
				h.dialer.then(r, dialStep{err: &realtime.DialError{Region: r, StatusCode: 401, Body: "invalid api key"}})
			}
			h.start()
			require.Eventually(t, func() bool { return h.player.bytesFor(apologyItem) == len(apology) }, waitFor, time.Millisecond)
			h.player.setPlayed(apologyItem, 500)
			h.conv.PlayoutDone("other", 0)
			require.True(t, h.conv.inspect(func() {})) // the report was handled
			require.Empty(t, h.controlsOf(ControlGiveUp), "half the apology played")
			tc.advance(h)
			h.waitControl(ControlGiveUp)
			h.cancel()
			err := <-h.runErr
			h.runErr <- err
			require.ErrorIs(t, err, ErrAllRegionsFailed)
		})
	}
}
