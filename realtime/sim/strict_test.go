package sim

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type strictCase struct {
	name    string
	raw     string // sent verbatim
	code    string
	param   any    // nil = JSON null
	message string // exact, or prefix when it ends with "…"
	eventID any
}

func runStrict(t *testing.T, path string, cases []strictCase) {
	s, url := startSim(t, fastConfig("east"))
	c, created := dialReady(t, url, path)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.sendRaw(tc.raw)
			e := c.expectError(tc.code)
			require.Equal(t, "invalid_request_error", e["type"])
			require.Equal(t, tc.param, e["param"])
			require.Equal(t, tc.eventID, e["event_id"])
			if p, ok := strings.CutSuffix(tc.message, "…"); ok {
				require.True(t, strings.HasPrefix(e["message"].(string), p), "message %q", e["message"])
			} else {
				require.Equal(t, tc.message, e["message"])
			}
			// The session survives every one of these (§3.2: recoverable).
			c.probe()
		})
	}
	c.t = t
	rec := sessionByID(t, s, sessID(created))
	require.Len(t, rec.Errors, len(cases))
	require.Zero(t, rec.CloseCode)
}

func TestStrictGA(t *testing.T) {
	runStrict(t, gaPath, []strictCase{
		{"missing type", `{"event_id":"e1"}`, "invalid_event", nil, "The 'type' field is missing.", "e1"},
		{"malformed JSON", `{"type":`, "invalid_event", nil, "Invalid event: the message is not valid JSON.", nil},
		{"not an object", `[1,2]`, "invalid_event", nil, "Invalid event: expected a JSON object, but got an array instead.", nil},
		{"unknown type", `{"type":"response.explode","event_id":"e2"}`, "invalid_value", "type",
			"Invalid value: 'response.explode'. Supported values are: 'session.update', …", "e2"},
		{"type not a string", `{"type":7,"event_id":"e3"}`, "invalid_type", "type",
			"Invalid type for 'type': expected a string, but got an integer instead.", "e3"},
		{"event_id too long", `{"type":"input_audio_buffer.clear","event_id":"` + strings.Repeat("x", 513) + `"}`, "string_above_max_length", "event_id",
			"Invalid 'event_id': string too long. Expected a string with maximum length 512, but got a string with length 513 instead.", nil},
		{"unknown top-level field", `{"type":"input_audio_buffer.commit","event_id":"e4","foo":1}`, "unknown_parameter", "foo", "Unknown parameter: 'foo'.", "e4"},
		{"session.type missing", `{"type":"session.update","event_id":"e5","session":{"instructions":"hi","voice":"alloy"}}`,
			"missing_required_parameter", "session.type", "Missing required parameter: 'session.type'.", "e5"},
		{"beta field in GA", `{"type":"session.update","event_id":"e6","session":{"type":"realtime","input_audio_format":"g711_ulaw"}}`,
			"unknown_parameter", "session.input_audio_format", "Unknown parameter: 'session.input_audio_format'.", "e6"},
		{"pcm rate", `{"type":"session.update","event_id":"e7","session":{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcm","rate":16000}}}}}`,
			"invalid_value", "session.audio.input.format.rate", "Invalid value: 16000. Supported values are: 24000.", "e7"},
		{"rate on pcmu", `{"type":"session.update","event_id":"e8","session":{"type":"realtime","audio":{"output":{"format":{"type":"audio/pcmu","rate":8000}}}}}`,
			"unknown_parameter", "session.audio.output.format.rate", "Unknown parameter: 'session.audio.output.format.rate'.", "e8"},
		{"unknown voice", `{"type":"session.update","event_id":"e9","session":{"type":"realtime","audio":{"output":{"voice":"robot"}}}}`,
			"invalid_value", "session.audio.output.voice", "Invalid value: 'robot'. Supported values are: 'alloy', …", "e9"},
		{"both modalities", `{"type":"session.update","event_id":"e10","session":{"type":"realtime","output_modalities":["audio","text"]}}`,
			"invalid_value", "session.output_modalities", "Invalid modalities: ['audio', 'text']. Supported combinations are: ['text'] and ['audio'].", "e10"},
		{"idle timeout range", `{"type":"session.update","event_id":"e11","session":{"type":"realtime","audio":{"input":{"turn_detection":{"type":"server_vad","idle_timeout_ms":1000}}}}}`,
			"invalid_value", "session.audio.input.turn_detection.idle_timeout_ms", "Invalid 'session.audio.input.turn_detection.idle_timeout_ms': value below minimum. Expected a value >= 5000, but got 1000 instead.", "e11"},
		{"temperature removed in GA", `{"type":"session.update","event_id":"e12","session":{"type":"realtime","temperature":0.8}}`,
			"unknown_parameter", "session.temperature", "Unknown parameter: 'session.temperature'.", "e12"},
		{"model change", `{"type":"session.update","event_id":"e13","session":{"type":"realtime","model":"gpt-4o"}}`,
			"invalid_value", "session.model", "Invalid value: 'gpt-4o'. …", "e13"},
		{"append bad base64", `{"type":"input_audio_buffer.append","event_id":"e14","audio":"!!!"}`,
			"invalid_value", "audio", "Invalid 'audio': expected base64-encoded audio bytes.", "e14"},
		{"append without audio", `{"type":"input_audio_buffer.append","event_id":"e15"}`,
			"missing_required_parameter", "audio", "Missing required parameter: 'audio'.", "e15"},
		{"commit empty", `{"type":"input_audio_buffer.commit","event_id":"e16"}`, "input_audio_buffer_commit_empty", nil,
			"Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has 0.00ms of audio.", "e16"},
		{"cancel with nothing active", `{"type":"response.cancel","event_id":"e17"}`, "response_cancel_not_active", nil,
			"Cancellation failed: no active response found", "e17"},
		{"delete unknown", `{"type":"conversation.item.delete","event_id":"e18","item_id":"item_nope"}`, "invalid_value", "item_id", "Invalid value: 'item_nope'. …", "e18"},
		{"truncate unknown", `{"type":"conversation.item.truncate","event_id":"e19","item_id":"item_nope","content_index":0,"audio_end_ms":10}`,
			"invalid_value", "item_id", "Invalid value: 'item_nope'. …", "e19"},
		{"truncate missing audio_end_ms", `{"type":"conversation.item.truncate","event_id":"e20","item_id":"x","content_index":0}`,
			"missing_required_parameter", "audio_end_ms", "Missing required parameter: 'audio_end_ms'.", "e20"},
		{"retrieve unknown", `{"type":"conversation.item.retrieve","event_id":"e21","item_id":"item_nope"}`, "invalid_value", "item_id", "Invalid value: 'item_nope'. …", "e21"},
		{"response beta field", `{"type":"response.create","event_id":"e22","response":{"modalities":["text"]}}`,
			"unknown_parameter", "response.modalities", "Unknown parameter: 'response.modalities'.", "e22"},
		{"response bad conversation", `{"type":"response.create","event_id":"e23","response":{"conversation":"other"}}`,
			"invalid_value", "response.conversation", "Invalid value: 'other'. Supported values are: 'auto' and 'none'.", "e23"},
		{"response.input unknown reference", `{"type":"response.create","event_id":"e24","response":{"input":[{"type":"item_reference","id":"item_x"}]}}`,
			"invalid_value", "response.input[0].id", "Invalid value: 'item_x'. …", "e24"},
		{"output_audio_buffer.clear on websocket", `{"type":"output_audio_buffer.clear","event_id":"e25"}`, "", nil,
			"output_audio_buffer.clear is only supported on WebRTC and SIP connections.", "e25"},
	})
}

