package media

import "time"

// logLimiter lets one log line through per interval and counts the rest, so
// a per-packet problem (a flood of bad packets, a dead route) logs a few
// lines a minute instead of fifty a second. Each limiter is owned by one
// goroutine.
type logLimiter struct {
	every      time.Duration
	last       time.Time
	suppressed int
}

// allow reports whether to log now and how many events were suppressed
// since the last line.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}
