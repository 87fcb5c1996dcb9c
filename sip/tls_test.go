package sip

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/failover"
)

// testCert is a self-signed certificate for 127.0.0.1 made at test time
// (no key is committed).
type testCert struct {
	cert    tls.Certificate
	pool    *x509.CertPool
	certPEM []byte
	keyPEM  []byte
}

func newTestCert(t *testing.T, cn string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	tc := testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		pool:    x509.NewCertPool(),
	}
	tc.cert, err = tls.X509KeyPair(tc.certPEM, tc.keyPEM)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	tc.pool.AddCert(leaf)
	return tc
}

// tlsHarness serves UDP and TLS (index 1 in Addrs).
func tlsHarness(t *testing.T, cert testCert, opts ...harnessOpt) *harness {
	t.Helper()
	return newHarness(t, append([]harnessOpt{func(c *Config, _ *harness) {
		c.Listen = append(c.Listen, Listener{Network: "tls", Addr: "127.0.0.1:0",
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.cert}}})
	}}, opts...)...)
}

// tlsUAC is a sipgo caller over TLS that answers our BYE.
type tlsUAC struct {
	ua     *sipgo.UserAgent
	client *sipgo.Client
	dua    sipgo.DialogUA
	byes   chan *sip.Request
}

func newTLSUAC(t *testing.T, pool *x509.CertPool) *tlsUAC {
	t.Helper()
	discard := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-tls-uac"),
		sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(discard)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(discard)))
	require.NoError(t, err)
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(discard))
	require.NoError(t, err)
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientLogger(discard))
	require.NoError(t, err)
	u := &tlsUAC{ua: ua, client: client, byes: make(chan *sip.Request, 4)}
	contact := sip.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1", UriParams: sip.NewParams()}
	contact.UriParams.Add("transport", "tls")
	u.dua = sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: contact}}
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		u.byes <- req
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	t.Cleanup(func() { _ = ua.Close() })
	return u
}

func TestTLSCall(t *testing.T) {
	for _, scheme := range []string{"sip", "sips"} {
		t.Run(scheme, func(t *testing.T) {
			cert := newTestCert(t, "sipbridge-test")
			h := tlsHarness(t, cert)
			tlsAddr := h.srv.Addrs()[1]
			require.Equal(t, "tls", tlsAddr.Network())
			host, port, err := sip.ParseAddr(tlsAddr.String())
			require.NoError(t, err)

			u := newTLSUAC(t, cert.pool)
			target := sip.Uri{Scheme: scheme, User: "ai", Host: host, Port: port, UriParams: sip.NewParams()}
			// sipgo's UAC sends a bare sips: URI over UDP (and
			// sips;transport=tcp over plain TCP): name TLS explicitly.
			target.UriParams.Add("transport", "tls")
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			dlg, err := u.dua.Invite(ctx, target, []byte(offer(4000, "0")), sip.NewHeader("Content-Type", "application/sdp"))
			require.NoError(t, err)
			require.NoError(t, dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}))
			res := dlg.InviteResponse
			require.Equal(t, sip.StatusOK, res.StatusCode)
			contact := res.Contact().Address
			require.Equal(t, port, contact.Port, "Contact names the TLS listener")
			if scheme == "sips" {
				require.Equal(t, "sips", contact.Scheme, "RFC 3261 §12.1.1: sips Request-URI, sips Contact")
			} else {
				tp, _ := contact.UriParams.Get("transport")
				require.Equal(t, "tls", tp)
			}
			require.NoError(t, dlg.Ack(ctx))

			// The model hangs up: our BYE reaches the caller over its own
			// TLS connection (it comes from our listening port, and the
			// caller has no listener to be dialled on).
			conv := h.conv()
			conv.controls <- failover.Control{Kind: failover.ControlEndCall, Reason: "done"}
			var bye *sip.Request
			select {
			case bye = <-u.byes:
			case <-time.After(wait):
				t.Fatal("no BYE over TLS")
			}
			require.Equal(t, "TLS", bye.Via().Transport, "Via: SIP/2.0/TLS")
			require.Equal(t, tlsAddr.String(), bye.Source(), "the BYE came over the caller's connection")
			h.waitEnd(EndModelHangup, 1)
			require.Empty(t, h.logs.lines("TLS handshake failed"))
		})
	}
}

