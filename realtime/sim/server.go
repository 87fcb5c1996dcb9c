package sim

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/sipbridge/sipbridge/realtime"
)

// Config configures one simulated region.
type Config struct {
	// Region names the region in answers' text and in log lines.
	Region string
	// APIKey is the key clients must present ("" = no auth check).
	APIKey string
	// VoiceHz is the base tone of the answer "voice" (default 440), so a test
	// can tell which region answered by frequency.
	VoiceHz float64
	// ResponseDelay is the simulated model latency between response.created
	// and the first output (default 150 ms).
	ResponseDelay time.Duration
	// Speedup streams audio this many times faster than real time (default 4).
	Speedup float64
	// SessionLimit is the hard session limit: session_expired + close 1001
	// (default 30 min, as on Azure; §4).
	SessionLimit time.Duration
	// Faults are injected from the start; see SetFaults.
	Faults Faults
	// Responder scripts the model's answers (default DefaultResponder).
	Responder func(TurnContext) Reply
	// Transcriber turns a committed user turn into text: what the model
	// "heard", and the input transcription when the session enables it
	// (default DefaultTranscriber).
	Transcriber func(Utterance) string
	// RecordLimit is how many ended sessions Sessions() keeps (default 100).
	RecordLimit int
	// Logger receives debug/info lines; nil discards.
	Logger *slog.Logger
}

// Defaults of Config (the binary's regions[].simulator keys).
const (
	DefaultVoiceHz       = 440
	DefaultResponseDelay = 150 * time.Millisecond
	DefaultSpeedup       = 4
)

func (c *Config) setDefaults() {
	if c.Region == "" {
		c.Region = "sim"
	}
	if c.VoiceHz <= 0 {
		c.VoiceHz = DefaultVoiceHz
	}
	if c.ResponseDelay <= 0 {
		c.ResponseDelay = DefaultResponseDelay
	}
	if c.Speedup <= 0 {
		c.Speedup = DefaultSpeedup
	}
	if c.SessionLimit <= 0 {
		c.SessionLimit = realtime.SessionLimitAzure
	}
	if c.Responder == nil {
		c.Responder = DefaultResponder
	}
	if c.Transcriber == nil {
		c.Transcriber = DefaultTranscriber
	}
	if c.RecordLimit <= 0 {
		c.RecordLimit = 100
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server is one simulated region: an http.Handler that upgrades realtime
// WebSocket sessions, plus optional listeners of its own.
type Server struct {
	cfg    Config
	log    *slog.Logger
	faults faultState
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex // guards the fields below
	closed    bool
	live      map[*session]struct{}
	ended     []*session // most recent last, at most cfg.RecordLimit
	all       []*session // live and ended, in start order (pruned with ended)
	listeners []*http.Server
	handlers  sync.WaitGroup // ServeHTTP calls in flight, sessions included
	serving   sync.WaitGroup // Serve loops of Listen
}

// New returns a simulated region. It serves nothing until used as a handler
// or Listen is called.
func New(cfg Config) *Server {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "realtime-sim", "region", cfg.Region),
		ctx:    ctx,
		cancel: cancel,
		live:   map[*session]struct{}{},
	}
	s.faults.set(cfg.Faults)
	return s
}

// SetFaults replaces the injected faults. Counters start afresh from f;
// ExpireAfter is re-applied to live sessions.
func (s *Server) SetFaults(f Faults) {
	s.faults.set(f)
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.live {
		sess.notifyFaults()
	}
}

// Sessions returns a snapshot of every session's record, oldest first.
func (s *Server) Sessions() []SessionRecord {
	s.mu.Lock()
	all := append([]*session(nil), s.all...)
	s.mu.Unlock()
	out := make([]SessionRecord, 0, len(all))
	for _, sess := range all {
		out = append(out, sess.snapshot())
	}
	return out
}

// Listen serves on addr ("127.0.0.1:0" is fine) until Close and returns the
// base WebSocket URL, e.g. ws://127.0.0.1:PORT.
func (s *Server) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sim %s: listen: %w", s.cfg.Region, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return "", fmt.Errorf("sim %s: listen: %w", s.cfg.Region, net.ErrClosed)
	}
	s.listeners = append(s.listeners, srv)
	s.serving.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.serving.Done()
		if err := srv.Serve(refusingListener{Listener: ln, s: s}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("serve ended", "err", err)
		}
	}()
	return "ws://" + ln.Addr().String(), nil
}

