package sim

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sipbridge/sipbridge/realtime"
)

// Voices accepted per dialect (§2.1): GA adds marin and cedar and custom
// voice ids ({"id":"voice_…"}).
var (
	gaVoices      = []string{"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
	previewVoices = []string{"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse"}
	toolNameRE    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
)

// turnDetection is the effective VAD config. Nil in sessionConfig = VAD off.
type turnDetection struct {
	Type              string // server_vad | semantic_vad
	Threshold         float64
	PrefixPaddingMs   int
	SilenceDurationMs int
	CreateResponse    bool
	InterruptResponse bool
	IdleTimeoutMs     int    // 0 = null (GA server_vad only)
	Eagerness         string // semantic_vad only
}

// silenceMs is how much silence ends a turn. semantic_vad has no
// silence_duration_ms; its eagerness maps to a fixed pause (§2.1: the
// simulator treats semantic_vad like server_vad).
func (t *turnDetection) silenceMs() int {
	if t.Type != "semantic_vad" {
		return t.SilenceDurationMs
	}
	switch t.Eagerness {
	case "low":
		return 800
	case "high":
		return 250
	}
	return 500
}

type transcription struct {
	Model, Language, Prompt string
}

// sessionConfig is a session's effective configuration, dialect-neutral.
// session.update patches a copy of it; session.created/updated render it in
// the session's dialect.
type sessionConfig struct {
	Model            string
	Instructions     string
	TextOnly         bool // GA output_modalities ["text"] / preview modalities ["text"]
	InputFormat      realtime.AudioFormat
	OutputFormat     realtime.AudioFormat
	Transcription    *transcription
	NoiseReduction   string
	TurnDetection    *turnDetection
	Voice            string
	VoiceIsID        bool // GA custom voice {"id": …}
	Speed            float64
	Tools            []json.RawMessage
	ToolChoice       json.RawMessage
	MaxOutputTokens  json.RawMessage
	Truncation       json.RawMessage // GA
	Include          []string        // GA; nil = null
	Tracing          json.RawMessage // null by default
	Prompt           json.RawMessage // GA; null by default
	Temperature      float64         // preview
	Reasoning        json.RawMessage // GA, gpt-realtime-2 only
	ParallelToolCall json.RawMessage // GA, gpt-realtime-2 only
}

func defaultSessionConfig(d realtime.Dialect, model, region string) sessionConfig {
	c := sessionConfig{
		Model:        model,
		Instructions: "You are a helpful voice assistant answering phone calls (sipbridge simulator, region " + region + ").",
		InputFormat:  realtime.FormatPCM24,
		OutputFormat: realtime.FormatPCM24,
		// Defaults from the GA session.created example (§3.1): VAD on, 200 ms silence.
		TurnDetection: &turnDetection{
			Type: "server_vad", Threshold: 0.5, PrefixPaddingMs: 300, SilenceDurationMs: 200,
			CreateResponse: true, InterruptResponse: true,
		},
		Voice:           "marin",
		Speed:           1,
		ToolChoice:      json.RawMessage(`"auto"`),
		MaxOutputTokens: json.RawMessage(`"inf"`),
		Truncation:      json.RawMessage(`"auto"`),
		Tracing:         json.RawMessage(`null`),
		Prompt:          json.RawMessage(`null`),
		Temperature:     0.8,
	}
	if d == realtime.DialectPreview {
		c.Voice = "alloy"
	}
	return c
}

// clone deep-copies the slices that a patch may replace.
func (c sessionConfig) clone() sessionConfig {
	c.Tools = slices.Clone(c.Tools)
	c.Include = slices.Clone(c.Include)
	if c.TurnDetection != nil {
		td := *c.TurnDetection
		c.TurnDetection = &td
	}
	if c.Transcription != nil {
		tr := *c.Transcription
		c.Transcription = &tr
	}
	return c
}

// applySessionUpdate validates the `session` object of a session.update
// against the dialect's schema and returns cur patched with it. Only the
// fields sent are changed (§2.1 "Only the fields you send are changed");
// nested config objects (format, turn_detection, transcription) are replaced
// whole. State rules (voice fixed after audio, model fixed) are checked by the
// caller, which knows the session's history.
func applySessionUpdate(d realtime.Dialect, cur sessionConfig, raw json.RawMessage) (sessionConfig, *apiError) {
	o, err := parseObj("session", raw)
	if err != nil {
		return cur, err
	}
	next := cur.clone()
	if d == realtime.DialectPreview {
		err = applyPreviewSession(&next, o)
	} else {
		err = applyGASession(&next, o)
	}
	if err != nil {
		return cur, err
	}
	return next, nil
}

func applyGASession(c *sessionConfig, o *jobj) *apiError {
	// session.type is checked before anything else: a GA server answers a
	// beta-shaped update without it with missing_required_parameter (§2.1; the
	// TanStack/ai #586 payload carried beta fields and got this error first).
	typ, ok, err := o.str("type")
	if err != nil {
		return err
	}
	if !ok {
		return errMissingParam("session.type")
	}
	if typ != "realtime" {
		if typ == "transcription" {
			return invalidReq(codeInvalidValue, "session.type", "Invalid value: 'transcription'. The simulator only implements 'realtime' sessions.")
		}
		return errInvalidEnum("session.type", typ, []string{"realtime", "transcription"})
	}
	allowed := []string{"type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice",
		"max_output_tokens", "truncation", "include", "tracing", "prompt"}
	if strings.HasPrefix(c.Model, "gpt-realtime-2") {
		// §2.1: newer models (2026 spec) also accept these.
		allowed = append(allowed, "reasoning", "parallel_tool_calls")
	}
	if err := o.allow(allowed...); err != nil {
		return err
	}
	if err := applyCommon(c, o); err != nil {
		return err
	}
	if mods, ok, err := o.stringArray("output_modalities"); err != nil {
		return err
	} else if ok {
		switch {
		case slices.Equal(mods, []string{"audio"}):
			c.TextOnly = false
		case slices.Equal(mods, []string{"text"}):
			c.TextOnly = true
		default:
			// GA: ["audio"] or ["text"], never both (§0).
			return invalidReq(codeInvalidValue, "session.output_modalities",
				"Invalid modalities: %s. Supported combinations are: ['text'] and ['audio'].", pyList(mods))
		}
	}
	if v, ok, err := o.integerOrInf("max_output_tokens"); err != nil {
		return err
	} else if ok {
		c.MaxOutputTokens = v
	}
	if o.present("truncation") {
		raw := o.m["truncation"]
		switch jsonKind(raw) {
		case "a string":
			s, _, _ := o.str("truncation")
			if s != "auto" && s != "disabled" {
				return errInvalidEnum("session.truncation", s, []string{"auto", "disabled"})
			}
		case "an object":
			t, _, err := o.object("truncation")
			if err != nil {
				return err
			}
			if err := t.allow("type", "retention_ratio", "token_limits"); err != nil {
				return err
			}
			if ty, _, err := t.str("type"); err != nil {
				return err
			} else if ty != "retention_ratio" {
				return errInvalidEnum("session.truncation.type", ty, []string{"retention_ratio"})
			}
			if r, ok, err := t.number("retention_ratio"); err != nil {
				return err
			} else if ok && (r < 0 || r > 1) {
				return errOutOfRange("session.truncation.retention_ratio", r, 0, 1)
			}
		default:
			return errInvalidType("session.truncation", "a string or an object", jsonKind(raw))
		}
		c.Truncation = compact(raw)
	}
	if o.isNull("include") {
		c.Include = nil
	} else if inc, ok, err := o.stringArray("include"); err != nil {
		return err
	} else if ok {
		for i, s := range inc {
			if s != "item.input_audio_transcription.logprobs" {
				return errInvalidEnum("session.include["+itoa(i)+"]", s, []string{"item.input_audio_transcription.logprobs"})
			}
		}
		c.Include = inc
	}
	if _, ok := o.m["prompt"]; ok {
		raw := o.m["prompt"]
		if k := jsonKind(raw); k != "null" && k != "an object" {
			return errInvalidType("session.prompt", "an object", k)
		}
		if p, ok, err := o.object("prompt"); err != nil {
			return err
		} else if ok {
			if err := p.allow("id", "version", "variables"); err != nil {
				return err
			}
			if _, ok, err := p.str("id"); err != nil {
				return err
			} else if !ok {
				return errMissingParam("session.prompt.id")
			}
		}
		c.Prompt = compact(raw)
	}
	if raw, ok := o.m["reasoning"]; ok {
		c.Reasoning = compact(raw)
	}
	if raw, ok := o.m["parallel_tool_calls"]; ok {
		if k := jsonKind(raw); k != "a boolean" {
			return errInvalidType("session.parallel_tool_calls", "a boolean", k)
		}
		c.ParallelToolCall = compact(raw)
	}
	if a, ok, err := o.object("audio"); err != nil {
		return err
	} else if ok {
		if err := a.allow("input", "output"); err != nil {
			return err
		}
		if in, ok, err := a.object("input"); err != nil {
			return err
		} else if ok {
			if err := applyGAInput(c, in); err != nil {
				return err
			}
		}
		if out, ok, err := a.object("output"); err != nil {
			return err
		} else if ok {
			if err := out.allow("format", "voice", "speed"); err != nil {
				return err
			}
			if f, ok, err := out.object("format"); err != nil {
				return err
			} else if ok {
				af, err := parseGAFormat(f)
				if err != nil {
					return err
				}
				c.OutputFormat = af
			}
			if err := applyVoice(c, out, gaVoices, true); err != nil {
				return err
			}
			if err := applySpeed(c, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func applyGAInput(c *sessionConfig, in *jobj) *apiError {
	if err := in.allow("format", "transcription", "noise_reduction", "turn_detection"); err != nil {
		return err
	}
	if f, ok, err := in.object("format"); err != nil {
		return err
	} else if ok {
		af, err := parseGAFormat(f)
		if err != nil {
			return err
		}
		c.InputFormat = af
	}
	if err := applyTranscription(c, in, "transcription"); err != nil {
		return err
	}
	if err := applyNoiseReduction(c, in, "noise_reduction"); err != nil {
		return err
	}
	return applyTurnDetection(c, in, true)
}

// parseGAFormat reads {type:"audio/pcm",rate:24000} | {type:"audio/pcmu"} |
// {type:"audio/pcma"} (§0, §4 "GA rate must be 24000"; G.711 has no rate).
func parseGAFormat(f *jobj) (realtime.AudioFormat, *apiError) {
	typ, ok, err := f.str("type")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errMissingParam(f.p("type"))
	}
	switch typ {
	case "audio/pcm":
		if err := f.allow("type", "rate"); err != nil {
			return "", err
		}
		if rate, ok, err := f.integer("rate"); err != nil {
			return "", err
		} else if ok && rate != 24000 {
			return "", invalidReq(codeInvalidValue, f.p("rate"), "Invalid value: %d. Supported values are: 24000.", rate)
		}
		return realtime.FormatPCM24, nil
	case "audio/pcmu", "audio/pcma":
		if err := f.allow("type"); err != nil {
			return "", err
		}
		if typ == "audio/pcmu" {
			return realtime.FormatPCMU, nil
		}
		return realtime.FormatPCMA, nil
	}
	return "", errInvalidEnum(f.p("type"), typ, []string{"audio/pcm", "audio/pcmu", "audio/pcma"})
}

func applyPreviewSession(c *sessionConfig, o *jobj) *apiError {
	// GA-only fields (type, audio, output_modalities, …) are unknown here, the
	// mirror image of beta fields sent to GA (§0, §2.1).
	if err := o.allow("model", "modalities", "instructions", "voice", "input_audio_format", "output_audio_format",
		"input_audio_transcription", "input_audio_noise_reduction", "turn_detection", "tools", "tool_choice",
		"temperature", "max_response_output_tokens", "speed", "tracing"); err != nil {
		return err
	}
	if err := applyCommon(c, o); err != nil {
		return err
	}
	if mods, ok, err := o.stringArray("modalities"); err != nil {
		return err
	} else if ok {
		sorted := slices.Clone(mods)
		slices.Sort(sorted)
		switch {
		case slices.Equal(sorted, []string{"audio", "text"}):
			c.TextOnly = false
		case slices.Equal(sorted, []string{"text"}):
			c.TextOnly = true
		default:
			// Wording observed on the beta interface (BerriAI/litellm #14887).
			return invalidReq(codeInvalidValue, "session.modalities",
				"Invalid modalities: %s. Supported combinations are: ['text'] and ['audio', 'text'].", pyList(mods))
		}
	}
	for _, k := range []string{"input_audio_format", "output_audio_format"} {
		s, ok, err := o.str(k)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		var af realtime.AudioFormat
		switch s {
		case "pcm16":
			af = realtime.FormatPCM24
		case "g711_ulaw":
			af = realtime.FormatPCMU
		case "g711_alaw":
			af = realtime.FormatPCMA
		default:
			return errInvalidEnum("session."+k, s, []string{"pcm16", "g711_ulaw", "g711_alaw"})
		}
		if k == "input_audio_format" {
			c.InputFormat = af
		} else {
			c.OutputFormat = af
		}
	}
	if err := applyTranscription(c, o, "input_audio_transcription"); err != nil {
		return err
	}
	if err := applyNoiseReduction(c, o, "input_audio_noise_reduction"); err != nil {
		return err
	}
	if err := applyTurnDetection(c, o, false); err != nil {
		return err
	}
	if err := applyVoice(c, o, previewVoices, false); err != nil {
		return err
	}
	if err := applySpeed(c, o); err != nil {
		return err
	}
	// §0: beta temperature range 0.6–1.2.
	if err := o.numberInto("temperature", 0.6, 1.2, &c.Temperature); err != nil {
		return err
	}
	if v, ok, err := o.integerOrInf("max_response_output_tokens"); err != nil {
		return err
	} else if ok {
		c.MaxOutputTokens = v
	}
	return nil
}

// applyCommon handles the fields both dialects spell the same way.
func applyCommon(c *sessionConfig, o *jobj) *apiError {
	if m, ok, err := o.str("model"); err != nil {
		return err
	} else if ok {
		if m != c.Model {
			// §2.1: "model … cannot be changed once set".
			return invalidReq(codeInvalidValue, "session.model",
				"Invalid value: '%s'. The session model is '%s' and cannot be changed.", m, c.Model)
		}
	}
	if s, ok, err := o.str("instructions"); err != nil {
		return err
	} else if ok {
		c.Instructions = s
	}
	if tools, ok, err := o.array("tools"); err != nil {
		return err
	} else if ok {
		out := make([]json.RawMessage, 0, len(tools))
		for i, raw := range tools {
			t, err := parseObj("session.tools["+itoa(i)+"]", raw)
			if err != nil {
				return err
			}
			if err := validateTool(t); err != nil {
				return err
			}
			out = append(out, compact(raw))
		}
		c.Tools = out
	}
	if o.present("tool_choice") {
		raw := o.m["tool_choice"]
		switch jsonKind(raw) {
		case "a string":
			s, _, _ := o.str("tool_choice")
			if !slices.Contains([]string{"auto", "none", "required"}, s) {
				return errInvalidEnum("session.tool_choice", s, []string{"auto", "none", "required"})
			}
		case "an object":
			tc, _, err := o.object("tool_choice")
			if err != nil {
				return err
			}
			typ, ok, err := tc.str("type")
			if err != nil {
				return err
			}
			if !ok {
				return errMissingParam("session.tool_choice.type")
			}
			switch typ {
			case "function":
				if err := tc.allow("type", "name"); err != nil {
					return err
				}
				if _, ok, err := tc.str("name"); err != nil {
					return err
				} else if !ok {
					return errMissingParam("session.tool_choice.name")
				}
			case "mcp":
				if err := tc.allow("type", "server_label", "name"); err != nil {
					return err
				}
			default:
				return errInvalidEnum("session.tool_choice.type", typ, []string{"function", "mcp"})
			}
		default:
			return errInvalidType("session.tool_choice", "a string or an object", jsonKind(raw))
		}
		c.ToolChoice = compact(raw)
	}
	if raw, ok := o.m["tracing"]; ok {
		switch jsonKind(raw) {
		case "null":
		case "a string":
			s, _, _ := o.str("tracing")
			if s != "auto" {
				return errInvalidEnum("session.tracing", s, []string{"auto"})
			}
		case "an object":
			t, _, err := o.object("tracing")
			if err != nil {
				return err
			}
			if err := t.allow("workflow_name", "group_id", "metadata"); err != nil {
				return err
			}
		default:
			return errInvalidType("session.tracing", "a string or an object", jsonKind(raw))
		}
		c.Tracing = compact(raw)
	}
	return nil
}

func validateTool(t *jobj) *apiError {
	typ, ok, err := t.str("type")
	if err != nil {
		return err
	}
	if !ok {
		return errMissingParam(t.p("type"))
	}
	switch typ {
	case "function":
		if err := t.allow("type", "name", "description", "parameters"); err != nil {
			return err
		}
		name, ok, err := t.str("name")
		if err != nil {
			return err
		}
		if !ok {
			return errMissingParam(t.p("name"))
		}
		if !toolNameRE.MatchString(name) {
			return invalidReq(codeInvalidValue, t.p("name"),
				"Invalid '%s': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", t.p("name"))
		}
		if _, _, err := t.str("description"); err != nil {
			return err
		}
		if t.present("parameters") {
			if _, _, err := t.object("parameters"); err != nil {
				return err
			}
		}
	case "mcp":
		// MCP tools are GA-only and executed server-side; the simulator
		// accepts their declaration but never calls them.
		if _, ok, err := t.str("server_label"); err != nil {
			return err
		} else if !ok {
			return errMissingParam(t.p("server_label"))
		}
	default:
		return errInvalidEnum(t.p("type"), typ, []string{"function", "mcp"})
	}
	return nil
}

func applyTranscription(c *sessionConfig, o *jobj, key string) *apiError {
	if o.isNull(key) {
		c.Transcription = nil
		return nil
	}
	t, ok, err := o.object(key)
	if err != nil || !ok {
		return err
	}
	if err := t.allow("model", "language", "prompt"); err != nil {
		return err
	}
	tr := &transcription{}
	if m, ok, err := t.str("model"); err != nil {
		return err
	} else if ok {
		if m != "whisper-1" && !(strings.HasPrefix(m, "gpt-4o") && strings.Contains(m, "transcribe")) {
			return errInvalidEnum(t.p("model"), m, []string{"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"})
		}
		tr.Model = m
	}
	if tr.Language, _, err = t.str("language"); err != nil {
		return err
	}
	if tr.Prompt, _, err = t.str("prompt"); err != nil {
		return err
	}
	c.Transcription = tr
	return nil
}

func applyNoiseReduction(c *sessionConfig, o *jobj, key string) *apiError {
	if o.isNull(key) {
		c.NoiseReduction = ""
		return nil
	}
	n, ok, err := o.object(key)
	if err != nil || !ok {
		return err
	}
	if err := n.allow("type"); err != nil {
		return err
	}
	typ, ok, err := n.str("type")
	if err != nil {
		return err
	}
	if !ok {
		return errMissingParam(n.p("type"))
	}
	if typ != "near_field" && typ != "far_field" {
		return errInvalidEnum(n.p("type"), typ, []string{"near_field", "far_field"})
	}
	c.NoiseReduction = typ
	return nil
}

// applyTurnDetection reads turn_detection: null turns VAD off; an object
// replaces the whole VAD config, unsent fields taking their defaults.
func applyTurnDetection(c *sessionConfig, o *jobj, ga bool) *apiError {
	if o.isNull("turn_detection") {
		c.TurnDetection = nil
		return nil
	}
	t, ok, err := o.object("turn_detection")
	if err != nil || !ok {
		return err
	}
	typ, ok, err := t.str("type")
	if err != nil {
		return err
	}
	if !ok {
		typ = "server_vad"
	}
	td := &turnDetection{Type: typ, Threshold: 0.5, PrefixPaddingMs: 300, SilenceDurationMs: 500,
		CreateResponse: true, InterruptResponse: true}
	switch typ {
	case "server_vad":
		allowed := []string{"type", "threshold", "prefix_padding_ms", "silence_duration_ms", "create_response", "interrupt_response"}
		if ga {
			allowed = append(allowed, "idle_timeout_ms") // GA only (§0)
		}
		if err := t.allow(allowed...); err != nil {
			return err
		}
		// integer() parses 32-bit values, so math.MaxInt32 means "no maximum".
		if err := firstErr(
			t.numberInto("threshold", 0, 1, &td.Threshold),
			t.integerInto("prefix_padding_ms", 0, math.MaxInt32, &td.PrefixPaddingMs),
			t.integerInto("silence_duration_ms", 0, math.MaxInt32, &td.SilenceDurationMs),
			// §2.1: 5000–30000 or null.
			t.integerInto("idle_timeout_ms", 5000, 30000, &td.IdleTimeoutMs),
		); err != nil {
			return err
		}
	case "semantic_vad":
		if err := t.allow("type", "eagerness", "create_response", "interrupt_response"); err != nil {
			return err
		}
		td.Eagerness = "auto"
		if v, ok, err := t.str("eagerness"); err != nil {
			return err
		} else if ok {
			if levels := []string{"low", "medium", "high", "auto"}; !slices.Contains(levels, v) {
				return errInvalidEnum(t.p("eagerness"), v, levels)
			}
			td.Eagerness = v
		}
	default:
		return errInvalidEnum(t.p("type"), typ, []string{"server_vad", "semantic_vad"})
	}
	if err := firstErr(
		t.booleanInto("create_response", &td.CreateResponse),
		t.booleanInto("interrupt_response", &td.InterruptResponse),
	); err != nil {
		return err
	}
	c.TurnDetection = td
	return nil
}

func applyVoice(c *sessionConfig, o *jobj, voices []string, allowID bool) *apiError {
	if !o.present("voice") {
		return nil
	}
	raw := o.m["voice"]
	if allowID && jsonKind(raw) == "an object" {
		v, _, err := o.object("voice")
		if err != nil {
			return err
		}
		if err := v.allow("id"); err != nil {
			return err
		}
		id, ok, err := v.str("id")
		if err != nil {
			return err
		}
		if !ok {
			return errMissingParam(v.p("id"))
		}
		c.Voice, c.VoiceIsID = id, true
		return nil
	}
	s, _, err := o.str("voice")
	if err != nil {
		return err
	}
	if !slices.Contains(voices, s) {
		return errInvalidEnum(o.p("voice"), s, voices)
	}
	c.Voice, c.VoiceIsID = s, false
	return nil
}

func applySpeed(c *sessionConfig, o *jobj) *apiError {
	// §2.1: 0.25–1.5.
	return o.numberInto("speed", 0.25, 1.5, &c.Speed)
}

// integerOrInf reads max_output_tokens-style values: 1–4096 or "inf".
func (o *jobj) integerOrInf(key string) (json.RawMessage, bool, *apiError) {
	if !o.present(key) {
		return nil, false, nil
	}
	raw := o.m[key]
	if jsonKind(raw) == "a string" {
		s, _, _ := o.str(key)
		if s != "inf" {
			return nil, false, errInvalidEnum(o.p(key), s, []string{"inf"})
		}
		return json.RawMessage(`"inf"`), true, nil
	}
	n, _, err := o.integer(key)
	if err != nil {
		return nil, false, err
	}
	if n < 1 || n > 4096 {
		return nil, false, errOutOfRange(o.p(key), float64(n), 1, 4096)
	}
	return json.RawMessage(itoa(n)), true, nil
}

// renderSession renders the effective config in the dialect's session shape
// (§3.1: GA nested audio object; preview flat).
func renderSession(d realtime.Dialect, c sessionConfig, id string, expiresAt int64) map[string]any {
	tools := make([]json.RawMessage, len(c.Tools))
	copy(tools, c.Tools)
	if d == realtime.DialectPreview {
		mods := []string{"text", "audio"}
		if c.TextOnly {
			mods = []string{"text"}
		}
		return map[string]any{
			"id": id, "object": "realtime.session", "model": c.Model, "expires_at": expiresAt,
			"modalities": mods, "instructions": c.Instructions, "voice": c.Voice,
			"input_audio_format": previewFormatName(c.InputFormat), "output_audio_format": previewFormatName(c.OutputFormat),
			"input_audio_transcription": transcriptionObj(c.Transcription), "input_audio_noise_reduction": noiseObj(c.NoiseReduction),
			"turn_detection": turnDetectionObj(c.TurnDetection, false), "tools": tools, "tool_choice": c.ToolChoice, "temperature": c.Temperature,
			"max_response_output_tokens": c.MaxOutputTokens, "speed": c.Speed, "tracing": c.Tracing, "client_secret": nil,
		}
	}
	mods := []string{"audio"}
	if c.TextOnly {
		mods = []string{"text"}
	}
	var voice any = c.Voice
	if c.VoiceIsID {
		voice = map[string]any{"id": c.Voice}
	}
	var include any
	if c.Include != nil {
		include = c.Include
	}
	s := map[string]any{
		"type": "realtime", "object": "realtime.session", "id": id, "model": c.Model,
		"output_modalities": mods, "instructions": c.Instructions, "tools": tools, "tool_choice": c.ToolChoice,
		"max_output_tokens": c.MaxOutputTokens, "truncation": c.Truncation, "tracing": c.Tracing, "prompt": c.Prompt,
		"expires_at": expiresAt, "include": include,
		"audio": map[string]any{
			"input": map[string]any{
				"format": gaFormatObj(c.InputFormat), "transcription": transcriptionObj(c.Transcription),
				"noise_reduction": noiseObj(c.NoiseReduction), "turn_detection": turnDetectionObj(c.TurnDetection, true),
			},
			"output": map[string]any{"format": gaFormatObj(c.OutputFormat), "voice": voice, "speed": c.Speed},
		},
	}
	if c.Reasoning != nil {
		s["reasoning"] = c.Reasoning
	}
	if c.ParallelToolCall != nil {
		s["parallel_tool_calls"] = c.ParallelToolCall
	}
	return s
}

func transcriptionObj(t *transcription) any {
	if t == nil {
		return nil
	}
	return map[string]any{"model": t.Model, "language": nullIfEmpty(t.Language), "prompt": t.Prompt}
}

// turnDetectionObj renders the VAD config; only GA server_vad carries
// idle_timeout_ms (null when unset).
func turnDetectionObj(t *turnDetection, ga bool) any {
	if t == nil {
		return nil
	}
	m := map[string]any{"type": t.Type, "create_response": t.CreateResponse, "interrupt_response": t.InterruptResponse}
	if t.Type == "semantic_vad" {
		m["eagerness"] = t.Eagerness
		return m
	}
	m["threshold"], m["prefix_padding_ms"], m["silence_duration_ms"] = t.Threshold, t.PrefixPaddingMs, t.SilenceDurationMs
	if ga {
		var idle any
		if t.IdleTimeoutMs > 0 {
			idle = t.IdleTimeoutMs
		}
		m["idle_timeout_ms"] = idle
	}
	return m
}

func gaFormatObj(f realtime.AudioFormat) map[string]any {
	switch f {
	case realtime.FormatPCMU:
		return map[string]any{"type": "audio/pcmu"}
	case realtime.FormatPCMA:
		return map[string]any{"type": "audio/pcma"}
	}
	return map[string]any{"type": "audio/pcm", "rate": 24000}
}

func previewFormatName(f realtime.AudioFormat) string {
	switch f {
	case realtime.FormatPCMU:
		return "g711_ulaw"
	case realtime.FormatPCMA:
		return "g711_alaw"
	}
	return "pcm16"
}

func noiseObj(t string) any {
	if t == "" {
		return nil
	}
	return map[string]any{"type": t}
}

// pyList renders a string list the way the API's messages do: ['a', 'b'].
func pyList(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return slices.Clone(raw)
	}
	return b.Bytes()
}

func itoa(n int) string { return strconv.Itoa(n) }

// firstErr returns the first non-nil error. Its arguments are all evaluated,
// so use it only for checks whose side effects are discarded on error.
func firstErr(errs ...*apiError) *apiError {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
