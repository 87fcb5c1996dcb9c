package sip

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/stretchr/testify/require"
)

const (
	trunkUser  = "trunkuser"
	trunkPass  = "s3cret-Passw0rd"
	trunkRealm = "sipbridge.test"
)

// newTestAuthenticator builds the access control of a server configured
// with trunks, without sockets (verify and the tables only).
func newTestAuthenticator(t *testing.T, trunks ...Trunk) *authenticator {
	t.Helper()
	cfg, err := Config{Listen: []Listener{{Network: "udp", Addr: "127.0.0.1:0"}}, Trunks: trunks}.withDefaults()
	require.NoError(t, err)
	s := &Server{cfg: cfg, log: slog.New(slog.DiscardHandler), metrics: NewMetrics(nil)}
	a := newAuthenticator(s)
	require.NotNil(t, a)
	return a
}

func digestTrunk() Trunk {
	return Trunk{Name: "carrier", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Username: trunkUser, Password: trunkPass, Realm: trunkRealm}
}

// authAnswer is what a client answers to a challenge.
type authAnswer struct {
	realm, nonce, opaque, alg string
	qop                       bool
	nc                        int
	user, pass, method, uri   string
}

func (x authAnswer) header(t *testing.T) string {
	t.Helper()
	chal := &digest.Challenge{Realm: x.realm, Nonce: x.nonce, Opaque: x.opaque, Algorithm: x.alg}
	if x.qop {
		chal.QOP = []string{"auth"}
	}
	c, err := digest.Digest(chal, digest.Options{Method: x.method, URI: x.uri, Username: x.user, Password: x.pass, Count: x.nc})
	require.NoError(t, err)
	return c.String()
}

func authRequest(t *testing.T, method, uri string, authz ...string) *sip.Request {
	t.Helper()
	var u sip.Uri
	require.NoError(t, sip.ParseUri(uri, &u))
	req := sip.NewRequest(sip.RequestMethod(method), u)
	for _, a := range authz {
		req.AppendHeader(sip.NewHeader("Authorization", a))
	}
	return req
}

