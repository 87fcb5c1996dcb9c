package realtime

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Client event names (protocol doc §2).
const (
	evSessionUpdate      = "session.update"
	evInputCommit        = "input_audio_buffer.commit"
	evInputClear         = "input_audio_buffer.clear"
	evItemCreate         = "conversation.item.create"
	evItemDelete         = "conversation.item.delete"
	evItemTruncate       = "conversation.item.truncate"
	evResponseCreate     = "response.create"
	evResponseCancel     = "response.cancel"
	maxResponseMetadata  = 16    // §2.6: up to 16 key/value pairs
	maxClientEventIDSize = 512   // §2: event_id is at most 512 characters in the GA spec
	pcmRate              = 24000 // §4: GA audio/pcm must be 24 kHz
)

// Content type names: GA (§0, §2.3) and their preview (beta) spellings.
const (
	contentInputText   = "input_text"
	contentInputAudio  = "input_audio"
	contentOutputText  = "output_text"
	contentOutputAudio = "output_audio"
	previewText        = "text"
	previewAudio       = "audio"
)

// Item types a client may create (§2.3).
const (
	itemMessage            = "message"
	itemFunctionCall       = "function_call"
	itemFunctionCallOutput = "function_call_output"
)

// marshalEvent encodes v deterministically (struct fields in declaration order,
// map keys sorted) without HTML escaping, so instructions containing <, > or &
// go out as written. The same value always yields the same bytes, which keeps
// the server's prompt cache warm across sessions (§6.3).
func marshalEvent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

func checkEventID(id string) error {
	if len(id) > maxClientEventIDSize {
		return fmt.Errorf("event_id is %d bytes, the limit is %d", len(id), maxClientEventIDSize)
	}
	return nil
}

// ---- session.update ------------------------------------------------------

type wireFormatGA struct {
	Type string `json:"type"`
	Rate int    `json:"rate,omitempty"`
}

type wireTranscription struct {
	Model    string `json:"model"`
	Language string `json:"language,omitempty"`
	Prompt   string `json:"prompt,omitempty"`
}

type wireNoiseReduction struct {
	Type string `json:"type"`
}

// wireVAD is turn_detection. Which fields are filled depends on the VAD type
// (§2.1): server_vad takes threshold/padding/silence (+ idle_timeout_ms in GA),
// semantic_vad takes eagerness. Sending the other type's fields risks an
// "Unknown parameter" error.
type wireVAD struct {
	Type              string  `json:"type"`
	Eagerness         string  `json:"eagerness,omitempty"`
	Threshold         float64 `json:"threshold,omitempty"`
	PrefixPaddingMs   int     `json:"prefix_padding_ms,omitempty"`
	SilenceDurationMs int     `json:"silence_duration_ms,omitempty"`
	IdleTimeoutMs     int     `json:"idle_timeout_ms,omitempty"`
	CreateResponse    bool    `json:"create_response"`
	InterruptResponse bool    `json:"interrupt_response"`
}

type wireTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

type wireToolChoiceFunction struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

type wireSessionUpdate[S any] struct {
	Type    string `json:"type"`
	EventID string `json:"event_id,omitempty"`
	Session S      `json:"session"`
}

// gaSession is the GA session object (§2.1 "GA shape"). Nullable fields are
// pointers without omitempty: null turns the feature off.
type gaSession struct {
	Type             string     `json:"type"`
	Instructions     string     `json:"instructions"`
	OutputModalities []string   `json:"output_modalities"`
	Audio            gaAudio    `json:"audio"`
	Tools            []wireTool `json:"tools"`
	ToolChoice       any        `json:"tool_choice,omitempty"`
	MaxOutputTokens  any        `json:"max_output_tokens"`
}

type gaAudio struct {
	Input  gaAudioInput  `json:"input"`
	Output gaAudioOutput `json:"output"`
}

type gaAudioInput struct {
	Format         *wireFormatGA       `json:"format,omitempty"`
	Transcription  *wireTranscription  `json:"transcription"`
	NoiseReduction *wireNoiseReduction `json:"noise_reduction"`
	TurnDetection  *wireVAD            `json:"turn_detection"`
}

type gaAudioOutput struct {
	Format *wireFormatGA `json:"format,omitempty"`
	Voice  string        `json:"voice,omitempty"`
	Speed  float64       `json:"speed,omitempty"`
}

