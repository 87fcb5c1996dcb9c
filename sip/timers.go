package sip

// Session timers (RFC 4028). A session interval is negotiated on the INVITE
// and on every session refresh (re-INVITE or UPDATE, either way): the 2xx
// carries Session-Expires with the interval and who refreshes. The refresher
// sends a refresh at half the interval; the other side ends the session
// with BYE when no refresh arrived shortly before the interval ran out. Trunks
// and IMS cores use it to clean up calls whose BYE was lost, and drop calls
// (typically at 15 or 30 minutes) whose far end does not take part.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Session timer defaults and limits.
const (
	DefaultSessionExpires = 30 * time.Minute
	DefaultMinSE          = 90 * time.Second // RFC 4028 §5: Min-SE MUST NOT be below 90 s
	// expiryMargin caps how early before expiry the side that does not
	// refresh sends its BYE: the smaller of 32 s and a third of the
	// interval (RFC 4028 §10).
	expiryMargin = 32 * time.Second
	// maxRefreshTries bounds one refresh round: 422 (raise the interval),
	// 491 (glare) and an UPDATE the peer refuses are retried at once.
	maxRefreshTries = 4
	// minRefreshRetry is the least time between failed refresh rounds.
	minRefreshRetry = 250 * time.Millisecond
	// maxDeltaSeconds bounds Session-Expires and Min-SE values we parse
	// (RFC 3261 §25.1 delta-seconds; 2^31-1 as in §20.19 Expires).
	maxDeltaSeconds = 1<<31 - 1
)

// Refresher parameter values (RFC 4028 §4), relative to the transaction
// carrying them: "uac" is the sender of the request.
const (
	refresherUAC = "uac"
	refresherUAS = "uas"
)

var (
	errSessionExpires = errors.New("sip: invalid Session-Expires")
	errMinSE          = errors.New("sip: invalid Min-SE")
)

// withTimerDefaults fills in and checks the session timer settings.
func (c Config) withTimerDefaults() (Config, error) {
	if c.MinSE == 0 {
		c.MinSE = DefaultMinSE
	}
	if c.MinSE < time.Second {
		return c, fmt.Errorf("%w: min SE %s (at least 1s)", ErrConfig, c.MinSE)
	}
	if c.SessionExpires == 0 {
		c.SessionExpires = max(DefaultSessionExpires, c.MinSE)
	}
	if c.SessionExpires > 0 && c.SessionExpires < c.MinSE {
		return c, fmt.Errorf("%w: session expires %s below min SE %s", ErrConfig, c.SessionExpires, c.MinSE)
	}
	switch c.SessionRefresher {
	case "":
		c.SessionRefresher = refresherUAS
	case refresherUAS, refresherUAC:
	default:
		return c, fmt.Errorf("%w: session refresher %q (want uas or uac)", ErrConfig, sanitizePhrase(c.SessionRefresher))
	}
	return c, nil
}

// ---- parsing ---------------------------------------------------------------

// sessionExpires is one Session-Expires header (RFC 4028 §4):
//
//	Session-Expires = ("Session-Expires" / "x") HCOLON delta-seconds *(SEMI se-params)
//	se-params       = refresher-param / generic-param
//	refresher-param = "refresher" EQUAL ("uas" / "uac")
type sessionExpires struct {
	secs      uint32
	refresher string // refresherUAC, refresherUAS or "" (not given)
}

// parseDeltaSeconds reads 1*DIGIT (RFC 3261 §25.1), at most maxDeltaSeconds.
func parseDeltaSeconds(s string) (uint32, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < '0' || ch > '9' {
			return 0, false
		}
		v = v*10 + uint64(ch-'0')
	}
	if v > maxDeltaSeconds {
		return 0, false
	}
	return uint32(v), true
}

