package failover

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Capacity counts the realtime sessions this instance holds per region and
// purpose, enforces each region's max_sessions, and picks the region for a
// new session by tier and weight. It knows nothing of health: the caller
// passes the regions its health record deems usable.
//
// It is designed to be embedded in Pool (not wired yet):
//
//	type Pool struct { …; cap *Capacity }
//	// a new call, a swap, a standby or a hedge:
//	lease, err := p.cap.Pick(purpose, names(p.Candidates(exclude...)))
//	// … dial lease.Region(); on 429/rate_limit_exceeded:
//	p.cap.Throttle(region, now.Add(retryAfter))
//	// when the session closes (any reason, exactly once is not required):
//	lease.Release()
//
// A call that finds no capacity gets ErrNoCapacity (a *NoCapacityError
// with RetryAfter for the 503's Retry-After header).
//
// Caps are per instance: several sipbridge instances behind Kamailio each
// hold up to max_sessions per region, so set max_sessions to the
// provider's concurrent-session quota for the deployment divided by the
// number of instances. A call holds one session, plus one while a warm
// standby is kept, plus one during a hedge or a rotation, so an instance
// answers about max_sessions / (1 + standby) calls per region; the CPU per
// call in BENCHMARKS.md bounds the calls per instance from the other side.
type Capacity struct {
	now func() time.Time

	mu      sync.Mutex
	regions []*regionCapacity // config order (ties in tier and load go to the first)
	byName  map[string]*regionCapacity
}

// SessionPurpose says why a realtime session is held.
type SessionPurpose uint8

// Session purposes.
const (
	SessionCall     SessionPurpose = iota // the call's active session
	SessionStandby                        // a warm standby in another region
	SessionHedge                          // a second session racing one turn
	SessionRotation                       // a fresh session a long call moves to
	numSessionPurposes
)

var sessionPurposeNames = [numSessionPurposes]string{"call", "standby", "hedge", "rotation"}

func (p SessionPurpose) String() string {
	if p < numSessionPurposes {
		return sessionPurposeNames[p]
	}
	return fmt.Sprintf("purpose(%d)", uint8(p))
}

// DefaultWeight is a region's weight when none is configured.
const DefaultWeight = 1.0

// DefaultRetryAfter is what a 503 tells the dispatcher when every region is
// full and none is throttled (so no better estimate exists).
const DefaultRetryAfter = 5 * time.Second

// RegionLimits are one region's capacity settings (regions[].max_sessions,
// weight, priority).
type RegionLimits struct {
	Name        string
	MaxSessions int     // concurrent sessions of every purpose; 0: unlimited
	Weight      float64 // share of new sessions within its tier; 0: DefaultWeight
	Priority    int     // tier: lower is preferred; a tier spills to the next only when all its regions are full, throttled or unhealthy
}

// RegionLoad is a snapshot of one region for /status and metrics.
type RegionLoad struct {
	Name           string         `json:"name"`
	MaxSessions    int            `json:"max_sessions"`
	Weight         float64        `json:"weight"`
	Priority       int            `json:"priority"`
	Sessions       int            `json:"sessions"`
	ByPurpose      map[string]int `json:"by_purpose"`
	ThrottledUntil *time.Time     `json:"throttled_until,omitempty"`
}

type regionCapacity struct {
	RegionLimits
	held           [numSessionPurposes]int
	total          int
	picks          float64 // sessions picked here, for the weighted tie-break
	throttledUntil time.Time
}

// ErrNoCapacity is matched (errors.Is) by the error Pick returns when no
// candidate region can take a session.
var ErrNoCapacity = errors.New("failover: no region has capacity")

// NoCapacityError says that every candidate was full or throttled, and
// when to try again.
type NoCapacityError struct {
	RetryAfter time.Duration
}

func (e *NoCapacityError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", ErrNoCapacity, e.RetryAfter)
}

// Is makes errors.Is(err, ErrNoCapacity) true.
func (e *NoCapacityError) Is(target error) bool { return target == ErrNoCapacity }

