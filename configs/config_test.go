package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

func TestExampleConfigsAreValid(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4)
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			_, err := Load(f)
			require.NoError(t, err)
		})
	}
}

func TestMinimalConfigDefaults(t *testing.T) {
	c, err := Load("minimal.yaml")
	require.NoError(t, err)
	require.Equal(t, StringList{"127.0.0.1:5060"}, c.SIP.Listen)
	require.Equal(t, []string{"udp", "tcp"}, c.SIP.Transports)
	require.Equal(t, "auto", c.Assistant.AudioFormat)
	require.Equal(t, "marin", c.Assistant.Voice)
	require.Len(t, c.Regions, 2)
	require.Equal(t, "eastus2", c.Regions[0].Name)
	require.Equal(t, 60*time.Minute, c.Regions[0].SessionLimit.D(), "non-Azure host defaults to the OpenAI limit")
	require.Equal(t, "auto", c.Regions[0].Auth)
	require.Equal(t, 5*time.Second, c.Failover.StallNoResponse.D())

	sc := c.SessionConfig(realtime.FormatPCM24)
	require.Equal(t, DefaultInstructions, sc.Instructions)
	require.NotNil(t, sc.TurnDetection)
	require.Equal(t, "server_vad", sc.TurnDetection.Type)
	require.Equal(t, 500, sc.TurnDetection.SilenceDurationMs)
	require.NotNil(t, sc.Transcription)
	require.Len(t, sc.Tools, 1, "end_call only: no transfer targets configured")

	dc := c.Regions[0].DialConfig(func(k string) string {
		if k == "AZURE_OPENAI_KEY_EASTUS2" {
			return "k1"
		}
		return ""
	})
	require.Equal(t, "k1", dc.APIKey)
	require.Equal(t, realtime.AuthAuto, dc.Auth)
}

func TestAzureSessionLimitDefault(t *testing.T) {
	c, err := Load("azure-two-region.yaml")
	require.NoError(t, err)
	require.Equal(t, 30*time.Minute, c.Regions[0].SessionLimit.D())
	sc := c.SessionConfig(realtime.FormatPCM24)
	require.Len(t, sc.Tools, 2)
	require.Contains(t, string(sc.Tools[1].Parameters), "sip:agents@pbx.contoso.example")
}

func TestDefaultIsLocalSimulated(t *testing.T) {
	c, err := LoadDefault()
	require.NoError(t, err)
	require.Len(t, c.Regions, 2)
	for _, r := range c.Regions {
		require.True(t, r.Simulator.Enabled, r.Name)
		require.Empty(t, r.APIKeyEnv, "the default needs no keys")
	}
	require.Empty(t, c.MissingKeys(os.Getenv))
}