// Close stops the listeners, ends every session (close 1001) and waits for
// all of the server's goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	listeners := s.listeners
	s.mu.Unlock()
	s.cancel()
	var errs []error
	for _, srv := range listeners {
		if err := srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sim %s: close listener: %w", s.cfg.Region, err))
		}
	}
	s.handlers.Wait()
	s.serving.Wait()
	return errors.Join(errs...)
}

// refusingListener implements Faults.RefuseConnect: connections are reset
// as soon as they are accepted, before any HTTP.
type refusingListener struct {
	net.Listener
	s *Server
}

func (l refusingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.s.faults.snapshot().RefuseConnect {
			return c, nil
		}
		l.s.log.Debug("refusing connection", "remote", c.RemoteAddr())
		resetConn(c)
	}
}

func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	_ = c.Close()
}

// route maps a URL path to a dialect (§1): GA /v1/realtime and
// /openai/v1/realtime (Azure GA); preview /openai/realtime.
func route(path string) (d realtime.Dialect, azureGA, ok bool) {
	switch strings.TrimSuffix(path, "/") {
	case "/v1/realtime":
		return realtime.DialectGA, false, true
	case "/openai/v1/realtime":
		return realtime.DialectGA, true, true
	case "/openai/realtime":
		return realtime.DialectPreview, false, true
	}
	return 0, false, false
}

// ServeHTTP upgrades a realtime session and runs it until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeHTTPError(w, http.StatusServiceUnavailable, "The server is shutting down.", errTypeServer, "")
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()

	d, azureGA, ok := route(r.URL.Path)
	if !ok {
		writeHTTPError(w, http.StatusNotFound, "Unknown request URL: "+r.URL.Path+".", errTypeInvalidRequest, "unknown_url")
		return
	}
	f := s.faults.snapshot()
	if f.RefuseConnect {
		// Reached only through a foreign listener (httptest): take the
		// connection over and reset it, the nearest thing to a TCP refusal.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				resetConn(c)
				return
			}
		}
		writeHTTPError(w, http.StatusServiceUnavailable, "Connection refused.", errTypeServer, "")
		return
	}
	if status, wait := s.faults.takeRefusal(); status != 0 {
		writeRefusal(w, status, wait)
		return
	}
	if rej := s.authorize(r, azureRoute(r.URL.Path)); rej != nil {
		s.log.Info("rejected upgrade: "+rej.log, "path", r.URL.Path)
		writeHTTPError(w, http.StatusUnauthorized, rej.message, rej.typ, rej.code)
		return
	}
	q := r.URL.Query()
	var model string
	switch {
	case azureGA && q.Has("api-version"):
		// §1.2: the Azure GA endpoint takes no api-version; adding one gives 401.
		writeHTTPError(w, http.StatusUnauthorized, "The /openai/v1 endpoint does not take an api-version query parameter.",
			errTypeInvalidRequest, "invalid_api_version")
		return
	case d == realtime.DialectGA:
		model = q.Get("model")
		if model == "" {
			writeHTTPError(w, http.StatusBadRequest, "Missing required parameter: 'model'.", errTypeInvalidRequest, codeMissingRequired)
			return
		}
	default:
		if v := q.Get("api-version"); !strings.HasSuffix(v, "-preview") || v == "2024-10-01-preview" {
			// §1.2: preview needs a live *-preview api-version; 2024-10-01 is retired.
			writeHTTPError(w, http.StatusBadRequest, "Unsupported api-version '"+v+"' for the realtime preview endpoint.",
				errTypeInvalidRequest, "invalid_api_version")
			return
		}
		model = q.Get("deployment")
		if model == "" {
			writeHTTPError(w, http.StatusBadRequest, "Missing required parameter: 'deployment'.", errTypeInvalidRequest, codeMissingRequired)
			return
		}
	}
	var subprotocols []string
	if d == realtime.DialectGA && offersSubprotocol(r, "realtime") {
		subprotocols = []string{"realtime"}
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: subprotocols, InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("upgrade failed", "err", err)
		return
	}
	// Client events carry up to 15 MiB of audio as base64 (§2.2).
	conn.SetReadLimit(24 << 20)
	sess := newSession(s, conn, d, r.URL.Path, model)
	if !s.register(sess) {
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer s.unregister(sess)
	if d == realtime.DialectGA && strings.Contains(strings.ToLower(r.Header.Get("OpenAI-Beta")), "realtime=v1") {
		sess.rejectBeta()
		return
	}
	sess.run()
}

func (s *Server) register(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.live[sess] = struct{}{}
	s.all = append(s.all, sess)
	return true
}

