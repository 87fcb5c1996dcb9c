package sim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

func TestHandshakeAccepted(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	tests := []struct {
		name    string
		path    string
		hdr     http.Header
		preview bool
	}{
		{"openai GA bearer", gaPath, http.Header{"Authorization": {"Bearer sk-test-key-123456"}}, false},
		{"azure GA api-key header", "/openai/v1/realtime?model=my-deployment", http.Header{"api-key": {"sk-test-key-123456"}}, false},
		{"azure GA api-key query", "/openai/v1/realtime?model=my-deployment&api-key=sk-test-key-123456", http.Header{}, false},
		{"azure GA bearer token", "/openai/v1/realtime?model=my-deployment", http.Header{"Authorization": {"Bearer sk-test-key-123456"}}, false},
		{"preview api-key header", previewPath, http.Header{"api-key": {"sk-test-key-123456"}}, true},
		{"preview api-key query", previewPath + "&api-key=sk-test-key-123456", http.Header{}, true},
		{"preview with beta header", previewPath, http.Header{"api-key": {"sk-test-key-123456"}, "OpenAI-Beta": {"realtime=v1"}}, true},
		{"GA subprotocol key", gaPath, http.Header{"Sec-WebSocket-Protocol": {"realtime, openai-insecure-api-key.sk-test-key-123456"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, url+tc.path, tc.hdr)
			ev := c.expect("session.created")
			sess := ev["session"].(map[string]any)
			require.Regexp(t, `^sess_[A-Za-z0-9]{21}$`, sess["id"])
			require.Regexp(t, `^event_`, ev["event_id"])
			require.Equal(t, "realtime.session", sess["object"])
			require.Greater(t, sess["expires_at"].(float64), float64(time.Now().Unix()))
			if tc.preview {
				require.Equal(t, "pcm16", sess["input_audio_format"])
				require.Equal(t, "alloy", sess["voice"])
				require.Equal(t, 0.8, sess["temperature"])
				require.NotContains(t, sess, "type")
				conv := c.expect("conversation.created")["conversation"].(map[string]any)
				require.Equal(t, "realtime.conversation", conv["object"])
				require.Regexp(t, `^conv_`, conv["id"])
				return
			}
			require.Equal(t, "realtime", sess["type"])
			require.Equal(t, []any{"audio"}, sess["output_modalities"])
			in := sess["audio"].(map[string]any)["input"].(map[string]any)
			require.Equal(t, map[string]any{"type": "audio/pcm", "rate": 24000.0}, in["format"])
			require.Nil(t, in["transcription"])
			td := in["turn_detection"].(map[string]any)
			require.Equal(t, "server_vad", td["type"])
			require.Equal(t, 200.0, td["silence_duration_ms"])
			require.Equal(t, "marin", sess["audio"].(map[string]any)["output"].(map[string]any)["voice"])
			c.probe() // GA sends no conversation.created
		})
	}
}

