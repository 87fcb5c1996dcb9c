package realtime

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func recItem(id, role string, parts ...ContentPart) *Item {
	return &Item{ID: id, Type: "message", Role: role, Content: parts}
}

// pcmu: 8 bytes per ms, so 8000 bytes = 1 s.
func newTestRecord() *Record {
	return NewRecord(RecordConfig{InputFormat: FormatPCMU, OutputFormat: FormatPCMU, KeepAudioTurns: 2})
}

// turn plays one user turn and one assistant answer into r the way a GA
// session reports them.
func turn(r *Record, userID string, audio []byte, asstID, transcript string, audioBytes int) {
	r.Apply(ServerEvent{Type: EvInputCommitted, ItemID: userID})
	r.Apply(ServerEvent{Type: EvItemAdded, Item: recItem(userID, "user", ContentPart{Type: "input_audio"})})
	r.SetUserAudio(userID, audio)
	r.Apply(ServerEvent{Type: EvOutputItemAdded, Item: recItem(asstID, "assistant")})
	r.Apply(ServerEvent{Type: EvItemAdded, Item: recItem(asstID, "assistant")})
	half := len(transcript) / 2
	r.Apply(ServerEvent{Type: EvOutputAudioTranscriptDelta, ItemID: asstID, Delta: transcript[:half]})
	r.Apply(ServerEvent{Type: EvOutputAudioDelta, ItemID: asstID, Audio: make([]byte, audioBytes/2)})
	r.Apply(ServerEvent{Type: EvOutputAudioTranscriptDelta, ItemID: asstID, Delta: transcript[half:]})
	r.Apply(ServerEvent{Type: EvOutputAudioDelta, ItemID: asstID, Audio: make([]byte, audioBytes-audioBytes/2)})
	r.Apply(ServerEvent{Type: EvOutputAudioTranscriptDone, ItemID: asstID, Transcript: transcript})
}