func TestVerifyDigest(t *testing.T) {
	const uri = "sip:ai@127.0.0.1:5060"
	tests := []struct {
		name string
		// build returns the Authorization values; n is a fresh nonce/opaque.
		build  func(t *testing.T, nonce, opaque string) []string
		uri    string // Request-URI (default uri)
		admit  bool
		reason string
	}{
		{name: "no credentials: challenge", build: func(*testing.T, string, string) []string { return nil }},
		{name: "sha-256 qop auth", admit: true, build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{trunkRealm, n, o, "SHA-256", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t)}
		}},
		{name: "md5 qop auth", admit: true, build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{trunkRealm, n, o, "MD5", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t)}
		}},
		{name: "md5 without algorithm or qop (RFC 2069)", admit: true, build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{trunkRealm, n, o, "", false, 0, trunkUser, trunkPass, "INVITE", uri}.header(t)}
		}},
		{name: "uri with parameters is the same resource", admit: true, uri: uri + ";transport=tcp", build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{trunkRealm, n, o, "SHA-256", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t)}
		}},
		{name: "second header for our realm", admit: true, build: func(t *testing.T, n, o string) []string {
			return []string{
				authAnswer{"other.realm", n, o, "MD5", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t),
				authAnswer{trunkRealm, n, o, "MD5", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t),
			}
		}},
		{name: "wrong password", reason: authBadResponse, build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{trunkRealm, n, o, "SHA-256", true, 1, trunkUser, "guess", "INVITE", uri}.header(t)}
		}},
		{name: "wrong method in the digest", reason: authBadResponse, build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{trunkRealm, n, o, "SHA-256", true, 1, trunkUser, trunkPass, "REGISTER", uri}.header(t)}
		}},
		{name: "unknown user", reason: authUnknownUser, build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{trunkRealm, n, o, "SHA-256", true, 1, "mallory", trunkPass, "INVITE", uri}.header(t)}
		}},
		{name: "other realm only", reason: authUnknownUser, build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{"other.realm", n, o, "SHA-256", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t)}
		}},
		{name: "uri of another resource", reason: authURIMismatch, build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{trunkRealm, n, o, "SHA-256", true, 1, trunkUser, trunkPass, "INVITE", "sip:premium@127.0.0.1:5060"}.header(t)}
		}},
		{name: "uri on another port", reason: authURIMismatch, build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{trunkRealm, n, o, "SHA-256", true, 1, trunkUser, trunkPass, "INVITE", "sip:ai@127.0.0.1:5070"}.header(t)}
		}},
		{name: "unknown nonce, right password: stale", reason: authStale, build: func(t *testing.T, _, o string) []string {
			return []string{authAnswer{trunkRealm, "not-our-nonce", o, "SHA-256", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t)}
		}},
		{name: "unknown nonce, wrong password", reason: authBadResponse, build: func(t *testing.T, _, o string) []string {
			return []string{authAnswer{trunkRealm, "not-our-nonce", o, "SHA-256", true, 1, trunkUser, "guess", "INVITE", uri}.header(t)}
		}},
		{name: "opaque not echoed", reason: authMalformed, build: func(t *testing.T, n, _ string) []string {
			return []string{authAnswer{trunkRealm, n, "", "SHA-256", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t)}
		}},
		{name: "unsupported algorithm", reason: authMalformed, build: func(t *testing.T, n, o string) []string {
			return []string{strings.Replace(authAnswer{trunkRealm, n, o, "SHA-256", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t),
				"algorithm=SHA-256", "algorithm=SHA-512", 1)}
		}},
		{name: "qop auth-int was not offered", reason: authMalformed, build: func(t *testing.T, n, o string) []string {
			return []string{strings.Replace(authAnswer{trunkRealm, n, o, "MD5", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t),
				"qop=auth", "qop=auth-int", 1)}
		}},
		{name: "nc zero", reason: authMalformed, build: func(t *testing.T, n, o string) []string {
			return []string{strings.Replace(authAnswer{trunkRealm, n, o, "MD5", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t),
				"nc=00000001", "nc=00000000", 1)}
		}},
		{name: "response not hex", reason: authMalformed, build: func(t *testing.T, n, o string) []string {
			return []string{`Digest username="trunkuser", realm="sipbridge.test", nonce="` + n + `", uri="` + uri + `", opaque="` + o +
				`", algorithm=MD5, response="zz0123456789abcdef0123456789abcd"`}
		}},
		{name: "userhash", reason: authMalformed, build: func(t *testing.T, n, o string) []string {
			return []string{authAnswer{trunkRealm, n, o, "SHA-256", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t) + ", userhash=true"}
		}},
		{name: "basic scheme", reason: authMalformed, build: func(*testing.T, string, string) []string {
			return []string{"Basic dHJ1bmt1c2VyOnMzY3JldA=="}
		}},
		{name: "unparsable", reason: authMalformed, build: func(*testing.T, string, string) []string {
			return []string{`Digest username="unterminated`}
		}},
		{name: "oversized", reason: authMalformed, build: func(*testing.T, string, string) []string {
			return []string{`Digest username="` + strings.Repeat("a", maxAuthHeaderLen) + `"`}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAuthenticator(t, digestTrunk())
			n, o, err := a.nonces.issue()
			require.NoError(t, err)
			ruri := tc.uri
			if ruri == "" {
				ruri = uri
			}
			v := a.verify(authRequest(t, "INVITE", ruri, tc.build(t, n, o)...), []*Trunk{&a.trunks[0]})
			if tc.admit {
				require.NotNil(t, v.trunk, "reason %q", v.reason)
				require.Equal(t, "carrier", v.trunk.Name)
				return
			}
			require.Nil(t, v.trunk)
			require.Equal(t, tc.reason, v.reason)
		})
	}
}

