package jitter

import (
	"fmt"
	"math/bits"
)

const (
	// DefaultDepth is the reorder window in packets (60 ms of 20 ms audio).
	DefaultDepth = 3
	// MaxDepth bounds the window; more is a playout buffer, not a reorder
	// window.
	MaxDepth = 32
	// JumpLimit is the largest sequence step, forwards or backwards, taken as
	// the same sequence. A larger step is a restart, once the next packet
	// confirms it (RFC 3550 §A.1 uses MAX_DROPOUT/MAX_MISORDER the same way;
	// we use a tighter bound because our window is packets, not seconds).
	JumpLimit = 100

	// firstIndex is the index given to the first packet: far enough from 0
	// that packets older than the first one do not underflow.
	firstIndex = 1 << 16
)

// Packet is what Push needs from an RTP packet (RFC 3550 §5.1).
type Packet struct {
	SSRC        uint32
	Seq         uint16
	Timestamp   uint32
	PayloadType uint8
	Marker      bool
	Payload     []byte // copied by Push
}

// Frame is one position of the sequence, released in order by Pop.
type Frame struct {
	// Index is the extended sequence number: +1 per packet, across 16-bit
	// wrap-around and across restarts.
	Index       uint64
	Seq         uint16
	Timestamp   uint32
	PayloadType uint8
	Marker      bool
	// Lost: no packet arrived for this position in time; only Index is set.
	// The caller conceals one packet's worth of audio.
	Lost bool
	// Payload aliases the buffer's slot: valid until the next Push or Reset.
	Payload []byte
}

// Result says what Push did with a packet.
type Result uint8

const (
	// Accepted: stored for release in order.
	Accepted Result = iota
	// Restarted: accepted, and the sequence space restarted (new SSRC or a
	// confirmed jump); packets held from before are released first.
	Restarted
	// Duplicate: this sequence number is already held or was released.
	Duplicate
	// Late: its position was already given up as lost (or is too old to tell).
	Late
	// Probation: a large jump, held until the next packet confirms it.
	Probation
	// Dropped: payload larger than the slots, or the caller did not drain
	// with Pop and there is no room.
	Dropped
)

// String names the result for logs.
func (r Result) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case Restarted:
		return "restarted"
	case Duplicate:
		return "duplicate"
	case Late:
		return "late"
	case Probation:
		return "probation"
	case Dropped:
		return "dropped"
	default:
		return fmt.Sprintf("result(%d)", uint8(r))
	}
}

// Stats are the buffer's counters since New.
type Stats struct {
	Accepted, Duplicates, Late, Lost, Restarts, Dropped uint64
}

type slot struct {
	full   bool
	marker bool
	pt     uint8
	seq    uint16
	ts     uint32
	n      int
	index  uint64
}

// Buffer is the reorder window. Create it with New.
type Buffer struct {
	depth  int
	maxLen int
	mask   uint64 // ring size − 1 (ring size is a power of two)
	slots  []slot // ring slots, then overflow, then probe
	// payload holds the slots' payloads, slot i at i·stride. It is made
	// by the first Push for that packet's size and grown (moving what is
	// held) only when a larger payload comes, so a call's 20 ms packets
	// do not hold room for maxLen in every slot (issue 10: 2.9 KB instead
	// of 8.6 KB for G.711 at the default depth).
	payload []byte
	stride  int
	overIx  int // index of the overflow slot
	probeIx int // index of the probation slot

	started bool
	ssrc    uint32
	highSeq uint16 // 16-bit sequence number of the highest index
	highest uint64 // highest index accepted (ring or overflow)
	next    uint64 // next index to release
	flushTo uint64 // indexes below this are released without waiting
	// released has bit i set when index next−1−i was released as a real
	// packet, to tell a duplicate from a late packet.
	released uint64

	stats Stats
}