// NewCapacity validates limits (each rule once, naming the key) and
// returns the counters, all at zero. now is the clock (nil: time.Now).
func NewCapacity(limits []RegionLimits, now func() time.Time) (*Capacity, error) {
	if now == nil {
		now = time.Now
	}
	c := &Capacity{now: now, byName: make(map[string]*regionCapacity, len(limits))}
	for i, l := range limits {
		switch {
		case l.Name == "":
			return nil, fmt.Errorf("regions[%d].name: empty", i)
		case c.byName[l.Name] != nil:
			return nil, fmt.Errorf("regions[%d].name: %q listed twice", i, l.Name)
		case l.MaxSessions < 0:
			return nil, fmt.Errorf("regions[%d].max_sessions: %d is negative", i, l.MaxSessions)
		case l.Weight < 0 || math.IsNaN(l.Weight) || math.IsInf(l.Weight, 0):
			return nil, fmt.Errorf("regions[%d].weight: %v is not a non-negative number", i, l.Weight)
		}
		if l.Weight == 0 {
			l.Weight = DefaultWeight
		}
		rc := &regionCapacity{RegionLimits: l}
		c.regions = append(c.regions, rc)
		c.byName[l.Name] = rc
	}
	return c, nil
}

// Reconfigure applies new limits (a configuration reload). A region still
// listed keeps the sessions it holds, which still count against its new
// cap; a new region starts empty; a removed one takes no new sessions, and
// the leases of sessions still open there release harmlessly. The limits
// are validated as NewCapacity does; on error nothing changes.
func (c *Capacity) Reconfigure(limits []RegionLimits) error {
	next, err := NewCapacity(limits, c.now)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	regions := make([]*regionCapacity, 0, len(next.regions))
	byName := make(map[string]*regionCapacity, len(next.regions))
	for _, nr := range next.regions {
		if old := c.byName[nr.Name]; old != nil {
			old.RegionLimits = nr.RegionLimits // held, picks and throttling carry over
			nr = old
		}
		regions = append(regions, nr)
		byName[nr.Name] = nr
	}
	c.regions, c.byName = regions, byName
	return nil
}

// Lease is one session slot held in a region. Release it when the session
// closes; releasing twice is harmless.
type Lease struct {
	c        *Capacity
	r        *regionCapacity
	purpose  SessionPurpose
	released bool // guarded by c.mu
}

// Region is the region the slot is in.
func (l *Lease) Region() string { return l.r.Name }

// Purpose is what the slot was taken for.
func (l *Lease) Purpose() SessionPurpose { return l.purpose }

// Release frees the slot.
func (l *Lease) Release() {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if l.released {
		return
	}
	l.released = true
	l.r.held[l.purpose]--
	l.r.total--
}

// Retag moves a held slot to another purpose (a standby promoted to the
// call's session, a winning hedge becoming the call's session), keeping
// it counted against the same cap.
func (l *Lease) Retag(p SessionPurpose) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if l.released || p >= numSessionPurposes {
		return
	}
	l.r.held[l.purpose]--
	l.r.held[p]++
	l.purpose = p
}

// Acquire takes a slot in region if it is known, not throttled and below
// its cap (for a session that must go to this region, such as a probe).
func (c *Capacity) Acquire(region string, p SessionPurpose) (*Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.byName[region]
	if r == nil {
		return nil, fmt.Errorf("failover: unknown region %q", region)
	}
	now := c.now()
	if !c.available(r, now) {
		return nil, c.noCapacity([]*regionCapacity{r}, now)
	}
	return c.take(r, p), nil
}

// Pick takes a slot for purpose in the best region among candidates (the
// regions the health record deems usable; unknown names are ignored):
// the lowest priority tier that has a candidate below its cap and not
// throttled, and within it the region with the fewest sessions relative to
// its weight; ties go to the region with the fewest past picks relative to
// its weight (so weights hold even when sessions are short), then to config
// order.
func (c *Capacity) Pick(p SessionPurpose, candidates []string) (*Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var best *regionCapacity
	var considered []*regionCapacity
	for _, r := range c.regions {
		if !slices.Contains(candidates, r.Name) {
			continue
		}
		considered = append(considered, r)
		if !c.available(r, now) {
			continue
		}
		if best == nil || better(r, best) {
			best = r
		}
	}
	if best == nil {
		return nil, c.noCapacity(considered, now)
	}
	return c.take(best, p), nil
}