// TestTLSListenerSurvivesJunk: plain SIP on the TLS port, a silent
// connection and a client that distrusts our certificate cost a
// connection each, not the listener.
func TestTLSListenerSurvivesJunk(t *testing.T) {
	cert := newTestCert(t, "sipbridge-test")
	h := tlsHarness(t, cert)
	addr := h.srv.Addrs()[1].String()

	plain, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = plain.Write([]byte("OPTIONS sip:ai@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-x\r\nContent-Length: 0\r\n\r\n"))
	require.NoError(t, err)
	require.NoError(t, plain.SetReadDeadline(time.Now().Add(wait)))
	buf := make([]byte, 512)
	n, _ := plain.Read(buf)
	require.NotContains(t, string(buf[:n]), "SIP/2.0 200", "no SIP answer in plain text on the TLS port")
	_ = plain.Close()

	silent, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer silent.Close()

	other := newTestCert(t, "someone-else")
	_, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: other.pool, MinVersion: tls.VersionTLS12})
	require.Error(t, err, "our certificate is not in that pool")

	old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: cert.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		_ = old.Close()
	}
	require.Error(t, err, "TLS 1.1 is refused")

	// Still serving.
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: cert.pool, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	defer c.Close()
	lport := c.LocalAddr().(*net.TCPAddr).Port
	opt := newRawReq("OPTIONS", addr, lport, "tls-opt")
	opt.set("Via:", "Via: SIP/2.0/TLS 127.0.0.1:"+strconv.Itoa(lport)+";branch=z9hG4bK-tls-opt")
	_, err = c.Write([]byte(opt.String()))
	require.NoError(t, err)
	require.Equal(t, sip.StatusOK, statusOf(t, readStreamResponse(t, c)))
	require.Eventually(t, func() bool { return len(h.logs.lines("TLS handshake failed")) > 0 }, wait, 10*time.Millisecond)
}

func TestTLSHandshakeTimeout(t *testing.T) {
	cert := newTestCert(t, "sipbridge-test")
	srvSide, cliSide := net.Pipe()
	defer cliSide.Close()
	var failed error
	hc := &handshakeConn{Conn: tls.Server(srvSide, &tls.Config{Certificates: []tls.Certificate{cert.cert}}),
		failed: func(_ net.Addr, err error) { failed = err }}
	// The peer says nothing: the handshake gives up at the deadline. A
	// short deadline stands in for tlsHandshakeTimeout.
	require.NoError(t, hc.Conn.SetDeadline(time.Now().Add(200*time.Millisecond)))
	n, err := hc.Read(make([]byte, 10))
	require.Zero(t, n)
	require.ErrorIs(t, err, io.EOF)
	require.Error(t, failed)
}

func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	one, two := newTestCert(t, "one"), newTestCert(t, "two")
	write := func(c testCert, at time.Time) {
		require.NoError(t, os.WriteFile(certFile, c.certPEM, 0o600))
		require.NoError(t, os.WriteFile(keyFile, c.keyPEM, 0o600))
		require.NoError(t, os.Chtimes(certFile, at, at))
		require.NoError(t, os.Chtimes(keyFile, at, at))
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	write(one, t0)
	r, err := newCertReloader(certFile, keyFile)
	require.NoError(t, err)
	now := time.Now()
	r.now = func() time.Time { return now }
	cn := func() string {
		c, err := r.GetCertificate(nil)
		require.NoError(t, err)
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		require.NoError(t, err)
		return leaf.Subject.CommonName
	}
	require.Equal(t, "one", cn())

	write(two, t0.Add(time.Minute))
	require.Equal(t, "one", cn(), "files are checked at most every certCheckInterval")
	now = now.Add(certCheckInterval)
	require.Equal(t, "two", cn(), "a renewed pair is picked up")

	// A broken renewal keeps the pair in service.
	require.NoError(t, os.WriteFile(keyFile, []byte("garbage"), 0o600))
	now = now.Add(certCheckInterval)
	require.Equal(t, "two", cn())

	_, err = newCertReloader(filepath.Join(dir, "missing.pem"), keyFile)
	require.Error(t, err)
}

func TestTLSListenerConfig(t *testing.T) {
	cert := newTestCert(t, "x")
	tests := []struct {
		name string
		l    Listener
		want string
	}{
		{"no certificate", Listener{Network: "tls", Addr: "127.0.0.1:0"}, "certificate and key files are required"},
		{"config without certificate", Listener{Network: "tls", Addr: "127.0.0.1:0", TLSConfig: &tls.Config{}}, "without a certificate"},
		{"unreadable files", Listener{Network: "tls", Addr: "127.0.0.1:0", CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}, "certificate file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Config{Listen: []Listener{tc.l}}.withDefaults()
			require.ErrorIs(t, err, ErrConfig)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	c, err := Config{Listen: []Listener{{Network: "TLS", Addr: "127.0.0.1:0",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.cert}, MinVersion: tls.VersionTLS10}}}}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS12), c.Listen[0].TLSConfig.MinVersion, "TLS 1.2 at least")
	require.Equal(t, "tcp6", streamNetwork("tls6"), "not wss (sipgo's ListenAndServeTLS mapping)")
}
