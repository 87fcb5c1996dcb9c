package failover

import "time"

// turnState is the responses of the active session: the one running, our
// response.create in flight and those queued behind it (one at a time,
// §2.6), and the watchdog deadlines of the turn.
type turnState struct {
	activeResp       string
	activeItems      []string
	respReqs         map[string]*createReq // response id → the create that asked for it
	inflight         *createReq
	queue            []*createReq
	awaitingResponse bool // a committed caller turn waits for its answer
	reqSeq           int
	greeted          bool

	// Watchdog deadlines (zero = disarmed).
	noRespAt     time.Time
	firstAudioAt time.Time
	midAudioAt   time.Time
}
