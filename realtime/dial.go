package realtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

const (
	// readLimit replaces coder/websocket's 32 KiB default: session.updated
	// with long instructions or conversation.item.retrieved with audio exceed
	// it (§4 "Client WebSocket settings"; style §2.4).
	readLimit = 16 << 20
	// maxErrorBody is how much of a failed upgrade's body is kept; it is also
	// all coder/websocket lets us read.
	maxErrorBody = 1024
)

// dialOptions are test seams; the zero value is production behaviour.
type dialOptions struct {
	// netDial replaces the TCP dialer (tests route Azure host names to a
	// local server with it).
	netDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// closeWait replaces closeWait.
	closeWait time.Duration
}

// Dial opens a session: WebSocket upgrade with auth, waits for
// session.created, sends session.update built from sc, waits for
// session.updated. The returned Session is ready for audio.
//
// The upgrade and the handshake together are bounded by dc.DialTimeout
// (default 10 s); ctx only bounds the dial, not the session, which lives
// until Close or until the socket ends. Errors:
//   - *DialError: the upgrade failed (StatusCode 0 when no HTTP response
//     arrived, e.g. connection refused), the URL is unusable, the region's
//     dialect refuses its voice (a *VoiceError inside), or the handshake
//     timed out; a 429 carries RetryAfter and a *RateLimitError inside
//     (AsRateLimit);
//   - *ProtocolError: an `error` event arrived during the handshake (for
//     example an unknown parameter, or beta_api_shape_disabled, §0);
//   - *CloseError: the socket closed during the handshake;
//   - any other error: sc cannot be encoded (the same in every region).
//
// The API key is sent as a header (§1.1, §1.2) and never logged.
func Dial(ctx context.Context, dc DialConfig, sc SessionConfig, log *slog.Logger) (Session, error) {
	c, err := dial(ctx, dc, sc, log, dialOptions{})
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return c, nil
}

func dial(ctx context.Context, dc DialConfig, sc SessionConfig, log *slog.Logger, opts dialOptions) (*Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := DialectForURL(dc.URL)
	if err != nil {
		return nil, &DialError{Region: dc.Region, Err: err}
	}
	hdr, err := dialHeaders(dc, d)
	if err != nil {
		return nil, &DialError{Region: dc.Region, Err: err}
	}
	wait := opts.closeWait
	if wait <= 0 {
		wait = closeWait
	}
	voice, err := ResolveVoice(d, sc.Voice, dc.Voice)
	if err != nil {
		// The region cannot take this voice (regions[].voice refused by its
		// dialect): a configuration error of this region only.
		return nil, &DialError{Region: dc.Region, Err: err}
	}
	sc.Voice = voice
	c := newConn(dc, d, sc.InputFormat, log, wait)
	updateID := c.nextEventID()
	update, err := EncodeSessionUpdate(sc, d, updateID)
	if err != nil {
		c.cancel()
		return nil, err // already "realtime: encode session.update: …"; the same in every region
	}

	timeout := dc.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	start := time.Now()
	log.Debug("realtime: dialing", "region", dc.Region, "url", redactURL(dc.URL),
		"dialect", d.String(), "auth", ResolveAuth(dc.URL, dc.Auth).String())
	ws, raw, err := upgrade(dctx, dc, hdr, opts.netDial)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.ws, c.raw = ws, raw
	c.start()

	if err := c.handshake(dctx, updateID, update); err != nil {
		_ = c.Close()
		return nil, err
	}
	log.Info("realtime: session ready", "region", dc.Region, "session_id", c.id,
		"dialect", d.String(), "expires_at", c.expires, "took", time.Since(start))
	return c, nil
}

