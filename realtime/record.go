package realtime

import (
	"strings"
	"unicode"
)

// EntryKind says what one entry of a Record is.
type EntryKind uint8

const (
	// EntryUser is a caller turn: committed audio (server VAD) or text.
	EntryUser EntryKind = iota + 1
	// EntryAssistant is one assistant message item (audio + transcript, or text).
	EntryAssistant
	// EntryFunctionCall is a function_call item produced by the model.
	EntryFunctionCall
	// EntryFunctionOutput is the function_call_output the bridge answered with.
	EntryFunctionOutput
	// EntrySystem is a system note (DTMF, transfer, …) added by the bridge.
	EntrySystem
)

func (k EntryKind) String() string {
	switch k {
	case EntryUser:
		return "user"
	case EntryAssistant:
		return "assistant"
	case EntryFunctionCall:
		return "function_call"
	case EntryFunctionOutput:
		return "function_call_output"
	case EntrySystem:
		return "system"
	}
	return "unknown"
}

// Entry is one item of the conversation record. Entries returns copies.
type Entry struct {
	Kind   EntryKind
	ItemID string
	// Text is the user's transcript, the assistant's full transcript (or
	// text output), or the system note.
	Text string
	// Audio is the caller's audio of a user turn in the session input format.
	// The last user turn keeps it; an earlier one only while it has no
	// transcript and is among the last RecordConfig.KeepAudioTurns
	// (Record.pruneAudio says why).
	Audio []byte
	// ProducedBytes is how much assistant audio the model produced for the
	// item (output format); HeardMs how much of it the caller heard. While
	// HeardKnown is false the caller is assumed to have heard all of it: the
	// bridge reports the heard position on barge-in, swap and playout end.
	ProducedBytes int
	HeardMs       int
	HeardKnown    bool
	// Truncated: the caller was cut off at HeardMs (barge-in, swap). Text
	// and audio that arrive later for the item are ignored, so the cut
	// stays where it was measured.
	Truncated bool
	// TextAnswer: the model answered this item in text (output_text
	// deltas or parts) in what is an audio call. Without audio it was never
	// heard, and is left out of a replay (§9: a text-only answer is a
	// failed answer, not something the model said to the caller).
	TextAnswer bool
	// Function call fields.
	CallID, Name, Arguments, Output string
}

// RecordConfig configures a Record.
type RecordConfig struct {
	InputFormat  AudioFormat // caller audio format (session input); "" = pcm24
	OutputFormat AudioFormat // model audio format (session output); "" = pcm24
	// KeepAudioTurns is how many of the most recent user turns may keep
	// their audio for replay (default 4): the last one always, the others
	// only until their transcript is known. Older turns are replayed from
	// their transcript only, or not at all when there is none.
	KeepAudioTurns int
	// ReplayTokenBudget caps the estimated tokens ReplayItems renders; the
	// oldest entries are left out first. 0 = a default per dialect.
	ReplayTokenBudget int
}

// DefaultKeepAudioTurns is RecordConfig.KeepAudioTurns when unset.
const DefaultKeepAudioTurns = 4

// Replay budgets by dialect. gpt-realtime (GA) takes 28,672 input tokens,
// of which instructions and tools may use up to 16,384 (protocol doc §4), so
// the replayed history must leave room; preview models take 128k.
const (
	replayBudgetGA      = 12000
	replayBudgetPreview = 64000
)

// Record is the ordered record of one call's conversation: enough to rebuild
// it in a fresh session in any region (architecture "What the conversation
// record holds"). It is updated from the server events of whichever session
// is active (Apply) and from the bridge (heard positions, caller audio,
// function outputs, system notes), and renders itself for
// conversation.item.create with ReplayItems.
//
// A Record is not safe for concurrent use: one goroutine (the conversation's
// actor) owns it.
type Record struct {
	cfg     RecordConfig
	entries []*Entry
	byID    map[string]*Entry
	// alias maps an id ReplayItems had to fit to MaxClientIDLen (FitID) back
	// to the record's own id, so the new session's echoes and later events
	// under the fitted id land on the original entry.
	alias map[string]string
}

