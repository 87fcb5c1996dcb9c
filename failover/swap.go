package failover

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// failInfo is what is known about a failure when it is detected.
type failInfo struct {
	respID string // the response that failed or was in progress
	err    string // the provider's error message, for the swap log
}

// oldInfo names the session a swap left, for the one swap log line.
type oldInfo struct {
	region, sessionID, responseID, err string
}

// swapState is the conversation between sessions: the first connect, a swap
// after a failure, or a rotation.
type swapState struct {
	trigger    Trigger
	initial    bool // the call's first session
	startedAt  time.Time
	pauseStart time.Time // when the caller started waiting (for the pause metric)
	redo       *createReq
	exclude    string // the failed region, tried again only as a last resort
	from       oldInfo
	tried      map[string]int
	attempts   int
	dialGen    uint64 // the dial whose result is awaited (0 = none)
	lastErr    string
}

// swapReport is the one log line of a swap. It waits for the first audio of
// the new answer, whose arrival gives the pause the caller heard.
type swapReport struct {
	trigger    Trigger
	from       oldInfo
	toRegion   string
	toSession  string
	items      int
	attempts   int
	warm       bool
	swapDur    time.Duration
	pauseStart time.Time
	awaitAudio bool
	pause      time.Duration
}

// fail handles a failure of the active session, classified once as trig.
func (c *Conversation) fail(trig Trigger, fi failInfo) {
	if c.state != stActive {
		return
	}
	old := c.active
	if o := trig.outcome(); o != 0 {
		c.pool.Report(old.region.Name, o)
	}
	c.flushSwapLog("failed_again")
	if c.ending != nil {
		// The model already ended the call: no new session, just let what
		// is queued of the goodbye play.
		c.sessionLog().Info("failover: session lost while ending the call", "trigger", trig.String(), "err", fi.err)
		c.retire(old)
		c.active = nil
		c.state = stEnding
		if !c.ending.respDone {
			c.ending.respDone = true
			c.ending.deadline = c.now().Add(time.Duration(c.unplayedMs())*time.Millisecond + endCallSlack)
		}
		c.checkEnd(c.now())
		return
	}
	c.startSwap(trig, fi)
}

// startSwap leaves the active session: works out what must be answered
// again, stops what the caller must not hear, buffers caller audio from now
// on, and starts the first attempt.
func (c *Conversation) startSwap(trig Trigger, fi failInfo) {
	now := c.now()
	old := c.active
	respID := fi.respID
	if respID == "" {
		respID = c.activeResp
	}
	redo := c.pendingAnswer(respID)
	if respID != "" && c.isPlaying() {
		// The cut answer is regenerated as a continuation: the rest of its
		// audio must not play, and what was heard fixes where it resumes.
		c.flushHeard()
	}
	if redo != nil && respID != "" && c.heardAnyOf(c.activeItems) {
		redo.continuation = true
	}
	pauseStart := c.lastPlayAt
	if c.turnEndAt.After(pauseStart) {
		pauseStart = c.turnEndAt
	}
	if pauseStart.IsZero() || redo == nil {
		pauseStart = now
	}
	if redo != nil {
		// One create at the end of the swap sees the whole conversation,
		// tool outputs and DTMF notes included: the plain ones queued
		// behind the failed answer would only make a second answer.
		c.queue = slices.DeleteFunc(c.queue, func(r *createReq) bool { return r.plain })
	}
	from := oldInfo{region: old.region.Name, sessionID: old.s.ID(), responseID: respID, err: fi.err}
	// Caller audio the old session had not committed moves to the swap
	// buffer, ahead of what arrives during the swap.
	c.swapBuf = append(append([]byte(nil), c.turnBuf...), c.swapBuf...)
	c.turnBuf = c.turnBuf[:0]
	c.resetResponseState()
	c.retire(old)
	c.active = nil
	if c.unconfirmed && trig.outcome() != 0 {
		// The session that just failed came from a swap (or the first
		// connect) and never completed a response: that attempt failed.
		// Reaching the session limit is no such failure.
		c.failedInRow++
	}
	exclude := ""
	if trig.outcome() != 0 {
		exclude = old.region.Name
	}
	c.sw = &swapState{trigger: trig, startedAt: now, pauseStart: pauseStart, redo: redo, exclude: exclude,
		from: from, tried: map[string]int{}, lastErr: fi.err}
	c.state = stSwapping
	c.fillerPlayed = false
	c.log.Debug("failover: session failed", "trigger", trig.String(), "region", from.region, "session_id", from.sessionID,
		"response_id", from.responseID, "err", fi.err, "redo", redo != nil, "failed_in_row", c.failedInRow)
	c.emit(Control{Kind: ControlSwapStarted, Reason: trig.String()})
	if c.failedInRow >= c.cfg.MaxSwapsInRow {
		c.giveUp()
		return
	}
	c.attempt()
}

