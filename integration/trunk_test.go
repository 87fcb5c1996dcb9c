package integration

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// Trunk access control, TLS, large UDP messages, capacity and drain,
// through the binary.

const trunkPasswordEnv = "SIPBRIDGE_TEST_TRUNK_PASSWORD"

// adminMetric reads one series from the bridge's /metrics (0 when absent).
func adminMetric(t testing.TB, br *bridge, series string) float64 {
	t.Helper()
	res, err := http.Get("http://" + br.Admin + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

func rejectedWith(t *testing.T, err error, code int) *phone.ErrRejected {
	t.Helper()
	var rej *phone.ErrRejected
	require.ErrorAs(t, err, &rej)
	require.Equal(t, code, rej.Code, "%s", rej.Reason)
	return rej
}

// TestTrunkDigestThroughTheBinary: with a digest trunk, a caller with the
// password is challenged and then talks to the assistant; a wrong password
// gets 403 and no session; none of it reaches the log.
func TestTrunkDigestThroughTheBinary(t *testing.T) {
	t.Parallel()
	const pw = "Tr0ub4dor&3-for-the-trunk"
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridgeEnv(t, "sip:\n  trunks:\n    - name: pbx\n      allow: [127.0.0.1/32]\n      username: pbx-user\n      password_env: "+trunkPasswordEnv+"\n",
		[]string{trunkPasswordEnv + "=" + pw}, east)
	ph := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target(), Username: "pbx-user", Password: pw})
	require.NoError(t, err)
	call.Speak(callerHz, 1200*time.Millisecond, -20)
	_, err = call.WaitTone(ctx, eastHz, 0, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err, "the authenticated caller hears the assistant")
	require.NoError(t, call.Hangup(ctx))
	br.WaitLog(10*time.Second, "call ended", call.CallID())

	_, err = ph.Call(ctx, phone.CallOptions{Target: br.Target(), Username: "pbx-user", Password: "not-" + pw})
	rej := rejectedWith(t, err, 403)
	require.Nil(t, rej.Res.GetHeader("WWW-Authenticate"), "wrong credentials are not challenged again")
	_, err = ph.Call(ctx, phone.CallOptions{Target: br.Target()})
	rej = rejectedWith(t, err, 401)
	require.Len(t, rej.Res.GetHeaders("WWW-Authenticate"), 2, "SHA-256 and MD5")
	require.Contains(t, rej.Res.GetHeaders("WWW-Authenticate")[0].Value(), "algorithm=SHA-256")
	require.Contains(t, rej.Res.GetHeaders("WWW-Authenticate")[0].Value(), `qop="auth"`)

	require.Len(t, east.Sim.Sessions(), 1, "only the authenticated call opened a realtime session")
	require.Equal(t, 1.0, adminMetric(t, br, `sipbridge_sip_auth_failures_total{reason="bad_response"}`))
	require.Equal(t, 1.0, adminMetric(t, br, `sipbridge_sip_auth_admitted_total{method="digest"}`))
	require.NotContains(t, br.Logs(), pw, "the password is never logged")
	require.NotContains(t, br.Logs(), "response=", "Authorization headers are never logged")
	require.NotEmpty(t, br.LogLines("request not authorised", "reason=bad_response", "username=pbx-user", "trunk=pbx"))
}

// TestUnknownSourceGets403ThroughTheBinary: a source in no trunk's allow
// list gets 403 for INVITE and OPTIONS, and costs no session or call.
func TestUnknownSourceGets403ThroughTheBinary(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "sip:\n  trunks:\n    - name: carrier\n      allow: [192.0.2.0/24, 10.0.0.0/8]\n", east)
	ph := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := ph.Call(ctx, phone.CallOptions{Target: br.Target()})
	rej := rejectedWith(t, err, 403)
	require.Nil(t, rej.Res.GetHeader("WWW-Authenticate"))
	res := rawSIP(t, br.SIPAddr, "OPTIONS", "")
	require.True(t, strings.HasPrefix(res, "SIP/2.0 403"), res)

	require.Empty(t, east.Sim.Sessions(), "no realtime session for a refused caller")
	require.Empty(t, br.LogLines("call ended"), "no call was set up (nothing to tear down)")
	require.Zero(t, adminMetric(t, br, "sipbridge_calls_active"))
	require.Equal(t, 2.0, adminMetric(t, br, `sipbridge_sip_auth_failures_total{reason="source_not_allowed"}`))
}