func TestHandshakeRejected(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	tests := []struct {
		name   string
		path   string
		hdr    http.Header
		status int
		code   any
	}{
		{"no key", gaPath, http.Header{}, 401, nil},
		{"wrong bearer", gaPath, http.Header{"Authorization": {"Bearer sk-wrong-key-000000"}}, 401, "invalid_api_key"},
		{"wrong api-key", "/openai/v1/realtime?model=d", http.Header{"api-key": {"nope"}}, 401, "401"},
		// Each route takes only its provider's styles (§1.1, §1.2): never laxer.
		{"api-key header on OpenAI", gaPath, http.Header{"api-key": {"sk-test-key-123456"}}, 401, nil},
		{"api-key query on OpenAI", gaPath + "&api-key=sk-test-key-123456", http.Header{}, 401, nil},
		{"no key on Azure GA", "/openai/v1/realtime?model=d", http.Header{}, 401, "401"},
		{"wrong bearer on preview", previewPath, http.Header{"Authorization": {"Bearer nope"}}, 401, "401"},
		{"subprotocol key on Azure", "/openai/v1/realtime?model=d", http.Header{"Sec-WebSocket-Protocol": {"realtime, openai-insecure-api-key.sk-test-key-123456"}}, 401, "401"},
		{"azure GA with api-version", "/openai/v1/realtime?model=d&api-version=2025-04-01-preview", http.Header{"api-key": {"sk-test-key-123456"}}, 401, "invalid_api_version"},
		{"GA without model", "/v1/realtime", nil, 400, "missing_required_parameter"},
		{"preview without deployment", "/openai/realtime?api-version=2025-04-01-preview", http.Header{"api-key": {"sk-test-key-123456"}}, 400, "missing_required_parameter"},
		{"preview retired api-version", "/openai/realtime?api-version=2024-10-01-preview&deployment=d", http.Header{"api-key": {"sk-test-key-123456"}}, 400, "invalid_api_version"},
		{"unknown path", "/v2/realtime?model=x", nil, 404, "unknown_url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.hdr == nil {
				tc.hdr = http.Header{"Authorization": {"Bearer sk-test-key-123456"}}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, resp, err := websocket.Dial(ctx, url+tc.path, &websocket.DialOptions{HTTPHeader: tc.hdr})
			require.Error(t, err)
			require.NotNil(t, resp)
			require.Equal(t, tc.status, resp.StatusCode)
			var body struct {
				Error map[string]any `json:"error"`
			}
			b, _ := io.ReadAll(resp.Body)
			require.NoError(t, json.Unmarshal(b, &body), string(b))
			require.Equal(t, tc.code, body.Error["code"])
			if tc.code == "401" {
				// Azure's body: code and message only.
				require.True(t, strings.HasPrefix(body.Error["message"].(string), "Access denied due to invalid subscription key"))
				return
			}
			require.Contains(t, body.Error, "param")
			if tc.code == nil && tc.status == 401 {
				require.True(t, strings.HasPrefix(body.Error["message"].(string), "You didn't provide an API key."), body.Error["message"])
			}
			if tc.code == "invalid_api_key" {
				require.Equal(t, "invalid_request_error", body.Error["type"])
				require.True(t, strings.HasPrefix(body.Error["message"].(string), "Incorrect API key provided"))
			}
		})
	}
}

func TestBetaHeaderOnGAIsShutDown(t *testing.T) {
	for _, path := range []string{gaPath, "/openai/v1/realtime?model=d"} {
		t.Run(path, func(t *testing.T) {
			s, url := startSim(t, fastConfig("east"))
			c := dial(t, url+path, http.Header{"Authorization": {"Bearer sk-test-key-123456"}, "OpenAI-Beta": {"realtime=v1"}})
			e := c.expectError("beta_api_shape_disabled")
			require.Equal(t, "invalid_request_error", e["type"])
			require.Equal(t, "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.", e["message"])
			require.Nil(t, e["param"])
			_, err := c.read()
			require.Equal(t, websocket.StatusCode(4000), websocket.CloseStatus(err))
			recs := s.Sessions()
			require.Len(t, recs, 1)
			require.Equal(t, 4000, recs[0].CloseCode)
		})
	}
}

func TestNoAuthWhenKeyEmpty(t *testing.T) {
	cfg := fastConfig("east")
	cfg.APIKey = ""
	_, url := startSim(t, cfg)
	c := dial(t, url+gaPath, http.Header{})
	c.expect("session.created")
}

// TestServeHTTPUnderForeignServer checks the handler works mounted in
// someone else's http.Server (as the binary and httptest do) and that Close
// waits for its sessions.
func TestServeHTTPUnderForeignServer(t *testing.T) {
	s := New(fastConfig("east"))
	hs := httptest.NewServer(s)
	defer hs.Close()
	c := dial(t, "ws"+strings.TrimPrefix(hs.URL, "http")+gaPath, nil)
	c.expect("session.created")
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	_, err := c.read()
	require.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "err %v", err)
	require.NoError(t, <-done)
	require.Equal(t, 1001, s.Sessions()[0].CloseCode)
}