// canon is the record's id for an id seen on the wire.
func (r *Record) canon(id string) string {
	if o, ok := r.alias[id]; ok {
		return o
	}
	return id
}

// fit returns id fitted to MaxClientIDLen, remembering the alias.
func (r *Record) fit(id string) string {
	f := FitID(id)
	if f != id {
		if r.alias == nil {
			r.alias = map[string]string{}
		}
		r.alias[f] = id
	}
	return f
}

// NewRecord returns an empty record.
func NewRecord(cfg RecordConfig) *Record {
	if cfg.KeepAudioTurns <= 0 {
		cfg.KeepAudioTurns = DefaultKeepAudioTurns
	}
	if cfg.InputFormat == "" {
		cfg.InputFormat = FormatPCM24
	}
	if cfg.OutputFormat == "" {
		cfg.OutputFormat = FormatPCM24
	}
	return &Record{cfg: cfg, byID: make(map[string]*Entry)}
}

// Len is the number of entries.
func (r *Record) Len() int { return len(r.entries) }

// Entries returns a copy of the entries in conversation order.
func (r *Record) Entries() []Entry {
	out := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		c := *e
		c.Audio = append([]byte(nil), e.Audio...)
		out = append(out, c)
	}
	return out
}

// Entry returns a copy of the entry for itemID.
func (r *Record) Entry(itemID string) (Entry, bool) {
	e, ok := r.byID[r.canon(itemID)]
	if !ok {
		return Entry{}, false
	}
	c := *e
	c.Audio = append([]byte(nil), e.Audio...)
	return c, true
}

// ProducedMs is how many ms of audio the model produced for itemID.
func (r *Record) ProducedMs(itemID string) int {
	if e, ok := r.byID[r.canon(itemID)]; ok {
		return e.ProducedBytes / r.cfg.OutputFormat.BytesPerMs()
	}
	return 0
}

// FunctionCall returns the function_call item with callID, for re-creating
// it in a session that does not have it yet (a replay leaves out calls that
// had no output).
func (r *Record) FunctionCall(callID string) (Item, bool) {
	callID = r.canon(callID)
	for _, e := range r.entries {
		if e.Kind == EntryFunctionCall && e.CallID == callID {
			return Item{ID: e.ItemID, Type: "function_call", CallID: e.CallID, Name: e.Name, Arguments: e.Arguments}, true
		}
	}
	return Item{}, false
}

// HasOutput reports whether callID already has a function_call_output.
func (r *Record) HasOutput(callID string) bool {
	callID = r.canon(callID)
	for _, e := range r.entries {
		if e.Kind == EntryFunctionOutput && e.CallID == callID {
			return true
		}
	}
	return false
}

