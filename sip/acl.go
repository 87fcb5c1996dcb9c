package sip

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// Who may call. With no trunk configured anyone may (the local demo). With
// trunks, every request's source IP must fall in some trunk's Allow list
// (a trunk with a username and no Allow list accepts any source), and an
// INVITE that creates a dialog is then admitted:
//
//   - at once if a matching trunk has no username (IP allow-listing, what
//     Twilio, Telnyx and most carriers use);
//   - otherwise after a digest challenge (RFC 3261 §22.2, auth.go).
//
// OPTIONS is never challenged, so an SBC's health check works without
// credentials, but it is still subject to the IP check. In-dialog requests
// are authorised by the dialog they match (Call-ID and both tags: an unknown
// dialog gets 481); they too must come from an allowed IP.
//
// Sources that keep failing (wrong IP, wrong credentials, replays) are
// blocked for a while: their out-of-dialog requests are dropped over UDP
// (no reflection, no answer to retransmit) and refused with 403 without a
// challenge over TCP/TLS.
//
// An allow-listed source (inside a trunk's Allow prefix, a catch-all /0
// aside) is never blocked: over UDP its address can be spoofed, so a block
// would let anyone lock a carrier out with a few wrong passwords. Its
// failures are still answered 403, counted and logged. Guessing its
// password stays out of reach all the same: a digest answer needs the
// nonce of a challenge, and a challenge goes to the real source, not to
// whoever spoofed it (over TCP/TLS the source cannot be spoofed at all).
// The alternative, blocking per source and username, would still let a
// spoofer lock out the trunk's one real username.

// Trunk is a peer allowed to send us calls.
type Trunk struct {
	// Name identifies the trunk in logs.
	Name string
	// Allow are the source networks of the trunk's signalling. Empty is
	// only valid with a Username: digest from any source.
	Allow []netip.Prefix
	// Username and Password, when set, require digest authentication of
	// every INVITE that starts a dialog. The password never reaches logs.
	Username string
	Password string
	// Realm of the challenge (RFC 3261 §22.1). Default: the advertise host.
	Realm string
	// Algorithms offered, in order of preference: "SHA-256", "MD5"
	// (default both, SHA-256 first as RFC 8760 §2.4 asks). Clients that
	// only read the first challenge and know only MD5 (SIPp 3.6, older
	// PBXs) need MD5 first or alone.
	Algorithms []string
}

// AuthLimit blocks a source after repeated authorisation failures.
type AuthLimit struct {
	// Failures tolerated per Window; one more blocks the source for Block.
	// Defaults 10, 1 minute, 5 minutes.
	Failures int
	Window   time.Duration
	Block    time.Duration
}

// Defaults of AuthLimit and the limiter's bounds.
const (
	DefaultAuthFailures = 10
	DefaultAuthWindow   = time.Minute
	DefaultAuthBlock    = 5 * time.Minute
	// maxTrackedSources bounds the failure table: beyond it new sources are
	// not tracked until entries expire (they are still refused).
	maxTrackedSources = 16384
)

// Auth failure reasons (sipbridge_sip_auth_failures_total{reason}).
const (
	authSourceNotAllowed = "source_not_allowed"
	authBlocked          = "blocked"
	authMalformed        = "malformed"
	authUnknownUser      = "unknown_user"
	authBadResponse      = "bad_response"
	authURIMismatch      = "uri_mismatch"
	authReplay           = "replay"
	authStale            = "stale"
)

var authReasons = []string{authSourceNotAllowed, authBlocked, authMalformed, authUnknownUser,
	authBadResponse, authURIMismatch, authReplay, authStale}

// countsTowardBlock: a stale nonce is normal client behaviour, and a
// blocked request is the block itself.
func countsTowardBlock(reason string) bool {
	return reason != authStale && reason != authBlocked
}

// authMetrics are the access-control series.
type authMetrics struct {
	failures *prometheus.CounterVec // sipbridge_sip_auth_failures_total{reason}
	admitted *prometheus.CounterVec // sipbridge_sip_auth_admitted_total{method}
}

