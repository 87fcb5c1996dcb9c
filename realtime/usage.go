package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Usage is what one response cost, from the `usage` object of
// response.done (§3.7) or of a transcription's completed event (§3.5).
//
// Token usage (Kind "tokens") counts input and output tokens with their
// text/audio/image split. Cached input tokens are part of the input counts
// (CachedText ⊆ InputText, CachedAudio ⊆ InputAudio); they are billed at
// the cached price. Duration usage (Kind "duration", only from
// transcription models) carries Seconds and no tokens.
//
// The JSON tags are the call record's flat shape, not the wire shape:
// decode wire bytes with DecodeUsage.
type Usage struct {
	Kind         string `json:"kind,omitempty"` // UsageTokens or UsageDuration
	TotalTokens  int64  `json:"total_tokens,omitempty"`
	InputTokens  int64  `json:"input_tokens,omitempty"`
	OutputTokens int64  `json:"output_tokens,omitempty"`

	InputText   int64 `json:"input_text,omitempty"`
	InputAudio  int64 `json:"input_audio,omitempty"`
	InputImage  int64 `json:"input_image,omitempty"`
	InputCached int64 `json:"input_cached,omitempty"` // all cached input tokens
	CachedText  int64 `json:"cached_text,omitempty"`
	CachedAudio int64 `json:"cached_audio,omitempty"`
	CachedImage int64 `json:"cached_image,omitempty"`
	OutputText  int64 `json:"output_text,omitempty"`
	OutputAudio int64 `json:"output_audio,omitempty"`

	Seconds float64 `json:"seconds,omitempty"` // duration usage
}

// Usage kinds.
const (
	UsageTokens   = "tokens"
	UsageDuration = "duration"
)

// IsZero reports whether u carries nothing (a null or absent usage).
func (u Usage) IsZero() bool { return u == Usage{} }

// Add accumulates v into u (kinds merge to "tokens" when both carry tokens).
func (u *Usage) Add(v Usage) {
	if u.Kind == "" {
		u.Kind = v.Kind
	}
	u.TotalTokens += v.TotalTokens
	u.InputTokens += v.InputTokens
	u.OutputTokens += v.OutputTokens
	u.InputText += v.InputText
	u.InputAudio += v.InputAudio
	u.InputImage += v.InputImage
	u.InputCached += v.InputCached
	u.CachedText += v.CachedText
	u.CachedAudio += v.CachedAudio
	u.CachedImage += v.CachedImage
	u.OutputText += v.OutputText
	u.OutputAudio += v.OutputAudio
	u.Seconds += v.Seconds
}

// DecodeUsage reads the wire `usage` object of response.done (GA and
// preview: both use input_token_details/output_token_details; the plural
// spelling input_tokens_details seen in some clients is accepted too) or a
// duration usage {"type":"duration","seconds":N}.
//
// Like DecodeServerEvent it is lenient: every field is optional, a field of
// an unexpected JSON type is ignored, and absent totals are derived from
// their parts (input = text+audio+image, total = input+output). null or
// empty input gives a zero Usage and no error. It fails only when data is
// not a JSON object, so one odd field never hides what a response cost.
func DecodeUsage(data []byte) (Usage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return Usage{}, nil
	}
	top, err := usageObject(data)
	if err != nil {
		return Usage{}, fmt.Errorf("realtime: decode usage: %w", err)
	}
	var u Usage
	if kind, ok := usageString(top["type"]); ok && kind == UsageDuration {
		u.Kind = UsageDuration
		u.Seconds = usageFloat(top["seconds"])
		return u, nil
	}
	u.Kind = UsageTokens
	u.TotalTokens = usageInt(top["total_tokens"])
	u.InputTokens = usageInt(top["input_tokens"])
	u.OutputTokens = usageInt(top["output_tokens"])

	in := usageSub(top, "input_token_details", "input_tokens_details")
	u.InputText = usageInt(in["text_tokens"])
	u.InputAudio = usageInt(in["audio_tokens"])
	u.InputImage = usageInt(in["image_tokens"])
	u.InputCached = usageInt(in["cached_tokens"])
	cached := usageSub(in, "cached_tokens_details")
	u.CachedText = usageInt(cached["text_tokens"])
	u.CachedAudio = usageInt(cached["audio_tokens"])
	u.CachedImage = usageInt(cached["image_tokens"])

	out := usageSub(top, "output_token_details", "output_tokens_details")
	u.OutputText = usageInt(out["text_tokens"])
	u.OutputAudio = usageInt(out["audio_tokens"])

	// Derive what was left out. Cached tokens without a split are text:
	// the instructions and tools are what the cache mostly holds.
	if u.InputTokens == 0 {
		u.InputTokens = u.InputText + u.InputAudio + u.InputImage
	}
	if u.OutputTokens == 0 {
		u.OutputTokens = u.OutputText + u.OutputAudio
	}
	if u.TotalTokens == 0 {
		u.TotalTokens = u.InputTokens + u.OutputTokens
	}
	if u.InputCached == 0 {
		u.InputCached = u.CachedText + u.CachedAudio + u.CachedImage
	}
	if u.InputCached > 0 && u.CachedText+u.CachedAudio+u.CachedImage == 0 {
		u.CachedText = min(u.InputCached, u.InputText)
	}
	return u, nil
}

