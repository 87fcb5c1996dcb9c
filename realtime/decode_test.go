package realtime

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

type decodeCase struct {
	name     string
	wire     string
	dialects []Dialect // nil = both
	want     ServerEvent
}

var both = []Dialect{DialectGA, DialectPreview}

// decodeCases are the server events of protocol doc §3 (and §4, §6), in the
// shapes the doc shows, for both dialects. They also seed the fuzz target.
var decodeCases = []decodeCase{
	// §3.1 session
	{
		name: "session.created GA",
		wire: `{"type":"session.created","event_id":"event_1","session":{"type":"realtime","object":"realtime.session","id":"sess_C9","model":"gpt-realtime-2025-08-28","output_modalities":["audio"],"instructions":"<server default>","tools":[],"tool_choice":"auto","max_output_tokens":"inf","tracing":null,"prompt":null,"expires_at":1756324625,"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"transcription":null,"noise_reduction":null,"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":200,"idle_timeout_ms":null,"create_response":true,"interrupt_response":true}},"output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin","speed":1}},"include":null}}`,
		want: ServerEvent{Type: EvSessionCreated, WireType: EvSessionCreated, EventID: "event_1",
			Session: &SessionInfo{ID: "sess_C9", Object: "realtime.session", Type: "realtime", Model: "gpt-realtime-2025-08-28", ExpiresAt: 1756324625}},
	},
	{
		name: "session.created preview (flat)",
		wire: `{"type":"session.created","event_id":"event_2","session":{"id":"sess_P1","object":"realtime.session","model":"gpt-4o-realtime-preview","modalities":["text","audio"],"instructions":"","voice":"alloy","input_audio_format":"pcm16","output_audio_format":"pcm16","input_audio_transcription":null,"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":200},"tools":[],"tool_choice":"auto","temperature":0.8,"max_response_output_tokens":"inf","expires_at":1756324625}}`,
		want: ServerEvent{Type: EvSessionCreated, WireType: EvSessionCreated, EventID: "event_2",
			Session: &SessionInfo{ID: "sess_P1", Object: "realtime.session", Model: "gpt-4o-realtime-preview", ExpiresAt: 1756324625}},
	},
	{
		name: "session.updated",
		wire: `{"type":"session.updated","event_id":"event_3","session":{"type":"realtime","id":"sess_C9","expires_at":1756324625,"audio":{"input":{"format":{"type":"audio/pcmu"}}}}}`,
		want: ServerEvent{Type: EvSessionUpdated, WireType: EvSessionUpdated, EventID: "event_3",
			Session: &SessionInfo{ID: "sess_C9", Type: "realtime", ExpiresAt: 1756324625}},
	},
	{
		name: "session.created without expires_at",
		wire: `{"type":"session.created","session":{"id":"sess_1","expires_at":null}}`,
		want: ServerEvent{Type: EvSessionCreated, WireType: EvSessionCreated, Session: &SessionInfo{ID: "sess_1"}},
	},
	{
		name: "conversation.created",
		wire: `{"type":"conversation.created","event_id":"event_4","conversation":{"id":"conv_1","object":"realtime.conversation"}}`,
		want: ServerEvent{Type: EvConversationCreated, WireType: EvConversationCreated, EventID: "event_4"},
	},
	// §3.2 error, §6.1 codes
	{
		name: "error invalid_event",
		wire: `{"type":"error","event_id":"event_890","error":{"type":"invalid_request_error","code":"invalid_event","message":"The 'type' field is missing.","param":null,"event_id":"event_567"}}`,
		want: ServerEvent{Type: EvError, WireType: EvError, EventID: "event_890",
			Error: &ErrorDetail{Type: "invalid_request_error", Code: "invalid_event", Message: "The 'type' field is missing.", EventID: "event_567"}},
	},
	{
		name: "error session_expired with null event_id",
		wire: `{"type":"error","event_id":"event_9","error":{"type":"invalid_request_error","code":"session_expired","message":"Your session hit the maximum duration of 60 minutes.","param":null,"event_id":null}}`,
		want: ServerEvent{Type: EvError, WireType: EvError, EventID: "event_9",
			Error: &ErrorDetail{Type: "invalid_request_error", Code: "session_expired", Message: "Your session hit the maximum duration of 60 minutes."}},
	},
	{
		name: "error beta_api_shape_disabled",
		wire: `{"type":"error","event_id":"event_b","error":{"type":"invalid_request_error","code":"beta_api_shape_disabled","message":"The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."}}`,
		want: ServerEvent{Type: EvError, WireType: EvError, EventID: "event_b",
			Error: &ErrorDetail{Type: "invalid_request_error", Code: "beta_api_shape_disabled", Message: "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."}},
	},
	{
		name: "error unknown parameter with param",
		wire: `{"type":"error","error":{"type":"invalid_request_error","code":"unknown_parameter","message":"Unknown parameter: 'session.input_audio_format'.","param":"session.input_audio_format","event_id":"evt_1"}}`,
		want: ServerEvent{Type: EvError, WireType: EvError,
			Error: &ErrorDetail{Type: "invalid_request_error", Code: "unknown_parameter", Message: "Unknown parameter: 'session.input_audio_format'.", Param: "session.input_audio_format", EventID: "evt_1"}},
	},
	{
		name: "error server_error with null code",
		wire: `{"type":"error","event_id":"e","error":{"type":"server_error","code":null,"message":"The server had an error. You can retry your request.","param":null,"event_id":null}}`,
		want: ServerEvent{Type: EvError, WireType: EvError, EventID: "e",
			Error: &ErrorDetail{Type: "server_error", Message: "The server had an error. You can retry your request."}},
	},
	// §3.3 input audio buffer
	{
		name: "speech_started",
		wire: `{"type":"input_audio_buffer.speech_started","event_id":"e","audio_start_ms":1000,"item_id":"item_003"}`,
		want: ServerEvent{Type: EvInputSpeechStarted, WireType: EvInputSpeechStarted, EventID: "e", AudioStartMs: 1000, ItemID: "item_003"},
	},
	{
		name: "speech_stopped",
		wire: `{"type":"input_audio_buffer.speech_stopped","event_id":"e","audio_end_ms":2000,"item_id":"item_003"}`,
		want: ServerEvent{Type: EvInputSpeechStopped, WireType: EvInputSpeechStopped, EventID: "e", AudioEndMs: 2000, ItemID: "item_003"},
	},
	{
		name: "committed",
		wire: `{"type":"input_audio_buffer.committed","event_id":"e","previous_item_id":"item_002","item_id":"item_003"}`,
		want: ServerEvent{Type: EvInputCommitted, WireType: EvInputCommitted, EventID: "e", PreviousItemID: "item_002", ItemID: "item_003"},
	},
	{
		name: "committed with null previous_item_id",
		wire: `{"type":"input_audio_buffer.committed","event_id":"e","previous_item_id":null,"item_id":"item_001"}`,
		want: ServerEvent{Type: EvInputCommitted, WireType: EvInputCommitted, EventID: "e", ItemID: "item_001"},
	},
	{
		name: "cleared",
		wire: `{"type":"input_audio_buffer.cleared","event_id":"e"}`,
		want: ServerEvent{Type: EvInputCleared, WireType: EvInputCleared, EventID: "e"},
	},
	{
		name:     "timeout_triggered (GA)",
		wire:     `{"type":"input_audio_buffer.timeout_triggered","event_id":"e","audio_start_ms":13216,"audio_end_ms":19232,"item_id":"item_7"}`,
		dialects: []Dialect{DialectGA},
		want:     ServerEvent{Type: EvInputTimeoutTriggered, WireType: EvInputTimeoutTriggered, EventID: "e", AudioStartMs: 13216, AudioEndMs: 19232, ItemID: "item_7"},
	},
	{
		name:     "dtmf_event_received (GA, SIP only; no event_id)",
		wire:     `{"type":"input_audio_buffer.dtmf_event_received","event":"9","received_at":1763605109}`,
		dialects: []Dialect{DialectGA},
		want:     ServerEvent{Type: "input_audio_buffer.dtmf_event_received", WireType: "input_audio_buffer.dtmf_event_received"},
	},
	// §3.4 conversation items
	{
		name:     "conversation.item.added (GA) user item in progress",
		wire:     `{"type":"conversation.item.added","event_id":"e","previous_item_id":null,"item":{"id":"item_003","object":"realtime.item","type":"message","status":"in_progress","role":"user","content":[]}}`,
		dialects: []Dialect{DialectGA},
		want: ServerEvent{Type: EvItemAdded, WireType: EvItemAdded, EventID: "e",
			Item: &Item{ID: "item_003", Object: "realtime.item", Type: "message", Status: "in_progress", Role: "user", Content: []ContentPart{}}},
	},
	{
		name:     "conversation.item.done (GA) assistant audio item, no status",
		wire:     `{"type":"conversation.item.done","event_id":"e","previous_item_id":"item_003","item":{"id":"msg_007","type":"message","role":"assistant","content":[{"type":"output_audio","transcript":"Hello there."}]}}`,
		dialects: []Dialect{DialectGA},
		want: ServerEvent{Type: EvItemDone, WireType: EvItemDone, EventID: "e", PreviousItemID: "item_003",
			Item: &Item{ID: "msg_007", Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_audio", Transcript: "Hello there."}}}},
	},
	{
		name: "conversation.item.created (preview) assistant text/audio become output_*",
		wire: `{"type":"conversation.item.created","event_id":"e","previous_item_id":"item_002","item":{"id":"msg_1","object":"realtime.item","type":"message","status":"completed","role":"assistant","content":[{"type":"text","text":"Hi"},{"type":"audio","transcript":"Hi"}]}}`,
		want: ServerEvent{Type: EvItemAdded, WireType: "conversation.item.created", EventID: "e", PreviousItemID: "item_002",
			Item: &Item{ID: "msg_1", Object: "realtime.item", Type: "message", Status: "completed", Role: "assistant",
				Content: []ContentPart{{Type: "output_text", Text: "Hi"}, {Type: "output_audio", Transcript: "Hi"}}}},
	},
	{
		name: "conversation.item.created (preview) user audio item keeps input types, null transcript",
		wire: `{"type":"conversation.item.created","event_id":"e","previous_item_id":null,"item":{"id":"item_4","type":"message","role":"user","content":[{"type":"input_audio","transcript":null}]}}`,
		want: ServerEvent{Type: EvItemAdded, WireType: "conversation.item.created", EventID: "e",
			Item: &Item{ID: "item_4", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio"}}}},
	},
	{
		name: "conversation.item.created function_call_output",
		wire: `{"type":"conversation.item.created","item":{"id":"item_5","type":"function_call_output","call_id":"call_1","output":"{\"ok\":true}"}}`,
		want: ServerEvent{Type: EvItemAdded, WireType: "conversation.item.created",
			Item: &Item{ID: "item_5", Type: "function_call_output", CallID: "call_1", Output: `{"ok":true}`}},
	},
	{
		name: "conversation.item.deleted",
		wire: `{"type":"conversation.item.deleted","event_id":"e","item_id":"item_003"}`,
		want: ServerEvent{Type: EvItemDeleted, WireType: EvItemDeleted, EventID: "e", ItemID: "item_003"},
	},
	{
		name: "conversation.item.truncated",
		wire: `{"type":"conversation.item.truncated","event_id":"e","item_id":"msg_7","content_index":0,"audio_end_ms":1500}`,
		want: ServerEvent{Type: EvItemTruncated, WireType: EvItemTruncated, EventID: "e", ItemID: "msg_7", AudioEndMs: 1500},
	},
	{
		name: "conversation.item.retrieved with audio",
		wire: `{"type":"conversation.item.retrieved","event_id":"e","item":{"id":"item_3","object":"realtime.item","type":"message","status":"completed","role":"user","content":[{"type":"input_audio","audio":"AAEC","transcript":"hey"}]}}`,
		want: ServerEvent{Type: EvItemRetrieved, WireType: EvItemRetrieved, EventID: "e",
			Item: &Item{ID: "item_3", Object: "realtime.item", Type: "message", Status: "completed", Role: "user",
				Content: []ContentPart{{Type: "input_audio", Audio: []byte{0, 1, 2}, Transcript: "hey"}}}},
	},
	// §3.5 input transcription
	{
		name: "input transcription delta",
		wire: `{"type":"conversation.item.input_audio_transcription.delta","event_id":"e","item_id":"item_1","content_index":0,"delta":"Hey","logprobs":null}`,
		want: ServerEvent{Type: EvInputTranscriptionDelta, WireType: EvInputTranscriptionDelta, EventID: "e", ItemID: "item_1", Delta: "Hey"},
	},
	{
		name: "input transcription completed with token usage",
		wire: `{"type":"conversation.item.input_audio_transcription.completed","event_id":"e","item_id":"item_1","content_index":0,"transcript":"Hey, can you hear me?","logprobs":null,"usage":{"type":"tokens","total_tokens":22,"input_tokens":13,"input_token_details":{"text_tokens":0,"audio_tokens":13},"output_tokens":9}}`,
		want: ServerEvent{Type: EvInputTranscriptionCompleted, WireType: EvInputTranscriptionCompleted, EventID: "e", ItemID: "item_1", Transcript: "Hey, can you hear me?"},
	},
	{
		name: "input transcription completed with duration usage",
		wire: `{"type":"conversation.item.input_audio_transcription.completed","item_id":"item_2","content_index":0,"transcript":"Yes.","usage":{"type":"duration","seconds":2.0}}`,
		want: ServerEvent{Type: EvInputTranscriptionCompleted, WireType: EvInputTranscriptionCompleted, ItemID: "item_2", Transcript: "Yes."},
	},
	{
		name: "input transcription failed",
		wire: `{"type":"conversation.item.input_audio_transcription.failed","event_id":"e","item_id":"msg_003","content_index":0,"error":{"type":"transcription_error","code":"audio_unintelligible","message":"The audio could not be transcribed.","param":null}}`,
		want: ServerEvent{Type: EvInputTranscriptionFailed, WireType: EvInputTranscriptionFailed, EventID: "e", ItemID: "msg_003",
			Error: &ErrorDetail{Type: "transcription_error", Code: "audio_unintelligible", Message: "The audio could not be transcribed."}},
	},
	{
		name:     "input transcription segment (GA)",
		wire:     `{"type":"conversation.item.input_audio_transcription.segment","event_id":"e","item_id":"item_1","content_index":0,"id":"seg_1","speaker":"A","start":0.5,"end":1.25,"text":"Hello"}`,
		dialects: []Dialect{DialectGA},
		want:     ServerEvent{Type: EvInputTranscriptionSegment, WireType: EvInputTranscriptionSegment, EventID: "e", ItemID: "item_1", Text: "Hello"},
	},
	// §3.6 response lifecycle
	{
		name: "response.created",
		wire: `{"type":"response.created","event_id":"e","response":{"object":"realtime.response","id":"resp_1","status":"in_progress","status_details":null,"output":[],"conversation_id":"conv_1","output_modalities":["audio"],"max_output_tokens":"inf","audio":{"output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin"}},"usage":null,"metadata":null}}`,
		want: ServerEvent{Type: EvResponseCreated, WireType: EvResponseCreated, EventID: "e",
			Response: &ResponseInfo{ID: "resp_1", Object: "realtime.response", Status: StatusInProgress, Output: []Item{}, ConversationID: "conv_1",
				RawUsage: json.RawMessage(`null`)}},
	},
	{
		name: "response.created with metadata",
		wire: `{"type":"response.created","response":{"id":"resp_2","status":"in_progress","metadata":{"purpose":"greeting"}}}`,
		want: ServerEvent{Type: EvResponseCreated, WireType: EvResponseCreated,
			Response: &ResponseInfo{ID: "resp_2", Status: StatusInProgress, Metadata: map[string]string{"purpose": "greeting"}}},
	},
	{
		name: "response.output_item.added",
		wire: `{"type":"response.output_item.added","event_id":"e","response_id":"resp_001","output_index":0,"item":{"id":"msg_007","object":"realtime.item","type":"message","status":"in_progress","role":"assistant","content":[]}}`,
		want: ServerEvent{Type: EvOutputItemAdded, WireType: EvOutputItemAdded, EventID: "e", ResponseID: "resp_001",
			Item: &Item{ID: "msg_007", Object: "realtime.item", Type: "message", Status: "in_progress", Role: "assistant", Content: []ContentPart{}}},
	},
	{
		name: "response.content_part.added part audio becomes output_audio",
		wire: `{"type":"response.content_part.added","event_id":"e","response_id":"resp_001","item_id":"msg_007","output_index":0,"content_index":0,"part":{"type":"audio","transcript":""}}`,
		want: ServerEvent{Type: EvContentPartAdded, WireType: EvContentPartAdded, EventID: "e", ResponseID: "resp_001", ItemID: "msg_007",
			Part: &ContentPart{Type: "output_audio"}},
	},
	{
		name: "response.content_part.done part text becomes output_text",
		wire: `{"type":"response.content_part.done","response_id":"resp_001","item_id":"msg_007","output_index":1,"content_index":1,"part":{"type":"text","text":"Hi"}}`,
		want: ServerEvent{Type: EvContentPartDone, WireType: EvContentPartDone, ResponseID: "resp_001", ItemID: "msg_007", OutputIndex: 1, ContentIndex: 1,
			Part: &ContentPart{Type: "output_text", Text: "Hi"}},
	},
	{
		name:     "response.output_audio.delta (GA) decodes audio",
		wire:     `{"type":"response.output_audio.delta","event_id":"e","response_id":"resp_001","item_id":"msg_008","output_index":0,"content_index":0,"delta":"/38AAQ=="}`,
		dialects: []Dialect{DialectGA},
		want: ServerEvent{Type: EvOutputAudioDelta, WireType: EvOutputAudioDelta, EventID: "e", ResponseID: "resp_001", ItemID: "msg_008",
			Audio: []byte{0xff, 0x7f, 0x00, 0x01}},
	},
	{
		name: "response.audio.delta (preview) is renamed and decoded",
		wire: `{"type":"response.audio.delta","event_id":"e","response_id":"resp_001","item_id":"msg_008","output_index":0,"content_index":0,"delta":"/38AAQ=="}`,
		want: ServerEvent{Type: EvOutputAudioDelta, WireType: "response.audio.delta", EventID: "e", ResponseID: "resp_001", ItemID: "msg_008",
			Audio: []byte{0xff, 0x7f, 0x00, 0x01}},
	},
	{
		name: "response.output_audio.delta with empty delta",
		wire: `{"type":"response.output_audio.delta","item_id":"msg_8","delta":""}`,
		want: ServerEvent{Type: EvOutputAudioDelta, WireType: EvOutputAudioDelta, ItemID: "msg_8"},
	},
	{
		name:     "response.output_audio.done (GA)",
		wire:     `{"type":"response.output_audio.done","event_id":"e","response_id":"resp_001","item_id":"msg_008","output_index":0,"content_index":0}`,
		dialects: []Dialect{DialectGA},
		want:     ServerEvent{Type: EvOutputAudioDone, WireType: EvOutputAudioDone, EventID: "e", ResponseID: "resp_001", ItemID: "msg_008"},
	},
	{
		name: "response.audio.done (preview)",
		wire: `{"type":"response.audio.done","event_id":"e","response_id":"resp_001","item_id":"msg_008","output_index":0,"content_index":0}`,
		want: ServerEvent{Type: EvOutputAudioDone, WireType: "response.audio.done", EventID: "e", ResponseID: "resp_001", ItemID: "msg_008"},
	},
	{
		name:     "response.output_audio_transcript.delta (GA)",
		wire:     `{"type":"response.output_audio_transcript.delta","event_id":"e","response_id":"resp_001","item_id":"msg_008","output_index":0,"content_index":0,"delta":"Hello, how can I a"}`,
		dialects: []Dialect{DialectGA},
		want: ServerEvent{Type: EvOutputAudioTranscriptDelta, WireType: EvOutputAudioTranscriptDelta, EventID: "e", ResponseID: "resp_001", ItemID: "msg_008",
			Delta: "Hello, how can I a"},
	},
	{
		name: "response.audio_transcript.delta (preview)",
		wire: `{"type":"response.audio_transcript.delta","response_id":"resp_001","item_id":"msg_008","delta":"Hello"}`,
		want: ServerEvent{Type: EvOutputAudioTranscriptDelta, WireType: "response.audio_transcript.delta", ResponseID: "resp_001", ItemID: "msg_008", Delta: "Hello"},
	},
	{
		name:     "response.output_audio_transcript.done (GA)",
		wire:     `{"type":"response.output_audio_transcript.done","event_id":"e","response_id":"resp_001","item_id":"msg_008","output_index":0,"content_index":0,"transcript":"Hello, how can I assist you today?"}`,
		dialects: []Dialect{DialectGA},
		want: ServerEvent{Type: EvOutputAudioTranscriptDone, WireType: EvOutputAudioTranscriptDone, EventID: "e", ResponseID: "resp_001", ItemID: "msg_008",
			Transcript: "Hello, how can I assist you today?"},
	},
	{
		name: "response.audio_transcript.done (preview)",
		wire: `{"type":"response.audio_transcript.done","response_id":"resp_001","item_id":"msg_008","transcript":"Hello."}`,
		want: ServerEvent{Type: EvOutputAudioTranscriptDone, WireType: "response.audio_transcript.done", ResponseID: "resp_001", ItemID: "msg_008", Transcript: "Hello."},
	},
	{
		name:     "response.output_text.delta (GA)",
		wire:     `{"type":"response.output_text.delta","response_id":"r","item_id":"m","delta":"Hi"}`,
		dialects: []Dialect{DialectGA},
		want:     ServerEvent{Type: EvOutputTextDelta, WireType: EvOutputTextDelta, ResponseID: "r", ItemID: "m", Delta: "Hi"},
	},
	{
		name: "response.text.delta (preview)",
		wire: `{"type":"response.text.delta","response_id":"r","item_id":"m","delta":"Hi"}`,
		want: ServerEvent{Type: EvOutputTextDelta, WireType: "response.text.delta", ResponseID: "r", ItemID: "m", Delta: "Hi"},
	},
	{
		name:     "response.output_text.done (GA)",
		wire:     `{"type":"response.output_text.done","response_id":"r","item_id":"m","text":"Hi there"}`,
		dialects: []Dialect{DialectGA},
		want:     ServerEvent{Type: EvOutputTextDone, WireType: EvOutputTextDone, ResponseID: "r", ItemID: "m", Text: "Hi there"},
	},
	{
		name: "response.text.done (preview)",
		wire: `{"type":"response.text.done","response_id":"r","item_id":"m","text":"Hi there"}`,
		want: ServerEvent{Type: EvOutputTextDone, WireType: "response.text.done", ResponseID: "r", ItemID: "m", Text: "Hi there"},
	},
	{
		name: "response.function_call_arguments.delta",
		wire: `{"type":"response.function_call_arguments.delta","event_id":"e","response_id":"resp_002","item_id":"fc_001","output_index":0,"call_id":"call_001","delta":"{\"location\": \"San\""}`,
		want: ServerEvent{Type: EvFunctionCallArgumentsDelta, WireType: EvFunctionCallArgumentsDelta, EventID: "e", ResponseID: "resp_002", ItemID: "fc_001",
			CallID: "call_001", Delta: `{"location": "San"`},
	},
	{
		name: "response.function_call_arguments.done",
		wire: `{"type":"response.function_call_arguments.done","event_id":"e","response_id":"resp_002","item_id":"fc_001","output_index":0,"call_id":"call_001","name":"get_weather","arguments":"{\"location\": \"San Francisco\"}"}`,
		want: ServerEvent{Type: EvFunctionCallArgumentsDone, WireType: EvFunctionCallArgumentsDone, EventID: "e", ResponseID: "resp_002", ItemID: "fc_001",
			CallID: "call_001", Name: "get_weather", Arguments: `{"location": "San Francisco"}`},
	},
	{
		name: "response.output_item.done function_call",
		wire: `{"type":"response.output_item.done","event_id":"e","response_id":"resp_002","output_index":0,"item":{"id":"fc_001","object":"realtime.item","type":"function_call","status":"completed","call_id":"call_001","name":"get_weather","arguments":"{}"}}`,
		want: ServerEvent{Type: EvOutputItemDone, WireType: EvOutputItemDone, EventID: "e", ResponseID: "resp_002",
			Item: &Item{ID: "fc_001", Object: "realtime.item", Type: "function_call", Status: "completed", CallID: "call_001", Name: "get_weather", Arguments: "{}"}},
	},
	{
		name: "response.done completed with GA usage and preview-shaped output",
		wire: `{"type":"response.done","event_id":"e","response":{"object":"realtime.response","id":"resp_1","status":"completed","status_details":null,"output":[{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"audio","transcript":"Hi."}]}],"conversation_id":"conv_1","usage":{"total_tokens":253,"input_tokens":132,"output_tokens":121,"input_token_details":{"text_tokens":119,"audio_tokens":13,"image_tokens":0,"cached_tokens":64,"cached_tokens_details":{"text_tokens":64,"audio_tokens":0,"image_tokens":0}},"output_token_details":{"text_tokens":30,"audio_tokens":91}},"metadata":null}}`,
		want: ServerEvent{Type: EvResponseDone, WireType: EvResponseDone, EventID: "e",
			Response: &ResponseInfo{ID: "resp_1", Object: "realtime.response", Status: StatusCompleted, ConversationID: "conv_1",
				Output:   []Item{{ID: "msg_1", Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_audio", Transcript: "Hi."}}}},
				RawUsage: json.RawMessage(`{"total_tokens":253,"input_tokens":132,"output_tokens":121,"input_token_details":{"text_tokens":119,"audio_tokens":13,"image_tokens":0,"cached_tokens":64,"cached_tokens_details":{"text_tokens":64,"audio_tokens":0,"image_tokens":0}},"output_token_details":{"text_tokens":30,"audio_tokens":91}}`),
				Usage: Usage{Kind: UsageTokens, TotalTokens: 253, InputTokens: 132, OutputTokens: 121, InputText: 119, InputAudio: 13,
					InputCached: 64, CachedText: 64, OutputText: 30, OutputAudio: 91}}},
	},
	{
		// §3.7: the failed response.done as seen on the wire.
		name: "response.done failed server_error",
		wire: `{"type":"response.done","event_id":"event_DICHED8JCp84nZTAtpUbw","response":{"object":"realtime.response","id":"resp_DICHBbtv1ecrxAa1RL8dW","status":"failed","status_details":{"type":"failed","error":{"type":"server_error","code":null,"message":"The server had an error while processing your request. Sorry about that! (include session ID in your message: sess_1). We recommend you retry your request."}},"output":[],"conversation_id":"conv_1","usage":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"input_token_details":{},"output_token_details":{}},"metadata":null}}`,
		want: ServerEvent{Type: EvResponseDone, WireType: EvResponseDone, EventID: "event_DICHED8JCp84nZTAtpUbw",
			Response: &ResponseInfo{ID: "resp_DICHBbtv1ecrxAa1RL8dW", Object: "realtime.response", Status: StatusFailed, Output: []Item{}, ConversationID: "conv_1",
				StatusDetails: &StatusDetails{Type: "failed", Error: &ErrorDetail{Type: "server_error",
					Message: "The server had an error while processing your request. Sorry about that! (include session ID in your message: sess_1). We recommend you retry your request."}},
				RawUsage: json.RawMessage(`{"total_tokens":0,"input_tokens":0,"output_tokens":0,"input_token_details":{},"output_token_details":{}}`),
				Usage:    Usage{Kind: UsageTokens}}},
	},
	{
		name: "response.done failed minimal (error type only)",
		wire: `{"type":"response.done","response":{"id":"resp_2","status":"failed","status_details":{"error":{"type":"server_error"},"type":"failed"}}}`,
		want: ServerEvent{Type: EvResponseDone, WireType: EvResponseDone,
			Response: &ResponseInfo{ID: "resp_2", Status: StatusFailed, StatusDetails: &StatusDetails{Type: "failed", Error: &ErrorDetail{Type: "server_error"}}}},
	},
	{
		name: "response.done failed rate limit",
		wire: `{"type":"response.done","response":{"id":"resp_3","status":"failed","status_details":{"type":"failed","error":{"type":"invalid_request_error","code":"inference_rate_limit_exceeded"}},"output":[]}}`,
		want: ServerEvent{Type: EvResponseDone, WireType: EvResponseDone,
			Response: &ResponseInfo{ID: "resp_3", Status: StatusFailed, Output: []Item{},
				StatusDetails: &StatusDetails{Type: "failed", Error: &ErrorDetail{Type: "invalid_request_error", Code: "inference_rate_limit_exceeded"}}}},
	},
	{
		name: "response.done cancelled turn_detected",
		wire: `{"type":"response.done","response":{"id":"resp_4","status":"cancelled","status_details":{"type":"cancelled","reason":"turn_detected"}}}`,
		want: ServerEvent{Type: EvResponseDone, WireType: EvResponseDone,
			Response: &ResponseInfo{ID: "resp_4", Status: StatusCancelled, StatusDetails: &StatusDetails{Type: "cancelled", Reason: "turn_detected"}}},
	},
	{
		name: "response.done incomplete, status_details missing, output null",
		wire: `{"type":"response.done","response":{"id":"resp_5","status":"incomplete","output":null}}`,
		want: ServerEvent{Type: EvResponseDone, WireType: EvResponseDone, Response: &ResponseInfo{ID: "resp_5", Status: StatusIncomplete}},
	},
	{
		name: "response.done without status",
		wire: `{"type":"response.done","response":{"id":"resp_6"}}`,
		want: ServerEvent{Type: EvResponseDone, WireType: EvResponseDone, Response: &ResponseInfo{ID: "resp_6"}},
	},
	// §3.8
	{
		name: "rate_limits.updated",
		wire: `{"type":"rate_limits.updated","event_id":"event_5758","rate_limits":[{"name":"requests","limit":1000,"remaining":999,"reset_seconds":60},{"name":"tokens","limit":50000,"remaining":49950,"reset_seconds":60}]}`,
		want: ServerEvent{Type: EvRateLimitsUpdated, WireType: EvRateLimitsUpdated, EventID: "event_5758", RateLimits: []RateLimit{
			{Name: "requests", Limit: 1000, Remaining: 999, ResetSeconds: 60},
			{Name: "tokens", Limit: 50000, Remaining: 49950, ResetSeconds: 60}}},
	},
	{
		name: "rate_limits.updated with odd fields",
		wire: `{"type":"rate_limits.updated","rate_limits":[{"name":"requests","limit":"x","remaining":0,"reset_seconds":1.5},null,{"name":"tokens","remaining":12}]}`,
		want: ServerEvent{Type: EvRateLimitsUpdated, WireType: EvRateLimitsUpdated, RateLimits: []RateLimit{
			{Name: "requests", Remaining: 0, ResetSeconds: 1.5}, {}, {Name: "tokens", Remaining: 12}}},
	},
	{
		name: "rate_limits not a list",
		wire: `{"type":"rate_limits.updated","rate_limits":{"name":"requests"}}`,
		want: ServerEvent{Type: EvRateLimitsUpdated, WireType: EvRateLimitsUpdated},
	},
	// Tolerance: nulls, odd types, unknown events.
	{
		name: "null item and response",
		wire: `{"type":"conversation.item.done","item":null,"response":null,"part":null,"error":null,"session":null}`,
		want: ServerEvent{Type: EvItemDone, WireType: EvItemDone},
	},
	{
		name: "field of the wrong JSON type is left zero",
		wire: `{"type":"response.done","output_index":"zero","response":{"id":"resp_7","status":"completed","metadata":{"n":1,"s":"x"}}}`,
		want: ServerEvent{Type: EvResponseDone, WireType: EvResponseDone,
			Response: &ResponseInfo{ID: "resp_7", Status: StatusCompleted, Metadata: map[string]string{"n": "", "s": "x"}}},
	},
	{
		name: "unknown event type is delivered",
		wire: `{"type":"output_audio_buffer.started","event_id":"e","response_id":"resp_1"}`,
		want: ServerEvent{Type: "output_audio_buffer.started", WireType: "output_audio_buffer.started", EventID: "e", ResponseID: "resp_1"},
	},
	{
		name: "leading whitespace",
		wire: " \n\t{\"type\":\"input_audio_buffer.cleared\"}",
		want: ServerEvent{Type: EvInputCleared, WireType: EvInputCleared},
	},
}

func TestDecodeServerEvent(t *testing.T) {
	for _, tt := range decodeCases {
		ds := tt.dialects
		if ds == nil {
			ds = both
		}
		for _, d := range ds {
			t.Run(tt.name+"/"+d.String(), func(t *testing.T) {
				got, err := DecodeServerEvent([]byte(tt.wire), d)
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
			})
		}
	}
}

func TestDecodeServerEventErrors(t *testing.T) {
	tests := []struct {
		name string
		wire string
	}{
		{name: "empty", wire: ``},
		{name: "whitespace", wire: "  \n"},
		{name: "null", wire: `null`},
		{name: "array", wire: `[{"type":"error"}]`},
		{name: "string", wire: `"session.created"`},
		{name: "number", wire: `42`},
		{name: "missing type", wire: `{"event_id":"e","item_id":"x"}`},
		{name: "empty type", wire: `{"type":""}`},
		{name: "null type", wire: `{"type":null}`},
		{name: "numeric type", wire: `{"type":7}`},
		{name: "truncated JSON", wire: `{"type":"response.done","response":{"id":`},
		{name: "trailing garbage", wire: `{"type":"error"} x`},
		{name: "bad base64 audio", wire: `{"type":"response.output_audio.delta","delta":"not base64!"}`},
		{name: "bad base64 audio (preview name)", wire: `{"type":"response.audio.delta","delta":"@@@"}`},
	}
	for _, tt := range tests {
		for _, d := range both {
			t.Run(tt.name+"/"+d.String(), func(t *testing.T) {
				_, err := DecodeServerEvent([]byte(tt.wire), d)
				require.ErrorContains(t, err, "realtime: decode")
			})
		}
	}
}

// FuzzDecodeServerEvent checks that arbitrary server bytes never panic the
// decoder and that what it accepts is normalised.
func FuzzDecodeServerEvent(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c.wire), uint8(DialectGA))
		f.Add([]byte(c.wire), uint8(DialectPreview))
	}
	f.Add([]byte(`{"type":"response.audio.delta","delta":"=="}`), uint8(1))
	f.Add([]byte(`{"type":"response.done","response":{"output":[{"content":[{"type":"text"}],"role":"assistant"}]}}`), uint8(0))
	f.Add([]byte(`{"type":"x","item":{"content":[null,{"type":"audio","audio":"!!"}]}}`), uint8(0))
	f.Add([]byte(`{"type":"rate_limits.updated","rate_limits":[{"name":"tokens","limit":1e400,"remaining":-1,"reset_seconds":"x"}]}`), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, d uint8) {
		ev, err := DecodeServerEvent(data, Dialect(d%2))
		if err != nil {
			return
		}
		if ev.Type == "" || ev.WireType == "" {
			t.Fatalf("accepted event without type: %q", data)
		}
		if _, renamed := previewEventNames[ev.Type]; renamed {
			t.Fatalf("type %q was not normalised", ev.Type)
		}
		if ev.Type == EvOutputAudioDelta && ev.Delta != "" {
			t.Fatalf("audio left in Delta: %q", data)
		}
		for _, it := range append(itemsOf(ev), Item{}) {
			for _, p := range it.Content {
				if p.Type == previewText || p.Type == previewAudio {
					t.Fatalf("beta content type %q not normalised: %q", p.Type, data)
				}
			}
		}
	})
}

func itemsOf(ev ServerEvent) []Item {
	var items []Item
	if ev.Item != nil {
		items = append(items, *ev.Item)
	}
	if ev.Response != nil {
		items = append(items, ev.Response.Output...)
	}
	return items
}
