package media

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The shared media clock. Every running Stream's outbound 20 ms tick comes
// from one of a few clock shards (minClockShards, or one per GOMAXPROCS if
// more), not from a timer and
// a goroutine of its own: at hundreds of calls the per-call timers cost
// more CPU in wake-ups, timer-heap churn and scheduling than the audio work
// itself (about 12 µs per frame). A shard wakes once per 20 ms and sends one
// packet for each of its streams; the shards' phases are spread across the
// frame so their bursts do not coincide.
//
// A shard runs only while it has streams: the first registration starts its
// goroutine and the last unregistration stops it and waits for it, so no
// goroutine outlives the calls (goleak) and Stream.Run still owns everything
// its call started.
//
// Sends never block the shard: the unix send path (clock_send_unix.go)
// writes with one non-blocking sendto and counts EAGAIN as a lost packet, so
// one dead peer cannot delay the other calls' packets. sendmmsg batching
// does not apply: each call has its own RTP socket (its own SDP port), and
// sendmmsg batches datagrams of one socket only; a shard sends one datagram
// per socket per tick.

// On Linux the shards also receive (recv_linux.go): on each tick a shard
// sends its streams' packets, then, for the streams whose turn it is (each
// once per uplink chunk), takes the queued datagrams through the receive
// path and does the timed receive work. Elsewhere a reader goroutine per
// stream receives.

// minClockShards spreads the streams over at least this many phases of the
// 20 ms frame (2 ms apart), whatever GOMAXPROCS is: a shard sends its
// streams' packets one after another, so with 250 streams on each of two
// shards the last packet of a tick left about a millisecond after its slot
// before any contention for the CPU. Ten shards cost 500 wake-ups a second
// in all; a stream is received on one tick of each uplink chunk
// (recv_linux.go).
const minClockShards = 10

// mediaClock is the set of shards.
type mediaClock struct {
	once   sync.Once
	epoch  time.Time // tick times are epoch + phase + k·frameDur
	shards []*clockShard
}

// clockShard drives a set of streams.
type clockShard struct {
	phase time.Duration
	rx    *recvBatch // receive scratch, the shard goroutine's (nil where shards do not receive)

	mu      sync.Mutex
	streams []*Stream
	stop    chan struct{} // nil while the shard's goroutine is not running
	done    chan struct{}
}

var sharedClock mediaClock

func (c *mediaClock) init() {
	c.once.Do(func() {
		n := max(minClockShards, runtime.GOMAXPROCS(0))
		c.epoch = time.Now()
		c.shards = make([]*clockShard, n)
		for i := range c.shards {
			c.shards[i] = &clockShard{phase: time.Duration(i) * frameDur / time.Duration(n), rx: newRecvBatch()}
		}
	})
}

// register adds s to the least loaded shard, starting it when idle.
func (c *mediaClock) register(s *Stream) *clockShard {
	c.init()
	best := c.shards[0]
	bestN := -1
	for _, sh := range c.shards {
		sh.mu.Lock()
		n := len(sh.streams)
		sh.mu.Unlock()
		if bestN < 0 || n < bestN {
			best, bestN = sh, n
		}
	}
	best.add(s, c.epoch)
	return best
}

func (sh *clockShard) add(s *Stream, epoch time.Time) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.streams = append(sh.streams, s)
	if sh.stop == nil {
		sh.stop, sh.done = make(chan struct{}), make(chan struct{})
		go sh.run(epoch, sh.stop, sh.done)
	}
}

// remove takes s off the shard. When it returns the shard will not touch s
// again; when s was the last stream, the shard's goroutine has ended.
func (sh *clockShard) remove(s *Stream) {
	sh.mu.Lock()
	for i, x := range sh.streams {
		if x == s {
			last := len(sh.streams) - 1
			sh.streams[i] = sh.streams[last]
			sh.streams[last] = nil
			sh.streams = sh.streams[:last]
			break
		}
	}
	var done chan struct{}
	if len(sh.streams) == 0 && sh.stop != nil {
		// Closed under mu: the goroutine checks stop under mu before each
		// tick, so it never drives streams a later registration adds (those
		// belong to the goroutine that registration starts).
		close(sh.stop)
		done = sh.done
		sh.stop, sh.done = nil, nil
	}
	sh.mu.Unlock()
	if done != nil {
		<-done
	}
}

