package jitter

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// op is one step of a scenario: a packet (ssrc, seq) or a flush.
type op struct {
	ssrc  uint32
	seq   uint16
	flush bool
	big   bool // oversized payload
}

func pkt(seq uint16) op               { return op{ssrc: 1, seq: seq} }
func pktS(ssrc uint32, seq uint16) op { return op{ssrc: ssrc, seq: seq} }

var flush = op{flush: true}

func payloadFor(ssrc uint32, seq uint16) []byte {
	b := make([]byte, 6)
	binary.BigEndian.PutUint32(b, ssrc)
	binary.BigEndian.PutUint16(b[4:], seq)
	return b
}

// run pushes the ops, draining after each, and renders what came out:
// the seq of each released packet, "L" for each hole, and the Push results.
func run(t *testing.T, b *Buffer, ops []op) (out []string, results []Result) {
	t.Helper()
	last := uint64(0)
	drain := func() {
		for {
			f, ok := b.Pop()
			if !ok {
				return
			}
			require.Greater(t, f.Index, last, "indexes strictly increase")
			last = f.Index
			if f.Lost {
				out = append(out, "L")
				continue
			}
			ssrc := binary.BigEndian.Uint32(f.Payload)
			seq := binary.BigEndian.Uint16(f.Payload[4:])
			require.Equal(t, f.Seq, seq, "payload belongs to its packet")
			out = append(out, fmt.Sprint(seq))
			if ssrc != 1 {
				out[len(out)-1] = fmt.Sprintf("%d/%d", ssrc, seq)
			}
		}
	}
	for _, o := range ops {
		if o.flush {
			b.Flush()
		} else {
			p := payloadFor(o.ssrc, o.seq)
			if o.big {
				p = make([]byte, 1000)
			}
			results = append(results, b.Push(Packet{SSRC: o.ssrc, Seq: o.seq, Timestamp: uint32(o.seq) * 160,
				PayloadType: 0, Payload: p}))
		}
		drain()
	}
	return out, results
}

func TestBuffer(t *testing.T) {
	A, R, D, L, P, X := Accepted, Restarted, Duplicate, Late, Probation, Dropped
	tests := []struct {
		name    string
		ops     []op
		want    string
		results []Result
		stats   Stats
	}{
		{"in order", []op{pkt(1), pkt(2), pkt(3)}, "1 2 3",
			[]Result{A, A, A}, Stats{Accepted: 3}},
		{"reorder", []op{pkt(1), pkt(3), pkt(2), pkt(4)}, "1 2 3 4",
			[]Result{A, A, A, A}, Stats{Accepted: 4}},
		{"loss declared after depth packets", []op{pkt(1), pkt(3), pkt(4), pkt(5), pkt(6)}, "1 L 3 4 5 6",
			[]Result{A, A, A, A, A}, Stats{Accepted: 5, Lost: 1}},
		{"two holes", []op{pkt(1), pkt(4), pkt(5), pkt(6), pkt(7)}, "1 L L 4 5 6 7",
			[]Result{A, A, A, A, A}, Stats{Accepted: 5, Lost: 2}},
		{"flush releases the tail", []op{pkt(1), pkt(3), flush}, "1 L 3",
			[]Result{A, A}, Stats{Accepted: 2, Lost: 1}},
		{"flush then continue", []op{pkt(1), pkt(3), flush, pkt(4)}, "1 L 3 4",
			[]Result{A, A, A}, Stats{Accepted: 3, Lost: 1}},
		{"duplicate released", []op{pkt(1), pkt(2), pkt(2), pkt(3)}, "1 2 3",
			[]Result{A, A, D, A}, Stats{Accepted: 3, Duplicates: 1}},
		{"duplicate held", []op{pkt(1), pkt(3), pkt(3), pkt(2)}, "1 2 3",
			[]Result{A, A, D, A}, Stats{Accepted: 3, Duplicates: 1}},
		{"late after declared lost", []op{pkt(1), pkt(3), pkt(4), pkt(5), pkt(2)}, "1 L 3 4 5",
			[]Result{A, A, A, A, L}, Stats{Accepted: 4, Lost: 1, Late: 1}},
		{"wrap", []op{pkt(65534), pkt(65535), pkt(0), pkt(1)}, "65534 65535 0 1",
			[]Result{A, A, A, A}, Stats{Accepted: 4}},
		{"wrap reordered", []op{pkt(65534), pkt(0), pkt(65535), pkt(1)}, "65534 65535 0 1",
			[]Result{A, A, A, A}, Stats{Accepted: 4}},
		{"loss across wrap", []op{pkt(65535), pkt(1), pkt(2), pkt(3)}, "65535 L 1 2 3",
			[]Result{A, A, A, A}, Stats{Accepted: 4, Lost: 1}},
		{"ssrc change", []op{pkt(1), pkt(2), pktS(2, 500), pktS(2, 501)}, "1 2 2/500 2/501",
			[]Result{A, A, R, A}, Stats{Accepted: 4, Restarts: 1}},
		{"ssrc change releases held first", []op{pkt(1), pkt(3), pktS(2, 9)}, "1 L 3 2/9",
			[]Result{A, A, R}, Stats{Accepted: 3, Lost: 1, Restarts: 1}},
		{"confirmed jump", []op{pkt(1), pkt(2), pkt(5000), pkt(5001), pkt(5002)}, "1 2 5000 5001 5002",
			[]Result{A, A, P, R, A}, Stats{Accepted: 5, Restarts: 1}},
		{"confirmed backward jump", []op{pkt(1000), pkt(10), pkt(11)}, "1000 10 11",
			[]Result{A, P, R}, Stats{Accepted: 3, Restarts: 1}},
		{"stray packet ignored", []op{pkt(1), pkt(2), pkt(5000), pkt(3)}, "1 2 3",
			[]Result{A, A, P, A}, Stats{Accepted: 3}},
		{"long loss under jump limit", []op{pkt(1), pkt(12), pkt(13), pkt(14)}, "1 L L L L L L L L L L 12 13 14",
			[]Result{A, A, A, A}, Stats{Accepted: 4, Lost: 10}},
		{"oversized payload", []op{pkt(1), {ssrc: 1, seq: 2, big: true}, pkt(3), flush}, "1 L 3",
			[]Result{A, X, A}, Stats{Accepted: 2, Lost: 1, Dropped: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(3, 160)
			require.NoError(t, err)
			out, results := run(t, b, tc.ops)
			require.Equal(t, tc.want, strings.Join(out, " "))
			require.Equal(t, tc.results, results)
			require.Equal(t, tc.stats, b.Stats())
			require.Zero(t, b.Pending())
		})
	}
}

