package sim

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sipbridge/sipbridge/realtime"
)

// Where an item came from, kept in the record.
const (
	OriginClient   = "client"   // conversation.item.create
	OriginCommit   = "commit"   // input_audio_buffer.commit
	OriginVAD      = "vad"      // server VAD end of speech
	OriginIdle     = "idle"     // idle_timeout_ms commit of silence
	OriginResponse = "response" // model output
)

// part is one content part. Type uses the GA names internally (input_text,
// input_audio, output_text, output_audio); preview rendering maps the
// assistant ones to text/audio (§0).
type part struct {
	Type       string
	Text       string
	Transcript string
	HasTrans   bool   // transcript known (rendered as null otherwise)
	Audio      []byte // input audio in the session input format (input_audio only)
	AudioMs    int    // input_audio: duration; output_audio: produced so far
	ImageURL   string
}

// item is one conversation item.
type item struct {
	ID      string
	Type    string // message | function_call | function_call_output
	Role    string
	Status  string // completed | incomplete | in_progress
	Content []part

	CallID, Name, Arguments, Output string

	Origin     string
	ResponseID string
	Heard      string // what the model understood of a user turn (for the Responder)
	Truncated  bool
	TruncateMs int
}

func (it *item) clone() *item {
	c := *it
	c.Content = slices.Clone(it.Content)
	return &c
}

// outputAudioPart returns the assistant audio part at index, if any.
func (it *item) outputAudioPart(index int) *part {
	if it.Type != "message" || it.Role != "assistant" || index < 0 || index >= len(it.Content) {
		return nil
	}
	p := &it.Content[index]
	if p.Type != "output_audio" {
		return nil
	}
	return p
}

// text joins what the item says, for the record and the Responder.
func (it *item) text() string {
	switch it.Type {
	case "function_call":
		return it.Name + "(" + it.Arguments + ")"
	case "function_call_output":
		return it.Output
	}
	var parts []string
	for _, p := range it.Content {
		switch p.Type {
		case "input_text", "output_text":
			parts = append(parts, p.Text)
		case "input_audio", "output_audio":
			if p.HasTrans && p.Transcript != "" {
				parts = append(parts, p.Transcript)
			}
		}
	}
	return strings.Join(parts, " ")
}

// parseItem validates an item object against the dialect's item shapes
// (§2.3). path is "item" for conversation.item.create and "response.input[i]"
// for response inputs.
func parseItem(d realtime.Dialect, path string, raw json.RawMessage, inFormat realtime.AudioFormat) (*item, *apiError) {
	o, err := parseObj(path, raw)
	if err != nil {
		return nil, err
	}
	typ, ok, err := o.str("type")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errMissingParam(o.p("type"))
	}
	it := &item{Type: typ, Status: "completed", Origin: OriginClient}
	if id, ok, err := o.str("id"); err != nil {
		return nil, err
	} else if ok {
		if err := checkIDLen(o, "id", id); err != nil {
			return nil, err
		}
		it.ID = id
	}
	if obj, ok, err := o.str("object"); err != nil {
		return nil, err
	} else if ok && obj != "realtime.item" {
		return nil, errInvalidEnum(o.p("object"), obj, []string{"realtime.item"})
	}
	if st, ok, err := o.str("status"); err != nil {
		return nil, err
	} else if ok {
		// §2.3: status is accepted but has no effect.
		if !slices.Contains([]string{"completed", "incomplete", "in_progress"}, st) {
			return nil, errInvalidEnum(o.p("status"), st, []string{"completed", "incomplete", "in_progress"})
		}
	}
	switch typ {
	case "message":
		if err := o.allow("id", "type", "object", "status", "role", "content"); err != nil {
			return nil, err
		}
		return parseMessage(d, o, it, inFormat)
	case "function_call":
		if err := o.allow("id", "type", "object", "status", "call_id", "name", "arguments"); err != nil {
			return nil, err
		}
		if it.CallID, ok, err = o.str("call_id"); err != nil {
			return nil, err
		} else if !ok {
			it.CallID = newID("call_", 16)
		} else if err := checkIDLen(o, "call_id", it.CallID); err != nil {
			return nil, err
		}
		if it.Name, ok, err = o.str("name"); err != nil {
			return nil, err
		} else if !ok {
			return nil, errMissingParam(o.p("name"))
		}
		if it.Arguments, ok, err = o.str("arguments"); err != nil {
			return nil, err
		} else if !ok {
			return nil, errMissingParam(o.p("arguments"))
		}
		return it, nil
	case "function_call_output":
		if err := o.allow("id", "type", "object", "status", "call_id", "output"); err != nil {
			return nil, err
		}
		if it.CallID, ok, err = o.str("call_id"); err != nil {
			return nil, err
		} else if !ok {
			return nil, errMissingParam(o.p("call_id"))
		} else if err := checkIDLen(o, "call_id", it.CallID); err != nil {
			return nil, err
		}
		if it.Output, ok, err = o.str("output"); err != nil {
			return nil, err
		} else if !ok {
			return nil, errMissingParam(o.p("output"))
		}
		return it, nil
	}
	return nil, errInvalidEnum(o.p("type"), typ, []string{"message", "function_call", "function_call_output"})
}