func TestRecordReplayItems(t *testing.T) {
	audio1 := bytes.Repeat([]byte{1}, 800)
	audio2 := bytes.Repeat([]byte{2}, 1600)
	tests := []struct {
		name  string
		build func(r *Record)
		want  []Item
	}{
		{
			name: "user audio without transcript, assistant fully heard",
			build: func(r *Record) {
				turn(r, "u1", audio1, "a1", "Hello there, how can I help?", 16000)
			},
			want: []Item{
				{ID: "u1", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: audio1}}},
				{ID: "a1", Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_text", Text: "Hello there, how can I help?"}}},
			},
		},
		{
			name: "user transcript wins over audio",
			build: func(r *Record) {
				turn(r, "u1", audio1, "a1", "Sure.", 800)
				r.Apply(ServerEvent{Type: EvInputTranscriptionCompleted, ItemID: "u1", Transcript: "I need a taxi"})
			},
			want: []Item{
				{ID: "u1", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_text", Text: "I need a taxi"}}},
				{ID: "a1", Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_text", Text: "Sure."}}},
			},
		},
		{
			name: "assistant cut to what was heard at a word boundary",
			build: func(r *Record) {
				// 2000 ms produced, 1000 ms heard: half of 24 runes = 12,
				// which falls inside "three" → cut back to "one two".
				turn(r, "u1", audio1, "a1", "one two three four five", 16000)
				r.SetHeard("a1", 1000)
			},
			want: []Item{
				{ID: "u1", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: audio1}}},
				{ID: "a1", Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_text", Text: "one two"}}},
			},
		},
		{
			name: "assistant heard nothing is left out",
			build: func(r *Record) {
				turn(r, "u1", audio1, "a1", "never heard", 8000)
				r.SetHeard("a1", 0)
			},
			want: []Item{
				{ID: "u1", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: audio1}}},
			},
		},
		{
			name: "truncated event sets the heard position",
			build: func(r *Record) {
				turn(r, "u1", audio1, "a1", "alpha beta gamma delta", 8000)
				r.Apply(ServerEvent{Type: EvItemTruncated, ItemID: "a1", AudioEndMs: 500})
			},
			want: []Item{
				{ID: "u1", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: audio1}}},
				{ID: "a1", Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_text", Text: "alpha beta"}}},
			},
		},
		{
			name: "function call pair in order, orphan call left out",
			build: func(r *Record) {
				r.SetUserAudio("u1", audio1)
				r.Apply(ServerEvent{Type: EvOutputItemDone, Item: &Item{ID: "fc1", Type: "function_call", CallID: "call_1", Name: "lookup", Arguments: `{"q":1}`}})
				r.AddFunctionOutput("o1", "call_1", `{"ok":true}`)
				r.Apply(ServerEvent{Type: EvFunctionCallArgumentsDone, ItemID: "fc2", CallID: "call_2", Name: "transfer_call", Arguments: `{}`})
			},
			want: []Item{
				{ID: "u1", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: audio1}}},
				{ID: "fc1", Type: "function_call", CallID: "call_1", Name: "lookup", Arguments: `{"q":1}`},
				{ID: "o1", Type: "function_call_output", CallID: "call_1", Output: `{"ok":true}`},
			},
		},
		{
			name: "system note",
			build: func(r *Record) {
				r.AddSystemNote("n1", "The caller pressed 4.")
			},
			want: []Item{
				{ID: "n1", Type: "message", Role: "system", Content: []ContentPart{{Type: "input_text", Text: "The caller pressed 4."}}},
			},
		},
		{
			name: "audio kept for the last K user turns only",
			build: func(r *Record) {
				r.SetUserAudio("u1", audio1)
				r.SetUserAudio("u2", audio2)
				r.SetUserAudio("u3", audio1)
			},
			want: []Item{
				{ID: "u2", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: audio2}}},
				{ID: "u3", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: audio1}}},
			},
		},
		{
			name: "echo of a replayed item does not overwrite or duplicate",
			build: func(r *Record) {
				turn(r, "u1", audio1, "a1", "one two three four", 16000)
				r.SetHeard("a1", 1000)
				// the new session echoes the replayed items
				r.Apply(ServerEvent{Type: EvItemAdded, Item: recItem("u1", "user", ContentPart{Type: "input_audio"})})
				r.Apply(ServerEvent{Type: EvItemAdded, Item: recItem("a1", "assistant", ContentPart{Type: "output_text", Text: "one two"})})
			},
			want: []Item{
				{ID: "u1", Type: "message", Role: "user", Content: []ContentPart{{Type: "input_audio", Audio: audio1}}},
				{ID: "a1", Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_text", Text: "one two"}}},
			},
		},
		{
			name: "previous_item_id places a late item",
			build: func(r *Record) {
				r.AddSystemNote("n1", "first")
				r.AddSystemNote("n3", "third")
				r.Apply(ServerEvent{Type: EvItemAdded, PreviousItemID: "n1", Item: recItem("n2", "system", ContentPart{Type: "input_text", Text: "second"})})
			},
			want: []Item{
				{ID: "n1", Type: "message", Role: "system", Content: []ContentPart{{Type: "input_text", Text: "first"}}},
				{ID: "n2", Type: "message", Role: "system", Content: []ContentPart{{Type: "input_text", Text: "second"}}},
				{ID: "n3", Type: "message", Role: "system", Content: []ContentPart{{Type: "input_text", Text: "third"}}},
			},
		},
		{
			name: "deleted item is gone",
			build: func(r *Record) {
				r.AddSystemNote("n1", "keep")
				r.AddSystemNote("n2", "drop")
				r.Apply(ServerEvent{Type: EvItemDeleted, ItemID: "n2"})
			},
			want: []Item{
				{ID: "n1", Type: "message", Role: "system", Content: []ContentPart{{Type: "input_text", Text: "keep"}}},
			},
		},
		{
			// §9: a text answer in an audio call is a failed answer; the
			// caller heard none of it, so the model must not be told it said it.
			name: "text-only assistant answer was never heard: left out",
			build: func(r *Record) {
				r.Apply(ServerEvent{Type: EvOutputItemAdded, Item: recItem("a1", "assistant")})
				r.Apply(ServerEvent{Type: EvOutputTextDelta, ItemID: "a1", Delta: "partial"})
				r.Apply(ServerEvent{Type: EvOutputTextDone, ItemID: "a1", Text: "full text"})
			},
			want: []Item{},
		},
		{
			name: "text answer seen only in the output item is left out too",
			build: func(r *Record) {
				r.Apply(ServerEvent{Type: EvOutputItemDone, Item: recItem("a1", "assistant", ContentPart{Type: "output_text", Text: "full text"})})
			},
			want: []Item{},
		},
		{
			name: "created assistant text (a summary the bridge added) is kept",
			build: func(r *Record) {
				r.Apply(ServerEvent{Type: EvItemAdded, Item: recItem("s1", "assistant", ContentPart{Type: "output_text", Text: "Summary so far."})})
			},
			want: []Item{
				{ID: "s1", Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_text", Text: "Summary so far."}}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRecord()
			tc.build(r)
			require.Equal(t, tc.want, r.ReplayItems(DialectGA))
		})
	}
}

