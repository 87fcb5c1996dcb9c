package failover

import (
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// Throttling is not an outage. A region that says "too many requests"
// (HTTP 429 or a 503 with Retry-After on the upgrade, an
// inference_rate_limit_exceeded / rate_limit_exceeded error event or failed
// response) is working, only busy: it is set aside for the time the
// provider asked (defaultThrottle when it did not say), the turn goes to
// another region at once, and the outcome does not count against the
// region's failure window, so it never opens the 30 s breaker. A set-aside
// region is still a last resort when nothing else is left.

// defaultThrottle is how long a region is set aside when the provider gave
// no Retry-After (the APIs' usual "try again in" is one to a few seconds).
const defaultThrottle = 5 * time.Second

// OutcomeThrottled: the region refused or failed a request for rate
// limiting. Not a failure: it sets the region aside (Pool.SetAside) without
// a sample in the window.
const OutcomeThrottled Outcome = 100

// SetAside keeps region out of Candidates for wait (defaultThrottle when
// 0): the provider is throttling it. The breaker and the failure window are
// untouched; a half-open probe taken by the throttled session is freed.
func (p *Pool) SetAside(region string, wait time.Duration) time.Time {
	if wait <= 0 {
		wait = defaultThrottle
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rh, ok := p.byName[region]
	if !ok {
		return time.Time{}
	}
	now := p.hc.Now()
	until := now.Add(wait)
	if until.After(rh.asideUntil) {
		rh.asideUntil = until
	}
	rh.probeAt = time.Time{}
	rh.lastOutcome = OutcomeThrottled
	// The capacity picker keeps the same end time (lock order: p.mu, then
	// the capacity's own).
	p.cap.Throttle(region, rh.asideUntil)
	p.log.Info("failover: region set aside, rate limited", "region", region, "retry_after", wait)
	return rh.asideUntil
}

// setAside reports whether rh is set aside now. Called with p.mu held.
func (rh *regionHealth) setAside(now time.Time) bool { return now.Before(rh.asideUntil) }

// throttle sets the region of a rate-limit error aside and counts it.
func (c *Conversation) throttle(region string, rl *realtime.RateLimitError) {
	until := c.pool.SetAside(region, rl.RetryAfter)
	c.m.quiet.Throttled.WithLabelValues(region, rl.Source).Inc()
	c.log.Warn("failover: region throttled", "region", region, "source", rl.Source, "code", rl.Code,
		"retry_after", rl.RetryAfter, "aside_until", until, "err", rl.Message)
}

// dialOutcome is what a failed dial says about its region: a refusal for
// rate limiting sets the region aside (OutcomeThrottled), an auth refusal
// opens its breaker, anything else is a connect error.
func (c *Conversation) dialOutcome(region string, err error, auth bool) Outcome {
	if rl, ok := realtime.AsRateLimit(err); ok {
		c.throttle(region, rl)
		return OutcomeThrottled
	}
	if auth {
		return OutcomeAuthError
	}
	return OutcomeConnectError
}

// onRateLimits exports a session's rate_limits.updated per region. Only the
// two documented limits are exported, so the label stays bounded.
func (c *Conversation) onRateLimits(region string, ev realtime.ServerEvent) {
	for _, rl := range ev.RateLimits {
		if rl.Name == "requests" || rl.Name == "tokens" {
			c.m.quiet.RateLimitRemaining.WithLabelValues(region, rl.Name).Set(float64(rl.Remaining))
		}
	}
}