func usageObject(data []byte) (map[string]json.RawMessage, error) {
	if len(data) == 0 || data[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// usageSub returns the first of the named sub-objects that is an object.
func usageSub(m map[string]json.RawMessage, names ...string) map[string]json.RawMessage {
	for _, n := range names {
		raw := bytes.TrimSpace(m[n])
		if len(raw) == 0 || raw[0] != '{' {
			continue
		}
		if sub, err := usageObject(raw); err == nil {
			return sub
		}
	}
	return nil
}

// usageInt reads a non-negative token count; anything else is 0.
func usageInt(raw json.RawMessage) int64 {
	f := usageFloat(raw)
	if f <= 0 || f > math.MaxInt64/2 {
		return 0
	}
	return int64(f)
}

func usageFloat(raw json.RawMessage) float64 {
	var f float64
	if len(raw) == 0 || json.Unmarshal(raw, &f) != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0
	}
	return f
}

func usageString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// Purpose says why a response was asked for; token accounting and records
// are broken down by it.
type Purpose string

// Purposes.
const (
	PurposeAnswer   Purpose = "answer"   // the answer to a caller turn
	PurposeReplay   Purpose = "replay"   // re-asked in a new session after a swap
	PurposeHedge    Purpose = "hedge"    // a second session racing the primary for one turn
	PurposeRotation Purpose = "rotation" // spent moving the conversation to a fresh session
)

// Prices are one region's prices in currency units per million tokens of
// each kind (0: not priced). Cached input is billed at the cached price
// instead of the input price; duration usage at PerMinute.
type Prices struct {
	InputText   float64 `json:"input_text,omitempty"`
	InputAudio  float64 `json:"input_audio,omitempty"`
	InputImage  float64 `json:"input_image,omitempty"`
	CachedText  float64 `json:"cached_text,omitempty"`
	CachedAudio float64 `json:"cached_audio,omitempty"`
	CachedImage float64 `json:"cached_image,omitempty"`
	OutputText  float64 `json:"output_text,omitempty"`
	OutputAudio float64 `json:"output_audio,omitempty"`
	PerMinute   float64 `json:"per_minute,omitempty"` // duration usage
}

// Cost estimates what u cost at p.
func (p Prices) Cost(u Usage) float64 {
	if u.Kind == UsageDuration {
		return u.Seconds / 60 * p.PerMinute
	}
	uncached := func(all, cached int64) float64 { return float64(max(all-cached, 0)) }
	c := uncached(u.InputText, u.CachedText)*p.InputText +
		uncached(u.InputAudio, u.CachedAudio)*p.InputAudio +
		uncached(u.InputImage, u.CachedImage)*p.InputImage +
		float64(u.CachedText)*p.CachedText +
		float64(u.CachedAudio)*p.CachedAudio +
		float64(u.CachedImage)*p.CachedImage +
		float64(u.OutputText)*p.OutputText +
		float64(u.OutputAudio)*p.OutputAudio
	return c / 1e6
}

// Played says how much of a response's audio reached the caller.
type Played struct {
	AudioMs  int64 // audio the response produced
	PlayedMs int64 // of which the caller heard
	LostRace bool  // a hedge (or primary) that lost the race to first audio
}

// WastedTokens is the first-class "tokens spent on answers the caller
// never heard" figure for one response:
//   - a failed response, or one that lost a hedge race: all its tokens;
//   - any other response of which the caller heard nothing while it
//     produced audio or ended cancelled/incomplete: all its tokens;
//   - a response truncated (barge-in, cancel, swap) after part was heard:
//     its output tokens in proportion to the audio not played;
//   - a completed response played to the end: none.
func WastedTokens(u Usage, status string, p Played) int64 {
	switch {
	case u.Kind == UsageDuration:
		return 0
	case status == StatusFailed || p.LostRace:
		return u.TotalTokens
	case p.PlayedMs <= 0 && (p.AudioMs > 0 || status == StatusCancelled || status == StatusIncomplete):
		return u.TotalTokens
	case p.AudioMs > 0 && p.PlayedMs < p.AudioMs:
		return int64(math.Round(float64(u.OutputTokens) * float64(p.AudioMs-p.PlayedMs) / float64(p.AudioMs)))
	}
	return 0
}
