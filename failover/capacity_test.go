package failover

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

func TestNewCapacityValidates(t *testing.T) {
	tests := []struct {
		limits []RegionLimits
		err    string
	}{
		{[]RegionLimits{{Name: ""}}, "regions[0].name"},
		{[]RegionLimits{{Name: "a"}, {Name: "a"}}, "regions[1].name"},
		{[]RegionLimits{{Name: "a", MaxSessions: -1}}, "regions[0].max_sessions"},
		{[]RegionLimits{{Name: "a"}, {Name: "b", Weight: -2}}, "regions[1].weight"},
	}
	for _, tt := range tests {
		_, err := NewCapacity(tt.limits, nil)
		require.ErrorContains(t, err, tt.err)
	}
	c, err := NewCapacity([]RegionLimits{{Name: "a"}}, nil)
	require.NoError(t, err)
	require.Equal(t, DefaultWeight, c.Snapshot()[0].Weight)
}

// capStep is one operation on a Capacity and what it must give.
type capStep struct {
	op         string // pick, release (of the lease picked at step idx), throttle, advance
	candidates []string
	purpose    SessionPurpose
	idx        int
	region     string        // pick: expected region ("" = ErrNoCapacity); throttle: region
	d          time.Duration // throttle: for how long; advance: by how much; pick failure: RetryAfter
}

func TestCapacityPick(t *testing.T) {
	abc := []string{"a", "b", "c"}
	tests := []struct {
		name   string
		limits []RegionLimits
		steps  []capStep
	}{
		{
			name:   "best tier first, spill when full, back when freed",
			limits: []RegionLimits{{Name: "a", MaxSessions: 1}, {Name: "b", MaxSessions: 1}, {Name: "c", Priority: 1}},
			steps: []capStep{
				{op: "pick", candidates: abc, region: "a"},
				{op: "pick", candidates: abc, region: "b"},
				{op: "pick", candidates: abc, region: "c"},
				{op: "pick", candidates: abc, region: "c"},
				{op: "release", idx: 1},
				{op: "pick", candidates: abc, region: "b"},
			},
		},
		{
			name:   "unhealthy regions are not candidates; standbys and hedges count against the cap",
			limits: []RegionLimits{{Name: "a", MaxSessions: 2}, {Name: "b", MaxSessions: 1}, {Name: "c", MaxSessions: 1, Priority: 5}},
			steps: []capStep{
				{op: "pick", candidates: []string{"b", "c"}, region: "b"},
				{op: "pick", candidates: []string{"a", "c"}, purpose: SessionStandby, region: "a"},
				{op: "pick", candidates: []string{"a"}, purpose: SessionHedge, region: "a"},
				{op: "pick", candidates: []string{"a", "b"}, region: "", d: DefaultRetryAfter},
				{op: "pick", candidates: abc, region: "c"},
				{op: "pick", candidates: abc, region: "", d: DefaultRetryAfter},
				{op: "pick", candidates: []string{"zz"}, region: "", d: DefaultRetryAfter},
			},
		},
		{
			name:   "throttled region skipped until the time passes; Retry-After is the earliest end",
			limits: []RegionLimits{{Name: "a"}, {Name: "b", Priority: 1, MaxSessions: 1}},
			steps: []capStep{
				{op: "throttle", region: "a", d: 30 * time.Second},
				{op: "pick", candidates: abc, region: "b"},
				{op: "pick", candidates: abc, region: "", d: 30 * time.Second},
				{op: "advance", d: 10 * time.Second},
				{op: "throttle", region: "a", d: time.Second}, // earlier: ignored
				{op: "pick", candidates: abc, region: "", d: 20 * time.Second},
				{op: "advance", d: 20 * time.Second},
				{op: "pick", candidates: abc, region: "a"},
			},
		},
		{
			name:   "least loaded relative to weight",
			limits: []RegionLimits{{Name: "a", Weight: 2}, {Name: "b", Weight: 1}},
			steps: []capStep{
				{op: "pick", candidates: abc, region: "a"},
				{op: "pick", candidates: abc, region: "b"},
				{op: "pick", candidates: abc, region: "a"},
				{op: "pick", candidates: abc, region: "a"},
				{op: "pick", candidates: abc, region: "b"},
				{op: "pick", candidates: abc, region: "a"},
				{op: "release", idx: 0},
				{op: "release", idx: 2},
				{op: "release", idx: 3},
				{op: "pick", candidates: abc, region: "a"}, // a 1/2 vs b 2/1
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
			c, err := NewCapacity(tt.limits, func() time.Time { return now })
			require.NoError(t, err)
			leases := map[int]*Lease{}
			for i, s := range tt.steps {
				switch s.op {
				case "pick":
					l, err := c.Pick(s.purpose, s.candidates)
					if s.region == "" {
						require.ErrorIs(t, err, ErrNoCapacity, "step %d", i)
						var nc *NoCapacityError
						require.True(t, errors.As(err, &nc))
						require.Equal(t, s.d, nc.RetryAfter, "step %d", i)
						continue
					}
					require.NoError(t, err, "step %d", i)
					require.Equal(t, s.region, l.Region(), "step %d", i)
					require.Equal(t, s.purpose, l.Purpose())
					leases[i] = l
				case "release":
					leases[s.idx].Release()
				case "throttle":
					c.Throttle(s.region, now.Add(s.d))
				case "advance":
					now = now.Add(s.d)
				}
			}
		})
	}
}

