package sip

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/stretchr/testify/require"
)

// seenRegister is one REGISTER the test registrar received.
type seenRegister struct {
	source  string // host:port it came from
	callID  string
	cseq    uint32
	expires int // Expires header; -1 if absent
	contact string
	authed  bool // carried credentials that verified
	user    string
}

// testRegistrar is an in-process sipgo registrar: it challenges every
// REGISTER without valid credentials (401, RFC 3261 §22.2), then answers
// with reply (default: 200 granting the Contact for `grant` seconds).
type testRegistrar struct {
	t        *testing.T
	addr     string
	password string
	grant    int
	// reply, when set, picks the response to an authenticated REGISTER
	// (n counts them from 1); nil answers 200.
	reply func(n int, req *sip.Request) *sip.Response

	mu     sync.Mutex
	seen   []seenRegister
	authed int
}

func startRegistrar(t *testing.T, password string, grant int) *testRegistrar {
	t.Helper()
	r := &testRegistrar{t: t, password: password, grant: grant}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-registrar"))
	require.NoError(t, err)
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	srv.OnRegister(r.onRegister)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	//lint:ignore SA1029 the key type is sipgo's
	ctx = context.WithValue(ctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyFuncCtxValue(func(network, addr string) { ready <- addr }))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ListenAndServe(ctx, "udp", "127.0.0.1:0")
	}()
	select {
	case r.addr = <-ready:
	case <-time.After(wait):
		t.Fatal("registrar did not start")
	}
	t.Cleanup(func() {
		cancel()
		<-done
		_ = ua.Close()
	})
	return r
}

func (r *testRegistrar) uri() string { return "sip:" + r.addr }

const testRealm = "registrar.test"

func (r *testRegistrar) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	s := seenRegister{source: req.Source(), callID: req.CallID().Value(), cseq: req.CSeq().SeqNo, expires: -1}
	if h := req.GetHeader("Expires"); h != nil {
		s.expires, _ = strconv.Atoi(h.Value())
	}
	if c := req.Contact(); c != nil {
		s.contact = c.Address.String()
	}
	if h := req.GetHeader("Authorization"); h != nil {
		if cred, err := digest.ParseCredentials(h.Value()); err == nil {
			s.user = cred.Username
			want, err := digest.Digest(&digest.Challenge{Realm: testRealm, Nonce: cred.Nonce, Algorithm: cred.Algorithm},
				digest.Options{Method: "REGISTER", URI: cred.URI, Username: cred.Username, Password: r.password, Cnonce: cred.Cnonce, Count: cred.Nc})
			s.authed = err == nil && want.Response == cred.Response && cred.URI == req.Recipient.Addr()
		}
	}
	r.mu.Lock()
	r.seen = append(r.seen, s)
	n := 0
	if s.authed {
		r.authed++
		n = r.authed
	}
	r.mu.Unlock()

	if !s.authed {
		res := sip.NewResponseFromRequest(req, sip.StatusUnauthorized, "Unauthorized", nil)
		chal := digest.Challenge{Realm: testRealm, Nonce: fmt.Sprintf("nonce%d", time.Now().UnixNano()), Algorithm: "MD5"}
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
		_ = tx.Respond(res)
		return
	}
	r.mu.Lock()
	reply := r.reply
	r.mu.Unlock()
	if reply != nil {
		if res := reply(n, req); res != nil {
			_ = tx.Respond(res)
			return
		}
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	if c := req.Contact(); c != nil && s.expires != 0 {
		ct := c.Clone()
		ct.Params = sip.NewParams()
		ct.Params.Add("expires", strconv.Itoa(r.grant))
		res.AppendHeader(ct)
	}
	_ = tx.Respond(res)
}

func (r *testRegistrar) setReply(f func(n int, req *sip.Request) *sip.Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reply = f
}

func (r *testRegistrar) registers() []seenRegister {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenRegister(nil), r.seen...)
}

// withRegistration adds one registration to the harness config and makes
// refreshes and retries fast and deterministic.
func withRegistration(reg Registration) harnessOpt {
	return func(c *Config, h *harness) {
		c.Registrations = append(c.Registrations, reg)
		h.tweak = func(s *Server) {
			s.regs.retryMin, s.regs.retryMax = 50*time.Millisecond, 200*time.Millisecond
			s.regs.refreshFrac = func() float64 { return 0.5 }
		}
	}
}