// pendingAnswer is the response the new session must produce: the one that
// failed or was in progress (unless the caller had already interrupted it),
// our create not yet started, or the answer to a committed turn.
func (c *Conversation) pendingAnswer(respID string) *createReq {
	if respID != "" && !c.suppressRsp[respID] {
		if req := c.respReqs[respID]; req != nil {
			cp := *req
			return &cp
		}
		return &createReq{plain: true}
	}
	if c.inflight != nil {
		cp := *c.inflight
		return &cp
	}
	if c.awaitingResponse {
		return &createReq{plain: true}
	}
	return nil
}

// flushHeard flushes playout on a swap and records, for each unfinished
// item, what the caller heard of it.
func (c *Conversation) flushHeard() {
	c.player.Flush()
	for _, id := range c.playOrder {
		ps := c.playout[id]
		if ps.finished {
			continue
		}
		c.rec.Truncate(id, min(c.player.PlayedMs(id), ps.bytes/c.outBPM))
	}
	c.resetPlayout()
}

// heardAnyOf reports whether the caller heard some audio of the items.
func (c *Conversation) heardAnyOf(items []string) bool {
	for _, id := range items {
		e, ok := c.rec.Entry(id)
		if ok && e.ProducedBytes > 0 && (!e.HeardKnown || e.HeardMs > 0) {
			return true
		}
	}
	return false
}

func (c *Conversation) resetResponseState() {
	c.activeResp = ""
	c.activeItems = nil
	c.inflight = nil
	clear(c.respReqs)
	c.awaitingResponse = false
	c.noRespAt, c.firstAudioAt, c.midAudioAt = time.Time{}, time.Time{}, time.Time{}
	c.speechActive = false
	clear(c.speechStart)
	clear(c.speechEnd)
	clear(c.suppressRsp)
	clear(c.suppressItm)
	// Audio still playing from a completed answer plays on; it is no
	// longer tracked (its item is not in the next session to truncate).
	c.resetPlayout()
}

// attempt tries the next way to a working session: the warm standby if it
// fits, else a dial in the best region not tried most.
func (c *Conversation) attempt() {
	sw := c.sw
	if c.spare != nil && c.spareFits(sw) {
		ss := c.spare
		c.spare = nil
		sw.attempts++
		sw.tried[ss.region.Name]++
		c.finishSwap(ss, true)
		return
	}
	region, ok := c.pickRegion(sw)
	if !ok {
		sw.lastErr = "no region configured or usable"
		c.giveUp()
		return
	}
	sw.tried[region.Name]++
	sw.attempts++
	c.pool.beginProbe(region.Name)
	c.nextGen++
	sw.dialGen = c.nextGen
	c.dial(sw.dialGen, dialSwap, region)
}

// spareFits says whether the standby may take over: not in the region that
// just failed, its breaker not open, and not about to expire itself.
func (c *Conversation) spareFits(sw *swapState) bool {
	if sw.exclude != "" && c.spare.region.Name == sw.exclude {
		return false
	}
	if !c.pool.usable(c.spare.region.Name) {
		return false
	}
	d := c.spare.deadline()
	return d.IsZero() || c.now().Before(d.Add(-c.cfg.RotateMargin))
}

// pickRegion orders the candidates (the failed region last, as a last
// resort with a fresh session; regions with open breakers only when nothing
// else is left) and takes the first one tried least in this swap.
func (c *Conversation) pickRegion(sw *swapState) (Region, bool) {
	var order []Region
	seen := map[string]bool{}
	add := func(rs []Region) {
		for _, r := range rs {
			if !seen[r.Name] {
				seen[r.Name] = true
				order = append(order, r)
			}
		}
	}
	if sw.exclude != "" {
		add(c.pool.Candidates(sw.exclude))
	}
	add(c.pool.Candidates())
	if len(order) == 0 {
		add(c.pool.lastResort())
	}
	if len(order) == 0 {
		return Region{}, false
	}
	best := order[0]
	for _, r := range order[1:] {
		if sw.tried[r.Name] < sw.tried[best.Name] {
			best = r
		}
	}
	return best, true
}