// TestNonceReplayAndExpiry: nc must increase, a qop-less answer is single
// use, and an expired nonce answered correctly is stale (not a failure).
func TestNonceReplayAndExpiry(t *testing.T) {
	const uri = "sip:ai@127.0.0.1:5060"
	a := newTestAuthenticator(t, digestTrunk())
	now := time.Unix(1_700_000_000, 0)
	a.nonces.now = func() time.Time { return now }
	trunks := []*Trunk{&a.trunks[0]}
	n, o, err := a.nonces.issue()
	require.NoError(t, err)
	verify := func(alg string, qop bool, nc int) verdict {
		h := authAnswer{trunkRealm, n, o, alg, qop, nc, trunkUser, trunkPass, "INVITE", uri}.header(t)
		return a.verify(authRequest(t, "INVITE", uri, h), trunks)
	}
	require.NotNil(t, verify("SHA-256", true, 1).trunk)
	require.Equal(t, authReplay, verify("SHA-256", true, 1).reason, "the same nc again")
	require.NotNil(t, verify("SHA-256", true, 2).trunk, "the next nc")
	require.Equal(t, authReplay, verify("SHA-256", true, 2).reason)
	// A wrong response with a high nc does not burn the client's counter.
	bad := authAnswer{trunkRealm, n, o, "SHA-256", true, 100, trunkUser, "guess", "INVITE", uri}.header(t)
	require.Equal(t, authBadResponse, a.verify(authRequest(t, "INVITE", uri, bad), trunks).reason)
	require.NotNil(t, verify("SHA-256", true, 3).trunk)

	n, o, err = a.nonces.issue()
	require.NoError(t, err)
	require.NotNil(t, verify("MD5", false, 0).trunk)
	require.Equal(t, authReplay, verify("MD5", false, 0).reason, "a qop-less nonce is single use")

	n, o, err = a.nonces.issue()
	require.NoError(t, err)
	now = now.Add(nonceTTL)
	require.Equal(t, authStale, verify("SHA-256", true, 1).reason, "expired")
	_, _, err = a.nonces.issue()
	require.NoError(t, err)
	require.Equal(t, 1, a.nonces.size(), "expired nonces are pruned when new ones are issued")
}

func TestNonceTableIsBounded(t *testing.T) {
	s := newNonceStore(time.Hour, 4)
	first, _, err := s.issue()
	require.NoError(t, err)
	for range 10 {
		_, _, err := s.issue()
		require.NoError(t, err)
	}
	require.Equal(t, 4, s.size())
	require.Equal(t, authStale, s.use(first, "", true, 1, true), "the oldest nonce was evicted")
}

// TestTrunkAlgorithms: a trunk's algorithm list orders the challenges and
// bounds what is accepted.
func TestTrunkAlgorithms(t *testing.T) {
	const uri = "sip:ai@127.0.0.1:5060"
	trunk := digestTrunk()
	trunk.Algorithms = []string{"md5"}
	a := newTestAuthenticator(t, trunk)
	require.Equal(t, []string{"MD5"}, a.trunks[0].Algorithms, "canonical names")
	n, o, err := a.nonces.issue()
	require.NoError(t, err)
	sha := authAnswer{trunkRealm, n, o, "SHA-256", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t)
	require.Equal(t, authMalformed, a.verify(authRequest(t, "INVITE", uri, sha), []*Trunk{&a.trunks[0]}).reason, "SHA-256 was not offered")
	md5 := authAnswer{trunkRealm, n, o, "MD5", true, 1, trunkUser, trunkPass, "INVITE", uri}.header(t)
	require.NotNil(t, a.verify(authRequest(t, "INVITE", uri, md5), []*Trunk{&a.trunks[0]}).trunk)

	h := trunkHarness(t, AuthLimit{}, Trunk{Name: "old-pbx", Username: trunkUser, Password: trunkPass, Realm: trunkRealm,
		Algorithms: []string{"MD5", "SHA-256"}})
	u := newUAC(t, h.addr)
	seen, _, err := inviteWithAuth(t, u, "", "")
	var de *sipgo.ErrDialogResponse
	require.ErrorAs(t, err, &de)
	require.Equal(t, []int{401}, statusCodes(seen))
	ws := de.Res.GetHeaders("WWW-Authenticate")
	require.Len(t, ws, 2)
	require.Contains(t, ws[0].Value(), "algorithm=MD5", "the trunk's order")
	require.Contains(t, ws[1].Value(), "algorithm=SHA-256")
}

func TestSameResource(t *testing.T) {
	tests := []struct {
		cred, req string
		same      bool
	}{
		{"sip:ai@example.com", "sip:ai@example.com:5060", true},
		{"sip:ai@EXAMPLE.com:5060", "sip:ai@example.com;transport=tcp", true},
		{"sips:ai@example.com", "sips:ai@example.com:5061", true},
		{"sip:ai@example.com", "sips:ai@example.com", false},
		{"sip:AI@example.com", "sip:ai@example.com", false},
		{"sip:ai@example.org", "sip:ai@example.com", false},
		{"sip:ai@example.com:5070", "sip:ai@example.com", false},
		{"not a uri at all", "sip:ai@example.com", false},
		{"sip:example.com", "sip:ai@example.com", true}, // SIPp: no user in the digest uri
		{"sip:bob@example.com", "sip:example.com", false},
	}
	for _, tc := range tests {
		var r sip.Uri
		require.NoError(t, sip.ParseUri(tc.req, &r))
		require.Equal(t, tc.same, sameResource(tc.cred, r), "%s vs %s", tc.cred, tc.req)
	}
}