// parseSessionExpires parses a Session-Expires value. Unknown parameters are
// ignored (generic-param); a refresher other than uac/uas is an error.
func parseSessionExpires(v string) (sessionExpires, error) {
	first, rest, _ := strings.Cut(v, ";")
	secs, ok := parseDeltaSeconds(first)
	if !ok || secs == 0 {
		return sessionExpires{}, fmt.Errorf("%w: %q", errSessionExpires, sanitizePhrase(v))
	}
	se := sessionExpires{secs: secs}
	for rest != "" {
		var p string
		p, rest, _ = strings.Cut(rest, ";")
		name, val, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "refresher") {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(val)) {
		case refresherUAC:
			se.refresher = refresherUAC
		case refresherUAS:
			se.refresher = refresherUAS
		default:
			return sessionExpires{}, fmt.Errorf("%w: refresher %q", errSessionExpires, sanitizePhrase(val))
		}
	}
	return se, nil
}

// parseMinSE parses a Min-SE value: delta-seconds *(SEMI generic-param)
// (RFC 4028 §5).
func parseMinSE(v string) (uint32, error) {
	first, _, _ := strings.Cut(v, ";")
	secs, ok := parseDeltaSeconds(first)
	if !ok {
		return 0, fmt.Errorf("%w: %q", errMinSE, sanitizePhrase(v))
	}
	return secs, nil
}