// previewSession is the flat beta / Azure preview session object (§2.1
// "Beta shape").
type previewSession struct {
	Modalities               []string            `json:"modalities"`
	Instructions             string              `json:"instructions"`
	Voice                    string              `json:"voice,omitempty"`
	InputAudioFormat         string              `json:"input_audio_format,omitempty"`
	OutputAudioFormat        string              `json:"output_audio_format,omitempty"`
	InputAudioTranscription  *wireTranscription  `json:"input_audio_transcription"`
	InputAudioNoiseReduction *wireNoiseReduction `json:"input_audio_noise_reduction"`
	TurnDetection            *wireVAD            `json:"turn_detection"`
	Tools                    []wireTool          `json:"tools"`
	ToolChoice               any                 `json:"tool_choice,omitempty"`
	Temperature              float64             `json:"temperature,omitempty"`
	MaxResponseOutputTokens  any                 `json:"max_response_output_tokens"`
	Speed                    float64             `json:"speed,omitempty"`
}

// EncodeSessionUpdate renders sc as a session.update in dialect d (§2.1).
// GA fields never go to preview and beta fields never go to GA: each dialect
// rejects the other's ("Unknown parameter: 'session.input_audio_format'").
// Per dialect: the voice is mapped for preview when it is GA-only
// (ResolveVoice: marin → coral, cedar → ash); session.model is never sent
// (see SessionConfig.Model); formats and turn detection take each shape's
// fields (idle_timeout_ms is GA-only); a nil TurnDetection is sent as null,
// which turns server VAD off in both.
//
// The output is deterministic: the same sc and eventID always give the same
// bytes, so instructions reach every session of a call byte-identical (§6.3).
// Zero values mean "server default" and are omitted, except the fields whose
// null means "off" (transcription, noise reduction, turn detection), which are
// always sent so that a config is complete on its own. An empty eventID omits
// event_id.
func EncodeSessionUpdate(sc SessionConfig, d Dialect, eventID string) ([]byte, error) {
	b, err := encodeSessionUpdate(sc, d, eventID)
	if err != nil {
		return nil, fmt.Errorf("realtime: encode %s: %w", evSessionUpdate, err)
	}
	return b, nil
}

func encodeSessionUpdate(sc SessionConfig, d Dialect, eventID string) ([]byte, error) {
	if err := checkEventID(eventID); err != nil {
		return nil, err
	}
	if sc.MaxOutputTokens < 0 {
		return nil, fmt.Errorf("max output tokens %d is negative", sc.MaxOutputTokens)
	}
	tools, err := wireTools(sc.Tools)
	if err != nil {
		return nil, err
	}
	var maxTokens any = "inf" // §2.1: 1–4096 or "inf"
	if sc.MaxOutputTokens > 0 {
		maxTokens = sc.MaxOutputTokens
	}
	toolChoice := wireToolChoice(sc.ToolChoice)
	var nr *wireNoiseReduction
	if sc.NoiseReduction != "" {
		nr = &wireNoiseReduction{Type: sc.NoiseReduction}
	}
	var tr *wireTranscription
	if sc.Transcription != nil {
		tr = &wireTranscription{Model: sc.Transcription.Model, Language: sc.Transcription.Language, Prompt: sc.Transcription.Prompt}
	}
	vad, err := wireTurnDetection(sc.TurnDetection, d)
	if err != nil {
		return nil, err
	}
	// An unknown voice is sent as written: the server's refusal names it,
	// and ResolveVoice lets a configuration check catch it first.
	voice, _ := ResolveVoice(d, sc.Voice, "")

	if d == DialectPreview {
		in, err := previewFormat(sc.InputFormat)
		if err != nil {
			return nil, fmt.Errorf("input format: %w", err)
		}
		out, err := previewFormat(sc.OutputFormat)
		if err != nil {
			return nil, fmt.Errorf("output format: %w", err)
		}
		return marshalEvent(wireSessionUpdate[previewSession]{
			Type:    evSessionUpdate,
			EventID: eventID,
			Session: previewSession{
				// Beta cannot produce audio without text (§0 "Modalities").
				Modalities:               []string{"text", "audio"},
				Instructions:             sc.Instructions,
				Voice:                    voice,
				InputAudioFormat:         in,
				OutputAudioFormat:        out,
				InputAudioTranscription:  tr,
				InputAudioNoiseReduction: nr,
				TurnDetection:            vad,
				Tools:                    tools,
				ToolChoice:               toolChoice,
				Temperature:              sc.Temperature,
				MaxResponseOutputTokens:  maxTokens,
				Speed:                    sc.Speed,
			},
		})
	}

	in, err := gaFormat(sc.InputFormat)
	if err != nil {
		return nil, fmt.Errorf("input format: %w", err)
	}
	out, err := gaFormat(sc.OutputFormat)
	if err != nil {
		return nil, fmt.Errorf("output format: %w", err)
	}
	return marshalEvent(wireSessionUpdate[gaSession]{
		Type:    evSessionUpdate,
		EventID: eventID,
		Session: gaSession{
			Type:         "realtime", // required in GA (§2.1)
			Instructions: sc.Instructions,
			// GA allows ["audio"] (audio + transcript) or ["text"], not both (§0).
			OutputModalities: []string{"audio"},
			Audio: gaAudio{
				Input: gaAudioInput{
					Format:         in,
					Transcription:  tr,
					NoiseReduction: nr,
					TurnDetection:  vad,
				},
				Output: gaAudioOutput{Format: out, Voice: voice, Speed: sc.Speed},
			},
			Tools:           tools,
			ToolChoice:      toolChoice,
			MaxOutputTokens: maxTokens,
			// Temperature was removed in GA (§0): never sent.
		},
	})
}

