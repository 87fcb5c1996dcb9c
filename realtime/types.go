package realtime

import (
	"context"
	"encoding/json"
	"time"
)

// Dialect is the shape of the wire protocol a session speaks.
type Dialect uint8

const (
	// DialectGA is the gpt-realtime interface (OpenAI /v1/realtime, Azure /openai/v1/realtime).
	DialectGA Dialect = iota
	// DialectPreview is the legacy beta shape (Azure /openai/realtime?api-version=…-preview).
	DialectPreview
)

func (d Dialect) String() string {
	if d == DialectPreview {
		return "preview"
	}
	return "ga"
}

// AuthStyle is how the API key travels in the WebSocket upgrade.
type AuthStyle uint8

const (
	// AuthAuto picks api-key for Azure hosts and Bearer for everything else.
	AuthAuto AuthStyle = iota
	// AuthAPIKey sends the Azure "api-key: KEY" header.
	AuthAPIKey
	// AuthBearer sends "Authorization: Bearer KEY".
	AuthBearer
)

func (a AuthStyle) String() string {
	switch a {
	case AuthAPIKey:
		return "api-key"
	case AuthBearer:
		return "bearer"
	}
	return "auto"
}

// AudioFormat is the audio encoding on the wire between the bridge and the model.
type AudioFormat string

const (
	// FormatPCM24 is PCM16 little-endian mono at 24 kHz (GA audio/pcm rate 24000, preview pcm16).
	FormatPCM24 AudioFormat = "pcm24"
	// FormatPCMU is G.711 μ-law at 8 kHz (GA audio/pcmu, preview g711_ulaw).
	FormatPCMU AudioFormat = "pcmu"
	// FormatPCMA is G.711 A-law at 8 kHz (GA audio/pcma, preview g711_alaw).
	FormatPCMA AudioFormat = "pcma"
)

// BytesPerMs is how many bytes one millisecond of audio takes in this format.
func (f AudioFormat) BytesPerMs() int {
	if f == FormatPCM24 {
		return 48
	}
	return 8
}

// TurnDetection configures voice activity detection on the server. A nil
// *TurnDetection in SessionConfig means VAD is off (turn_detection: null).
type TurnDetection struct {
	Type              string  `yaml:"type" json:"type"` // server_vad | semantic_vad
	Threshold         float64 `yaml:"threshold" json:"threshold,omitempty"`
	PrefixPaddingMs   int     `yaml:"prefix_padding_ms" json:"prefix_padding_ms,omitempty"`
	SilenceDurationMs int     `yaml:"silence_duration_ms" json:"silence_duration_ms,omitempty"`
	CreateResponse    bool    `yaml:"create_response" json:"create_response"`
	InterruptResponse bool    `yaml:"interrupt_response" json:"interrupt_response"`
	IdleTimeoutMs     int     `yaml:"idle_timeout_ms" json:"idle_timeout_ms,omitempty"` // GA server_vad only
	Eagerness         string  `yaml:"eagerness" json:"eagerness,omitempty"`             // semantic_vad only
}

// Transcription configures input (caller) transcription. nil means off.
type Transcription struct {
	Model    string `yaml:"model" json:"model"`
	Language string `yaml:"language" json:"language,omitempty"`
	Prompt   string `yaml:"prompt" json:"prompt,omitempty"`
}

// Tool is a function the model may call.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// SessionConfig is everything a session.update carries. The same value is
// sent, byte-identical, to every session of a call.
type SessionConfig struct {
	// Model is never sent as session.model: the URL already selects the
	// model (OpenAI ?model=, Azure the deployment), Azure expects its
	// deployment name there and OpenAI a model name, and a model that
	// differs from the session's is refused ("cannot be changed"). One
	// configuration serving several regions is only safe without it (§9).
	Model string
	// Voice is the voice every region uses unless its DialConfig.Voice
	// overrides it; the preview dialect gets GA-only voices mapped
	// (ResolveVoice).
	Voice           string
	Instructions    string
	Speed           float64 // 0 = server default
	InputFormat     AudioFormat
	OutputFormat    AudioFormat
	TurnDetection   *TurnDetection
	Transcription   *Transcription
	NoiseReduction  string // "", near_field, far_field
	Tools           []Tool
	ToolChoice      string  // "" = server default (auto)
	MaxOutputTokens int     // 0 = "inf"
	Temperature     float64 // preview only; 0 = server default
}

