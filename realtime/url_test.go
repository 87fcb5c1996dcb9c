package realtime

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDialectForURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		want    Dialect
		wantErr bool
	}{
		{name: "openai GA", url: "wss://api.openai.com/v1/realtime?model=gpt-realtime", want: DialectGA},
		{name: "openai sideband", url: "wss://api.openai.com/v1/realtime?call_id=rtc_1", want: DialectGA},
		{name: "azure GA", url: "wss://res.openai.azure.com/openai/v1/realtime?model=dep", want: DialectGA},
		{name: "azure GA with api-version stays GA", url: "wss://res.openai.azure.com/openai/v1/realtime?model=dep&api-version=2025-04-01-preview", want: DialectGA},
		{name: "azure preview", url: "wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=dep", want: DialectPreview},
		{name: "azure preview trailing slash", url: "wss://res.openai.azure.com/openai/realtime/?api-version=2025-04-01-preview", want: DialectPreview},
		{name: "preview behind gateway prefix", url: "wss://apim.example.com/aoai/openai/realtime?api-version=2025-04-01-preview", want: DialectPreview},
		{name: "preview path without api-version", url: "wss://res.openai.azure.com/openai/realtime?deployment=dep", wantErr: true},
		{name: "preview path with a dated GA api-version", url: "wss://res.openai.azure.com/openai/realtime?api-version=2025-08-28&deployment=dep", wantErr: true},
		{name: "preview path with an empty api-version", url: "wss://res.openai.azure.com/openai/realtime?api-version=&deployment=dep", wantErr: true},
		{name: "local simulator preview", url: "ws://127.0.0.1:9000/openai/realtime?api-version=2025-04-01-preview&deployment=x", want: DialectPreview},
		{name: "other path", url: "ws://127.0.0.1:9000/somewhere", want: DialectGA},
		{name: "uppercase scheme", url: "WSS://api.openai.com/v1/realtime", want: DialectGA},
		{name: "https scheme", url: "https://api.openai.com/v1/realtime", wantErr: true},
		{name: "http scheme", url: "http://127.0.0.1/v1/realtime", wantErr: true},
		{name: "no scheme", url: "api.openai.com/v1/realtime", wantErr: true},
		{name: "no host", url: "wss:///v1/realtime", wantErr: true},
		{name: "unparsable", url: "wss://[::1/v1/realtime", wantErr: true},
		{name: "control character", url: "wss://api.openai.com/v1/\x7frealtime", wantErr: true},
		{name: "empty", url: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DialectForURL(tt.url)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestResolveAuth(t *testing.T) {
	tests := []struct {
		name string
		url  string
		in   AuthStyle
		want AuthStyle
	}{
		{name: "openai auto", url: "wss://api.openai.com/v1/realtime", in: AuthAuto, want: AuthBearer},
		{name: "openai eu auto", url: "wss://eu.api.openai.com/v1/realtime", in: AuthAuto, want: AuthBearer},
		{name: "azure openai auto", url: "wss://res.openai.azure.com/openai/v1/realtime", in: AuthAuto, want: AuthAPIKey},
		{name: "azure cognitiveservices auto", url: "wss://res.cognitiveservices.azure.com/openai/realtime?api-version=x", in: AuthAuto, want: AuthAPIKey},
		{name: "azure ai foundry auto", url: "wss://res.services.ai.azure.com/openai/v1/realtime", in: AuthAuto, want: AuthAPIKey},
		{name: "azure host with port and case", url: "wss://RES.OpenAI.Azure.com:443/openai/v1/realtime", in: AuthAuto, want: AuthAPIKey},
		{name: "lookalike host is not azure", url: "wss://openai.azure.com.evil.example/openai/v1/realtime", in: AuthAuto, want: AuthBearer},
		{name: "bare suffix host is not a resource", url: "wss://openai.azure.com/openai/v1/realtime", in: AuthAuto, want: AuthBearer},
		{name: "localhost auto", url: "ws://127.0.0.1:8080/v1/realtime", in: AuthAuto, want: AuthBearer},
		{name: "explicit bearer on azure (Entra ID)", url: "wss://res.openai.azure.com/openai/v1/realtime", in: AuthBearer, want: AuthBearer},
		{name: "explicit api-key elsewhere", url: "ws://127.0.0.1:8080/v1/realtime", in: AuthAPIKey, want: AuthAPIKey},
		{name: "unparsable auto", url: "wss://[::1/x", in: AuthAuto, want: AuthBearer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, ResolveAuth(tt.url, tt.in))
		})
	}
}

func TestDialHeaders(t *testing.T) {
	const key = "sk-test-KEY"
	tests := []struct {
		name       string
		url        string
		auth       AuthStyle
		wantAPIKey bool
		wantBeta   bool
	}{
		{name: "openai GA", url: "wss://api.openai.com/v1/realtime?model=m"},
		{name: "azure GA", url: "wss://res.openai.azure.com/openai/v1/realtime?model=m", wantAPIKey: true},
		{name: "azure preview: no beta header", url: "wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview", wantAPIKey: true},
		{name: "azure preview with Entra bearer", url: "wss://res.cognitiveservices.azure.com/openai/realtime?api-version=2025-04-01-preview", auth: AuthBearer},
		{name: "preview on non-azure host gets beta header", url: "ws://127.0.0.1:1/openai/realtime?api-version=2025-04-01-preview", wantBeta: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dc := DialConfig{URL: tt.url, APIKey: key, Auth: tt.auth}
			d, err := DialectForURL(tt.url)
			require.NoError(t, err)
			h, err := dialHeaders(dc, d)
			require.NoError(t, err)
			if tt.wantAPIKey {
				require.Equal(t, key, h.Get("api-key"))
				require.Empty(t, h.Get("Authorization"))
			} else {
				require.Equal(t, "Bearer "+key, h.Get("Authorization"))
				require.Empty(t, h.Get("api-key"))
			}
			if tt.wantBeta {
				require.Equal(t, "realtime=v1", h.Get("OpenAI-Beta"))
			} else {
				require.Empty(t, h.Get("OpenAI-Beta"))
			}
			require.Empty(t, h.Get("Sec-WebSocket-Protocol"))
		})
	}

	t.Run("no key, no auth header", func(t *testing.T) {
		h, err := dialHeaders(DialConfig{URL: "wss://api.openai.com/v1/realtime"}, DialectGA)
		require.NoError(t, err)
		require.Empty(t, h.Get("Authorization"))
		require.Empty(t, h.Get("api-key"))
	})
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "no secrets", in: "wss://api.openai.com/v1/realtime?model=gpt-realtime", want: "wss://api.openai.com/v1/realtime?model=gpt-realtime"},
		{name: "api-key query", in: "wss://r.openai.azure.com/openai/realtime?api-key=SECRET&api-version=v", want: "wss://r.openai.azure.com/openai/realtime?api-key=REDACTED&api-version=v"},
		{name: "userinfo", in: "wss://user:SECRET@host/v1/realtime", want: "wss://REDACTED@host/v1/realtime"},
		{name: "unparsable keeps no query", in: "wss://[::1/x?api-key=SECRET", want: "wss://[::1/x?REDACTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, redactURL(tt.in))
		})
	}
}
