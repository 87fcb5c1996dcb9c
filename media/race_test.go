//go:build race

package media

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// code that reuses buffers through a pool (pion/srtp's AES-CM keystream
// buffer) allocates now and then under -race only.
const raceEnabled = true
