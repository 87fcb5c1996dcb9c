package sip

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Registration is one binding the server keeps at a registrar as a client
// (RFC 3261 §10): the registrar learns that calls for AOR go to our
// Contact, the advertised host and the port of our own listener, so a PBX
// or carrier that routes by registration reaches us behind a dynamic
// address.
type Registration struct {
	// Name labels the registration in metrics, logs and status (bounded:
	// it comes from the config). Default: the registrar's host[:port].
	Name string
	// Registrar is the registrar's SIP URI, the REGISTER Request-URI (RFC
	// 3261 §10.2: no user part), e.g. "sip:registrar.example:5060".
	Registrar string
	// AOR is the address-of-record the binding is for (To and From),
	// e.g. "sip:bot@example.com".
	AOR string
	// Username for digest authentication (default: the AOR's user).
	Username string
	// Password for digest authentication; never logged.
	Password string
	// Expires is the binding lifetime asked for (default 300 s); the
	// registrar may grant less (RFC 3261 §10.2.1.1) or ask for more (423).
	Expires time.Duration
	// ContactUser is the user part of our Contact (default: the AOR's user),
	// the Request-URI user of the INVITEs the registrar then sends us.
	ContactUser string
	// Transport is "udp" or "tcp" (default: the registrar URI's transport
	// parameter, else udp). Over UDP the REGISTER leaves from our UDP
	// listener, so the registrar (and any NAT on the way) sees the address
	// calls must come to.
	Transport string
}

// Registration defaults and policy.
const (
	DefaultRegisterExpires = 300 * time.Second
	// minRegisterExpires: shorter bindings are refused in config (a
	// registrar asking for less is obeyed, RFC 3261 §10.2.8 is about more).
	minRegisterExpires = 10 * time.Second
	// registerTimeout bounds one REGISTER transaction including its digest
	// retry (Timer F is 64·T1 = 32 s; we give up sooner and retry later).
	registerTimeout = 20 * time.Second
	// unregisterTimeout bounds the removal sent on shutdown (RFC 3261
	// §10.2.2), which must not hold the shutdown for long.
	unregisterTimeout = 4 * time.Second
	// Retry backoff after a failed REGISTER: doubling from the first delay
	// to the cap, each drawn in [½, 1]× (RFC 5626 §4.5 style), so a fleet
	// restarted together does not hammer the registrar in step.
	defaultRegisterRetryMin = 5 * time.Second
	defaultRegisterRetryMax = 5 * time.Minute
)

// Registration states reported in RegistrationStatus.State.
const (
	RegStateRegistering  = "registering"  // first attempt in progress
	RegStateRegistered   = "registered"   // a binding is held
	RegStateFailed       = "failed"       // the last attempt failed; retrying with backoff
	RegStateUnregistered = "unregistered" // removed on shutdown
)

