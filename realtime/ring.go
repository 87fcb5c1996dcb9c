package realtime

import (
	"math"
	"sync"
)

// noBarrier takes every queued frame.
const noBarrier = math.MaxUint64

// audioRing is the caller-audio queue between AppendAudio (any goroutine, in
// practice the RTP reader) and the writer. Frames are copied into
// preallocated slots, so a push never allocates unless a frame is larger than
// any seen in its slot before, and never waits beyond the short critical
// section. Frames are numbered: frame n is in slots[n%len(slots)].
type audioRing struct {
	mu    sync.Mutex
	slots [][]byte // guarded by mu
	head  uint64   // guarded by mu; sequence number of the oldest queued frame
	tail  uint64   // guarded by mu; sequence number the next pushed frame gets
}

func (r *audioRing) init(n, slotBytes int) {
	backing := make([]byte, n*slotBytes)
	r.slots = make([][]byte, n)
	for i := range r.slots {
		r.slots[i] = backing[i*slotBytes : i*slotBytes : (i+1)*slotBytes]
	}
}

// push copies frame into the next free slot. It returns false if all slots
// are taken.
func (r *audioRing) push(frame []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tail-r.head == uint64(len(r.slots)) {
		return false
	}
	i := r.tail % uint64(len(r.slots))
	r.slots[i] = append(r.slots[i][:0], frame...)
	r.tail++
	return true
}

// mark is the sequence number of the next frame: everything queued so far is
// before it.
func (r *audioRing) mark() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tail
}

// pending reports whether a frame numbered below barrier is queued.
func (r *audioRing) pending(barrier uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.head < r.tail && r.head < barrier
}

// take appends the oldest queued frames numbered below barrier to dst and
// frees their slots. It stops before a frame that would take dst past
// maxBytes, but always takes at least one frame so a large one still goes.
func (r *audioRing) take(dst []byte, maxBytes int, barrier uint64) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := len(dst)
	for r.head < r.tail && r.head < barrier {
		s := r.slots[r.head%uint64(len(r.slots))]
		if len(dst) > start && len(dst)-start+len(s) > maxBytes {
			break
		}
		dst = append(dst, s...)
		r.head++
	}
	return dst
}