func newAuthMetrics(reg prometheus.Registerer) *authMetrics {
	m := &authMetrics{
		failures: counterVec(reg, "sip", "auth_failures_total",
			"Requests refused by trunk access control, by reason (source_not_allowed, blocked, malformed, unknown_user, bad_response, uri_mismatch, replay, stale).", "reason"),
		admitted: counterVec(reg, "sip", "auth_admitted_total",
			"INVITEs admitted by trunk access control, by method (ip, digest).", "method"),
	}
	for _, r := range authReasons {
		m.failures.WithLabelValues(r)
	}
	m.admitted.WithLabelValues("ip")
	m.admitted.WithLabelValues("digest")
	return m
}

// withTrunkDefaults validates Trunks and AuthLimit and fills in defaults
// (after AdvertiseHost, the default realm).
func (c *Config) withTrunkDefaults() error {
	trunks, lim, err := trunksWithDefaults(c.Trunks, c.AdvertiseHost, c.AuthLimit)
	if err != nil {
		return err
	}
	c.Trunks, c.AuthLimit = trunks, lim
	return nil
}

// trunksWithDefaults validates the trunks and fills in realms.
func trunksWithDefaults(trunks []Trunk, advertise string, lim AuthLimit) ([]Trunk, AuthLimit, error) {
	out := make([]Trunk, len(trunks))
	for i, t := range trunks {
		if t.Name == "" {
			t.Name = fmt.Sprintf("trunk%d", i)
		}
		if !headerSafe(t.Name) {
			return nil, lim, fmt.Errorf("%w: trunk %d: name contains control characters", ErrConfig, i)
		}
		if len(t.Allow) == 0 && t.Username == "" {
			return nil, lim, fmt.Errorf("%w: trunk %q: neither an allow list nor a username (it would admit anyone)", ErrConfig, t.Name)
		}
		if (t.Username == "") != (t.Password == "") {
			return nil, lim, fmt.Errorf("%w: trunk %q: username and password go together", ErrConfig, t.Name)
		}
		if t.Username != "" && !isDigestValue(t.Username) {
			return nil, lim, fmt.Errorf("%w: trunk %q: username has characters a digest header cannot carry", ErrConfig, t.Name)
		}
		if t.Realm == "" {
			t.Realm = advertise
		}
		if !isDigestValue(t.Realm) {
			return nil, lim, fmt.Errorf("%w: trunk %q: realm has characters a digest header cannot carry", ErrConfig, t.Name)
		}
		algs, err := digestAlgorithms(t.Algorithms)
		if err != nil {
			return nil, lim, fmt.Errorf("%w: trunk %q: %w", ErrConfig, t.Name, err)
		}
		t.Algorithms = algs
		allow := make([]netip.Prefix, 0, len(t.Allow))
		for _, p := range t.Allow {
			if !p.IsValid() {
				return nil, lim, fmt.Errorf("%w: trunk %q: invalid allow prefix", ErrConfig, t.Name)
			}
			allow = append(allow, netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked())
		}
		t.Allow = allow
		out[i] = t
	}
	if lim.Failures == 0 {
		lim.Failures = DefaultAuthFailures
	}
	if lim.Window <= 0 {
		lim.Window = DefaultAuthWindow
	}
	if lim.Block <= 0 {
		lim.Block = DefaultAuthBlock
	}
	if lim.Failures < 0 {
		return nil, lim, fmt.Errorf("%w: auth limit failures %d", ErrConfig, lim.Failures)
	}
	return out, lim, nil
}