// RegistrationStatus is the state of one registration, for /status.
type RegistrationStatus struct {
	Name      string `json:"name"`
	Registrar string `json:"registrar"`
	AOR       string `json:"aor"`
	Contact   string `json:"contact"`
	State     string `json:"state"`
	Up        bool   `json:"up"`
	// Granted is the binding lifetime the registrar granted last.
	Granted time.Duration `json:"granted_ns,omitzero"`
	// ExpiresAt is when the binding lapses unless refreshed; NextAttempt is
	// when the next REGISTER goes out (refresh or retry).
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastStatus is the final status code of the last attempt (0: none
	// received) and LastError why it failed.
	LastStatus int    `json:"last_status,omitzero"`
	LastError  string `json:"last_error,omitempty"`
	// Failures counts consecutive failed attempts.
	Failures int `json:"failures"`
}

// registrationsWithDefaults validates every registration against the
// listeners it will use and fills in the defaults.
func registrationsWithDefaults(regs []Registration, listen []Listener) ([]Registration, error) {
	if len(regs) == 0 {
		return nil, nil
	}
	out := make([]Registration, len(regs))
	names := map[string]bool{}
	for i, r := range regs {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: registration %d: %s", ErrConfig, i, fmt.Sprintf(format, args...))
		}
		for _, v := range []string{r.Name, r.Registrar, r.AOR, r.Username, r.Password, r.ContactUser, r.Transport} {
			if !headerSafe(v) {
				return nil, bad("a field contains CR, LF or NUL")
			}
		}
		var reg, aor sip.Uri
		if err := sip.ParseUri(r.Registrar, &reg); err != nil || reg.Host == "" || reg.Wildcard {
			return nil, bad("registrar %q is not a SIP URI with a host", r.Registrar)
		}
		if reg.Scheme != "sip" {
			return nil, bad("registrar %q: only sip: URIs are supported", r.Registrar)
		}
		if err := sip.ParseUri(r.AOR, &aor); err != nil || aor.Host == "" || aor.User == "" || aor.Wildcard {
			return nil, bad("aor %q is not a sip:user@host URI", r.AOR)
		}
		if r.Name == "" {
			r.Name = reg.Host
			if reg.Port > 0 {
				r.Name += ":" + strconv.Itoa(reg.Port)
			}
		}
		if names[r.Name] {
			return nil, bad("name %q is used twice", r.Name)
		}
		names[r.Name] = true
		if r.Username == "" {
			r.Username = aor.User
		}
		if r.ContactUser == "" {
			r.ContactUser = aor.User
		}
		if !isUserToken(r.ContactUser) {
			return nil, bad("contact user %q has characters not allowed in a SIP URI user part", r.ContactUser)
		}
		switch {
		case r.Expires == 0:
			r.Expires = DefaultRegisterExpires
		case r.Expires < minRegisterExpires:
			return nil, bad("expires %v is below %v", r.Expires, minRegisterExpires)
		}
		if r.Transport == "" {
			r.Transport = "udp"
			if t, ok := reg.UriParams.Get("transport"); ok {
				r.Transport = t
			}
		}
		r.Transport = strings.ToLower(r.Transport)
		if r.Transport != "udp" && r.Transport != "tcp" {
			return nil, bad("transport %q (want udp or tcp)", r.Transport)
		}
		found := false
		for _, l := range listen {
			if strings.HasPrefix(l.Network, r.Transport) {
				found = true
				break
			}
		}
		if !found {
			return nil, bad("transport %s has no %s listener to put in Contact", r.Transport, r.Transport)
		}
		out[i] = r
	}
	return out, nil
}

// isUserToken accepts RFC 3261 §25.1 unreserved characters and the
// user-unreserved ones most often used in numbers (+ - . _ ~ etc.).
func isUserToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("-_.!~*'()&=+$,;?/", rune(c)) {
			return false
		}
	}
	return true
}

// registrations runs every configured registration of a Server.
type registrations struct {
	s    *Server
	list []*registration
	// Tunables (tests shorten them before Serve).
	retryMin, retryMax time.Duration
	// refreshFrac picks when to refresh a granted binding, as a fraction of
	// its lifetime.
	refreshFrac func() float64
}

func newRegistrations(s *Server) *registrations {
	rs := &registrations{
		s:        s,
		retryMin: defaultRegisterRetryMin,
		retryMax: defaultRegisterRetryMax,
		// RFC 3261 §10.2.4 leaves the refresh time to the client; between
		// 50 % and 80 % of the lifetime leaves room for a retry or two
		// before the binding lapses and spreads a fleet's refreshes.
		refreshFrac: func() float64 { return 0.5 + 0.3*rand.Float64() },
	}
	for _, cfg := range s.cfg.Registrations {
		r := &registration{cfg: cfg, rs: rs, log: s.log.With("registration", cfg.Name)}
		r.st = RegistrationStatus{Name: cfg.Name, Registrar: cfg.Registrar, AOR: cfg.AOR, State: RegStateRegistering}
		s.metrics.registrationUp.WithLabelValues(cfg.Name).Set(0)
		rs.list = append(rs.list, r)
	}
	return rs
}

// Registrations reports the state of every configured registration.
func (s *Server) Registrations() []RegistrationStatus {
	if s.regs == nil {
		return nil
	}
	out := make([]RegistrationStatus, 0, len(s.regs.list))
	for _, r := range s.regs.list {
		out = append(out, r.status())
	}
	return out
}

