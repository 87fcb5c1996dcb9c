package dtmf

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecodeEncode(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want Payload
	}{
		{"start of 5", []byte{5, 10, 0x00, 0xA0}, Payload{Event: 5, Volume: 10, Duration: 160}},
		{"end of #", []byte{11, 0x80 | 7, 0x03, 0x20}, Payload{Event: 11, End: true, Volume: 7, Duration: 800}},
		{"R bit ignored", []byte{1, 0x40 | 0x80 | 63, 0xFF, 0xFF}, Payload{Event: 1, End: true, Volume: 63, Duration: 65535}},
		{"trailing bytes ignored", []byte{12, 0, 0, 1, 9, 9}, Payload{Event: 12, Duration: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.raw)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			var b [4]byte
			n, err := got.Encode(b[:])
			require.NoError(t, err)
			require.Equal(t, 4, n)
			want := [4]byte(tc.raw[:4])
			want[1] &^= 0x40 // R is zero on send
			require.Equal(t, want, b)
		})
	}
	_, err := Decode([]byte{1, 2, 3})
	require.ErrorIs(t, err, ErrShortPayload)
	_, err = Payload{}.Encode(make([]byte, 3))
	require.ErrorIs(t, err, ErrShortBuffer)
}

func TestDigits(t *testing.T) {
	for i, r := range "0123456789*#ABCD" {
		d, ok := Digit(uint8(i))
		require.True(t, ok)
		require.Equal(t, r, d)
		e, ok := EventCode(r)
		require.True(t, ok)
		require.Equal(t, uint8(i), e)
	}
	e, ok := EventCode('c')
	require.True(t, ok)
	require.Equal(t, uint8(14), e)
	_, ok = Digit(16)
	require.False(t, ok)
	_, ok = EventCode('x')
	require.False(t, ok)
}

// pk is one telephone-event packet as a sender emits it.
type pk struct {
	ts uint32
	p  Payload
}

// keyPress renders an RFC 4733 key press as sent: start/update packets every
// 20 ms (duration 160, 320, …) and the end packet three times.
func keyPress(event uint8, ts uint32, updates int) []pk {
	var out []pk
	for i := 1; i <= updates; i++ {
		out = append(out, pk{ts, Payload{Event: event, Volume: 10, Duration: uint16(160 * i)}})
	}
	end := Payload{Event: event, End: true, Volume: 10, Duration: uint16(160 * (updates + 1))}
	return append(out, pk{ts, end}, pk{ts, end}, pk{ts, end})
}

// drop removes packets by index from one press (0 = first update; the three
// end packets are the last three).
func drop(ps []pk, idx ...int) []pk {
	out := []pk{}
outer:
	for i, p := range ps {
		for _, j := range idx {
			if j == i || (j < 0 && len(ps)+j == i) {
				continue outer
			}
		}
		out = append(out, p)
	}
	return out
}

func TestDetectorLossPatterns(t *testing.T) {
	// Each digit is 5 updates + 3 ends = 8 packets; 1000 timestamp units apart.
	digits := "159#*0D"
	press := func(i int) []pk {
		e, _ := EventCode(rune(digits[i]))
		return keyPress(e, uint32(1000+8000*i), 5)
	}
	tests := []struct {
		name    string
		mangle  func(i int, ps []pk) []pk
		wantDur int // ms, for every digit
		expire  bool
	}{
		{"no loss", func(_ int, ps []pk) []pk { return ps }, 120, false},
		{"first packet lost", func(_ int, ps []pk) []pk { return drop(ps, 0) }, 120, false},
		{"all start packets lost", func(_ int, ps []pk) []pk { return drop(ps, 0, 1, 2, 3, 4) }, 120, false},
		{"first end lost", func(_ int, ps []pk) []pk { return drop(ps, 5) }, 120, false},
		{"two ends lost", func(_ int, ps []pk) []pk { return drop(ps, 5, 6) }, 120, false},
		{"all ends lost", func(_ int, ps []pk) []pk { return drop(ps, -1, -2, -3) }, 100, true},
		{"only the last end survives", func(_ int, ps []pk) []pk { return drop(ps, 0, 1, 2, 3, 4, 5, 6) }, 120, false},
		{"end reordered before updates", func(_ int, ps []pk) []pk {
			return append([]pk{ps[5]}, append(ps[:5:5], ps[6:]...)...)
		}, 120, false},
		{"every packet duplicated", func(_ int, ps []pk) []pk {
			out := []pk{}
			for _, p := range ps {
				out = append(out, p, p)
			}
			return out
		}, 120, false},
		{"alternate digits lose all ends", func(i int, ps []pk) []pk {
			if i%2 == 0 {
				return drop(ps, -1, -2, -3)
			}
			return ps
		}, -1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Detector
			var got []Press
			now := time.Unix(100, 0)
			for i := range len(digits) {
				for _, p := range tc.mangle(i, press(i)) {
					got = d.Packet(got, p.ts, p.p, now)
					now = now.Add(20 * time.Millisecond)
				}
				now = now.Add(100 * time.Millisecond) // between key presses
			}
			if tc.expire {
				got = d.Expire(got, now) // too early: nothing
				_, ok := d.Deadline()
				require.True(t, ok)
				now = now.Add(DefaultTimeout)
				got = d.Expire(got, now)
			}
			_, ok := d.Deadline()
			require.False(t, ok, "nothing left pending")
			var s strings.Builder
			for i, p := range got {
				s.WriteRune(p.Digit)
				require.Equal(t, uint32(1000+8000*i), p.Timestamp)
				if tc.wantDur > 0 {
					require.Equal(t, tc.wantDur, p.DurationMs, "digit %c", p.Digit)
				}
			}
			require.Equal(t, digits, s.String())
		})
	}
}

