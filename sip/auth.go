package sip

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/sipbridge/sipbridge/realtime"
)

// Digest authentication as a UAS (RFC 3261 §22.2 and §22.4, RFC 2617
// qop=auth, RFC 8760 SHA-256). sipgo has no server-side helper; diago and
// livekit/sip were the design references, and this goes further:
//
//   - the challenge offers SHA-256 first, then MD5 (RFC 8760 §2.4: in order
//     of preference; configurable per trunk for clients that read only the
//     first challenge), with qop="auth" and an opaque value;
//   - nonces are ours (random, kept in a bounded table) and expire after
//     nonceTTL; a correct answer to an expired or unknown nonce gets a new
//     challenge with stale=true (RFC 2617 §3.2.1), so the client retries
//     without treating it as a wrong password;
//   - nc must increase for each use of a nonce with qop=auth, and a nonce
//     answered without qop (RFC 2069 clients) is single-use: a replayed
//     Authorization header never admits a second call;
//   - the credentials' uri must name the Request-URI's resource;
//   - the response is compared in constant time;
//   - wrong credentials get 403, not another 401, so a misconfigured peer
//     does not loop, and they count toward the source's failure block.
//
// Only INVITEs that create a dialog are challenged (OPTIONS never is).

// Digest limits.
const (
	nonceTTL          = 5 * time.Minute
	maxNonces         = 8192 // outstanding challenges; the oldest go first
	maxAuthHeaderLen  = 4096
	maxAuthHeaders    = 4
	nonceRandomBytes  = 18
	opaqueRandomBytes = 9
)

// challengeAlgorithms: the default offer, in order of preference (RFC 8760
// §2.4).
var challengeAlgorithms = []string{"SHA-256", "MD5"}

// authenticator is the state of trunk access control; nil when no trunk is
// configured.
type authenticator struct {
	trunks  []Trunk
	limiter *failLimiter
	nonces  *nonceStore
	metrics *authMetrics
	log     *slog.Logger
	logLim  *realtime.LogLimiter
	respond func(req *sip.Request, tx sip.ServerTransaction, status int, phrase string, body []byte, hdrs ...sip.Header) error
}

func newAuthenticator(s *Server) *authenticator {
	return newAuthenticatorFor(s, s.cfg.Trunks, s.cfg.AuthLimit)
}

// newAuthenticatorFor is newAuthenticator with other trunks (SetTrunks).
func newAuthenticatorFor(s *Server, trunks []Trunk, lim AuthLimit) *authenticator {
	if len(trunks) == 0 {
		return nil
	}
	return &authenticator{
		trunks:  trunks,
		limiter: newFailLimiter(lim),
		nonces:  newNonceStore(nonceTTL, maxNonces),
		metrics: s.metrics.auth,
		log:     s.log,
		logLim:  realtime.NewLogLimiter(time.Second, 10),
		respond: s.respond,
	}
}

// authorize decides whether an INVITE that creates a dialog may proceed,
// and names the trunk that admitted it ("" with no trunks: CallInfo.Trunk).
// It runs before anything is allocated for the call; when ok is false the
// request has been answered (401 or 403) or dropped.
func (s *Server) authorize(req *sip.Request, tx sip.ServerTransaction) (trunk string, ok bool) {
	a := s.auth.Load()
	if a == nil {
		return "", true
	}
	src, ok := sourceAddr(req)
	if !ok {
		a.refuse(req, tx, netip.Addr{}, authSourceNotAllowed, "", "", false)
		return "", false
	}
	m := matchSource(a.trunks, src)
	if m.ipTrunk != nil {
		a.metrics.admitted.WithLabelValues("ip").Inc()
		a.log.Debug("sip: caller admitted", "trunk", m.ipTrunk.Name, "by", "ip", "src", src.String(),
			"call_id", headerValue(req.CallID()))
		return m.ipTrunk.Name, true
	}
	if len(m.digest) == 0 {
		a.refuse(req, tx, src, authSourceNotAllowed, "", "", false)
		return "", false
	}
	v := a.verify(req, m.digest)
	switch {
	case v.trunk != nil:
		a.limiter.success(src)
		a.metrics.admitted.WithLabelValues("digest").Inc()
		a.log.Debug("sip: caller admitted", "trunk", v.trunk.Name, "by", "digest", "src", src.String(),
			"call_id", headerValue(req.CallID()))
		return v.trunk.Name, true
	case v.reason == "":
		a.challenge(req, tx, m.digest, false)
	case v.reason == authStale:
		a.metrics.failures.WithLabelValues(authStale).Inc()
		a.challenge(req, tx, m.digest, true)
	default:
		a.refuse(req, tx, src, v.reason, v.trunkName, v.user, false)
	}
	return "", false
}