// stopNow stops the harness server in the middle of a test; the cleanup's
// stop then finds it stopped.
func stopNow(t *testing.T, h *harness) {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.served:
		require.NoError(t, err)
		h.served <- nil
	case <-time.After(wait):
		t.Fatal("Serve did not return")
	}
}

func regStatus(t *testing.T, s *Server) RegistrationStatus {
	t.Helper()
	st := s.Registrations()
	require.Len(t, st, 1)
	return st[0]
}

// TestRegisterDigestRefreshUnregister: the REGISTER leaves from our UDP
// listener with our advertised Contact, answers the 401 with digest, is
// refreshed before the granted lifetime ends with the same Call-ID and a
// higher CSeq, and is removed with Expires: 0 when the server stops.
func TestRegisterDigestRefreshUnregister(t *testing.T) {
	const password = "s3cret-pw"
	reg := startRegistrar(t, password, 1) // 1 s: refreshed every 500 ms
	h := newHarness(t, withRegistration(Registration{
		Name: "pbx", Registrar: reg.uri(), AOR: "sip:bot@example.test", Username: "bot-auth", Password: password,
	}))
	require.Eventually(t, func() bool {
		return metricValue(h.srv.metrics.registers.WithLabelValues("pbx", "ok")) >= 3
	}, wait, 10*time.Millisecond, "registered and refreshed twice")

	st := regStatus(t, h.srv)
	require.Equal(t, RegStateRegistered, st.State)
	require.True(t, st.Up)
	require.Equal(t, time.Second, st.Granted)
	require.Equal(t, 200, st.LastStatus)
	require.Equal(t, "sip:bot@"+h.addr, st.Contact, "Contact: the advertised host and our listener's port")
	require.Equal(t, 1.0, metricValue(h.srv.metrics.registrationUp.WithLabelValues("pbx")))

	seen := reg.registers()
	require.False(t, seen[0].authed, "the first REGISTER carries no credentials")
	require.Equal(t, 300, seen[0].expires, "the default lifetime is asked for")
	var lastCSeq uint32
	for i, r := range seen {
		require.Equal(t, h.addr, r.source, "REGISTER %d leaves from the SIP listener", i)
		require.Equal(t, seen[0].callID, r.callID, "one Call-ID for every REGISTER of the binding (RFC 3261 §10.2.4)")
		require.Greater(t, r.cseq, lastCSeq, "CSeq increases")
		lastCSeq = r.cseq
		require.Equal(t, "sip:bot@"+h.addr, r.contact)
		if r.authed {
			require.Equal(t, "bot-auth", r.user)
		}
	}

	stopNow(t, h)
	seen = reg.registers()
	last := seen[len(seen)-1]
	require.Equal(t, 0, last.expires, "unREGISTER on shutdown (RFC 3261 §10.2.2)")
	require.True(t, last.authed)
	require.Equal(t, "sip:bot@"+h.addr, last.contact, "only our Contact is removed, not '*'")
	st = regStatus(t, h.srv)
	require.Equal(t, RegStateUnregistered, st.State)
	require.False(t, st.Up)
	require.Equal(t, 0.0, metricValue(h.srv.metrics.registrationUp.WithLabelValues("pbx")))
	require.Equal(t, 1.0, metricValue(h.srv.metrics.registers.WithLabelValues("pbx", "unregistered")))
	require.NotContains(t, h.logs.String(), password, "the password is never logged")
}

