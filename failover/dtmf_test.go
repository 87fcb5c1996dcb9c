package failover

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDTMFConfig: assistant.dtmf maps to DTMFDisabled / DTMFSilent. Enabled,
// the model gets a system note per key; with respond it is also asked to
// answer (one response.create), silent it is not; disabled it hears nothing.
func TestDTMFConfig(t *testing.T) {
	tests := []struct {
		name          string
		cfg           Config
		wantNote      bool
		wantResponses int
	}{
		{name: "enabled and respond (default)", cfg: Config{}, wantNote: true, wantResponses: 1},
		{name: "enabled, no response", cfg: Config{DTMFSilent: true}, wantNote: true, wantResponses: 0},
		{name: "disabled", cfg: Config{DTMFDisabled: true}, wantNote: false, wantResponses: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, s1 := startActive(t, tc.cfg, testRegions())
			h.conv.DTMF('4')
			// A marker after the digit: once the actor handled it, it handled
			// the digit too (messages are taken in order).
			h.conv.DTMF('#')
			if tc.wantNote {
				h.waitActor(func(c *Conversation) bool { return c.rec.Len() == 2 }, "both notes recorded")
				items := s1.items()
				require.Len(t, items, 2)
				require.Equal(t, "system", items[0].Role)
				require.Equal(t, "The caller pressed 4.", items[0].Content[0].Text)
				require.Equal(t, "The caller pressed #.", items[1].Content[0].Text)
			} else {
				h.actor(func(c *Conversation) { require.Zero(t, c.rec.Len(), "nothing recorded") })
				require.Empty(t, s1.items(), "the model hears of no key")
			}
			// One create at a time: the second digit's create waits for the first.
			require.Len(t, s1.responses(), tc.wantResponses)
			h.actor(func(c *Conversation) {
				if tc.wantResponses == 0 {
					require.Empty(t, c.turns.queue, "no response queued")
				}
			})
		})
	}
}