// listValues are the values of every header with one of the names (long
// and compact form), split at commas for list headers.
func listValues(m sip.Message, names ...string) []string {
	var out []string
	for _, n := range names {
		for _, h := range m.GetHeaders(n) {
			for v := range strings.SplitSeq(h.Value(), ",") {
				if v = strings.TrimSpace(v); v != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// hasToken reports whether a list header (Supported, Require, Allow) holds
// tok, case-insensitively.
func hasToken(m sip.Message, tok string, names ...string) bool {
	for _, v := range listValues(m, names...) {
		if strings.EqualFold(v, tok) {
			return true
		}
	}
	return false
}

// firstHeader is the first header with one of the names, or nil.
func firstHeader(m sip.Message, names ...string) sip.Header {
	for _, n := range names {
		if hs := m.GetHeaders(n); len(hs) > 0 {
			return hs[0]
		}
	}
	return nil
}

// ---- negotiation -----------------------------------------------------------

// timerRequest is what a request says about session timers.
type timerRequest struct {
	supported bool // Supported or Require lists "timer" (RFC 4028 §7.1)
	hasSE     bool
	se        sessionExpires
	minSE     uint32 // the request's Min-SE; 0 when absent
}

// readTimerRequest reads the session timer headers of req; a malformed one
// is a 400.
func readTimerRequest(req *sip.Request) (timerRequest, *rejection) {
	tr := timerRequest{supported: hasToken(req, "timer", "Supported", "k", "Require")}
	if h := firstHeader(req, "Session-Expires", "x"); h != nil {
		se, err := parseSessionExpires(h.Value())
		if err != nil {
			return tr, reject(EndRejectBadRequest, "invalid Session-Expires")
		}
		tr.hasSE, tr.se = true, se
	}
	if h := req.GetHeader("Min-SE"); h != nil {
		v, err := parseMinSE(h.Value())
		if err != nil {
			return tr, reject(EndRejectBadRequest, "invalid Min-SE")
		}
		tr.minSE = v
	}
	return tr, nil
}

// timerResult is the session timer a 2xx establishes.
type timerResult struct {
	active    bool
	interval  time.Duration
	weRefresh bool
	// refresher and require go into the 2xx: Session-Expires:
	// interval;refresher=…, and Require: timer.
	refresher string
	require   bool
}

// headers are the 2xx's session timer headers (RFC 4028 §9).
func (r timerResult) headers() []sip.Header {
	if !r.active {
		return nil
	}
	hs := []sip.Header{sip.NewHeader("Session-Expires", formatSessionExpires(r.interval, r.refresher))}
	if r.require {
		hs = append(hs, sip.NewHeader("Require", "timer"))
	}
	return hs
}

func formatSessionExpires(interval time.Duration, refresher string) string {
	return strconv.FormatInt(int64(interval/time.Second), 10) + ";refresher=" + refresher
}

func deltaSeconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

// negotiateTimer applies the UAS rules of RFC 4028 §9 to a request the
// caller sent (INVITE, re-INVITE or UPDATE: in all of them the caller is the
// "uac" of the refresher parameter and we are the "uas").
func (c Config) negotiateTimer(tr timerRequest) (timerResult, *rejection) {
	if !tr.hasSE && !tr.supported {
		// Neither side asked for a timer: none (RFC 4028 §9, last case).
		return timerResult{}, nil
	}
	var res timerResult
	switch {
	case tr.hasSE:
		interval := time.Duration(tr.se.secs) * time.Second
		if interval < c.MinSE {
			// RFC 4028 §9: reject with 422 carrying our minimum (§6).
			r := reject(EndRejectSessionInterval, "")
			r.hdrs = append(r.hdrs, sip.NewHeader("Min-SE", deltaSeconds(c.MinSE)))
			return timerResult{}, r
		}
		// RFC 4028 §9: copied from the request; the UAS MUST NOT
		// increase it, and we see no reason to reduce it.
		res.interval = interval
	case c.SessionExpires > 0:
		// The UAC supports timers but asked for none: we may (§9), no
		// shorter than the request's Min-SE.
		res.interval = max(c.SessionExpires, time.Duration(tr.minSE)*time.Second)
	default:
		return timerResult{}, nil
	}
	res.active = true
	switch {
	case !tr.supported:
		// A proxy inserted Session-Expires for a UAC that knows nothing of
		// timers: the UAS refreshes, and no Require the UAC would choke on.
		res.refresher = refresherUAS
	case tr.hasSE && tr.se.refresher != "":
		res.refresher, res.require = tr.se.refresher, true // §9: MUST be kept
	default:
		res.refresher, res.require = c.SessionRefresher, true
	}
	res.weRefresh = res.refresher == refresherUAS
	return res, nil
}

// checkSessionInterval answers the session timer part of an initial INVITE
// before any resource is spent on it: 400 for a malformed header, 422 for a
// Session-Expires below our Min-SE.
func (s *Server) checkSessionInterval(req *sip.Request) *rejection {
	tr, r := readTimerRequest(req)
	if r != nil {
		return r
	}
	_, r = s.cfg.negotiateTimer(tr)
	return r
}

// ---- the call's timer ------------------------------------------------------

// sessionTimer is one call's session timer (RFC 4028 §10). The zero value is
// inactive.
type sessionTimer struct {
	// offering is set while our refresh re-INVITE (an SDP offer) waits for
	// its answer: a re-INVITE or SDP UPDATE from the caller then gets 491
	// (RFC 3261 §14.2, RFC 3311 §5.2).
	offering atomic.Bool

	mu         sync.Mutex
	active     bool
	interval   time.Duration
	weRefresh  bool
	last       time.Time // last successful refresh (or the 2xx that set the timer)
	retryAt    time.Time // after a failed refresh round; zero otherwise
	peerUpdate bool      // the caller allows UPDATE (RFC 3311): refresh with it

	// The timer's runner (leg.startSessionTimer), all guarded by mu. No
	// goroutine waits for the next action: fire (a time.AfterFunc) runs
	// fn on a goroutine of its own when it is due, for as long as the
	// action takes (a refresh transaction), and armLocked re-arms it after
	// every change. round is non-nil while fn runs (closed when it
	// returns); stopped: the call ended or the session expired, fire is
	// not armed again.
	fire    *time.Timer
	fn      func(timerAction)
	round   chan struct{}
	stopped bool
}

// armLocked sets fire for the next action (mu held).
func (t *sessionTimer) armLocked() {
	if t.fire == nil || t.stopped || t.round != nil {
		return
	}
	act, at := t.nextLocked()
	if act == timerIdle {
		t.fire.Stop()
		return
	}
	t.fire.Reset(time.Until(at))
}

// start runs fn for each due action (on fire's goroutine) until stop.
func (t *sessionTimer) start(fn func(timerAction)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fn = fn
	t.fire = time.AfterFunc(time.Hour, t.onFire)
	t.fire.Stop()
	t.armLocked()
}

// onFire runs the action that is due, if one is: fire may go off for a
// deadline a change has moved since (Reset cannot recall a callback that
// has started), so the action is worked out again here.
func (t *sessionTimer) onFire() {
	t.mu.Lock()
	if t.stopped || t.round != nil {
		t.mu.Unlock()
		return
	}
	act, at := t.nextLocked()
	if act == timerIdle || time.Now().Before(at) {
		t.armLocked()
		t.mu.Unlock()
		return
	}
	round := make(chan struct{})
	t.round = round
	if act == timerExpire {
		t.stopped = true // the session ends: nothing follows
	}
	fn := t.fn
	t.mu.Unlock()

	fn(act)

	t.mu.Lock()
	t.round = nil
	close(round)
	t.armLocked()
	t.mu.Unlock()
}

// stop disarms the runner and waits for an action under way (the call's
// end has cancelled the leg's ctx, which cuts a refresh short).
func (t *sessionTimer) stop() {
	t.mu.Lock()
	t.stopped = true
	if t.fire != nil {
		t.fire.Stop()
	}
	round := t.round
	t.mu.Unlock()
	if round != nil {
		<-round
	}
}

// apply restarts the timer with a negotiation result (2xx sent for a
// request of the caller).
func (t *sessionTimer) apply(r timerResult, now time.Time) {
	t.mu.Lock()
	t.active, t.interval, t.weRefresh = r.active, r.interval, r.weRefresh
	t.last, t.retryAt = now, time.Time{}
	t.armLocked()
	t.mu.Unlock()
}

// learnAllow records whether the caller allows UPDATE, from an Allow header
// of one of its messages (nothing changes without one).
func (t *sessionTimer) learnAllow(m sip.Message) {
	if len(m.GetHeaders("Allow")) == 0 {
		return
	}
	up := hasToken(m, "UPDATE", "Allow")
	t.mu.Lock()
	t.peerUpdate = up
	t.mu.Unlock()
}

type timerAction uint8

const (
	timerIdle timerAction = iota
	timerRefresh
	timerExpire
)

// next is what the timer does next, and when.
func (t *sessionTimer) nextLocked() (timerAction, time.Time) {
	if !t.active {
		return timerIdle, time.Time{}
	}
	expiry := t.last.Add(t.interval)
	if !t.weRefresh {
		// RFC 4028 §10: BYE slightly before expiry, the smaller of 32 s
		// and a third of the interval.
		return timerExpire, expiry.Add(-min(expiryMargin, t.interval/3))
	}
	at := t.last.Add(t.interval / 2) // §10: refresh at half the interval
	if !t.retryAt.IsZero() {
		at = t.retryAt
	}
	if !at.Before(expiry) {
		return timerExpire, expiry
	}
	return timerRefresh, at
}

func (t *sessionTimer) snapshot() (interval time.Duration, expiry time.Time, update bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.interval, t.last.Add(t.interval), t.peerUpdate
}

// raise lengthens the interval after a 422 (RFC 4028 §7.3: retry with at
// least the Min-SE of the response). It reports whether anything changed.
func (t *sessionTimer) raise(d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d <= t.interval {
		return false
	}
	t.interval = d
	return true
}

func (t *sessionTimer) noUpdate() {
	t.mu.Lock()
	t.peerUpdate = false
	t.mu.Unlock()
}

// refreshed records the 2xx to our refresh (RFC 4028 §7.2: its
// Session-Expires says the interval and who refreshes from now on; "uac" is
// us, the sender of the refresh).
func (t *sessionTimer) refreshed(res *sip.Response, now time.Time) {
	t.learnAllow(res)
	t.mu.Lock()
	if h := firstHeader(res, "Session-Expires", "x"); h != nil {
		if se, err := parseSessionExpires(h.Value()); err == nil {
			t.interval = time.Duration(se.secs) * time.Second
			t.weRefresh = se.refresher != refresherUAS
		}
	}
	// Without Session-Expires RFC 4028 §7.2 reads "no session expiration";
	// we keep refreshing as negotiated: a refresh costs one transaction,
	// a proxy still counting on it would drop the call.
	t.last, t.retryAt = now, time.Time{}
	t.armLocked()
	t.mu.Unlock()
}

// retryLater schedules another refresh round after one failed without
// ending the session: the next try comes after a third of the time left, and
// the session ends with BYE at expiry if none succeeds.
func (t *sessionTimer) retryLater(now time.Time) {
	t.mu.Lock()
	left := t.last.Add(t.interval).Sub(now)
	t.retryAt = now.Add(max(minRefreshRetry, left/3))
	t.armLocked()
	t.mu.Unlock()
}

// armTimer negotiates the session timer of the initial INVITE for our 2xx
// and returns its headers. The INVITE passed checkSessionInterval already.
func (l *leg) armTimer() []sip.Header {
	tr, r := readTimerRequest(l.req)
	if r != nil {
		return nil
	}
	res, r := l.s.cfg.negotiateTimer(tr)
	if r != nil {
		return nil
	}
	l.timer.learnAllow(l.req)
	l.timer.apply(res, time.Now())
	if res.active {
		l.log.Debug("session timer", "interval_s", int(res.interval/time.Second), "refresher", res.refresher)
	}
	return res.headers()
}

// timerFor negotiates the session timer of a refresh the caller sent
// (re-INVITE or UPDATE, RFC 4028 §9 applies to each): the result goes on
// our 2xx and into effect once it is sent (commitTimer).
func (l *leg) timerFor(req *sip.Request) (timerResult, *rejection) {
	tr, r := readTimerRequest(req)
	if r != nil {
		return timerResult{}, r
	}
	return l.s.cfg.negotiateTimer(tr)
}

// commitTimer puts a refresh's negotiated timer into effect after its 2xx.
func (l *leg) commitTimer(req *sip.Request, res timerResult) {
	l.timer.learnAllow(req)
	l.timer.apply(res, time.Now())
}

// startSessionTimer refreshes the session or ends it, as negotiated, until
// the call ends (RFC 4028 §10; stopSessionTimer). Nothing waits for the
// deadline: the action runs on a goroutine of its own when it is due.
func (l *leg) startSessionTimer() {
	l.timer.start(func(act timerAction) {
		if l.ctx.Err() != nil {
			return
		}
		switch act {
		case timerExpire:
			interval, _, _ := l.timer.snapshot()
			l.report(legEvent{kind: legExpired, reason: EndSessionExpired, err: fmt.Errorf("sip: no session refresh within %s", interval)})
		case timerRefresh:
			l.refreshSession()
		}
	})
}

// stopSessionTimer ends the session timer with the call: after it returns no
// action runs or starts.
func (l *leg) stopSessionTimer() { l.timer.stop() }

// refreshSession sends one refresh round (RFC 4028 §7.4, §10): UPDATE
// without a body when the caller allows it (RFC 3311 §5.1: no offer, no
// ACK), else a re-INVITE offering our current SDP unchanged. A 408, 481 or
// no answer ends the call with BYE (§10); other failures are retried until
// the session expires.
func (l *leg) refreshSession() {
	for range maxRefreshTries {
		interval, expiry, update := l.timer.snapshot()
		method := sip.INVITE
		if update {
			method = sip.UPDATE
		}
		res, err := l.sendRefresh(method, interval, expiry)
		if l.ctx.Err() != nil {
			return
		}
		if err != nil {
			l.report(legEvent{kind: legExpired, reason: EndRefreshFailed, err: fmt.Errorf("sip: session refresh %s: %w", method, err)})
			return
		}
		code := res.StatusCode
		switch {
		case code >= 200 && code < 300:
			l.timer.refreshed(res, time.Now())
			l.log.Debug("session refreshed", "method", method.String())
			return
		case code == sip.StatusRequestTimeout || code == sip.StatusCallTransactionDoesNotExists:
			l.report(legEvent{kind: legExpired, reason: EndRefreshFailed, err: fmt.Errorf("sip: session refresh %s: %d %s", method, code, sanitizePhrase(res.Reason))})
			return
		case code == 422:
			if h := res.GetHeader("Min-SE"); h != nil {
				if v, err := parseMinSE(h.Value()); err == nil && l.timer.raise(time.Duration(v)*time.Second) {
					continue
				}
			}
		case code == sip.StatusRequestPending:
			// RFC 3261 §14.1: glare; the UA that did not pick the Call-ID
			// retries after 0 to 2 s.
			t := time.NewTimer(rand.N(2 * time.Second))
			select {
			case <-t.C:
			case <-l.ctx.Done():
				t.Stop()
				return
			}
			continue
		case method == sip.UPDATE && (code == sip.StatusMethodNotAllowed || code == sip.StatusNotImplemented):
			l.timer.noUpdate()
			continue
		}
		l.log.Warn("sip: session refresh rejected; retrying before expiry", "method", method.String(),
			"status", code, "reason", sanitizePhrase(res.Reason))
		break
	}
	l.timer.retryLater(time.Now())
}

// sendRefresh sends one refresh request and returns its final response. A
// re-INVITE's 2xx is ACKed and its SDP answer applied.
func (l *leg) sendRefresh(method sip.RequestMethod, interval time.Duration, expiry time.Time) (*sip.Response, error) {
	req := l.newRequest(method)
	// We send the refresh, so we are its "uac" (RFC 4028 §7.4).
	req.AppendHeader(sip.NewHeader("Session-Expires", formatSessionExpires(interval, refresherUAC)))
	req.AppendHeader(sip.NewHeader("Min-SE", deltaSeconds(l.s.cfg.MinSE)))
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	req.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	if method == sip.INVITE {
		l.mu.Lock()
		body := l.answerSDP // unchanged session: same o= version (RFC 3264 §8)
		l.mu.Unlock()
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		l.timer.offering.Store(true)
		defer l.timer.offering.Store(false)
	}
	// The transaction gives up after 64·T1 itself; past the session's
	// expiry there is nothing left to refresh.
	wait := min(64*sip.T1, max(time.Until(expiry), 4*sip.T1))
	ctx, cancel := context.WithTimeout(l.ctx, wait)
	defer cancel()
	res, err := l.dlg.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if method == sip.INVITE && res.IsSuccess() {
		if err := l.ackRefresh(req, res); err != nil {
			l.log.Warn("sip: ACK of the refresh re-INVITE not sent", "error", err)
		}
		l.applyRefreshAnswer(res)
	}
	return res, nil
}

// ackRefresh ACKs the 2xx of our re-INVITE (RFC 3261 §13.2.2.4): a new
// transaction with the INVITE's CSeq number, to where the INVITE went.
func (l *leg) ackRefresh(inv *sip.Request, res *sip.Response) error {
	// Built like every request of ours (newRequest), but sent outside the
	// dialog's transaction: it copies the dialog headers itself, and goes
	// exactly where the INVITE went.
	ack := l.newRequest(sip.ACK)
	ack.Recipient = inv.Recipient
	ack.SipVersion = inv.SipVersion
	if h := inv.From(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := res.To(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := inv.CallID(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	mf := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&mf)
	for _, h := range inv.GetHeaders("Route") {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	ack.SetBody(nil)
	ack.SetTransport(inv.Transport())
	ack.SetDestination(inv.Destination())
	ack.Laddr = inv.Laddr
	if err := l.s.client.WriteRequest(ack, sipgo.ClientRequestAddVia); err != nil {
		return fmt.Errorf("sip: write ACK: %w", err)
	}
	return nil
}

// applyRefreshAnswer applies the SDP answer to our refresh re-INVITE: our
// offer was the current session, so normally nothing changes; the caller
// may still have moved its media or changed its direction.
func (l *leg) applyRefreshAnswer(res *sip.Response) {
	answer, ans, err := l.takeAnswer(res.Body())
	if err != nil {
		l.log.Warn("sip: answer to our re-INVITE", "error", err)
		return
	}
	_, out := l.current()
	l.applyAnswer(answer, ans, out)
}