func TestStrictPreview(t *testing.T) {
	runStrict(t, previewPath, []strictCase{
		{"GA session.type in preview", `{"type":"session.update","event_id":"p1","session":{"type":"realtime"}}`,
			"unknown_parameter", "session.type", "Unknown parameter: 'session.type'.", "p1"},
		{"GA audio object in preview", `{"type":"session.update","event_id":"p2","session":{"audio":{}}}`,
			"unknown_parameter", "session.audio", "Unknown parameter: 'session.audio'.", "p2"},
		{"temperature too high", `{"type":"session.update","event_id":"p3","session":{"temperature":1.5}}`,
			"invalid_value", "session.temperature", "Invalid 'session.temperature': value above maximum. Expected a value <= 1.2, but got 1.5 instead.", "p3"},
		{"temperature too low", `{"type":"session.update","event_id":"p4","session":{"temperature":0.5}}`,
			"invalid_value", "session.temperature", "Invalid 'session.temperature': value below minimum. Expected a value >= 0.6, but got 0.5 instead.", "p4"},
		// §9: marin and cedar exist only in GA; the observed message.
		{"GA-only voice marin", `{"type":"session.update","event_id":"pv1","session":{"voice":"marin"}}`,
			"invalid_value", "session.voice", "Invalid value: 'marin'. Supported values are: 'alloy', 'ash', 'ballad', 'coral', 'echo', 'sage', 'shimmer', and 'verse'.", "pv1"},
		{"GA-only voice cedar", `{"type":"session.update","event_id":"pv2","session":{"voice":"cedar"}}`,
			"invalid_value", "session.voice", "Invalid value: 'cedar'. Supported values are: 'alloy', …", "pv2"},
		{"GA-only voice on response", `{"type":"response.create","event_id":"pv3","response":{"voice":"marin"}}`,
			"invalid_value", "response.voice", "Invalid value: 'marin'. Supported values are: 'alloy', …", "pv3"},
		{"audio-only modalities", `{"type":"session.update","event_id":"p5","session":{"modalities":["audio"]}}`,
			"invalid_value", "session.modalities", "Invalid modalities: ['audio']. Supported combinations are: ['text'] and ['audio', 'text'].", "p5"},
		{"idle timeout is GA only", `{"type":"session.update","event_id":"p6","session":{"turn_detection":{"type":"server_vad","idle_timeout_ms":6000}}}`,
			"unknown_parameter", "session.turn_detection.idle_timeout_ms", "Unknown parameter: 'session.turn_detection.idle_timeout_ms'.", "p6"},
		{"GA voice in preview", `{"type":"session.update","event_id":"p7","session":{"voice":"marin"}}`,
			"invalid_value", "session.voice", "Invalid value: 'marin'. Supported values are: 'alloy', …", "p7"},
		{"bad audio format", `{"type":"session.update","event_id":"p8","session":{"input_audio_format":"audio/pcmu"}}`,
			"invalid_value", "session.input_audio_format", "Invalid value: 'audio/pcmu'. Supported values are: 'pcm16', 'g711_ulaw', and 'g711_alaw'.", "p8"},
		{"GA assistant content in preview", `{"type":"conversation.item.create","event_id":"p9","item":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hi"}]}}`,
			"invalid_value", "item.content[0].type", "Invalid value: 'output_text'. Value must be 'text'.", "p9"},
		{"GA response field in preview", `{"type":"response.create","event_id":"p10","response":{"output_modalities":["audio"]}}`,
			"unknown_parameter", "response.output_modalities", "Unknown parameter: 'response.output_modalities'.", "p10"},
	})
}

