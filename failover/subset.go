package failover

import "slices"

// allowedRegions keeps the regions of rs that Config.Regions allows (all
// when it is empty), in order. The pool's health stays shared: a subset
// only narrows where this call may go.
func (c *Conversation) allowedRegions(rs []Region) []Region {
	if len(c.cfg.Regions) == 0 {
		return rs
	}
	out := rs[:0:0]
	for _, r := range rs {
		if slices.Contains(c.cfg.Regions, r.Name) {
			out = append(out, r)
		}
	}
	return out
}
