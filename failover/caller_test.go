package failover

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCallerAudioDuringFirstConnect(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	gate := make(chan struct{})
	h.dialer.then("A", dialStep{gate: gate})
	h.start()
	early := concat(framesOf(4, 3)...)
	h.write(framesOf(4, 3)...)
	close(gate)
	s1 := h.session(1)
	h.waitActive(s1)
	require.Equal(t, early, s1.appended(), "audio before the session was up is delivered, not dropped")
}

func TestHoldStopsAudioAndCancels(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "a1", "let me check", 1000)
	h.player.setPlayed("a1", 200)
	h.conv.SetHold(true)
	h.waitActor(func(c *Conversation) bool { return c.caller.held }, "held")
	require.Equal(t, []call{{op: "cancel", respID: "r1"}}, s1.ops("cancel"))
	require.Equal(t, []call{{op: "truncate", itemID: "a1", audioEndMs: 200}}, s1.ops("truncate"))
	require.Len(t, s1.ops("clear"), 1)
	before := len(s1.appended())
	h.write(framesOf(7, 5)...)
	require.Equal(t, before, len(s1.appended()), "no caller audio to the model on hold")
	h.conv.SetHold(false)
	h.waitActor(func(c *Conversation) bool { return !c.caller.held }, "resumed")
	h.write(framesOf(8, 2)...)
	require.Equal(t, before+2*frame, len(s1.appended()))
}