func TestDetectorTimeoutNotBeforeDeadline(t *testing.T) {
	var d Detector
	now := time.Unix(0, 0)
	ps := drop(keyPress(3, 500, 4), -1, -2, -3)
	var got []Press
	for _, p := range ps {
		got = d.Packet(got, p.ts, p.p, now)
	}
	deadline, ok := d.Deadline()
	require.True(t, ok)
	require.Empty(t, d.Expire(got, deadline.Add(-time.Millisecond)))
	got = d.Expire(got, deadline)
	require.Len(t, got, 1)
	require.Equal(t, '3', got[0].Digit)
	// A late end packet of the reported event is not a second press.
	require.Empty(t, d.Packet(nil, 500, Payload{Event: 3, End: true, Duration: 800}, deadline))
}

func TestDetectorSegmentedLongEvent(t *testing.T) {
	// A 10 s press of '7': segment 1 at ts 0 runs to 0xFFFF, segment 2 starts
	// at ts 0xFFFF (§2.5.1.3) and ends.
	var d Detector
	now := time.Unix(0, 0)
	var got []Press
	got = d.Packet(got, 0, Payload{Event: 7, Duration: 160}, now)
	got = d.Packet(got, 0, Payload{Event: 7, Duration: 0xFFFF}, now)
	got = d.Packet(got, 0xFFFF, Payload{Event: 7, Duration: 160}, now)
	got = d.Packet(got, 0xFFFF, Payload{Event: 7, End: true, Duration: 14465}, now)
	got = d.Packet(got, 0xFFFF, Payload{Event: 7, End: true, Duration: 14465}, now)
	require.Len(t, got, 1)
	require.Equal(t, '7', got[0].Digit)
	require.Equal(t, 10000, got[0].DurationMs)

	// A different key at a new timestamp is a new press even if adjacent.
	d.Reset()
	got = got[:0]
	got = d.Packet(got, 0, Payload{Event: 7, Duration: 0xFFFF}, now)
	got = d.Packet(got, 0xFFFF, Payload{Event: 8, End: true, Duration: 800}, now)
	require.Equal(t, []rune{'7', '8'}, []rune{got[0].Digit, got[1].Digit})
}

func TestDetectorIgnoresNonDigits(t *testing.T) {
	var d Detector
	require.Empty(t, d.Packet(nil, 10, Payload{Event: 16, End: true, Duration: 800}, time.Now()))
	_, ok := d.Deadline()
	require.False(t, ok)
}

func TestNoAllocs(t *testing.T) {
	var d Detector
	buf := make([]Press, 0, 2)
	now := time.Unix(0, 0)
	ts := uint32(0)
	raw := []byte{5, 0x80 | 10, 0x03, 0x20}
	allocs := testing.AllocsPerRun(200, func() {
		ts += 8000
		p, _ := Decode(raw)
		buf = d.Packet(buf[:0], ts, Payload{Event: 5, Duration: 160}, now)
		buf = d.Packet(buf[:0], ts, p, now)
		buf = d.Expire(buf[:0], now)
	})
	require.Zero(t, allocs)
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{5, 10, 0, 160})
	f.Add([]byte{11, 0xFF, 0xFF, 0xFF, 1})
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if len(b) < 4 {
			require.ErrorIs(t, err, ErrShortPayload)
			return
		}
		require.NoError(t, err)
		var out [4]byte
		_, err = p.Encode(out[:])
		require.NoError(t, err)
		require.Equal(t, [4]byte{b[0], b[1] &^ 0x40, b[2], b[3]}, out)
		// The detector takes anything without reporting a press (timestamp
		// and key) twice.
		var d Detector
		type key struct {
			ts uint32
			ev uint8
		}
		seen := map[key]bool{}
		now := time.Unix(0, 0)
		for i := 0; i+4 <= len(b); i += 4 {
			q, _ := Decode(b[i:])
			ts := uint32(b[i]&3) * 1000
			for _, pr := range d.Packet(nil, ts, q, now) {
				k := key{pr.Timestamp, pr.Event}
				require.False(t, seen[k], "reported twice")
				seen[k] = true
				require.Less(t, pr.Event, uint8(16))
			}
			now = now.Add(time.Second)
		}
	})
}

func BenchmarkDetector(b *testing.B) {
	var d Detector
	buf := make([]Press, 0, 2)
	now := time.Unix(0, 0)
	raw := []byte{5, 10, 0, 160}
	b.ReportAllocs()
	for b.Loop() {
		p, _ := Decode(raw)
		buf = d.Packet(buf[:0], 1234, p, now)
	}
}