// Apply updates the record from one server event of the active session.
// Events the record does not need are ignored. Item events for an id the
// record already holds only fill in what is missing: the echo of a replayed
// item (same id, cut text, no audio) must not overwrite the original.
func (r *Record) Apply(ev ServerEvent) {
	if len(r.alias) > 0 {
		ev.ItemID, ev.PreviousItemID, ev.CallID = r.canon(ev.ItemID), r.canon(ev.PreviousItemID), r.canon(ev.CallID)
		if ev.Item != nil {
			it := *ev.Item // the event is shared with other consumers
			it.ID, it.CallID = r.canon(it.ID), r.canon(it.CallID)
			ev.Item = &it
		}
	}
	switch ev.Type {
	case EvInputCommitted:
		// The committed audio becomes a user item; conversation.item.added
		// follows with the same id.
		if ev.ItemID != "" {
			r.upsert(EntryUser, ev.ItemID, ev.PreviousItemID)
		}
	case EvItemAdded, EvItemDone, EvOutputItemAdded, EvOutputItemDone:
		if ev.Item != nil {
			r.applyItem(*ev.Item, ev.PreviousItemID)
			if ev.Type == EvOutputItemAdded || ev.Type == EvOutputItemDone {
				r.markTextAnswer(*ev.Item)
			}
		}
	case EvItemDeleted:
		r.remove(ev.ItemID)
	case EvItemTruncated:
		r.Truncate(ev.ItemID, ev.AudioEndMs)
	case EvInputTranscriptionCompleted:
		if e, ok := r.byID[ev.ItemID]; ok && e.Kind == EntryUser && strings.TrimSpace(ev.Transcript) != "" {
			e.Text = ev.Transcript
			r.pruneAudio()
		}
	case EvOutputAudioDelta:
		if e := r.assistant(ev.ItemID, ev.PreviousItemID); e != nil && !e.Truncated {
			e.ProducedBytes += len(ev.Audio)
		}
	case EvOutputAudioTranscriptDelta, EvOutputTextDelta:
		if e := r.assistant(ev.ItemID, ev.PreviousItemID); e != nil && !e.Truncated {
			e.Text += ev.Delta
			if ev.Type == EvOutputTextDelta {
				e.TextAnswer = true
			}
		}
	case EvOutputAudioTranscriptDone:
		if e := r.assistant(ev.ItemID, ev.PreviousItemID); e != nil && !e.Truncated && ev.Transcript != "" {
			e.Text = ev.Transcript // authoritative full text
		}
	case EvOutputTextDone:
		if e := r.assistant(ev.ItemID, ev.PreviousItemID); e != nil && !e.Truncated && ev.Text != "" {
			e.Text = ev.Text
			e.TextAnswer = true
		}
	case EvFunctionCallArgumentsDone:
		if ev.ItemID == "" && ev.CallID == "" {
			return
		}
		id := ev.ItemID
		if id == "" {
			id = ev.CallID
		}
		e := r.upsert(EntryFunctionCall, id, "")
		if e.Kind != EntryFunctionCall {
			return
		}
		fill(&e.CallID, ev.CallID)
		fill(&e.Name, ev.Name)
		fill(&e.Arguments, ev.Arguments)
	}
}

func (r *Record) applyItem(it Item, prev string) {
	if it.ID == "" {
		return
	}
	kind, ok := itemKind(it)
	if !ok {
		return
	}
	e := r.upsert(kind, it.ID, prev)
	if e.Kind != kind {
		return
	}
	switch kind {
	case EntryFunctionCall:
		fill(&e.CallID, it.CallID)
		fill(&e.Name, it.Name)
		fill(&e.Arguments, it.Arguments)
	case EntryFunctionOutput:
		fill(&e.CallID, it.CallID)
		fill(&e.Output, it.Output)
	default:
		for _, p := range it.Content {
			switch p.Type {
			case "input_text", "output_text":
				fill(&e.Text, p.Text)
			case "input_audio", "output_audio":
				fill(&e.Text, strings.TrimSpace(p.Transcript))
				if kind == EntryUser && len(e.Audio) == 0 && len(p.Audio) > 0 {
					r.SetUserAudio(e.ItemID, p.Audio)
				}
			}
		}
	}
}

// markTextAnswer flags a model output item that carries text content.
func (r *Record) markTextAnswer(it Item) {
	e, ok := r.byID[it.ID]
	if !ok || e.Kind != EntryAssistant {
		return
	}
	for _, p := range it.Content {
		if p.Type == contentOutputText {
			e.TextAnswer = true
		}
	}
}

func itemKind(it Item) (EntryKind, bool) {
	switch it.Type {
	case "function_call":
		return EntryFunctionCall, true
	case "function_call_output":
		return EntryFunctionOutput, true
	case "message":
		switch it.Role {
		case "user":
			return EntryUser, true
		case "assistant":
			return EntryAssistant, true
		case "system":
			return EntrySystem, true
		}
	}
	return 0, false
}