// start runs every registration until ctx ends; each then removes its
// binding (bounded) before the returned channel is closed. Serve keeps the
// sockets open until then.
func (rs *registrations) start(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range rs.list {
		if err := r.prepare(); err != nil {
			r.log.Error("sip: registration disabled", "error", err)
			r.update(func(st *RegistrationStatus) { st.State, st.LastError = RegStateFailed, err.Error() })
			continue
		}
		wg.Go(func() { r.run(ctx) })
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// backoff is the wait before retry n (1-based) after failures.
func (rs *registrations) backoff(n int) time.Duration {
	d := rs.retryMin
	for i := 1; i < n && d < rs.retryMax; i++ {
		d *= 2
	}
	d = min(d, rs.retryMax)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// registration is one binding's client state machine.
type registration struct {
	cfg Registration
	rs  *registrations
	log *slog.Logger

	// Set by prepare, then read only by run.
	client    *sipgo.Client
	recipient sip.Uri
	aor       sip.Uri
	contact   sip.ContactHeader
	laddr     sip.Addr // UDP: our listener, so the REGISTER leaves from it
	// One Call-ID and From tag for every REGISTER of this binding, CSeq
	// increasing (RFC 3261 §10.2.4: refreshes SHOULD reuse the Call-ID).
	callID  string
	fromTag string
	cseq    uint32

	mu sync.Mutex
	st RegistrationStatus // guarded by mu
}

func (r *registration) status() RegistrationStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *registration) update(f func(*RegistrationStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.st)
}

// prepare resolves the listener the binding points at and builds what every
// REGISTER of it shares.
func (r *registration) prepare() error {
	s := r.rs.s
	if err := sip.ParseUri(r.cfg.Registrar, &r.recipient); err != nil {
		return fmt.Errorf("%w: registrar: %w", ErrRegister, err)
	}
	// RFC 3261 §10.2: the Request-URI names the registrar's domain; the
	// userinfo and "@" MUST NOT be present.
	r.recipient.User, r.recipient.Password = "", ""
	if err := sip.ParseUri(r.cfg.AOR, &r.aor); err != nil {
		return fmt.Errorf("%w: aor: %w", ErrRegister, err)
	}
	r.aor.UriParams, r.aor.Headers = nil, nil

	var local net.Addr
	for _, a := range s.Addrs() {
		if strings.HasPrefix(a.Network(), r.cfg.Transport) {
			local = a
			break
		}
	}
	if local == nil {
		return fmt.Errorf("%w: no %s listener", ErrRegister, r.cfg.Transport)
	}
	ap, err := netip.ParseAddrPort(local.String())
	if err != nil {
		return fmt.Errorf("%w: listener address %s: %w", ErrRegister, local, err)
	}
	if r.cfg.Transport == "udp" {
		r.laddr = sip.Addr{IP: net.IP(ap.Addr().AsSlice()), Port: int(ap.Port())}
	}
	host := s.cfg.AdvertiseHost
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
		host = "[" + ip.String() + "]"
	}
	curi := sip.Uri{Scheme: "sip", User: r.cfg.ContactUser, Host: host, Port: int(ap.Port())}
	if r.cfg.Transport != "udp" {
		curi.UriParams = sip.NewParams()
		curi.UriParams.Add("transport", r.cfg.Transport)
	}
	r.contact = sip.ContactHeader{Address: curi}
	r.update(func(st *RegistrationStatus) { st.Contact = curi.String() })

	// A client of the server's user agent: same transport layer, so the
	// UDP REGISTER can leave from the listener and its responses are read
	// there. rport (RFC 3581) lets the registrar answer through a NAT.
	r.client, err = sipgo.NewClient(s.ua, sipgo.WithClientHostname(s.cfg.AdvertiseHost), sipgo.WithClientNAT(),
		sipgo.WithClientLogger(s.log.With("component", "sipgo")))
	if err != nil {
		return fmt.Errorf("%w: client: %w", ErrRegister, err)
	}
	r.callID = sip.GenerateTagN(24) + "@" + s.cfg.AdvertiseHost
	r.fromTag = sip.GenerateTagN(16)
	r.cseq = uint32(rand.IntN(1 << 15))
	return nil
}

// run keeps the binding until ctx ends, then removes it.
func (r *registration) run(ctx context.Context) {
	metrics := r.rs.s.metrics
	if !r.waitListener(ctx) {
		return
	}
	granted := false // a binding may exist at the registrar
	failures := 0
	for {
		actx, cancel := context.WithTimeout(ctx, registerTimeout)
		res, err := r.register(actx, r.cfg.Expires)
		cancel()
		if ctx.Err() != nil {
			// Cancelled mid-transaction: the registrar may have bound us.
			granted = true
			break
		}
		now := time.Now()
		var wait time.Duration
		if err != nil {
			failures++
			wait = r.rs.backoff(failures)
			metrics.registers.WithLabelValues(r.cfg.Name, res.result).Inc()
			metrics.registrationUp.WithLabelValues(r.cfg.Name).Set(0)
			r.update(func(st *RegistrationStatus) {
				st.State, st.Up, st.Failures = RegStateFailed, false, failures
				st.LastStatus, st.LastError = res.status, err.Error()
				st.NextAttempt = now.Add(wait)
				if !st.ExpiresAt.IsZero() && now.After(st.ExpiresAt) {
					st.ExpiresAt = time.Time{}
				}
			})
			r.log.Warn("sip: registration failed; retrying", "registrar", r.cfg.Registrar, "aor", r.cfg.AOR,
				"status", res.status, "error", err, "failures", failures, "retry_in", wait.String())
		} else {
			failures = 0
			granted = true
			wait = time.Duration(float64(res.granted) * r.rs.refreshFrac())
			metrics.registers.WithLabelValues(r.cfg.Name, res.result).Inc()
			metrics.registrationUp.WithLabelValues(r.cfg.Name).Set(1)
			r.update(func(st *RegistrationStatus) {
				was := st.Up
				st.State, st.Up, st.Failures = RegStateRegistered, true, 0
				st.LastStatus, st.LastError = res.status, ""
				st.Granted, st.ExpiresAt, st.LastSuccess = res.granted, now.Add(res.granted), now
				st.NextAttempt = now.Add(wait)
				if !was {
					r.log.Info("sip: registered", "registrar", r.cfg.Registrar, "aor", r.cfg.AOR,
						"contact", st.Contact, "expires", res.granted.String(), "refresh_in", wait.String())
				} else {
					r.log.Debug("sip: registration refreshed", "expires", res.granted.String(), "refresh_in", wait.String())
				}
			})
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	metrics.registrationUp.WithLabelValues(r.cfg.Name).Set(0)
	if !granted {
		r.update(func(st *RegistrationStatus) { st.Up, st.NextAttempt = false, time.Time{} })
		return
	}
	// RFC 3261 §10.2.2: remove our binding (Expires: 0 for our Contact
	// only; "*" would also remove other instances registered to the AOR).
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unregisterTimeout)
	defer cancel()
	res, err := r.register(uctx, 0)
	r.update(func(st *RegistrationStatus) {
		st.State, st.Up, st.NextAttempt, st.ExpiresAt = RegStateUnregistered, false, time.Time{}, time.Time{}
		st.LastStatus = res.status
		if err != nil {
			st.LastError = err.Error()
		}
	})
	if err != nil {
		metrics.registers.WithLabelValues(r.cfg.Name, res.result).Inc()
		r.log.Warn("sip: unregister failed", "registrar", r.cfg.Registrar, "status", res.status, "error", err)
		return
	}
	metrics.registers.WithLabelValues(r.cfg.Name, "unregistered").Inc()
	r.log.Info("sip: unregistered", "registrar", r.cfg.Registrar, "aor", r.cfg.AOR)
}

// waitListener waits until sipgo serves our UDP listener (Serve hands it
// over in its own goroutine): a REGISTER sent before that would make sipgo
// bind a second socket to the same address and fail.
func (r *registration) waitListener(ctx context.Context) bool {
	if r.laddr.IP == nil {
		return true
	}
	pool := r.rs.s.ua.TransportLayer().Pool("udp")
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if c := pool.Get(r.laddr.String()); c != nil {
			c.Ref(-1) // Get took a reference
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// registerResult is what one attempt produced, also on failure.
type registerResult struct {
	status  int           // final status code; 0 if none
	granted time.Duration // binding lifetime granted (2xx)
	result  string        // metric label
}

// register sends one REGISTER asking for expires (0: remove), answers a
// 401/407 challenge once with digest credentials (RFC 3261 §22.2) and a 423
// once with the registrar's Min-Expires (§10.2.8), and reads the lifetime
// the registrar granted to our Contact (§10.2.4).
func (r *registration) register(ctx context.Context, expires time.Duration) (registerResult, error) {
	secs := uint32(expires / time.Second)
	for attempt := 0; ; attempt++ {
		req := r.newRequest(secs)
		res, err := r.client.Do(ctx, req, sipgo.ClientRequestRegisterBuild)
		r.cseq = req.CSeq().SeqNo
		if err != nil {
			return registerResult{result: "error"}, fmt.Errorf("%w: %w", ErrRegister, err)
		}
		if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired {
			if r.cfg.Password == "" {
				return registerResult{status: res.StatusCode, result: "auth_rejected"},
					fmt.Errorf("%w: challenged (%d) and no password configured", ErrRegister, res.StatusCode)
			}
			res, err = r.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: r.cfg.Username, Password: r.cfg.Password})
			r.cseq = req.CSeq().SeqNo
			if err != nil {
				return registerResult{result: "error"}, fmt.Errorf("%w: authenticated retry: %w", ErrRegister, err)
			}
			if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired || res.StatusCode == sip.StatusForbidden {
				return registerResult{status: res.StatusCode, result: "auth_rejected"},
					fmt.Errorf("%w: credentials rejected: %d %s", ErrRegister, res.StatusCode, sanitizePhrase(res.Reason))
			}
		}
		if res.StatusCode == sip.StatusIntervalToBrief && secs > 0 && attempt == 0 {
			if h := res.GetHeader("Min-Expires"); h != nil {
				if v, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32); err == nil && uint32(v) > secs {
					r.log.Info("sip: registrar asks for a longer binding", "min_expires", v)
					secs = uint32(v)
					continue
				}
			}
		}
		if res.StatusCode < 200 || res.StatusCode > 299 {
			return registerResult{status: res.StatusCode, result: "rejected"},
				fmt.Errorf("%w: %d %s", ErrRegister, res.StatusCode, sanitizePhrase(res.Reason))
		}
		out := registerResult{status: res.StatusCode, result: "ok"}
		if secs == 0 {
			return out, nil
		}
		g := r.grantedExpires(res, secs)
		if g <= 0 {
			return registerResult{status: res.StatusCode, result: "rejected"},
				fmt.Errorf("%w: %d without a binding for our contact", ErrRegister, res.StatusCode)
		}
		out.granted = time.Duration(g) * time.Second
		return out, nil
	}
}

// newRequest builds a REGISTER for our binding. ClientRequestRegisterBuild
// increments the CSeq and adds Via and Max-Forwards.
func (r *registration) newRequest(expires uint32) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, r.recipient)
	req.SetTransport(strings.ToUpper(r.cfg.Transport))
	if r.laddr.IP != nil {
		req.Laddr = r.laddr
	}
	from := &sip.FromHeader{Address: r.aor, Params: sip.NewParams()}
	from.Params.Add("tag", r.fromTag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: r.aor})
	cid := sip.CallIDHeader(r.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER})
	ct := r.contact
	ct.Params = nil
	req.AppendHeader(&ct)
	exp := sip.ExpiresHeader(expires)
	req.AppendHeader(&exp)
	req.AppendHeader(sip.NewHeader("User-Agent", r.rs.s.cfg.UserAgent))
	req.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	return req
}

