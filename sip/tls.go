package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// SIP over TLS (RFC 3261 §26.2.1, §18): a Listener with Network "tls"
// ("tls4", "tls6") serves TLS on a TCP socket we bind ourselves and hand to
// sipgo's ServeTLS. sipgo's ListenAndServeTLS is not used: it maps "tcp6" to
// WSS. The malformed-message guard wraps the TLS listener, so it frames the
// decrypted stream exactly as it does plain TCP.
//
// Responses and in-dialog requests to a TLS caller go back over the
// caller's connection: sipgo pools accepted connections by remote address,
// and our BYE is sent to the INVITE's source (DialogUA.RewriteContact).
// Our Contact for a TLS dialog carries ;transport=tls, or is a sips: URI
// when the Request-URI was (RFC 3261 §12.1.1).

// TLS policy.
const (
	// tlsHandshakeTimeout bounds a handshake (a peer that connects and
	// says nothing must not hold a goroutine forever).
	tlsHandshakeTimeout = 10 * time.Second
	// certCheckInterval: how often the certificate files are checked for
	// a renewal (the new pair is used for new connections).
	certCheckInterval = 30 * time.Second
)

// isTLSNetwork reports whether a Listener network is TLS.
func isTLSNetwork(n string) bool {
	switch strings.ToLower(n) {
	case "tls", "tls4", "tls6":
		return true
	}
	return false
}

// streamNetwork is the socket network of a stream Listener: TLS runs on TCP.
func streamNetwork(n string) string {
	if isTLSNetwork(n) {
		return "tcp" + strings.TrimPrefix(strings.ToLower(n), "tls")
	}
	return n
}

// tlsListenerDefaults checks a TLS listener and builds its tls.Config: the
// one given (TLS 1.2 at least is enforced), else one serving CertFile and
// KeyFile, reloaded when they change.
func tlsListenerDefaults(l *Listener) error {
	if l.TLSConfig != nil {
		c := l.TLSConfig.Clone()
		if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
		if len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil {
			return fmt.Errorf("%w: tls listener %s: TLS config without a certificate", ErrConfig, l.Addr)
		}
		l.TLSConfig = c
		return nil
	}
	if l.CertFile == "" || l.KeyFile == "" {
		return fmt.Errorf("%w: tls listener %s: certificate and key files are required", ErrConfig, l.Addr)
	}
	r, err := newCertReloader(l.CertFile, l.KeyFile)
	if err != nil {
		return fmt.Errorf("%w: tls listener %s: %w", ErrConfig, l.Addr, err)
	}
	l.TLSConfig = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
	}
	return nil
}

// certReloader serves a certificate pair from files and picks up a renewed
// pair (checked at most every certCheckInterval). A pair that fails to load
// keeps the previous one in service.
type certReloader struct {
	certFile, keyFile string
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // modification times of both files
	checked time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, now: time.Now}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, r.now()
	return r, nil
}

func (r *certReloader) fileStamp() (string, error) {
	var parts []string
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("certificate file: %w", err)
		}
		parts = append(parts, st.ModTime().String(), fmt.Sprint(st.Size()))
	}
	return strings.Join(parts, "|"), nil
}

// GetCertificate is the tls.Config hook.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= certCheckInterval {
		r.checked = now
		if stamp, err := r.fileStamp(); err == nil && stamp != r.stamp {
			if cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile); err == nil {
				r.cert, r.stamp = &cert, stamp
			}
		}
	}
	return r.cert, nil
}

// tlsAddr is a TLS listener's address: Network says "tls", so logs and
// Addrs tell it from the plain TCP listener.
type tlsAddr struct{ net.Addr }

func (tlsAddr) Network() string { return "tls" }

// tlsListener accepts TCP connections and makes them TLS server
// connections whose handshake runs, bounded, on the first Read.
type tlsListener struct {
	net.Listener
	conf *tls.Config
	// failed is told about each failed handshake (rate-limited logging).
	failed func(remote net.Addr, err error)
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, l.conf), failed: l.failed}, nil
}

func (l *tlsListener) Addr() net.Addr { return tlsAddr{l.Listener.Addr()} }

// handshakeConn completes the TLS handshake within tlsHandshakeTimeout
// before the first read. A failed handshake closes the connection and reads
// as EOF, so sipgo drops it quietly (scanners and plain-TCP clients hitting
// the TLS port are routine, not errors).
type handshakeConn struct {
	*tls.Conn
	failed func(remote net.Addr, err error)
	once   sync.Once
	err    error
}

func (c *handshakeConn) Read(p []byte) (int, error) {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
		defer cancel()
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			c.err = err
			if c.failed != nil {
				c.failed(c.Conn.RemoteAddr(), err)
			}
			_ = c.Conn.Close()
		}
	})
	if c.err != nil {
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

// wrapStream puts a bound stream socket behind the guard (and TLS).
func (s *Server) wrapStream(l Listener, ln net.Listener) net.Listener {
	if isTLSNetwork(l.Network) {
		return &guardedListener{Listener: &tlsListener{Listener: ln, conf: l.TLSConfig, failed: s.tlsHandshakeFailed},
			g: s.guard, transport: "tls"}
	}
	return &guardedListener{Listener: ln, g: s.guard, transport: "tcp"}
}

// serveStream hands a wrapped stream listener to sipgo.
func (s *Server) serveStream(l Listener, ln net.Listener) error {
	if isTLSNetwork(l.Network) {
		return s.srv.ServeTLS(ln)
	}
	return s.srv.ServeTCP(ln)
}

// tlsHandshakeFailed logs failed handshakes, rate-limited.
func (s *Server) tlsHandshakeFailed(remote net.Addr, err error) {
	if errors.Is(err, io.EOF) {
		return // connected and left: a port probe
	}
	if ok, suppressed := s.badLog.Allow(); ok {
		addr := ""
		if remote != nil {
			addr = remote.String()
		}
		s.log.Info("sip: TLS handshake failed", "src", addr, "error", sanitizePhrase(err.Error()), "suppressed", suppressed)
	}
}
