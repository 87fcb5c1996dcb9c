package configs

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/sipbridge/sipbridge/realtime"
)

// Assistant is the AI's session configuration (assistant), sent identically
// to every region.
type Assistant struct {
	// Instructions is the system prompt.
	Instructions string `yaml:"instructions"`
	// Voice is the model voice.
	Voice string `yaml:"voice"`
	// Greeting, if set, makes the assistant speak first with these instructions.
	Greeting string `yaml:"greeting"`
	// AudioFormat toward the model: auto (the call's own G.711 law for a
	// narrowband call, PCM16 24 kHz for a wideband one), pcm24 (PCM16
	// 24 kHz for every call) or g711 (the same choice as auto, the name
	// configs used before auto existed).
	AudioFormat string `yaml:"audio_format"`
	// TurnDetection configures server VAD; type "none" turns it off.
	TurnDetection TurnDetection `yaml:"turn_detection"`
	// Transcription of the caller's audio.
	Transcription Transcription `yaml:"transcription"`
	// NoiseReduction: "", near_field or far_field.
	NoiseReduction string `yaml:"noise_reduction"`
	// Model is sent as session.model in GA (optional; the URL's model wins).
	Model string `yaml:"model"`
	// Tools the model may call.
	Tools Tools `yaml:"tools"`
	// DTMF passes the caller's key presses to the model.
	DTMF DTMF `yaml:"dtmf"`
	// Regions, when set, are the only regions (by name) its calls may use,
	// in the pool's order and health; empty: all. Mostly for profiles.
	Regions []string `yaml:"regions"`
	// Prompts override failover.filler_file and failover.apology_file for
	// its calls (a profile in another language).
	Prompts AssistantPrompts `yaml:"prompts"`
}

// AssistantPrompts are an assistant's own filler and apology WAVs; empty:
// failover's.
type AssistantPrompts struct {
	FillerFile  string `yaml:"filler_file"`
	ApologyFile string `yaml:"apology_file"`
}

// TurnDetection mirrors the realtime turn_detection object.
type TurnDetection struct {
	Type              string   `yaml:"type"` // server_vad, semantic_vad, none
	Threshold         *float64 `yaml:"threshold"`
	PrefixPaddingMs   *int     `yaml:"prefix_padding_ms"`
	SilenceDurationMs *int     `yaml:"silence_duration_ms"`
	CreateResponse    *bool    `yaml:"create_response"`
	InterruptResponse *bool    `yaml:"interrupt_response"`
	IdleTimeoutMs     int      `yaml:"idle_timeout_ms"`
	Eagerness         string   `yaml:"eagerness"`
}

// Transcription toggles input transcription.
type Transcription struct {
	Enabled  *bool  `yaml:"enabled"`
	Model    string `yaml:"model"`
	Language string `yaml:"language"`
}

// Tools configures the built-in call-control tools.
type Tools struct {
	// EndCall lets the model hang up after its goodbye.
	EndCall *bool `yaml:"end_call"`
	// TransferTargets are SIP URIs the model may transfer to; empty disables transfer_call.
	TransferTargets []string `yaml:"transfer_targets"`
	// Webhooks are custom tools served over HTTP (webhooks.go).
	Webhooks []Webhook `yaml:"webhooks"`
}

// DTMF configures what the model hears of the caller's key presses (RFC 4733
// telephone-events and SIP INFO).
type DTMF struct {
	// Enabled gives the model a note per key, "The caller pressed 4.".
	Enabled *bool `yaml:"enabled"`
	// Respond asks the model to answer after each key; off, the keys wait
	// for the caller's next turn (PIN entry).
	Respond *bool `yaml:"respond"`
}

// Defaults of the assistant section. The realtime package sends what it is
// given, so these are the bridge's choices and live here.
const (
	DefaultVoice              = "marin"
	DefaultAudioFormat        = AudioFormatAuto
	DefaultTurnDetectionType  = "server_vad"
	DefaultVADThreshold       = 0.5
	DefaultPrefixPaddingMs    = 300
	DefaultSilenceDurationMs  = 500
	DefaultCreateResponse     = true
	DefaultInterruptResponse  = true
	DefaultTranscription      = true
	DefaultTranscriptionModel = "gpt-4o-transcribe"
	DefaultEndCallTool        = true
	DefaultDTMFEnabled        = true
	DefaultDTMFRespond        = true
)

