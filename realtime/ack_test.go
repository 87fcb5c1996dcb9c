package realtime

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFitID(t *testing.T) {
	long := "item_" + strings.Repeat("x", 40)
	tests := []struct {
		name, in, prefix string
		same             bool
	}{
		{"empty", "", "", true},
		{"short", "item_abc", "", true},
		{"exactly 32", strings.Repeat("a", 32), "", true},
		{"33 with item prefix", "item_" + strings.Repeat("y", 28), "item_", false},
		{"long call id", "call_" + strings.Repeat("z", 60), "call_", false},
		{"no underscore", strings.Repeat("q", 50), "", false},
		{"long prefix is not kept", "averyverylongprefix_" + strings.Repeat("q", 20), "", false},
		{"azure style", long, "item_", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FitID(tc.in)
			if tc.same {
				require.Equal(t, tc.in, got)
				return
			}
			require.Len(t, got, MaxClientIDLen)
			require.True(t, strings.HasPrefix(got, tc.prefix), got)
			require.Equal(t, got, FitID(tc.in), "deterministic")
			require.Equal(t, got, FitID(got), "a fitted id is kept")
		})
	}
	require.NotEqual(t, FitID(long+"1"), FitID(long+"2"))
}

func TestNewIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		for _, id := range []string{NewItemID(), NewCallID()} {
			require.LessOrEqual(t, len(id), MaxClientIDLen)
			require.Regexp(t, `^(item|call)_[A-Za-z0-9]{20}$`, id)
			require.False(t, seen[id])
			seen[id] = true
		}
	}
	require.Equal(t, "evt_item_item_1", ItemCreateEventID("item_1"))
	require.LessOrEqual(t, len(ItemCreateEventID(strings.Repeat("x", 5000))), maxClientEventIDSize)
}

func TestItemAcks(t *testing.T) {
	a, b, c := userItem("item_a"), userItem("item_b"), Item{ID: "fc_1", Type: "function_call", CallID: "call_1", Name: "f"}
	var acks ItemAcks
	_, ok := acks.Observe(ServerEvent{Type: EvItemAdded, Item: &Item{ID: "item_a"}})
	require.False(t, ok, "nothing expected yet")
	require.NoError(t, acks.Expect(a))
	require.NoError(t, acks.Expect(b))
	require.NoError(t, acks.Expect(c))
	require.Error(t, acks.Expect(a), "already pending")
	require.Error(t, acks.Expect(Item{Type: "message"}), "no id")
	require.Equal(t, []Item{a, b, c}, acks.Pending())

	steps := []struct {
		name     string
		ev       ServerEvent
		settled  string
		accepted bool
	}{
		{"unrelated item", ServerEvent{Type: EvItemAdded, Item: &Item{ID: "item_other"}}, "", false},
		{"error without event_id", ServerEvent{Type: EvError, Error: &ErrorDetail{Code: "x"}}, "", false},
		{"error for another event", ServerEvent{Type: EvError, Error: &ErrorDetail{Code: "x", EventID: "evt_9"}}, "", false},
		{"item.done is not the ack", ServerEvent{Type: EvItemDone, Item: &Item{ID: "item_b"}}, "", false},
		{"added without item", ServerEvent{Type: EvItemAdded}, "", false},
		{"b added", ServerEvent{Type: EvItemAdded, Item: &Item{ID: "item_b"}}, "item_b", true},
		{"b again", ServerEvent{Type: EvItemAdded, Item: &Item{ID: "item_b"}}, "", false},
		{"c refused", ServerEvent{Type: EvError, Error: &ErrorDetail{Code: "string_above_max_length", Param: "item.call_id",
			EventID: ItemCreateEventID("fc_1")}}, "fc_1", false},
		{"a created (preview, decoded to added)", ServerEvent{Type: EvItemAdded, WireType: "conversation.item.created", Item: &Item{ID: "item_a"}}, "item_a", true},
	}
	for _, st := range steps {
		ack, ok := acks.Observe(st.ev)
		require.Equal(t, st.settled != "", ok, st.name)
		if !ok {
			continue
		}
		require.Equal(t, st.settled, ack.Item.ID, st.name)
		require.Equal(t, st.accepted, ack.Accepted, st.name)
		if !st.accepted {
			require.Equal(t, "item.call_id", ack.Error.Param)
		}
	}
	require.Zero(t, acks.Len())
	require.Empty(t, acks.Pending())
	require.NoError(t, acks.Expect(a), "settled ids can be sent again")
}

func userItem(id string) Item {
	return Item{ID: id, Type: "message", Role: "user", Content: []ContentPart{{Type: "input_text", Text: "hi"}}}
}