// maxClientIDLen is the real service's limit on a client-chosen item id and
// on a function_call / function_call_output call_id (§9; the schema does
// not say so, LiveKit truncates call ids to 32 for it).
const maxClientIDLen = 32

func checkIDLen(o *jobj, key, v string) *apiError {
	if n := utf8.RuneCountInString(v); n > maxClientIDLen {
		return invalidReq(codeStringTooLong, o.p(key),
			"Invalid '%s': string too long. Expected a string with maximum length %d, but got a string with length %d instead.", o.p(key), maxClientIDLen, n)
	}
	return nil
}

func parseMessage(d realtime.Dialect, o *jobj, it *item, inFormat realtime.AudioFormat) (*item, *apiError) {
	role, ok, err := o.str("role")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errMissingParam(o.p("role"))
	}
	if !slices.Contains([]string{"user", "assistant", "system"}, role) {
		return nil, errInvalidEnum(o.p("role"), role, []string{"user", "assistant", "system"})
	}
	it.Role = role
	content, ok, err := o.array("content")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errMissingParam(o.p("content"))
	}
	for i, raw := range content {
		po, err := parseObj(o.p("content")+"["+itoa(i)+"]", raw)
		if err != nil {
			return nil, err
		}
		p, err := parsePart(d, role, po, inFormat)
		if err != nil {
			return nil, err
		}
		it.Content = append(it.Content, p)
	}
	return it, nil
}