func TestBadConfigNamesTheKey(t *testing.T) {
	base := "regions:\n  - name: a\n    url: ws://127.0.0.1:9001/v1/realtime?model=gpt-realtime\n"
	cases := []struct {
		name, yaml, wantKey string
	}{
		{"unknown top key", "sipp:\n  listen: x\n" + base, `unknown key "sipp" in top level`},
		{"unknown nested key", "sip:\n  lisen: 127.0.0.1:5060\n" + base, `unknown key "lisen" in sip`},
		{"unknown region key", "regions:\n  - name: a\n    url: ws://127.0.0.1:1/v1/realtime\n    api_key: secret\n", `unknown key "api_key" in regions[0]`},
		{"bad listen", "sip:\n  listen: localhost\n" + base, "sip.listen[0]"},
		{"bad transport", "sip:\n  transports: [udp, sctp]\n" + base, "sip.transports[1]"},
		{"unspecified needs advertise", "sip:\n  listen: 0.0.0.0:5060\n" + base, "sip.advertise"},
		{"advertise not a host (the SIP server's rule)", "sip:\n  advertise: sbc_1.example\n" + base, `sip.advertise: "sbc_1.example" is not an IP address or a DNS name`},
		{"negative max_calls", "sip:\n  max_calls: -1\n" + base, "sip.max_calls: -1 is negative"},
		{"user agent with CRLF", "sip:\n  user_agent: \"a\\r\\nX: y\"\n" + base, "sip.user_agent: must not contain CR, LF or NUL"},
		{"bad voice", "assistant:\n  voice: bob\n" + base, "assistant.voice"},
		{"bad format", "assistant:\n  audio_format: opus\n" + base, `assistant.audio_format: "opus" is not auto, pcm24 or g711`},
		{"bad vad", "assistant:\n  turn_detection:\n    type: magic\n" + base, "assistant.turn_detection.type"},
		{"bad threshold", "assistant:\n  turn_detection:\n    threshold: 2\n" + base, "assistant.turn_detection.threshold"},
		{"bad idle", "assistant:\n  turn_detection:\n    idle_timeout_ms: 100\n" + base, "assistant.turn_detection.idle_timeout_ms"},
		{"no regions", "sip:\n  listen: 127.0.0.1:5060\n", "regions: at least one region"},
		{"http url", "regions:\n  - name: a\n    url: https://x/v1/realtime\n", "regions[0].url"},
		{"ga with api-version", "regions:\n  - name: a\n    url: wss://x.openai.azure.com/openai/v1/realtime?model=m&api-version=2025-04-01-preview\n", "regions[0].url"},
		{"key in url", "regions:\n  - name: a\n    url: wss://x.openai.azure.com/openai/v1/realtime?api-key=abc\n", "regions[0].url"},
		{"dup name", base + "  - name: a\n    url: ws://127.0.0.1:9002/v1/realtime\n", "regions[1].name"},
		{"bad env name", "regions:\n  - name: a\n    url: ws://127.0.0.1:1/v1/realtime\n    api_key_env: sk-abc-123\n", "regions[0].api_key_env"},
		{"bad auth", "regions:\n  - name: a\n    url: ws://127.0.0.1:1/v1/realtime\n    auth: basic\n", "regions[0].auth"},
		{"sim not loopback", "regions:\n  - name: a\n    url: ws://10.0.0.1:1/v1/realtime\n    simulator:\n      enabled: true\n", "regions[0].simulator.enabled"},
		{"bad duration", "sip:\n  ack_timeout: soon\n" + base, `sip.ack_timeout (line 2): invalid duration "soon"`},
		{"negative duration", "rtp:\n  media_timeout: -5s\n" + base, `rtp.media_timeout (line 2): duration "-5s" must not be negative`},
		{"wrong type names the key", "sip:\n  max_calls: many\n" + base, "sip.max_calls (line 2)"},
		{"written zero dial_timeout", base + "    dial_timeout: 0s\n", "regions[0].dial_timeout: 0 is not a usable duration"},
		{"written zero stall", "failover:\n  stall_mid_audio: 0s\n" + base, "failover.stall_mid_audio: 0 is not a usable duration"},
		{"absurd session_limit", base + "    session_limit: 1ns\n", "regions[0].session_limit: 1ns is outside"},
		{"session_limit within rotate_margin", base + "    session_limit: 90s\n", "regions[0].session_limit: 1m30s is not longer than failover.rotate_margin"},
		{"absurd dial_timeout", base + "    dial_timeout: 1ms\n", "regions[0].dial_timeout"},
		{"absurd stall", "failover:\n  stall_no_response: 1ms\n" + base, "failover.stall_no_response"},
		{"give-up bound below a second", "failover:\n  give_up_after: 100ms\n" + base, "failover.give_up_after: 100ms is below 1s"},
		{"absurd ack_timeout", "sip:\n  ack_timeout: 1ms\n" + base, "sip.ack_timeout"},
		{"absurd media_timeout", "rtp:\n  media_timeout: 10ms\n" + base, "rtp.media_timeout"},
		{"uplink_chunk not whole frames", "rtp:\n  uplink_chunk: 50ms\n" + base, "rtp.uplink_chunk"},
		{"uplink_chunk too long", "rtp:\n  uplink_chunk: 220ms\n" + base, "rtp.uplink_chunk"},
		{"uplink_chunk too short", "rtp:\n  uplink_chunk: 10ms\n" + base, "rtp.uplink_chunk"},
		{"absurd drain_timeout", "drain_timeout: 1ns\n" + base, "drain_timeout"},
		{"absurd cool_down", "failover:\n  health:\n    cool_down: 1ns\n" + base, "failover.health.cool_down"},
		{"hedge multiple below 1", "failover:\n  hedge:\n    multiple: 0.5\n" + base, "failover.hedge.multiple"},
		{"hedge ceiling below floor", "failover:\n  hedge:\n    floor: 2s\n    ceiling: 1s\n" + base, "failover.hedge.ceiling"},
		{"hedge share above 1", "failover:\n  hedge:\n    process_share: 1.5\n" + base, "failover.hedge.process_share"},
		{"hedge typo", "failover:\n  hedge:\n    enabeld: false\n" + base, "enabeld"},
		{"filler_after without a file", "failover:\n  filler_after: 1s\n" + base, "failover.filler_after"},
		{"negative silence", "assistant:\n  turn_detection:\n    silence_duration_ms: -1\n" + base, "assistant.turn_detection.silence_duration_ms"},
		{"simulator not a mapping", base + "    simulator: yes\n", "expected a mapping"},
		{"bad transfer uri", "assistant:\n  tools:\n    transfer_targets: [\"http://x\"]\n" + base, "assistant.tools.transfer_targets[0]"},
		{"crlf transfer", "failover:\n  give_up_transfer: \"sip:a@b\\r\\nX: y\"\n" + base, "failover.give_up_transfer"},
		{"bad port range", "rtp:\n  port_min: 30000\n  port_max: 20000\n" + base, "rtp.port_min"},
		{"bad log level", "log:\n  level: loud\n" + base, "log.level"},
		{"unknown trunk key", "sip:\n  trunks:\n    - name: t\n      password: x\n" + base, `unknown key "password" in sip.trunks[0]`},
		{"bad trunk name", "sip:\n  trunks:\n    - name: \"a b\"\n      allow: [10.0.0.0/8]\n" + base, "sip.trunks[0].name"},
		{"dup trunk name", "sip:\n  trunks:\n    - {name: t, allow: [10.0.0.1]}\n    - {name: t, allow: [10.0.0.2]}\n" + base, "sip.trunks[1].name"},
		{"bad trunk cidr", "sip:\n  trunks:\n    - name: t\n      allow: [10.0.0.0/33]\n" + base, "sip.trunks[0].allow[0]"},
		{"open trunk", "sip:\n  trunks:\n    - name: t\n" + base, "sip.trunks[0].allow"},
		{"username without password_env", "sip:\n  trunks:\n    - name: t\n      username: u\n" + base, "sip.trunks[0].password_env"},
		{"password_env without username", "sip:\n  trunks:\n    - name: t\n      allow: [10.0.0.1]\n      password_env: P\n" + base, "sip.trunks[0].username"},
		{"password in password_env", "sip:\n  trunks:\n    - name: t\n      username: u\n      password_env: hunter2!\n" + base, "sip.trunks[0].password_env"},
		{"quote in username", "sip:\n  trunks:\n    - name: t\n      username: 'a\"b'\n      password_env: P\n" + base, "sip.trunks[0].username"},
		{"bad realm", "sip:\n  trunks:\n    - name: t\n      username: u\n      password_env: P\n      realm: \"a\\\\b\"\n" + base, "sip.trunks[0].realm"},
		{"bad algorithm", "sip:\n  trunks:\n    - name: t\n      username: u\n      password_env: P\n      algorithms: [SHA-512]\n" + base, "sip.trunks[0].algorithms[0]"},
		{"bad auth limit", "sip:\n  auth_limit:\n    failures: -1\n" + base, "sip.auth_limit.failures"},
		{"unknown auth limit key", "sip:\n  auth_limit:\n    max: 3\n" + base, `unknown key "max" in sip.auth_limit`},
		{"tls without cert", "sip:\n  tls:\n    listen: 127.0.0.1:5061\n    key_file: k.pem\n" + base, "sip.tls.cert_file"},
		{"tls without key", "sip:\n  tls:\n    listen: 127.0.0.1:5061\n    cert_file: c.pem\n" + base, "sip.tls.key_file"},
		{"bad tls listen", "sip:\n  tls:\n    listen: localhost:5061\n    cert_file: c\n    key_file: k\n" + base, "sip.tls.listen"},
		{"tls on the tcp port", "sip:\n  tls:\n    listen: 127.0.0.1:5060\n    cert_file: c\n    key_file: k\n" + base, "sip.tls.listen"},
		{"unknown tls key", "sip:\n  tls:\n    port: 5061\n" + base, `unknown key "port" in sip.tls`},
		{"min_se below 1s", "sip:\n  min_se: 500ms\n" + base, "sip.min_se"},
		{"min_se fraction", "sip:\n  min_se: 1500ms\n" + base, "sip.min_se"},
		{"session_expires below min_se", "sip:\n  session_expires: 60s\n" + base, "sip.session_expires"},
		{"session_expires fraction", "sip:\n  session_expires: 1800500ms\n" + base, "sip.session_expires"},
		{"bad refresher", "sip:\n  session_refresher: proxy\n" + base, "sip.session_refresher"},
		{"unknown dtmf key", "assistant:\n  dtmf:\n    speak: true\n" + base, `unknown key "speak" in assistant.dtmf`},
		{"negative max_sessions", base + "    max_sessions: -2\n", "regions[0].max_sessions: -2 is negative"},
		{"negative weight", base + "    weight: -1\n", "regions[0].weight: -1 is not a non-negative number"},
		{"negative price", base + "    prices:\n      output_audio: -3\n", "regions[0].prices.output_audio: -3 is negative"},
		{"unknown price key", base + "    prices:\n      audio_out: 3\n", `unknown key "audio_out" in regions[0].prices`},
		{"records sync", "records:\n  path: /tmp/x.jsonl\n  sync: always\n" + base, `records.sync: "always" is not batch or none`},
		{"transcripts without a path", "records:\n  transcripts: true\n" + base, "records.transcripts"},
		{"unknown records key", "records:\n  file: x\n" + base, `unknown key "file" in records`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantKey)
		})
	}
}

