package failover

import "time"

// playoutState is the model audio of the active session handed to the
// Player: per item how much was produced and whether it finished, and the
// answers whose remaining audio must not play (interrupted).
type playoutState struct {
	items       map[string]*playState
	order       []string // unfinished items, in play order
	suppressRsp map[string]bool
	suppressItm map[string]bool
	lastPlayAt  time.Time
}