func TestRepairItem(t *testing.T) {
	longCall := "call_" + strings.Repeat("c", 40)
	longID := "item_" + strings.Repeat("i", 40)
	tooLong := func(param string) ErrorDetail {
		return ErrorDetail{Type: "invalid_request_error", Code: "string_above_max_length", Param: param}
	}
	audio := Item{ID: "item_u", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: []byte{1}, Transcript: "hello"}}}
	tests := []struct {
		name string
		in   Item
		d    ErrorDetail
		want Item
		ok   bool
	}{
		{"long call_id", Item{Type: "function_call", CallID: longCall, Name: "f"}, tooLong("item.call_id"),
			Item{Type: "function_call", CallID: FitID(longCall), Name: "f"}, true},
		{"long output call_id", Item{Type: "function_call_output", CallID: longCall}, tooLong("item.call_id"),
			Item{Type: "function_call_output", CallID: FitID(longCall)}, true},
		{"long id", userItem(longID), tooLong("item.id"), userItem(FitID(longID)), true},
		{"short call_id cannot be fitted", Item{Type: "function_call", CallID: "call_1"}, tooLong("item.call_id"),
			Item{Type: "function_call", CallID: "call_1"}, false},
		{"audio to transcript", audio, ErrorDetail{Code: "invalid_value", Param: "item.content[0].audio"},
			Item{ID: "item_u", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_text", Text: "hello"}}}, true},
		{"audio without transcript", Item{ID: "item_u", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: []byte{1}}}},
			ErrorDetail{Code: "invalid_value"}, Item{ID: "item_u", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: []byte{1}}}}, false},
		{"output without call", Item{Type: "function_call_output", CallID: "call_x"}, ErrorDetail{Code: "invalid_value", Param: "item.call_id"},
			Item{Type: "function_call_output", CallID: "call_x"}, false},
		{"text user item", userItem("item_t"), ErrorDetail{Code: "invalid_value"}, userItem("item_t"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RepairItem(tc.in, tc.d)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
	// A call and its output are repaired to the same call_id.
	call, _ := RepairItem(Item{Type: "function_call", CallID: longCall}, tooLong("item.call_id"))
	out, _ := RepairItem(Item{Type: "function_call_output", CallID: longCall}, tooLong("item.call_id"))
	require.Equal(t, call.CallID, out.CallID)
}

func TestIsTextAnswer(t *testing.T) {
	dec := func(wire string) ServerEvent {
		ev, err := DecodeServerEvent([]byte(wire), DialectGA)
		require.NoError(t, err)
		return ev
	}
	require.True(t, IsTextAnswer(dec(`{"type":"response.content_part.added","part":{"type":"text","text":""}}`)))
	require.True(t, IsTextAnswer(dec(`{"type":"response.text.delta","delta":"hi"}`)), "preview name")
	require.True(t, IsTextAnswer(dec(`{"type":"response.output_text.done","text":"hi"}`)))
	require.False(t, IsTextAnswer(dec(`{"type":"response.content_part.added","part":{"type":"audio","transcript":""}}`)))
	require.False(t, IsTextAnswer(dec(`{"type":"response.output_audio_transcript.delta","delta":"hi"}`)))
	require.False(t, IsTextAnswer(dec(`{"type":"response.content_part.added"}`)))
}

func TestReplayFitsLongIDs(t *testing.T) {
	r := NewRecord(RecordConfig{})
	longUser := "item_user_" + strings.Repeat("u", 30)
	longCall := "call_" + strings.Repeat("c", 40)
	r.Apply(ServerEvent{Type: EvItemAdded, Item: &Item{ID: longUser, Type: "message", Role: "user",
		Content: []ContentPart{{Type: "input_text", Text: "hello"}}}})
	r.Apply(ServerEvent{Type: EvFunctionCallArgumentsDone, ItemID: "fc_1", CallID: longCall, Name: "lookup", Arguments: "{}"})
	r.AddFunctionOutput("out_1", longCall, `{"ok":true}`)

	items := r.ReplayItems(DialectGA)
	require.Len(t, items, 3)
	for _, it := range items {
		require.LessOrEqual(t, len(it.ID), MaxClientIDLen)
		require.LessOrEqual(t, len(it.CallID), MaxClientIDLen)
	}
	require.Equal(t, FitID(longUser), items[0].ID)
	require.Equal(t, items[1].CallID, items[2].CallID, "call and output still match")

	// The new session's echoes under the fitted ids land on the originals.
	for _, it := range items {
		it := it
		r.Apply(ServerEvent{Type: EvItemAdded, Item: &it})
	}
	require.Equal(t, 3, r.Len(), "no duplicates")
	e, ok := r.Entry(FitID(longUser))
	require.True(t, ok)
	require.Equal(t, longUser, e.ItemID)
	require.True(t, r.HasOutput(FitID(longCall)))
	fc, ok := r.FunctionCall(FitID(longCall))
	require.True(t, ok)
	require.Equal(t, longCall, fc.CallID)
	require.Equal(t, items, r.ReplayItems(DialectGA), "a second replay renders the same")
}