// DialConfig says where and how to connect one session.
type DialConfig struct {
	Region      string
	URL         string // full ws:// or wss:// URL including query
	APIKey      string // never logged
	Auth        AuthStyle
	DialTimeout time.Duration // 0 = DefaultDialTimeout
	// Voice overrides SessionConfig.Voice for this region (regions[].voice);
	// the region's dialect must accept it (ValidateVoice). "" = the
	// session's voice, mapped for the dialect (ResolveVoice).
	Voice string
}

// ErrorDetail is the error object of an `error` event or of a failed
// response's status_details. Every field may be empty on the wire.
type ErrorDetail struct {
	Type    string `json:"type,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Param   string `json:"param,omitempty"`
	EventID string `json:"event_id,omitempty"`
}

// SessionInfo is the part of session.created / session.updated the bridge uses.
type SessionInfo struct {
	ID        string `json:"id,omitempty"`
	Object    string `json:"object,omitempty"`
	Type      string `json:"type,omitempty"`
	Model     string `json:"model,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"` // epoch seconds; 0 = unknown
}

// StatusDetails explains a response's final status.
type StatusDetails struct {
	Type   string       `json:"type,omitempty"`
	Reason string       `json:"reason,omitempty"`
	Error  *ErrorDetail `json:"error,omitempty"`
}

// ResponseInfo is the `response` object of response.created / response.done.
type ResponseInfo struct {
	ID             string            `json:"id,omitempty"`
	Object         string            `json:"object,omitempty"`
	Status         string            `json:"status,omitempty"` // in_progress completed cancelled failed incomplete
	StatusDetails  *StatusDetails    `json:"status_details,omitempty"`
	Output         []Item            `json:"output,omitempty"`
	ConversationID string            `json:"conversation_id,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	// RawUsage is the wire usage object (response.done only); Usage is
	// it decoded by DecodeServerEvent (DecodeUsage).
	RawUsage json.RawMessage `json:"usage,omitempty"`
	Usage    Usage           `json:"-"`
}

// Response statuses.
const (
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusCancelled  = "cancelled"
	StatusFailed     = "failed"
	StatusIncomplete = "incomplete"
)

// ContentPart is one part of a message item. Content types use the GA names
// (input_text, input_audio, output_text, output_audio); the encoder maps them
// to preview names (text, audio) for DialectPreview.
type ContentPart struct {
	Type       string `json:"type"`
	Text       string `json:"text,omitempty"`
	Audio      []byte `json:"audio,omitempty"` // raw bytes in the session input format; base64 on the wire
	Transcript string `json:"transcript,omitempty"`
}

// Item is a conversation item (message, function_call, function_call_output).
type Item struct {
	ID        string        `json:"id,omitempty"`
	Object    string        `json:"object,omitempty"`
	Type      string        `json:"type"`
	Status    string        `json:"status,omitempty"`
	Role      string        `json:"role,omitempty"`
	Content   []ContentPart `json:"content,omitempty"`
	CallID    string        `json:"call_id,omitempty"`
	Name      string        `json:"name,omitempty"`
	Arguments string        `json:"arguments,omitempty"`
	Output    string        `json:"output,omitempty"`
}

// ServerEvent is one decoded server event. Type is normalised to the GA name;
// WireType is what was on the wire. Fields not carried by an event are zero.
type ServerEvent struct {
	Type     string `json:"type"`
	WireType string `json:"-"`
	EventID  string `json:"event_id,omitempty"`

	Session  *SessionInfo  `json:"session,omitempty"`
	Error    *ErrorDetail  `json:"error,omitempty"`
	Response *ResponseInfo `json:"response,omitempty"`
	Item     *Item         `json:"item,omitempty"`
	Part     *ContentPart  `json:"part,omitempty"`

	ResponseID     string `json:"response_id,omitempty"`
	ItemID         string `json:"item_id,omitempty"`
	PreviousItemID string `json:"previous_item_id,omitempty"`
	OutputIndex    int    `json:"output_index,omitempty"`
	ContentIndex   int    `json:"content_index,omitempty"`

	// Delta is the text of transcript/text/argument deltas. For
	// response.output_audio.delta the decoded audio is in Audio instead.
	Delta      string `json:"delta,omitempty"`
	Audio      []byte `json:"-"`
	Transcript string `json:"transcript,omitempty"`
	Text       string `json:"text,omitempty"`

	AudioStartMs int `json:"audio_start_ms,omitempty"`
	AudioEndMs   int `json:"audio_end_ms,omitempty"`

	CallID    string `json:"call_id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`

	// RateLimits is rate_limits.updated's list (§3.8), sent at the start of
	// each response: export it per region (remaining requests/tokens).
	RateLimits []RateLimit `json:"rate_limits,omitempty"`
}

