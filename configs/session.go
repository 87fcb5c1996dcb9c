package configs

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/sipbridge/sipbridge/realtime"
)

// Names of the call-control tools the bridge itself implements.
const (
	ToolEndCall      = "end_call"
	ToolTransferCall = "transfer_call"
)

// SessionConfig renders the assistant section as the session.update every
// region receives. format is the wire audio format toward the model (pcm24, or
// the call's G.711 law when audio_format is g711).
func (c *Config) SessionConfig(format realtime.AudioFormat) realtime.SessionConfig {
	a := c.Assistant
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
	sc.Tools = append(sc.Tools, c.webhookTools()...) // extensions.go
	return sc
}

// DialConfig is how to reach a region; the key comes from the environment.
func (r Region) DialConfig(getenv func(string) string) realtime.DialConfig {
	dc := realtime.DialConfig{Region: r.Name, URL: r.URL, DialTimeout: r.DialTimeout.D()}
	if r.APIKeyEnv != "" {
		dc.APIKey = getenv(r.APIKeyEnv)
	}
	switch r.Auth {
	case "api-key":
		dc.Auth = realtime.AuthAPIKey
	case "bearer":
		dc.Auth = realtime.AuthBearer
	}
	return dc
}

// ListenAddr is the host:port a simulated region listens on (from its URL).
func (r Region) ListenAddr() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return ""
	}
	return u.Host
}

// IsPreview reports whether the region's URL selects the preview dialect.
func (r Region) IsPreview() bool {
	u, err := url.Parse(r.URL)
	return err == nil && strings.HasSuffix(u.Path, "/openai/realtime") && u.Query().Has("api-version")
}
