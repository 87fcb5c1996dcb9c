package failover

import "errors"

// Errors returned by the failover layer.
var (
	// ErrAllRegionsFailed is returned by Conversation.Run when MaxSwapsInRow
	// consecutive attempts to get a working session failed (after the
	// apology was queued and ControlGiveUp emitted).
	ErrAllRegionsFailed = errors.New("failover: all regions failed")
)
