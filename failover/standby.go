package failover

import "time"

// standbyState is the spare session: a warm standby in another region for
// swaps, or a fresh session for a rotation. It is connected, configured and
// idle; its events matter only when it ends.
type standbyState struct {
	spare    *session
	dialing  bool
	dialGen  uint64
	retryAt  time.Time // no new spare before (after a failed or dead one)
	rotation bool      // the spare being dialled is for a rotation
}
