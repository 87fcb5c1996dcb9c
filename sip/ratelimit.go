package sip

import (
	"sync"
	"time"
)

// logLimiter lets through a burst of log lines and then one per interval,
// counting what it held back, so a flood of malformed packets cannot flood
// the logs (livekit/sip rate-limits its per-packet logs the same way).
type logLimiter struct {
	mu         sync.Mutex
	interval   time.Duration
	burst      int
	tokens     int
	last       time.Time
	suppressed int
	now        func() time.Time
}

func newLogLimiter(interval time.Duration, burst int) *logLimiter {
	return &logLimiter{interval: interval, burst: burst, tokens: burst, now: time.Now}
}

// allow reports whether a line may be logged now and how many were
// suppressed since the last one that was.
func (l *logLimiter) allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.last.IsZero() {
		l.last = now
	}
	if gained := int(now.Sub(l.last) / l.interval); gained > 0 {
		l.tokens = min(l.burst, l.tokens+gained)
		l.last = l.last.Add(time.Duration(gained) * l.interval)
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
