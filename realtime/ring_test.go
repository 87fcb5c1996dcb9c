package realtime

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAppendAudioPathAllocs proves the caller-audio path allocates nothing
// in steady state: AppendAudio's copy into the ring, the writer's take of a
// batch and its encode into the reused event buffer (style §1.7 rule 10).
func TestAppendAudioPathAllocs(t *testing.T) {
	for _, tc := range []struct {
		f       AudioFormat
		frameMs int
	}{{FormatPCMU, 20}, {FormatPCM24, 20}, {FormatPCMU, 60}, {FormatPCM24, 60}, {FormatPCM24, 40}, {FormatPCMU, 100}, {FormatPCM24, 100}} {
		f := tc.f
		c := newConn(DialConfig{}, DialectGA, f, slog.New(slog.DiscardHandler), time.Second)
		// 20 ms frames, and the media stream's uplink chunks (2 × 60 ms
		// exceeds coalesceMs: they go one per append; 100 ms is the
		// default, two of them the writer one chunk behind).
		frame := make([]byte, tc.frameMs*f.BytesPerMs())
		n := int(c.coalesce.Load())
		raw, out := make([]byte, 0, n), make([]byte, 0, InputAudioEventLen(n))
		queued, appends := true, 0
		allocs := testing.AllocsPerRun(200, func() {
			first := c.AppendAudio(frame)
			second := c.AppendAudio(frame)
			queued = first && second && queued
			for appends = 0; c.ring.pending(noBarrier); appends++ {
				raw = c.ring.take(raw[:0], n, noBarrier)
				out = AppendInputAudioEvent(out[:0], raw)
			}
		})
		c.cancel()
		require.True(t, queued, "%s: a frame was dropped", f)
		if 2*tc.frameMs <= coalesceMs {
			require.Equal(t, 1, appends, "%s: both frames go in one append", f)
			require.Equal(t, InputAudioEventLen(2*len(frame)), len(out), "%s", f)
		} else {
			require.Equal(t, 2, appends, "%s: each chunk goes in its own append", f)
			require.Equal(t, InputAudioEventLen(len(frame)), len(out), "%s", f)
		}
		require.Zero(t, allocs, "%s", f)
		require.Zero(t, c.DroppedAudioFrames())
	}
}

// TestAudioRing: frames of any size go out whole and in order across the
// wrap of the circular storage; barriers count frames; a burst larger than
// the preallocated storage is kept (a swap's replay) and the queue returns
// to the preallocated storage once drained; the frame bound refuses.
func TestAudioRing(t *testing.T) {
	frame := func(n int, v byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = v + byte(i)
		}
		return b
	}
	t.Run("wraps in order", func(t *testing.T) {
		var r audioRing
		r.init(1000)
		var want, got []byte
		for i := range 200 {
			f := frame(120+i%7*40, byte(i)) // 120..360 bytes: starts everywhere in the ring
			require.True(t, r.push(f))
			want = append(want, f...)
			if i%2 == 1 {
				got = r.take(got, 1<<20, noBarrier)
			}
		}
		got = r.take(got, 1<<20, noBarrier)
		require.Equal(t, want, got)
		require.Len(t, r.buf, 1000, "never grew: at most two frames were queued")
	})
	t.Run("take stops at maxBytes and barrier, frames whole", func(t *testing.T) {
		var r audioRing
		r.init(1000)
		for i := range 5 {
			require.True(t, r.push(frame(300, byte(10*i))))
		}
		out := r.take(nil, 700, noBarrier)
		require.Equal(t, append(frame(300, 0), frame(300, 10)...), out, "a third frame would pass 700 bytes")
		out = r.take(nil, 100, noBarrier)
		require.Equal(t, frame(300, 20), out, "one frame larger than maxBytes still goes")
		barrier := r.mark() - 1 // the last frame was queued after the barrier
		require.True(t, r.pending(barrier))
		out = r.take(nil, 1<<20, barrier)
		require.Equal(t, frame(300, 30), out)
		require.False(t, r.pending(barrier))
		require.True(t, r.pending(noBarrier))
	})
	t.Run("burst beyond the storage is kept, then storage shrinks back", func(t *testing.T) {
		var r audioRing
		r.init(audioRingMs * 8) // G.711: 8 bytes a millisecond
		var want []byte
		for i := range 30 { // 30 s in 1 s appends, as failover replays a swap
			f := frame(8000, byte(i))
			require.True(t, r.push(f), "append %d", i)
			want = append(want, f...)
		}
		require.Greater(t, len(r.buf), audioRingMs*8)
		var got []byte
		for r.pending(noBarrier) {
			got = r.take(got, 800, noBarrier)
		}
		require.Equal(t, want, got)
		require.Len(t, r.buf, audioRingMs*8)
		require.Equal(t, &r.base[0], &r.buf[0], "back on the preallocated storage")
	})
	t.Run("frame bound", func(t *testing.T) {
		var r audioRing
		r.init(100)
		for range audioRingFrames {
			require.True(t, r.push([]byte{1, 2}))
		}
		require.False(t, r.push([]byte{1, 2}))
		require.Len(t, r.take(nil, 4, noBarrier), 4)
		require.True(t, r.push([]byte{3, 4}))
	})
}