func fill(dst *string, v string) {
	if *dst == "" && v != "" {
		*dst = v
	}
}

// assistant returns the assistant entry for itemID, creating it when an
// audio or transcript delta is the first news of it.
func (r *Record) assistant(itemID, prev string) *Entry {
	if itemID == "" {
		return nil
	}
	e := r.upsert(EntryAssistant, itemID, prev)
	if e.Kind != EntryAssistant {
		return nil
	}
	return e
}

// upsert returns the entry for id, creating it (after prev when prev is a
// known item, else at the end) when it is new.
func (r *Record) upsert(kind EntryKind, id, prev string) *Entry {
	if e, ok := r.byID[id]; ok {
		return e
	}
	e := &Entry{Kind: kind, ItemID: id}
	r.byID[id] = e
	at := len(r.entries)
	if p, ok := r.byID[prev]; ok && prev != "" {
		for i, x := range r.entries {
			if x == p {
				at = i + 1
				break
			}
		}
	}
	r.entries = append(r.entries, nil)
	copy(r.entries[at+1:], r.entries[at:])
	r.entries[at] = e
	return e
}

func (r *Record) remove(id string) {
	e, ok := r.byID[id]
	if !ok {
		return
	}
	delete(r.byID, id)
	for i, x := range r.entries {
		if x == e {
			r.entries = append(r.entries[:i], r.entries[i+1:]...)
			return
		}
	}
}

// SetUserAudio attaches the caller's audio (session input format) to the
// user turn itemID, creating the entry if the record has not seen it yet,
// and drops the audio no replay needs any more (pruneAudio).
func (r *Record) SetUserAudio(itemID string, audio []byte) {
	if itemID == "" {
		return
	}
	itemID = r.canon(itemID)
	e := r.upsert(EntryUser, itemID, "")
	if e.Kind != EntryUser {
		return
	}
	if !r.keepsAudio(e) {
		e.Audio = nil // e.g. the echo of an earlier, transcribed turn: no copy
		return
	}
	if cap(e.Audio) < len(audio) || cap(e.Audio) > 2*len(audio) {
		e.Audio = make([]byte, 0, len(audio)) // sized for this audio, not an earlier one
	}
	e.Audio = append(e.Audio[:0], audio...)
	r.pruneAudio()
}

// pruneAudio keeps the caller audio a replay can use and drops the rest.
// ReplayItems renders a user turn from its transcript whenever there is
// one, so an earlier turn's audio only matters until its transcript
// arrives (or when transcription is off or failed). The last user turn
// keeps its audio even with a transcript: a replay sends it as audio
// (caller audio last makes the model answer in speech, not text, §9) and
// the silent-answer retry re-creates it. Turns older than the last
// KeepAudioTurns keep none: a call of many untranscribed turns would
// otherwise hold all of them (at 8 kB a second of G.711, 48 kB of PCM16
// 24 kHz).
func (r *Record) pruneAudio() {
	turn := 0
	for i := len(r.entries) - 1; i >= 0; i-- {
		u := r.entries[i]
		if u.Kind != EntryUser {
			continue
		}
		turn++
		if !r.keepsTurnAudio(u, turn) {
			u.Audio = nil
		}
	}
}

// keepsTurnAudio is pruneAudio's rule for user entry u, the turn-th user
// turn counted from the last (1).
func (r *Record) keepsTurnAudio(u *Entry, turn int) bool {
	return turn == 1 || (turn <= r.cfg.KeepAudioTurns && strings.TrimSpace(u.Text) == "")
}

// keepsAudio applies pruneAudio's rule to the user entry e.
func (r *Record) keepsAudio(e *Entry) bool {
	turn := 0
	for i := len(r.entries) - 1; i >= 0; i-- {
		if u := r.entries[i]; u.Kind == EntryUser {
			turn++
			if u == e {
				return r.keepsTurnAudio(u, turn)
			}
		}
	}
	return false
}

