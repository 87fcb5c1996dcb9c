package failover

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

func TestConservativeHeard(t *testing.T) {
	for _, tc := range []struct {
		name       string
		transcript string
		producedMs int
		want       string // what the replay claims was heard
	}{
		{"transcript far ahead of the audio", longAnswer, 1000, "one two"},
		{"more audio, more words", longAnswer, 2500, "one two three four five six"},
		{"audio long enough for all of it", longAnswer, 5000, longAnswer},
		{"no transcript yet", "", 1000, ""},
		{"a partial word is left out", "supercalifragilistic is long", 1000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s1 := startActive(t, Config{}, testRegions())
			h.userTurn(s1, "u1", 1, 5)
			h.push(s1, created("r1"))
			h.speak(s1, "r1", "a1", tc.transcript, tc.producedMs)
			h.actor(func(c *Conversation) {
				c.rec.Truncate("a1", c.conservativeHeardMs("a1", tc.producedMs))
				e, ok := c.rec.Entry("a1")
				require.True(t, ok)
				require.Equal(t, tc.want, c.rec.HeardText(e))
			})
			require.NoError(t, h.stop())
		})
	}
}

// The audio received before a failure keeps playing; the continuation is
// queued behind it, and the pause counts from when that audio ends.
func TestFailedMidAnswerKeepsPlaying(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "a1", longAnswer, 1000)
	h.player.setPlayed("a1", 200)
	flushes := h.player.flushCount()
	s1.end(&realtime.CloseError{Code: 1011, Reason: "keepalive ping timeout"})
	s2 := h.session(2)
	h.waitActive(s2)
	require.Equal(t, flushes, h.player.flushCount(), "nothing flushed")
	require.Equal(t, 1000*bpm, h.player.bytesFor("a1"), "all the audio received was handed to the player")
	resp := s2.responses()
	require.Len(t, resp, 1)
	require.Contains(t, resp[0].Instructions, continueNote)
	h.push(s2, created("r2"))
	h.speak(s2, "r2", "a2", "seven eight.", 300)
	require.Equal(t, 300*bpm, h.player.bytesFor("a2"), "the continuation queued behind it")
	lines := h.logs.lines("failover: session swapped")
	require.Len(t, lines, 1)
	require.Equal(t, 0.0, lines[0]["pause_ms"], "the kept audio still plays: no silence")
	require.NoError(t, h.stop())
}