func TestMatchSource(t *testing.T) {
	trunks, _, err := trunksWithDefaults([]Trunk{
		{Name: "carrier-ip", Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}},
		{Name: "pbx", Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32")}, Username: "pbx", Password: "x"},
		{Name: "roaming", Username: "road", Password: "y"},
	}, "bridge.example", AuthLimit{})
	require.NoError(t, err)
	tests := []struct {
		src    string
		ip     string
		digest []string
	}{
		{"192.0.2.10", "carrier-ip", []string{"roaming"}},
		{"::ffff:192.0.2.10", "carrier-ip", []string{"roaming"}},
		{"2001:db8::1", "carrier-ip", []string{"roaming"}},
		{"198.51.100.7", "", []string{"pbx", "roaming"}},
		{"203.0.113.1", "", []string{"roaming"}},
	}
	for _, tc := range tests {
		m := matchSource(trunks, netip.MustParseAddr(tc.src))
		name := ""
		if m.ipTrunk != nil {
			name = m.ipTrunk.Name
		}
		require.Equal(t, tc.ip, name, tc.src)
		var got []string
		for _, d := range m.digest {
			got = append(got, d.Name)
		}
		require.Equal(t, tc.digest, got, tc.src)
	}
	require.Equal(t, "bridge.example", trunks[1].Realm, "the realm defaults to the advertise host")
}

