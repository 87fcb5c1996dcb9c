package sim

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func userText(text string) map[string]any {
	return map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": text}}}
}

func (c *client) createItem(it map[string]any, prev any) map[string]any {
	c.t.Helper()
	ev := map[string]any{"type": "conversation.item.create", "item": it}
	if prev != nil {
		ev["previous_item_id"] = prev
	}
	c.send(ev)
	added := c.expect("conversation.item.added")
	done := c.expect("conversation.item.done")
	require.Equal(c.t, added["item"], done["item"])
	return added
}

func TestItemCreateValidation(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	c, _ := dialReady(t, url, gaPath)
	c.update(noVADSession())
	audio := base64.StdEncoding.EncodeToString(encodeTest("pcmu", tone(8000, 300, -20, 250)))
	ok := []struct {
		name string
		item map[string]any
	}{
		{"user text", userText("hi")},
		{"user audio with transcript", map[string]any{"type": "message", "role": "user", "content": []any{
			map[string]any{"type": "input_audio", "audio": audio, "transcript": "hello there"}}}},
		{"system", map[string]any{"type": "message", "role": "system", "content": []any{map[string]any{"type": "input_text", "text": "Caller is VIP"}}}},
		{"assistant text", map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "output_text", "text": "Hello!"}}}},
		{"function call", map[string]any{"type": "function_call", "call_id": "call_1", "name": "get_x", "arguments": `{"a":1}`}},
		{"function output", map[string]any{"type": "function_call_output", "call_id": "call_1", "output": `{"ok":true}`}},
		{"call_id of exactly 32", map[string]any{"type": "function_call", "call_id": "call_" + strings.Repeat("x", 27), "name": "get_x", "arguments": "{}"}},
		{"client id and status", map[string]any{"id": "item_client_1", "object": "realtime.item", "status": "completed", "type": "message", "role": "user",
			"content": []any{map[string]any{"type": "input_text", "text": "x"}}}},
	}
	prev := any(nil)
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			added := c.createItem(tc.item, nil)
			require.Equal(t, prev, added["previous_item_id"])
			prev = added["item"].(map[string]any)["id"]
		})
	}
	c.t = t
	bad := []struct {
		name, code, param, msg string
		ev                     map[string]any
	}{
		{"assistant audio", "missing_required_parameter", "item.content[0].text", "Missing required parameter: 'item.content[0].text'.",
			map[string]any{"item": map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "output_audio", "transcript": "hi"}}}}},
		{"assistant input_text", "invalid_value", "item.content[0].type", "Invalid value: 'input_text'. Value must be 'output_text'.",
			map[string]any{"item": map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "input_text", "text": "hi"}}}}},
		{"system audio", "invalid_value", "item.content[0].type", "Invalid value: 'input_audio'. Value must be 'input_text'.",
			map[string]any{"item": map[string]any{"type": "message", "role": "system", "content": []any{map[string]any{"type": "input_audio", "audio": audio}}}}},
		{"user beta text type", "invalid_value", "item.content[0].type", "Invalid value: 'text'. Supported values are: 'input_text', 'input_audio', and 'input_image'.",
			map[string]any{"item": map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "text", "text": "hi"}}}}},
		{"bad role", "invalid_value", "item.role", "Invalid value: 'bot'. Supported values are: 'user', 'assistant', and 'system'.",
			map[string]any{"item": map[string]any{"type": "message", "role": "bot", "content": []any{}}}},
		{"output without call", "invalid_value", "item.call_id", "Invalid value: 'call_404'. No function_call item with this call_id exists in the conversation.",
			map[string]any{"item": map[string]any{"type": "function_call_output", "call_id": "call_404", "output": "{}"}}},
		{"output missing output", "missing_required_parameter", "item.output", "Missing required parameter: 'item.output'.",
			map[string]any{"item": map[string]any{"type": "function_call_output", "call_id": "call_1"}}},
		{"unknown previous", "invalid_value", "previous_item_id", "Invalid value: 'item_gone'. No conversation item with this id exists.",
			map[string]any{"previous_item_id": "item_gone", "item": userText("x")}},
		{"duplicate id", "invalid_value", "item.id", "Invalid value: 'item_client_1'. An item with this id already exists in the conversation.",
			map[string]any{"item": map[string]any{"id": "item_client_1", "type": "message", "role": "user", "content": []any{}}}},
		{"item id over 32", "string_above_max_length", "item.id",
			"Invalid 'item.id': string too long. Expected a string with maximum length 32, but got a string with length 33 instead.",
			map[string]any{"item": map[string]any{"id": strings.Repeat("i", 33), "type": "message", "role": "user", "content": []any{}}}},
		{"call_id over 32", "string_above_max_length", "item.call_id",
			"Invalid 'item.call_id': string too long. Expected a string with maximum length 32, but got a string with length 40 instead.",
			map[string]any{"item": map[string]any{"type": "function_call", "call_id": "call_" + strings.Repeat("c", 35), "name": "f", "arguments": "{}"}}},
		{"output call_id over 32", "string_above_max_length", "item.call_id",
			"Invalid 'item.call_id': string too long. Expected a string with maximum length 32, but got a string with length 33 instead.",
			map[string]any{"item": map[string]any{"type": "function_call_output", "call_id": strings.Repeat("c", 33), "output": "{}"}}},
		{"unknown item field", "unknown_parameter", "item.foo", "Unknown parameter: 'item.foo'.",
			map[string]any{"item": map[string]any{"type": "message", "role": "user", "content": []any{}, "foo": 1}}},
		{"unknown item type", "invalid_value", "item.type", "Invalid value: 'mcp_call'. Supported values are: 'message', 'function_call', and 'function_call_output'.",
			map[string]any{"item": map[string]any{"type": "mcp_call"}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			tc.ev["type"] = "conversation.item.create"
			tc.ev["event_id"] = "ev_" + strings.ReplaceAll(tc.name, " ", "_")
			c.send(tc.ev)
			e := c.expectError(tc.code)
			require.Equal(t, tc.param, e["param"])
			require.Equal(t, tc.msg, e["message"])
			require.Equal(t, tc.ev["event_id"], e["event_id"])
			c.probe()
		})
	}
}