func TestSessionUpdateEffectiveConfig(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	t.Run("GA", func(t *testing.T) {
		c, _ := dialReady(t, url, gaPath)
		ev := c.update(map[string]any{
			"type": "realtime", "instructions": "Be brief.",
			"audio": map[string]any{
				"input": map[string]any{"format": map[string]any{"type": "audio/pcmu"},
					"transcription":  map[string]any{"model": "gpt-4o-transcribe", "language": "en"},
					"turn_detection": map[string]any{"type": "server_vad", "silence_duration_ms": 400, "idle_timeout_ms": 6000}},
				"output": map[string]any{"format": map[string]any{"type": "audio/pcma"}, "voice": "cedar", "speed": 1.2},
			},
			"tools": []any{map[string]any{"type": "function", "name": "transfer_call", "parameters": map[string]any{"type": "object"}}},
		})
		// session.updated does not echo the client's event_id (§2.1).
		require.NotEqual(t, "evt_update", ev["event_id"])
		sess := ev["session"].(map[string]any)
		require.Equal(t, "Be brief.", sess["instructions"])
		a := sess["audio"].(map[string]any)
		in, out := a["input"].(map[string]any), a["output"].(map[string]any)
		require.Equal(t, map[string]any{"type": "audio/pcmu"}, in["format"])
		require.Equal(t, "gpt-4o-transcribe", in["transcription"].(map[string]any)["model"])
		td := in["turn_detection"].(map[string]any)
		require.Equal(t, 400.0, td["silence_duration_ms"])
		require.Equal(t, 6000.0, td["idle_timeout_ms"])
		require.Equal(t, 0.5, td["threshold"], "unsent VAD fields take defaults")
		require.Equal(t, map[string]any{"type": "audio/pcma"}, out["format"])
		require.Equal(t, "cedar", out["voice"])
		require.Equal(t, 1.2, out["speed"])
		require.Len(t, sess["tools"], 1)
		// Only the fields sent change.
		ev = c.update(map[string]any{"type": "realtime", "instructions": "Be kind."})
		sess = ev["session"].(map[string]any)
		require.Equal(t, "Be kind.", sess["instructions"])
		require.Equal(t, "cedar", sess["audio"].(map[string]any)["output"].(map[string]any)["voice"])
		require.Len(t, sess["tools"], 1)
		// turn_detection null turns VAD off.
		ev = c.update(map[string]any{"type": "realtime", "audio": map[string]any{"input": map[string]any{"turn_detection": nil}}})
		require.Nil(t, ev["session"].(map[string]any)["audio"].(map[string]any)["input"].(map[string]any)["turn_detection"])
	})
	t.Run("preview", func(t *testing.T) {
		c, _ := dialReady(t, url, previewPath)
		ev := c.update(map[string]any{"modalities": []any{"text", "audio"}, "voice": "verse", "input_audio_format": "g711_ulaw",
			"output_audio_format": "g711_alaw", "temperature": 0.7, "turn_detection": nil,
			"input_audio_transcription": map[string]any{"model": "whisper-1"}})
		sess := ev["session"].(map[string]any)
		require.Equal(t, "verse", sess["voice"])
		require.Equal(t, "g711_ulaw", sess["input_audio_format"])
		require.Equal(t, "g711_alaw", sess["output_audio_format"])
		require.Equal(t, 0.7, sess["temperature"])
		require.Nil(t, sess["turn_detection"])
		require.Equal(t, "whisper-1", sess["input_audio_transcription"].(map[string]any)["model"])
	})
}