func gaFormat(f AudioFormat) (*wireFormatGA, error) {
	switch f {
	case "":
		return nil, nil
	case FormatPCM24:
		return &wireFormatGA{Type: "audio/pcm", Rate: pcmRate}, nil
	case FormatPCMU:
		return &wireFormatGA{Type: "audio/pcmu"}, nil
	case FormatPCMA:
		return &wireFormatGA{Type: "audio/pcma"}, nil
	}
	return nil, fmt.Errorf("unknown audio format %q", string(f))
}

func previewFormat(f AudioFormat) (string, error) {
	switch f {
	case "":
		return "", nil
	case FormatPCM24:
		return "pcm16", nil
	case FormatPCMU:
		return "g711_ulaw", nil
	case FormatPCMA:
		return "g711_alaw", nil
	}
	return "", fmt.Errorf("unknown audio format %q", string(f))
}

func wireTurnDetection(td *TurnDetection, d Dialect) (*wireVAD, error) {
	if td == nil {
		return nil, nil // turn_detection: null = VAD off (§2.1)
	}
	v := &wireVAD{CreateResponse: td.CreateResponse, InterruptResponse: td.InterruptResponse}
	switch td.Type {
	case "", "server_vad":
		v.Type = "server_vad"
		v.Threshold = td.Threshold
		v.PrefixPaddingMs = td.PrefixPaddingMs
		v.SilenceDurationMs = td.SilenceDurationMs
		if d == DialectGA {
			// idle_timeout_ms is GA-only and server_vad-only (§0, §2.1).
			v.IdleTimeoutMs = td.IdleTimeoutMs
		}
	case "semantic_vad":
		v.Type = "semantic_vad"
		v.Eagerness = td.Eagerness
	default:
		return nil, fmt.Errorf("unknown turn detection type %q", td.Type)
	}
	return v, nil
}

func wireTools(tools []Tool) ([]wireTool, error) {
	// Always a list: "tools": [] clears tools (§2.1), and a config is
	// complete on its own.
	out := make([]wireTool, 0, len(tools))
	for i, t := range tools {
		if t.Name == "" {
			return nil, fmt.Errorf("tool %d has no name", i)
		}
		if len(t.Parameters) > 0 && !json.Valid(t.Parameters) {
			return nil, fmt.Errorf("tool %q: parameters are not valid JSON", t.Name)
		}
		out = append(out, wireTool{Type: "function", Name: t.Name, Description: t.Description, Parameters: t.Parameters})
	}
	return out, nil
}

// wireToolChoice maps SessionConfig.ToolChoice: "" is the server default,
// auto/none/required are sent as strings, and any other value names a
// function to force ({"type":"function","name":…}, §2.1).
func wireToolChoice(s string) any {
	switch s {
	case "":
		return nil
	case "auto", "none", "required":
		return s
	}
	return wireToolChoiceFunction{Type: "function", Name: s}
}

// ---- conversation.item.* -------------------------------------------------

type wireContent struct {
	Type       string  `json:"type"`
	Text       *string `json:"text,omitempty"`
	Audio      []byte  `json:"audio,omitempty"` // encoding/json sends []byte as standard base64
	Transcript string  `json:"transcript,omitempty"`
}

type wireItem struct {
	ID        string        `json:"id,omitempty"`
	Type      string        `json:"type"`
	Role      string        `json:"role,omitempty"`
	Content   []wireContent `json:"content,omitempty"`
	CallID    string        `json:"call_id,omitempty"`
	Name      string        `json:"name,omitempty"`
	Arguments *string       `json:"arguments,omitempty"`
	Output    *string       `json:"output,omitempty"`
}

