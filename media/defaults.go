package media

import (
	"fmt"
	"time"
)

// DefaultComfortNoiseDBov is the comfort-noise level (dBov) a Stream sends
// while nothing plays when its config leaves the level 0; the binary's
// rtp.comfort_noise_dbov defaults to it.
const DefaultComfortNoiseDBov = defaultComfortNoiseDB

// DefaultUplinkChunk is how much caller audio a Stream hands its AudioSink at
// once in the binary (rtp.uplink_chunk): five 20 ms frames, so the
// conversation and the realtime writer wake, and the WebSocket carries one
// input_audio_buffer.append, once per 100 ms instead of every 20 ms, for up
// to 80 ms more before the model hears the caller (and a partial chunk goes
// at once when the caller goes quiet). On Linux the clock shard also reads
// the call's RTP socket once per chunk (recv_linux.go). At 500 calls on 2 cores the bridge
// used 0.145–0.159 % of a core per call (two runs) against 0.161–0.166 %
// with 60 ms (four runs), with the callers' turn wait unchanged (p50
// 660–700 ms; BENCHMARKS.md); the server's VAD waits 200–500 ms of silence
// before it ends a turn anyway.
const DefaultUplinkChunk = 100 * time.Millisecond

// MinUplinkChunk and MaxUplinkChunk bound an uplink chunk; it is a whole
// number of 20 ms frames.
const (
	MinUplinkChunk = frameDur
	MaxUplinkChunk = 200 * time.Millisecond
)

// CheckUplinkChunk reports whether d can be a Stream's uplink chunk
// (StreamConfig.UplinkChunk): 20 ms to 200 ms in steps of 20 ms.
func CheckUplinkChunk(d time.Duration) error {
	if d < MinUplinkChunk || d > MaxUplinkChunk || d%frameDur != 0 {
		return fmt.Errorf("uplink chunk %v is not a multiple of %v within %v..%v", d, frameDur, MinUplinkChunk, MaxUplinkChunk)
	}
	return nil
}