// TestReplayOrderAndDelete replays a history the way a failover layer does
// (§6.2 step 4) and checks the record shows it in server order.
func TestReplayOrderAndDelete(t *testing.T) {
	s, url := startSim(t, fastConfig("west"))
	c, created := dialReady(t, url, gaPath)
	c.update(noVADSession())
	a := c.createItem(userText("first"), nil)["item"].(map[string]any)["id"]
	c.createItem(map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "output_text", "text": "reply one"}}}, nil)
	c.createItem(map[string]any{"type": "function_call", "call_id": "call_7", "name": "lookup", "arguments": `{"q":1}`}, nil)
	c.createItem(map[string]any{"type": "function_call_output", "call_id": "call_7", "output": `{"r":2}`}, nil)
	root := c.createItem(map[string]any{"type": "message", "role": "system", "content": []any{map[string]any{"type": "input_text", "text": "summary"}}}, "root")
	require.Nil(t, root["previous_item_id"])
	after := c.createItem(userText("inserted"), a)
	require.Equal(t, a, after["previous_item_id"])

	rec := sessionByID(t, s, sessID(created))
	require.Equal(t, []string{
		"system: summary",
		"user: first",
		"user: inserted",
		"assistant: reply one",
		`function_call: lookup({"q":1}) call_7`,
		`function_call_output: call_7 {"r":2}`,
	}, rec.Transcript())
	require.Equal(t, []string{"output_text"}, rec.Items[3].ContentTypes)

	// The model sees the replayed context.
	c.send(map[string]any{"type": "response.create"})
	evs := c.until("response.done")
	require.Equal(t, `This is west. You are turn 2; I heard "{\"r\":2}". I remember 6 items.`,
		ofType(evs, "response.output_audio_transcript.done")[0]["transcript"])

	c.send(map[string]any{"type": "conversation.item.delete", "item_id": a})
	require.Equal(t, a, c.expect("conversation.item.deleted")["item_id"])
	c.send(map[string]any{"type": "conversation.item.delete", "event_id": "d2", "item_id": a})
	require.Equal(t, "d2", c.expectError("invalid_value")["event_id"])
	c.send(map[string]any{"type": "conversation.item.retrieve", "item_id": rec.Items[0].ID})
	got := c.expect("conversation.item.retrieved")["item"].(map[string]any)
	require.Equal(t, "system", got["role"])
	rec = sessionByID(t, s, sessID(created))
	require.Equal(t, []string{a.(string)}, rec.Deleted)
	require.Len(t, rec.Items, 6) // 6 replayed + 1 answer − 1 deleted
}

func TestPreviewItems(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	c, _ := dialReady(t, url, previewPath)
	c.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "message", "role": "assistant",
		"content": []any{map[string]any{"type": "text", "text": "summary of the call"}}}})
	ev := c.expect("conversation.item.created")
	require.Equal(t, []any{map[string]any{"type": "text", "text": "summary of the call"}}, ev["item"].(map[string]any)["content"])
	c.probe()
}

