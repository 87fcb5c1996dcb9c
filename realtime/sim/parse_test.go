package sim

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/stretchr/testify/require"
)

// documentedCodes are the error codes the parser may answer with.
var documentedCodes = []string{codeInvalidEvent, codeInvalidValue, codeInvalidType, codeUnknownParameter,
	codeMissingRequired, codeStringTooLong}

func FuzzParseClientEvent(f *testing.F) {
	for _, seed := range []string{
		`{"type":"session.update","session":{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"server_vad","idle_timeout_ms":6000}},"output":{"voice":{"id":"voice_1"}}}}}`,
		`{"type":"session.update","session":{"modalities":["text","audio"],"temperature":0.8,"turn_detection":null}}`,
		`{"type":"input_audio_buffer.append","audio":"AAAA"}`,
		`{"type":"input_audio_buffer.commit","event_id":"e"}`,
		`{"type":"conversation.item.create","previous_item_id":"root","item":{"type":"message","role":"user","content":[{"type":"input_audio","audio":"AAAA","transcript":"x"}]}}`,
		`{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"c","output":"{}"}}`,
		`{"type":"conversation.item.truncate","item_id":"i","content_index":0,"audio_end_ms":1}`,
		`{"type":"response.create","response":{"conversation":"none","metadata":{"a":"b"},"input":[{"type":"item_reference","id":"x"}]}}`,
		`{"type":"response.cancel","response_id":"r"}`,
		`{"type":1}`, `{}`, `[]`, `null`, `{"type":"session.update","session":[]}`, `{"type":"x","event_id":7}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, preview bool) {
		d := realtime.DialectGA
		if preview {
			d = realtime.DialectPreview
		}
		cur := defaultSessionConfig(d, "gpt-realtime", "fuzz")
		ev, _, err := parseClientEvent(d, cur, data)
		if (ev == nil) == (err == nil) {
			t.Fatalf("exactly one of event and error must be set: %v %v", ev, err)
		}
		if err != nil {
			if err.Type != errTypeInvalidRequest || err.Message == "" || !slices.Contains(documentedCodes, err.Code) {
				t.Fatalf("undocumented error for %q: %+v", data, err)
			}
			return
		}
		known := gaClientEvents
		if preview {
			known = previewClientEvents
		}
		if !slices.Contains(known, ev.Type) {
			t.Fatalf("accepted unknown type %q", ev.Type)
		}
	})
}

func TestParseAcceptsDocumentedShapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dialect realtime.Dialect
		raw     string
	}{
		{"GA minimal telephony update (§7)", realtime.DialectGA, `{"type":"session.update","session":{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":500,"create_response":true,"interrupt_response":true,"idle_timeout_ms":6000}},"output":{"format":{"type":"audio/pcmu"},"voice":"marin","speed":1.0}},"instructions":"x","tools":[{"type":"function","name":"transfer_call","description":"d","parameters":{"type":"object","properties":{},"required":[]}}],"tool_choice":"auto","max_output_tokens":"inf","truncation":{"type":"retention_ratio","retention_ratio":0.8},"include":["item.input_audio_transcription.logprobs"],"tracing":null,"prompt":null}}`},
		{"GA semantic VAD", realtime.DialectGA, `{"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":{"type":"semantic_vad","eagerness":"low"},"noise_reduction":{"type":"far_field"}}}}}`},
		{"preview full update", realtime.DialectPreview, `{"type":"session.update","session":{"modalities":["text","audio"],"instructions":"x","voice":"alloy","input_audio_format":"g711_ulaw","output_audio_format":"g711_ulaw","input_audio_transcription":{"model":"whisper-1","language":"en","prompt":""},"input_audio_noise_reduction":{"type":"near_field"},"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":200,"create_response":true,"interrupt_response":true},"tools":[],"tool_choice":"auto","temperature":0.8,"max_response_output_tokens":"inf","speed":1.0}}`},
		{"GA response.create", realtime.DialectGA, `{"type":"response.create","response":{"instructions":"Greet","output_modalities":["audio"],"audio":{"output":{"format":{"type":"audio/pcmu"},"voice":"marin"}},"tool_choice":"auto","max_output_tokens":1024,"conversation":"auto","metadata":{"purpose":"greeting"}}}`},
		{"preview response.create", realtime.DialectPreview, `{"type":"response.create","response":{"modalities":["text"],"voice":"alloy","output_audio_format":"pcm16","temperature":0.9,"max_response_output_tokens":200}}`},
		{"bare response.create", realtime.DialectGA, `{"type":"response.create"}`},
		{"GA image", realtime.DialectGA, `{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"low"}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, _, err := parseClientEvent(tc.dialect, defaultSessionConfig(tc.dialect, "gpt-realtime", "t"), []byte(tc.raw))
			require.Nil(t, err)
			require.NotNil(t, ev)
		})
	}
}

func TestQuoteList(t *testing.T) {
	require.Equal(t, "'a'", quoteList([]string{"a"}))
	require.Equal(t, "'a' and 'b'", quoteList([]string{"a", "b"}))
	require.Equal(t, "'a', 'b', and 'c'", quoteList([]string{"a", "b", "c"}))
}

// TestSessionRecordEvents checks what the record keeps of client events:
// raw JSON in order, appends folded into counts and bytes.
func TestSessionRecordEvents(t *testing.T) {
	s, url := startSim(t, fastConfig("east"))
	c, created := dialReady(t, url, gaPath)
	c.update(noVADSession())
	c.appendAudio("pcmu", silence(8000, 100)) // 5 frames of 20 ms
	c.sendRaw(`{"type":"bogus","event_id":"b1"}`)
	c.expectError("invalid_value")
	c.appendAudio("pcmu", silence(8000, 40))
	c.probe()
	rec := sessionByID(t, s, sessID(created))
	require.Equal(t, []string{"session.update", "input_audio_buffer.append", "bogus", "input_audio_buffer.append", "input_audio_buffer.clear"}, rec.EventTypes())
	require.Equal(t, ClientEventRecord{Type: "input_audio_buffer.append", Appends: 5, AudioBytes: 800}, rec.Events[1])
	require.True(t, rec.Events[2].Rejected)
	require.Equal(t, "b1", rec.Events[2].EventID)
	require.JSONEq(t, `{"type":"bogus","event_id":"b1"}`, string(rec.Events[2].Raw))
	require.Equal(t, 2, rec.Events[3].Appends)
	require.Len(t, rec.SessionUpdates, 1)
	require.JSONEq(t, `{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcmu"},"turn_detection":null},"output":{"format":{"type":"audio/pcmu"}}}}`, string(rec.SessionUpdates[0]))
	require.Equal(t, 140, rec.AppendedAudioMs)
	require.Equal(t, realtime.DialectGA, rec.Dialect)
	require.Equal(t, "gpt-realtime", rec.Model)
	require.Equal(t, "east", rec.Region)
}

// TestBareAppendMatchesGeneralParse: the append fast path gives what the
// general parser gives, and anything not in its exact shape goes the
// general way.
func TestBareAppendMatchesGeneralParse(t *testing.T) {
	for _, raw := range []string{
		`{"type":"input_audio_buffer.append","audio":"AAECAw=="}`,
		`{"type":"input_audio_buffer.append","audio":""}`,
		`{"type":"input_audio_buffer.append","audio":"not base64!"}`,
		`{"type":"input_audio_buffer.append","audio":"AAE"}`,
		`{"type":"input_audio_buffer.append","audio":"AA\u0041="}`,
		`{"type":"input_audio_buffer.append","audio":"AAECAw==","event_id":"e1"}`,
		`{"type":"input_audio_buffer.append","audio":"AAECAw=="} `,
		`{"type":"input_audio_buffer.append","audio":"AAECAw=="}}`,
		`{"type":"input_audio_buffer.append","audio":"AAECAw==`,
	} {
		for _, d := range []realtime.Dialect{realtime.DialectGA, realtime.DialectPreview} {
			cur := defaultSessionConfig(d, "gpt-realtime", "t")
			got, gotID, gotErr := parseClientEvent(d, cur, []byte(raw))
			var want *clientEvent
			var wantID string
			var wantErr *apiError
			if !json.Valid([]byte(raw)) {
				wantErr = invalidReq(codeInvalidEvent, "", "Invalid event: the message is not valid JSON.")
			} else if o, err := parseObj("", []byte(raw)); err != nil {
				wantErr = err
			} else {
				want = &clientEvent{}
				wantID, _, _ = o.str("event_id")
				want.EventID = wantID
				want.Type, _, _ = o.str("type")
				if wantErr = parseEventBody(d, cur, o, want); wantErr != nil {
					want = nil
				}
			}
			require.Equal(t, want, got, raw)
			require.Equal(t, wantID, gotID, raw)
			require.Equal(t, wantErr, gotErr, raw)
		}
	}
	_, ok := bareAppendAudio([]byte(`{"type":"input_audio_buffer.append","audio":"AAECAw=="}`))
	require.True(t, ok)
	_, ok = bareAppendAudio([]byte(`{"type":"input_audio_buffer.append","audio":"AA\u0041="}`))
	require.False(t, ok)
}
