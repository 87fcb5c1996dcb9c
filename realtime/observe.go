package realtime

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Observability helpers shared by the layers above (failover, sip, their
// sub-packages): the one way to register a Prometheus collector and the one
// log limiter. They live at the bottom of the import graph so that sip needs
// no failover helper for them.

// RegisterCollector registers c on reg (nil: not exported) and returns the
// collector to use: the one already registered under the same description
// when c is a duplicate, so building metrics twice on one registry shares the
// series instead of panicking.
func RegisterCollector[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// Any other error is a definition bug caught by the tests; the
		// series still work, unexported.
	}
	return c
}

// DefaultLogEvery is a LogLimiter's interval when Every is 0.
const DefaultLogEvery = 10 * time.Second

// LogLimiter lets through a burst of log lines and then one per interval,
// counting what it held back, so a per-packet or per-message problem (a
// flood of malformed packets, a full queue) logs a few lines a minute
// instead of fifty a second. Safe for concurrent use and allocation-free.
// The zero value lets one line through per DefaultLogEvery.
type LogLimiter struct {
	// Every is how often a line is let through once the burst is spent
	// (0: DefaultLogEvery).
	Every time.Duration
	// Burst is how many lines may pass back to back (0: 1).
	Burst int
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu         sync.Mutex
	started    bool
	tokens     int
	last       time.Time
	suppressed int
}

// NewLogLimiter returns a limiter letting burst lines through, then one per
// every.
func NewLogLimiter(every time.Duration, burst int) *LogLimiter {
	return &LogLimiter{Every: every, Burst: burst}
}

// Allow reports whether a line may be logged now and, when it may, how many
// were suppressed since the last one that was.
func (l *LogLimiter) Allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	every, burst := l.Every, l.Burst
	if every <= 0 {
		every = DefaultLogEvery
	}
	if burst <= 0 {
		burst = 1
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	t := now()
	if !l.started {
		l.started, l.tokens, l.last = true, burst, t
	}
	if gained := int(t.Sub(l.last) / every); gained > 0 {
		l.tokens = min(burst, l.tokens+gained)
		l.last = l.last.Add(time.Duration(gained) * every)
	}
	if l.tokens == 0 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	s := l.suppressed
	l.suppressed = 0
	return true, s
}