// AudioBytes is the caller audio the record holds for replay, in bytes.
func (r *Record) AudioBytes() int {
	n := 0
	for _, e := range r.entries {
		n += cap(e.Audio)
	}
	return n
}

// SetHeard records how many ms of an assistant item's audio the caller has
// heard so far (the played position at the end of playout). It is clamped
// to what the model produced, and ignored once the item was truncated.
func (r *Record) SetHeard(itemID string, ms int) {
	if e, ok := r.byID[r.canon(itemID)]; ok && e.Kind == EntryAssistant && !e.Truncated {
		r.setHeard(e, ms)
	}
}

// Truncate records that the caller was cut off at heardMs of an assistant
// item (barge-in, hold, swap): the heard position is final and later text
// or audio for the item no longer changes the cut.
func (r *Record) Truncate(itemID string, heardMs int) {
	if e, ok := r.byID[r.canon(itemID)]; ok && e.Kind == EntryAssistant && !e.Truncated {
		r.setHeard(e, heardMs)
		e.Truncated = true
	}
}

func (r *Record) setHeard(e *Entry, ms int) {
	if ms < 0 {
		ms = 0
	}
	if produced := e.ProducedBytes / r.cfg.OutputFormat.BytesPerMs(); e.ProducedBytes > 0 && ms > produced {
		ms = produced
	}
	e.HeardMs, e.HeardKnown = ms, true
}

// AddSystemNote appends a system message (DTMF, transfer, …) with a
// client-chosen item id, which is also sent in conversation.item.create so
// the server's echo is recognised.
func (r *Record) AddSystemNote(itemID, text string) {
	e := r.upsert(EntrySystem, itemID, "")
	e.Text = text
}

// AddFunctionOutput appends the function_call_output for callID with a
// client-chosen item id.
func (r *Record) AddFunctionOutput(itemID, callID, output string) {
	e := r.upsert(EntryFunctionOutput, itemID, "")
	e.CallID, e.Output = callID, output
}

// HeardText is the part of an assistant entry's text the caller heard: the
// text cut proportionally at heard/produced ms, back to a word boundary.
// A text answer with no audio (TextAnswer) was not heard at all; other
// items without audio (created text) and items whose heard position is
// unknown count as fully heard.
func (r *Record) HeardText(e Entry) string {
	if e.TextAnswer && e.ProducedBytes == 0 {
		return ""
	}
	if !e.HeardKnown || e.ProducedBytes == 0 {
		return e.Text
	}
	total := float64(e.ProducedBytes) / float64(r.cfg.OutputFormat.BytesPerMs())
	return CutAtWord(e.Text, float64(e.HeardMs)/total)
}

// CutAtWord keeps the first frac (0…1) of text, measured in runes, moved back
// to the last word boundary so that a partly heard word is left out.
// Transcript deltas run ahead of the audio, so the proportional cut is an
// estimate; leaving the partial word out errs on the side of not claiming
// the caller heard something they did not.
func CutAtWord(text string, frac float64) string {
	r := []rune(text)
	if frac >= 1 {
		return text
	}
	n := int(float64(len(r)) * frac)
	if n <= 0 {
		return ""
	}
	if n >= len(r) {
		return text
	}
	i := n
	if !unicode.IsSpace(r[i]) {
		for i > 0 && !unicode.IsSpace(r[i-1]) {
			i--
		}
	}
	return strings.TrimRightFunc(string(r[:i]), unicode.IsSpace)
}