// parsePart validates one content part by role and dialect (§2.3): user
// input_text/input_audio (GA also input_image); system input_text only;
// assistant text only — output_text in GA, text in preview. Assistant audio
// cannot be created.
func parsePart(d realtime.Dialect, role string, po *jobj, inFormat realtime.AudioFormat) (part, *apiError) {
	typ, ok, err := po.str("type")
	if err != nil {
		return part{}, err
	}
	if !ok {
		return part{}, errMissingParam(po.p("type"))
	}
	switch role {
	case "user":
		supported := []string{"input_text", "input_audio"}
		if d == realtime.DialectGA {
			supported = append(supported, "input_image")
		}
		if !slices.Contains(supported, typ) {
			return part{}, errInvalidEnum(po.p("type"), typ, supported)
		}
	case "system":
		if typ != "input_text" {
			return part{}, invalidReq(codeInvalidValue, po.p("type"), "Invalid value: '%s'. Value must be 'input_text'.", typ)
		}
	case "assistant":
		want := "output_text"
		if d == realtime.DialectPreview {
			want = "text"
		}
		if typ == "output_audio" && d == realtime.DialectGA && !po.present("text") {
			// Observed GA answer to an assistant output_audio part
			// (openai/openai-agents-js #963): the server wants text.
			return part{}, errMissingParam(po.p("text"))
		}
		if typ != want {
			// Wording observed on the beta interface for a wrong assistant
			// content type ("Invalid value: 'input_text'. Value must be 'text'.").
			return part{}, invalidReq(codeInvalidValue, po.p("type"), "Invalid value: '%s'. Value must be '%s'.", typ, want)
		}
	}
	p := part{Type: typ}
	switch typ {
	case "input_text", "output_text", "text":
		if err := po.allow("type", "text"); err != nil {
			return part{}, err
		}
		text, ok, err := po.str("text")
		if err != nil {
			return part{}, err
		}
		if !ok {
			return part{}, errMissingParam(po.p("text"))
		}
		p.Text = text
		if typ == "text" {
			p.Type = "output_text" // internal GA name
		}
	case "input_audio":
		if err := po.allow("type", "audio", "transcript"); err != nil {
			return part{}, err
		}
		b64, ok, err := po.str("audio")
		if err != nil {
			return part{}, err
		}
		if !ok {
			return part{}, errMissingParam(po.p("audio"))
		}
		audio, err := decodeB64Audio(po.p("audio"), b64)
		if err != nil {
			return part{}, err
		}
		p.Audio = audio
		p.AudioMs = bytesToMs(inFormat, len(audio))
		if tr, ok, err := po.str("transcript"); err != nil {
			return part{}, err
		} else if ok {
			p.Transcript, p.HasTrans = tr, true
		}
	case "input_image":
		if err := po.allow("type", "image_url", "detail"); err != nil {
			return part{}, err
		}
		url, ok, err := po.str("image_url")
		if err != nil {
			return part{}, err
		}
		if !ok {
			return part{}, errMissingParam(po.p("image_url"))
		}
		p.ImageURL = url
		if det, ok, err := po.str("detail"); err != nil {
			return part{}, err
		} else if ok && !slices.Contains([]string{"auto", "low", "high"}, det) {
			return part{}, errInvalidEnum(po.p("detail"), det, []string{"auto", "low", "high"})
		}
	}
	return p, nil
}

func decodeB64Audio(param, s string) ([]byte, *apiError) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, invalidReq(codeInvalidValue, param, "Invalid '%s': expected base64-encoded audio bytes.", param)
	}
	if len(b) > maxAppendBytes {
		return nil, invalidReq(codeInvalidValue, param, "Invalid '%s': audio exceeds the maximum of 15 MiB per event.", param)
	}
	return b, nil
}

// renderItem renders an item in the session's dialect. Added/done/created
// events carry no audio bytes (§3.4); retrieve does (withAudio).
func renderItem(d realtime.Dialect, it *item, withAudio bool) map[string]any {
	m := map[string]any{"id": it.ID, "object": "realtime.item", "type": it.Type, "status": it.Status}
	switch it.Type {
	case "function_call":
		m["call_id"] = it.CallID
		m["name"] = it.Name
		m["arguments"] = it.Arguments
		return m
	case "function_call_output":
		m["call_id"] = it.CallID
		m["output"] = it.Output
		return m
	}
	m["role"] = it.Role
	content := make([]map[string]any, 0, len(it.Content))
	for _, p := range it.Content {
		content = append(content, renderPart(d, p, withAudio))
	}
	m["content"] = content
	return m
}

// partType is a part's type with the dialect's name for it.
func partType(d realtime.Dialect, p part) string {
	if d == realtime.DialectPreview {
		switch p.Type {
		case "output_text":
			return "text"
		case "output_audio":
			return "audio"
		}
	}
	return p.Type
}

func renderPart(d realtime.Dialect, p part, withAudio bool) map[string]any {
	m := map[string]any{"type": partType(d, p)}
	switch p.Type {
	case "input_text", "output_text":
		m["text"] = p.Text
	case "input_audio", "output_audio":
		if p.HasTrans {
			m["transcript"] = p.Transcript
		} else {
			m["transcript"] = nil
		}
		if withAudio && p.Type == "input_audio" && p.Audio != nil {
			m["audio"] = base64.StdEncoding.EncodeToString(p.Audio)
		}
	case "input_image":
		m["image_url"] = p.ImageURL
	}
	return m
}

// contentTypes lists an item's content types with the dialect's names.
func contentTypes(d realtime.Dialect, it *item) []string {
	out := make([]string, 0, len(it.Content))
	for _, p := range it.Content {
		out = append(out, partType(d, p))
	}
	return out
}