func TestTrunkConfigErrors(t *testing.T) {
	p := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name   string
		trunks []Trunk
		lim    AuthLimit
		want   string
	}{
		{"open trunk", []Trunk{{Name: "x"}}, AuthLimit{}, "neither an allow list nor a username"},
		{"user without password", []Trunk{{Name: "x", Allow: p, Username: "u"}}, AuthLimit{}, "username and password"},
		{"quote in username", []Trunk{{Name: "x", Username: `u"`, Password: "p"}}, AuthLimit{}, "username"},
		{"crlf in realm", []Trunk{{Name: "x", Username: "u", Password: "p", Realm: "a\r\nb"}}, AuthLimit{}, "realm"},
		{"invalid prefix", []Trunk{{Name: "x", Allow: []netip.Prefix{{}}}}, AuthLimit{}, "invalid allow prefix"},
		{"negative failures", []Trunk{{Name: "x", Allow: p}}, AuthLimit{Failures: -1}, "auth limit"},
		{"unknown algorithm", []Trunk{{Name: "x", Username: "u", Password: "p", Algorithms: []string{"SHA-512"}}}, AuthLimit{}, "SHA-512"},
		{"algorithm twice", []Trunk{{Name: "x", Username: "u", Password: "p", Algorithms: []string{"md5", "MD5"}}}, AuthLimit{}, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := trunksWithDefaults(tc.trunks, "h", tc.lim)
			require.ErrorIs(t, err, ErrConfig)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	_, lim, err := trunksWithDefaults(nil, "h", AuthLimit{})
	require.NoError(t, err)
	require.Equal(t, AuthLimit{Failures: DefaultAuthFailures, Window: DefaultAuthWindow, Block: DefaultAuthBlock}, lim)
}

func TestFailLimiter(t *testing.T) {
	l := newFailLimiter(AuthLimit{Failures: 3, Window: time.Minute, Block: 5 * time.Minute})
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for range 3 {
		require.False(t, l.fail(a))
	}
	require.False(t, l.blocked(a), "three failures are tolerated")
	require.True(t, l.fail(a), "the fourth starts a block")
	require.True(t, l.blocked(a))
	require.False(t, l.blocked(b), "per source")
	l.success(a)
	require.True(t, l.blocked(a), "a success does not lift a block")
	now = now.Add(5 * time.Minute)
	require.False(t, l.blocked(a), "the block ends")

	// Failures spread over more than a window do not add up.
	for range 3 {
		require.False(t, l.fail(b))
		now = now.Add(30 * time.Second)
	}
	require.False(t, l.fail(b))
	require.False(t, l.blocked(b))
	l.success(b)
	require.Equal(t, 1, l.size(), "a success forgets the source's failures")
}

// FuzzAuthorizationHeader: whatever the Authorization header holds, verify
// neither panics nor admits without the password.
func FuzzAuthorizationHeader(f *testing.F) {
	f.Add(`Digest username="trunkuser", realm="sipbridge.test", nonce="abc", uri="sip:ai@127.0.0.1", response="0123456789abcdef0123456789abcdef"`)
	f.Add(`Digest username="trunkuser",realm="sipbridge.test",nonce="n",uri="sip:ai@127.0.0.1",qop=auth,nc=00000001,cnonce="c",response="00"`)
	f.Add(`Digest nc=zz`)
	f.Add(`Digest ,,,,="`)
	f.Add("Basic abc")
	f.Add(`Digest username="\"\\", realm=, algorithm=SHA-256, userhash=true`)
	a := &authenticator{trunks: []Trunk{digestTrunk()}, nonces: newNonceStore(time.Minute, 16)}
	a.trunks[0].Password = "a password no fuzzer finds"
	var mu sync.Mutex
	f.Fuzz(func(t *testing.T, hdr string) {
		mu.Lock()
		defer mu.Unlock()
		var u sip.Uri
		require.NoError(t, sip.ParseUri("sip:ai@127.0.0.1", &u))
		req := sip.NewRequest(sip.INVITE, u)
		req.AppendHeader(sip.NewHeader("Authorization", hdr))
		v := a.verify(req, []*Trunk{&a.trunks[0]})
		require.Nil(t, v.trunk, "admitted by %q", hdr)
		if v.reason != "" {
			require.Contains(t, authReasons, v.reason)
		}
	})
}

// --- through the server ---

// trunkHarness serves with the given trunks (and a TCP listener beside UDP).
func trunkHarness(t *testing.T, lim AuthLimit, trunks ...Trunk) *harness {
	return newHarness(t, func(c *Config, _ *harness) {
		c.Listen = append(c.Listen, Listener{Network: "tcp", Addr: "127.0.0.1:0"})
		c.Trunks = trunks
		c.AuthLimit = lim
	})
}

// inviteWithAuth places a call answering challenges with user/pass; it
// returns the responses seen and the dialog.
func inviteWithAuth(t *testing.T, u *uac, user, pass string) ([]*sip.Response, *sipgo.DialogClientSession, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dlg, err := u.dua.Invite(ctx, u.uri("ai"), []byte(offer(4000, "0")), sip.NewHeader("Content-Type", "application/sdp"))
	require.NoError(t, err)
	var mu sync.Mutex
	var seen []*sip.Response
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{Username: user, Password: pass, OnResponse: func(res *sip.Response) error {
		mu.Lock()
		seen = append(seen, res)
		mu.Unlock()
		return nil
	}})
	mu.Lock()
	defer mu.Unlock()
	return append([]*sip.Response(nil), seen...), dlg, err
}

func statusCodes(rs []*sip.Response) []int {
	var out []int
	for _, r := range rs {
		if r.StatusCode != sip.StatusTrying {
			out = append(out, r.StatusCode)
		}
	}
	return out
}

func (h *harness) authFailures(reason string) float64 {
	return metricValue(h.srv.metrics.auth.failures.WithLabelValues(reason))
}