// run is the shard's goroutine: one tick per 20 ms on absolute deadlines
// (epoch + phase + k·20 ms), so timer lateness does not accumulate.
func (sh *clockShard) run(epoch time.Time, stop, done chan struct{}) {
	defer close(done)
	base := epoch.Add(sh.phase)
	// The first tick is the next slot from now.
	tick := int64(time.Since(base)/frameDur) + 1
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ; ; tick++ {
		slot := base.Add(time.Duration(tick) * frameDur)
		if d := time.Until(slot); d > 0 {
			timer.Reset(d)
			select {
			case <-stop:
				return
			case <-timer.C:
			}
		}
		sh.mu.Lock()
		select {
		case <-stop:
			sh.mu.Unlock()
			return
		default:
		}
		now := time.Now()
		if behind := int64(now.Sub(base)/frameDur) - tick; behind > maxCatchUp {
			// Stalled for several frames: do not burst the backlog at the
			// callers. Skip ahead; each stream advances its timestamp by
			// the real elapsed samples (RFC 3550 §5.1), so queued audio is
			// delayed, not lost.
			tick += behind
			slot = base.Add(time.Duration(tick) * frameDur)
			for _, s := range sh.streams {
				s.skipFrames(behind)
			}
		}
		for _, s := range sh.streams {
			if s.sendFrame(now) {
				sendLateness.observe(time.Since(slot))
			}
		}
		// Receive after sending: the receive work does not delay this
		// tick's packets. The receive side's clock is the tick's slot, not
		// the moment the shard got to it: its timed steps (the jitter
		// release 3 frames after the last packet, silence fill from the
		// 4th) then fall on the ticks they are due, never two on one.
		if sh.rx != nil {
			for _, s := range sh.streams {
				s.receiveTick(sh.rx, slot)
			}
		}
		sh.mu.Unlock()
	}
}

// skipFrames lets RTP time advance by n frames without sending (clock
// goroutine).
func (s *Stream) skipFrames(n int64) {
	s.out.hdr.Timestamp += uint32(n) * frameSamples
	s.out.gap = true
	s.stats.skipped.Add(uint64(n))
}

// LatenessBuckets are the upper bounds of the send-lateness histogram.
var LatenessBuckets = []time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
	5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond,
}

// latencyHist is a fixed-bucket histogram updated with atomics (the clock
// goroutines write it, the metrics scrape reads it).
type latencyHist struct {
	counts [10]atomic.Uint64 // len(LatenessBuckets)+1: the last is +Inf
	sumNs  atomic.Int64
	n      atomic.Uint64
}

var sendLateness latencyHist

func (h *latencyHist) observe(d time.Duration) {
	i := 0
	for i < len(LatenessBuckets) && d > LatenessBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
	h.n.Add(1)
}

// Lateness is a snapshot of the send-lateness histogram: for every RTP
// packet sent (or dropped on a send error) by the shared clock, the time
// from its 20 ms slot to the moment the send call returned.
type Lateness struct {
	// Counts[i] are packets with lateness ≤ LatenessBuckets[i] and above the
	// previous bound (not cumulative); the last entry is above every bound.
	Counts []uint64
	Sum    time.Duration
	Count  uint64
}

// SendLateness returns the process-wide send-lateness histogram.
func SendLateness() Lateness { return sendLateness.snapshot() }

func (h *latencyHist) snapshot() Lateness {
	l := Lateness{Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		l.Counts[i] = h.counts[i].Load()
	}
	l.Sum = time.Duration(h.sumNs.Load())
	l.Count = h.n.Load()
	return l
}

// Quantile estimates the q-quantile (0 < q ≤ 1) as the upper bound of the
// bucket it falls in (the last finite bound when it is beyond them all).
func (l Lateness) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range l.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	var seen uint64
	for i, c := range l.Counts {
		seen += c
		if seen >= rank && i < len(LatenessBuckets) {
			return LatenessBuckets[i]
		}
	}
	return LatenessBuckets[len(LatenessBuckets)-1]
}