func TestRecordCutAtWord(t *testing.T) {
	tests := []struct {
		text string
		frac float64
		want string
	}{
		{"one two three", 0, ""},
		{"one two three", 1, "one two three"},
		{"one two three", 1.5, "one two three"},
		{"one two three", 3.0 / 13, "one"}, // n=3 lands on the space after "one"
		{"one two three", 4.0 / 13, "one"}, // n=4 is the start of "two": not heard
		{"one two three", 6.0 / 13, "one"}, // inside "two"
		{"one two three", 7.0 / 13, "one two"},
		{"word", 0.5, ""}, // a single partly heard word
		{"héllo wörld ünïcode", 0.6, "héllo wörld"},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			require.Equal(t, tc.want, CutAtWord(tc.text, tc.frac))
		})
	}
}

func TestRecordHeardClampedToProduced(t *testing.T) {
	r := newTestRecord()
	turn(r, "u1", nil, "a1", "a b c d", 800) // 100 ms produced
	r.SetHeard("a1", 5000)
	e, ok := r.Entry("a1")
	require.True(t, ok)
	require.Equal(t, 100, e.HeardMs)
	require.Equal(t, 100, r.ProducedMs("a1"))
	require.Equal(t, "a b c d", r.HeardText(e))
}

func TestRecordFunctionCallLookup(t *testing.T) {
	r := newTestRecord()
	r.Apply(ServerEvent{Type: EvFunctionCallArgumentsDone, ItemID: "fc1", CallID: "call_9", Name: "transfer_call", Arguments: `{"target":"sip:a@b"}`})
	// output_item.done for the same item fills nothing new and adds no entry
	r.Apply(ServerEvent{Type: EvOutputItemDone, Item: &Item{ID: "fc1", Type: "function_call", CallID: "call_9", Name: "transfer_call", Arguments: `{"target":"sip:a@b"}`}})
	require.Equal(t, 1, r.Len())
	it, ok := r.FunctionCall("call_9")
	require.True(t, ok)
	require.Equal(t, Item{ID: "fc1", Type: "function_call", CallID: "call_9", Name: "transfer_call", Arguments: `{"target":"sip:a@b"}`}, it)
	require.False(t, r.HasOutput("call_9"))
	require.Empty(t, r.ReplayItems(DialectGA), "orphan call is not replayed")
	r.AddFunctionOutput("o9", "call_9", `{"ok":false}`)
	require.True(t, r.HasOutput("call_9"))
	require.Len(t, r.ReplayItems(DialectGA), 2)
}

func TestRecordReplayBudget(t *testing.T) {
	r := NewRecord(RecordConfig{InputFormat: FormatPCMU, OutputFormat: FormatPCMU, ReplayTokenBudget: 25})
	r.Apply(ServerEvent{Type: EvOutputItemDone, Item: &Item{ID: "fc1", Type: "function_call", CallID: "c1", Name: "lookup", Arguments: "{}"}})
	r.AddFunctionOutput("o1", "c1", "{}")
	long := bytes.Repeat([]byte("x"), 80) // ~21 tokens
	r.AddSystemNote("n1", string(long))
	r.AddSystemNote("n2", "recent note")
	items := r.ReplayItems(DialectGA)
	// The call goes first, its output with it; the rest fits.
	require.Len(t, items, 2)
	require.Equal(t, "n1", items[0].ID)
	require.Equal(t, "n2", items[1].ID)
}

func TestRecordReplayBudgetByDialect(t *testing.T) {
	r := newTestRecord()
	big := string(bytes.Repeat([]byte("y"), 30000)) // ~7500 tokens each
	r.AddSystemNote("n1", big)
	r.AddSystemNote("n2", big)
	require.Len(t, r.ReplayItems(DialectGA), 1, "GA's 28k context cannot take both")
	require.Len(t, r.ReplayItems(DialectPreview), 2)
}