// Server event names (GA spelling; preview names are normalised to these).
const (
	EvError                       = "error"
	EvSessionCreated              = "session.created"
	EvSessionUpdated              = "session.updated"
	EvConversationCreated         = "conversation.created"
	EvItemAdded                   = "conversation.item.added"
	EvItemDone                    = "conversation.item.done"
	EvItemDeleted                 = "conversation.item.deleted"
	EvItemTruncated               = "conversation.item.truncated"
	EvItemRetrieved               = "conversation.item.retrieved"
	EvInputTranscriptionDelta     = "conversation.item.input_audio_transcription.delta"
	EvInputTranscriptionCompleted = "conversation.item.input_audio_transcription.completed"
	EvInputTranscriptionFailed    = "conversation.item.input_audio_transcription.failed"
	EvInputTranscriptionSegment   = "conversation.item.input_audio_transcription.segment"
	EvInputSpeechStarted          = "input_audio_buffer.speech_started"
	EvInputSpeechStopped          = "input_audio_buffer.speech_stopped"
	EvInputCommitted              = "input_audio_buffer.committed"
	EvInputCleared                = "input_audio_buffer.cleared"
	EvInputTimeoutTriggered       = "input_audio_buffer.timeout_triggered"
	EvResponseCreated             = "response.created"
	EvResponseDone                = "response.done"
	EvOutputItemAdded             = "response.output_item.added"
	EvOutputItemDone              = "response.output_item.done"
	EvContentPartAdded            = "response.content_part.added"
	EvContentPartDone             = "response.content_part.done"
	EvOutputAudioDelta            = "response.output_audio.delta"
	EvOutputAudioDone             = "response.output_audio.done"
	EvOutputAudioTranscriptDelta  = "response.output_audio_transcript.delta"
	EvOutputAudioTranscriptDone   = "response.output_audio_transcript.done"
	EvOutputTextDelta             = "response.output_text.delta"
	EvOutputTextDone              = "response.output_text.done"
	EvFunctionCallArgumentsDelta  = "response.function_call_arguments.delta"
	EvFunctionCallArgumentsDone   = "response.function_call_arguments.done"
	EvRateLimitsUpdated           = "rate_limits.updated"
)

// ResponseParams are the per-response overrides of response.create. The zero
// value is a bare {"type":"response.create"}.
type ResponseParams struct {
	Instructions string
	Metadata     map[string]string
}

// Session is one live WebSocket session to one region. Methods may be called
// from any goroutine. Events() is closed when the session ends; Err() then
// says why (a *CloseError, *DialError, context error, …).
type Session interface {
	// ID is the server's session id (sess_…) from session.created.
	ID() string
	Region() string
	Dialect() Dialect
	// ExpiresAt is the server's hard session deadline (zero if unknown).
	ExpiresAt() time.Time
	// Events delivers server events in order; closed when the session ends.
	// Each event is a new one owned by the receiver (pointers keep the
	// per-session queue small).
	Events() <-chan *ServerEvent
	// Done is closed when the session has ended.
	Done() <-chan struct{}
	Err() error

	// AppendAudio queues one frame of caller audio (session input format) for
	// input_audio_buffer.append. It copies, never blocks, and returns false if
	// the frame was dropped because the send queue is full.
	AppendAudio(frame []byte) bool
	CommitAudio(ctx context.Context) error
	ClearAudio(ctx context.Context) error
	UpdateSession(ctx context.Context, cfg SessionConfig) error
	// CreateItem sends conversation.item.create. previousItemID "" appends.
	CreateItem(ctx context.Context, item Item, previousItemID string) error
	DeleteItem(ctx context.Context, itemID string) error
	Truncate(ctx context.Context, itemID string, contentIndex, audioEndMs int) error
	CreateResponse(ctx context.Context, p ResponseParams) error
	CancelResponse(ctx context.Context, responseID string) error
	// Close ends the session with a normal close frame and waits briefly for
	// the reader to finish. Safe to call more than once.
	Close() error
}
