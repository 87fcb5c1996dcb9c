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
// once in the binary (rtp.uplink_chunk): three 20 ms frames, so the
// conversation and the realtime writer wake, and the WebSocket carries one
// input_audio_buffer.append, once per 60 ms instead of every 20 ms, for
// 40 ms more delay before the model hears the caller.
const DefaultUplinkChunk = 60 * time.Millisecond

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
