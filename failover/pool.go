package failover

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HealthConfig tunes the per-region sliding window and circuit breaker.
type HealthConfig struct {
	// Window is how far back outcomes count (DefaultHealthWindow).
	Window time.Duration
	// MinSamples is how many outcomes the window needs before the failure
	// ratio can open the breaker (DefaultMinSamples), so that one failed
	// response among the normal 2–5 % does not take a region out.
	MinSamples int
	// FailureRatio opens the breaker when failures/total reaches it
	// (DefaultFailureRatio). A region above half of it is "degraded" and ranked
	// after healthy ones, so new calls move away before the breaker opens.
	FailureRatio float64
	// CoolDown is how long an open breaker stays open before it lets one
	// probe through (half-open) (DefaultCoolDown).
	CoolDown time.Duration
	// TTFAWindow is how far back a region's times to first audio count
	// for its hedge deadline (default 2 min), and the window of the
	// per-process hedge budget.
	TTFAWindow time.Duration
	// HedgeShare: at most this share of the process's turns in TTFAWindow
	// are hedged, plus one (default 0.1), so a region-wide slowdown cannot
	// double the load on the others.
	HedgeShare float64
	// Now is the clock (nil = time.Now).
	Now func() time.Time
}

// Hedge defaults owned by the pool (configs: failover.hedge.*).
const (
	DefaultTTFAWindow = 2 * time.Minute
	DefaultHedgeShare = 0.1
	// minTTFASamples: fewer recent samples than this and the region's
	// median is not trusted (the hedge deadline is the ceiling).
	minTTFASamples = 3
	// maxTTFASamples caps a region's window (the newest are kept).
	maxTTFASamples = 64
	budgetSlots    = 8
)

// Defaults of HealthConfig (configs: failover.health.*).
const (
	DefaultHealthWindow = 2 * time.Minute
	DefaultMinSamples   = 5
	DefaultFailureRatio = 0.5
	DefaultCoolDown     = 30 * time.Second
)

func (hc HealthConfig) withDefaults() HealthConfig {
	if hc.Window <= 0 {
		hc.Window = DefaultHealthWindow
	}
	if hc.MinSamples <= 0 {
		hc.MinSamples = DefaultMinSamples
	}
	if hc.FailureRatio <= 0 {
		hc.FailureRatio = DefaultFailureRatio
	}
	if hc.CoolDown <= 0 {
		hc.CoolDown = DefaultCoolDown
	}
	if hc.TTFAWindow <= 0 {
		hc.TTFAWindow = DefaultTTFAWindow
	}
	if hc.HedgeShare <= 0 {
		hc.HedgeShare = DefaultHedgeShare
	}
	if hc.Now == nil {
		hc.Now = time.Now
	}
	return hc
}

// Outcome is one observation of a region that a conversation reports.
type Outcome uint8

const (
	// OutcomeResponseOK: a response completed. Closes a half-open breaker.
	OutcomeResponseOK Outcome = iota + 1
	// OutcomeResponseFailed: response.done failed, or a server_error event.
	OutcomeResponseFailed
	// OutcomeStall: a response stalled (watchdog).
	OutcomeStall
	// OutcomeSessionLost: the WebSocket closed or dropped unexpectedly.
	OutcomeSessionLost
	// OutcomeConnectError: the session could not be opened (refused,
	// timeout, 429, 5xx).
	OutcomeConnectError
	// OutcomeAuthError: invalid key, quota exhausted, 401/403. Opens the
	// breaker at once: every call would fail the same way.
	OutcomeAuthError
)

func (o Outcome) String() string {
	switch o {
	case OutcomeResponseOK:
		return "response_ok"
	case OutcomeResponseFailed:
		return "response_failed"
	case OutcomeStall:
		return "stall"
	case OutcomeSessionLost:
		return "session_lost"
	case OutcomeConnectError:
		return "connect_error"
	case OutcomeAuthError:
		return "auth_error"
	case OutcomeThrottled:
		return "throttled"
	}
	return "unknown"
}