func (c *Conversation) onDialResult(r dialResult) {
	if r.purpose == dialSpare {
		c.onSpareDial(r)
		return
	}
	sw := c.sw
	if sw == nil || c.state == stDone || r.gen != sw.dialGen {
		if r.s != nil {
			c.closeAsync(r.s) // superseded (the standby took over first)
		}
		return
	}
	sw.dialGen = 0
	if r.err != nil {
		if c.ctx.Err() != nil {
			return
		}
		kind, auth := dialErrorKind(r.err)
		c.m.ConnectErrors.WithLabelValues(r.region.Name, kind).Inc()
		outcome := OutcomeConnectError
		if auth {
			outcome = OutcomeAuthError
		}
		c.pool.Report(r.region.Name, outcome)
		c.failedInRow++
		sw.lastErr = r.err.Error()
		c.log.Warn("failover: session open failed", "region", r.region.Name, "kind", kind, "err", r.err,
			"trigger", sw.trigger.String(), "attempt", sw.attempts, "failed_in_row", c.failedInRow)
		if c.failedInRow >= c.cfg.MaxSwapsInRow {
			c.giveUp()
			return
		}
		c.attempt()
		return
	}
	c.m.ConnectSeconds.WithLabelValues(r.region.Name).Observe(r.took.Seconds())
	c.finishSwap(c.register(r.s, r.region), false)
}

// finishSwap puts ss in charge: replays the record, delivers the caller
// audio buffered meanwhile, then asks for the pending answer. Audio goes in
// with input_audio_buffer.append after the replay, not folded into a user
// item, so that the new session's VAD decides whether it holds a turn: the
// caller may have said nothing (comfort noise, silence: nothing happens),
// finished the sentence the failure cut, or started a new one. A turn it
// finds is answered with the full context: either its auto-response comes
// first and our create is refused as a duplicate (non-fatal), or it
// interrupts the answer we asked for, exactly as a live barge-in would.
func (c *Conversation) finishSwap(ss *session, warm bool) {
	sw := c.sw
	c.active = ss
	items := c.rec.ReplayItems(ss.s.Dialect())
	ctx, cancel := context.WithTimeout(c.ctx, replayTimeout)
	for i, it := range items {
		if err := ss.s.CreateItem(ctx, it, ""); err != nil {
			cancel()
			c.active = nil
			c.retire(ss)
			if c.ctx.Err() != nil {
				return // the caller hung up during the replay
			}
			c.pool.Report(ss.region.Name, OutcomeSessionLost)
			c.failedInRow++
			sw.lastErr = fmt.Sprintf("replay item %d of %d: %v", i+1, len(items), err)
			c.log.Warn("failover: replay failed", "region", ss.region.Name, "session_id", ss.s.ID(), "err", err,
				"trigger", sw.trigger.String(), "failed_in_row", c.failedInRow)
			if c.failedInRow >= c.cfg.MaxSwapsInRow {
				c.giveUp()
				return
			}
			c.attempt()
			return
		}
		if it.Type == "function_call" {
			ss.calls[it.CallID] = true
		}
	}
	cancel()
	c.state = stActive
	c.sw = nil
	c.unconfirmed = true
	c.deliverBuffered()
	if sw.redo != nil {
		c.sendCreate(sw.redo)
	}
	now := c.now()
	if sw.initial {
		c.sessionLog().Info("failover: session started", "attempts", sw.attempts, "connect_ms", now.Sub(sw.startedAt).Milliseconds())
		c.readyOnce.Do(func() { close(c.ready) })
		if c.cfg.Greeting != "" && !c.greeted {
			c.greeted = true
			c.enqueue(&createReq{params: greetingParams(c.cfg)})
		}
	} else {
		if sw.trigger == TriggerRotation {
			c.m.Rotations.WithLabelValues(sw.from.region).Inc()
		} else {
			c.m.Swaps.WithLabelValues(sw.trigger.String(), sw.from.region, ss.region.Name).Inc()
		}
		c.emit(Control{Kind: ControlSwapFinished, Reason: sw.trigger.String()})
		c.pendingLog = &swapReport{trigger: sw.trigger, from: sw.from, toRegion: ss.region.Name, toSession: ss.s.ID(),
			items: len(items), attempts: sw.attempts, warm: warm, swapDur: now.Sub(sw.startedAt), pauseStart: sw.pauseStart,
			awaitAudio: sw.redo != nil}
		if sw.redo == nil {
			c.emitSwapLog("no_answer_pending")
		}
	}
	c.pump()
	c.ensureSpare(now)
}

