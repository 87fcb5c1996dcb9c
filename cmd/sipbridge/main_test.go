package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	cases := []struct {
		name        string
		args        []string
		code        int
		out, errOut string
	}{
		{"embedded default", []string{"check"}, 0, "embedded default: OK (2 regions", ""},
		{"minimal example", []string{"check", "-config", "../../configs/minimal.yaml"}, 0, "OK (2 regions", "AZURE_OPENAI_KEY_EASTUS2"},
		{"unknown key", []string{"check", "-config", write("bad.yaml", "sip:\n  lisen: 127.0.0.1:5060\nregions:\n  - name: a\n    url: ws://127.0.0.1:1/v1/realtime\n")}, 1, "", `unknown key "lisen" in sip`},
		{"bad value", []string{"check", "-config", write("bad2.yaml", "regions:\n  - name: a\n    url: http://x/v1/realtime\n")}, 1, "", "regions[0].url"},
		{"missing file", []string{"check", "-config", filepath.Join(dir, "nope.yaml")}, 1, "", "no such file"},
		{"bad filler file", []string{"check", "-config", write("bad3.yaml", "failover:\n  filler_file: "+write("x.wav", "not a wav")+"\nregions:\n  - name: a\n    url: ws://127.0.0.1:1/v1/realtime\n")}, 1, "", "failover.filler_file"},
		{"extra argument", []string{"check", "extra"}, 2, "", "unexpected argument"},
		{"version", []string{"version"}, 0, "sipbridge dev", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			t.Setenv("AZURE_OPENAI_KEY_EASTUS2", "")
			code := run(tc.args, &out, &errOut)
			require.Equal(t, tc.code, code, "stdout %q stderr %q", out.String(), errOut.String())
			require.Contains(t, out.String(), tc.out)
			require.Contains(t, errOut.String(), tc.errOut)
		})
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	p := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte("regions: []\n"), 0o600))
	require.Equal(t, 1, run([]string{"-config", p}, &out, &errOut))
	require.Contains(t, errOut.String(), "regions: at least one region")
}