func TestTrunkAllowListByIP(t *testing.T) {
	t.Run("allowed source calls without credentials", func(t *testing.T) {
		h := trunkHarness(t, AuthLimit{}, Trunk{Name: "carrier", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		u := newUAC(t, h.addr)
		call := u.answeredCall(offer(4000, "0"))
		h.conv()
		call.bye()
		h.waitEnd(EndCallerBye, 1)
		require.Equal(t, 1.0, metricValue(h.srv.metrics.auth.admitted.WithLabelValues("ip")))
	})
	t.Run("other sources get 403 and cost nothing", func(t *testing.T) {
		h := trunkHarness(t, AuthLimit{}, Trunk{Name: "carrier", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		u := newUAC(t, h.addr)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_, err := u.invite(ctx, offer(4000, "0"))
		var de *sipgo.ErrDialogResponse
		require.ErrorAs(t, err, &de)
		require.Equal(t, sip.StatusForbidden, de.Res.StatusCode)
		require.Nil(t, de.Res.GetHeader("WWW-Authenticate"))

		res, err := u.client.Do(ctx, sip.NewRequest(sip.OPTIONS, u.uri("ai")))
		require.NoError(t, err)
		require.Equal(t, sip.StatusForbidden, res.StatusCode, "OPTIONS is not challenged, but the IP check applies")

		require.Zero(t, h.media.allocated(), "no RTP port before authorisation")
		require.Empty(t, h.convs, "no conversation before authorisation")
		require.Zero(t, h.srv.ActiveCalls())
		require.Equal(t, 2.0, h.authFailures(authSourceNotAllowed))
		require.NotEmpty(t, h.logs.lines("request not authorised", "source_not_allowed"))
	})
}

func TestTrunkDigest(t *testing.T) {
	trunk := digestTrunk()
	trunk.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

	t.Run("challenge then call", func(t *testing.T) {
		h := trunkHarness(t, AuthLimit{}, trunk)
		u := newUAC(t, h.addr)
		seen, dlg, err := inviteWithAuth(t, u, trunkUser, trunkPass)
		require.NoError(t, err)
		require.Equal(t, []int{401, 200}, statusCodes(seen))
		chal := seen[0]
		if chal.StatusCode == sip.StatusTrying {
			chal = seen[1]
		}
		ws := chal.GetHeaders("WWW-Authenticate")
		require.Len(t, ws, 2)
		for i, alg := range []string{"SHA-256", "MD5"} {
			c, err := digest.ParseChallenge(ws[i].Value())
			require.NoError(t, err)
			require.Equal(t, alg, c.Algorithm, "RFC 8760: SHA-256 first")
			require.Equal(t, trunkRealm, c.Realm)
			require.Equal(t, []string{"auth"}, c.QOP)
			require.NotEmpty(t, c.Opaque)
			require.False(t, c.Stale)
			require.GreaterOrEqual(t, len(c.Nonce), 24)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		require.NoError(t, dlg.Ack(ctx))
		h.conv()
		require.NoError(t, dlg.Bye(ctx))
		h.waitEnd(EndCallerBye, 1)
		require.Equal(t, 1.0, metricValue(h.srv.metrics.auth.admitted.WithLabelValues("digest")))
		require.Equal(t, 1, h.media.allocated(), "one RTP port, for the authorised INVITE only")
		require.NotContains(t, h.logs.String(), trunkPass)
	})

	t.Run("OPTIONS is answered without a challenge", func(t *testing.T) {
		h := trunkHarness(t, AuthLimit{}, trunk)
		u := newUAC(t, h.addr)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		res, err := u.client.Do(ctx, sip.NewRequest(sip.OPTIONS, u.uri("ai")))
		require.NoError(t, err)
		require.Equal(t, sip.StatusOK, res.StatusCode)
	})

	t.Run("wrong password gets 403 and nothing is allocated", func(t *testing.T) {
		h := trunkHarness(t, AuthLimit{}, trunk)
		u := newUAC(t, h.addr)
		seen, _, err := inviteWithAuth(t, u, trunkUser, "wrong")
		var de *sipgo.ErrDialogResponse
		require.ErrorAs(t, err, &de)
		require.Equal(t, []int{401, 403}, statusCodes(seen))
		require.Nil(t, de.Res.GetHeader("WWW-Authenticate"), "no new challenge for wrong credentials")
		require.Zero(t, h.media.allocated())
		require.Empty(t, h.convs)
		require.Equal(t, 1.0, h.authFailures(authBadResponse))
		line := h.logs.lines("request not authorised", "bad_response")
		require.Len(t, line, 1)
		require.Contains(t, line[0], `"username":"trunkuser"`)
		require.Contains(t, line[0], `"trunk":"carrier"`)
		require.NotContains(t, h.logs.String(), "wrong", "the offered password never reaches the log")
		require.NotContains(t, h.logs.String(), trunkPass)
	})
}

// TestRepeatedFailuresBlockTheSource: past the limit, the source's
// out-of-dialog requests are dropped over UDP and refused with 403 (no
// challenge) over TCP, for the block's duration.
func TestRepeatedFailuresBlockTheSource(t *testing.T) {
	trunk := digestTrunk()
	trunk.Allow = nil // digest from anywhere: the source is not allow-listed
	h := trunkHarness(t, AuthLimit{Failures: 2, Window: time.Minute, Block: time.Minute}, trunk)
	u := newUAC(t, h.addr)
	for i := range 3 {
		seen, _, err := inviteWithAuth(t, u, trunkUser, "guess"+strconv.Itoa(i))
		require.Error(t, err)
		require.Equal(t, []int{401, 403}, statusCodes(seen))
	}
	require.Equal(t, 3.0, h.authFailures(authBadResponse))
	require.Len(t, h.logs.lines("source blocked after repeated authorisation failures", `"src":"127.0.0.1"`), 1)

	// UDP: silence, even for OPTIONS and the right password.
	r := newRawUDP(t, h.addr)
	r.send(newRawReq("OPTIONS", h.addr, r.localPort(), "blocked-opt").String())
	r.send(newRawReq("INVITE", h.addr, r.localPort(), "blocked-inv").withSDP(offer(4000, "0")).String())
	require.Empty(t, r.recv(time.Second), "a blocked source gets no answer over UDP")

	// TCP: 403 without a challenge.
	tcpAddr := h.srv.Addrs()[1].String()
	conn, err := net.Dial("tcp", tcpAddr)
	require.NoError(t, err)
	defer conn.Close()
	lport := conn.LocalAddr().(*net.TCPAddr).Port
	inv := newRawReq("INVITE", tcpAddr, lport, "blocked-tcp").withSDP(offer(4000, "0"))
	inv.set("Via:", "Via: SIP/2.0/TCP 127.0.0.1:"+strconv.Itoa(lport)+";branch=z9hG4bK-blocked-tcp")
	_, err = conn.Write([]byte(inv.String()))
	require.NoError(t, err)
	res := readStreamResponse(t, conn)
	require.Equal(t, sip.StatusForbidden, statusOf(t, res))
	require.Empty(t, headerOf(res, "WWW-Authenticate"))

	require.GreaterOrEqual(t, h.authFailures(authBlocked), 3.0)
	require.Zero(t, h.media.allocated())
	require.Empty(t, h.convs)
}

// TestAllowListedTrunkIsNeverBlocked: wrong passwords from a trunk's
// allow-listed address (spoofable over UDP) are refused and counted but do
// not block it; the right password still gets through at once.
func TestAllowListedTrunkIsNeverBlocked(t *testing.T) {
	h := trunkHarness(t, AuthLimit{Failures: 2, Window: time.Minute, Block: time.Minute}, digestTrunk())
	u := newUAC(t, h.addr)
	for i := range 5 {
		seen, _, err := inviteWithAuth(t, u, trunkUser, "guess"+strconv.Itoa(i))
		require.Error(t, err)
		require.Equal(t, []int{401, 403}, statusCodes(seen), "attempt %d", i)
	}
	require.Equal(t, 5.0, h.authFailures(authBadResponse))
	require.Zero(t, h.authFailures(authBlocked))
	require.Empty(t, h.logs.lines("source blocked after repeated authorisation failures"))
	seen, dlg, err := inviteWithAuth(t, u, trunkUser, trunkPass)
	require.NoError(t, err)
	require.Equal(t, []int{401, 200}, statusCodes(seen))
	require.NoError(t, dlg.Ack(t.Context()))
	require.NoError(t, dlg.Bye(t.Context()))
}

func TestAllowListed(t *testing.T) {
	trunks := []Trunk{
		{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		{Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, Username: "u", Password: "p"},
		{Username: "v", Password: "p"},
	}
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"192.0.2.7", true},
		{"::ffff:192.0.2.7", true},
		{"198.51.100.1", false}, // only the catch-all /0 holds it
		{"2001:db8::1", false},
	} {
		require.Equal(t, tc.want, allowListed(trunks, netip.MustParseAddr(tc.src)), tc.src)
	}
}

// readStreamResponse reads one final response from a stream connection.
func readStreamResponse(t *testing.T, conn net.Conn) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		n, err := conn.Read(tmp)
		require.NoError(t, err, "response so far: %q", buf)
		buf = append(buf, tmp[:n]...)
		for {
			end := strings.Index(string(buf), "\r\n\r\n")
			if end < 0 {
				break
			}
			msg := string(buf[:end+4])
			cl, _ := strconv.Atoi(headerOf(msg, "Content-Length"))
			if len(buf) < end+4+cl {
				break
			}
			msg = string(buf[:end+4+cl])
			buf = buf[end+4+cl:]
			if !strings.HasPrefix(msg, "SIP/2.0 1") {
				return msg
			}
		}
	}
}