// MarshalText shows the state by name in /status.
func (s BreakerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (o Outcome) failure() bool { return o != OutcomeResponseOK && o != OutcomeThrottled }

// BreakerState is a region's circuit breaker state; the values are the
// sipbridge_failover_breaker_state gauge values.
type BreakerState uint8

const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half_open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

// RegionStatus is one region's health, for a /status endpoint and logs.
type RegionStatus struct {
	Name     string       `json:"name"`
	Priority int          `json:"priority"` // index in the configured order, 0 = preferred
	State    BreakerState `json:"state"`
	Samples  int          `json:"samples"` // outcomes in the window
	Failures int          `json:"failures"`
	// FailureRatio is Failures/Samples (0 with no samples).
	FailureRatio float64 `json:"failure_ratio"`
	// Degraded: closed, but failing at more than half the opening ratio.
	Degraded bool `json:"degraded"`
	// OpenedAt is when the breaker last opened (zero if never).
	OpenedAt time.Time `json:"opened_at,omitzero"`
	// ProbeInFlight: half-open and its one probe is taken.
	ProbeInFlight bool `json:"probe_in_flight"`
	// AuthFailed: the breaker was opened by an auth/quota error.
	AuthFailed bool `json:"auth_failed"`
	// ThrottledUntil: rate limited, set aside until then (zero if not).
	ThrottledUntil time.Time `json:"throttled_until,omitzero"`
	// LastOutcome is the most recent report.
	LastOutcome string `json:"last_outcome,omitempty"`
}

type sample struct {
	at     time.Time
	failed bool
}

type regionHealth struct {
	region      Region
	prio        int
	samples     []sample
	state       BreakerState
	openedAt    time.Time
	probeAt     time.Time // zero: the half-open probe is free
	authFailed  bool
	lastOutcome Outcome
	ttfa        []ttfaSample // recent times to first audio, oldest first
	asideUntil  time.Time    // rate limited: no new sessions before (throttle.go)
}

type ttfaSample struct {
	at time.Time
	d  time.Duration
}

// Pool is the set of regions a call may use, in priority order, with one
// health record per region shared by all calls. Safe for concurrent use.
type Pool struct {
	hc  HealthConfig
	m   *Metrics
	log *slog.Logger

	mu      sync.Mutex
	regions []*regionHealth
	byName  map[string]*regionHealth

	// cap counts the sessions held per region and purpose against
	// max_sessions and picks regions by tier and weight (capacity.go).
	cap    *Capacity
	budget [budgetSlots]budgetSlot // the process's turns and hedges, TTFAWindow in slots
}

type budgetSlot struct {
	epoch         int64
	turns, hedges int
}

// anyWarmStandby reports whether some region asks for a warm standby,
// without allocating (ensureSpare asks on every watchdog tick).
func (p *Pool) anyWarmStandby() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rh := range p.regions {
		if rh.region.WarmStandby {
			return true
		}
	}
	return false
}

// NewPool returns a pool over regions, whose order is their priority. A
// region listed twice keeps its first position.
func NewPool(regions []Region, hc HealthConfig, m *Metrics, log *slog.Logger) *Pool {
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{hc: hc.withDefaults(), m: m, log: log, byName: make(map[string]*regionHealth)}
	for _, r := range regions {
		if _, dup := p.byName[r.Name]; dup || r.Name == "" {
			continue
		}
		rh := &regionHealth{region: r, prio: len(p.regions)}
		p.regions = append(p.regions, rh)
		p.byName[r.Name] = rh
		m.BreakerState.WithLabelValues(r.Name).Set(float64(BreakerClosed))
	}
	c, err := NewCapacity(capacityLimits(p.Regions()), p.hc.Now)
	if err != nil {
		// configs validates the limits (ValidateCapacity) before a pool is
		// built; a pool built from bad limits holds no caps rather than none
		// of its regions.
		log.Error("failover: capacity limits ignored", "err", err)
		limits := capacityLimits(p.Regions())
		for i := range limits {
			limits[i].MaxSessions, limits[i].Weight = 0, 0
		}
		c, _ = NewCapacity(limits, p.hc.Now)
	}
	p.cap = c
	return p
}

// capacityLimits are the regions' capacity settings; a region without a
// priority is tiered by its position, so that a configuration that sets
// none keeps the strict order of the list.
func capacityLimits(regions []Region) []RegionLimits {
	out := make([]RegionLimits, 0, len(regions))
	for i, r := range regions {
		prio := i
		if r.Priority != nil {
			prio = *r.Priority
		}
		out = append(out, RegionLimits{Name: r.Name, MaxSessions: r.MaxSessions, Weight: r.Weight, Priority: prio})
	}
	return out
}

// ValidateCapacity checks the regions' max_sessions and weight once, naming
// the key (configs calls it).
func ValidateCapacity(regions []Region) error {
	_, err := NewCapacity(capacityLimits(regions), nil)
	return err
}

