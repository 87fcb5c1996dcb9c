package realtime

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

const (
	testKey     = "sk-test-9f8e7d6c5b4a"
	testExpires = 1756324625
)

// ---- fake realtime server -------------------------------------------------

// fakeServer is an httptest server speaking WebSocket; each test scripts the
// server side of one session with a handler.
type fakeServer struct {
	srv     *httptest.Server
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	headers chan http.Header
}

// peer is the server end of one WebSocket session. Handler goroutines are not
// the test goroutine, so they report with t.Errorf, never require.
type peer struct {
	t   testing.TB
	ctx context.Context
	c   *websocket.Conn
	r   *http.Request
}

func newFakeServer(t testing.TB, handle func(p *peer)) *fakeServer {
	t.Helper()
	fs := &fakeServer{headers: make(chan http.Header, 16)}
	fs.ctx, fs.cancel = context.WithCancel(context.Background())
	fs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.wg.Add(1)
		defer fs.wg.Done()
		select {
		case fs.headers <- r.Header.Clone():
		default:
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("fake server: accept: %v", err)
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(-1) // the client may send large appends
		handle(&peer{t: t, ctx: fs.ctx, c: c, r: r})
	}))
	t.Cleanup(func() {
		fs.cancel()
		fs.srv.Close()
		fs.wg.Wait()
	})
	return fs
}

// rejectingServer answers the upgrade with an HTTP error.
func rejectingServer(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func wsURL(srv *httptest.Server, pathAndQuery string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + pathAndQuery
}

func (p *peer) send(s string) error {
	return p.c.Write(p.ctx, websocket.MessageText, []byte(s))
}

func (p *peer) mustSend(s string) {
	if err := p.send(s); err != nil {
		p.t.Errorf("fake server: send: %v", err)
	}
}

func (p *peer) recv() (map[string]any, []byte, error) {
	_, b, err := p.c.Read(p.ctx)
	if err != nil {
		return nil, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, b, fmt.Errorf("client sent invalid JSON %q: %w", b, err)
	}
	return m, b, nil
}

// handshake plays the server side of §1.3: session.created,
// conversation.created, then session.updated once session.update arrives.
// It returns the session.update the client sent.
func (p *peer) handshake() (map[string]any, bool) {
	p.mustSend(fmt.Sprintf(`{"type":"session.created","event_id":"event_1","session":{"type":"realtime","object":"realtime.session","id":"sess_TEST","model":"gpt-realtime","expires_at":%d}}`, testExpires))
	p.mustSend(`{"type":"conversation.created","event_id":"event_2","conversation":{"id":"conv_1","object":"realtime.conversation"}}`)
	m, _, err := p.recv()
	if err != nil {
		p.t.Errorf("fake server: waiting for session.update: %v", err)
		return nil, false
	}
	if m["type"] != "session.update" {
		p.t.Errorf("fake server: first client event is %v, want session.update", m["type"])
		return nil, false
	}
	p.mustSend(`{"type":"session.updated","event_id":"event_3","session":{"type":"realtime","id":"sess_TEST","expires_at":1756324625}}`)
	return m, true
}

// drain reads until the client closes or drops, and returns the read error
// (a websocket.CloseError when the client sent a close frame).
func (p *peer) drain() error {
	for {
		if _, _, err := p.c.Read(p.ctx); err != nil {
			return err
		}
	}
}

// ---- client helpers ---------------------------------------------------------

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func debugLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testConfig() SessionConfig {
	return SessionConfig{
		Instructions:  "You are a phone agent.",
		Voice:         "marin",
		InputFormat:   FormatPCMU,
		OutputFormat:  FormatPCMU,
		TurnDetection: &TurnDetection{Type: "server_vad", CreateResponse: true, InterruptResponse: true},
	}
}

func dialTest(t *testing.T, url string, opts dialOptions) *Conn {
	t.Helper()
	c, err := dial(context.Background(), DialConfig{Region: "test", URL: url, APIKey: testKey, DialTimeout: 5 * time.Second},
		testConfig(), slog.New(slog.DiscardHandler), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// nextEvent returns the next event, failing the test if the session ends.
func nextEvent(t *testing.T, c *Conn) ServerEvent {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		require.True(t, ok, "events closed early: %v", c.Err())
		return *ev
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no event")
	}
	return ServerEvent{}
}

// skipHandshakeEvents consumes the three handshake events Events() starts with.
func skipHandshakeEvents(t *testing.T, c *Conn) {
	t.Helper()
	for _, want := range []string{EvSessionCreated, EvConversationCreated, EvSessionUpdated} {
		require.Equal(t, want, nextEvent(t, c).Type)
	}
}

func waitDone(t *testing.T, c *Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		require.FailNow(t, "session did not end")
	}
}

// drainEvents reads Events() until it is closed and returns what it got.
func drainEvents(t *testing.T, c *Conn) []ServerEvent {
	t.Helper()
	var evs []ServerEvent
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				return evs
			}
			evs = append(evs, *ev)
		case <-timeout:
			require.FailNow(t, "events not closed")
		}
	}
}