type wireItemCreate struct {
	Type           string   `json:"type"`
	EventID        string   `json:"event_id,omitempty"`
	PreviousItemID string   `json:"previous_item_id,omitempty"`
	Item           wireItem `json:"item"`
}

// EncodeItemCreate renders conversation.item.create (§2.3). Content types are
// given with their GA names; for DialectPreview output_text/output_audio go
// out as text/audio (§0 "Assistant content type"). The beta names text/audio
// are accepted on input too and mapped to GA by role for DialectGA, since
// replaying beta-named assistant text into GA breaks context restoration
// (§6.2). previousItemID "" appends ("root" inserts at the start). The item's
// object and status are not sent: they have no effect (§2.3).
func EncodeItemCreate(item Item, previousItemID string, d Dialect, eventID string) ([]byte, error) {
	b, err := encodeItemCreate(item, previousItemID, d, eventID)
	if err != nil {
		return nil, fmt.Errorf("realtime: encode %s: %w", evItemCreate, err)
	}
	return b, nil
}

func encodeItemCreate(item Item, previousItemID string, d Dialect, eventID string) ([]byte, error) {
	if err := checkEventID(eventID); err != nil {
		return nil, err
	}
	w := wireItem{ID: item.ID, Type: item.Type}
	switch item.Type {
	case itemMessage:
		if item.Role == "" {
			return nil, errors.New("message item has no role")
		}
		if len(item.Content) == 0 {
			return nil, errors.New("message item has no content")
		}
		w.Role = item.Role
		w.Content = make([]wireContent, 0, len(item.Content))
		for i, p := range item.Content {
			c, err := wireContentPart(p, item.Role, d)
			if err != nil {
				return nil, fmt.Errorf("content %d: %w", i, err)
			}
			w.Content = append(w.Content, c)
		}
	case itemFunctionCall:
		if item.CallID == "" || item.Name == "" {
			return nil, errors.New("function_call item needs call_id and name")
		}
		w.CallID, w.Name = item.CallID, item.Name
		args := item.Arguments
		w.Arguments = &args
	case itemFunctionCallOutput:
		if item.CallID == "" {
			return nil, errors.New("function_call_output item needs call_id")
		}
		w.CallID = item.CallID
		out := item.Output
		w.Output = &out
	default:
		return nil, fmt.Errorf("unsupported item type %q", item.Type)
	}
	return marshalEvent(wireItemCreate{Type: evItemCreate, EventID: eventID, PreviousItemID: previousItemID, Item: w})
}

func wireContentPart(p ContentPart, role string, d Dialect) (wireContent, error) {
	t := p.Type
	assistant := role == "assistant"
	if d == DialectPreview {
		switch t {
		case contentOutputText:
			t = previewText
		case contentOutputAudio:
			t = previewAudio
		}
	} else {
		switch {
		case t == previewText && assistant:
			t = contentOutputText
		case t == previewText:
			t = contentInputText
		case t == previewAudio && assistant:
			t = contentOutputAudio
		case t == previewAudio:
			t = contentInputAudio
		}
	}
	c := wireContent{Type: t}
	switch t {
	case contentInputText, contentOutputText, previewText:
		text := p.Text
		c.Text = &text
	case contentInputAudio, contentOutputAudio, previewAudio:
		c.Audio = p.Audio
		c.Transcript = p.Transcript
	default:
		return wireContent{}, fmt.Errorf("unsupported content type %q", p.Type)
	}
	return c, nil
}

type wireItemDelete struct {
	Type    string `json:"type"`
	EventID string `json:"event_id,omitempty"`
	ItemID  string `json:"item_id"`
}

// EncodeItemDelete renders conversation.item.delete (§2.5).
func EncodeItemDelete(itemID, eventID string) ([]byte, error) {
	if itemID == "" {
		return nil, fmt.Errorf("realtime: encode %s: empty item_id", evItemDelete)
	}
	if err := checkEventID(eventID); err != nil {
		return nil, fmt.Errorf("realtime: encode %s: %w", evItemDelete, err)
	}
	return marshalEvent(wireItemDelete{Type: evItemDelete, EventID: eventID, ItemID: itemID})
}

type wireItemTruncate struct {
	Type         string `json:"type"`
	EventID      string `json:"event_id,omitempty"`
	ItemID       string `json:"item_id"`
	ContentIndex int    `json:"content_index"`
	AudioEndMs   int    `json:"audio_end_ms"`
}

