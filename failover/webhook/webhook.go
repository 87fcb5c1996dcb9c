// Package webhook implements the custom functions the model may call beyond
// the built-in call controls: HTTP webhooks declared in the config. It is a
// failover.ToolRunner; the conversation calls Run off its actor loop.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/realtime"
)

// Webhook is one tool served by an HTTP endpoint: when the model calls Name,
// the bridge POSTs the call as JSON to URL and gives the model the response
// body as the function's output.
type Webhook struct {
	Name string
	URL  string
	// Timeout bounds the whole HTTP exchange (default 5 s).
	Timeout time.Duration
	// Headers are sent with every request (e.g. Authorization); values come
	// from the environment and are never logged.
	Headers map[string]string
}

// Request is the JSON body POSTed to a webhook.
type Request struct {
	// CallID is the model's function call id, unique per tool call: a
	// retry-safe idempotency key (also sent as Idempotency-Key).
	CallID string `json:"call_id"`
	// SIPCallID is the phone call's Call-ID.
	SIPCallID string `json:"sip_call_id"`
	Name      string `json:"name"`
	// Arguments are the model's arguments, a JSON object.
	Arguments json.RawMessage `json:"arguments"`
	// Caller is the phone call's caller context (from_user, to_user,
	// trunk, header.NAME…), when the runner was made with ForCaller.
	Caller map[string]string `json:"caller,omitempty"`
}

// Limits.
const (
	DefaultTimeout = 5 * time.Second
	// MaxResponseBytes caps a webhook's answer: it goes into the model's
	// context, where a large one costs tokens on every later turn.
	MaxResponseBytes = 16 << 10
	// maxConcurrent bounds webhook requests in flight across all calls,
	// every assistant's tools and every configuration generation together
	// (inFlight).
	maxConcurrent = 64
)

// Metrics are the webhook series.
type Metrics struct {
	calls    *prometheus.CounterVec   // sipbridge_tool_calls_total{tool,result}
	duration *prometheus.HistogramVec // sipbridge_tool_call_seconds{tool}
}

// NewMetrics creates the series and registers them on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		calls: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sipbridge", Name: "tool_calls_total",
			Help: "Custom tool (webhook) calls by tool name and result (ok, http_error, timeout, error, bad_arguments, cancelled).",
		}, []string{"tool", "result"})),
		duration: realtime.RegisterCollector(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sipbridge", Name: "tool_call_seconds",
			Help:    "Custom tool (webhook) call duration.",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tool"})),
	}
}

// Webhooks runs the configured webhook tools.
type Webhooks struct {
	hooks  map[string]Webhook
	client *http.Client
	sem    chan struct{}
	log    *slog.Logger
	m      *Metrics
}

var _ failover.ToolRunner = (*Webhooks)(nil)

// inFlight is the process's one bound on webhook requests: a reload builds
// new Webhooks while calls on the old ones still run.
var inFlight = make(chan struct{}, maxConcurrent)

// ErrConfig: a webhook definition is unusable.
var ErrConfig = errors.New("tools: invalid webhook")