// upgrade performs the WebSocket upgrade. It uses its own transport so that
// the TCP connection can be captured (see rawConn), redirects are refused
// (custom headers such as api-key would follow a redirect to another host),
// compression is off (base64 audio does not compress, style §2.4) and no
// subprotocols are offered (§1.1).
func upgrade(ctx context.Context, dc DialConfig, hdr http.Header, netDial func(context.Context, string, string) (net.Conn, error)) (*websocket.Conn, *rawConn, error) {
	raw := &rawConn{}
	tr := newTransport(raw, netDial)
	// A refused upgrade's connection may sit idle in tr; tr is dropped now.
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ws, resp, err := websocket.Dial(ctx, dc.URL, &websocket.DialOptions{
		HTTPClient:      client,
		HTTPHeader:      hdr,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		raw.close()
		de := &DialError{Region: dc.Region, Err: redactError(err, dc)}
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			de.StatusCode = resp.StatusCode
			if resp.Body != nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
				de.Body = redactSecrets(strings.ToValidUTF8(string(b), "\uFFFD"), dc)
			}
			if rl := rateLimitFromHTTP(dc.Region, resp.StatusCode, resp.Header, de.Body, time.Now()); rl != nil {
				de.RetryAfter, de.Err = rl.RetryAfter, errors.Join(rl, de.Err)
			}
		}
		return nil, nil, de
	}
	ws.SetReadLimit(readLimit)
	return ws, raw, nil
}

func newTransport(raw *rawConn, netDial func(context.Context, string, string) (net.Conn, error)) *http.Transport {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone() // keeps proxy-from-environment and TLS defaults
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second}
	}
	tr.ForceAttemptHTTP2 = false // the upgrade needs HTTP/1.1
	if netDial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		netDial = d.DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := netDial(ctx, network, addr)
		if err == nil {
			raw.set(conn)
		}
		return conn, err
	}
	return tr
}

// handshake waits for session.created, sends session.update and waits for
// session.updated (§1.3, §2.1, §7 steps 1–2).
func (c *Conn) handshake(ctx context.Context, updateID string, update []byte) error {
	defer close(c.hsDone)
	ev, err := c.awaitHandshake(ctx, EvSessionCreated)
	if err != nil {
		return err
	}
	if s := ev.Session; s != nil {
		c.id = s.ID
		if s.ExpiresAt > 0 {
			c.expires = time.Unix(s.ExpiresAt, 0)
		}
	}
	if err := c.send(ctx, evSessionUpdate, updateID, update, false); err != nil {
		if errors.Is(err, ErrSessionClosed) {
			if cause := c.Err(); cause != nil {
				return cause
			}
		}
		return &DialError{Region: c.region, Err: fmt.Errorf("handshake: %w", err)}
	}
	_, err = c.awaitHandshake(ctx, EvSessionUpdated)
	return err
}

func (c *Conn) awaitHandshake(ctx context.Context, want string) (ServerEvent, error) {
	for {
		select {
		case ev := <-c.hs:
			switch ev.Type {
			case want:
				return ev, nil
			case EvError:
				var d ErrorDetail
				if ev.Error != nil {
					d = *ev.Error
				}
				return ev, &ProtocolError{Detail: d}
			}
			// Anything else (a repeated session.created, say) is not what
			// this step waits for.
		case <-c.done:
			return ServerEvent{}, c.Err()
		case <-ctx.Done():
			return ServerEvent{}, &DialError{Region: c.region,
				Err: fmt.Errorf("handshake: waiting for %s: %w", want, ctx.Err())}
		}
	}
}

// redactedError keeps an error's chain but replaces its text, which may
// quote the URL (and so an api-key query value).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redactError(err error, dc DialConfig) error {
	msg := err.Error()
	red := redactSecrets(msg, dc)
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

// redactSecrets removes the API key and any credential query values of the
// URL from s, raw and query-escaped.
func redactSecrets(s string, dc DialConfig) string {
	secrets := []string{dc.APIKey}
	if u, err := url.Parse(dc.URL); err == nil {
		for k, vs := range u.Query() {
			for _, sk := range secretQueryKeys {
				if strings.EqualFold(k, sk) {
					secrets = append(secrets, vs...)
				}
			}
		}
	}
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		s = strings.ReplaceAll(s, sec, "REDACTED")
		if esc := url.QueryEscape(sec); esc != sec {
			s = strings.ReplaceAll(s, esc, "REDACTED")
		}
	}
	return s
}