// Lease takes a session slot for purpose in the best of regions (the
// caller's candidates, such as Candidates or a swap's order): healthy
// regions first, then degraded, then the rest, and within each class the
// best tier and the least loaded region relative to its weight
// (Capacity.Pick). It returns ErrNoCapacity (a *NoCapacityError) when every
// region is full or throttled. Hedges use Lease(SessionHedge, …).
func (p *Pool) Lease(purpose SessionPurpose, regions []Region) (Region, *Lease, error) {
	if len(regions) == 0 {
		return Region{}, nil, &NoCapacityError{RetryAfter: DefaultRetryAfter}
	}
	var classes [4][]string
	p.mu.Lock()
	now := p.hc.Now()
	for _, r := range regions {
		class := 3
		if rh, ok := p.byName[r.Name]; ok {
			p.refresh(rh, now)
			switch {
			case rh.state == BreakerClosed && !p.degraded(rh):
				class = 0
			case rh.state == BreakerClosed:
				class = 1
			case rh.state == BreakerHalfOpen:
				class = 2
			}
		}
		classes[class] = append(classes[class], r.Name)
	}
	p.mu.Unlock()
	var err error
	for _, names := range classes {
		if len(names) == 0 {
			continue
		}
		var l *Lease
		if l, err = p.cap.Pick(purpose, names); err == nil {
			for _, r := range regions {
				if r.Name == l.Region() {
					return r, l, nil
				}
			}
		}
	}
	return Region{}, nil, err
}

// AcquireIn takes a slot for purpose in region itself (a warm standby in
// the next region, a probe).
func (p *Pool) AcquireIn(region string, purpose SessionPurpose) (*Lease, error) {
	return p.cap.Acquire(region, purpose)
}

// Throttle keeps new sessions away from region until the given time (a
// 429 or rate limit on connect, with the provider's Retry-After). It is
// SetAside with an end time: one throttle state, seen alike by the
// candidates, the capacity picker and /status.
func (p *Pool) Throttle(region string, until time.Time) {
	if wait := until.Sub(p.hc.Now()); wait > 0 {
		p.SetAside(region, wait)
	}
}

// Full reports whether no region a new call could use (every region but
// those an auth error took out) can take a session now: a new INVITE gets
// 503 and OPTIONS says so.
func (p *Pool) Full() bool {
	regions := p.lastResort()
	names := make([]string, 0, len(regions))
	for _, r := range regions {
		names = append(names, r.Name)
	}
	return p.cap.Full(names)
}

// RetryAfter is what a 503 for a full pool tells the dispatcher: until the
// first throttle ends, else DefaultRetryAfter.
func (p *Pool) RetryAfter() time.Duration {
	now := p.hc.Now()
	retry := time.Duration(0)
	for _, l := range p.cap.Snapshot() {
		if l.ThrottledUntil == nil {
			continue
		}
		if d := l.ThrottledUntil.Sub(now); d > 0 && (retry == 0 || d < retry) {
			retry = d
		}
	}
	if retry == 0 {
		retry = DefaultRetryAfter
	}
	return retry
}

// Load is every region's limits and sessions held now (for /status).
func (p *Pool) Load() []RegionLoad { return p.cap.Snapshot() }

// CapacityCollector exports the sessions held per region and purpose and
// the limits as Prometheus metrics.
func (p *Pool) CapacityCollector() prometheus.Collector { return p.cap }

// Regions returns the configured regions in priority order.
func (p *Pool) Regions() []Region {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Region, 0, len(p.regions))
	for _, rh := range p.regions {
		out = append(out, rh.region)
	}
	return out
}

// Region returns the configured region named name.
func (p *Pool) Region(name string) (Region, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rh, ok := p.byName[name]
	if !ok {
		return Region{}, false
	}
	return rh.region, true
}

// Candidates returns the regions a session may be opened in now, best first:
// healthy regions by priority, then degraded ones (closed but failing at
// more than half the opening ratio), then half-open regions whose one probe
// is free. Open breakers and the excluded names are left out.
func (p *Pool) Candidates(exclude ...string) []Region {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.hc.Now()
	var healthy, degraded, probing []Region
outer:
	for _, rh := range p.regions {
		for _, x := range exclude {
			if x == rh.region.Name {
				continue outer
			}
		}
		p.refresh(rh, now)
		if rh.setAside(now) {
			continue
		}
		switch rh.state {
		case BreakerClosed:
			if p.degraded(rh) {
				degraded = append(degraded, rh.region)
			} else {
				healthy = append(healthy, rh.region)
			}
		case BreakerHalfOpen:
			// A probe whose outcome never came (the call ended first)
			// frees itself after another CoolDown.
			if rh.probeAt.IsZero() || now.Sub(rh.probeAt) >= p.hc.CoolDown {
				probing = append(probing, rh.region)
			}
		}
	}
	out := append(healthy, degraded...)
	return append(out, probing...)
}