// TestRepeatedFailuresBlockThroughTheBinary: past sip.auth_limit the
// source is dropped over UDP and refused without a challenge over TCP.
func TestRepeatedFailuresBlockThroughTheBinary(t *testing.T) {
	t.Parallel()
	const pw = "right-password"
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridgeEnv(t, "sip:\n  auth_limit:\n    failures: 1\n    window: 1m\n    block: 1m\n  trunks:\n    - name: pbx\n      username: pbx-user\n      password_env: "+trunkPasswordEnv+"\n",
		[]string{trunkPasswordEnv + "=" + pw}, east)
	ph := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 {
		_, err := ph.Call(ctx, phone.CallOptions{Target: br.Target(), Username: "pbx-user", Password: "guess"})
		rejectedWith(t, err, 403)
	}
	br.WaitLog(5*time.Second, "source blocked after repeated authorisation failures", "src=127.0.0.1")

	// UDP: no answer at all, even to OPTIONS.
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer conn.Close()
	dst, err := net.ResolveUDPAddr("udp", br.SIPAddr)
	require.NoError(t, err)
	port := conn.LocalAddr().(*net.UDPAddr).Port
	_, err = conn.WriteTo([]byte(fmt.Sprintf("OPTIONS sip:bot@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-blk1;rport\r\nFrom: <sip:x@127.0.0.1>;tag=b1\r\nTo: <sip:bot@%s>\r\nCall-ID: blk1@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		br.SIPAddr, port, br.SIPAddr)), dst)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(1500*time.Millisecond)))
	_, _, err = conn.ReadFrom(make([]byte, 2048))
	require.Error(t, err, "a blocked source gets no answer over UDP")

	// TCP: 403 without a challenge, even with nothing wrong in the request.
	tc, err := net.Dial("tcp", br.SIPAddr)
	require.NoError(t, err)
	defer tc.Close()
	tport := tc.LocalAddr().(*net.TCPAddr).Port
	body := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	_, err = fmt.Fprintf(tc, "INVITE sip:bot@%s;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK-blk2\r\nFrom: <sip:x@127.0.0.1>;tag=b2\r\nTo: <sip:bot@%s>\r\nCall-ID: blk2@test\r\nCSeq: 1 INVITE\r\nContact: <sip:x@127.0.0.1:%d;transport=tcp>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		br.SIPAddr, tport, br.SIPAddr, tport, len(body), body)
	require.NoError(t, err)
	res := readFinalFromStream(t, tc)
	require.True(t, strings.HasPrefix(res, "SIP/2.0 403"), res)
	require.NotContains(t, res, "WWW-Authenticate")

	require.Empty(t, east.Sim.Sessions())
	require.GreaterOrEqual(t, adminMetric(t, br, `sipbridge_sip_auth_failures_total{reason="blocked"}`), 2.0)
}

// readFinalFromStream reads responses from a stream until a final one.
func readFinalFromStream(t *testing.T, c net.Conn) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	r := bufio.NewReader(c)
	for {
		var head strings.Builder
		cl := 0
		for {
			line, err := r.ReadString('\n')
			require.NoError(t, err, "so far: %q", head.String())
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
			if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length:"); ok {
				cl, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		body := make([]byte, cl)
		_, err := io.ReadFull(r, body)
		require.NoError(t, err)
		msg := head.String() + string(body)
		if !strings.HasPrefix(msg, "SIP/2.0 1") {
			return msg
		}
	}
}

// writeTestCert makes a self-signed certificate for 127.0.0.1 at test time
// (no key is committed) and returns its files and a pool trusting it.
func writeTestCert(t *testing.T) (certFile, keyFile string, cert tls.Certificate, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "sipbridge integration"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, cert, pool
}

// TestTLSCallThroughTheBinary: a call over SIP/TLS is answered with a
// ;transport=tls Contact on the TLS port, the assistant is heard, and the
// bridge's BYE comes back over the caller's TLS connection.
func TestTLSCallThroughTheBinary(t *testing.T) {
	t.Parallel()
	certFile, keyFile, cert, pool := writeTestCert(t)
	tlsPort := freePort(t)
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, fmt.Sprintf("sip:\n  tls:\n    listen: 127.0.0.1:%d\n    cert_file: %s\n    key_file: %s\n", tlsPort, certFile, keyFile), east)
	require.NotEmpty(t, br.LogLines("sip listening", "network=tls", fmt.Sprintf("addr=127.0.0.1:%d", tlsPort)))

	ph, err := phone.New(context.Background(), phone.Config{Transport: "tls",
		ServerTLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ClientTLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	require.NoError(t, err)
	t.Cleanup(ph.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call, err := ph.Call(ctx, phone.CallOptions{Target: fmt.Sprintf("sip:bot@127.0.0.1:%d", tlsPort)})
	require.NoError(t, err)
	contact := call.InviteResponse().Contact().Address
	require.Equal(t, tlsPort, contact.Port, "Contact names the TLS listener")
	tp, _ := contact.UriParams.Get("transport")
	require.Equal(t, "tls", tp)

	call.Speak(callerHz, 1200*time.Millisecond, -20)
	_, err = call.WaitTone(ctx, eastHz, 0, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err, "media works beside TLS signalling")

	// The bridge stops (SIGINT hangs up every call): its BYE rides the
	// caller's connection, from the TLS listening port.
	require.NoError(t, br.stop(syscall.SIGINT, 15*time.Second))
	select {
	case <-call.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("no BYE over TLS")
	}
	byes := ph.Requests("BYE")
	require.Len(t, byes, 1)
	require.Equal(t, "TLS", byes[0].Via().Transport, "Via: SIP/2.0/TLS")
	require.Equal(t, fmt.Sprintf("127.0.0.1:%d", tlsPort), byes[0].Source(), "the BYE came over the caller's connection")
	require.Equal(t, "bye-received", call.EndReason())
}

// TestLargeUDPMessagesThroughTheBinary: an INVITE over 1300 bytes (a long
// Record-Route chain and a long SDP) is answered, and the 200 OK, which
// copies the chain and also passes 1300 bytes, is still sent over UDP
// (sip.UDPMTUSize is raised; sipgo's default refuses both).
func TestLargeUDPMessagesThroughTheBinary(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "", east)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer conn.Close()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	dst, err := net.ResolveUDPAddr("udp", br.SIPAddr)
	require.NoError(t, err)
	send := func(msg string) {
		t.Helper()
		_, err := conn.WriteTo([]byte(msg), dst)
		require.NoError(t, err)
	}
	recvFinal := func() string {
		t.Helper()
		buf := make([]byte, 65535)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
		for {
			n, _, err := conn.ReadFrom(buf)
			require.NoError(t, err, "no final response")
			if m := string(buf[:n]); !strings.HasPrefix(m, "SIP/2.0 1") {
				return m
			}
		}
	}

	const hops = 12
	var rr strings.Builder
	for i := range hops {
		fmt.Fprintf(&rr, "Record-Route: <sip:127.0.0.1:%d;lr;x-carrier-hop=%02d-%s>\r\n", port, i, strings.Repeat("p", 60))
	}
	sdp := "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\n" +
		"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n" +
		strings.Repeat("a=x-carrier-note:"+strings.Repeat("n", 60)+"\r\n", 6) + "a=ptime:20\r\na=sendrecv\r\n"
	head := func(method string, cseq int, branch, toTag string) string {
		return fmt.Sprintf("%s sip:bot@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-%s;rport\r\n%sFrom: <sip:carrier@127.0.0.1>;tag=big1\r\nTo: <sip:bot@%s>%s\r\nCall-ID: big-udp@test\r\nCSeq: %d %s\r\nContact: <sip:carrier@127.0.0.1:%d>\r\nMax-Forwards: 70\r\n",
			method, br.SIPAddr, port, branch, rr.String(), br.SIPAddr, toTag, cseq, method, port)
	}
	invite := head("INVITE", 1, "big-inv", "") + fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
	require.Greater(t, len(invite), 1300, "the INVITE passes sipgo's default UDP limit")
	send(invite)
	ok := recvFinal()
	require.True(t, strings.HasPrefix(ok, "SIP/2.0 200"), ok)
	require.Greater(t, len(ok), 1300, "the answer passes sipgo's default UDP limit too")
	require.Equal(t, hops, strings.Count(ok, "Record-Route:"), "the 200 OK copies the Record-Route chain (RFC 3261 §12.1.1)")
	require.Contains(t, ok, "m=audio ")

	var toTag string
	for _, l := range strings.Split(ok, "\r\n") {
		if v, found := strings.CutPrefix(l, "To: "); found {
			_, tag, _ := strings.Cut(v, ";tag=")
			toTag = ";tag=" + tag
		}
	}
	require.NotEqual(t, ";tag=", toTag)
	send(head("ACK", 1, "big-ack", toTag) + "Content-Length: 0\r\n\r\n")
	br.WaitLog(10*time.Second, "call answered", "big-udp@test")
	send(head("BYE", 2, "big-bye", toTag) + "Content-Length: 0\r\n\r\n")
	res := recvFinal()
	require.True(t, strings.HasPrefix(res, "SIP/2.0 200"), res)
	require.Contains(t, res, "CSeq: 2 BYE")
	br.WaitLog(10*time.Second, "call ended", "big-udp@test", "reason=caller_bye")
}

// TestDrainOnSIGTERMThroughTheBinary: after SIGTERM the active call goes
// on (the assistant still answers), a new INVITE and OPTIONS get 503 with
// Retry-After, and the process exits once the call ends.
func TestDrainOnSIGTERMThroughTheBinary(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "", east)
	call, ctx := dial(t, br, 90*time.Second, phone.CallOptions{})

	require.NoError(t, br.cmd.Process.Signal(syscall.SIGTERM))
	br.WaitLog(10*time.Second, "SIGTERM: draining")

	res := rawSIP(t, br.SIPAddr, "OPTIONS", "")
	require.True(t, strings.HasPrefix(res, "SIP/2.0 503"), res)
	require.Contains(t, res, "Retry-After:")
	_, err := call.Phone().Call(ctx, phone.CallOptions{Target: br.Target()})
	rej := rejectedWith(t, err, 503)
	require.NotNil(t, rej.Res.GetHeader("Retry-After"))

	// The call in progress is untouched.
	call.Speak(callerHz, 1200*time.Millisecond, -20)
	_, err = call.WaitTone(ctx, eastHz, 0, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err, "the active call continues while draining")
	select {
	case <-br.exited:
		t.Fatal("the bridge exited with a call still up")
	default:
	}
	require.NoError(t, call.Hangup(ctx))
	select {
	case <-br.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the bridge did not exit after its last call ended")
	}
	require.NoError(t, br.exitErr, "a drained stop exits 0")
	require.NotEmpty(t, br.LogLines("drained: no active calls"))
	require.Len(t, br.LogLines("call ended"), 1, "the refused INVITE never became a call")
}

// TestOptionsAdvertisesWhatIsHandled: OPTIONS 200 carries Allow, Accept
// and Supported (RFC 3261 §11.2), and every method it allows is handled
// (an out-of-dialog one gets 481 or 200, never 405).
func TestOptionsAdvertisesWhatIsHandled(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{})
	br := startBridge(t, "", east)
	res := rawSIP(t, br.SIPAddr, "OPTIONS", "")
	require.True(t, strings.HasPrefix(res, "SIP/2.0 200"), res)
	var allow string
	var hasSupported bool
	for _, l := range strings.Split(res, "\r\n") {
		name, v, _ := strings.Cut(l, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "allow":
			allow = v
		case "supported", "k":
			hasSupported = true
		}
	}
	require.True(t, hasSupported, "Supported is present (possibly empty): %s", res)
	require.Contains(t, res, "Accept: application/sdp")
	methods := strings.Split(allow, ",")
	require.GreaterOrEqual(t, len(methods), 5)
	for _, m := range methods {
		m = strings.TrimSpace(m)
		switch m {
		case "ACK", "INVITE", "CANCEL", "BYE", "OPTIONS":
			require.Contains(t, allow, m)
			continue
		}
		r := rawSIP(t, br.SIPAddr, m, "")
		require.False(t, strings.HasPrefix(r, "SIP/2.0 405"), "%s is in Allow but answered %q", m, r)
	}
	res = rawSIP(t, br.SIPAddr, "SUBSCRIBE", "")
	require.True(t, strings.HasPrefix(res, "SIP/2.0 405"), res)
	require.NotContains(t, allow, "SUBSCRIBE")
}