// The values of assistant.audio_format. auto is the default: a G.711 call's
// 8 kHz audio goes to the model as it came (no resampling up to 24 kHz and
// back, a sixth of the bytes to send and keep for a replay), and a G.722
// call's wideband goes as PCM16 24 kHz, so nothing above 4 kHz is lost.
// g711 chose the same before auto existed and is kept as its synonym.
const (
	AudioFormatAuto  = "auto"
	AudioFormatPCM24 = "pcm24"
	AudioFormatG711  = "g711"
)

// DefaultInstructions is the assistant prompt when none is configured.
const DefaultInstructions = "You are a friendly call-center assistant speaking with a caller on the phone. " +
	"Keep answers short and clear. If the caller asks for a human, transfer the call. " +
	"When the caller says goodbye, say goodbye and end the call."

// Names of the call-control tools the bridge itself implements.
const (
	ToolEndCall      = "end_call"
	ToolTransferCall = "transfer_call"
)

func orDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}

func (c *Config) applyAssistantDefaults() {
	applyAssistantDefaultsTo(&c.Assistant)
	c.applyProfileDefaults() // profiles.go
}

// applyAssistantDefaultsTo fills in the defaults of one assistant (the
// assistant section or a profile, once its inherited keys are merged in).
func applyAssistantDefaultsTo(a *Assistant) {
	if a.Instructions == "" {
		a.Instructions = DefaultInstructions
	}
	if a.Voice == "" {
		a.Voice = DefaultVoice
	}
	if a.AudioFormat == "" {
		a.AudioFormat = DefaultAudioFormat
	}
	td := &a.TurnDetection
	if td.Type == "" {
		td.Type = DefaultTurnDetectionType
	}
	if td.Type == "server_vad" {
		orDefault(&td.Threshold, DefaultVADThreshold)
		orDefault(&td.PrefixPaddingMs, DefaultPrefixPaddingMs)
		orDefault(&td.SilenceDurationMs, DefaultSilenceDurationMs)
	}
	orDefault(&td.CreateResponse, DefaultCreateResponse)
	orDefault(&td.InterruptResponse, DefaultInterruptResponse)
	orDefault(&a.Transcription.Enabled, DefaultTranscription)
	if a.Transcription.Model == "" {
		a.Transcription.Model = DefaultTranscriptionModel
	}
	orDefault(&a.Tools.EndCall, DefaultEndCallTool)
	orDefault(&a.DTMF.Enabled, DefaultDTMFEnabled)
	orDefault(&a.DTMF.Respond, DefaultDTMFRespond)
	applyWebhookDefaults(a) // webhooks.go
}

func (c *Config) validateAssistant(bad badFunc) {
	n := 0
	counting := func(key, format string, args ...any) { n++; bad(key, format, args...) }
	c.validateAssistantAt(&c.Assistant, "assistant", counting)
	c.validateProfiles(bad, n > 0) // profiles.go
}

