package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryShippedConfigPassesCheck runs `sipbridge check` over every file in
// configs/ as shipped, from the repository root (where the relative prompt
// paths resolve, as they do from /etc/sipbridge in the image).
func TestEveryShippedConfigPassesCheck(t *testing.T) {
	t.Chdir("../..")
	files, err := filepath.Glob("configs/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run([]string{"check", "-config", f}, &out, &errOut)
			require.Equal(t, 0, code, "stdout %q stderr %q", out.String(), errOut.String())
			require.Contains(t, out.String(), f+": OK")
		})
	}
}

// TestBundledPromptsLoad: every WAV under prompts/ is in a format the prompt
// loader takes, and holds audio.
func TestBundledPromptsLoad(t *testing.T) {
	files, err := filepath.Glob("../../prompts/*.wav")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 3)
	for _, f := range files {
		p, err := loadPrompt(f)
		require.NoError(t, err, f)
		require.Equal(t, 8000, p.rate, f)
		require.Greater(t, len(p.samples), 8000/2, "%s: under half a second", f)
	}
}
