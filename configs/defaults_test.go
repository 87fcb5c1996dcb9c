package configs

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/failover/webhook"
	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip"
)

// readmeDefaults maps each key cell of configs/README.md's tables to the
// backticked values of its default cell.
func readmeDefaults(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	tick := regexp.MustCompile("`([^`]*)`")
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		var vals []string
		for _, m := range tick.FindAllStringSubmatch(cells[2], -1) {
			vals = append(vals, m[1])
		}
		out[strings.TrimSpace(cells[1])] = vals
	}
	return out
}

// sameValue reports whether the README's text says want.
func sameValue(text string, want any) bool {
	switch w := want.(type) {
	case time.Duration:
		d, err := time.ParseDuration(text)
		return err == nil && d == w
	case int:
		n, err := strconv.Atoi(text)
		return err == nil && n == w
	case float64:
		f, err := strconv.ParseFloat(text, 64)
		return err == nil && f == w
	case bool:
		v, err := strconv.ParseBool(text)
		return err == nil && v == w
	case []string:
		return text == "["+strings.Join(w, ", ")+"]"
	}
	return text == fmt.Sprint(want)
}

// TestDefaultsAgreeWithREADME: every default README.md states is the
// owning package's constant, and a config that sets nothing gets it.
func TestDefaultsAgreeWithREADME(t *testing.T) {
	c, err := Parse([]byte("regions:\n  - name: a\n    url: ws://127.0.0.1:9001/v1/realtime?model=gpt-realtime\n" +
		"  - name: az\n    url: wss://r.openai.azure.com/openai/v1/realtime?model=d\n" +
		"sip:\n  register:\n    - {registrar: \"sip:pbx.example\", aor: \"sip:bot@example\"}\n" +
		"  trunks:\n    - {name: t, allow: [10.0.0.1]}\n" +
		"assistant:\n  tools:\n    webhooks:\n      - {name: w, description: d, url: \"http://127.0.0.1:1/\"}\n"))
	require.NoError(t, err)
	r0, az := c.Regions[0], c.Regions[1]
	d := func(x Duration) time.Duration { return x.D() }
	cases := []struct {
		key  string // the README's key cell
		want []any  // the owning constants
		got  []any  // what a config without the key gets
	}{
		{"`sip.listen`", []any{DefaultSIPListen}, []any{c.SIP.Listen[0]}},
		{"`sip.transports`", []any{DefaultTransports()}, []any{[]string(c.SIP.Transports)}},
		{"`sip.user_agent`", []any{sip.DefaultUserAgent}, []any{c.SIP.UserAgent}},
		{"`sip.max_calls`", []any{0}, []any{c.SIP.MaxCalls}},
		{"`sip.ack_timeout`", []any{sip.DefaultACKTimeout}, []any{d(c.SIP.ACKTimeout)}},
		{"`sip.answer_when_ready`", []any{DefaultAnswerWhenReady}, []any{*c.SIP.AnswerWhenReady}},
		{"`sip.answer_timeout`", []any{sip.DefaultAnswerTimeout}, []any{d(c.SIP.AnswerTimeout)}},
		{"`sip.session_expires`", []any{sip.DefaultSessionExpires}, []any{d(c.SIP.SessionExpires)}},
		{"`sip.min_se`", []any{sip.DefaultMinSE}, []any{d(c.SIP.MinSE)}},
		{"`sip.session_refresher`", []any{DefaultSessionRefresher}, []any{c.SIP.SessionRefresher}},
		{"`sip.auth_limit.failures`", []any{sip.DefaultAuthFailures}, []any{c.SIP.AuthLimit.Failures}},
		{"`sip.auth_limit.window`", []any{sip.DefaultAuthWindow}, []any{d(c.SIP.AuthLimit.Window)}},
		{"`sip.auth_limit.block`", []any{sip.DefaultAuthBlock}, []any{d(c.SIP.AuthLimit.Block)}},
		{"`sip.limits.max_unconfirmed_per_source`", []any{sip.DefaultMaxUnconfirmedPerSource}, []any{c.SIP.Limits.MaxUnconfirmedPerSource}},
		{"`sip.limits.options_per_second`", []any{sip.DefaultOptionsRate}, []any{c.SIP.Limits.OptionsPerSecond}},
		{"`sip.limits.max_connections`", []any{sip.DefaultMaxConnections}, []any{c.SIP.Limits.MaxConnections}},
		{"`sip.limits.max_connections_per_source`", []any{sip.DefaultMaxConnectionsPerSource}, []any{c.SIP.Limits.MaxConnectionsPerSource}},
		{"`sip.limits.tcp_idle_timeout`", []any{sip.DefaultStreamIdleTimeout}, []any{d(c.SIP.Limits.TCPIdleTimeout)}},
		{"`sip.register[].expires`", []any{sip.DefaultRegisterExpires}, []any{d(c.SIP.Register[0].Expires)}},
		{"`rtp.port_min`, `rtp.port_max`", []any{DefaultRTPPortMin, DefaultRTPPortMax}, []any{c.RTP.PortMin, c.RTP.PortMax}},
		{"`rtp.symmetric`", []any{DefaultSymmetric}, []any{*c.RTP.Symmetric}},
		{"`rtp.latch_before_send`", []any{false}, []any{c.RTP.LatchBeforeSend}},
		{"`rtp.media_timeout`", []any{sip.DefaultMediaTimeout}, []any{d(c.RTP.MediaTimeout)}},
		{"`rtp.comfort_noise_dbov`", []any{media.DefaultComfortNoiseDBov}, []any{c.RTP.ComfortNoiseDBov}},
		{"`rtp.uplink_chunk`", []any{media.DefaultUplinkChunk}, []any{d(c.RTP.UplinkChunk)}},
		{"`assistant.voice`", []any{DefaultVoice}, []any{c.Assistant.Voice}},
		{"`assistant.audio_format`", []any{DefaultAudioFormat}, []any{c.Assistant.AudioFormat}},
		{"`assistant.turn_detection.type`", []any{DefaultTurnDetectionType}, []any{c.Assistant.TurnDetection.Type}},
		{"`assistant.turn_detection.threshold`", []any{DefaultVADThreshold}, []any{*c.Assistant.TurnDetection.Threshold}},
		{"`assistant.turn_detection.prefix_padding_ms`", []any{DefaultPrefixPaddingMs}, []any{*c.Assistant.TurnDetection.PrefixPaddingMs}},
		{"`assistant.turn_detection.silence_duration_ms`", []any{DefaultSilenceDurationMs}, []any{*c.Assistant.TurnDetection.SilenceDurationMs}},
		{"`assistant.turn_detection.create_response`", []any{DefaultCreateResponse}, []any{*c.Assistant.TurnDetection.CreateResponse}},
		{"`assistant.turn_detection.interrupt_response`", []any{DefaultInterruptResponse}, []any{*c.Assistant.TurnDetection.InterruptResponse}},
		{"`assistant.turn_detection.idle_timeout_ms`", []any{0}, []any{c.Assistant.TurnDetection.IdleTimeoutMs}},
		{"`assistant.transcription.enabled`", []any{DefaultTranscription}, []any{*c.Assistant.Transcription.Enabled}},
		{"`assistant.transcription.model`", []any{DefaultTranscriptionModel}, []any{c.Assistant.Transcription.Model}},
		{"`assistant.tools.end_call`", []any{DefaultEndCallTool}, []any{*c.Assistant.Tools.EndCall}},
		{"`assistant.tools.webhooks[].timeout`", []any{webhook.DefaultTimeout}, []any{d(c.Assistant.Tools.Webhooks[0].Timeout)}},
		{"`assistant.dtmf.enabled`", []any{DefaultDTMFEnabled}, []any{*c.Assistant.DTMF.Enabled}},
		{"`assistant.dtmf.respond`", []any{DefaultDTMFRespond}, []any{*c.Assistant.DTMF.Respond}},
		{"`regions[].auth`", []any{DefaultAuth}, []any{r0.Auth}},
		{"`regions[].session_limit`", []any{realtime.SessionLimitAzure, realtime.SessionLimitOpenAI}, []any{d(az.SessionLimit), d(r0.SessionLimit)}},
		{"`regions[].dial_timeout`", []any{realtime.DefaultDialTimeout}, []any{d(r0.DialTimeout)}},
		{"`regions[].warm_standby`", []any{false}, []any{r0.WarmStandby}},
		{"`failover.stall_no_response`", []any{failover.DefaultStallNoResponse}, []any{d(c.Failover.StallNoResponse)}},
		{"`failover.stall_first_audio`", []any{failover.DefaultStallFirstAudio}, []any{d(c.Failover.StallFirstAudio)}},
		{"`failover.stall_mid_audio`", []any{failover.DefaultStallMidAudio}, []any{d(c.Failover.StallMidAudio)}},
		{"`failover.max_swaps_in_row`", []any{failover.DefaultMaxSwapsInRow}, []any{c.Failover.MaxSwapsInRow}},
		{"`failover.give_up_after`", []any{failover.DefaultGiveUpAfter}, []any{d(c.Failover.GiveUpAfter)}},
		{"`failover.rotate_margin`", []any{failover.DefaultRotateMargin}, []any{d(c.Failover.RotateMargin)}},
		{"`failover.filler_after`", []any{time.Duration(0)}, []any{d(c.Failover.FillerAfter)}},
		{"`failover.health.window`", []any{failover.DefaultHealthWindow}, []any{d(c.Failover.Health.Window)}},
		{"`failover.health.min_samples`", []any{failover.DefaultMinSamples}, []any{c.Failover.Health.MinSamples}},
		{"`failover.health.failure_ratio`", []any{failover.DefaultFailureRatio}, []any{c.Failover.Health.FailureRatio}},
		{"`failover.health.cool_down`", []any{failover.DefaultCoolDown}, []any{d(c.Failover.Health.CoolDown)}},
		{"`failover.hedge.enabled`", []any{failover.DefaultHedgeEnabled}, []any{*c.Failover.Hedge.Enabled}},
		{"`failover.hedge.multiple`", []any{failover.DefaultHedgeMultiple}, []any{c.Failover.Hedge.Multiple}},
		{"`failover.hedge.floor`", []any{failover.DefaultHedgeFloor}, []any{d(c.Failover.Hedge.Floor)}},
		{"`failover.hedge.ceiling`", []any{failover.DefaultHedgeCeiling}, []any{d(c.Failover.Hedge.Ceiling)}},
		{"`failover.hedge.window`", []any{failover.DefaultTTFAWindow}, []any{d(c.Failover.Hedge.Window)}},
		{"`failover.hedge.call_share`", []any{failover.DefaultHedgeCallShare}, []any{c.Failover.Hedge.CallShare}},
		{"`failover.hedge.process_share`", []any{failover.DefaultHedgeShare}, []any{c.Failover.Hedge.ProcessShare}},
		{"`admin.listen`", []any{DefaultAdminListen}, []any{c.Admin.Listen}},
		{"`log.level`", []any{DefaultLogLevel}, []any{c.Log.Level}},
		{"`log.format`", []any{DefaultLogFormat}, []any{c.Log.Format}},
		{"`drain_timeout`", []any{DefaultDrainTimeout}, []any{d(c.DrainTimeout)}},
	}
	readme := readmeDefaults(t, "README.md")
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			require.Equal(t, tc.want, tc.got, "a config without the key gets the owner's constant")
			vals, ok := readme[tc.key]
			require.True(t, ok, "README.md has no row for %s", tc.key)
			require.GreaterOrEqual(t, len(vals), len(tc.want), "README.md's default for %s: %q", tc.key, vals)
			for i, w := range tc.want {
				require.True(t, sameValue(vals[i], w), "README.md says %s defaults to %q; the code says %v", tc.key, vals[i], w)
			}
		})
	}
}