// The capacity keys and records section reach their packages as written.
func TestCapacityAndRecordsKeys(t *testing.T) {
	cfg, err := Parse([]byte(`records:
  path: /var/lib/sipbridge/calls.jsonl
  transcripts: true
  redact_keep_digits: 4
regions:
  - name: a
    url: ws://127.0.0.1:9001/v1/realtime?model=gpt-realtime
    max_sessions: 40
    weight: 3
    priority: 0
    prices:
      input_text: 4
      output_audio: 64
  - name: b
    url: ws://127.0.0.1:9002/v1/realtime?model=gpt-realtime
`))
	require.NoError(t, err)
	a, b := cfg.Regions[0].CapacityRegion(), cfg.Regions[1].CapacityRegion()
	require.Equal(t, 40, a.MaxSessions)
	require.Equal(t, 3.0, a.Weight)
	require.NotNil(t, a.Priority)
	require.Equal(t, 0, *a.Priority)
	require.Nil(t, b.Priority, "unset: the list order decides")
	require.Equal(t, 64.0, cfg.Regions[0].Prices.Prices().OutputAudio)
	require.Nil(t, cfg.Regions[1].Prices)
	w := cfg.Records.WriterConfig()
	require.Equal(t, "/var/lib/sipbridge/calls.jsonl", w.Path)
	require.True(t, w.Transcripts)
	require.Equal(t, "sip:+xxxxxxxxx5678@h", w.Redact("sip:+4915112345678@h"))
}