// NewWebhooks checks the definitions and prepares the HTTP client. log and
// m may be nil.
func NewWebhooks(hooks []Webhook, log *slog.Logger, m *Metrics) (*Webhooks, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	w := &Webhooks{hooks: map[string]Webhook{}, sem: inFlight, log: log, m: m}
	for _, h := range hooks {
		if h.Name == "" {
			return nil, fmt.Errorf("%w: no name", ErrConfig)
		}
		if _, dup := w.hooks[h.Name]; dup {
			return nil, fmt.Errorf("%w: %q defined twice", ErrConfig, h.Name)
		}
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: %q: url must be http(s)://host/…", ErrConfig, h.Name)
		}
		if h.Timeout <= 0 {
			h.Timeout = DefaultTimeout
		}
		h.Headers = maps.Clone(h.Headers)
		w.hooks[h.Name] = h
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	w.client = &http.Client{
		Transport: tr,
		// A redirect would turn the POST into a GET elsewhere: treat 3xx as
		// the answer (an error for the model) instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// Has reports whether name is a configured webhook.
func (w *Webhooks) Has(name string) bool {
	_, ok := w.hooks[name]
	return ok
}

// Close releases idle connections.
func (w *Webhooks) Close() { w.client.CloseIdleConnections() }

// errorOutput is what the model gets when a call fails: enough to tell the
// caller something went wrong, nothing about the endpoint.
func errorOutput(msg string) string {
	b, _ := json.Marshal(map[string]any{"ok": false, "error": msg})
	return string(b)
}

// Run POSTs the call to the tool's URL within its timeout and returns the
// response body (2xx), or an error object for the model.
func (w *Webhooks) Run(ctx context.Context, call failover.ToolCall) string {
	return w.runFor(ctx, call, nil)
}

// ForCaller is the runner of one phone call: every request carries caller
// (Request.Caller).
func (w *Webhooks) ForCaller(caller map[string]string) failover.ToolRunner {
	return callerRunner{w: w, caller: caller}
}

type callerRunner struct {
	w      *Webhooks
	caller map[string]string
}

func (r callerRunner) Has(name string) bool { return r.w.Has(name) }

func (r callerRunner) Run(ctx context.Context, call failover.ToolCall) string {
	return r.w.runFor(ctx, call, r.caller)
}

func (w *Webhooks) runFor(ctx context.Context, call failover.ToolCall, caller map[string]string) string {
	h, ok := w.hooks[call.Name]
	if !ok {
		return errorOutput(fmt.Sprintf("unknown function %q", call.Name))
	}
	log := w.log.With("call_id", call.SIPCallID, "tool", call.Name, "fn_call_id", call.CallID)
	start := time.Now()
	out, result := w.run(ctx, h, call, caller, log)
	w.m.calls.WithLabelValues(h.Name, result).Inc()
	w.m.duration.WithLabelValues(h.Name).Observe(time.Since(start).Seconds())
	return out
}

func (w *Webhooks) run(ctx context.Context, h Webhook, call failover.ToolCall, caller map[string]string, log *slog.Logger) (string, string) {
	args := json.RawMessage(call.Arguments)
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage(`{}`)
	}
	if !json.Valid(args) {
		log.Warn("tools: arguments are not JSON; webhook not called")
		return errorOutput("the arguments were not valid JSON"), "bad_arguments"
	}
	body, err := json.Marshal(Request{CallID: call.CallID, SIPCallID: call.SIPCallID, Name: call.Name, Arguments: args, Caller: caller})
	if err != nil {
		return errorOutput("the arguments could not be encoded"), "bad_arguments"
	}

	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	select {
	case w.sem <- struct{}{}:
		defer func() { <-w.sem }()
	case <-ctx.Done():
		return w.ctxFailure(ctx, h, log, "waiting for a free request slot")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		log.Warn("tools: building the webhook request failed", "error", err)
		return errorOutput("the " + h.Name + " service is unavailable"), "error"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sipbridge")
	req.Header.Set("Idempotency-Key", call.CallID)
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	res, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return w.ctxFailure(ctx, h, log, "request")
		}
		// The error text names the URL; the model does not get it.
		log.Warn("tools: webhook unreachable", "error", err)
		return errorOutput("the " + h.Name + " service is unavailable"), "error"
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, MaxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return w.ctxFailure(ctx, h, log, "reading the response")
		}
		log.Warn("tools: reading the webhook response failed", "status", res.StatusCode, "error", err)
		return errorOutput("the " + h.Name + " service is unavailable"), "error"
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		log.Warn("tools: webhook answered an error", "status", res.StatusCode, "bytes", len(data))
		return errorOutput("the " + h.Name + " service answered with an error (HTTP " + strconv.Itoa(res.StatusCode) + ")"), "http_error"
	}
	if len(data) > MaxResponseBytes {
		log.Warn("tools: webhook response too large", "limit", MaxResponseBytes)
		return errorOutput("the " + h.Name + " service answered too much"), "error"
	}
	if !utf8.Valid(data) {
		log.Warn("tools: webhook response is not UTF-8 text")
		return errorOutput("the " + h.Name + " service answered something unreadable"), "error"
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte(`{"ok":true}`)
	}
	log.Info("tools: webhook answered", "status", res.StatusCode, "bytes", len(data))
	return string(data), "ok"
}

// ctxFailure tells a timeout from the call ending.
func (w *Webhooks) ctxFailure(ctx context.Context, h Webhook, log *slog.Logger, stage string) (string, string) {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		log.Warn("tools: webhook timed out", "timeout", h.Timeout.String(), "stage", stage)
		return errorOutput("the " + h.Name + " service did not answer in time"), "timeout"
	}
	log.Info("tools: webhook call cancelled: the call ended", "stage", stage)
	return errorOutput("cancelled"), "cancelled"
}
