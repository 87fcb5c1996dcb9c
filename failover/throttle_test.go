package failover

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

func TestPoolSetAside(t *testing.T) {
	clock := newFakeClock()
	p := newTestPool(clock, prometheus.NewRegistry())
	p.SetAside("east", 3*time.Second)
	require.Equal(t, []string{"west", "eu"}, names(p.Candidates()))
	require.Equal(t, BreakerClosed, p.Status()[0].State, "throttling does not open the breaker")
	require.False(t, p.Status()[0].ThrottledUntil.IsZero())
	for range 10 {
		p.Report("east", OutcomeThrottled)
	}
	require.Zero(t, p.Status()[0].Samples, "a throttled outcome is not a sample")
	require.Contains(t, names(p.lastResort()), "east", "still a last resort")
	clock.Advance(3 * time.Second)
	require.Equal(t, []string{"east", "west", "eu"}, names(p.Candidates()), "back after Retry-After")
	require.True(t, p.Status()[0].ThrottledUntil.IsZero())

	p.SetAside("west", 0)
	clock.Advance(defaultThrottle - time.Millisecond)
	require.NotContains(t, names(p.Candidates()), "west", "default wait when the provider gave none")
	clock.Advance(time.Millisecond)
	require.Contains(t, names(p.Candidates()), "west")
}

func TestThrottledResponseSetsRegionAside(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 10)
	h.push(s1, realtime.ServerEvent{Type: realtime.EvRateLimitsUpdated, RateLimits: []realtime.RateLimit{
		{Name: "requests", Limit: 100, Remaining: 0}, {Name: "tokens", Limit: 1000, Remaining: 12}, {Name: "odd", Remaining: 3}}})
	require.Equal(t, 12.0, h.metric("sipbridge_realtime_rate_limit_remaining", "region", "A", "limit", "tokens"))
	require.Equal(t, 0.0, h.metric("sipbridge_realtime_rate_limit_remaining", "region", "A", "limit", "requests"))

	h.push(s1, created("r1"), done("r1", realtime.StatusFailed,
		failed("inference_rate_limit_exceeded", "invalid_request_error", "Rate limit reached. Please try again in 7s.")))
	s2 := h.session(2)
	h.waitActive(s2)
	require.Equal(t, "B", s2.region, "the turn goes elsewhere at once")
	require.Len(t, s2.responses(), 1)
	st := h.pool.Status()[0]
	require.Equal(t, BreakerClosed, st.State)
	require.Zero(t, st.Failures, "throttling is not an outage")
	require.Equal(t, h.clock.Now().Add(7*time.Second), st.ThrottledUntil, "set aside for the provider's wait")
	require.Equal(t, 1.0, h.metric("sipbridge_failover_throttled_total", "region", "A", "source", realtime.RateLimitResponse))
	require.NotContains(t, names(h.pool.Candidates()), "A")
	h.clock.Advance(7 * time.Second)
	require.Contains(t, names(h.pool.Candidates()), "A")
	require.NoError(t, h.stop())
}

func TestThrottledDialSetsRegionAside(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	h.dialer.then("A", dialStep{err: &realtime.DialError{Region: "A", StatusCode: 429,
		Err: &realtime.RateLimitError{Region: "A", Source: realtime.RateLimitHTTP, RetryAfter: 2 * time.Second}}})
	h.start()
	s := h.session(1)
	h.waitActive(s)
	require.Equal(t, "B", s.region)
	st := h.pool.Status()[0]
	require.Equal(t, BreakerClosed, st.State)
	require.Zero(t, st.Samples)
	require.Equal(t, h.clock.Now().Add(2*time.Second), st.ThrottledUntil)
	require.Equal(t, 1.0, h.metric("sipbridge_realtime_connect_errors_total", "region", "A", "kind", "rate_limited"))
	require.NoError(t, h.stop())
}
