package failover

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

// replayCall plays a call on A up to a second caller turn whose answer
// fails (server_error), so that the swap replays u1, a1, u2 into B. The
// user turns have transcripts: u1 is replayed as text, u2 (the last) as
// audio.
func replayCall(t *testing.T, b *fakeSession, more ...dialStep) (*harness, *fakeSession, []byte) {
	t.Helper()
	h := newHarness(t, Config{}, testRegions())
	h.dialer.then("B", dialStep{sess: b})
	h.dialer.then("C", more...)
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, realtime.ServerEvent{Type: realtime.EvInputTranscriptionCompleted, ItemID: "u1", Transcript: "Hello there."})
	h.answer(s1, "r1", "a1", "Hi, how can I help?", 300)
	u2 := h.userTurn(s1, "u2", 2, 5)
	h.push(s1, realtime.ServerEvent{Type: realtime.EvInputTranscriptionCompleted, ItemID: "u2", Transcript: "Is Monday free?"})
	h.push(s1, created("r2"), done("r2", realtime.StatusFailed, failed("", "server_error", "")))
	h.waitControl(ControlSwapStarted)
	return h, s1, u2
}

func TestReplayWaitsForEveryAcknowledgement(t *testing.T) {
	b := newFakeSession("sess_B", "B")
	b.noItemAck = true
	h, _, u2 := replayCall(t, b)
	items := b.items()
	require.Len(t, items, 3)
	require.Equal(t, "input_text", items[0].Content[0].Type)
	require.Equal(t, []realtime.ContentPart{{Type: "input_audio", Audio: u2}}, items[2].Content, "the caller's last turn as audio")
	require.Empty(t, b.responses(), "no response.create before the items are confirmed")
	require.Equal(t, stSwapping, h.conv.state)

	// The caller speaks meanwhile: buffered, not yet sent.
	h.write(framesOf(7, 3)...)
	require.Empty(t, b.appended())
	for i, it := range items {
		require.Empty(t, b.responses(), "item %d not yet confirmed", i)
		h.push(b, realtime.ServerEvent{Type: realtime.EvItemAdded, Item: &realtime.Item{ID: it.ID, Type: it.Type, Role: it.Role}})
	}
	h.waitActive(b)
	require.Len(t, b.responses(), 1)
	require.Equal(t, concat(framesOf(7, 3)...), b.appended())
	require.Equal(t, []string{"create_item", "append", "create_response"}, opSequence(b))
	require.NoError(t, h.stop())
}

func TestReplayUnconfirmedInTimeMovesOn(t *testing.T) {
	b := newFakeSession("sess_B", "B")
	b.noItemAck = true
	h, _, _ := replayCall(t, b)
	h.advance(replayTimeout - 1)
	require.False(t, b.closed())
	h.advance(1)
	require.True(t, b.closed(), "the silent session is left")
	c := h.session(3)
	h.waitActive(c)
	require.Equal(t, "C", c.region)
	require.Len(t, c.responses(), 1)
	require.Len(t, h.logs.lines("failover: replay failed"), 1)
	require.NoError(t, h.stop())
}

func TestReplayRefusedAudioRepairedAsTranscript(t *testing.T) {
	b := newFakeSession("sess_B", "B")
	b.refuseItem = func(it realtime.Item) *realtime.ErrorDetail {
		for _, p := range it.Content {
			if p.Type == "input_audio" {
				return &realtime.ErrorDetail{Type: "invalid_request_error", Code: "invalid_value",
					Param: "item.content[0].audio", Message: "Invalid audio."}
			}
		}
		return nil
	}
	h, _, _ := replayCall(t, b)
	h.waitActive(b)
	items := b.items()
	require.Len(t, items, 4, "three items, the refused one sent again")
	require.Equal(t, "u2", items[3].ID)
	require.Equal(t, []realtime.ContentPart{{Type: "input_text", Text: "Is Monday free?"}}, items[3].Content)
	ops := opsSince(b, 0)
	require.Equal(t, "u2", ops[3].item.ID)
	require.Equal(t, "a1", ops[3].prev, "sent again in its place, after the last confirmed item")
	require.Len(t, b.responses(), 1)
	require.Equal(t, "create_response", ops[len(ops)-1].op, "the create after the repaired item's confirmation")
	require.Equal(t, 1.0, h.metric("sipbridge_failover_replay_refused_total", "region", "B", "action", "repaired"))
	require.NoError(t, h.stop())
}

func TestReplayRefusedWithoutRepairMovesOnThenDrops(t *testing.T) {
	refuseA1 := func(it realtime.Item) *realtime.ErrorDetail {
		if it.ID == "a1" {
			return &realtime.ErrorDetail{Type: "invalid_request_error", Code: "invalid_value", Param: "item.content", Message: "Refused."}
		}
		return nil
	}
	b := newFakeSession("sess_B", "B")
	b.refuseItem = refuseA1
	c := newFakeSession("sess_C", "C")
	c.refuseItem = refuseA1
	h, _, _ := replayCall(t, b, dialStep{sess: c})
	h.waitActive(c)
	require.True(t, b.closed(), "B refused an item no repair fixes: the swap moved on")
	require.Empty(t, b.responses())
	require.Len(t, c.responses(), 1, "C refused it too: left out, the caller still gets the answer")
	require.Equal(t, 1.0, h.metric("sipbridge_failover_replay_refused_total", "region", "B", "action", "moved_on"))
	require.Equal(t, 1.0, h.metric("sipbridge_failover_replay_refused_total", "region", "C", "action", "dropped"))
	require.Len(t, h.logs.lines("failover: replay item refused again, left out of the conversation"), 1)
	require.Equal(t, 1, h.conv.swap.failedInRow, "B is one failed attempt (bounded like any other)")
	require.NoError(t, h.stop())
}