func TestLongLossUsesOverflow(t *testing.T) {
	b, err := New(3, 160)
	require.NoError(t, err)
	// 1, then 3 held, then 90 (far beyond the ring), then 4: all in order.
	out, _ := run(t, b, []op{pkt(1), pkt(3), pkt(90), pkt(91), pkt(92)})
	require.Equal(t, "1 L 3 "+strings.Repeat("L ", 86)+"90 91 92", strings.Join(out, " "))
	require.Equal(t, uint64(87), b.Stats().Lost)
}

func TestDepthOne(t *testing.T) {
	b, err := New(1, 160)
	require.NoError(t, err)
	out, _ := run(t, b, []op{pkt(1), pkt(3), pkt(2)})
	require.Equal(t, "1 L 3", strings.Join(out, " "), "depth 1 gives up a hole at the next packet")
	require.Equal(t, 1, b.Depth())
}

func TestResetAndConfig(t *testing.T) {
	b, err := New(0, 160)
	require.NoError(t, err)
	require.Equal(t, DefaultDepth, b.Depth())
	_, _ = run(t, b, []op{pkt(1), pkt(3)})
	require.Equal(t, 1, b.Pending())
	b.Reset()
	require.Zero(t, b.Pending())
	require.Equal(t, uint64(1), b.Stats().Dropped)
	out, _ := run(t, b, []op{pkt(40000), pkt(40001)})
	require.Equal(t, "40000 40001", strings.Join(out, " "))

	for _, bad := range []struct{ depth, size int }{{-1, 160}, {MaxDepth + 1, 160}, {3, 0}} {
		_, err := New(bad.depth, bad.size)
		require.ErrorIs(t, err, ErrBadConfig)
	}
	require.Equal(t, "late", Late.String())
}

func TestNoAllocs(t *testing.T) {
	b, err := New(3, 160)
	require.NoError(t, err)
	payload := make([]byte, 160)
	seq := uint16(65000)
	allocs := testing.AllocsPerRun(1000, func() {
		// Pairs swapped, one loss every so often: every path runs.
		s := seq
		if seq%7 == 0 {
			s = seq + 1
		} else if seq%7 == 1 {
			s = seq - 1
		}
		seq++
		if seq%50 == 0 {
			seq++
		}
		b.Push(Packet{SSRC: 1, Seq: s, Payload: payload})
		for {
			if _, ok := b.Pop(); !ok {
				break
			}
		}
	})
	require.Zero(t, allocs)
}