func TestMissingKeysReported(t *testing.T) {
	c, err := Load("minimal.yaml")
	require.NoError(t, err)
	m := c.MissingKeys(func(string) string { return "" })
	require.Len(t, m, 2)
	require.True(t, strings.Contains(m[0], "AZURE_OPENAI_KEY_EASTUS2"))
}

func TestInDialogDefaults(t *testing.T) {
	base := "regions:\n  - name: a\n    url: ws://127.0.0.1:9001/v1/realtime?model=gpt-realtime\n"
	tests := []struct {
		name      string
		yaml      string
		expires   time.Duration
		minSE     time.Duration
		refresher string
		dtmf      DTMF
	}{
		{name: "defaults", yaml: base, expires: 30 * time.Minute, minSE: 90 * time.Second, refresher: "uas",
			dtmf: DTMF{Enabled: ptr(true), Respond: ptr(true)}},
		{name: "set", yaml: "sip:\n  session_expires: 10m\n  min_se: 120s\n  session_refresher: uac\nassistant:\n  dtmf:\n    respond: false\n" + base,
			expires: 10 * time.Minute, minSE: 120 * time.Second, refresher: "uac", dtmf: DTMF{Enabled: ptr(true), Respond: ptr(false)}},
		{name: "min_se above the default interval raises it", yaml: "sip:\n  min_se: 1h\n" + base,
			expires: time.Hour, minSE: time.Hour, refresher: "uas", dtmf: DTMF{Enabled: ptr(true), Respond: ptr(true)}},
		{name: "short for tests", yaml: "sip:\n  session_expires: 4s\n  min_se: 2s\nassistant:\n  dtmf:\n    enabled: false\n" + base,
			expires: 4 * time.Second, minSE: 2 * time.Second, refresher: "uas", dtmf: DTMF{Enabled: ptr(false), Respond: ptr(true)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			require.NoError(t, err)
			require.Equal(t, tc.expires, c.SIP.SessionExpires.D())
			require.Equal(t, tc.minSE, c.SIP.MinSE.D())
			require.Equal(t, tc.refresher, c.SIP.SessionRefresher)
			require.Equal(t, tc.dtmf, c.Assistant.DTMF)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSimulatorSectionIsLeftToTheSimulator(t *testing.T) {
	c, err := Parse([]byte("regions:\n  - name: a\n    url: ws://127.0.0.1:9001/v1/realtime\n    simulator:\n      enabled: true\n      faults:\n        fail_sometimes: true\n"))
	require.NoError(t, err, "configs reads only simulator.enabled; the binary decodes the rest")
	require.True(t, c.Regions[0].Simulator.Enabled)
	require.NotNil(t, c.Regions[0].Simulator.Section)

	var s struct {
		Enabled bool `yaml:"enabled"`
		Faults  struct {
			FailureRate float64 `yaml:"failure_rate"`
		} `yaml:"faults"`
	}
	err = DecodeSection(c.Regions[0].Simulator.Section, "regions[0].simulator", &s)
	require.ErrorContains(t, err, `line 7: unknown key "fail_sometimes" in regions[0].simulator.faults`)
}