// ---- dial and handshake -------------------------------------------------------

func TestDialHandshake(t *testing.T) {
	tests := []struct {
		name       string
		host       string // "" = the test server's 127.0.0.1 address
		path       string
		auth       AuthStyle
		dialect    Dialect
		wantAPIKey bool
		wantBeta   bool
	}{
		{name: "openai-style GA, bearer", path: "/v1/realtime?model=gpt-realtime", dialect: DialectGA},
		{name: "GA with explicit api-key", path: "/v1/realtime?model=gpt-realtime", auth: AuthAPIKey, dialect: DialectGA, wantAPIKey: true},
		{name: "preview on non-azure host: bearer + OpenAI-Beta", path: "/openai/realtime?api-version=2025-04-01-preview&deployment=d", dialect: DialectPreview, wantBeta: true},
		{name: "azure GA: api-key", host: "res.openai.azure.com:443", path: "/openai/v1/realtime?model=d", dialect: DialectGA, wantAPIKey: true},
		{name: "azure preview: api-key, no OpenAI-Beta", host: "res.openai.azure.com:443", path: "/openai/realtime?api-version=2025-04-01-preview&deployment=d", dialect: DialectPreview, wantAPIKey: true},
		{name: "azure foundry preview with Entra bearer", host: "res.services.ai.azure.com:443", path: "/openai/realtime?api-version=2025-04-01-preview", auth: AuthBearer, dialect: DialectPreview},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			updates := make(chan map[string]any, 1)
			closes := make(chan error, 1)
			fs := newFakeServer(t, func(p *peer) {
				m, ok := p.handshake()
				if !ok {
					return
				}
				updates <- m
				closes <- p.drain()
			})
			url := wsURL(fs.srv, tt.path)
			var opts dialOptions
			if tt.host != "" {
				url = "ws://" + tt.host + tt.path
				addr := fs.srv.Listener.Addr().String()
				opts.netDial = func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				}
			}
			c, err := dial(context.Background(),
				DialConfig{Region: "eu", URL: url, APIKey: testKey, Auth: tt.auth, DialTimeout: 5 * time.Second},
				testConfig(), nil, opts)
			require.NoError(t, err)

			h := <-fs.headers
			if tt.wantAPIKey {
				require.Equal(t, testKey, h.Get("api-key"))
				require.Empty(t, h.Get("Authorization"))
			} else {
				require.Equal(t, "Bearer "+testKey, h.Get("Authorization"))
				require.Empty(t, h.Get("api-key"))
			}
			if tt.wantBeta {
				require.Equal(t, "realtime=v1", h.Get("OpenAI-Beta"))
			} else {
				require.Empty(t, h.Values("OpenAI-Beta"))
			}
			require.Empty(t, h.Get("Sec-WebSocket-Protocol"), "no subprotocols")
			require.Empty(t, h.Get("Sec-WebSocket-Extensions"), "compression disabled")

			m := <-updates
			require.Equal(t, "evt_1", m["event_id"])
			session := m["session"].(map[string]any)
			if tt.dialect == DialectGA {
				require.Equal(t, "realtime", session["type"])
				require.NotContains(t, session, "modalities")
			} else {
				require.Equal(t, []any{"text", "audio"}, session["modalities"])
				require.NotContains(t, session, "type")
			}

			require.Equal(t, "sess_TEST", c.ID())
			require.Equal(t, "eu", c.Region())
			require.Equal(t, tt.dialect, c.Dialect())
			require.Equal(t, time.Unix(testExpires, 0), c.ExpiresAt())
			require.NoError(t, c.Err())
			skipHandshakeEvents(t, c)

			require.NoError(t, c.Close())
			var ce websocket.CloseError
			require.ErrorAs(t, <-closes, &ce)
			require.Equal(t, websocket.StatusNormalClosure, ce.Code)
			require.Equal(t, "normal", ce.Reason)
			require.ErrorIs(t, c.Err(), ErrSessionClosed)
		})
	}
}