// FuzzBuffer drives random sequences and checks the invariants: released
// indexes strictly increase, no (ssrc, seq) is released twice within a
// sequence space, payloads stay with their packets, and after a final
// Flush every accepted packet has come out exactly once.
func FuzzBuffer(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5}, uint8(3))
	f.Add([]byte{0, 2, 1, 3, 0xFF, 0x80, 4, 4, 4}, uint8(1))
	f.Add([]byte{200, 201, 10, 11, 250, 0, 0, 0}, uint8(5))
	f.Fuzz(func(t *testing.T, steps []byte, depth uint8) {
		b, err := New(int(depth%8)+1, 8)
		require.NoError(t, err)
		ssrc, seq := uint32(7), uint16(65500)
		last := uint64(0)
		type key struct {
			ssrc uint32
			seq  uint16
			gen  uint64
		}
		seen := map[key]bool{}
		released, pushDropped := uint64(0), uint64(0)
		drain := func() {
			for {
				fr, ok := b.Pop()
				if !ok {
					return
				}
				require.Greater(t, fr.Index, last)
				last = fr.Index
				if fr.Lost {
					continue
				}
				ps := binary.BigEndian.Uint32(fr.Payload)
				pq := binary.BigEndian.Uint16(fr.Payload[4:])
				require.Equal(t, fr.Seq, pq)
				k := key{ps, pq, b.Stats().Restarts}
				require.False(t, seen[k], "released twice: %v", k)
				seen[k] = true
				released++
			}
		}
		for _, s := range steps {
			switch {
			case s == 0xFF:
				b.Flush()
			case s == 0xFE:
				ssrc++
			case s >= 0xF0:
				seq += uint16(s) * 40 // large jump
			default:
				seq += uint16(int8(s<<1) >> 4) // −8…+7
			}
			if s < 0xFF {
				r := b.Push(Packet{SSRC: ssrc, Seq: seq, Payload: payloadFor(ssrc, seq)})
				if r == Dropped {
					pushDropped++
				}
			}
			drain()
		}
		b.Flush()
		drain()
		require.Zero(t, b.Pending())
		st := b.Stats()
		require.Equal(t, st.Accepted, released+(st.Dropped-pushDropped),
			"every accepted packet comes out once (or is counted dropped)")
	})
}

func BenchmarkPushPop(b *testing.B) {
	buf, err := New(3, 160)
	require.NoError(b, err)
	payload := make([]byte, 160)
	seq := uint16(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		buf.Push(Packet{SSRC: 1, Seq: seq, Timestamp: uint32(seq) * 160, Payload: payload})
		for {
			if _, ok := buf.Pop(); !ok {
				break
			}
		}
	}
}

// TestPayloadRoomFollowsPackets: the slots hold room for the payloads that
// came, not for the largest allowed (issue 10: 20 ms of G.711 in every slot
// instead of 60 ms), and a larger payload later moves what is held.
func TestPayloadRoomFollowsPackets(t *testing.T) {
	b, err := New(3, 480)
	require.NoError(t, err)
	require.Zero(t, cap(b.payload), "nothing before the first packet")
	small := func(seq uint16) []byte {
		p := make([]byte, 160)
		copy(p, payloadFor(1, seq))
		return p
	}
	require.Equal(t, Accepted, b.Push(Packet{SSRC: 1, Seq: 1, Payload: small(1)}))
	f, ok := b.Pop()
	require.True(t, ok)
	require.Equal(t, small(1), f.Payload)
	require.Equal(t, len(b.slots)*160, cap(b.payload))
	// 3 waits behind the hole at 2; then a 60 ms packet grows the room.
	require.Equal(t, Accepted, b.Push(Packet{SSRC: 1, Seq: 3, Payload: small(3)}))
	_, ok = b.Pop()
	require.False(t, ok)
	big := make([]byte, 480)
	copy(big, payloadFor(1, 2))
	require.Equal(t, Accepted, b.Push(Packet{SSRC: 1, Seq: 2, Payload: big}))
	require.Equal(t, len(b.slots)*480, cap(b.payload))
	f, ok = b.Pop()
	require.True(t, ok)
	require.Equal(t, big, f.Payload)
	f, ok = b.Pop()
	require.True(t, ok)
	require.Equal(t, small(3), f.Payload, "the held packet moved with the room")
}