// digestAlgorithms canonicalises a trunk's algorithm list.
func digestAlgorithms(in []string) ([]string, error) {
	if len(in) == 0 {
		return append([]string(nil), challengeAlgorithms...), nil
	}
	var out []string
	for _, a := range in {
		switch strings.ToUpper(a) {
		case "SHA-256", "MD5":
		default:
			return nil, fmt.Errorf("digest algorithm %q (want SHA-256 or MD5)", a)
		}
		a = strings.ToUpper(a)
		if slices.Contains(out, a) {
			return nil, fmt.Errorf("digest algorithm %s listed twice", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// unmappedBits keeps a ::ffff:a.b.c.d/n prefix meaningful once unmapped.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(0, p.Bits()-96)
	}
	return p.Bits()
}

// isDigestValue: printable ASCII without quote or backslash, so the value
// goes into a quoted-string unescaped (RFC 3261 §25.1 qdtext).
func isDigestValue(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// trunkMatch is what the trunks say about one source.
type trunkMatch struct {
	ipTrunk *Trunk   // a trunk admitting this source without credentials
	digest  []*Trunk // trunks admitting it with credentials
}

func (m trunkMatch) allowed() bool { return m.ipTrunk != nil || len(m.digest) > 0 }

// matchSource finds the trunks that accept src.
func matchSource(trunks []Trunk, src netip.Addr) trunkMatch {
	var m trunkMatch
	src = src.Unmap()
	for i := range trunks {
		t := &trunks[i]
		in := len(t.Allow) == 0
		for _, p := range t.Allow {
			if p.Contains(src) {
				in = true
				break
			}
		}
		if !in {
			continue
		}
		if t.Username == "" {
			if m.ipTrunk == nil {
				m.ipTrunk = t
			}
			continue
		}
		m.digest = append(m.digest, t)
	}
	return m
}

// allowListed reports whether src is inside some trunk's Allow prefix
// (a /0 prefix does not count: it lists everybody).
func allowListed(trunks []Trunk, src netip.Addr) bool {
	src = src.Unmap()
	for i := range trunks {
		for _, p := range trunks[i].Allow {
			if p.Bits() > 0 && p.Contains(src) {
				return true
			}
		}
	}
	return false
}

// sourceAddr is the IP a request came from (the packet or connection
// source, not what Via claims).
func sourceAddr(req *sip.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// failLimiter counts authorisation failures per source IP in fixed windows
// and blocks a source that exceeds the limit.
type failLimiter struct {
	lim AuthLimit
	now func() time.Time

	mu sync.Mutex
	m  map[netip.Addr]*failEntry
}

type failEntry struct {
	windowStart  time.Time
	count        int
	blockedUntil time.Time
}

func newFailLimiter(lim AuthLimit) *failLimiter {
	return &failLimiter{lim: lim, now: time.Now, m: map[netip.Addr]*failEntry{}}
}

// blocked reports whether ip is in its cool-down.
func (l *failLimiter) blocked(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[ip]
	return e != nil && l.now().Before(e.blockedUntil)
}

// fail records a failure and reports whether it started a block.
func (l *failLimiter) fail(ip netip.Addr) (startedBlock bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.m[ip]
	if e == nil {
		if len(l.m) >= maxTrackedSources {
			l.sweepLocked(now)
			if len(l.m) >= maxTrackedSources {
				return false
			}
		}
		e = &failEntry{windowStart: now}
		l.m[ip] = e
	}
	if now.Before(e.blockedUntil) {
		return false
	}
	if now.Sub(e.windowStart) >= l.lim.Window {
		e.windowStart, e.count = now, 0
	}
	e.count++
	if e.count > l.lim.Failures {
		e.blockedUntil = now.Add(l.lim.Block)
		e.count = 0
		e.windowStart = e.blockedUntil
		return true
	}
	return false
}

// success forgets the failures of ip (not a block in progress).
func (l *failLimiter) success(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.m[ip]; e != nil && !l.now().Before(e.blockedUntil) {
		delete(l.m, ip)
	}
}

func (l *failLimiter) sweepLocked(now time.Time) {
	for ip, e := range l.m {
		if !now.Before(e.blockedUntil) && now.Sub(e.windowStart) >= l.lim.Window {
			delete(l.m, ip)
		}
	}
}

func (l *failLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// inDialog: a To tag means the request belongs to a dialog (RFC 3261
// §12.2), authorised by matching it.
func inDialog(req *sip.Request) bool {
	to := req.To()
	return to != nil && to.Params.Has("tag")
}

// isStream: TCP or TLS (a 403 costs nothing to reflect over a connection).
func isStream(req *sip.Request) bool {
	return !strings.EqualFold(req.Transport(), "udp")
}

// screen applies the trunk IP check and the failure block to every request
// before its handler. It returns false when the request was answered or
// dropped here.
func (s *Server) screen(req *sip.Request, tx sip.ServerTransaction) bool {
	a := s.auth.Load()
	if a == nil {
		return true
	}
	src, ok := sourceAddr(req)
	if !ok {
		// sipgo always sets the source; without one we cannot check it.
		a.refuse(req, tx, netip.Addr{}, authSourceNotAllowed, "", "", false)
		return false
	}
	if !inDialog(req) && !allowListed(a.trunks, src) && a.limiter.blocked(src) {
		a.refuse(req, tx, src, authBlocked, "", "", !isStream(req))
		return false
	}
	if !matchSource(a.trunks, src).allowed() {
		a.refuse(req, tx, src, authSourceNotAllowed, "", "", false)
		return false
	}
	return true
}