func TestDialRejected(t *testing.T) {
	long := `{"error":{"message":"` + strings.Repeat("x", 3000) + `"}}`
	tests := []struct {
		name     string
		status   int
		body     string
		wantBody string
	}{
		{name: "401 bad key", status: http.StatusUnauthorized,
			body:     `{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","code":"invalid_api_key"}}`,
			wantBody: `{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","code":"invalid_api_key"}}`},
		{name: "429 rate limited", status: http.StatusTooManyRequests,
			body: `{"error":{"code":"rate_limit_exceeded"}}`, wantBody: `{"error":{"code":"rate_limit_exceeded"}}`},
		{name: "400 azure model without realtime", status: http.StatusBadRequest,
			body:     `{"error":{"code":"OpperationNotSupported","message":"The realtime operation does not work with the specified model."}}`,
			wantBody: `{"error":{"code":"OpperationNotSupported","message":"The realtime operation does not work with the specified model."}}`},
		{name: "503 long body is cut to 1 KiB", status: http.StatusServiceUnavailable, body: long, wantBody: long[:1024]},
		{name: "302 redirect is not followed", status: http.StatusFound, body: "", wantBody: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := rejectingServer(t, tt.status, tt.body)
			_, err := Dial(context.Background(), DialConfig{Region: "us", URL: wsURL(srv, "/v1/realtime"), APIKey: testKey}, testConfig(), nil)
			var de *DialError
			require.ErrorAs(t, err, &de)
			require.Equal(t, "us", de.Region)
			require.Equal(t, tt.status, de.StatusCode)
			require.Equal(t, tt.wantBody, de.Body)
			require.LessOrEqual(t, len(de.Body), 1024)
			require.Error(t, de.Err)
		})
	}
}

func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	_, err = Dial(context.Background(), DialConfig{Region: "us", URL: "ws://" + addr + "/v1/realtime", APIKey: testKey}, testConfig(), nil)
	var de *DialError
	require.ErrorAs(t, err, &de)
	require.Equal(t, 0, de.StatusCode)
	require.Empty(t, de.Body)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe, "the connect error stays in the chain")
}