// better reports whether r should be picked over b.
func better(r, b *regionCapacity) bool {
	if r.Priority != b.Priority {
		return r.Priority < b.Priority
	}
	lr, lb := float64(r.total)/r.Weight, float64(b.total)/b.Weight
	if lr != lb {
		return lr < lb
	}
	return (r.picks+1)/r.Weight < (b.picks+1)/b.Weight
}

func (c *Capacity) available(r *regionCapacity, now time.Time) bool {
	return now.Compare(r.throttledUntil) >= 0 && (r.MaxSessions == 0 || r.total < r.MaxSessions)
}

func (c *Capacity) take(r *regionCapacity, p SessionPurpose) *Lease {
	if p >= numSessionPurposes {
		p = SessionCall
	}
	r.held[p]++
	r.total++
	r.picks++
	return &Lease{c: c, r: r, purpose: p}
}

// noCapacity builds the error for regions that all refused: retry when
// the first throttle ends, or after DefaultRetryAfter.
func (c *Capacity) noCapacity(regions []*regionCapacity, now time.Time) error {
	retry := time.Duration(0)
	for _, r := range regions {
		if d := r.throttledUntil.Sub(now); d > 0 && (retry == 0 || d < retry) {
			retry = d
		}
	}
	if retry == 0 {
		retry = DefaultRetryAfter
	}
	return &NoCapacityError{RetryAfter: retry}
}

// Throttle keeps new sessions away from region until the given time (a
// 429 on connect, rate_limit_exceeded, a provider's Retry-After). A later
// time extends it; an earlier one is ignored.
func (c *Capacity) Throttle(region string, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.byName[region]; r != nil && until.After(r.throttledUntil) {
		r.throttledUntil = until
	}
}

// Full reports whether no region among candidates can take a session now
// (for OPTIONS: answer 503 before calls fail).
func (c *Capacity) Full(candidates []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, r := range c.regions {
		if slices.Contains(candidates, r.Name) && c.available(r, now) {
			return false
		}
	}
	return true
}

// Snapshot returns every region's limits and current load, config order.
func (c *Capacity) Snapshot() []RegionLoad {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	out := make([]RegionLoad, 0, len(c.regions))
	for _, r := range c.regions {
		l := RegionLoad{Name: r.Name, MaxSessions: r.MaxSessions, Weight: r.Weight, Priority: r.Priority,
			Sessions: r.total, ByPurpose: make(map[string]int, numSessionPurposes)}
		for p, n := range r.held {
			l.ByPurpose[sessionPurposeNames[p]] = n
		}
		if r.throttledUntil.After(now) {
			t := r.throttledUntil
			l.ThrottledUntil = &t
		}
		out = append(out, l)
	}
	return out
}

var (
	capacitySessionsDesc = prometheus.NewDesc("sipbridge_region_sessions",
		"Realtime sessions this instance holds now, by region and purpose (call, standby, hedge, rotation).",
		[]string{"region", "purpose"}, nil)
	capacityMaxDesc = prometheus.NewDesc("sipbridge_region_max_sessions",
		"Configured max_sessions per region (0: unlimited).", []string{"region"}, nil)
	capacityThrottledDesc = prometheus.NewDesc("sipbridge_region_throttled",
		"1 while new sessions are kept away from the region after a rate limit.", []string{"region"}, nil)
)

// Describe implements prometheus.Collector (register with RegisterCollector).
func (c *Capacity) Describe(ch chan<- *prometheus.Desc) {
	ch <- capacitySessionsDesc
	ch <- capacityMaxDesc
	ch <- capacityThrottledDesc
}

// Collect implements prometheus.Collector from a Snapshot.
func (c *Capacity) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.Snapshot() {
		for _, p := range sessionPurposeNames {
			ch <- prometheus.MustNewConstMetric(capacitySessionsDesc, prometheus.GaugeValue, float64(l.ByPurpose[p]), l.Name, p)
		}
		ch <- prometheus.MustNewConstMetric(capacityMaxDesc, prometheus.GaugeValue, float64(l.MaxSessions), l.Name)
		throttled := 0.0
		if l.ThrottledUntil != nil {
			throttled = 1
		}
		ch <- prometheus.MustNewConstMetric(capacityThrottledDesc, prometheus.GaugeValue, throttled, l.Name)
	}
}
