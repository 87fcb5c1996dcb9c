package failover

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

// textAnswer: the model starts answering in text only (item itemID of
// respID): output item, text part, first delta.
func textAnswer(respID, itemID string) []realtime.ServerEvent {
	return []realtime.ServerEvent{
		{Type: realtime.EvOutputItemAdded, ResponseID: respID, Item: &realtime.Item{ID: itemID, Type: "message", Role: "assistant"}},
		{Type: realtime.EvContentPartAdded, ResponseID: respID, ItemID: itemID, Part: &realtime.ContentPart{Type: "output_text"}},
		{Type: realtime.EvOutputTextDelta, ResponseID: respID, ItemID: itemID, Delta: "Sure, Monday"},
	}
}

func opsSince(s *fakeSession, n int) []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls[n:]...)
}

func opNames(cs []call) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.op)
	}
	return out
}

func TestSilentTextAnswerAskedAgainWithCallerAudioLast(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	u1 := h.userTurn(s1, "u1", 1, 10)
	h.answer(s1, "r1", "a1", "Hello, this is the clinic.", 500)
	u2 := h.userTurn(s1, "u2", 2, 10)
	h.push(s1, realtime.ServerEvent{Type: realtime.EvInputTranscriptionCompleted, ItemID: "u2", Transcript: "Is Monday free?"})
	mark := len(opsSince(s1, 0))
	h.push(s1, created("r2"))
	h.push(s1, textAnswer("r2", "t2")...)

	// Detected at the first text event: cancelled, deleted, the caller's
	// turn moved to the end as audio; the new create waits for the
	// cancelled response's done.
	got := opsSince(s1, mark)
	require.Equal(t, []string{"cancel", "delete", "delete", "create_item"}, opNames(got))
	require.Equal(t, "r2", got[0].respID)
	require.Equal(t, "t2", got[1].itemID)
	require.Equal(t, "u2", got[2].itemID)
	it := got[3].item
	require.Equal(t, "user", it.Role)
	require.Equal(t, []realtime.ContentPart{{Type: "input_audio", Audio: u2}}, it.Content)
	require.LessOrEqual(t, len(it.ID), realtime.MaxClientIDLen)
	require.Equal(t, 1.0, h.metric("sipbridge_failover_silent_answers_total", "region", "A", "kind", "text"))
	require.Len(t, h.logs.lines("failover: silent answer"), 1)

	// More text of the silent answer is dropped; its done lets the retry go.
	h.push(s1, realtime.ServerEvent{Type: realtime.EvOutputTextDelta, ResponseID: "r2", ItemID: "t2", Delta: " is free."})
	require.Len(t, s1.responses(), 0)
	h.push(s1, done("r2", realtime.StatusCancelled, nil))
	require.Len(t, s1.responses(), 1, "asked again once")
	require.Empty(t, h.controlsOf(ControlSwapStarted), "no swap: the same session answers")

	// The record: the text answer is gone, the caller's turn is last with
	// its audio and transcript.
	es := h.conv.rec.Entries()
	last := es[len(es)-1]
	require.Equal(t, realtime.EntryUser, last.Kind)
	require.Equal(t, it.ID, last.ItemID)
	require.Equal(t, u2, last.Audio)
	require.Equal(t, "Is Monday free?", last.Text)
	for _, e := range es {
		require.NotEqual(t, "t2", e.ItemID)
		require.NotEqual(t, "u2", e.ItemID)
	}

	// Silent again: the session is left, the swap replays without the text.
	h.push(s1, created("r3"))
	h.push(s1, textAnswer("r3", "t3")...)
	h.waitControl(ControlSwapStarted)
	s2 := h.session(2)
	h.waitActive(s2)
	require.Equal(t, "B", s2.region)
	require.Equal(t, 1.0, h.metric("sipbridge_failover_swaps_total", "trigger", "silent_answer", "from", "A", "to", "B"))
	items := s2.items()
	require.Equal(t, "u1", items[0].ID)
	require.Equal(t, u1, items[0].Content[0].Audio)
	lastItem := items[len(items)-1]
	require.Equal(t, it.ID, lastItem.ID, "the caller's turn is the last item replayed")
	require.Equal(t, []realtime.ContentPart{{Type: "input_audio", Audio: u2}}, lastItem.Content, "as audio, not its transcript")
	for _, x := range items {
		require.NotEqual(t, "t3", x.ID, "the silent answer is not replayed")
	}
	require.Len(t, s2.responses(), 1)
	require.NoError(t, h.stop())
}

func TestSilentEmptyAnswerAskedAgain(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	u1 := h.userTurn(s1, "u1", 1, 10)
	mark := len(opsSince(s1, 0))
	h.push(s1, created("r1"), done("r1", realtime.StatusCompleted, nil))
	got := opsSince(s1, mark)
	require.Equal(t, []string{"delete", "create_item", "create_response"}, opNames(got))
	require.Equal(t, u1, got[1].item.Content[0].Audio)
	require.Equal(t, 1.0, h.metric("sipbridge_failover_silent_answers_total", "region", "A", "kind", "empty"))
	require.Zero(t, h.pool.Status()[0].Samples, "not counted as a good answer")

	// An answer with audio is not silent, and resets the count.
	h.answer(s1, "r2", "a2", "Hello.", 300)
	require.Len(t, s1.responses(), 1)
	h.userTurn(s1, "u2", 2, 5)
	h.push(s1, created("r3"), done("r3", realtime.StatusCompleted, nil))
	require.Len(t, s1.responses(), 2, "a second chance again after an audible answer")
	require.Empty(t, h.controlsOf(ControlSwapStarted))
	require.NoError(t, h.stop())
}

func TestSilentNotTriggered(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 10)
	// A function call only.
	h.push(s1, created("r1"), realtime.ServerEvent{Type: realtime.EvOutputItemDone, ResponseID: "r1",
		Item: &realtime.Item{ID: "fc1", Type: "function_call", CallID: "call_1", Name: "lookup", Arguments: `{}`}})
	h.push(s1, done("r1", realtime.StatusCompleted, nil))
	// Audio with a text part beside it.
	h.push(s1, created("r2"))
	h.speak(s1, "r2", "a2", "Monday is free.", 300)
	h.push(s1, realtime.ServerEvent{Type: realtime.EvContentPartAdded, ResponseID: "r2", ItemID: "a2", Part: &realtime.ContentPart{Type: "output_text"}})
	h.push(s1, done("r2", realtime.StatusCompleted, nil))
	require.Zero(t, h.metric("sipbridge_failover_silent_answers_total", "region", "A", "kind", "text"))
	require.Zero(t, h.metric("sipbridge_failover_silent_answers_total", "region", "A", "kind", "empty"))
	for _, c := range opsSince(s1, 0) {
		require.NotEqual(t, "cancel", c.op)
		require.NotEqual(t, "delete", c.op)
	}
	require.NoError(t, h.stop())
}