func TestDialFailures(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		timeout time.Duration
		server  func(p *peer, closes chan<- error)
		check   func(t *testing.T, err error)
	}{
		{
			name: "GA error event for session.update",
			path: "/v1/realtime",
			server: func(p *peer, closes chan<- error) {
				p.mustSend(`{"type":"session.created","session":{"id":"sess_1"}}`)
				if _, _, err := p.recv(); err != nil {
					p.t.Errorf("fake server: %v", err)
					return
				}
				p.mustSend(`{"type":"error","event_id":"event_9","error":{"type":"invalid_request_error","code":"unknown_parameter","message":"Unknown parameter: 'session.input_audio_format'.","param":"session.input_audio_format","event_id":"evt_1"}}`)
				closes <- p.drain()
			},
			check: func(t *testing.T, err error) {
				var pe *ProtocolError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, "unknown_parameter", pe.Detail.Code)
				require.Equal(t, "evt_1", pe.Detail.EventID, "error.event_id names our session.update")
			},
		},
		{
			name: "preview beta_api_shape_disabled then close 4000",
			path: "/openai/realtime?api-version=2025-04-01-preview",
			server: func(p *peer, closes chan<- error) {
				p.mustSend(`{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"beta_api_shape_disabled","message":"The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."}}`)
				_ = p.c.Close(4000, "beta api shape disabled")
				closes <- nil
			},
			check: func(t *testing.T, err error) {
				var pe *ProtocolError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, "beta_api_shape_disabled", pe.Detail.Code)
				require.Equal(t, "invalid_request_error", pe.Detail.Type)
			},
		},
		{
			name: "close frame during handshake",
			path: "/v1/realtime",
			server: func(p *peer, closes chan<- error) {
				p.mustSend(`{"type":"session.created","session":{"id":"sess_1"}}`)
				_ = p.c.Close(websocket.StatusInternalError, "boom")
				closes <- nil
			},
			check: func(t *testing.T, err error) {
				var ce *CloseError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, 1011, ce.Code)
				require.Equal(t, "boom", ce.Reason)
			},
		},
		{
			name: "drop during handshake",
			path: "/v1/realtime",
			server: func(p *peer, closes chan<- error) {
				_ = p.c.CloseNow()
				closes <- nil
			},
			check: func(t *testing.T, err error) {
				var ce *CloseError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, -1, ce.Code)
			},
		},
		{
			name:    "no session.created within the dial timeout",
			path:    "/v1/realtime",
			timeout: 100 * time.Millisecond,
			server: func(p *peer, closes chan<- error) {
				closes <- p.drain()
			},
			check: func(t *testing.T, err error) {
				var de *DialError
				require.ErrorAs(t, err, &de)
				require.Equal(t, 0, de.StatusCode)
				require.ErrorIs(t, err, context.DeadlineExceeded)
			},
		},
		{
			name:    "no session.updated within the dial timeout",
			path:    "/v1/realtime",
			timeout: 100 * time.Millisecond,
			server: func(p *peer, closes chan<- error) {
				p.mustSend(`{"type":"session.created","session":{"id":"sess_1"}}`)
				closes <- p.drain()
			},
			check: func(t *testing.T, err error) {
				var de *DialError
				require.ErrorAs(t, err, &de)
				require.ErrorIs(t, err, context.DeadlineExceeded)
				require.Contains(t, err.Error(), "session.updated")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			closes := make(chan error, 1)
			fs := newFakeServer(t, func(p *peer) { tt.server(p, closes) })
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			s, err := Dial(context.Background(), DialConfig{Region: "r", URL: wsURL(fs.srv, tt.path), APIKey: testKey, DialTimeout: timeout}, testConfig(), nil)
			require.Nil(t, s)
			tt.check(t, err)
			// The client closed its socket: the server's read ends.
			select {
			case <-closes:
			case <-time.After(10 * time.Second):
				require.FailNow(t, "client did not close the socket")
			}
		})
	}
}

func TestDialRejectsBadInputWithoutConnecting(t *testing.T) {
	fs := newFakeServer(t, func(p *peer) { t.Error("no connection expected") })

	_, err := Dial(context.Background(), DialConfig{URL: "https://api.openai.com/v1/realtime"}, testConfig(), nil)
	var de *DialError
	require.ErrorAs(t, err, &de, "unusable URL")

	bad := testConfig()
	bad.InputFormat = "opus"
	_, err = Dial(context.Background(), DialConfig{URL: wsURL(fs.srv, "/v1/realtime")}, bad, nil)
	require.ErrorContains(t, err, "unknown audio format")
	require.False(t, errors.As(err, &de), "a bad config is not a region failure")
}

// ---- events ------------------------------------------------------------------