func (s *Server) unregister(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, sess)
	s.ended = append(s.ended, sess)
	if len(s.ended) > s.cfg.RecordLimit {
		drop := s.ended[0]
		s.ended = s.ended[1:]
		for i, x := range s.all {
			if x == drop {
				s.all = append(s.all[:i], s.all[i+1:]...)
				break
			}
		}
	}
}

// azureRoute reports whether path is one of Azure's (/openai/…): GA
// /openai/v1/realtime or preview /openai/realtime.
func azureRoute(path string) bool {
	return strings.HasPrefix(strings.TrimSuffix(path, "/"), "/openai/")
}

// authRejection is why an upgrade is refused with 401.
type authRejection struct {
	log, message, typ, code string
}

// authorize applies each route's accepted auth styles, exactly as the real
// service takes them and never more (§1.1, §1.2):
//   - OpenAI (/v1/realtime): "Authorization: Bearer KEY", or the
//     browser-only subprotocol "openai-insecure-api-key.KEY". An Azure
//     api-key header or query parameter is not a credential there.
//   - Azure (/openai/v1/realtime GA, /openai/realtime preview): the
//     "api-key" header, the ?api-key= query parameter, or
//     "Authorization: Bearer" (an Entra ID token; the simulator takes its
//     APIKey as the one valid token). No subprotocol key on Azure.
//
// With Config.APIKey "" every request passes. Messages follow each
// provider's 401 body.
func (s *Server) authorize(r *http.Request, azure bool) *authRejection {
	if s.cfg.APIKey == "" {
		return nil
	}
	var key string
	if azure {
		switch {
		case r.Header.Get("api-key") != "":
			key = r.Header.Get("api-key")
		case r.URL.Query().Get("api-key") != "":
			key = r.URL.Query().Get("api-key")
		default:
			key = bearerToken(r)
		}
		if key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.APIKey)) == 1 {
			return nil
		}
		// Azure's 401 body (its code is the status as a string).
		return &authRejection{log: "azure: missing or wrong key", typ: "", code: "401",
			message: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}
	}
	key = bearerToken(r)
	if key == "" {
		for _, p := range websocketProtocols(r) {
			if k, ok := strings.CutPrefix(p, "openai-insecure-api-key."); ok {
				key = k
			}
		}
	}
	if key == "" {
		return &authRejection{log: "openai: no bearer key", typ: errTypeInvalidRequest,
			message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from https://platform.openai.com/account/api-keys."}
	}
	if subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.APIKey)) == 1 {
		return nil
	}
	return &authRejection{log: "openai: wrong key", typ: errTypeInvalidRequest, code: codeInvalidAPIKey,
		message: "Incorrect API key provided: " + maskKey(key) + ". You can find your API key at https://platform.openai.com/account/api-keys."}
}

func bearerToken(r *http.Request) string {
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func offersSubprotocol(r *http.Request, name string) bool {
	for _, p := range websocketProtocols(r) {
		if p == name {
			return true
		}
	}
	return false
}

// maskKey shows a key the way the API's 401 message does: first and last
// few characters only.
func maskKey(k string) string {
	if len(k) <= 8 {
		return strings.Repeat("*", len(k))
	}
	return k[:3] + strings.Repeat("*", 6) + k[len(k)-4:]
}

// writeHTTPError writes the JSON error body of a refused upgrade. An empty
// typ gives Azure's shape ({"code","message"} only).
func writeHTTPError(w http.ResponseWriter, status int, msg, typ, code string) {
	e := map[string]any{"message": msg, "type": typ, "code": nullIfEmpty(code), "param": nil}
	if typ == "" {
		e = map[string]any{"code": code, "message": msg}
	}
	body, _ := json.Marshal(map[string]any{"error": e})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeRefusal answers a refused upgrade (Faults.RefuseStatus); 429 and 503
// carry Retry-After (whole seconds) for the wait.
func writeRefusal(w http.ResponseWriter, status int, retryAfter time.Duration) {
	secs := fmtNum(retryAfterSeconds(retryAfter))
	switch status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", secs)
		writeHTTPError(w, status, "Rate limit reached for requests. Please try again in "+secs+"s.", "requests", codeRateLimitExceeded)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", secs)
		writeHTTPError(w, status, "The engine is currently overloaded, please try again later.", errTypeServer, "")
	default:
		writeHTTPError(w, status, http.StatusText(status), errTypeServer, "")
	}
}

var _ io.Closer = (*Server)(nil)
