package failover

// Reconfigure replaces the pool's regions and health tuning (a
// configuration reload). Health is keyed by region name: a region that is
// still listed keeps its window of outcomes and its breaker, whatever else
// about it changed (URL, key, priority); a new region starts closed; a
// removed one is no longer a candidate, and late reports about it from
// sessions still open there are ignored. It returns the names added and
// removed.
func (p *Pool) Reconfigure(regions []Region, hc HealthConfig) (added, removed []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.byName
	p.hc = hc.withDefaults()
	p.regions = nil
	p.byName = make(map[string]*regionHealth, len(regions))
	for _, r := range regions {
		if _, dup := p.byName[r.Name]; dup || r.Name == "" {
			continue
		}
		rh, kept := old[r.Name]
		if !kept {
			rh = &regionHealth{}
			added = append(added, r.Name)
			p.m.BreakerState.WithLabelValues(r.Name).Set(float64(BreakerClosed))
		}
		rh.region, rh.prio = r, len(p.regions)
		p.regions = append(p.regions, rh)
		p.byName[r.Name] = rh
	}
	for name := range old {
		if _, ok := p.byName[name]; !ok {
			removed = append(removed, name)
			p.m.BreakerState.DeleteLabelValues(name)
		}
	}
	// configs validated the limits (ValidateCapacity) before the reload
	// got here; the counters of regions still listed carry over.
	kept := make([]Region, 0, len(p.regions))
	for _, rh := range p.regions {
		kept = append(kept, rh.region)
	}
	if err := p.cap.Reconfigure(capacityLimits(kept)); err != nil {
		p.log.Error("failover: capacity limits not reloaded", "err", err)
	}
	return added, removed
}
