package sip

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits of the SIP edge against hostile traffic: what one source (an IP
// address) may hold of the bridge at a time, so that a scanner, a broken
// peer or a flood from one host cannot take every call slot, socket or AI
// session away from the trunks.
//
//   - Unconfirmed calls: an INVITE admitted and not ACKed yet holds a call
//     slot, an RTP port and (answer-when-ready) a realtime session being
//     opened. A source may hold MaxUnconfirmedPerSource of them; one more
//     gets 503 with Retry-After (EndRejectUnconfirmed). The ACK releases
//     the count at once, so a trunk placing calls at any rate stays far
//     below the cap (its unconfirmed calls are those ringing while the AI
//     connects), while a host that never ACKs is held to the cap.
//   - OPTIONS: OptionsRate per second per source (burst twice that);
//     beyond it they are dropped, never answered (no reflection, and a
//     health checker retransmits). INVITEs and in-dialog requests are not
//     counted, so an OPTIONS flood does not starve calls from the same
//     host.
//   - Stream connections (TCP, TLS): at most MaxConnectionsPerSource from
//     one source and MaxConnections in total; one more is closed at once.
//     A connection gets no more than streamMessageDeadline to deliver each
//     message once its first byte arrived (slowloris), and is closed after
//     StreamIdleTimeout without a byte (keep-alives count).

// Defaults of the edge limits.
const (
	DefaultMaxUnconfirmedPerSource = 20
	DefaultOptionsRate             = 10
	DefaultMaxConnections          = 1024
	DefaultMaxConnectionsPerSource = 32
	DefaultStreamIdleTimeout       = 10 * time.Minute
	// maxTrackedRateSources bounds the OPTIONS buckets; beyond it, idle
	// buckets are swept, and if none is idle a new source is refused (a
	// flood from that many addresses is refused rather than tracked).
	maxTrackedRateSources = 16384
)

// EdgeLimits bound what one source may hold; zero values get the defaults,
// negative values disable a limit.
type EdgeLimits struct {
	// MaxUnconfirmedPerSource: calls from one IP admitted and not ACKed.
	MaxUnconfirmedPerSource int
	// OptionsRate: OPTIONS per second from one IP (burst twice that).
	OptionsRate int
	// MaxConnections and MaxConnectionsPerSource: open TCP/TLS connections.
	MaxConnections          int
	MaxConnectionsPerSource int
	// StreamIdleTimeout closes a TCP/TLS connection silent for that long.
	StreamIdleTimeout time.Duration
}

// WithDefaults fills in zero values and turns negative ones into 0 (off).
func (l EdgeLimits) WithDefaults() EdgeLimits {
	def := func(v *int, d int) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&l.MaxUnconfirmedPerSource, DefaultMaxUnconfirmedPerSource)
	def(&l.OptionsRate, DefaultOptionsRate)
	def(&l.MaxConnections, DefaultMaxConnections)
	def(&l.MaxConnectionsPerSource, DefaultMaxConnectionsPerSource)
	switch {
	case l.StreamIdleTimeout == 0:
		l.StreamIdleTimeout = DefaultStreamIdleTimeout
	case l.StreamIdleTimeout < 0:
		l.StreamIdleTimeout = 0
	}
	return l
}

// sourceCounts counts what each source holds against a per-source and a
// total cap (0 = no cap). Safe for concurrent use.
type sourceCounts struct {
	perSource, total int

	mu  sync.Mutex
	n   map[netip.Addr]int
	sum int
}

func newSourceCounts(perSource, total int) *sourceCounts {
	return &sourceCounts{perSource: perSource, total: total, n: map[netip.Addr]int{}}
}

// acquire takes one unit for src; false (and nothing taken) when src or
// the total is at its cap.
func (c *sourceCounts) acquire(src netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.perSource > 0 && c.n[src] >= c.perSource {
		return false
	}
	if c.total > 0 && c.sum >= c.total {
		return false
	}
	c.n[src]++
	c.sum++
	return true
}

// release gives back a unit acquire took.
func (c *sourceCounts) release(src netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[src] <= 1 {
		delete(c.n, src)
	} else {
		c.n[src]--
	}
	if c.sum > 0 {
		c.sum--
	}
}

// held is what src holds now.
func (c *sourceCounts) held(src netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[src]
}

// sourceRate is a token bucket per source IP: rate tokens a second, up to
// burst. Safe for concurrent use; rate 0 allows everything.
type sourceRate struct {
	rate, burst float64
	now         func() time.Time

	mu sync.Mutex
	m  map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newSourceRate(perSecond int) *sourceRate {
	return &sourceRate{rate: float64(perSecond), burst: 2 * float64(perSecond), now: time.Now, m: map[netip.Addr]*bucket{}}
}

// allow takes a token for src.
func (r *sourceRate) allow(src netip.Addr) bool {
	if r.rate <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	b := r.m[src]
	if b == nil {
		if len(r.m) >= maxTrackedRateSources {
			r.sweepLocked(now)
			if len(r.m) >= maxTrackedRateSources {
				return false
			}
		}
		b = &bucket{tokens: r.burst, last: now}
		r.m[src] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweepLocked forgets buckets that have refilled (they hold no state).
func (r *sourceRate) sweepLocked(now time.Time) {
	for ip, b := range r.m {
		if b.tokens+now.Sub(b.last).Seconds()*r.rate >= r.burst {
			delete(r.m, ip)
		}
	}
}

// addrIP is the IP of a net.Addr (unmapped), if it has one.
func addrIP(a net.Addr) (netip.Addr, bool) {
	if a == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
