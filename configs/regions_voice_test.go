package configs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRegionVoicePerDialect: a voice the region's dialect refuses is caught
// by check on the key that chose it; a GA-only assistant voice is mapped in
// a preview region and passes.
func TestRegionVoicePerDialect(t *testing.T) {
	const preview = "ws://127.0.0.1:9/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-realtime"
	const ga = "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime"
	for _, tc := range []struct {
		name, assistantVoice, url, regionVoice, wantKey string
	}{
		{"GA voice in a GA region", "marin", ga, "", ""},
		{"GA-only voice mapped in a preview region", "marin", preview, "", ""},
		{"region override a preview region accepts", "marin", preview, "sage", ""},
		{"region override the preview shape refuses", "alloy", preview, "cedar", "regions[0].voice"},
		{"unknown region voice", "marin", ga, "robot", "regions[0].voice"},
		{"unknown assistant voice", "robot", ga, "", "assistant.voice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := "assistant:\n  voice: " + tc.assistantVoice + "\nregions:\n  - name: r1\n    url: " + tc.url + "\n"
			if tc.regionVoice != "" {
				y += "    voice: " + tc.regionVoice + "\n"
			}
			cfg, err := Parse([]byte(y))
			if tc.wantKey == "" {
				require.NoError(t, err)
				require.Equal(t, tc.regionVoice, cfg.Regions[0].DialConfig(func(string) string { return "" }).Voice)
				return
			}
			require.Error(t, err)
			require.True(t, strings.Contains(err.Error(), tc.wantKey), "error %q names %s", err, tc.wantKey)
		})
	}
}

func TestTurnDetectionNoneRefused(t *testing.T) {
	_, err := Parse([]byte("assistant:\n  turn_detection:\n    type: none\nregions:\n  - name: r1\n    url: ws://127.0.0.1:9/v1/realtime\n"))
	require.ErrorContains(t, err, "assistant.turn_detection.type")
}

// TestProfileVoicePerDialect: a profile's own voice is checked in the
// regions its calls may use.
func TestProfileVoicePerDialect(t *testing.T) {
	const preview = "ws://127.0.0.1:9/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-realtime"
	base := "regions:\n  - name: ga\n    url: ws://127.0.0.1:9/v1/realtime\n  - name: beta\n    url: " + preview + "\n"
	_, err := Parse([]byte("assistants:\n  sales:\n    voice: robot\n" + base))
	require.ErrorContains(t, err, "assistants.sales.voice")
	_, err = Parse([]byte("assistants:\n  sales:\n    voice: cedar\n" + base))
	require.NoError(t, err, "cedar maps to its preview stand-in")
}