func TestRecordTruncateFreezesTheCut(t *testing.T) {
	r := newTestRecord()
	r.Apply(ServerEvent{Type: EvOutputItemAdded, Item: recItem("a1", "assistant")})
	r.Apply(ServerEvent{Type: EvOutputAudioTranscriptDelta, ItemID: "a1", Delta: "one two three four"})
	r.Apply(ServerEvent{Type: EvOutputAudioDelta, ItemID: "a1", Audio: make([]byte, 8000)}) // 1000 ms
	r.Truncate("a1", 500)
	// The tail of the interrupted answer still arrives; the cut must not move.
	r.Apply(ServerEvent{Type: EvOutputAudioDelta, ItemID: "a1", Audio: make([]byte, 8000)})
	r.Apply(ServerEvent{Type: EvOutputAudioTranscriptDelta, ItemID: "a1", Delta: " five six seven eight"})
	r.Apply(ServerEvent{Type: EvOutputAudioTranscriptDone, ItemID: "a1", Transcript: "one two three four five six seven eight"})
	r.SetHeard("a1", 2000) // a late playout report
	e, ok := r.Entry("a1")
	require.True(t, ok)
	require.True(t, e.Truncated)
	require.Equal(t, 500, e.HeardMs)
	require.Equal(t, 8000, e.ProducedBytes)
	require.Equal(t, "one two", r.HeardText(e))
	// Before truncation, playout reports move the heard position.
	r2 := newTestRecord()
	r2.Apply(ServerEvent{Type: EvOutputAudioDelta, ItemID: "a2", Audio: make([]byte, 8000)})
	r2.SetHeard("a2", 200)
	r2.SetHeard("a2", 700)
	e2, _ := r2.Entry("a2")
	require.Equal(t, 700, e2.HeardMs)
	require.False(t, e2.Truncated)
}

// TestRecordKeepsOnlyTheAudioAReplayUses: an earlier turn's audio goes once
// its transcript is known (the replay renders it as text); the last turn
// keeps its audio with a transcript (a replay sends it as audio); an
// untranscribed earlier turn keeps its audio within KeepAudioTurns.
func TestRecordKeepsOnlyTheAudioAReplayUses(t *testing.T) {
	r := NewRecord(RecordConfig{InputFormat: FormatPCMU, OutputFormat: FormatPCMU, KeepAudioTurns: 3})
	audio := func(id string) int { e, _ := r.Entry(id); return len(e.Audio) }
	transcribe := func(id, text string) {
		r.Apply(ServerEvent{Type: EvInputTranscriptionCompleted, ItemID: id, Transcript: text})
	}
	a := bytes.Repeat([]byte{1}, 8000)

	r.SetUserAudio("u1", a)
	transcribe("u1", "hello")
	require.Equal(t, 8000, audio("u1"), "the last turn keeps its audio with a transcript")

	r.SetUserAudio("u2", a)
	require.Zero(t, audio("u1"), "an earlier transcribed turn drops its audio")
	require.Equal(t, 8000, audio("u2"))

	r.SetUserAudio("u3", a)
	require.Equal(t, 8000, audio("u2"), "untranscribed yet: kept")
	transcribe("u2", "  ")
	require.Equal(t, 8000, audio("u2"), "a blank transcript is no transcript")
	transcribe("u2", "my number is four")
	require.Zero(t, audio("u2"), "its transcript arrived after the next turn")
	require.Equal(t, 8000, audio("u3"))

	r.Apply(ServerEvent{Type: EvItemDone, Item: recItem("u2", "user", ContentPart{Type: "input_audio", Audio: a})})
	require.Zero(t, audio("u2"), "an echo of a transcribed earlier turn does not bring its audio back")

	r.SetUserAudio("u4", a)
	r.SetUserAudio("u5", a)
	require.Equal(t, 8000, audio("u3"), "untranscribed, among the last 3")
	r.SetUserAudio("u6", a)
	require.Zero(t, audio("u3"), "older than the last 3")
	require.Equal(t, 3*8000, r.AudioBytes())

	items := r.ReplayItems(DialectGA)
	require.Equal(t, "input_text", items[0].Content[0].Type)
	require.Equal(t, "hello", items[0].Content[0].Text)
	require.Equal(t, "my number is four", items[1].Content[0].Text)
	require.Len(t, items, 5, "u3 has neither audio nor transcript any more")
}
