package realtime

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestLogLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLogLimiter(time.Second, 3)
	l.Now = func() time.Time { return now }
	for range 3 {
		ok, s := l.Allow()
		require.True(t, ok)
		require.Zero(t, s)
	}
	for range 5 {
		ok, _ := l.Allow()
		require.False(t, ok)
	}
	now = now.Add(1500 * time.Millisecond)
	ok, s := l.Allow()
	require.True(t, ok)
	require.Equal(t, 5, s, "reports what it suppressed")
	ok, _ = l.Allow()
	require.False(t, ok)
	now = now.Add(time.Hour)
	for range 3 {
		ok, _ := l.Allow()
		require.True(t, ok, "refills to the burst, not beyond")
	}
	ok, _ = l.Allow()
	require.False(t, ok)
}

func TestLogLimiterZeroValue(t *testing.T) {
	now := time.Unix(1000, 0)
	l := LogLimiter{Now: func() time.Time { return now }}
	ok, _ := l.Allow()
	require.True(t, ok)
	ok, _ = l.Allow()
	require.False(t, ok, "one line per DefaultLogEvery")
	now = now.Add(DefaultLogEvery)
	ok, s := l.Allow()
	require.True(t, ok)
	require.Equal(t, 1, s)
	require.Zero(t, testing.AllocsPerRun(100, func() { l.Allow() }))
}

func TestRegisterCollectorShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "sipbridge_test_total", Help: "test"}
	a := RegisterCollector(reg, prometheus.NewCounter(opts))
	b := RegisterCollector(reg, prometheus.NewCounter(opts))
	require.Same(t, a, b, "a duplicate gets the registered collector")
	a.Inc()
	n, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, n, 1)
	c := RegisterCollector(nil, prometheus.NewCounter(opts))
	require.NotSame(t, a, c, "nil registry: not exported, still usable")
	c.Inc()
}