// EncodeItemTruncate renders conversation.item.truncate (§2.4). The caller
// clamps audioEndMs to the audio actually received for the item; the server
// rejects a value beyond it.
func EncodeItemTruncate(itemID string, contentIndex, audioEndMs int, eventID string) ([]byte, error) {
	switch {
	case itemID == "":
		return nil, fmt.Errorf("realtime: encode %s: empty item_id", evItemTruncate)
	case contentIndex < 0 || audioEndMs < 0:
		return nil, fmt.Errorf("realtime: encode %s: negative content_index %d or audio_end_ms %d", evItemTruncate, contentIndex, audioEndMs)
	}
	if err := checkEventID(eventID); err != nil {
		return nil, fmt.Errorf("realtime: encode %s: %w", evItemTruncate, err)
	}
	return marshalEvent(wireItemTruncate{Type: evItemTruncate, EventID: eventID, ItemID: itemID, ContentIndex: contentIndex, AudioEndMs: audioEndMs})
}

// ---- response.* -----------------------------------------------------------

type wireResponseParams struct {
	Instructions string            `json:"instructions,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

type wireResponseCreate struct {
	Type     string              `json:"type"`
	EventID  string              `json:"event_id,omitempty"`
	Response *wireResponseParams `json:"response,omitempty"`
}

// EncodeResponseCreate renders response.create (§2.6). Zero params give the
// bare event (no "response" object). instructions and metadata have the same
// shape in both dialects.
func EncodeResponseCreate(p ResponseParams, eventID string) ([]byte, error) {
	if len(p.Metadata) > maxResponseMetadata {
		return nil, fmt.Errorf("realtime: encode %s: %d metadata pairs, the limit is %d", evResponseCreate, len(p.Metadata), maxResponseMetadata)
	}
	if err := checkEventID(eventID); err != nil {
		return nil, fmt.Errorf("realtime: encode %s: %w", evResponseCreate, err)
	}
	ev := wireResponseCreate{Type: evResponseCreate, EventID: eventID}
	if p.Instructions != "" || len(p.Metadata) > 0 {
		ev.Response = &wireResponseParams{Instructions: p.Instructions, Metadata: p.Metadata}
	}
	return marshalEvent(ev)
}

type wireResponseCancel struct {
	Type       string `json:"type"`
	EventID    string `json:"event_id,omitempty"`
	ResponseID string `json:"response_id,omitempty"`
}

// EncodeResponseCancel renders response.cancel (§2.7). responseID "" cancels
// the in-progress response of the default conversation.
func EncodeResponseCancel(responseID, eventID string) ([]byte, error) {
	if err := checkEventID(eventID); err != nil {
		return nil, fmt.Errorf("realtime: encode %s: %w", evResponseCancel, err)
	}
	return marshalEvent(wireResponseCancel{Type: evResponseCancel, EventID: eventID, ResponseID: responseID})
}

// ---- input_audio_buffer.* -------------------------------------------------

type wireBare struct {
	Type    string `json:"type"`
	EventID string `json:"event_id,omitempty"`
}

// EncodeInputAudioCommit renders input_audio_buffer.commit (§2.2).
func EncodeInputAudioCommit(eventID string) ([]byte, error) {
	if err := checkEventID(eventID); err != nil {
		return nil, fmt.Errorf("realtime: encode %s: %w", evInputCommit, err)
	}
	return marshalEvent(wireBare{Type: evInputCommit, EventID: eventID})
}

// EncodeInputAudioClear renders input_audio_buffer.clear (§2.2).
func EncodeInputAudioClear(eventID string) ([]byte, error) {
	if err := checkEventID(eventID); err != nil {
		return nil, fmt.Errorf("realtime: encode %s: %w", evInputClear, err)
	}
	return marshalEvent(wireBare{Type: evInputClear, EventID: eventID})
}

var (
	appendPrefix = []byte(`{"type":"input_audio_buffer.append","audio":"`)
	appendSuffix = []byte(`"}`)
)

// AppendInputAudioEvent appends the input_audio_buffer.append event for audio
// (§2.2) to dst and returns the extended slice. It is the per-frame hot path:
// with enough capacity in dst it does not allocate (style §1.7 rule 10).
// Appends carry no event_id: the server never acknowledges them.
func AppendInputAudioEvent(dst, audio []byte) []byte {
	dst = append(dst, appendPrefix...)
	dst = base64.StdEncoding.AppendEncode(dst, audio)
	return append(dst, appendSuffix...)
}

// InputAudioEventLen is the length of the append event for n audio bytes, for
// sizing a reusable buffer.
func InputAudioEventLen(n int) int {
	return len(appendPrefix) + base64.StdEncoding.EncodedLen(n) + len(appendSuffix)
}
