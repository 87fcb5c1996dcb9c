package realtime

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeltaFastPath(t *testing.T) {
	audio := []byte{0x7f, 0xff, 0x00, 0x10, 0x80}
	b64 := base64.StdEncoding.EncodeToString(audio)
	tests := []struct {
		name string
		wire string
		fast bool // the fast path decodes it (else it declines)
	}{
		{"GA delta", `{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"` + b64 + `"}`, true},
		{"preview delta, spaces", ` { "type" : "response.audio.delta" , "event_id":"e", "response_id":"r","item_id":"i","output_index":2,"content_index":1,"delta":"` + b64 + `" } `, true},
		{"empty delta", `{"type":"response.output_audio.delta","delta":""}`, true},
		{"no delta", `{"type":"response.output_audio.delta","item_id":"i"}`, true},
		{"duplicate key, last wins", `{"type":"response.output_audio.delta","item_id":"a","item_id":"b"}`, true},
		{"negative index", `{"type":"response.output_audio.delta","output_index":-1}`, true},
		{"transcript delta", `{"type":"response.output_audio_transcript.delta","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"Hi, it's Anna."}`, true},
		{"preview transcript delta", `{"type":"response.audio_transcript.delta","delta":"hi"}`, true},
		{"text delta", `{"type":"response.output_text.delta","delta":"hi"}`, true},
		{"preview text delta", `{"type":"response.text.delta","delta":""}`, true},
		{"transcript with an escaped quote", `{"type":"response.output_audio_transcript.delta","delta":"say \"hi\""}`, false},
		{"transcript not ASCII", `{"type":"response.output_audio_transcript.delta","delta":"café"}`, false},
		{"other event", `{"type":"response.output_audio.done","item_id":"i"}`, false},
		{"unknown key", `{"type":"response.output_audio.delta","obfuscation":"x","delta":"` + b64 + `"}`, false},
		{"cased key", `{"Type":"response.output_audio.delta","delta":"` + b64 + `"}`, false},
		{"escaped slash", `{"type":"response.output_audio.delta","delta":"ab\/c"}`, false},
		{"null id", `{"type":"response.output_audio.delta","item_id":null}`, false},
		{"fractional index", `{"type":"response.output_audio.delta","output_index":1.0}`, false},
		{"bad base64", `{"type":"response.output_audio.delta","delta":"not base64!"}`, false},
		{"trailing garbage", `{"type":"response.output_audio.delta"} x`, false},
		{"non-ASCII id", `{"type":"response.output_audio.delta","item_id":"é"}`, false},
		{"truncated", `{"type":"response.output_audio.delta","delta":"` + b64, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fast ServerEvent
			require.Equal(t, tt.fast, decodeDelta(&fast, []byte(tt.wire)))
			if !tt.fast {
				require.True(t, reflect.ValueOf(fast).IsZero(), "a declined event is left untouched")
				return
			}
			var slow ServerEvent
			require.NoError(t, decodeWithJSON(&slow, []byte(tt.wire)))
			require.Equal(t, slow, fast)
		})
	}
}

// The decoded audio is the only allocation left besides the id strings.
func TestAudioDeltaFastPathAllocations(t *testing.T) {
	wire := []byte(`{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"` +
		base64.StdEncoding.EncodeToString(make([]byte, 800)) + `"}`)
	var ev ServerEvent
	allocs := testing.AllocsPerRun(100, func() {
		if !decodeDelta(&ev, wire) {
			t.Fatal("declined")
		}
	})
	// audio + event_id + response_id + item_id
	require.LessOrEqual(t, allocs, 4.0)
}

func BenchmarkDecodeAudioDelta(b *testing.B) {
	benchmarkDecode(b, []byte(`{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"`+
		base64.StdEncoding.EncodeToString(make([]byte, 800))+`"}`)) // 100 ms of G.711
}

func BenchmarkDecodeTranscriptDelta(b *testing.B) {
	benchmarkDecode(b, []byte(`{"type":"response.output_audio_transcript.delta","event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":" help you with"}`))
}

// benchmarkDecode compares the fast path with encoding/json on wire.
func benchmarkDecode(b *testing.B, wire []byte) {
	for _, path := range []struct {
		name string
		fn   func(*ServerEvent, []byte) error
	}{
		{"fast", func(ev *ServerEvent, d []byte) error { return decodeServerEventInto(ev, d, DialectGA) }},
		{"encoding-json", decodeWithJSON},
	} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				var ev ServerEvent
				if err := path.fn(&ev, wire); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzDeltaFastPath: whenever the fast path decodes an event, the
// general decoder accepts it and decodes exactly the same event.
func FuzzDeltaFastPath(f *testing.F) {
	f.Add([]byte(`{"type":"response.output_audio.delta","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"AAEC"}`))
	f.Add([]byte(`{"type":"response.audio.delta","delta":"=="}`))
	f.Add([]byte(`{"type":"response.audio.delta","output_index":-0,"delta":"AA=="}`))
	f.Add([]byte(`{"type":"response.output_audio.delta","content_index":007}`))
	f.Add([]byte(`{"type":"response.output_audio.delta","delta":"AA==AA=="}`))
	f.Add([]byte(strings.Repeat(" ", 3) + `{"type":"response.output_audio.delta"}` + "\n"))
	f.Add([]byte(`{"type":"response.output_audio_transcript.delta","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"Hello, how can I help?"}`))
	f.Add([]byte(`{"type":"response.audio_transcript.delta","delta":""}`))
	f.Add([]byte(`{"type":"response.output_text.delta","delta":"it's"}`))
	f.Add([]byte(`{"type":"response.text.delta","delta":"say \"hi\""}`))
	f.Add([]byte(`{"type":"response.output_audio_transcript.delta","delta":"caf\u00e9"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast ServerEvent
		if !decodeDelta(&fast, data) {
			return
		}
		var slow ServerEvent
		if err := decodeWithJSON(&slow, data); err != nil {
			t.Fatalf("fast path accepted what encoding/json rejects (%v): %q", err, data)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast %+v\nslow %+v\ninput %q", fast, slow, data)
		}
	})
}
