package realtime

import (
	"math"
	"slices"
	"sync"
)

// noBarrier takes every queued frame.
const noBarrier = math.MaxUint64

// audioRing is the caller-audio queue between AppendAudio (any goroutine, in
// practice the call's conversation actor) and the writer. It is sized by
// duration, not by frame: the bytes of the queued frames lie back to back in
// one circular buffer preallocated for audioRingMs of the session's input
// format, whatever size the frames are (20 ms frames or the media stream's
// larger uplink chunks), so a push copies and never allocates in steady
// state. Only a burst larger than that (a replay of audio buffered during a
// swap, a stalled writer) grows the buffer, and the queue returns to the
// preallocated one once the writer has drained it.
//
// At most audioRingFrames frames wait: that bound, not the bytes, is what
// refuses a frame (the failover replay sizes its appends so that a swap's
// worth of audio takes fewer). Frames are numbered: frame n's length is
// lens[n%len(lens)], and barriers (mark) are frame numbers.
type audioRing struct {
	mu    sync.Mutex
	base  []byte                 // guarded by mu; the preallocated storage
	buf   []byte                 // guarded by mu; storage in use: base, or a larger one during a burst
	start int                    // guarded by mu; offset in buf of the oldest queued byte
	used  int                    // guarded by mu; queued bytes
	lens  [audioRingFrames]int32 // guarded by mu; length of each queued frame
	head  uint64                 // guarded by mu; sequence number of the oldest queued frame
	tail  uint64                 // guarded by mu; sequence number the next pushed frame gets
}

func (r *audioRing) init(storeBytes int) {
	r.base = make([]byte, storeBytes)
	r.buf = r.base
}

// setStore resizes the preallocated storage (the session's input format
// changed). Queued audio stays where it is until drained.
func (r *audioRing) setStore(storeBytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if storeBytes == len(r.base) {
		return
	}
	r.base = make([]byte, storeBytes)
	if r.used == 0 {
		r.buf, r.start = r.base, 0
	}
}

// push copies frame into the queue. It returns false if audioRingFrames
// frames are queued.
func (r *audioRing) push(frame []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tail-r.head == uint64(len(r.lens)) {
		return false
	}
	if r.used+len(frame) > len(r.buf) || len(r.buf) == 0 {
		r.grow(max(1, r.used+len(frame)))
	}
	if w := (r.start + r.used) % len(r.buf); w+len(frame) <= len(r.buf) {
		copy(r.buf[w:], frame)
	} else {
		k := copy(r.buf[w:], frame)
		copy(r.buf, frame[k:])
	}
	r.used += len(frame)
	r.lens[r.tail%uint64(len(r.lens))] = int32(len(frame))
	r.tail++
	return true
}

// grow moves the queued bytes, in order, to a buffer of at least need bytes
// (mu held).
func (r *audioRing) grow(need int) {
	n := max(2*len(r.buf), need)
	b := make([]byte, n)
	r.copyOut(b, r.used)
	r.buf, r.start = b, 0
}

// copyOut copies the n oldest queued bytes into dst (mu held).
func (r *audioRing) copyOut(dst []byte, n int) {
	if n == 0 {
		return
	}
	k := copy(dst[:n], r.buf[r.start:])
	copy(dst[k:n], r.buf)
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
// frees their bytes. It stops before a frame that would take dst past
// maxBytes, but always takes at least one frame so a large one still goes.
// Frames are taken whole: an append never splits one.
func (r *audioRing) take(dst []byte, maxBytes int, barrier uint64) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := len(dst)
	for r.head < r.tail && r.head < barrier {
		n := int(r.lens[r.head%uint64(len(r.lens))])
		if len(dst) > start && len(dst)-start+n > maxBytes {
			break
		}
		at := len(dst)
		dst = slices.Grow(dst, n)[:at+n] // no allocation within dst's capacity
		r.copyOut(dst[at:], n)
		r.start = (r.start + n) % len(r.buf)
		r.used -= n
		r.head++
	}
	if r.used == 0 {
		// Drained: back to the preallocated storage after a burst.
		r.buf, r.start = r.base, 0
	}
	return dst
}