// TestEventsInOrder sends more events than the event buffer holds before the
// consumer reads any: the reader must wait, not drop. A malformed event in
// the middle is skipped.
func TestEventsInOrder(t *testing.T) {
	const n = 1500
	sent := make(chan struct{})
	fs := newFakeServer(t, func(p *peer) {
		if _, ok := p.handshake(); !ok {
			return
		}
		for i := range n {
			var ev string
			switch i % 3 {
			case 0:
				audio := base64.StdEncoding.EncodeToString([]byte{byte(i), byte(i >> 8), 0xff})
				ev = fmt.Sprintf(`{"type":"response.output_audio.delta","item_id":"msg_%d","delta":%q}`, i, audio)
			case 1:
				ev = fmt.Sprintf(`{"type":"response.output_audio_transcript.delta","item_id":"msg_%d","delta":"w%d "}`, i, i)
			case 2:
				ev = fmt.Sprintf(`{"type":"response.mcp_call.in_progress","item_id":"msg_%d"}`, i)
			}
			if err := p.send(ev); err != nil {
				p.t.Errorf("fake server: %v", err)
				return
			}
			if i == n/2 {
				p.mustSend(`{"type":"response.done","response":`) // undecodable: skipped
				p.mustSend(`{"no_type":true}`)
			}
		}
		close(sent)
		_ = p.c.Close(websocket.StatusGoingAway, "Your session hit the maximum duration of 60 minutes.")
	})
	c := dialTest(t, wsURL(fs.srv, "/v1/realtime"), dialOptions{})
	<-sent // everything is in flight before the consumer starts reading

	evs := drainEvents(t, c)
	require.Len(t, evs, n+3)
	for i, ev := range evs[3:] {
		require.Equal(t, fmt.Sprintf("msg_%d", i), ev.ItemID)
		switch i % 3 {
		case 0:
			require.Equal(t, EvOutputAudioDelta, ev.Type)
			require.Equal(t, []byte{byte(i), byte(i >> 8), 0xff}, ev.Audio)
			require.Empty(t, ev.Delta)
		case 1:
			require.Equal(t, EvOutputAudioTranscriptDelta, ev.Type)
			require.Equal(t, fmt.Sprintf("w%d ", i), ev.Delta)
		case 2:
			require.Equal(t, "response.mcp_call.in_progress", ev.Type, "unknown events are delivered")
		}
	}
	waitDone(t, c)
	var ce *CloseError
	require.ErrorAs(t, c.Err(), &ce)
	require.Equal(t, 1001, ce.Code)
	require.Equal(t, "Your session hit the maximum duration of 60 minutes.", ce.Reason)
}

func TestPreviewEventsNormalised(t *testing.T) {
	fs := newFakeServer(t, func(p *peer) {
		if _, ok := p.handshake(); !ok {
			return
		}
		p.mustSend(`{"type":"conversation.item.created","item":{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"audio"}]}}`)
		p.mustSend(`{"type":"response.audio.delta","item_id":"msg_1","delta":"AQID"}`)
		p.mustSend(`{"type":"response.audio_transcript.done","item_id":"msg_1","transcript":"Hi"}`)
		_ = p.drain()
	})
	c := dialTest(t, wsURL(fs.srv, "/openai/realtime?api-version=2025-04-01-preview"), dialOptions{})
	skipHandshakeEvents(t, c)
	ev := nextEvent(t, c)
	require.Equal(t, EvItemAdded, ev.Type)
	require.Equal(t, "conversation.item.created", ev.WireType)
	require.Equal(t, "output_audio", ev.Item.Content[0].Type)
	ev = nextEvent(t, c)
	require.Equal(t, EvOutputAudioDelta, ev.Type)
	require.Equal(t, []byte{1, 2, 3}, ev.Audio)
	ev = nextEvent(t, c)
	require.Equal(t, EvOutputAudioTranscriptDone, ev.Type)
	require.Equal(t, "Hi", ev.Transcript)
}

// ---- sending -------------------------------------------------------------------