// lastResort lists, by priority, the regions a call that found no candidate
// may still try: every region except those whose breaker an auth or quota
// error opened (those fail for certain). A live caller is worth a try on a
// region other calls found failing.
func (p *Pool) lastResort() []Region {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.hc.Now()
	var out []Region
	for _, rh := range p.regions {
		p.refresh(rh, now)
		if rh.authFailed && rh.state != BreakerClosed {
			continue
		}
		out = append(out, rh.region)
	}
	return out
}

// usable reports whether a session may be used in region now (its breaker
// is not open).
func (p *Pool) usable(region string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	rh, ok := p.byName[region]
	if !ok {
		return false
	}
	p.refresh(rh, p.hc.Now())
	return rh.state != BreakerOpen
}

// beginProbe marks the half-open probe of region as taken by the session
// about to be opened there, so that other calls keep away until its outcome
// is reported.
func (p *Pool) beginProbe(region string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rh, ok := p.byName[region]
	if !ok {
		return
	}
	now := p.hc.Now()
	p.refresh(rh, now)
	if rh.state == BreakerHalfOpen {
		rh.probeAt = now
	}
}

// Report records an outcome for region: in the window while closed (opening
// the breaker at FailureRatio with MinSamples, or at once for auth errors);
// as the probe's verdict while half-open (success closes, failure reopens).
func (p *Pool) Report(region string, o Outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rh, ok := p.byName[region]
	if !ok {
		return
	}
	now := p.hc.Now()
	p.refresh(rh, now)
	rh.lastOutcome = o
	if o == OutcomeThrottled {
		return // not a failure: SetAside does the rest
	}
	switch rh.state {
	case BreakerClosed:
		rh.samples = append(rh.samples, sample{at: now, failed: o.failure()})
		if o == OutcomeAuthError {
			p.open(rh, now, true, "auth_error")
			return
		}
		total, failed := len(rh.samples), failures(rh.samples)
		if total >= p.hc.MinSamples && float64(failed)/float64(total) >= p.hc.FailureRatio {
			p.open(rh, now, false, "failure_ratio")
		}
	case BreakerHalfOpen:
		if o.failure() {
			p.open(rh, now, o == OutcomeAuthError, "probe_failed")
			return
		}
		rh.state, rh.samples, rh.probeAt, rh.authFailed = BreakerClosed, nil, time.Time{}, false
		p.m.BreakerState.WithLabelValues(rh.region.Name).Set(float64(BreakerClosed))
		p.log.Info("failover: region breaker closed", "region", rh.region.Name, "reason", "probe_succeeded")
	case BreakerOpen:
		// Late outcomes from sessions opened before the breaker opened
		// say nothing new; an auth error still marks it auth-failed.
		if o == OutcomeAuthError {
			rh.authFailed = true
		}
	}
}

// Status returns every region's health in priority order.
func (p *Pool) Status() []RegionStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.hc.Now()
	out := make([]RegionStatus, 0, len(p.regions))
	for _, rh := range p.regions {
		p.refresh(rh, now)
		st := RegionStatus{
			Name:          rh.region.Name,
			Priority:      rh.prio,
			State:         rh.state,
			Samples:       len(rh.samples),
			Failures:      failures(rh.samples),
			Degraded:      rh.state == BreakerClosed && p.degraded(rh),
			OpenedAt:      rh.openedAt,
			ProbeInFlight: rh.state == BreakerHalfOpen && !rh.probeAt.IsZero() && now.Sub(rh.probeAt) < p.hc.CoolDown,
			AuthFailed:    rh.authFailed,
		}
		if rh.setAside(now) {
			st.ThrottledUntil = rh.asideUntil
		}
		if rh.lastOutcome != 0 {
			st.LastOutcome = rh.lastOutcome.String()
		}
		if st.Samples > 0 {
			st.FailureRatio = float64(st.Failures) / float64(st.Samples)
		}
		out = append(out, st)
	}
	return out
}