// New makes a buffer holding up to depth packets beyond a hole (0 means
// DefaultDepth) with payloads of up to maxPayload bytes.
func New(depth, maxPayload int) (*Buffer, error) {
	if depth == 0 {
		depth = DefaultDepth
	}
	if depth < 1 || depth > MaxDepth || maxPayload < 1 || maxPayload > 1<<16 {
		return nil, fmt.Errorf("jitter: depth %d, max payload %d: %w", depth, maxPayload, ErrBadConfig)
	}
	// Held indexes span at most depth+1 (a hole plus depth packets) plus the
	// two packets of a confirmed restart; round up to a power of two.
	ring := 1 << bits.Len(uint(2*depth+2))
	b := &Buffer{
		depth:   depth,
		maxLen:  maxPayload,
		mask:    uint64(ring - 1),
		slots:   make([]slot, ring+2),
		overIx:  ring,
		probeIx: ring + 1,
	}
	return b, nil
}

// Depth is the configured reorder window in packets.
func (b *Buffer) Depth() int { return b.depth }

// Stats returns the counters.
func (b *Buffer) Stats() Stats { return b.stats }

// Reset forgets everything, including held packets (counted as dropped).
func (b *Buffer) Reset() {
	for i := range b.slots {
		if b.slots[i].full && i != b.probeIx {
			b.stats.Dropped++
		}
		b.slots[i] = slot{}
	}
	b.started = false
	b.released = 0
}

// Pending is the number of packets held (not counting a probation packet).
func (b *Buffer) Pending() int {
	n := 0
	for i := range b.slots {
		if b.slots[i].full && i != b.probeIx {
			n++
		}
	}
	return n
}

// Flush makes every held packet releasable without waiting for the holes
// before it, which Pop then reports as lost. Call it when packets stop
// arriving, so the tail of the speech is not held behind a hole forever.
func (b *Buffer) Flush() {
	if b.started {
		b.flushTo = b.highest + 1
	}
}

// Push offers one packet. The caller must drain Pop after each Push.
func (b *Buffer) Push(p Packet) Result {
	if len(p.Payload) > b.maxLen {
		b.stats.Dropped++
		return Dropped
	}
	if !b.started {
		b.next, b.flushTo = firstIndex, 0
		b.start(p, firstIndex)
		return Accepted
	}
	if p.SSRC != b.ssrc {
		// RFC 3550 §8.2: a new SSRC is a new sequence space.
		b.restart(p)
		return Restarted
	}
	delta := int64(int16(p.Seq - b.highSeq))
	if delta > JumpLimit || delta < -JumpLimit {
		return b.jump(p)
	}
	b.slots[b.probeIx].full = false // an in-sequence packet ends any probation
	return b.place(p, uint64(int64(b.highest)+delta))
}

// start begins a sequence space with p at index at; b.next is already set.
func (b *Buffer) start(p Packet, at uint64) {
	b.started = true
	b.ssrc = p.SSRC
	b.highest, b.highSeq = at, p.Seq
	b.slots[b.probeIx].full = false
	b.store(int(at&b.mask), p, at)
	b.stats.Accepted++
}

// restart starts a new sequence space after everything held, which becomes
// releasable at once.
func (b *Buffer) restart(p Packet) {
	at := b.highest + 1
	// A confirmed jump stores two packets (at and at+1).
	if b.slots[b.overIx].full || at+1-b.next > b.mask {
		// The old packets cannot all stay in the ring with the new ones.
		b.dropHeld()
		b.next = at
	}
	b.flushTo = at
	b.stats.Restarts++
	b.start(p, at)
}

// jump handles a sequence step beyond JumpLimit: hold the packet until the
// next one confirms the new sequence (RFC 3550 §A.1 probation), so a single
// stray packet does not throw the stream away.
func (b *Buffer) jump(p Packet) Result {
	pr := &b.slots[b.probeIx]
	if pr.full && p.Seq == pr.seq+1 {
		held := b.probePacket()
		b.restart(held)
		b.highest, b.highSeq = b.highest+1, p.Seq
		b.store(int(b.highest&b.mask), p, b.highest)
		b.stats.Accepted++
		return Restarted
	}
	if pr.full && p.Seq == pr.seq {
		b.stats.Duplicates++
		return Duplicate
	}
	b.store(b.probeIx, p, 0)
	return Probation
}

// probePacket is the held probation packet as a Packet (payload aliasing its
// slot, copied again by store into a ring slot, which never overlaps).
func (b *Buffer) probePacket() Packet {
	pr := &b.slots[b.probeIx]
	pr.full = false
	off := b.probeIx * b.stride
	return Packet{SSRC: b.ssrc, Seq: pr.seq, Timestamp: pr.ts, PayloadType: pr.pt,
		Marker: pr.marker, Payload: b.payload[off : off+pr.n]}
}