// TestRegisterFailuresRetryWithBackoff: a registrar that refuses, or
// rejects the credentials, leaves the registration down with the reason,
// counted, and retried until it succeeds.
func TestRegisterFailuresRetryWithBackoff(t *testing.T) {
	cases := []struct {
		name       string
		password   string // what the bridge sends
		reply      func(n int, req *sip.Request) *sip.Response
		wantResult string
		wantStatus int
	}{
		{
			name:     "503 twice then 200",
			password: "pw",
			reply: func(n int, req *sip.Request) *sip.Response {
				if n <= 2 {
					return sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Service Unavailable", nil)
				}
				return nil
			},
			wantResult: "rejected", wantStatus: 503,
		},
		{name: "wrong password", password: "wrong-pw", wantResult: "auth_rejected", wantStatus: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := startRegistrar(t, "pw", 60)
			reg.setReply(tc.reply)
			h := newHarness(t, withRegistration(Registration{Registrar: reg.uri(), AOR: "sip:bot@example.test", Password: tc.password}))
			name := reg.addr // the default name: registrar host:port
			require.Eventually(t, func() bool {
				return metricValue(h.srv.metrics.registers.WithLabelValues(name, tc.wantResult)) >= 2
			}, wait, 10*time.Millisecond, "two failed attempts counted")
			st := regStatus(t, h.srv)
			require.Equal(t, name, st.Name)
			if tc.reply == nil {
				require.Equal(t, RegStateFailed, st.State)
				require.False(t, st.Up)
				require.Equal(t, tc.wantStatus, st.LastStatus)
				require.Contains(t, st.LastError, "credentials rejected")
				require.GreaterOrEqual(t, st.Failures, 2)
				require.Equal(t, 0.0, metricValue(h.srv.metrics.registrationUp.WithLabelValues(name)))
				require.NotEmpty(t, h.logs.lines("registration failed", name))
				require.NotContains(t, h.logs.String(), tc.password)
				return
			}
			require.Eventually(t, func() bool { return regStatus(t, h.srv).Up }, wait, 10*time.Millisecond)
			st = regStatus(t, h.srv)
			require.Equal(t, RegStateRegistered, st.State)
			require.Zero(t, st.Failures)
			require.Equal(t, 60*time.Second, st.Granted)
			require.Equal(t, 2.0, metricValue(h.srv.metrics.registers.WithLabelValues(name, "rejected")))
		})
	}
}

// TestRegisterIntervalTooBrief: a 423 with Min-Expires is retried at once
// with the registrar's minimum (RFC 3261 §10.2.8).
func TestRegisterIntervalTooBrief(t *testing.T) {
	reg := startRegistrar(t, "pw", 3600)
	reg.setReply(func(n int, req *sip.Request) *sip.Response {
		if e := req.GetHeader("Expires"); e != nil && e.Value() != "0" && e.Value() != "3600" {
			res := sip.NewResponseFromRequest(req, sip.StatusIntervalToBrief, "Interval Too Brief", nil)
			res.AppendHeader(sip.NewHeader("Min-Expires", "3600"))
			return res
		}
		return nil
	})
	h := newHarness(t, withRegistration(Registration{Registrar: reg.uri(), AOR: "sip:bot@example.test", Password: "pw", Expires: time.Minute}))
	require.Eventually(t, func() bool { return regStatus(t, h.srv).Up }, wait, 10*time.Millisecond)
	require.Equal(t, time.Hour, regStatus(t, h.srv).Granted)
	var asked []int
	for _, r := range reg.registers() {
		if r.authed {
			asked = append(asked, r.expires)
		}
	}
	require.Equal(t, []int{60, 3600}, asked[:2])
}

// TestRegisterOverTCP: a tcp registration carries transport=tcp in its
// Contact, pointing at our TCP listener.
func TestRegisterOverTCP(t *testing.T) {
	// The registrar listens on TCP too.
	r := &testRegistrar{t: t, password: "pw", grant: 60}
	ua, err := sipgo.NewUA()
	require.NoError(t, err)
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	srv.OnRegister(r.onRegister)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	//lint:ignore SA1029 the key type is sipgo's
	lctx := context.WithValue(ctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyFuncCtxValue(func(_, addr string) { ready <- addr }))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ListenAndServe(lctx, "tcp", "127.0.0.1:0")
	}()
	r.addr = <-ready
	t.Cleanup(func() {
		cancel()
		<-done
		_ = ua.Close()
	})

	h := newHarness(t, func(c *Config, h *harness) {
		c.Listen = append(c.Listen, Listener{Network: "tcp", Addr: "127.0.0.1:0"})
	}, withRegistration(Registration{Registrar: "sip:" + r.addr + ";transport=tcp", AOR: "sip:bot@example.test", Password: "pw"}))
	require.Eventually(t, func() bool { return regStatus(t, h.srv).Up }, wait, 10*time.Millisecond)
	tcpAddr := h.srv.Addrs()[1].String()
	require.Equal(t, "sip:bot@"+tcpAddr+";transport=tcp", regStatus(t, h.srv).Contact)
	stopNow(t, h)
	seen := r.registers()
	require.Equal(t, 0, seen[len(seen)-1].expires)
}

