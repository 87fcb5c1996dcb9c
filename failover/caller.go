package failover

import "time"

// callerState is the caller's audio as the conversation keeps it for a
// replay: what the active session was sent and has not committed, what
// arrives while no session takes it, and where the server's VAD put the
// turns.
type callerState struct {
	// turnBuf is the tail of what the active session was sent and has not
	// committed: it ends at active.inBytes.
	turnBuf []byte
	// swapBuf is the caller audio no session has taken yet (connect,
	// swap), delivered to the next session after its replay.
	swapBuf      []byte
	speechActive bool
	speechStart  map[string]int // item id → audio_start_ms
	speechEnd    map[string]int // item id → audio_end_ms
	held         bool
	turnEndAt    time.Time // when the caller's last turn ended
}