func greetingParams(cfg Config) realtime.ResponseParams {
	return realtime.ResponseParams{Instructions: joinInstructions(cfg.Session.Instructions, cfg.Greeting)}
}

// deliverBuffered appends the caller audio buffered during the swap to the
// new session, in chunks (the session's send queue takes events, not a
// stream, and history need not be paced).
func (c *Conversation) deliverBuffered() {
	data := c.swapBuf
	c.swapBuf = nil
	if c.held || len(data) == 0 {
		return
	}
	chunk := appendChunkMs * c.inBPM
	for off := 0; off < len(data); off += chunk {
		if !c.active.s.AppendAudio(data[off:min(off+chunk, len(data))]) {
			c.m.CallerFramesDropped.Inc()
		}
	}
	c.active.inBytes = len(data)
	c.turnBuf = append(c.turnBuf[:0], data...)
}

// giveUp ends the conversation's attempts: apology, then ControlGiveUp once
// it has played; Run returns ErrAllRegionsFailed once the call has ended it.
func (c *Conversation) giveUp() {
	sw := c.sw
	c.state = stDone
	c.player.Flush()
	if len(c.cfg.ApologyAudio) > 0 {
		c.player.Play(apologyItem, c.cfg.ApologyAudio)
	}
	c.m.GiveUps.Inc()
	tried := make([]string, 0, len(sw.tried))
	for name := range sw.tried {
		tried = append(tried, name)
	}
	slices.Sort(tried)
	c.log.Error("failover: giving up, no working session", "trigger", sw.trigger.String(), "region", sw.from.region,
		"session_id", sw.from.sessionID, "response_id", sw.from.responseID, "attempts", sw.attempts,
		"failed_in_row", c.failedInRow, "regions_tried", tried, "last_error", sw.lastErr, "transfer_to", c.cfg.GiveUpTransfer)
	c.result = fmt.Errorf("failover: call %s: %d attempts in a row failed, last: %s: %w", c.callID, c.failedInRow, sw.lastErr, ErrAllRegionsFailed)
	apologyMs := len(c.cfg.ApologyAudio) / c.outBPM
	c.givingUp = &giveUpState{
		ctl:       Control{Kind: ControlGiveUp, Target: c.cfg.GiveUpTransfer, Reason: sw.trigger.String()},
		apologyMs: apologyMs,
		deadline:  c.now().Add(time.Duration(apologyMs)*time.Millisecond + endCallSlack),
	}
	c.checkGiveUp(c.now())
}

// giveUpState is a give-up whose ControlGiveUp waits for the apology.
type giveUpState struct {
	ctl       Control
	apologyMs int
	deadline  time.Time // emit even without the apology played by then
	sent      bool
}

// checkGiveUp emits ControlGiveUp once the apology has played (or could
// have, by the deadline: a call not answered yet plays nothing), so the call
// may end as soon as it receives it.
func (c *Conversation) checkGiveUp(now time.Time) {
	g := c.givingUp
	if g == nil || g.sent {
		return
	}
	if g.apologyMs > 0 && c.player.PlayedMs(apologyItem) < g.apologyMs-playTolMs && now.Before(g.deadline) {
		return
	}
	g.sent = true
	c.emit(g.ctl)
}

// ---- rotation and warm standby ---------------------------------------------

func (c *Conversation) rotationDue(now time.Time) bool {
	d := c.active.deadline()
	return !d.IsZero() && !now.Before(d.Add(-c.cfg.RotateMargin))
}

// atTurnBoundary: no answer running or due, nothing playing, caller silent.
func (c *Conversation) atTurnBoundary() bool {
	return c.activeResp == "" && c.inflight == nil && len(c.queue) == 0 && !c.awaitingResponse &&
		!c.speechActive && !c.isPlaying()
}