// challenge answers 401 with one WWW-Authenticate per realm and algorithm
// (the algorithms of the first trunk with that realm), all on one fresh
// nonce (RFC 3261 §22.2, RFC 8760 §2.4).
func (a *authenticator) challenge(req *sip.Request, tx sip.ServerTransaction, trunks []*Trunk, stale bool) {
	nonce, opaque, err := a.nonces.issue()
	if err != nil {
		a.log.Error("sip: cannot issue a digest nonce", "error", err)
		_ = a.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error", nil)
		return
	}
	var hdrs []sip.Header
	seen := map[string]bool{}
	for _, t := range trunks {
		if seen[t.Realm] {
			continue
		}
		seen[t.Realm] = true
		for _, alg := range t.Algorithms {
			c := digest.Challenge{Realm: t.Realm, Nonce: nonce, Opaque: opaque, Stale: stale,
				Algorithm: alg, QOP: []string{"auth"}}
			hdrs = append(hdrs, sip.NewHeader("WWW-Authenticate", c.String()))
		}
	}
	if err := a.respond(req, tx, sip.StatusUnauthorized, "Unauthorized", nil, hdrs...); err != nil {
		a.log.Debug("sip: 401 not sent", "error", err)
	}
}

// refuse counts a failure, blocks a source that keeps failing, and answers
// 403 (nothing for an ACK, or when drop is set: a blocked source over UDP).
func (a *authenticator) refuse(req *sip.Request, tx sip.ServerTransaction, src netip.Addr, reason, trunk, user string, drop bool) {
	a.metrics.failures.WithLabelValues(reason).Inc()
	if countsTowardBlock(reason) && src.IsValid() && !allowListed(a.trunks, src) && a.limiter.fail(src) {
		// Once per block: not rate-limited.
		a.log.Warn("sip: source blocked after repeated authorisation failures", "src", src.String(),
			"failures", a.limiter.lim.Failures, "window", a.limiter.lim.Window.String(), "block", a.limiter.lim.Block.String())
	}
	// Logged before the 403 goes out, so whoever sees the 403 finds the line.
	if ok, suppressed := a.logLim.Allow(); ok {
		attrs := []any{"reason", reason, "method", sanitizePhrase(req.Method.String()),
			"call_id", headerValue(req.CallID()), "src", req.Source(), "transport", sanitizePhrase(req.Transport()),
			"answered", !drop && !req.IsAck(), "suppressed", suppressed}
		if trunk != "" {
			attrs = append(attrs, "trunk", trunk)
		}
		if user != "" {
			attrs = append(attrs, "username", sanitizePhrase(user))
		}
		a.log.Log(context.Background(), slog.LevelInfo, "sip: request not authorised", attrs...)
	}
	if !drop && !req.IsAck() {
		if err := a.respond(req, tx, sip.StatusForbidden, "Forbidden", nil); err != nil {
			a.log.Debug("sip: 403 not sent", "error", err)
		}
	}
}

// verdict of one Authorization check: trunk set = admitted; reason empty
// and no trunk = no usable credentials (challenge); authStale = challenge
// again with stale=true; anything else is a failure.
type verdict struct {
	trunk     *Trunk
	reason    string
	trunkName string // for the log, once known
	user      string // the username offered, for the log
}

// verify checks the request's digest credentials against the candidate
// trunks (those whose allow list holds the source).
func (a *authenticator) verify(req *sip.Request, candidates []*Trunk) verdict {
	hdrs := req.GetHeaders("Authorization")
	if len(hdrs) == 0 {
		return verdict{}
	}
	var creds *digest.Credentials
	sawDigest := false
	for i, h := range hdrs {
		if i == maxAuthHeaders {
			break
		}
		v := strings.TrimSpace(h.Value())
		if len(v) > maxAuthHeaderLen {
			return verdict{reason: authMalformed}
		}
		if !digest.IsDigest(v) {
			continue
		}
		sawDigest = true
		c, err := digest.ParseCredentials(v)
		if err != nil {
			return verdict{reason: authMalformed}
		}
		for _, t := range candidates {
			if c.Realm == t.Realm {
				creds = c
				break
			}
		}
		if creds != nil {
			break
		}
	}
	if !sawDigest {
		return verdict{reason: authMalformed}
	}
	if creds == nil {
		return verdict{reason: authUnknownUser}
	}
	user := creds.Username
	alg, ok := credentialsWellFormed(creds)
	if !ok {
		return verdict{reason: authMalformed, user: user}
	}
	var trunk *Trunk
	for _, t := range candidates {
		// Constant time over the username too: timing must not tell which
		// usernames exist.
		if t.Realm == creds.Realm && subtle.ConstantTimeCompare([]byte(t.Username), []byte(creds.Username)) == 1 {
			trunk = t
			break
		}
	}
	if trunk == nil {
		return verdict{reason: authUnknownUser, user: user}
	}
	if !slices.Contains(trunk.Algorithms, alg) {
		return verdict{reason: authMalformed, trunkName: trunk.Name, user: user} // not offered
	}
	if !sameResource(creds.URI, req.Recipient) {
		return verdict{reason: authURIMismatch, trunkName: trunk.Name, user: user}
	}
	var qop []string
	if creds.QOP != "" {
		qop = []string{creds.QOP}
	}
	want, err := digest.Digest(&digest.Challenge{Realm: creds.Realm, Nonce: creds.Nonce, Algorithm: alg, QOP: qop},
		digest.Options{Method: req.Method.String(), URI: creds.URI, Username: trunk.Username,
			Password: trunk.Password, Cnonce: creds.Cnonce, Count: creds.Nc})
	if err != nil {
		return verdict{reason: authMalformed, trunkName: trunk.Name, user: user}
	}
	valid := subtle.ConstantTimeCompare([]byte(strings.ToLower(creds.Response)), []byte(want.Response)) == 1
	reason := a.nonces.use(creds.Nonce, creds.Opaque, creds.QOP != "", uint32(creds.Nc), valid)
	if reason != "" {
		return verdict{reason: reason, trunkName: trunk.Name, user: user}
	}
	return verdict{trunk: trunk}
}

