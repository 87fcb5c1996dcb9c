package failover

import (
	"io"
	"testing"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/stretchr/testify/require"
)

func TestRotationAtTurnBoundary(t *testing.T) {
	regions := []Region{{Name: "A", SessionLimit: 30 * time.Minute}, {Name: "B", SessionLimit: 30 * time.Minute}}
	h, s1 := startActive(t, Config{}, regions)
	u1 := h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "a1", "Your appointment is on Monday.", 800)
	h.finishSpeech(s1, "r1", "a1", "Your appointment is on Monday.")

	// Within the margin mid-answer: a fresh session is prepared, but the
	// switch waits for the turn boundary.
	h.advance(29 * time.Minute)
	s2 := h.session(2)
	require.Equal(t, "A", s2.region, "rotation is not a failure: the best region, the current one included")
	h.waitActor(func(c *Conversation) bool { return c.standby.spare != nil }, "rotation target ready")
	require.Empty(t, s2.items())
	h.actor(func(c *Conversation) { require.Equal(t, realtime.Session(s1), c.active.s) })
	h.push(s1, done("r1", realtime.StatusCompleted, nil))
	h.actor(func(c *Conversation) { require.Equal(t, realtime.Session(s1), c.active.s, "still playing") })
	h.player.setPlayed("a1", 800)
	h.conv.PlayoutDone("a1", 800)
	h.waitActive(s2)
	require.Equal(t, []realtime.Item{
		{ID: "u1", Type: "message", Role: "user", Content: []realtime.ContentPart{{Type: "input_audio", Audio: u1}}},
		{ID: "a1", Type: "message", Role: "assistant", Content: []realtime.ContentPart{{Type: "output_text", Text: "Your appointment is on Monday."}}},
	}, s2.items())
	require.Empty(t, s2.responses(), "no turn pending: no response.create")
	h.pump()
	require.True(t, s1.closed())
	require.Equal(t, 1.0, h.metric("sipbridge_failover_rotations_total", "region", "A"))
	require.Equal(t, 0.0, h.metric("sipbridge_failover_swaps_total", "trigger", "rotation", "from", "A", "to", "A"))
	lines := h.logs.lines("failover: session swapped")
	require.Len(t, lines, 1)
	require.Equal(t, "rotation", lines[0]["trigger"])
	require.Equal(t, "no_answer_pending", lines[0]["outcome"])
	// The caller goes on talking to the new session.
	h.write(framesOf(3, 2)...)
	require.Equal(t, 2*frame, len(s2.appended()))
}

func TestWarmStandbyUsedOnSwap(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions("B"))
	standby := h.session(2)
	require.Equal(t, "B", standby.region, "standby in the next candidate region")
	h.waitActor(func(c *Conversation) bool { return c.standby.spare != nil }, "standby ready")
	requireSameConfig(t, testSessionConfig(), standby.cfg)

	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"), done("r1", realtime.StatusFailed, failed("", "server_error", "")))
	h.waitActive(standby)
	require.Len(t, h.dialer.dialed(), 2, "no dial on the swap")
	require.Len(t, standby.items(), 1)
	require.Len(t, standby.responses(), 1)
	h.push(standby, created("r2"))
	h.speak(standby, "r2", "a2", "Sorry, go on.", 200)
	lines := h.logs.lines("failover: session swapped")
	require.Len(t, lines, 1)
	require.Equal(t, true, lines[0]["warm_standby"])
	// A new standby is opened for the next candidate after B (C has none
	// configured, so none), and the old session is closed.
	h.pump()
	require.True(t, s1.closed())
}

func TestWarmStandbyReplacedWhenItDies(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions("B"))
	sb1 := h.session(2)
	h.waitActor(func(c *Conversation) bool { return c.standby.spare != nil }, "standby ready")
	sb1.end(&realtime.CloseError{Code: -1, Err: io.EOF})
	h.waitActor(func(c *Conversation) bool { return c.standby.spare == nil }, "dead standby dropped")
	h.advance(spareRetry)
	sb2 := h.session(3)
	require.Equal(t, "B", sb2.region)
	h.waitActor(func(c *Conversation) bool {
		return c.standby.spare != nil && c.standby.spare.s == realtime.Session(sb2)
	}, "new standby")
	h.actor(func(c *Conversation) { require.Equal(t, realtime.Session(s1), c.active.s) })
}
