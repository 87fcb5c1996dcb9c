package integration

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// replayedCreate is the part of a conversation.item.create the test reads.
type replayedCreate struct {
	EventID string `json:"event_id"`
	Item    struct {
		ID      string `json:"id"`
		Role    string `json:"role"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"item"`
}

// TestReplayRefusedItemIsRepaired (issue 7 item 4): east fails turn 2;
// west refuses the replayed caller audio (an invalid_request_error naming
// the part, carrying the create's event_id, as the real service refuses an
// item). The bridge sends the turn again as its transcript, waits for
// west's acknowledgement, and only then asks for the answer: the caller
// hears west, the turn is not lost, and the repair is logged and counted.
func TestReplayRefusedItemIsRepaired(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz, Faults: sim.Faults{RefuseAudioItems: 1}})
	br := startBridge(t, "", east, west)
	call, ctx := dial(t, br, 90*time.Second, phone.CallOptions{})
	from := secondTurnFails(t, ctx, call, east, sim.Faults{FailBeforeAudio: 1})
	westAt, err := call.WaitTone(ctx, westHz, from+900, 500*time.Millisecond, 30*time.Second)
	require.NoError(t, err, "the caller hears west's answer to the failed turn")
	t.Logf("west's answer heard %d ms after the caller started turn 2", westAt-from)

	line := br.WaitLog(10*time.Second, "replay item refused, repaired and sent again")
	a := logAttrs(line)
	require.Equal(t, "west", a["region"], line)
	require.Equal(t, call.CallID(), a["call_id"], line)
	require.Equal(t, "invalid_value", a["code"], line)
	require.Equal(t, "item.content[0].type", a["param"], line)
	swap := br.WaitLog(10*time.Second, "session swapped", "new_region=west")
	require.Equal(t, "answered", logAttrs(swap)["outcome"], swap)
	require.Equal(t, 1.0, adminMetric(t, br, `sipbridge_failover_replay_refused_total{action="repaired",region="west"}`))
	require.Empty(t, br.LogLines("left out of the conversation"), "nothing was dropped")

	waitFor(t, 20*time.Second, "west's answer to complete", func() bool {
		rec, _ := lastSession(west)
		return completedResponses(rec) >= 1
	})
	rec, ok := lastSession(west)
	require.True(t, ok)
	require.Len(t, west.Sim.Sessions(), 1, "repaired in west: no other session was tried")

	// West's record, in the order it received and answered the events (the
	// simulator answers each event before reading the next): the refused
	// audio item, the error naming its create, the same item again as text,
	// then response.create.
	refused, resent, respond := -1, -1, -1
	var refusedEv, resentEv replayedCreate
	for i, ev := range rec.Events {
		switch ev.Type {
		case "conversation.item.create":
			var c replayedCreate
			require.NoError(t, json.Unmarshal(ev.Raw, &c))
			switch {
			case ev.Rejected:
				require.Equal(t, -1, refused, "one item refused: %+v", rec.Events)
				refused, refusedEv = i, c
			case refused >= 0 && c.Item.ID == refusedEv.Item.ID:
				resent, resentEv = i, c
			}
		case "response.create":
			if respond < 0 {
				respond = i
			}
		}
	}
	require.GreaterOrEqual(t, refused, 0, "west refused an item: %v", rec.EventTypes())
	require.Equal(t, "user", refusedEv.Item.Role)
	require.Len(t, refusedEv.Item.Content, 1)
	require.Equal(t, "input_audio", refusedEv.Item.Content[0].Type, "the refused item is the caller's audio")
	require.NotEmpty(t, refusedEv.EventID)
	var refusal *sim.ErrorRecord
	for i := range rec.Errors {
		if rec.Errors[i].EventID == refusedEv.EventID {
			refusal = &rec.Errors[i]
		}
	}
	require.NotNil(t, refusal, "west's error carries the create's event_id: %+v", rec.Errors)
	require.Equal(t, "invalid_request_error", refusal.Type)

	require.Greater(t, resent, refused, "the refused item is sent again: %v", rec.EventTypes())
	require.Greater(t, respond, resent, "response.create only after the repaired item: %v", rec.EventTypes())
	require.Len(t, resentEv.Item.Content, 1)
	require.Equal(t, "input_text", resentEv.Item.Content[0].Type, "repaired as its transcript")
	transcript := resentEv.Item.Content[0].Text
	require.NotEmpty(t, transcript)
	require.Equal(t, east.Sim.Sessions()[0].Turns[1].Heard, transcript, "the transcript of the caller's turn 2")
	for _, ev := range rec.Events[:respond] {
		if ev.Type == "conversation.item.create" && ev.EventID != refusedEv.EventID {
			require.False(t, ev.Rejected, "every other replayed item was acknowledged: %+v", ev)
		}
	}
	// Acknowledged: the item is in west's conversation, as text, before the answer.
	it, ok := rec.Item(refusedEv.Item.ID)
	require.True(t, ok, "the repaired item is in west's conversation")
	require.Equal(t, []string{"input_text"}, it.ContentTypes)
	require.Equal(t, sim.OriginClient, it.Origin)
	tr := rec.Transcript()
	t.Logf("west transcript: %q", tr)
	require.Equal(t, "user: "+transcript, tr[len(tr)-2], "the caller's turn, then west's answer: %q", tr)
	require.Contains(t, tr[len(tr)-1], "assistant: This is west.", "%q", tr)
	require.Equal(t, 1, completedResponses(rec), "one answer for the turn")
	require.NoError(t, call.Hangup(ctx))
}