// TestAudioAndControlEvents checks appends (shape, base64, order, no frame
// lost) and that commit comes after the audio queued before it, and that
// every control event carries a unique event_id.
func TestAudioAndControlEvents(t *testing.T) {
	type clientEvent struct {
		m   map[string]any
		raw []byte
	}
	got := make(chan clientEvent, 1024)
	fs := newFakeServer(t, func(p *peer) {
		if _, ok := p.handshake(); !ok {
			return
		}
		for {
			m, raw, err := p.recv()
			if err != nil {
				var ce websocket.CloseError
				if !errors.As(err, &ce) {
					p.t.Errorf("fake server: %v", err)
				}
				close(got)
				return
			}
			got <- clientEvent{m, raw}
		}
	})
	c := dialTest(t, wsURL(fs.srv, "/openai/realtime?api-version=2025-04-01-preview"), dialOptions{})
	ctx := context.Background()

	var want []byte
	for i := range 40 {
		frame := bytes.Repeat([]byte{byte(i)}, 160) // 20 ms of G.711
		frame[0] = 0xff
		want = append(want, frame...)
		require.True(t, c.AppendAudio(frame))
		// The frame was copied: scribbling over it afterwards changes nothing.
		for j := range frame {
			frame[j] = 0
		}
	}
	require.True(t, c.AppendAudio(nil), "an empty frame is a no-op")
	require.NoError(t, c.CommitAudio(ctx))
	require.NoError(t, c.CreateItem(ctx, Item{Type: "message", Role: "assistant", Content: []ContentPart{{Type: "output_text", Text: "Earlier answer."}}}, "root"))
	require.NoError(t, c.CreateResponse(ctx, ResponseParams{Instructions: "Greet."}))
	require.NoError(t, c.Truncate(ctx, "msg_7", 0, 1500))
	require.NoError(t, c.CancelResponse(ctx, "resp_1"))
	require.NoError(t, c.DeleteItem(ctx, "item_3"))
	require.NoError(t, c.ClearAudio(ctx))
	require.NoError(t, c.UpdateSession(ctx, testConfig()))
	require.Zero(t, c.DroppedAudioFrames())

	var audio []byte
	var controls []clientEvent
	ids := map[string]bool{"evt_1": true} // the handshake's session.update
	for len(controls) < 8 {
		var ev clientEvent
		select {
		case ev = <-got:
		case <-time.After(10 * time.Second):
			require.FailNow(t, "missing client events", "got %d controls", len(controls))
		}
		if ev.m["type"] == "input_audio_buffer.append" {
			require.Len(t, ev.m, 2, "append carries only type and audio: %s", ev.raw)
			require.True(t, bytes.HasPrefix(ev.raw, []byte(`{"type":"input_audio_buffer.append","audio":"`)))
			b, err := base64.StdEncoding.DecodeString(ev.m["audio"].(string))
			require.NoError(t, err)
			require.LessOrEqual(t, len(b), coalesceMs*FormatPCMU.BytesPerMs(), "coalesced appends stay within 100 ms")
			require.Empty(t, controls, "all audio precedes the commit")
			audio = append(audio, b...)
			continue
		}
		id, _ := ev.m["event_id"].(string)
		require.True(t, strings.HasPrefix(id, "evt_"), "control event without event_id: %s", ev.raw)
		require.False(t, ids[id], "duplicate event_id %s", id)
		ids[id] = true
		controls = append(controls, ev)
	}
	require.Equal(t, want, audio)

	var types []string
	for _, ev := range controls {
		types = append(types, ev.m["type"].(string))
	}
	require.Equal(t, []string{"input_audio_buffer.commit", "conversation.item.create", "response.create",
		"conversation.item.truncate", "response.cancel", "conversation.item.delete", "input_audio_buffer.clear", "session.update"}, types)
	require.Contains(t, string(controls[1].raw), `"previous_item_id":"root"`)
	require.Contains(t, string(controls[1].raw), `{"type":"text","text":"Earlier answer."}`, "preview maps output_text to text")
	require.Contains(t, string(controls[2].raw), `"response":{"instructions":"Greet."}`)
	require.Contains(t, string(controls[3].raw), `"item_id":"msg_7","content_index":0,"audio_end_ms":1500`)
	require.Contains(t, string(controls[4].raw), `"response_id":"resp_1"`)
	require.Contains(t, string(controls[7].raw), `"input_audio_format":"g711_ulaw"`, "updates use the session's dialect")

	require.NoError(t, c.Close())
	for range got { // the server saw the close and stopped
	}
}

// TestAudioDroppedWhenWriterStalled: the server stops reading, so the socket
// backs up. AppendAudio must start dropping (not block), control sends must
// give up with their ctx, and Close must still return.
func TestAudioDroppedWhenWriterStalled(t *testing.T) {
	release := make(chan struct{})
	fs := newFakeServer(t, func(p *peer) {
		if _, ok := p.handshake(); !ok {
			return
		}
		select { // stop reading until the test is done
		case <-release:
		case <-p.ctx.Done():
		}
	})
	defer close(release)
	c := dialTest(t, wsURL(fs.srv, "/v1/realtime"), dialOptions{closeWait: 50 * time.Millisecond})

	// Push until the socket is full and the ring stays full: a burst alone
	// can fill the ring while the writer is still draining it, so only
	// count it as stalled after many refusals in a row with yields between.
	frame := make([]byte, 32<<10)
	refused := 0
	for i := 0; i < 50000 && refused < 200; i++ {
		if c.AppendAudio(frame) {
			refused = 0
			continue
		}
		refused++
		time.Sleep(time.Millisecond)
	}
	require.Equal(t, 200, refused, "AppendAudio never reported a full queue")
	require.GreaterOrEqual(t, c.DroppedAudioFrames(), uint64(200))

	// The control queue is bounded: once full, a send waits for its ctx.
	var err error
	for i := 0; i <= controlQueueSize+1 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err = c.CancelResponse(ctx, "")
		cancel()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.NoError(t, c.Close())
	waitDone(t, c)
	require.ErrorIs(t, c.Err(), ErrSessionClosed)
}

