package media

import (
	"sync"
	"time"
)

const (
	// chunkSamples is the unit the play queue holds audio in: 256 ms at
	// 8 kHz, 128 ms at 16 kHz; 4 KiB of PCM samples, 2 KiB of G.711 bytes.
	// A call holds the chunks its queued audio fills and no more: the model
	// sends an answer faster than real time, so several seconds can queue
	// up, and each chunk goes back to its pool as soon as it has been
	// played. An idle call holds none, and calls share the chunks over time.
	chunkSamples = 2048
	// maxQueue bounds the queue; audio beyond it is dropped and counted.
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
	queued int // samples still in the queue
}

// segment is a run of queued samples belonging to one item.
type segment struct {
	item *itemRec
	n    int
}

// sample is what a play queue holds: PCM samples at the codec's rate, or
// the model's G.711 bytes as they came (a G.711 call whose model audio is
// G.711, the audio_format auto default), half the memory and no decoding
// until the frame is sent (Stream.lawQ).
type sample interface{ int16 | byte }

// chunk is one unit of queued audio; the pools hold the pointers (a Put of
// a pointer does not allocate).
type chunk[T sample] [chunkSamples]T

var pcmChunks, lawChunks sync.Pool

// playQueue is the outbound audio FIFO: samples at the codec's rate (8 or
// 16 kHz) in pooled chunks, tagged by item in segments. All fields are
// guarded by the Stream's qMu.
type playQueue[T sample] struct {
	pool *sync.Pool // of *chunk[T]
	// chunks[chunkHead:] hold the queued samples: the oldest is at head in
	// chunks[chunkHead], the newest n-1 samples later (spanning chunks).
	chunks    []*chunk[T]
	chunkHead int
	head      int
	n         int // queued samples
	rate      int // samples per second
	perMs     int
	limit     int // samples at maxQueue

	segs    []segment // segs[segHead:] are queued, oldest first
	segHead int

	items    []itemRec // recentItems records, reused round-robin
	itemByID map[string]*itemRec
	nextItem int // round-robin eviction cursor over items

	flushed bool // Flush happened since the pacer last took audio
	dropped int  // samples refused because the queue was at maxQueue

	// done is called (under the lock, so it must not block) when an item's
	// queued audio has all been taken and the queue moves on to another
	// item or runs empty. Set once at construction.
	done func(it *itemRec)
}

func newPlayQueue[T sample](rate int, done func(*itemRec)) playQueue[T] {
	pool := &pcmChunks
	if _, law := any(T(0)).(byte); law {
		pool = &lawChunks
	}
	return playQueue[T]{
		pool:     pool,
		items:    make([]itemRec, recentItems),
		done:     done,
		rate:     rate,
		perMs:    rate / 1000,
		limit:    samplesAt(rate, maxQueue),
		segs:     make([]segment, 0, 8),
		itemByID: make(map[string]*itemRec, 8),
	}
}

// heldChunks is how many chunks the queue holds.
func (q *playQueue[T]) heldChunks() int { return len(q.chunks) - q.chunkHead }

// release returns every chunk once the queue is empty.
func (q *playQueue[T]) release() {
	for i := q.chunkHead; i < len(q.chunks); i++ {
		q.pool.Put(q.chunks[i])
		q.chunks[i] = nil
	}
	q.chunks, q.chunkHead, q.head = q.chunks[:0], 0, 0
}

// item returns the record for id, creating it (and evicting the oldest
// idle record) when needed.
func (q *playQueue[T]) item(id string) *itemRec {
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
func (q *playQueue[T]) push(id string, s []T) int {
	if len(s) == 0 {
		return 0
	}
	drop := 0
	if room := q.limit - q.n; len(s) > room {
		drop = len(s) - room
		s = s[:room]
		q.dropped += drop
	}
	if len(s) == 0 {
		return drop
	}
	for rest := s; len(rest) > 0; {
		tail := q.head + q.n // from the start of chunks[chunkHead]
		ci, off := q.chunkHead+tail/chunkSamples, tail%chunkSamples
		if ci == len(q.chunks) {
			q.addChunk()
			ci = len(q.chunks) - 1
		}
		c := copy(q.chunks[ci][off:], rest)
		rest = rest[c:]
		q.n += c
	}

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

// addChunk appends a chunk from the pool, reusing the played front of the
// chunk list before growing it.
func (q *playQueue[T]) addChunk() {
	if q.chunkHead > 0 && len(q.chunks) == cap(q.chunks) {
		k := copy(q.chunks, q.chunks[q.chunkHead:])
		clear(q.chunks[k:])
		q.chunks, q.chunkHead = q.chunks[:k], 0
	}
	c, ok := q.pool.Get().(*chunk[T])
	if !ok {
		c = new(chunk[T])
	}
	q.chunks = append(q.chunks, c)
}

// take moves up to len(dst) samples into dst, credits them to their items
// and calls q.done for each item whose queued audio has all been taken when
// the queue moves on to another item or runs empty. Each chunk played out
// goes back to the pool at once. It returns the number of samples taken
// and whether Flush ran since the previous take.
func (q *playQueue[T]) take(dst []T) (int, bool) {
	flushed := q.flushed
	q.flushed = false
	k := min(len(dst), q.n)
	if k == 0 {
		return 0, flushed
	}
	for got := 0; got < k; {
		c := copy(dst[got:k], q.chunks[q.chunkHead][q.head:])
		got += c
		q.head += c
		if q.head == chunkSamples {
			q.pool.Put(q.chunks[q.chunkHead])
			q.chunks[q.chunkHead] = nil
			q.chunkHead++
			q.head = 0
		}
	}
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
	if q.n == 0 {
		q.release()
	}
	return k, flushed
}

// flush drops all queued audio; played counters stay.
func (q *playQueue[T]) flush() {
	for _, sg := range q.segs[q.segHead:] {
		sg.item.queued -= sg.n
	}
	q.segs, q.segHead = q.segs[:0], 0
	q.n = 0
	q.flushed = true
	q.release()
}

// playedMs is how many ms of id were taken for sending.
func (q *playQueue[T]) playedMs(id string) int {
	if r, ok := q.itemByID[id]; ok {
		return r.played / q.perMs
	}
	return 0
}
