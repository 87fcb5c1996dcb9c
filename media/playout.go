package media

import (
	"sync"
	"time"
)

const (
	// initialQueue is the ring a call keeps between answers. The model
	// sends a response faster than real time, so several seconds can queue
	// up: for such a burst the ring moves to a bigger one from ringPools
	// (doubling as needed), which goes back to the pool once the burst has
	// been played, so a call holds burst-sized memory only while it plays a
	// burst and calls share those rings over time.
	initialQueue = time.Second
	// maxQueue bounds the ring; audio beyond it is dropped and counted.
	maxQueue = 5 * time.Minute
	// recentItems is how many items keep their played counters after
	// playout, so PlayedMs answers for truncation after the fact.
	recentItems = 64
)

func samplesAt(rate int, d time.Duration) int { return int(d / time.Second * time.Duration(rate)) }

// itemRec is the playout record of one item id.
type itemRec struct {
	id     string
	played int // samples sent as RTP
	queued int // samples still in the ring
}

// segment is a run of queued samples belonging to one item.
type segment struct {
	item *itemRec
	n    int
}

// playQueue is the outbound audio FIFO: int16 samples at the codec's rate
// (8 or 16 kHz) in a ring,
// tagged by item in segments. All fields are guarded by the Stream's qMu.
type playQueue struct {
	ring  []int16 // small, or big.s during a burst
	small []int16 // the ring kept between bursts
	big   *pooledRing
	rate  int // samples per second
	perMs int
	head  int // index of the oldest queued sample
	n     int // queued samples

	segs    []segment // segs[segHead:] are queued, oldest first
	segHead int

	items    [recentItems]itemRec
	itemByID map[string]*itemRec
	nextItem int // round-robin eviction cursor over items

	flushed bool // Flush happened since the pacer last took audio
	dropped int  // samples refused because the ring was at maxQueue

	// done is called (under the lock, so it must not block) when an item's
	// queued audio has all been taken and the queue moves on to another
	// item or runs empty. Set once at construction.
	done func(it *itemRec)
}

func newPlayQueue(rate int, done func(*itemRec)) playQueue {
	small := make([]int16, samplesAt(rate, initialQueue))
	return playQueue{
		done:     done,
		rate:     rate,
		perMs:    rate / 1000,
		ring:     small,
		small:    small,
		segs:     make([]segment, 0, 16),
		itemByID: make(map[string]*itemRec, 8),
	}
}

// pooledRing carries a burst ring through its pool (the pointer is what
// sync.Pool holds, so returning one does not allocate).
type pooledRing struct{ s []int16 }

// ringPools hold burst rings by size: [8 or 16 kHz][class], where class k
// is initialQueue·2^(k+1) and the last class the maxQueue cap.
var ringPools [2][maxRingClass + 1]sync.Pool

const maxRingClass = 9

func ringPool(rate, size int) *sync.Pool {
	r := 0
	if rate != 8000 {
		r = 1
	}
	base := samplesAt(rate, initialQueue)
	k := 0
	for base<<(k+1) < size && k < maxRingClass {
		k++
	}
	if size >= samplesAt(rate, maxQueue) {
		k = maxRingClass
	}
	return &ringPools[r][k]
}

// burstRing returns a ring of exactly size samples (from the pool when one
// is there).
func burstRing(rate, size int) *pooledRing {
	if r, ok := ringPool(rate, size).Get().(*pooledRing); ok && len(r.s) == size {
		return r
	}
	return &pooledRing{s: make([]int16, size)}
}

// releaseBurst goes back to the small ring once the queue is empty.
func (q *playQueue) releaseBurst() {
	if q.big == nil || q.n != 0 {
		return
	}
	ringPool(q.rate, len(q.big.s)).Put(q.big)
	q.big, q.ring, q.head = nil, q.small, 0
}