// ReplayItems renders the record as the items to send, in order, with
// conversation.item.create to rebuild the conversation in a fresh session:
//   - user → input_text with the transcript when known, else input_audio with
//     the kept audio; a turn with neither is left out;
//   - assistant → output_text holding only what the caller heard (the
//     model cannot be given assistant audio, §2.3); turns the caller heard
//     nothing of are left out, so the model never believes it said them;
//   - function_call + function_call_output pairs, both, in order; a call
//     without an output yet (a transfer still running) is left out, and the
//     bridge re-creates it before sending its output;
//   - system notes → system message input_text.
//
// Items keep their record ids so the new session's item.added echoes match
// the record instead of adding duplicates. An id or call_id longer than the
// service's 32 characters (§9) goes out fitted (FitID, the same for a call
// and its output); the record maps the fitted id back to its entry. Content types use the GA names;
// the encoder maps them for DialectPreview. d also sets the default token
// budget: when the history is longer, the oldest entries are left out
// (a call with its output as one).
func (r *Record) ReplayItems(d Dialect) []Item {
	hasOutput := map[string]bool{}
	hasCall := map[string]bool{}
	for _, e := range r.entries {
		switch e.Kind {
		case EntryFunctionOutput:
			hasOutput[e.CallID] = true
		case EntryFunctionCall:
			hasCall[e.CallID] = true
		}
	}
	type rendered struct {
		item   Item
		tokens int
	}
	var out []rendered
	for _, e := range r.entries {
		var it Item
		tokens := 0
		switch e.Kind {
		case EntryUser:
			switch {
			case strings.TrimSpace(e.Text) != "":
				it = message(e.ItemID, "user", ContentPart{Type: "input_text", Text: e.Text})
				tokens = textTokens(e.Text)
			case len(e.Audio) > 0:
				it = message(e.ItemID, "user", ContentPart{Type: "input_audio", Audio: append([]byte(nil), e.Audio...)})
				// User audio costs one token per 100 ms (protocol doc §4).
				tokens = len(e.Audio)/r.cfg.InputFormat.BytesPerMs()/100 + 1
			default:
				continue
			}
		case EntryAssistant:
			text := r.HeardText(*e)
			if strings.TrimSpace(text) == "" {
				continue
			}
			it = message(e.ItemID, "assistant", ContentPart{Type: "output_text", Text: text})
			tokens = textTokens(text)
		case EntryFunctionCall:
			if !hasOutput[e.CallID] || e.Name == "" {
				continue
			}
			it = Item{ID: e.ItemID, Type: "function_call", CallID: e.CallID, Name: e.Name, Arguments: e.Arguments}
			tokens = textTokens(e.Name + e.Arguments)
		case EntryFunctionOutput:
			if !hasCall[e.CallID] {
				continue // the server rejects an output whose call it does not know
			}
			it = Item{ID: e.ItemID, Type: "function_call_output", CallID: e.CallID, Output: e.Output}
			tokens = textTokens(e.Output)
		case EntrySystem:
			if strings.TrimSpace(e.Text) == "" {
				continue
			}
			it = message(e.ItemID, "system", ContentPart{Type: "input_text", Text: e.Text})
			tokens = textTokens(e.Text)
		default:
			continue
		}
		out = append(out, rendered{it, tokens})
	}

	budget := r.cfg.ReplayTokenBudget
	if budget <= 0 {
		budget = replayBudgetGA
		if d == DialectPreview {
			budget = replayBudgetPreview
		}
	}
	total := 0
	for _, x := range out {
		total += x.tokens
	}
	dropped := map[string]bool{} // call ids whose call was left out
	start := 0
	for start < len(out) && total > budget {
		x := out[start]
		total -= x.tokens
		if x.item.Type == "function_call" {
			dropped[x.item.CallID] = true
		}
		start++
	}
	items := make([]Item, 0, len(out)-start)
	for _, x := range out[start:] {
		if x.item.Type == "function_call_output" && dropped[x.item.CallID] {
			continue
		}
		it := x.item
		it.ID = r.fit(it.ID)
		if it.CallID != "" {
			it.CallID = r.fit(it.CallID)
		}
		items = append(items, it)
	}
	return items
}

func message(id, role string, p ContentPart) Item {
	return Item{ID: id, Type: "message", Role: role, Content: []ContentPart{p}}
}

// textTokens is a rough token estimate (about four characters a token),
// good enough to keep a replay inside the context window.
func textTokens(s string) int { return len(s)/4 + 1 }