func (c *Conversation) maybeRotate(now time.Time) {
	if c.state != stActive || c.ending != nil || c.spare == nil || !c.rotationDue(now) || !c.atTurnBoundary() {
		return
	}
	old, ss := c.active, c.spare
	c.spare = nil
	c.flushSwapLog("rotated")
	c.swapBuf = append(append([]byte(nil), c.turnBuf...), c.swapBuf...)
	c.turnBuf = c.turnBuf[:0]
	c.resetResponseState()
	c.retire(old)
	c.active = nil
	c.sw = &swapState{trigger: TriggerRotation, startedAt: now, pauseStart: now, tried: map[string]int{ss.region.Name: 1}, attempts: 1,
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
	if c.state != stActive || c.ending != nil || c.spareDialing || now.Before(c.spareRetryAt) {
		return
	}
	rotating := c.rotationDue(now)
	if c.spare != nil {
		d := c.spare.deadline()
		if d.IsZero() || now.Before(d.Add(-c.cfg.RotateMargin)) {
			return
		}
		c.log.Info("failover: replacing warm standby before it expires", "region", c.spare.region.Name, "session_id", c.spare.s.ID())
		c.retire(c.spare)
		c.spare = nil
	}
	var region Region
	if rotating {
		// Rotation is not a failure: the current region is as good as any.
		cands := c.pool.Candidates()
		if len(cands) == 0 {
			return
		}
		region = cands[0]
	} else {
		cands := c.pool.Candidates(c.active.region.Name)
		if len(cands) == 0 || !cands[0].WarmStandby {
			return
		}
		region = cands[0]
	}
	c.spareDialing = true
	c.spareRotation = rotating
	c.nextGen++
	c.spareDialGen = c.nextGen
	c.dial(c.spareDialGen, dialSpare, region)
}

func (c *Conversation) onSpareDial(r dialResult) {
	if r.gen != c.spareDialGen || c.state == stDone {
		if r.s != nil {
			c.closeAsync(r.s)
		}
		return
	}
	c.spareDialing = false
	c.spareDialGen = 0
	if r.err != nil {
		if c.ctx.Err() != nil {
			return
		}
		kind, auth := dialErrorKind(r.err)
		c.m.ConnectErrors.WithLabelValues(r.region.Name, kind).Inc()
		outcome := OutcomeConnectError
		if auth {
			outcome = OutcomeAuthError
		}
		c.pool.Report(r.region.Name, outcome)
		c.spareRetryAt = c.now().Add(spareRetry)
		c.log.Warn("failover: warm standby open failed", "region", r.region.Name, "kind", kind, "err", r.err, "rotation", c.spareRotation)
		return
	}
	c.m.ConnectSeconds.WithLabelValues(r.region.Name).Observe(r.took.Seconds())
	c.spare = c.register(r.s, r.region)
	c.log.Info("failover: warm standby ready", "region", r.region.Name, "session_id", r.s.ID(), "rotation", c.spareRotation)
	now := c.now()
	switch {
	case c.state == stSwapping && c.sw != nil && c.sw.dialGen != 0 && c.spareFits(c.sw):
		// A swap is waiting on a dial: the standby is here first.
		c.sw.dialGen = 0 // the dial's session, if it comes, is closed
		c.attempt()
	case c.state == stActive:
		c.maybeRotate(now)
	}
}

// maybeFiller plays FillerAudio once when the caller has waited FillerAfter
// for the answer a swap owes them.
func (c *Conversation) maybeFiller(now time.Time) {
	if c.fillerPlayed || c.cfg.FillerAfter <= 0 || len(c.cfg.FillerAudio) == 0 {
		return
	}
	var start time.Time
	switch {
	case c.state == stSwapping && c.sw != nil && !c.sw.initial && c.sw.redo != nil:
		start = c.sw.pauseStart
	case c.pendingLog != nil && c.pendingLog.awaitAudio:
		start = c.pendingLog.pauseStart
	default:
		return
	}
	if now.Sub(start) < c.cfg.FillerAfter {
		return
	}
	c.fillerPlayed = true
	c.log.Debug("failover: playing filler", "waited_ms", now.Sub(start).Milliseconds())
	c.player.Play(fillerItem, c.cfg.FillerAudio)
}

// emitSwapLog writes the swap's one structured line.
func (c *Conversation) emitSwapLog(outcome string) {
	r := c.pendingLog
	if r == nil {
		return
	}
	c.pendingLog = nil
	attrs := []any{
		"trigger", r.trigger.String(),
		"region", r.from.region, "session_id", r.from.sessionID, "response_id", r.from.responseID, "error", r.from.err,
		"new_region", r.toRegion, "new_session_id", r.toSession,
		"items_replayed", r.items, "attempts", r.attempts, "warm_standby", r.warm,
		"swap_ms", r.swapDur.Milliseconds(), "outcome", outcome,
	}
	if outcome == "answered" {
		attrs = append(attrs, "pause_ms", r.pause.Milliseconds())
	}
	level := slog.LevelWarn
	if r.trigger == TriggerRotation || r.trigger == TriggerExpiry {
		level = slog.LevelInfo
	}
	c.log.Log(context.Background(), level, "failover: session swapped", attrs...)
}

func (c *Conversation) flushSwapLog(outcome string) {
	if c.pendingLog != nil {
		c.emitSwapLog(outcome)
	}
}
