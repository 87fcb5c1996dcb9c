package realtime

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fullConfig uses every SessionConfig field, including the preview-only
// Temperature, which must not reach GA.
func fullConfig() SessionConfig {
	return SessionConfig{
		Model:        "gpt-realtime",
		Instructions: "You are <Ava> & you \"help\".\nBe brief.",
		Voice:        "marin",
		Speed:        1.1,
		InputFormat:  FormatPCMU,
		OutputFormat: FormatPCMU,
		TurnDetection: &TurnDetection{Type: "server_vad", Threshold: 0.5, PrefixPaddingMs: 300,
			SilenceDurationMs: 500, CreateResponse: true, InterruptResponse: true, IdleTimeoutMs: 6000},
		Transcription:  &Transcription{Model: "gpt-4o-transcribe", Language: "en"},
		NoiseReduction: "near_field",
		Tools: []Tool{{Name: "end_call", Description: "Hang up",
			Parameters: json.RawMessage(`{"type": "object", "properties": {}}`)}},
		ToolChoice:      "auto",
		MaxOutputTokens: 0,
		Temperature:     0.8,
	}
}

func TestEncodeSessionUpdateGolden(t *testing.T) {
	minimal := SessionConfig{Instructions: "Hi", InputFormat: FormatPCM24, OutputFormat: FormatPCM24}
	semantic := SessionConfig{
		Instructions: "x", Voice: "cedar", InputFormat: FormatPCMA, OutputFormat: FormatPCMA,
		// Threshold etc. belong to server_vad only and must be dropped.
		TurnDetection:   &TurnDetection{Type: "semantic_vad", Eagerness: "low", Threshold: 0.9, SilenceDurationMs: 700, IdleTimeoutMs: 6000, CreateResponse: true},
		ToolChoice:      "transfer_call",
		MaxOutputTokens: 1024,
	}
	tests := []struct {
		name string
		sc   SessionConfig
		d    Dialect
		want string
	}{
		{
			name: "GA full",
			sc:   fullConfig(),
			d:    DialectGA,
			want: `{"type":"session.update","event_id":"evt_1","session":{"type":"realtime",` +
				`"instructions":"You are <Ava> & you \"help\".\nBe brief.","output_modalities":["audio"],` +
				`"audio":{"input":{"format":{"type":"audio/pcmu"},"transcription":{"model":"gpt-4o-transcribe","language":"en"},` +
				`"noise_reduction":{"type":"near_field"},"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,` +
				`"silence_duration_ms":500,"idle_timeout_ms":6000,"create_response":true,"interrupt_response":true}},` +
				`"output":{"format":{"type":"audio/pcmu"},"voice":"marin","speed":1.1}},` +
				`"tools":[{"type":"function","name":"end_call","description":"Hang up","parameters":{"type":"object","properties":{}}}],` +
				`"tool_choice":"auto","max_output_tokens":"inf"}}`,
		},
		{
			name: "preview full",
			sc:   fullConfig(),
			d:    DialectPreview,
			want: `{"type":"session.update","event_id":"evt_1","session":{"modalities":["text","audio"],` +
				`"instructions":"You are <Ava> & you \"help\".\nBe brief.","voice":"coral",` +
				`"input_audio_format":"g711_ulaw","output_audio_format":"g711_ulaw",` +
				`"input_audio_transcription":{"model":"gpt-4o-transcribe","language":"en"},` +
				`"input_audio_noise_reduction":{"type":"near_field"},` +
				`"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":500,"create_response":true,"interrupt_response":true},` +
				`"tools":[{"type":"function","name":"end_call","description":"Hang up","parameters":{"type":"object","properties":{}}}],` +
				`"tool_choice":"auto","temperature":0.8,"max_response_output_tokens":"inf","speed":1.1}}`,
		},
		{
			name: "GA minimal: VAD, transcription, noise reduction off; pcm 24 kHz",
			sc:   minimal,
			d:    DialectGA,
			want: `{"type":"session.update","event_id":"evt_1","session":{"type":"realtime","instructions":"Hi","output_modalities":["audio"],` +
				`"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"transcription":null,"noise_reduction":null,"turn_detection":null},` +
				`"output":{"format":{"type":"audio/pcm","rate":24000}}},"tools":[],"max_output_tokens":"inf"}}`,
		},
		{
			name: "preview minimal",
			sc:   minimal,
			d:    DialectPreview,
			want: `{"type":"session.update","event_id":"evt_1","session":{"modalities":["text","audio"],"instructions":"Hi",` +
				`"input_audio_format":"pcm16","output_audio_format":"pcm16","input_audio_transcription":null,` +
				`"input_audio_noise_reduction":null,"turn_detection":null,"tools":[],"max_response_output_tokens":"inf"}}`,
		},
		{
			name: "GA semantic VAD, forced function, token cap, A-law",
			sc:   semantic,
			d:    DialectGA,
			want: `{"type":"session.update","event_id":"evt_1","session":{"type":"realtime","instructions":"x","output_modalities":["audio"],` +
				`"audio":{"input":{"format":{"type":"audio/pcma"},"transcription":null,"noise_reduction":null,` +
				`"turn_detection":{"type":"semantic_vad","eagerness":"low","create_response":true,"interrupt_response":false}},` +
				`"output":{"format":{"type":"audio/pcma"},"voice":"cedar"}},"tools":[],` +
				`"tool_choice":{"type":"function","name":"transfer_call"},"max_output_tokens":1024}}`,
		},
		{
			name: "preview semantic VAD",
			sc:   semantic,
			d:    DialectPreview,
			want: `{"type":"session.update","event_id":"evt_1","session":{"modalities":["text","audio"],"instructions":"x","voice":"ash",` +
				`"input_audio_format":"g711_alaw","output_audio_format":"g711_alaw","input_audio_transcription":null,` +
				`"input_audio_noise_reduction":null,"turn_detection":{"type":"semantic_vad","eagerness":"low","create_response":true,"interrupt_response":false},` +
				`"tools":[],"tool_choice":{"type":"function","name":"transfer_call"},"max_response_output_tokens":1024}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeSessionUpdate(tt.sc, tt.d, "evt_1")
			require.NoError(t, err)
			require.True(t, json.Valid(got), string(got))
			require.Equal(t, tt.want, string(got))
		})
	}
}

// TestEncodeSessionUpdateDialectFields checks that no field of one dialect
// leaks into the other (§2.1: GA rejects "Unknown parameter:
// 'session.input_audio_format'").
func TestEncodeSessionUpdateDialectFields(t *testing.T) {
	gaOnly := []string{"type", "output_modalities", "audio", "max_output_tokens", "model"}
	betaOnly := []string{"modalities", "voice", "input_audio_format", "output_audio_format", "input_audio_transcription",
		"input_audio_noise_reduction", "turn_detection", "temperature", "max_response_output_tokens", "speed"}

	session := func(t *testing.T, d Dialect) map[string]json.RawMessage {
		b, err := EncodeSessionUpdate(fullConfig(), d, "")
		require.NoError(t, err)
		var ev struct {
			Type    string                     `json:"type"`
			EventID *string                    `json:"event_id"`
			Session map[string]json.RawMessage `json:"session"`
		}
		require.NoError(t, json.Unmarshal(b, &ev))
		require.Equal(t, "session.update", ev.Type)
		require.Nil(t, ev.EventID, "empty eventID must be omitted")
		return ev.Session
	}
	ga := session(t, DialectGA)
	for _, k := range betaOnly {
		require.NotContains(t, ga, k)
	}
	require.Equal(t, `"realtime"`, string(ga["type"]))
	var audio struct {
		Input  map[string]json.RawMessage `json:"input"`
		Output map[string]json.RawMessage `json:"output"`
	}
	require.NoError(t, json.Unmarshal(ga["audio"], &audio))
	require.Contains(t, audio.Input, "turn_detection")
	require.Contains(t, string(audio.Input["turn_detection"]), "idle_timeout_ms")
	require.Contains(t, audio.Output, "voice")

	pv := session(t, DialectPreview)
	for _, k := range gaOnly {
		require.NotContains(t, pv, k)
	}
	require.NotContains(t, string(pv["turn_detection"]), "idle_timeout_ms", "idle_timeout_ms is GA-only")
}

func TestEncodeSessionUpdateDeterministic(t *testing.T) {
	sc := fullConfig()
	sc.Instructions = strings.Repeat("Speak warmly; never read URLs <aloud> & spell names. ", 400)
	for _, d := range []Dialect{DialectGA, DialectPreview} {
		first, err := EncodeSessionUpdate(sc, d, "evt_1")
		require.NoError(t, err)
		for range 20 {
			again, err := EncodeSessionUpdate(sc, d, "evt_1")
			require.NoError(t, err)
			require.Equal(t, first, again)
		}
		other, err := EncodeSessionUpdate(sc, d, "evt_99")
		require.NoError(t, err)
		require.Equal(t, string(first), strings.Replace(string(other), `"evt_99"`, `"evt_1"`, 1),
			"only event_id may differ")
		// Instructions survive byte-identical through JSON.
		var ev struct {
			Session struct {
				Instructions string `json:"instructions"`
			} `json:"session"`
		}
		require.NoError(t, json.Unmarshal(first, &ev))
		require.Equal(t, sc.Instructions, ev.Session.Instructions)
	}
}

func TestEncodeSessionUpdateErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*SessionConfig)
	}{
		{name: "unknown input format", mod: func(sc *SessionConfig) { sc.InputFormat = "opus" }},
		{name: "unknown output format", mod: func(sc *SessionConfig) { sc.OutputFormat = "g722" }},
		{name: "unknown VAD type", mod: func(sc *SessionConfig) { sc.TurnDetection = &TurnDetection{Type: "client_vad"} }},
		{name: "tool parameters not JSON", mod: func(sc *SessionConfig) { sc.Tools[0].Parameters = json.RawMessage(`{"type":`) }},
		{name: "tool without name", mod: func(sc *SessionConfig) { sc.Tools[0].Name = "" }},
		{name: "negative max tokens", mod: func(sc *SessionConfig) { sc.MaxOutputTokens = -1 }},
	}
	for _, tt := range tests {
		for _, d := range []Dialect{DialectGA, DialectPreview} {
			t.Run(tt.name+"/"+d.String(), func(t *testing.T) {
				sc := fullConfig()
				tt.mod(&sc)
				_, err := EncodeSessionUpdate(sc, d, "evt_1")
				require.ErrorContains(t, err, "realtime: encode session.update: ")
			})
		}
	}
	_, err := EncodeSessionUpdate(fullConfig(), DialectGA, strings.Repeat("e", 513))
	require.Error(t, err, "event_id over 512 characters")
}

func TestEncodeItemCreateGolden(t *testing.T) {
	tests := []struct {
		name string
		item Item
		prev string
		d    Dialect
		want string
	}{
		{
			name: "GA user audio and text, append",
			item: Item{Type: "message", Role: "user", Content: []ContentPart{
				{Type: "input_audio", Audio: []byte{0xff, 0x7f, 0x00}, Transcript: "hey"},
				{Type: "input_text", Text: "hello"}}},
			d: DialectGA,
			want: `{"type":"conversation.item.create","event_id":"evt_2","item":{"type":"message","role":"user","content":[` +
				`{"type":"input_audio","audio":"/38A","transcript":"hey"},{"type":"input_text","text":"hello"}]}}`,
		},
		{
			name: "preview user content types are unchanged",
			item: Item{Type: "message", Role: "user", Content: []ContentPart{{Type: "input_text", Text: "hello"}}},
			d:    DialectPreview,
			want: `{"type":"conversation.item.create","event_id":"evt_2","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"hello"}]}}`,
		},
		{
			name: "GA assistant text at root",
			item: Item{ID: "item_1", Type: "message", Role: "assistant", Status: "completed", Object: "realtime.item",
				Content: []ContentPart{{Type: "output_text", Text: "Summary: caller wants a refund."}}},
			prev: "root",
			d:    DialectGA,
			want: `{"type":"conversation.item.create","event_id":"evt_2","previous_item_id":"root","item":{"id":"item_1","type":"message","role":"assistant",` +
				`"content":[{"type":"output_text","text":"Summary: caller wants a refund."}]}}`,
		},
		{
			name: "preview assistant text maps output_text to text",
			item: Item{Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_text", Text: "ok"}}},
			prev: "item_9",
			d:    DialectPreview,
			want: `{"type":"conversation.item.create","event_id":"evt_2","previous_item_id":"item_9","item":{"type":"message","role":"assistant","content":[{"type":"text","text":"ok"}]}}`,
		},
		{
			name: "preview assistant audio maps output_audio to audio",
			item: Item{Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_audio", Audio: []byte("ab"), Transcript: "t"}}},
			d:    DialectPreview,
			want: `{"type":"conversation.item.create","event_id":"evt_2","item":{"type":"message","role":"assistant","content":[{"type":"audio","audio":"YWI=","transcript":"t"}]}}`,
		},
		{
			name: "GA repairs beta-named assistant text (agents-js PR #977)",
			item: Item{Type: "message", Role: "assistant", Content: []ContentPart{{Type: "text", Text: "ok"}}},
			d:    DialectGA,
			want: `{"type":"conversation.item.create","event_id":"evt_2","item":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"ok"}]}}`,
		},
		{
			name: "GA system message keeps empty text",
			item: Item{Type: "message", Role: "system", Content: []ContentPart{{Type: "input_text"}}},
			d:    DialectGA,
			want: `{"type":"conversation.item.create","event_id":"evt_2","item":{"type":"message","role":"system","content":[{"type":"input_text","text":""}]}}`,
		},
		{
			name: "function call",
			item: Item{Type: "function_call", CallID: "call_1", Name: "get_x", Arguments: `{"a":1}`},
			d:    DialectGA,
			want: `{"type":"conversation.item.create","event_id":"evt_2","item":{"type":"function_call","call_id":"call_1","name":"get_x","arguments":"{\"a\":1}"}}`,
		},
		{
			name: "function call output",
			item: Item{Type: "function_call_output", CallID: "call_1", Output: `{"ok":true}`},
			d:    DialectPreview,
			want: `{"type":"conversation.item.create","event_id":"evt_2","item":{"type":"function_call_output","call_id":"call_1","output":"{\"ok\":true}"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeItemCreate(tt.item, tt.prev, tt.d, "evt_2")
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}

func TestEncodeItemCreateErrors(t *testing.T) {
	tests := []struct {
		name string
		item Item
	}{
		{name: "no type", item: Item{Role: "user"}},
		{name: "unknown type", item: Item{Type: "mcp_call"}},
		{name: "message without role", item: Item{Type: "message", Content: []ContentPart{{Type: "input_text"}}}},
		{name: "message without content", item: Item{Type: "message", Role: "user"}},
		{name: "unknown content type", item: Item{Type: "message", Role: "user", Content: []ContentPart{{Type: "input_image"}}}},
		{name: "function call without call id", item: Item{Type: "function_call", Name: "x"}},
		{name: "function output without call id", item: Item{Type: "function_call_output", Output: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EncodeItemCreate(tt.item, "", DialectGA, "evt_1")
			require.ErrorContains(t, err, "realtime: encode conversation.item.create: ")
		})
	}
}

func TestEncodeSmallEventsGolden(t *testing.T) {
	enc := func(b []byte, err error) string {
		require.NoError(t, err)
		return string(b)
	}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "delete", got: enc(EncodeItemDelete("item_003", "evt_3")),
			want: `{"type":"conversation.item.delete","event_id":"evt_3","item_id":"item_003"}`},
		{name: "truncate keeps zero content_index", got: enc(EncodeItemTruncate("item_42", 0, 1500, "evt_4")),
			want: `{"type":"conversation.item.truncate","event_id":"evt_4","item_id":"item_42","content_index":0,"audio_end_ms":1500}`},
		{name: "truncate at zero ms", got: enc(EncodeItemTruncate("item_42", 0, 0, "evt_4")),
			want: `{"type":"conversation.item.truncate","event_id":"evt_4","item_id":"item_42","content_index":0,"audio_end_ms":0}`},
		{name: "response.create bare", got: enc(EncodeResponseCreate(ResponseParams{}, "evt_5")),
			want: `{"type":"response.create","event_id":"evt_5"}`},
		{name: "response.create bare without event id", got: enc(EncodeResponseCreate(ResponseParams{}, "")),
			want: `{"type":"response.create"}`},
		{name: "response.create instructions", got: enc(EncodeResponseCreate(ResponseParams{Instructions: "Greet the caller."}, "evt_6")),
			want: `{"type":"response.create","event_id":"evt_6","response":{"instructions":"Greet the caller."}}`},
		{name: "response.create metadata sorted", got: enc(EncodeResponseCreate(ResponseParams{Metadata: map[string]string{"z": "1", "purpose": "greeting"}}, "evt_7")),
			want: `{"type":"response.create","event_id":"evt_7","response":{"metadata":{"purpose":"greeting","z":"1"}}}`},
		{name: "response.cancel any", got: enc(EncodeResponseCancel("", "evt_8")),
			want: `{"type":"response.cancel","event_id":"evt_8"}`},
		{name: "response.cancel by id", got: enc(EncodeResponseCancel("resp_1", "evt_9")),
			want: `{"type":"response.cancel","event_id":"evt_9","response_id":"resp_1"}`},
		{name: "commit", got: enc(EncodeInputAudioCommit("evt_10")),
			want: `{"type":"input_audio_buffer.commit","event_id":"evt_10"}`},
		{name: "clear", got: enc(EncodeInputAudioClear("evt_11")),
			want: `{"type":"input_audio_buffer.clear","event_id":"evt_11"}`},
		{name: "append", got: string(AppendInputAudioEvent(nil, []byte{0, 1, 2, 0xfe})),
			want: `{"type":"input_audio_buffer.append","audio":"AAEC/g=="}`},
		{name: "append empty", got: string(AppendInputAudioEvent(nil, nil)),
			want: `{"type":"input_audio_buffer.append","audio":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.got)
		})
	}

	_, err := EncodeItemDelete("", "evt_1")
	require.Error(t, err)
	_, err = EncodeItemTruncate("", 0, 10, "evt_1")
	require.Error(t, err)
	_, err = EncodeItemTruncate("item", 0, -1, "evt_1")
	require.Error(t, err)
	meta := map[string]string{}
	for i := range 17 {
		meta[string(rune('a'+i))] = "v"
	}
	_, err = EncodeResponseCreate(ResponseParams{Metadata: meta}, "evt_1")
	require.Error(t, err, "more than 16 metadata pairs")
}

func TestAppendInputAudioEvent(t *testing.T) {
	for _, n := range []int{1, 2, 3, 160, 960, 4800} {
		audio := make([]byte, n)
		for i := range audio {
			audio[i] = byte(i*7 + n)
		}
		dst := make([]byte, 3, 8) // existing content must be kept
		copy(dst, "xyz")
		got := AppendInputAudioEvent(dst, audio)
		require.Equal(t, "xyz", string(got[:3]))
		require.Len(t, got[3:], InputAudioEventLen(n))
		var ev struct {
			Type  string `json:"type"`
			Audio string `json:"audio"`
		}
		require.NoError(t, json.Unmarshal(got[3:], &ev))
		require.Equal(t, "input_audio_buffer.append", ev.Type)
		dec, err := base64.StdEncoding.DecodeString(ev.Audio)
		require.NoError(t, err)
		require.True(t, bytes.Equal(audio, dec))
	}
}

// TestAppendInputAudioEventAllocs proves the per-frame encode allocates
// nothing once its buffer has grown (style §1.7 rule 10).
func TestAppendInputAudioEventAllocs(t *testing.T) {
	for _, n := range []int{160, 960, 4800} {
		frame := make([]byte, n)
		buf := make([]byte, 0, InputAudioEventLen(n))
		allocs := testing.AllocsPerRun(200, func() {
			buf = AppendInputAudioEvent(buf[:0], frame)
		})
		require.Zero(t, allocs, "frame of %d bytes", n)
	}
}

// BenchmarkEncodeAppend measures the per-frame append encode: 20 ms of
// G.711 (160 B), 20 ms of PCM 24 kHz (960 B) and a coalesced 100 ms of PCM
// 24 kHz (4800 B).
func BenchmarkEncodeAppend(b *testing.B) {
	for _, n := range []int{160, 960, 4800} {
		b.Run(strconv.Itoa(n)+"B", func(b *testing.B) {
			frame := make([]byte, n)
			buf := make([]byte, 0, InputAudioEventLen(n))
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				buf = AppendInputAudioEvent(buf[:0], frame)
			}
		})
	}
}
