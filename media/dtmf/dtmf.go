package dtmf

import (
	"encoding/binary"
	"time"
)

const (
	// PayloadLen is the size of a telephone-event payload.
	PayloadLen = 4

	endBit     = 0x80 // E: last packet(s) of the event
	volumeMask = 0x3F // power level in −dBm0, 0…63

	// DefaultClockRate is the telephone-event clock: it must equal the audio
	// codec's (RFC 4733 §2.1), 8 kHz with G.711.
	DefaultClockRate = 8000
	// DefaultTimeout reports an event whose end packets were all lost this
	// long after its last packet. Senders refresh an ongoing event about
	// every 50 ms (§2.5.1.2), so 300 ms of silence means it ended.
	DefaultTimeout = 300 * time.Millisecond
)

// Payload is an RFC 4733 §2.3 telephone-event payload.
type Payload struct {
	Event    uint8  // 0–9, 10 = *, 11 = #, 12–15 = A–D
	End      bool   // E bit
	Volume   uint8  // 0…63, −dBm0
	Duration uint16 // in timestamp units since the event's timestamp
}

// Decode parses a telephone-event payload; trailing bytes (a second event
// in the same packet is not used for DTMF) are ignored.
func Decode(b []byte) (Payload, error) {
	if len(b) < PayloadLen {
		return Payload{}, ErrShortPayload
	}
	return Payload{
		Event:    b[0],
		End:      b[1]&endBit != 0,
		Volume:   b[1] & volumeMask,
		Duration: binary.BigEndian.Uint16(b[2:4]),
	}, nil
}

// Encode writes p into dst[:4] (R bit zero, volume masked to 6 bits).
func (p Payload) Encode(dst []byte) (int, error) {
	if len(dst) < PayloadLen {
		return 0, ErrShortBuffer
	}
	dst[0] = p.Event
	dst[1] = p.Volume & volumeMask
	if p.End {
		dst[1] |= endBit
	}
	binary.BigEndian.PutUint16(dst[2:4], p.Duration)
	return PayloadLen, nil
}

const keys = "0123456789*#ABCD"

// Digit is the key of a DTMF event (RFC 4733 §3.2).
func Digit(event uint8) (rune, bool) {
	if int(event) >= len(keys) {
		return 0, false
	}
	return rune(keys[event]), true
}

// EventCode is the event number of a key ('a'–'d' accepted too).
func EventCode(r rune) (uint8, bool) {
	if r >= 'a' && r <= 'd' {
		r -= 'a' - 'A'
	}
	for i := range len(keys) {
		if rune(keys[i]) == r {
			return uint8(i), true
		}
	}
	return 0, false
}

// Press is one reported key press.
type Press struct {
	Digit      rune
	Event      uint8
	Timestamp  uint32 // RTP timestamp of the event (its first segment)
	Duration   uint32 // timestamp units, all segments
	DurationMs int
}

// Detector turns telephone-event packets into presses. The zero value uses
// DefaultClockRate and DefaultTimeout.
type Detector struct {
	ClockRate int
	Timeout   time.Duration

	active   bool
	event    uint8
	startTS  uint32    // timestamp of the first segment (the press's identity)
	segTS    uint32    // timestamp of the current segment
	segDur   uint32    // duration reached in the current segment
	base     uint32    // duration of the finished segments
	lastSeen time.Time // when the last packet of the active event arrived

	// recent holds the segment timestamps of the last reported events, so
	// their redundant end packets (and late copies) are ignored.
	recent  [4]uint32
	nRecent int
	iRecent int
}

// Reset forgets any event in progress and the recent ones (new SSRC).
func (d *Detector) Reset() {
	cr, to := d.ClockRate, d.Timeout
	*d = Detector{ClockRate: cr, Timeout: to}
}

// Packet feeds one telephone-event packet with its RTP timestamp and
// appends any press it completes to dst (at most two: a previous event whose
// end was lost, and this one).
func (d *Detector) Packet(dst []Press, ts uint32, p Payload, now time.Time) []Press {
	if p.Event >= uint8(len(keys)) || d.isRecent(ts) {
		return dst
	}
	if d.active && ts == d.segTS && p.Event == d.event {
		d.segDur = max(d.segDur, uint32(p.Duration))
		d.lastSeen = now
		if p.End {
			dst = d.report(dst)
		}
		return dst
	}
	if d.active {
		if d.continues(ts, p) {
			// §2.5.1.3: a long event goes on in a new segment whose timestamp
			// is the old one plus the old segment's duration.
			d.base += d.segDur
			d.segTS, d.segDur, d.lastSeen = ts, uint32(p.Duration), now
			if p.End {
				dst = d.report(dst)
			}
			return dst
		}
		// All end packets of the previous event were lost.
		dst = d.report(dst)
	}
	d.active = true
	d.event, d.startTS, d.segTS = p.Event, ts, ts
	d.segDur, d.base, d.lastSeen = uint32(p.Duration), 0, now
	if p.End {
		// The start packets were lost (or it is a one-packet event).
		dst = d.report(dst)
	}
	return dst
}

// continues says whether packet p at ts is the next segment of the active
// event: same key, timestamp one full segment later (within a packet
// interval), and the old segment long enough to have needed splitting.
func (d *Detector) continues(ts uint32, p Payload) bool {
	if p.Event != d.event || d.segDur < 0xFFFF/2 {
		return false
	}
	slack := uint32(d.clockRate() / 50) // one 20 ms packet interval
	off := ts - d.segTS
	return off+slack >= d.segDur && off <= d.segDur+slack
}

// Expire reports the active event if its end packets never came within the
// timeout; call it when no packet arrived for a while.
func (d *Detector) Expire(dst []Press, now time.Time) []Press {
	if d.active && now.Sub(d.lastSeen) >= d.timeout() {
		dst = d.report(dst)
	}
	return dst
}

// Deadline is when Expire would report the active event; false if none.
func (d *Detector) Deadline() (time.Time, bool) {
	if !d.active {
		return time.Time{}, false
	}
	return d.lastSeen.Add(d.timeout()), true
}

func (d *Detector) report(dst []Press) []Press {
	d.active = false
	d.remember(d.segTS)
	if d.startTS != d.segTS {
		d.remember(d.startTS)
	}
	dur := d.base + d.segDur
	r, _ := Digit(d.event)
	return append(dst, Press{Digit: r, Event: d.event, Timestamp: d.startTS, Duration: dur,
		DurationMs: int(uint64(dur) * 1000 / uint64(d.clockRate()))})
}

func (d *Detector) remember(ts uint32) {
	if d.isRecent(ts) {
		return
	}
	d.recent[d.iRecent] = ts
	d.iRecent = (d.iRecent + 1) % len(d.recent)
	d.nRecent = min(d.nRecent+1, len(d.recent))
}

func (d *Detector) isRecent(ts uint32) bool {
	for i := range d.nRecent {
		if d.recent[i] == ts {
			return true
		}
	}
	return false
}

func (d *Detector) clockRate() int {
	if d.ClockRate <= 0 {
		return DefaultClockRate
	}
	return d.ClockRate
}

func (d *Detector) timeout() time.Duration {
	if d.Timeout <= 0 {
		return DefaultTimeout
	}
	return d.Timeout
}