// item returns the record for id, creating it (and evicting the oldest
// idle record) when needed.
func (q *playQueue) item(id string) *itemRec {
	if r, ok := q.itemByID[id]; ok {
		return r
	}
	var r *itemRec
	for range recentItems {
		c := &q.items[q.nextItem]
		q.nextItem = (q.nextItem + 1) % recentItems
		if c.queued == 0 {
			r = c
			break
		}
	}
	if r == nil {
		// All recent records still have audio queued (64 items at once):
		// keep this one off the ring rather than corrupt a queued record.
		r = &itemRec{}
	} else if r.id != "" {
		delete(q.itemByID, r.id)
	}
	*r = itemRec{id: id}
	q.itemByID[id] = r
	return r
}

// push appends samples for item id and returns how many were dropped for
// lack of room.
func (q *playQueue) push(id string, s []int16) int {
	if len(s) == 0 {
		return 0
	}
	if need := q.n + len(s); need > len(q.ring) {
		q.grow(need)
	}
	drop := 0
	if room := len(q.ring) - q.n; len(s) > room {
		drop = len(s) - room
		s = s[:room]
		q.dropped += drop
	}
	if len(s) == 0 {
		return drop
	}
	tail := (q.head + q.n) % len(q.ring)
	c := copy(q.ring[tail:], s)
	copy(q.ring, s[c:])
	q.n += len(s)

	r := q.item(id)
	r.queued += len(s)
	if k := len(q.segs); k > q.segHead && q.segs[k-1].item == r {
		q.segs[k-1].n += len(s)
		return drop
	}
	if q.segHead > 0 && len(q.segs) == cap(q.segs) {
		// Reuse the consumed front instead of growing.
		k := copy(q.segs, q.segs[q.segHead:])
		q.segs, q.segHead = q.segs[:k], 0
	}
	q.segs = append(q.segs, segment{item: r, n: len(s)})
	return drop
}

// grow enlarges the ring to hold at least need samples, doubling, up to
// maxQueue.
func (q *playQueue) grow(need int) {
	size := len(q.ring)
	limit := samplesAt(q.rate, maxQueue)
	if size >= limit {
		return
	}
	for size < need && size < limit {
		size *= 2
	}
	size = min(size, limit)
	big := burstRing(q.rate, size)
	ring := big.s
	c := copy(ring, q.ring[q.head:min(q.head+q.n, len(q.ring))])
	copy(ring[c:], q.ring[:q.n-c])
	if q.big != nil {
		ringPool(q.rate, len(q.big.s)).Put(q.big)
	}
	q.big, q.ring, q.head = big, ring, 0
}

// take moves up to len(dst) samples into dst, credits them to their items
// and calls q.done for each item whose queued audio has all been taken when
// the queue moves on to another item or runs empty. It returns the number
// of samples taken and whether Flush ran since the previous take.
func (q *playQueue) take(dst []int16) (int, bool) {
	flushed := q.flushed
	q.flushed = false
	k := min(len(dst), q.n)
	if k == 0 {
		return 0, flushed
	}
	c := copy(dst[:k], q.ring[q.head:])
	copy(dst[c:k], q.ring)
	q.head = (q.head + k) % len(q.ring)
	q.n -= k

	for rem := k; rem > 0 && q.segHead < len(q.segs); {
		sg := &q.segs[q.segHead]
		t := min(rem, sg.n)
		sg.n -= t
		sg.item.played += t
		sg.item.queued -= t
		rem -= t
		if sg.n > 0 {
			break
		}
		it := sg.item
		q.segHead++
		if q.segHead == len(q.segs) {
			q.segs, q.segHead = q.segs[:0], 0
			q.done(it)
		} else if q.segs[q.segHead].item != it {
			q.done(it)
		}
	}
	q.releaseBurst()
	return k, flushed
}

// flush drops all queued audio; played counters stay.
func (q *playQueue) flush() {
	for _, sg := range q.segs[q.segHead:] {
		sg.item.queued -= sg.n
	}
	q.segs, q.segHead = q.segs[:0], 0
	q.head, q.n = 0, 0
	q.flushed = true
	q.releaseBurst()
}

// playedMs is how many ms of id were taken for sending.
func (q *playQueue) playedMs(id string) int {
	if r, ok := q.itemByID[id]; ok {
		return r.played / q.perMs
	}
	return 0
}