func TestCapacityLease(t *testing.T) {
	c, err := NewCapacity([]RegionLimits{{Name: "a", MaxSessions: 2}}, nil)
	require.NoError(t, err)
	l1, err := c.Acquire("a", SessionStandby)
	require.NoError(t, err)
	l2, err := c.Acquire("a", SessionCall)
	require.NoError(t, err)
	_, err = c.Acquire("a", SessionHedge)
	require.ErrorIs(t, err, ErrNoCapacity)
	_, err = c.Acquire("nowhere", SessionCall)
	require.ErrorContains(t, err, "unknown region")
	require.True(t, c.Full([]string{"a"}))

	l1.Retag(SessionCall) // the standby took over the call
	require.Equal(t, map[string]int{"call": 2, "standby": 0, "hedge": 0, "rotation": 0}, c.Snapshot()[0].ByPurpose)
	l1.Release()
	l1.Release() // twice: harmless
	l1.Retag(SessionHedge)
	require.Equal(t, 1, c.Snapshot()[0].Sessions)
	require.False(t, c.Full([]string{"a"}))
	l2.Release()
	require.Equal(t, 0, c.Snapshot()[0].Sessions)
}

// Over many short calls (released at once) and over long overlapping ones,
// each region's share of picks follows its weight within a few percent.
func TestCapacityWeightsHonoured(t *testing.T) {
	limits := []RegionLimits{{Name: "a", Weight: 3}, {Name: "b", Weight: 2}, {Name: "c", Weight: 1}, {Name: "spill", Priority: 1}}
	want := map[string]float64{"a": 0.5, "b": 1.0 / 3, "c": 1.0 / 6}
	candidates := []string{"a", "b", "c", "spill"}
	for _, mode := range []string{"short", "overlapping"} {
		t.Run(mode, func(t *testing.T) {
			c, err := NewCapacity(limits, nil)
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(1, 2))
			counts := map[string]int{}
			var held []*Lease
			const n = 60000
			for range n {
				l, err := c.Pick(SessionCall, candidates)
				require.NoError(t, err)
				counts[l.Region()]++
				if mode == "short" {
					l.Release()
					continue
				}
				held = append(held, l)
				for len(held) > 40 { // ~40 concurrent calls, ending in random order
					i := rng.IntN(len(held))
					held[i].Release()
					held = append(held[:i], held[i+1:]...)
				}
			}
			require.Zero(t, counts["spill"])
			for r, share := range want {
				require.InDelta(t, share, float64(counts[r])/n, 0.02, "region %s: %v", r, counts)
			}
		})
	}
}

// Many goroutines picking and releasing never push a region over its cap
// (checked by the test's own counters, not the Capacity's), and every
// slot comes back.
func TestCapacityCapsUnderConcurrency(t *testing.T) {
	limits := []RegionLimits{{Name: "a", MaxSessions: 3, Weight: 2}, {Name: "b", MaxSessions: 2}, {Name: "c", MaxSessions: 1, Priority: 1}}
	c, err := NewCapacity(limits, nil)
	require.NoError(t, err)
	caps := map[string]int64{"a": 3, "b": 2, "c": 1}
	live := map[string]*atomic.Int64{"a": {}, "b": {}, "c": {}}
	var over, refused, picked atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				l, err := c.Pick(SessionPurpose((g+i)%int(numSessionPurposes)), []string{"a", "b", "c"})
				if err != nil {
					refused.Add(1)
					continue
				}
				picked.Add(1)
				if live[l.Region()].Add(1) > caps[l.Region()] {
					over.Add(1)
				}
				if i%3 == 0 {
					l.Retag(SessionCall)
				}
				live[l.Region()].Add(-1)
				l.Release()
			}
		}()
	}
	wg.Wait()
	require.Zero(t, over.Load(), "a cap was exceeded")
	require.Equal(t, int64(16000), picked.Load()+refused.Load())
	for _, l := range c.Snapshot() {
		require.Zero(t, l.Sessions, l.Name)
		for p, n := range l.ByPurpose {
			require.Zero(t, n, "%s %s", l.Name, p)
		}
	}
}

func TestCapacityMetrics(t *testing.T) {
	now := time.Now()
	c, err := NewCapacity([]RegionLimits{{Name: "a", MaxSessions: 4}, {Name: "b"}}, func() time.Time { return now })
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	realtime.RegisterCollector(reg, c)
	_, err = c.Pick(SessionHedge, []string{"a"})
	require.NoError(t, err)
	c.Throttle("b", now.Add(time.Minute))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP sipbridge_region_max_sessions Configured max_sessions per region (0: unlimited).
# TYPE sipbridge_region_max_sessions gauge
sipbridge_region_max_sessions{region="a"} 4
sipbridge_region_max_sessions{region="b"} 0
# HELP sipbridge_region_throttled 1 while new sessions are kept away from the region after a rate limit.
# TYPE sipbridge_region_throttled gauge
sipbridge_region_throttled{region="a"} 0
sipbridge_region_throttled{region="b"} 1
`), "sipbridge_region_max_sessions", "sipbridge_region_throttled"))
	require.Equal(t, 8, testutil.CollectAndCount(c, "sipbridge_region_sessions"))
	require.Equal(t, "hedge", SessionHedge.String())
}
