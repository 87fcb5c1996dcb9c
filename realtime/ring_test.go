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
	for _, f := range []AudioFormat{FormatPCMU, FormatPCM24} {
		c := newConn(DialConfig{}, DialectGA, f, slog.New(slog.DiscardHandler), time.Second)
		frame := make([]byte, 20*f.BytesPerMs())
		n := int(c.coalesce.Load())
		raw, out := make([]byte, 0, n), make([]byte, 0, InputAudioEventLen(n))
		queued := true
		allocs := testing.AllocsPerRun(200, func() {
			first := c.AppendAudio(frame)
			second := c.AppendAudio(frame)
			queued = first && second && queued
			raw = c.ring.take(raw[:0], n, noBarrier)
			out = AppendInputAudioEvent(out[:0], raw)
		})
		c.cancel()
		require.True(t, queued, "%s: a frame was dropped", f)
		require.Equal(t, InputAudioEventLen(2*len(frame)), len(out), "%s: both frames go in one append", f)
		require.Zero(t, allocs, "%s", f)
		require.Zero(t, c.DroppedAudioFrames())
	}
}