// credentialsWellFormed checks what we offered was answered: a digest for
// MD5 or SHA-256, qop auth or none, and every field the computation needs.
// It returns the algorithm to compute with.
func credentialsWellFormed(c *digest.Credentials) (string, bool) {
	if c.Username == "" || c.Nonce == "" || c.URI == "" || c.Response == "" || c.Userhash {
		return "", false
	}
	var alg string
	var hexLen int
	switch strings.ToUpper(c.Algorithm) {
	case "", "MD5":
		alg, hexLen = "MD5", 32
	case "SHA-256":
		alg, hexLen = "SHA-256", 64
	default:
		return "", false
	}
	if len(c.Response) != hexLen {
		return "", false
	}
	if _, err := hex.DecodeString(c.Response); err != nil {
		return "", false
	}
	switch c.QOP {
	case "":
	case "auth":
		if c.Cnonce == "" || c.Nc <= 0 {
			return "", false
		}
	default:
		return "", false // auth-int was not offered
	}
	return alg, true
}

// sameResource reports whether the credentials' uri names the Request-URI
// (RFC 2617 §3.2.2.5): same scheme, user, host and port. Parameters are not
// compared: clients such as sipgo put the URI without them in the digest.
// A uri without a user part is accepted for a Request-URI with one: SIPp
// (and some PBXs) send the bare host there, and the nonce and nc checks,
// not the user part, are what stop a response from being replayed.
func sameResource(credURI string, r sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(credURI, &u); err != nil {
		return false
	}
	scheme := func(s string) string {
		if s == "" {
			return "sip"
		}
		return strings.ToLower(s)
	}
	port := func(u sip.Uri) int {
		if u.Port != 0 {
			return u.Port
		}
		if scheme(u.Scheme) == "sips" {
			return 5061
		}
		return 5060
	}
	return scheme(u.Scheme) == scheme(r.Scheme) && (u.User == r.User || u.User == "") &&
		strings.EqualFold(u.Host, r.Host) && port(u) == port(r)
}

// nonceStore holds the nonces we issued, oldest first.
type nonceStore struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	m     map[string]*nonceEntry
	order []string // issue order; the front expires first
}

type nonceEntry struct {
	issued time.Time
	opaque string
	lastNC uint32 // highest nc accepted with qop=auth
	used   bool   // answered without qop (single use)
}

func newNonceStore(ttl time.Duration, max int) *nonceStore {
	return &nonceStore{ttl: ttl, max: max, now: time.Now, m: map[string]*nonceEntry{}}
}

// issue creates a nonce and its opaque value.
func (n *nonceStore) issue() (nonce, opaque string, err error) {
	nb := make([]byte, nonceRandomBytes+opaqueRandomBytes)
	if _, err := rand.Read(nb); err != nil {
		return "", "", err
	}
	nonce = base64.RawURLEncoding.EncodeToString(nb[:nonceRandomBytes])
	opaque = base64.RawURLEncoding.EncodeToString(nb[nonceRandomBytes:])
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	n.pruneLocked(now)
	for len(n.m) >= n.max && len(n.order) > 0 {
		delete(n.m, n.order[0])
		n.order = n.order[1:]
	}
	n.m[nonce] = &nonceEntry{issued: now, opaque: opaque}
	n.order = append(n.order, nonce)
	return nonce, opaque, nil
}

func (n *nonceStore) pruneLocked(now time.Time) {
	for len(n.order) > 0 {
		e := n.m[n.order[0]]
		if e != nil && now.Sub(e.issued) < n.ttl {
			return
		}
		delete(n.m, n.order[0])
		n.order = n.order[1:]
	}
}

// use applies a response to a nonce: "" admits it; otherwise the failure
// reason. valid says whether the response digest was right; state only
// changes for valid responses, so garbage cannot burn a client's nc.
func (n *nonceStore) use(nonce, opaque string, qop bool, nc uint32, valid bool) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.m[nonce]
	if e == nil || n.now().Sub(e.issued) >= n.ttl {
		if valid {
			return authStale // right password, old nonce: challenge again
		}
		return authBadResponse
	}
	if subtle.ConstantTimeCompare([]byte(opaque), []byte(e.opaque)) != 1 {
		return authMalformed
	}
	if !valid {
		return authBadResponse
	}
	if qop {
		if nc <= e.lastNC {
			return authReplay
		}
		e.lastNC = nc
		return ""
	}
	if e.used {
		return authReplay
	}
	e.used = true
	return ""
}

func (n *nonceStore) size() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.m)
}