// refresh drops samples older than the window and moves an open breaker to
// half-open once CoolDown has passed. Called with p.mu held.
func (p *Pool) refresh(rh *regionHealth, now time.Time) {
	cut := 0
	for cut < len(rh.samples) && now.Sub(rh.samples[cut].at) > p.hc.Window {
		cut++
	}
	if cut > 0 {
		rh.samples = append(rh.samples[:0], rh.samples[cut:]...)
	}
	if rh.state == BreakerOpen && now.Sub(rh.openedAt) >= p.hc.CoolDown {
		rh.state, rh.probeAt = BreakerHalfOpen, time.Time{}
		p.m.BreakerState.WithLabelValues(rh.region.Name).Set(float64(BreakerHalfOpen))
		p.log.Info("failover: region breaker half-open", "region", rh.region.Name)
	}
}

func (p *Pool) open(rh *regionHealth, now time.Time, auth bool, reason string) {
	total, failed := len(rh.samples), failures(rh.samples)
	rh.state, rh.openedAt, rh.probeAt = BreakerOpen, now, time.Time{}
	rh.authFailed = rh.authFailed || auth
	// The window restarts: after the probe closes it, old failures must not
	// reopen it at once.
	rh.samples = nil
	p.m.BreakerState.WithLabelValues(rh.region.Name).Set(float64(BreakerOpen))
	p.log.Warn("failover: region breaker opened", "region", rh.region.Name, "reason", reason,
		"samples", total, "failures", failed, "cool_down", p.hc.CoolDown)
}

func (p *Pool) degraded(rh *regionHealth) bool {
	total := len(rh.samples)
	if total == 0 || total < (p.hc.MinSamples+1)/2 {
		return false
	}
	return float64(failures(rh.samples))/float64(total) >= p.hc.FailureRatio/2
}

func failures(s []sample) int {
	n := 0
	for _, x := range s {
		if x.failed {
			n++
		}
	}
	return n
}

// ObserveTTFA records a turn's time to first audio in region (for a primary
// that lost a hedge: how long it had waited, a lower bound).
func (p *Pool) ObserveTTFA(region string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rh, ok := p.byName[region]
	if !ok {
		return
	}
	if len(rh.ttfa) >= maxTTFASamples {
		rh.ttfa = append(rh.ttfa[:0], rh.ttfa[1:]...)
	}
	rh.ttfa = append(rh.ttfa, ttfaSample{at: p.hc.Now(), d: d})
}

// MedianTTFA is region's median time to first audio over TTFAWindow; ok is
// false while the window holds too few samples to trust.
func (p *Pool) MedianTTFA(region string) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rh, ok := p.byName[region]
	if !ok {
		return 0, false
	}
	now := p.hc.Now()
	cut := 0
	for cut < len(rh.ttfa) && now.Sub(rh.ttfa[cut].at) > p.hc.TTFAWindow {
		cut++
	}
	rh.ttfa = append(rh.ttfa[:0], rh.ttfa[cut:]...)
	if len(rh.ttfa) < minTTFASamples {
		return 0, false
	}
	ds := make([]time.Duration, len(rh.ttfa))
	for i, s := range rh.ttfa {
		ds[i] = s.d
	}
	slices.Sort(ds)
	return ds[len(ds)/2], true
}

// countTurn records one turn of any call for the process's hedge budget.
func (p *Pool) countTurn() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.slot(p.hc.Now()).turns++
}

// takeHedge reports whether the process's budget allows one more hedge
// (at most HedgeShare of the turns in TTFAWindow, plus one) and, if so,
// counts it.
func (p *Pool) takeHedge() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.hc.Now()
	cur := p.slot(now)
	turns, hedges := 0, 0
	for i := range p.budget {
		if s := &p.budget[i]; cur.epoch-s.epoch < budgetSlots {
			turns += s.turns
			hedges += s.hedges
		}
	}
	if float64(hedges) > p.hc.HedgeShare*float64(turns) {
		return false
	}
	cur.hedges++
	return true
}

// slot is the budget slot of now, cleared when it starts a new period.
// Called with p.mu held.
func (p *Pool) slot(now time.Time) *budgetSlot {
	width := max(int64(p.hc.TTFAWindow)/budgetSlots, 1)
	epoch := now.UnixNano() / width
	s := &p.budget[epoch%budgetSlots]
	if s.epoch != epoch {
		*s = budgetSlot{epoch: epoch}
	}
	return s
}