func TestAppendAudioOversizedFrame(t *testing.T) {
	fs := newFakeServer(t, func(p *peer) {
		if _, ok := p.handshake(); ok {
			_ = p.drain()
		}
	})
	c := dialTest(t, wsURL(fs.srv, "/v1/realtime"), dialOptions{})
	require.False(t, c.AppendAudio(make([]byte, maxAudioFrame+1)))
	require.Equal(t, uint64(1), c.DroppedAudioFrames())
}

// ---- ending ----------------------------------------------------------------------

func TestSessionEnd(t *testing.T) {
	tests := []struct {
		name       string
		end        func(p *peer)
		wantCode   int
		wantReason string
		wantEvents []string
	}{
		{
			name: "close 1001 at the session limit",
			end: func(p *peer) {
				_ = p.c.Close(websocket.StatusGoingAway, "Your session hit the maximum duration of 60 minutes.")
			},
			wantCode:   1001,
			wantReason: "Your session hit the maximum duration of 60 minutes.",
		},
		{
			name: "session_expired error then close 1001",
			end: func(p *peer) {
				p.mustSend(`{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"session_expired","message":"Your session hit the maximum duration of 60 minutes.","param":null,"event_id":null}}`)
				_ = p.c.Close(websocket.StatusGoingAway, "")
			},
			wantCode:   1001,
			wantEvents: []string{EvError},
		},
		{
			name: "beta disabled close 4000",
			end: func(p *peer) {
				p.mustSend(`{"type":"error","error":{"type":"invalid_request_error","code":"beta_api_shape_disabled"}}`)
				_ = p.c.Close(4000, "beta")
			},
			wantCode:   4000,
			wantReason: "beta",
			wantEvents: []string{EvError},
		},
		{
			name:     "abrupt TCP drop",
			end:      func(p *peer) { _ = p.c.CloseNow() },
			wantCode: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t, func(p *peer) {
				if _, ok := p.handshake(); ok {
					tt.end(p)
				}
			})
			c := dialTest(t, wsURL(fs.srv, "/v1/realtime"), dialOptions{})
			evs := drainEvents(t, c)
			var types []string
			for _, ev := range evs[3:] {
				types = append(types, ev.Type)
			}
			require.Equal(t, tt.wantEvents, types)
			waitDone(t, c)

			var ce *CloseError
			require.ErrorAs(t, c.Err(), &ce)
			require.Equal(t, tt.wantCode, ce.Code)
			require.Equal(t, tt.wantReason, ce.Reason)
			if tt.wantCode == -1 {
				require.Error(t, ce.Err)
			}

			// An ended session refuses work without blocking.
			require.ErrorIs(t, c.CreateResponse(context.Background(), ResponseParams{}), ErrSessionClosed)
			require.ErrorIs(t, c.CommitAudio(context.Background()), ErrSessionClosed)
			require.False(t, c.AppendAudio([]byte{1}))
			require.NoError(t, c.Close())
			require.Equal(t, tt.wantCode, ce.Code, "Close keeps the original cause")
			var after *CloseError
			require.ErrorAs(t, c.Err(), &after)
		})
	}
}

func TestCloseIsIdempotentAndLeavesNoGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	closes := make(chan error, 1)
	fs := newFakeServer(t, func(p *peer) {
		if _, ok := p.handshake(); ok {
			closes <- p.drain()
		}
	})
	c, err := dial(context.Background(), DialConfig{Region: "r", URL: wsURL(fs.srv, "/v1/realtime"), APIKey: testKey}, testConfig(), nil, dialOptions{})
	require.NoError(t, err)

	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.NoError(t, c.Close())
		}()
	}
	wg.Wait()
	require.NoError(t, c.Close())

	var ce websocket.CloseError
	require.ErrorAs(t, <-closes, &ce)
	require.Equal(t, websocket.StatusNormalClosure, ce.Code)

	select {
	case <-c.Done():
	default:
		require.FailNow(t, "Done not closed after Close")
	}
	evs := drainEvents(t, c) // closed, possibly with the handshake events
	require.LessOrEqual(t, len(evs), 3)
	require.ErrorIs(t, c.Err(), ErrSessionClosed)
	require.ErrorIs(t, c.UpdateSession(context.Background(), testConfig()), ErrSessionClosed)
	require.ErrorIs(t, c.DeleteItem(context.Background(), "x"), ErrSessionClosed)

	fs.cancel()
	fs.srv.Close()
	fs.wg.Wait()
	goleak.VerifyNone(t, before)
}