func TestTruncateRules(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	c, _ := dialReady(t, url, gaPath)
	c.update(noVADSession())
	user := c.createItem(userText("hi"), nil)["item"].(map[string]any)["id"]
	text := c.createItem(map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "output_text", "text": "t"}}}, nil)["item"].(map[string]any)["id"]
	c.send(map[string]any{"type": "response.create"})
	evs := c.until("response.done")
	audioItem := ofType(evs, "response.output_item.added")[0]["item"].(map[string]any)["id"]
	ms := len(audioOf(t, evs, "response.output_audio.delta")) / 8

	for _, tc := range []struct {
		name   string
		item   any
		index  int
		end    int
		code   string
		msg    string
		accept bool
	}{
		{"user item", user, 0, 0, "unsupported_content_type", "Only model output audio messages can be truncated", false},
		{"restored text item", text, 0, 0, "unsupported_content_type", "Only model output audio messages can be truncated", false},
		{"wrong content index", audioItem, 1, 0, "unsupported_content_type", "Only model output audio messages can be truncated", false},
		{"past the audio", audioItem, 0, ms + 500, "invalid_value", "Audio content of " + itoa(ms) + "ms is already shorter than " + itoa(ms+500) + "ms", false},
		{"inclusive end", audioItem, 0, ms, "", "", true},
		{"shorter", audioItem, 0, 200, "", "", true},
		{"now shorter than before", audioItem, 0, 300, "invalid_value", "Audio content of 200ms is already shorter than 300ms", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(map[string]any{"type": "conversation.item.truncate", "event_id": "tr", "item_id": tc.item, "content_index": tc.index, "audio_end_ms": tc.end})
			if tc.accept {
				ev := c.expect("conversation.item.truncated")
				require.Equal(t, tc.item, ev["item_id"])
				require.Equal(t, float64(tc.end), ev["audio_end_ms"])
				return
			}
			e := c.expectError(tc.code)
			require.Equal(t, tc.msg, e["message"])
			require.Equal(t, "tr", e["event_id"])
		})
	}
	c.t = t
	c.send(map[string]any{"type": "conversation.item.retrieve", "item_id": audioItem})
	got := c.expect("conversation.item.retrieved")["item"].(map[string]any)
	require.Equal(t, []any{map[string]any{"type": "output_audio", "transcript": nil}}, got["content"], "truncation drops the transcript (§2.4)")
}