// grantedExpires is the lifetime the 2xx gives our binding (RFC 3261
// §10.2.4): the expires parameter of our Contact in the response, else of
// the only Contact (a registrar that rewrote it for NAT), else the
// Expires header, else what we asked for. -1: a 2xx listing other
// contacts but not ours.
func (r *registration) grantedExpires(res *sip.Response, asked uint32) int64 {
	var contacts []*sip.ContactHeader
	for _, h := range res.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok {
			contacts = append(contacts, c)
		}
	}
	expiresHdr := int64(-1)
	if h := res.GetHeader("Expires"); h != nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(h.Value()), 10, 64); err == nil && v >= 0 {
			expiresHdr = v
		}
	}
	param := func(c *sip.ContactHeader) int64 {
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
				return n
			}
		}
		return expiresHdr
	}
	fallback := func(v int64) int64 {
		if v >= 0 {
			return v
		}
		return int64(asked)
	}
	for _, c := range contacts {
		if sameContact(c.Address, r.contact.Address) {
			return fallback(param(c))
		}
	}
	switch len(contacts) {
	case 0:
		return fallback(expiresHdr)
	case 1:
		return fallback(param(contacts[0]))
	}
	return -1
}

// sameContact compares the parts of a Contact URI a registrar keeps (RFC
// 3261 §19.1.4 in spirit: user, host and port; parameters may be added).
func sameContact(a, b sip.Uri) bool {
	pa, pb := a.Port, b.Port
	if pa == 0 {
		pa = 5060
	}
	if pb == 0 {
		pb = 5060
	}
	return a.User == b.User && strings.EqualFold(strings.Trim(a.Host, "[]"), strings.Trim(b.Host, "[]")) && pa == pb
}
