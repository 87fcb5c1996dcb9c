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
	const region = "regions:\n  - name: a\n    url: ws://127.0.0.1:1/v1/realtime\n"
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
		{"missing filler file", []string{"check", "-config", write("nofiller.yaml", "failover:\n  filler_file: "+filepath.Join(dir, "nope.wav")+"\n"+region)}, 1, "", `failover.filler_file: file "` + filepath.Join(dir, "nope.wav") + `" does not exist`},
		{"relative missing file names the working directory", []string{"check", "-config", write("relfiller.yaml", "failover:\n  apology_file: prompts/none.wav\n"+region)}, 1, "", "relative to the working directory"},
		{"missing tls cert and key", []string{"check", "-config", write("notls.yaml", "sip:\n  tls:\n    listen: 127.0.0.1:5061\n    cert_file: "+filepath.Join(dir, "c.pem")+"\n    key_file: "+filepath.Join(dir, "k.pem")+"\n"+region)}, 1, "", "sip.tls.key_file: file"},
		{"tls files that are not PEM", []string{"check", "-config", write("badtls.yaml", "sip:\n  tls:\n    listen: 127.0.0.1:5061\n    cert_file: "+write("c2.pem", "x")+"\n    key_file: "+write("k2.pem", "y")+"\n"+region)}, 1, "", "not a usable PEM certificate and key pair"},
		{"written zero dial_timeout", []string{"check", "-config", write("dial0.yaml", region+"    dial_timeout: 0s\n")}, 1, "", "regions[0].dial_timeout: 0 is not a usable duration"},
		{"absurd session_limit", []string{"check", "-config", write("limit.yaml", region+"    session_limit: 1ns\n")}, 1, "", "regions[0].session_limit"},
		{"negative duration", []string{"check", "-config", write("neg.yaml", "failover:\n  rotate_margin: -1m\n"+region)}, 1, "", `failover.rotate_margin (line 2): duration "-1m" must not be negative`},
		{"unknown simulator key", []string{"check", "-config", write("simkey.yaml", region+"    simulator:\n      enabled: true\n      voice: 440\n")}, 1, "", `unknown key "voice" in regions[0].simulator`},
		{"unknown fault key", []string{"check", "-config", write("faultkey.yaml", region+"    simulator:\n      faults:\n        fail_sometimes: true\n")}, 1, "", `unknown key "fail_sometimes" in regions[0].simulator.faults`},
		{"bad failure rate", []string{"check", "-config", write("rate.yaml", region+"    simulator:\n      enabled: true\n      faults: {failure_rate: 1.5}\n")}, 1, "", "regions[0].simulator.faults.failure_rate: 1.5 is outside 0..1"},
		{"negative fault duration", []string{"check", "-config", write("expire.yaml", region+"    simulator:\n      enabled: true\n      faults: {expire_after: -1s}\n")}, 1, "", "regions[0].simulator.faults.expire_after"},
		{"bad simulator duration", []string{"check", "-config", write("delay.yaml", region+"    simulator:\n      enabled: true\n      response_delay: soon\n")}, 1, "", "regions[0].simulator.response_delay (line 6): invalid duration"},
		{"missing profile prompt", []string{"check", "-config", write("profprompt.yaml", "assistants:\n  de:\n    prompts: {apology_file: prompts/kein.wav}\n"+region)}, 1, "", `assistants.de.prompts.apology_file: file "prompts/kein.wav" does not exist`},
		{"typo in a caller variable", []string{"check", "-config", write("var.yaml", "assistant:\n  instructions: \"Hi {{caller.form_user}}\"\n"+region)}, 1, "", "assistant.instructions: {{caller.form_user}} is not a caller variable"},
		{"profiles and routes counted", []string{"check", "-config", "../../configs/call-center.yaml"}, 0, "2 assistant profiles, 4 routes", ""},
		{"-dial only with check", []string{"-dial"}, 2, "", "-dial goes with check"},
		{"extra argument", []string{"check", "extra"}, 2, "", "unexpected argument"},
		{"-h lists the subcommands", []string{"-h"}, 0, "sipbridge check [-config FILE]", ""},
		{"help", []string{"help"}, 0, "sipbridge version", ""},
		{"check -h", []string{"check", "-h"}, 0, "sipbridge [serve] [-config FILE]", ""},
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