func TestOneActiveResponse(t *testing.T) {
	s, url := startSim(t, fastConfig("east"))
	c, created := dialReady(t, url, gaPath)
	c.update(noVADSession())
	c.send(map[string]any{"type": "response.create", "event_id": "r1"})
	c.send(map[string]any{"type": "response.create", "event_id": "r2"})
	first := c.expect("response.created")["response"].(map[string]any)["id"].(string)
	c.expect("rate_limits.updated")
	e := c.expectError("conversation_already_has_active_response")
	require.Equal(t, "Conversation already has an active response in progress: "+first+". Wait until the response is finished before creating a new one.", e["message"])
	require.Equal(t, "r2", e["event_id"])
	evs := c.until("response.done")
	require.Empty(t, ofType(evs, "response.created"))
	c.probe()
	rec := sessionByID(t, s, sessID(created))
	require.Len(t, rec.Responses, 1)
	require.True(t, rec.Events[len(rec.Events)-2].Rejected)
	require.Equal(t, "r2", rec.Events[len(rec.Events)-2].EventID)

	// Out-of-band responses may run beside the default one (§2.6) and write
	// nothing to the conversation.
	c.send(map[string]any{"type": "response.create"})
	c.send(map[string]any{"type": "response.create", "response": map[string]any{"conversation": "none", "metadata": map[string]any{"purpose": "summary"},
		"output_modalities": []any{"text"}, "input": []any{userText("summarize")}}})
	var oob map[string]any
	for done := 0; done < 2; {
		ev := c.next()
		if ev["type"] == "response.done" {
			done++
			if r := ev["response"].(map[string]any); r["conversation_id"] == nil {
				oob = r
			}
		}
	}
	require.NotNil(t, oob)
	require.Equal(t, map[string]any{"purpose": "summary"}, oob["metadata"])
	require.Contains(t, oob["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)["text"], `I heard "summarize". I remember 1 items.`)
	rec = sessionByID(t, s, sessID(created))
	require.Len(t, rec.Items, 2, "out-of-band output is not in the conversation")
}

func TestResponseCancel(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	c, _ := dialReady(t, url, gaPath)
	c.update(noVADSession())
	c.send(map[string]any{"type": "response.create"})
	c.expect("response.created")
	c.send(map[string]any{"type": "response.cancel"})
	evs := c.until("response.done")
	done := evs[len(evs)-1]["response"].(map[string]any)
	require.Equal(t, "cancelled", done["status"])
	require.Equal(t, map[string]any{"type": "cancelled", "reason": "client_cancelled"}, done["status_details"])
	c.send(map[string]any{"type": "response.cancel", "event_id": "x"})
	e := c.expectError("response_cancel_not_active")
	require.Equal(t, "x", e["event_id"])

	// Cancel by id, mid-stream.
	c.send(map[string]any{"type": "response.create"})
	id := c.expect("response.created")["response"].(map[string]any)["id"]
	c.until("response.output_audio.delta")
	c.send(map[string]any{"type": "response.cancel", "response_id": "resp_other"})
	// The wrong id is refused, the response goes on; then cancel it properly.
	for ev := c.next(); ev["type"] != "error"; ev = c.next() {
		require.NotEqual(t, "response.done", ev["type"])
	}
	c.send(map[string]any{"type": "response.cancel", "response_id": id})
	evs = c.until("response.done")
	require.Equal(t, "cancelled", evs[len(evs)-1]["response"].(map[string]any)["status"])
}

func TestFunctionCallRoundTrip(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Responder = func(tc TurnContext) Reply {
		if tc.Heard == "transfer me" {
			return Reply{FunctionCall: &FunctionCall{Name: "transfer_call", Arguments: `{"to":"sales"}`}}
		}
		return DefaultResponder(tc)
	}
	s, url := startSim(t, cfg)
	c, created := dialReady(t, url, gaPath)
	sess := noVADSession()
	sess["tools"] = []any{map[string]any{"type": "function", "name": "transfer_call", "parameters": map[string]any{"type": "object"}}}
	c.update(sess)
	c.createItem(userText("transfer me"), nil)
	c.send(map[string]any{"type": "response.create"})
	evs := c.until("response.done")
	require.Equal(t, []string{"response.created", "rate_limits.updated", "response.output_item.added", "conversation.item.added",
		"response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
		"conversation.item.done", "response.done"}, types(evs))
	args := ofType(evs, "response.function_call_arguments.done")[0]
	callID := args["call_id"].(string)
	require.Regexp(t, `^call_`, callID)
	require.Equal(t, "transfer_call", args["name"])
	require.Equal(t, `{"to":"sales"}`, args["arguments"])
	var deltas string
	for _, d := range ofType(evs, "response.function_call_arguments.delta") {
		require.Equal(t, callID, d["call_id"])
		deltas += d["delta"].(string)
	}
	require.Equal(t, `{"to":"sales"}`, deltas)
	fcItem := ofType(evs, "response.output_item.done")[0]["item"].(map[string]any)
	require.Equal(t, "function_call", fcItem["type"])
	require.Equal(t, "completed", fcItem["status"])

	c.createItem(map[string]any{"type": "function_call_output", "call_id": callID, "output": `{"ok":true}`}, nil)
	c.probe() // strict: no automatic response after a function_call_output
	c.send(map[string]any{"type": "response.create"})
	evs = c.until("response.done")
	require.Equal(t, `This is east. You are turn 1; I heard "{\"ok\":true}". I remember 3 items.`,
		ofType(evs, "response.output_audio_transcript.done")[0]["transcript"])
	rec := sessionByID(t, s, sessID(created))
	require.Equal(t, callID, rec.Responses[0].CallID)
	raw, _ := json.Marshal(rec.SessionUpdates[0])
	require.Contains(t, string(raw), "transfer_call")
}

func TestVoiceFixedAfterAudio(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	c, _ := dialReady(t, url, gaPath)
	c.update(noVADSession())
	voice := func(v string) map[string]any {
		return map[string]any{"type": "realtime", "audio": map[string]any{"output": map[string]any{"voice": v}}}
	}
	c.update(voice("ash")) // fine before any audio
	c.send(map[string]any{"type": "response.create"})
	c.until("response.done")
	c.update(voice("ash")) // same voice: fine
	c.send(map[string]any{"type": "session.update", "event_id": "v1", "session": voice("coral")})
	e := c.expectError("cannot_update_voice")
	require.Equal(t, "Cannot update a conversation's voice if assistant audio is present.", e["message"])
	require.Equal(t, "v1", e["event_id"])
}