func TestRegistrationConfig(t *testing.T) {
	udp := []Listener{{Network: "udp", Addr: "127.0.0.1:5060"}}
	cases := []struct {
		name    string
		reg     Registration
		listen  []Listener
		wantErr string
		check   func(t *testing.T, r Registration)
	}{
		{name: "defaults", reg: Registration{Registrar: "sip:pbx.example:5080", AOR: "sip:1001@example"}, listen: udp,
			check: func(t *testing.T, r Registration) {
				require.Equal(t, "pbx.example:5080", r.Name)
				require.Equal(t, "1001", r.Username)
				require.Equal(t, "1001", r.ContactUser)
				require.Equal(t, DefaultRegisterExpires, r.Expires)
				require.Equal(t, "udp", r.Transport)
			}},
		{name: "transport from uri", reg: Registration{Registrar: "sip:pbx.example;transport=tcp", AOR: "sip:a@b"},
			listen: []Listener{{Network: "tcp", Addr: "127.0.0.1:5060"}},
			check:  func(t *testing.T, r Registration) { require.Equal(t, "tcp", r.Transport) }},
		{name: "no listener for transport", reg: Registration{Registrar: "sip:pbx", AOR: "sip:a@b", Transport: "tcp"}, listen: udp, wantErr: "no tcp listener"},
		{name: "bad registrar", reg: Registration{Registrar: "http://pbx", AOR: "sip:a@b"}, listen: udp, wantErr: "registrar"},
		{name: "aor without user", reg: Registration{Registrar: "sip:pbx", AOR: "sip:example.com"}, listen: udp, wantErr: "aor"},
		{name: "crlf", reg: Registration{Registrar: "sip:pbx", AOR: "sip:a@b", Username: "a\r\nX: y"}, listen: udp, wantErr: "CR, LF"},
		{name: "short expires", reg: Registration{Registrar: "sip:pbx", AOR: "sip:a@b", Expires: time.Second}, listen: udp, wantErr: "expires"},
		{name: "bad transport", reg: Registration{Registrar: "sip:pbx", AOR: "sip:a@b", Transport: "sctp"}, listen: udp, wantErr: "transport"},
		{name: "bad contact user", reg: Registration{Registrar: "sip:pbx", AOR: "sip:a@b", ContactUser: "a b"}, listen: udp, wantErr: "contact user"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := registrationsWithDefaults([]Registration{tc.reg}, tc.listen)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrConfig)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, out[0])
		})
	}
	_, err := registrationsWithDefaults([]Registration{{Registrar: "sip:pbx", AOR: "sip:a@b"}, {Registrar: "sip:pbx", AOR: "sip:c@b"}}, udp)
	require.ErrorContains(t, err, "used twice")
}

func TestGrantedExpires(t *testing.T) {
	ours := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bot", Host: "192.0.2.1", Port: 5060}}
	r := &registration{contact: ours}
	cases := []struct {
		name string
		hdrs []string
		want int64
	}{
		{"our contact param", []string{"Contact: <sip:other@198.51.100.1>;expires=30", "Contact: <sip:bot@192.0.2.1:5060>;expires=120", "Expires: 60"}, 120},
		{"only contact rewritten by a NAT-aware registrar", []string{"Contact: <sip:bot@203.0.113.9:40000>;expires=90"}, 90},
		{"expires header", []string{"Expires: 45"}, 45},
		{"our contact without param uses the header", []string{"Contact: <sip:bot@192.0.2.1>", "Expires: 50"}, 50},
		{"nothing: what we asked", nil, 300},
		{"other contacts only", []string{"Contact: <sip:a@198.51.100.1>;expires=30", "Contact: <sip:b@198.51.100.2>;expires=30"}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n" +
				"From: <sip:bot@example>;tag=1\r\nTo: <sip:bot@example>;tag=2\r\n"
			for _, h := range tc.hdrs {
				raw += h + "\r\n"
			}
			raw += "Content-Length: 0\r\n\r\n"
			msg, err := sip.ParseMessage([]byte(raw))
			require.NoError(t, err)
			res, ok := msg.(*sip.Response)
			require.True(t, ok)
			require.Equal(t, tc.want, r.grantedExpires(res, 300))
		})
	}
}

func TestRegisterBackoffBounds(t *testing.T) {
	rs := &registrations{retryMin: time.Second, retryMax: 8 * time.Second}
	for n, max := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 10: 8 * time.Second} {
		for range 20 {
			d := rs.backoff(n)
			require.GreaterOrEqual(t, d, max/2, "n=%d", n)
			require.LessOrEqual(t, d, max, "n=%d", n)
		}
	}
}