// validateAssistantAt checks one assistant; key is where it is written
// ("assistant" or "assistants.NAME"). The caller variables of instructions
// and greeting are checked against caller_headers (profiles.go).
func (c *Config) validateAssistantAt(a *Assistant, key string, bad badFunc) {
	if err := realtime.ValidateVoice(realtime.DialectGA, a.Voice); err != nil {
		bad(key+".voice", "%v", err)
	}
	switch a.AudioFormat {
	case AudioFormatAuto, AudioFormatPCM24, AudioFormatG711:
	default:
		bad(key+".audio_format", "%q is not auto, pcm24 or g711", a.AudioFormat)
	}
	switch a.TurnDetection.Type {
	case "server_vad", "semantic_vad":
	case "none":
		// With no server VAD nothing would end the caller's turn: the bridge
		// has no voice detection of its own to commit it and ask for the
		// answer, so the caller would never be answered.
		bad(key+".turn_detection.type", "none is not supported: the bridge relies on the model's turn detection to end the caller's turn (use server_vad or semantic_vad)")
	default:
		bad(key+".turn_detection.type", "%q is not server_vad or semantic_vad", a.TurnDetection.Type)
	}
	if t := a.TurnDetection.Threshold; t != nil && (*t < 0 || *t > 1) {
		bad(key+".turn_detection.threshold", "%v is outside 0..1", *t)
	}
	if p := a.TurnDetection.PrefixPaddingMs; p != nil && *p < 0 {
		bad(key+".turn_detection.prefix_padding_ms", "%d is negative", *p)
	}
	if s := a.TurnDetection.SilenceDurationMs; s != nil && *s <= 0 {
		bad(key+".turn_detection.silence_duration_ms", "%d is not positive", *s)
	}
	if v := a.TurnDetection.IdleTimeoutMs; v != 0 && (v < 5000 || v > 30000) {
		bad(key+".turn_detection.idle_timeout_ms", "%d is outside 5000..30000", v)
	}
	switch a.TurnDetection.Eagerness {
	case "", "low", "medium", "high", "auto":
	default:
		bad(key+".turn_detection.eagerness", "%q is not low, medium, high or auto", a.TurnDetection.Eagerness)
	}
	switch a.NoiseReduction {
	case "", "near_field", "far_field":
	default:
		bad(key+".noise_reduction", "%q is not near_field or far_field", a.NoiseReduction)
	}
	for i, t := range a.Tools.TransferTargets {
		if err := ValidateSIPURI(t); err != nil {
			bad(fmt.Sprintf("%s.tools.transfer_targets[%d]", key, i), "%v", err)
		}
	}
	for i, r := range a.Regions {
		switch {
		case !slices.ContainsFunc(c.Regions, func(x Region) bool { return x.Name == r }):
			bad(fmt.Sprintf("%s.regions[%d]", key, i), "%q is not the name of a region in regions", r)
		case slices.Contains(a.Regions[:i], r):
			bad(fmt.Sprintf("%s.regions[%d]", key, i), "%q is listed twice", r)
		}
	}
	validateWebhooks(a, key, bad)                                // webhooks.go
	c.validateTemplate(key+".instructions", a.Instructions, bad) // profiles.go
	c.validateTemplate(key+".greeting", a.Greeting, bad)
}

// SessionConfig renders the assistant section as the session.update every
// region receives. format is the wire audio format toward the model (pcm24, or
// the call's G.711 law when audio_format is auto or g711 and the call is
// narrowband).
func (c *Config) SessionConfig(format realtime.AudioFormat) realtime.SessionConfig {
	return c.Assistant.SessionConfig(format)
}

// SessionConfig renders one assistant (the section or a profile) as its
// session.update; the instructions are as written (RenderCaller fills in
// the caller variables).
func (a *Assistant) SessionConfig(format realtime.AudioFormat) realtime.SessionConfig {
	sc := realtime.SessionConfig{
		Model:          a.Model,
		Instructions:   a.Instructions,
		Voice:          a.Voice,
		InputFormat:    format,
		OutputFormat:   format,
		NoiseReduction: a.NoiseReduction,
	}
	if td := a.TurnDetection; td.Type != "none" {
		t := &realtime.TurnDetection{
			Type:              td.Type,
			CreateResponse:    *td.CreateResponse,
			InterruptResponse: *td.InterruptResponse,
			Eagerness:         td.Eagerness,
		}
		if td.Type == "server_vad" {
			t.Threshold = *td.Threshold
			t.PrefixPaddingMs = *td.PrefixPaddingMs
			t.SilenceDurationMs = *td.SilenceDurationMs
			t.IdleTimeoutMs = td.IdleTimeoutMs
		}
		sc.TurnDetection = t
	}
	if *a.Transcription.Enabled {
		sc.Transcription = &realtime.Transcription{Model: a.Transcription.Model, Language: a.Transcription.Language}
	}
	if *a.Tools.EndCall {
		sc.Tools = append(sc.Tools, realtime.Tool{
			Name: ToolEndCall,
			Description: "Hang up the phone call. Call this after you have said goodbye, " +
				"when the caller is done or asks to end the call.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"reason":{"type":"string","description":"Why the call is ending."}},"required":[]}`),
		})
	}
	if len(a.Tools.TransferTargets) > 0 {
		targets, _ := json.Marshal(a.Tools.TransferTargets)
		sc.Tools = append(sc.Tools, realtime.Tool{
			Name: ToolTransferCall,
			Description: "Transfer the caller to a human agent or another destination. " +
				"Tell the caller you are transferring them before calling this.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"target":{"type":"string","enum":` +
				string(targets) + `,"description":"Where to transfer the caller."}},"required":[]}`),
		})
	}
	sc.Tools = append(sc.Tools, a.webhookTools()...) // webhooks.go
	return sc
}
