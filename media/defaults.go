package media

// DefaultComfortNoiseDBov is the comfort-noise level (dBov) a Stream sends
// while nothing plays when its config leaves the level 0; the binary's
// rtp.comfort_noise_dbov defaults to it.
const DefaultComfortNoiseDBov = defaultComfortNoiseDB
