package realtime

import (
	"fmt"
	"slices"
	"strings"
)

// Voices each dialect accepts (protocol doc §2.1, §9). The preview (beta)
// shape refuses marin and cedar with "Invalid value: 'marin'. Supported
// values are: 'alloy', 'ash', …" on session.update, so a region speaking it
// could never take a call configured with one of them.
var (
	gaVoices      = []string{"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
	previewVoices = []string{"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse"}
)

// previewVoiceFor is the documented stand-in for each GA-only voice when a
// region speaks the preview dialect and has no voice of its own
// (regions[].voice): marin → coral (both bright, warm female-presenting
// voices), cedar → ash (both lower, male-presenting). The caller hears a
// similar voice instead of a region that can never answer.
var previewVoiceFor = map[string]string{
	"marin": "coral",
	"cedar": "ash",
}

// Voices returns the voices dialect d accepts, in the API's order.
func Voices(d Dialect) []string {
	if d == DialectPreview {
		return slices.Clone(previewVoices)
	}
	return slices.Clone(gaVoices)
}

// VoiceError is a voice that a dialect refuses.
type VoiceError struct {
	Dialect   Dialect
	Voice     string
	Supported []string
}

func (e *VoiceError) Error() string {
	return fmt.Sprintf("realtime: voice %q is not accepted by the %s dialect (supported: %s)",
		e.Voice, e.Dialect, strings.Join(e.Supported, ", "))
}

// ValidateVoice reports whether dialect d accepts voice exactly as given
// (no mapping): nil for "" (the server default) and for a listed voice, a
// *VoiceError otherwise. Use it for a per-region voice (regions[].voice),
// which is sent as written.
func ValidateVoice(d Dialect, voice string) error {
	if voice == "" {
		return nil
	}
	vs := previewVoices
	if d == DialectGA {
		vs = gaVoices
	}
	if slices.Contains(vs, voice) {
		return nil
	}
	return &VoiceError{Dialect: d, Voice: voice, Supported: slices.Clone(vs)}
}

// ResolveVoice is the voice a session in dialect d is configured with:
//   - regionVoice (regions[].voice) when set, which d must accept as is;
//   - else sessionVoice, with a GA-only voice mapped to its documented
//     preview stand-in (marin → coral, cedar → ash) for DialectPreview;
//   - "" stays "" (the server's default voice).
//
// It fails with a *VoiceError when the result is not a voice d accepts, so
// a configuration check can reject it before a call does.
func ResolveVoice(d Dialect, sessionVoice, regionVoice string) (string, error) {
	if regionVoice != "" {
		return regionVoice, ValidateVoice(d, regionVoice)
	}
	v := sessionVoice
	if d == DialectPreview {
		if m, ok := previewVoiceFor[v]; ok {
			v = m
		}
	}
	return v, ValidateVoice(d, v)
}
