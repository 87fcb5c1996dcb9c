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

func (c *Conversation) rotationDue(now time.Time) bool {
	d := c.active.deadline()
	return !d.IsZero() && !now.Before(d.Add(-c.cfg.RotateMargin))
}

// atTurnBoundary: no answer running or due, nothing playing, caller silent.
func (c *Conversation) atTurnBoundary() bool {
	return c.turns.activeResp == "" && c.turns.inflight == nil && len(c.turns.queue) == 0 && !c.turns.awaitingResponse &&
		!c.caller.speechActive && !c.isPlaying()
}

func (c *Conversation) maybeRotate(now time.Time) {
	if c.state != stActive || c.fn.ending != nil || c.standby.spare == nil || !c.rotationDue(now) || !c.atTurnBoundary() {
		return
	}
	old, ss := c.active, c.standby.spare
	c.standby.spare = nil
	old.closeWhy = "rotated"
	c.dropHedge("abandoned", "rotation")
	c.flushSwapLog("rotated")
	c.caller.swapBuf = append(append([]byte(nil), c.caller.turnBuf...), c.caller.swapBuf...)
	c.caller.turnBuf = c.caller.turnBuf[:0]
	c.resetResponseState()
	c.retire(old)
	c.active = nil
	c.swap.sw = &swapState{trigger: TriggerRotation, startedAt: now, pauseStart: now, tried: map[string]int{ss.region.Name: 1}, attempts: 1,
		from: oldInfo{region: old.region.Name, sessionID: old.s.ID(), err: "session limit " + old.deadline().UTC().Format(time.RFC3339)}}
	c.state = stSwapping
	c.emit(Control{Kind: ControlSwapStarted, Reason: TriggerRotation.String()})
	c.finishSwap(ss, true)
}

// ensureSpare keeps one configured session ready: a warm standby in the next
// candidate region when that region asks for one, or a fresh session in the
// best region when the active one is due for rotation. A standby about to
// expire is replaced.
func (c *Conversation) ensureSpare(now time.Time) {
	if c.state != stActive || c.fn.ending != nil || c.standby.dialing || c.hedge.run != nil || now.Before(c.standby.retryAt) {
		return
	}
	rotating := c.rotationDue(now)
	if c.standby.spare != nil {
		d := c.standby.spare.deadline()
		if d.IsZero() || now.Before(d.Add(-c.cfg.RotateMargin)) {
			return
		}
		c.log.Info("failover: replacing warm standby before it expires", "region", c.standby.spare.region.Name, "session_id", c.standby.spare.s.ID())
		c.retire(c.standby.spare)
		c.standby.spare = nil
	}
	var region Region
	var lease *Lease
	if rotating {
		// Rotation is not a failure: the current region is as good as any.
		r, l, err := c.pool.Lease(SessionRotation, c.allowedRegions(c.pool.Candidates()))
		if err != nil {
			c.standby.retryAt = now.Add(spareRetry)
			return
		}
		region, lease = r, l
	} else {
		if !c.pool.anyWarmStandby() {
			// The common case, checked every tick: no region keeps a
			// standby, so there is no candidate list to build.
			return
		}
		cands := c.allowedRegions(c.pool.Candidates(c.active.region.Name))
		if len(cands) == 0 || !cands[0].WarmStandby {
			return
		}
		l, err := c.pool.AcquireIn(cands[0].Name, SessionStandby)
		if err != nil {
			c.standby.retryAt = now.Add(spareRetry)
			return
		}
		region, lease = cands[0], l
	}
	c.standby.dialing = true
	c.standby.rotation = rotating
	c.nextGen++
	c.standby.dialGen = c.nextGen
	c.do(fxDial{Gen: c.standby.dialGen, Purpose: dialSpare, Region: region, Lease: lease})
}

// onSpareEnd: the standby's stream ended; the next one waits spareRetry.
func (c *Conversation) onSpareEnd(err error) {
	c.log.Info("failover: warm standby ended", "region", c.standby.spare.region.Name, "session_id", c.standby.spare.s.ID(), "err", err)
	c.standby.spare.closeWhy = "standby_ended"
	if err != nil {
		c.standby.spare.closeErr = err.Error()
	}
	c.retire(c.standby.spare)
	c.standby.spare = nil
	c.standby.retryAt = c.now().Add(spareRetry)
}

func (c *Conversation) onSpareDial(r dialResult) {
	if r.gen != c.standby.dialGen || c.state == stGaveUp {
		c.closeDialed(r)
		return
	}
	c.standby.dialing = false
	c.standby.dialGen = 0
	if r.err != nil {
		if c.ctx.Err() != nil {
			return
		}
		kind, auth := dialErrorKind(r.err)
		c.m.ConnectErrors.WithLabelValues(r.region.Name, kind).Inc()
		c.pool.Report(r.region.Name, c.dialOutcome(r.region.Name, r.err, auth))
		c.standby.retryAt = c.now().Add(spareRetry)
		c.log.Warn("failover: warm standby open failed", "region", r.region.Name, "kind", kind, "err", r.err, "rotation", c.standby.rotation)
		return
	}
	c.m.ConnectSeconds.WithLabelValues(r.region.Name).Observe(r.took.Seconds())
	c.standby.spare = c.registerDialed(r)
	c.log.Info("failover: warm standby ready", "region", r.region.Name, "session_id", r.s.ID(), "rotation", c.standby.rotation)
	now := c.now()
	switch {
	case c.state == stSwapping && c.swap.sw != nil && c.swap.sw.dialGen != 0 && c.spareFits(c.swap.sw):
		// A swap is waiting on a dial: the standby is here first.
		c.swap.sw.dialGen = 0 // the dial's session, if it comes, is closed
		c.attempt()
	case c.state == stActive:
		c.maybeRotate(now)
	}
}

// spareFits says whether the standby may take over: not in the region that
// just failed, its breaker not open, and not about to expire itself.
func (c *Conversation) spareFits(sw *swapState) bool {
	if sw.exclude != "" && c.standby.spare.region.Name == sw.exclude {
		return false
	}
	if !c.pool.usable(c.standby.spare.region.Name) {
		return false
	}
	d := c.standby.spare.deadline()
	return d.IsZero() || c.now().Before(d.Add(-c.cfg.RotateMargin))
}