// TestCloseWithStalledConsumer: the consumer never reads Events() and the
// buffer is full; Close must not wait for it.
func TestCloseWithStalledConsumer(t *testing.T) {
	sent := make(chan struct{})
	fs := newFakeServer(t, func(p *peer) {
		if _, ok := p.handshake(); !ok {
			return
		}
		for range eventQueueSize + 100 {
			if err := p.send(`{"type":"input_audio_buffer.speech_started","audio_start_ms":1}`); err != nil {
				return
			}
		}
		close(sent)
		_ = p.drain()
	})
	c := dialTest(t, wsURL(fs.srv, "/v1/realtime"), dialOptions{})
	<-sent
	// The reader is now blocked on a full Events() buffer.
	require.Eventually(t, func() bool { return len(c.Events()) == eventQueueSize }, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	waitDone(t, c)
}

// ---- secrets ------------------------------------------------------------------

// TestAPIKeyNeverLogged runs a session, a rejected dial and a refused dial
// with debug logging, the key in the header and in the URL, and a server
// that echoes the key back; the key must appear in no log line and no error.
func TestAPIKeyNeverLogged(t *testing.T) {
	var logs syncBuffer
	log := debugLogger(&logs)

	fs := newFakeServer(t, func(p *peer) {
		if _, ok := p.handshake(); !ok {
			return
		}
		p.mustSend(`{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}`)
		p.mustSend(`not json at all ` + testKey)
		p.mustSend(`{"type":"input_audio_buffer.cleared"}`) // so the test knows the garbage was read
		_ = p.drain()
	})
	s, err := Dial(context.Background(), DialConfig{Region: "r", URL: wsURL(fs.srv, "/v1/realtime?api-key="+testKey), APIKey: testKey}, testConfig(), log)
	require.NoError(t, err)
	c := s.(*Conn)
	require.NoError(t, c.CreateResponse(context.Background(), ResponseParams{}))
	for !c.AppendAudio(make([]byte, 160)) {
	}
	skipHandshakeEvents(t, c)
	require.Equal(t, EvError, nextEvent(t, c).Type)
	require.Equal(t, EvInputCleared, nextEvent(t, c).Type, "the undecodable event was skipped")
	require.NoError(t, c.Close())
	require.Contains(t, logs.String(), "undecodable", "the bad event was logged")
	require.Contains(t, logs.String(), "realtime: dialing")

	echo := rejectingServer(t, http.StatusUnauthorized, `{"error":{"message":"Incorrect API key provided: `+testKey+`"}}`)
	_, err = Dial(context.Background(), DialConfig{Region: "r", URL: wsURL(echo, "/v1/realtime?api-key="+testKey), APIKey: testKey}, testConfig(), log)
	var de *DialError
	require.ErrorAs(t, err, &de)
	require.Equal(t, http.StatusUnauthorized, de.StatusCode)
	require.NotContains(t, de.Body, testKey)
	require.NotContains(t, err.Error(), testKey)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = Dial(context.Background(), DialConfig{Region: "r", URL: "ws://" + addr + "/v1/realtime?api-key=" + testKey, APIKey: testKey}, testConfig(), log)
	require.ErrorAs(t, err, &de)
	require.NotContains(t, err.Error(), testKey)
	require.NotContains(t, de.Err.Error(), testKey)

	_, err = Dial(context.Background(), DialConfig{URL: "wss://[::1/x?api-key=" + testKey, APIKey: testKey}, testConfig(), log)
	require.Error(t, err)
	require.NotContains(t, err.Error(), testKey)

	require.NotContains(t, logs.String(), testKey)
}