// place stores an in-sequence packet at index ix.
func (b *Buffer) place(p Packet, ix uint64) Result {
	if ix < b.next {
		if d := b.next - 1 - ix; d < 64 && b.released&(1<<d) != 0 {
			b.stats.Duplicates++
			return Duplicate
		}
		b.stats.Late++
		return Late
	}
	if ix-b.next > b.mask {
		// Far ahead of the held window (a long loss): park it until Pop has
		// released the positions before it.
		ov := &b.slots[b.overIx]
		if ov.full {
			if ov.index == ix {
				b.stats.Duplicates++
				return Duplicate
			}
			b.stats.Dropped++
			return Dropped
		}
		b.store(b.overIx, p, ix)
	} else {
		s := &b.slots[ix&b.mask]
		if s.full {
			// Slots map one-to-one onto [next, next+ring), so a full slot
			// holds this very index.
			b.stats.Duplicates++
			return Duplicate
		}
		if ov := &b.slots[b.overIx]; ov.full && ov.index == ix {
			b.stats.Duplicates++
			return Duplicate
		}
		b.store(int(ix&b.mask), p, ix)
	}
	if ix > b.highest {
		b.highest, b.highSeq = ix, p.Seq
	}
	b.stats.Accepted++
	return Accepted
}

func (b *Buffer) store(i int, p Packet, ix uint64) {
	if len(p.Payload) > b.stride {
		b.grow(len(p.Payload))
	}
	s := &b.slots[i]
	*s = slot{full: true, marker: p.Marker, pt: p.PayloadType, seq: p.Seq, ts: p.Timestamp,
		n: len(p.Payload), index: ix}
	copy(b.payload[i*b.stride:], p.Payload)
}

// grow makes the slots' payload room at least need bytes (at most maxLen,
// at least twice the old room, so a stream's payload sizes cost a few
// allocations at its start) and moves the held payloads into it.
func (b *Buffer) grow(need int) {
	stride := min(b.maxLen, max(need, 2*b.stride))
	payload := make([]byte, len(b.slots)*stride)
	for i := range b.slots {
		if s := &b.slots[i]; s.full {
			copy(payload[i*stride:], b.payload[i*b.stride:i*b.stride+s.n])
		}
	}
	b.payload, b.stride = payload, stride
}

// dropHeld discards the ring and overflow contents.
func (b *Buffer) dropHeld() {
	for i := 0; i <= b.overIx; i++ {
		if b.slots[i].full {
			b.slots[i].full = false
			b.stats.Dropped++
		}
	}
}

// Pop releases the next position in order: a packet, or a hole reported as
// Lost once Depth packets beyond it have arrived (or after Flush). It
// returns false when the next position must still wait.
func (b *Buffer) Pop() (Frame, bool) {
	if !b.started || b.next > b.highest {
		return Frame{}, false
	}
	if ov := &b.slots[b.overIx]; ov.full && ov.index-b.next <= b.mask {
		// The window has caught up with the parked packet: move it in.
		i := int(ov.index & b.mask)
		b.slots[i] = *ov
		copy(b.payload[i*b.stride:i*b.stride+ov.n], b.payload[b.overIx*b.stride:])
		ov.full = false
	}
	i := int(b.next & b.mask)
	if s := &b.slots[i]; s.full && s.index == b.next {
		s.full = false
		f := Frame{Index: s.index, Seq: s.seq, Timestamp: s.ts, PayloadType: s.pt,
			Marker: s.marker, Payload: b.payload[i*b.stride : i*b.stride+s.n]}
		b.advance(true)
		return f, true
	}
	if b.highest >= b.next+uint64(b.depth) || b.next < b.flushTo {
		f := Frame{Index: b.next, Lost: true}
		b.stats.Lost++
		b.advance(false)
		return f, true
	}
	return Frame{}, false
}

func (b *Buffer) advance(real bool) {
	b.next++
	b.released <<= 1
	if real {
		b.released |= 1
	}
}
