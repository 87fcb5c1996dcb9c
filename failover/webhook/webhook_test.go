package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipbridge/sipbridge/failover"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type received struct {
	body    Request
	headers http.Header
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func counter(t *testing.T, reg *prometheus.Registry, tool, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "sipbridge_tool_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["tool"] == tool && l["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestWebhookRun(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	cases := []struct {
		name       string
		args       string
		handler    http.HandlerFunc
		timeout    time.Duration
		want       string // exact output, or a substring with wantSub
		wantSub    bool
		wantResult string
		wantCalled bool
	}{
		{name: "ok body passed through", args: `{"order_id":"A-17"}`, wantCalled: true, wantResult: "ok",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `{"status":"shipped","eta":"Tuesday"}`)
			},
			want: `{"status":"shipped","eta":"Tuesday"}`},
		{name: "empty body", args: ``, wantCalled: true, wantResult: "ok",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			want:    `{"ok":true}`},
		{name: "http error", args: `{}`, wantCalled: true, wantResult: "http_error", wantSub: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "db down at 10.1.2.3", http.StatusInternalServerError)
			},
			want: `"error":"the lookup_order service answered with an error (HTTP 500)"`},
		{name: "redirect not followed", args: `{}`, wantCalled: true, wantResult: "http_error", wantSub: true,
			handler: func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) },
			want:    `(HTTP 302)`},
		{name: "timeout", args: `{}`, wantCalled: true, wantResult: "timeout", timeout: 100 * time.Millisecond, wantSub: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			},
			want: `did not answer in time`},
		{name: "too large", args: `{}`, wantCalled: true, wantResult: "error", wantSub: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(bytes.Repeat([]byte("x"), MaxResponseBytes+1))
			},
			want: `answered too much`},
		{name: "bad arguments", args: `{"order_id":`, wantCalled: false, wantResult: "bad_arguments", wantSub: true,
			handler: func(w http.ResponseWriter, r *http.Request) {},
			want:    `not valid JSON`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan received, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Read to EOF: only then does net/http notice the client
				// going away and cancel r.Context().
				raw, _ := io.ReadAll(r.Body)
				var body Request
				_ = json.Unmarshal(raw, &body)
				got <- received{body: body, headers: r.Header.Clone()}
				tc.handler(w, r)
			}))
			defer srv.Close()
			reg := prometheus.NewRegistry()
			logs := &lockedBuf{}
			w, err := NewWebhooks([]Webhook{{Name: "lookup_order", URL: srv.URL + "/orders", Timeout: tc.timeout,
				Headers: map[string]string{"Authorization": "Bearer tok-123"}}},
				slog.New(slog.NewTextHandler(logs, nil)), NewMetrics(reg))
			require.NoError(t, err)
			defer w.Close()
			require.True(t, w.Has("lookup_order"))
			require.False(t, w.Has("end_call"))

			out := w.Run(context.Background(), failover.ToolCall{SIPCallID: "sip-1", CallID: "call_9", Name: "lookup_order", Arguments: tc.args})
			if tc.wantSub {
				require.Contains(t, out, tc.want)
				require.True(t, json.Valid([]byte(out)), "error outputs are JSON")
			} else {
				require.Equal(t, tc.want, out)
			}
			require.Equal(t, 1.0, counter(t, reg, "lookup_order", tc.wantResult))
			require.NotContains(t, out, srv.URL, "the endpoint is not shown to the model")
			require.NotContains(t, out, "10.1.2.3", "an error body is not shown to the model")
			require.NotContains(t, logs.String(), "tok-123", "header values are never logged")
			if !tc.wantCalled {
				require.Empty(t, got)
				return
			}
			r := <-got
			require.Equal(t, "call_9", r.body.CallID)
			require.Equal(t, "sip-1", r.body.SIPCallID)
			require.Equal(t, "lookup_order", r.body.Name)
			wantArgs := tc.args
			if wantArgs == "" {
				wantArgs = "{}"
			}
			require.JSONEq(t, wantArgs, string(r.body.Arguments))
			require.Equal(t, "Bearer tok-123", r.headers.Get("Authorization"))
			require.Equal(t, "application/json", r.headers.Get("Content-Type"))
			require.Equal(t, "call_9", r.headers.Get("Idempotency-Key"))
		})
	}
}

// TestWebhookCancelledWithTheCall: the call ending aborts the request at
// once, well before the tool's timeout.
func TestWebhookCancelledWithTheCall(t *testing.T) {
	entered := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		close(entered)
		<-r.Context().Done()
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	w, err := NewWebhooks([]Webhook{{Name: "slow", URL: srv.URL, Timeout: time.Minute}}, nil, NewMetrics(reg))
	require.NoError(t, err)
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan string, 1)
	go func() { done <- w.Run(ctx, failover.ToolCall{CallID: "c", Name: "slow", Arguments: "{}"}) }()
	<-entered
	cancel()
	select {
	case out := <-done:
		require.Contains(t, out, "cancelled")
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when the call ended")
	}
	require.Equal(t, 1.0, counter(t, reg, "slow", "cancelled"))
}

func TestNewWebhooksRejects(t *testing.T) {
	for name, hooks := range map[string][]Webhook{
		"no name":   {{URL: "http://x"}},
		"dup":       {{Name: "a", URL: "http://x"}, {Name: "a", URL: "http://y"}},
		"ftp url":   {{Name: "a", URL: "ftp://x"}},
		"no host":   {{Name: "a", URL: "http:///path"}},
		"not a url": {{Name: "a", URL: "::"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewWebhooks(hooks, nil, nil)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
}

func TestNewMetricsTwiceSharesTheSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewMetrics(reg)
	b := NewMetrics(reg) // must not panic
	require.Same(t, a.calls, b.calls)
	require.Same(t, a.duration, b.duration)
}

func TestForCallerSendsTheCallerContext(t *testing.T) {
	bodies := make(chan Request, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Request
		_ = json.NewDecoder(r.Body).Decode(&req)
		bodies <- req
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	w, err := NewWebhooks([]Webhook{{Name: "crm", URL: srv.URL}}, nil, nil)
	require.NoError(t, err)
	defer w.Close()
	caller := map[string]string{"from_user": "+4930123", "header.X-Account": "A-17"}
	r := w.ForCaller(caller)
	require.True(t, r.Has("crm"))
	require.False(t, r.Has("other"))
	require.JSONEq(t, `{"ok":true}`, r.Run(context.Background(), failover.ToolCall{CallID: "fc1", Name: "crm", Arguments: "{}"}))
	require.Equal(t, caller, (<-bodies).Caller)

	w.Run(context.Background(), failover.ToolCall{CallID: "fc2", Name: "crm", Arguments: "{}"})
	require.Nil(t, (<-bodies).Caller, "without ForCaller no caller is sent")
}
