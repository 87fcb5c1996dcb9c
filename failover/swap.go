package failover

import (
	"context"
	"errors"
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
	// rateLimit: the provider throttled the region (TriggerRateLimited).
	rateLimit *realtime.RateLimitError
}

// oldInfo names the session a swap left, for the one swap log line.
type oldInfo struct {
	region, sessionID, responseID, err string
}

// swapPart is the failover side of the conversation: the swap in progress
// (nil while a session carries the call), the outage the give-up gate reads
// (consecutive failed attempts, where they failed, since when), and the
// swap's pending log line.
type swapPart struct {
	sw          *swapState
	failedInRow int
	unconfirmed bool // the current session has not completed a response yet
	// outageSince is when the call lost its last working session (zero:
	// it has one); outageFailed counts the failed attempts per region
	// since. Both end with the next completed response (sessionWorked).
	outageSince  time.Time
	outageFailed map[string]int
	pendingLog   *swapReport
	fillerPlayed bool
	givingUp     *giveUpState // gave up: ControlGiveUp waits for the apology
}

// swapState is the conversation between sessions: the first connect, a swap
// after a failure, or a rotation.
type swapState struct {
	trigger    Trigger
	initial    bool  // the call's first session
	capErr     error // every region was full (a *NoCapacityError): the give-up says so
	startedAt  time.Time
	pauseStart time.Time // when the caller started waiting (for the pause metric)
	redo       *createReq
	exclude    string // the failed region, tried again only as a last resort
	from       oldInfo
	tried      map[string]int
	attempts   int
	dialGen    uint64         // the dial whose result is awaited (0 = none)
	replay     *replayState   // the replay awaiting acknowledgements (replay.go)
	refused    map[string]int // item id → refusals without repair in this swap
	lastErr    string
	// retryAt: every region that may take the call is throttled or full;
	// the next attempt waits for this time (a tick makes it, retryAttempt).
	retryAt time.Time
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
	old.closeWhy, old.closeErr = "failed", trig.String()+": "+fi.err
	if o := trig.outcome(); o != 0 {
		c.pool.Report(old.region.Name, o)
	}
	if trig == TriggerRateLimited {
		rl := fi.rateLimit
		if rl == nil {
			rl = &realtime.RateLimitError{Region: old.region.Name, Source: realtime.RateLimitResponse, Message: fi.err}
		}
		c.throttle(old.region.Name, rl)
	}
	c.flushSwapLog("failed_again")
	if c.fn.ending == nil && c.hedgeTakesOver(trig) {
		return // the hedge, already asked, answers instead of a swap
	}
	c.dropHedge("abandoned", "primary_failed")
	if c.fn.ending != nil {
		// The model already ended the call: no new session, just let what
		// is queued of the goodbye play.
		c.sessionLog().Info("failover: session lost while ending the call", "trigger", trig.String(), "err", fi.err)
		c.retire(old)
		c.active = nil
		c.state = stEnding
		if !c.fn.ending.respDone {
			c.fn.ending.respDone = true
			c.fn.ending.deadline = c.now().Add(time.Duration(c.unplayedMs())*time.Millisecond + endCallSlack)
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
		respID = c.turns.activeResp
	}
	redo := c.pendingAnswer(respID)
	var playEnd time.Time
	if respID != "" && !c.play.suppressRsp[respID] {
		// The cut answer is regenerated as a continuation that starts where
		// the audio received ends: that audio keeps playing (heard.go).
		playEnd = c.keepHeard(now, c.turns.activeItems)
	}
	if redo != nil && respID != "" && c.heardAnyOf(c.turns.activeItems) {
		redo.continuation = true
	}
	pauseStart := c.play.lastPlayAt
	if c.caller.turnEndAt.After(pauseStart) {
		pauseStart = c.caller.turnEndAt
	}
	if pauseStart.IsZero() || redo == nil {
		pauseStart = now
	}
	if playEnd.After(pauseStart) {
		pauseStart = playEnd // silence starts when the kept audio ends
	}
	if redo != nil {
		// One create at the end of the swap sees the whole conversation,
		// tool outputs and DTMF notes included: the plain ones queued
		// behind the failed answer would only make a second answer.
		c.turns.queue = slices.DeleteFunc(c.turns.queue, func(r *createReq) bool { return r.plain })
	}
	from := oldInfo{region: old.region.Name, sessionID: old.s.ID(), responseID: respID, err: fi.err}
	// Caller audio the old session had not committed moves to the swap
	// buffer, ahead of what arrives during the swap.
	c.caller.swapBuf = append(append([]byte(nil), c.caller.turnBuf...), c.caller.swapBuf...)
	c.caller.turnBuf = c.caller.turnBuf[:0]
	c.resetResponseState()
	c.retire(old)
	c.active = nil
	if trig.outcome() != 0 && c.swap.outageSince.IsZero() {
		c.swap.outageSince = now
	}
	if c.swap.unconfirmed && trig.outcome() != 0 {
		// The session that just failed came from a swap (or the first
		// connect) and never completed a response: that attempt failed.
		// Reaching the session limit is no such failure.
		c.attemptFailed(old.region.Name)
	}
	exclude := ""
	if trig.outcome() != 0 {
		exclude = old.region.Name
	}
	c.swap.sw = &swapState{trigger: trig, startedAt: now, pauseStart: pauseStart, redo: redo, exclude: exclude,
		from: from, tried: map[string]int{}, lastErr: fi.err}
	c.state = stSwapping
	c.swap.fillerPlayed = false
	c.log.Debug("failover: session failed", "trigger", trig.String(), "region", from.region, "session_id", from.sessionID,
		"response_id", from.responseID, "err", fi.err, "redo", redo != nil, "failed_in_row", c.swap.failedInRow)
	c.emit(Control{Kind: ControlSwapStarted, Reason: trig.String()})
	c.nextAttempt()
}

// nextAttempt is the one give-up gate. A failing region never drops the
// call while another can take it: the conversation gives up after
// MaxSwapsInRow consecutive failed attempts (a session that failed before
// completing a response, a dial error, a replay error) only once every
// region the call may use is ruled out in this outage (ruledOut) and the
// outage has lasted minOutageToGiveUp, or the outage has lasted
// GiveUpAfter; otherwise it tries the next way to a working session, after
// a pause (outageRetryPause) while every region is ruled out. (Three
// failures in one region during its burst, with the other region throttled
// for a second or failing one response by chance, dropped calls in the
// soak; so did two failures in each of two regions within 1.3 s, one in
// its burst and one by chance.)
func (c *Conversation) nextAttempt() { c.gate(true) }

// gate is nextAttempt's rule; mayPause is false when the attempt was
// deferred already (retryAttempt): the wait was the pause.
func (c *Conversation) gate(mayPause bool) {
	if c.swap.failedInRow >= c.cfg.MaxSwapsInRow {
		now := c.now()
		if c.outageExhausted(now) {
			c.giveUp()
			return
		}
		if mayPause && c.everyRegionRuledOut() {
			sw := c.swap.sw
			sw.retryAt = now.Add(outageRetryPause)
			c.log.Info("failover: every region failed twice, pausing before the next attempt",
				"trigger", sw.trigger.String(), "wait_ms", outageRetryPause.Milliseconds(),
				"failed_in_row", c.swap.failedInRow, "outage_ms", now.Sub(c.outageStart()).Milliseconds())
			return
		}
	}
	c.attempt()
}

// minOutageToGiveUp: however many attempts failed in every region, an
// outage shorter than this does not end the call (before GiveUpAfter, when
// that is shorter). A region's burst of failures lasts seconds, and the
// other region fails a few per cent of responses at random: two failures in
// each within a second is bad luck, not an outage of both.
const minOutageToGiveUp = 5 * time.Second

// outageRetryPause is the wait before each attempt once every region is
// ruled out in an outage not yet long enough to give up: the call keeps
// trying, about once a second, instead of hammering failing regions.
const outageRetryPause = time.Second

// attemptFailed counts a failed attempt in region against the outage.
func (c *Conversation) attemptFailed(region string) {
	c.swap.failedInRow++
	if c.swap.outageSince.IsZero() {
		c.swap.outageSince = c.now()
	}
	if c.swap.outageFailed == nil {
		c.swap.outageFailed = map[string]int{}
	}
	c.swap.outageFailed[region]++
}

// sessionWorked: the current session completed a response, so the swap
// that brought it worked and the outage, if any, is over.
func (c *Conversation) sessionWorked() {
	c.swap.failedInRow = 0
	c.swap.unconfirmed = false
	c.swap.outageSince = time.Time{}
	clear(c.swap.outageFailed)
}

// outageStart is when the outage began: the first failure since the call
// last had a working session, else the start of this swap.
func (c *Conversation) outageStart() time.Time {
	if !c.swap.outageSince.IsZero() {
		return c.swap.outageSince
	}
	if c.swap.sw != nil {
		return c.swap.sw.startedAt
	}
	return c.now()
}

// outageExhausted: every region the call may use (an auth failure rules a
// region out for good) is ruled out in an outage that has lasted
// minOutageToGiveUp (at once while ringing), or the outage has lasted
// GiveUpAfter.
func (c *Conversation) outageExhausted(now time.Time) bool {
	age := now.Sub(c.outageStart())
	if age >= c.cfg.GiveUpAfter {
		return true
	}
	return (age >= minOutageToGiveUp || c.ringing()) && c.everyRegionRuledOut()
}

// ringing: the call's first connect is under way; the caller is not
// listening yet, and a 503 with Retry-After now serves better than holding
// the INVITE through a pause.
func (c *Conversation) ringing() bool { return c.swap.sw != nil && c.swap.sw.initial }

// everyRegionRuledOut: each region the call may use failed enough attempts
// in this outage to be ruled out.
func (c *Conversation) everyRegionRuledOut() bool {
	for _, r := range c.allowedRegions(c.pool.lastResort()) {
		if !c.ruledOut(r.Name) {
			return false
		}
	}
	return true
}

// failuresToRuleOut: a region is ruled out for the rest of an outage once
// this many attempts failed there. One failure may be a one-off (a region
// fails a few per cent of its responses at random while the other is in a
// burst); a second one in the same outage is not.
const failuresToRuleOut = 2

// ruledOut: whether region failed enough attempts in this outage to be
// tried no more.
func (c *Conversation) ruledOut(region string) bool {
	return c.swap.outageFailed[region] >= failuresToRuleOut
}

// pendingAnswer is the response the new session must produce: the one that
// failed or was in progress (unless the caller had already interrupted it),
// our create not yet started, or the answer to a committed turn.
func (c *Conversation) pendingAnswer(respID string) *createReq {
	if respID != "" && !c.play.suppressRsp[respID] {
		if req := c.turns.respReqs[respID]; req != nil {
			cp := *req
			return &cp
		}
		return &createReq{plain: true}
	}
	if c.turns.inflight != nil {
		cp := *c.turns.inflight
		return &cp
	}
	if c.turns.awaitingResponse {
		return &createReq{plain: true}
	}
	return nil
}

func (c *Conversation) resetResponseState() {
	c.turns.activeResp = ""
	c.turns.activeItems = nil
	c.turns.inflight = nil
	clear(c.turns.respReqs)
	c.turns.awaitingResponse = false
	c.turns.noRespAt, c.turns.firstAudioAt, c.turns.midAudioAt = time.Time{}, time.Time{}, time.Time{}
	c.turns.waitFrom, c.turns.hedgeAt = time.Time{}, time.Time{}
	c.caller.speechActive = false
	clear(c.caller.speechStart)
	clear(c.caller.speechEnd)
	clear(c.play.suppressRsp)
	clear(c.play.suppressItm)
	// Audio still playing from a completed answer plays on; it is no
	// longer tracked (its item is not in the next session to truncate).
	c.resetPlayout()
}

// attempt tries the next way to a working session: the warm standby if it
// fits, else a dial in the best region not tried most.
func (c *Conversation) attempt() {
	sw := c.swap.sw
	if c.standby.spare != nil && c.spareFits(sw) {
		ss := c.standby.spare
		c.standby.spare = nil
		sw.attempts++
		sw.tried[ss.region.Name]++
		c.finishSwap(ss, true)
		return
	}
	region, lease, err := c.pickRegion(sw)
	if err != nil {
		sw.lastErr = err.Error()
		if c.waitForCapacity(sw, err) {
			return
		}
		if errors.Is(err, ErrNoCapacity) {
			sw.capErr = err
		}
		c.giveUp()
		return
	}
	sw.tried[region.Name]++
	sw.attempts++
	c.pool.beginProbe(region.Name)
	c.nextGen++
	sw.dialGen = c.nextGen
	c.do(fxDial{Gen: sw.dialGen, Purpose: dialSwap, Region: region, Lease: lease})
}

// waitForCapacity: a swap that finds every region it may use throttled or
// full waits for the time the capacity error names (a throttle lifts in a
// second or so) instead of dropping a call another region will take, as
// long as the outage stays within GiveUpAfter. A call's first connect does
// not wait: it is still ringing and gets its 503 with Retry-After.
func (c *Conversation) waitForCapacity(sw *swapState, err error) bool {
	var nc *NoCapacityError
	if sw.initial || !errors.As(err, &nc) {
		return false
	}
	now := c.now()
	wait := max(nc.RetryAfter, c.tickEvery)
	if now.Add(wait).After(c.outageStart().Add(c.cfg.GiveUpAfter)) {
		return false
	}
	sw.retryAt = now.Add(wait)
	c.log.Info("failover: waiting for a region", "trigger", sw.trigger.String(), "wait_ms", wait.Milliseconds(),
		"failed_in_row", c.swap.failedInRow, "err", err)
	return true
}

// retryAttempt makes the attempt a swap deferred (for capacity, or paused
// while every region is ruled out) once its time has come.
func (c *Conversation) retryAttempt(now time.Time) {
	sw := c.swap.sw
	if sw == nil || sw.retryAt.IsZero() || now.Before(sw.retryAt) {
		return
	}
	sw.retryAt = time.Time{}
	c.gate(false)
}

// pickRegion orders the candidates (the failed region last, as a last
// resort with a fresh session; regions with open breakers only when nothing
// else is left) and takes a slot in the best of those that failed fewest
// attempts in this outage and were tried least in this swap that has
// capacity (Pool.Lease: health, tier, load by weight). Once MaxSwapsInRow
// attempts failed, only regions not ruled out in this outage are left to
// try, open breakers included; once every region is ruled out (after a
// pause, nextAttempt), all of them, the fewest failures first.
func (c *Conversation) pickRegion(sw *swapState) (Region, *Lease, error) {
	var order []Region
	seen := map[string]bool{}
	add := func(rs []Region) {
		for _, r := range c.allowedRegions(rs) {
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
	if c.swap.failedInRow >= c.cfg.MaxSwapsInRow {
		// The gate let this attempt through because a region is not
		// ruled out in this outage: only such a region is tried now,
		// even if its breaker opened on other calls' failures.
		add(c.pool.lastResort())
		if !c.everyRegionRuledOut() {
			order = slices.DeleteFunc(order, func(r Region) bool { return c.ruledOut(r.Name) })
		}
	}
	if len(order) == 0 {
		return Region{}, nil, errors.New("no region configured or usable")
	}
	// Group by how many attempts failed there in this outage, then by how
	// often this swap tried them: the least tried first. The region that
	// just failed goes after the others tried as often.
	rank := func(r Region) int {
		n := 2 * sw.tried[r.Name]
		if r.Name == sw.exclude {
			n++
		}
		n += c.swap.outageFailed[r.Name] << 20
		return n
	}
	slices.SortStableFunc(order, func(a, b Region) int { return rank(a) - rank(b) })
	var err error
	for i := 0; i < len(order); {
		j := i
		for j < len(order) && rank(order[j]) == rank(order[i]) {
			j++
		}
		var region Region
		var lease *Lease
		if region, lease, err = c.pool.Lease(SessionCall, order[i:j]); err == nil {
			return region, lease, nil
		}
		i = j
	}
	return Region{}, nil, err
}

// onSwapDial takes the result of a dial the connect or a swap made.
func (c *Conversation) onSwapDial(r dialResult) {
	sw := c.swap.sw
	if sw == nil || c.state == stGaveUp || r.gen != sw.dialGen {
		c.closeDialed(r) // superseded (the standby took over first)
		return
	}
	sw.dialGen = 0
	if r.err != nil {
		if c.ctx.Err() != nil {
			return
		}
		kind, auth := dialErrorKind(r.err)
		c.m.ConnectErrors.WithLabelValues(r.region.Name, kind).Inc()
		c.pool.Report(r.region.Name, c.dialOutcome(r.region.Name, r.err, auth))
		c.attemptFailed(r.region.Name)
		sw.lastErr = r.err.Error()
		c.log.Warn("failover: session open failed", "region", r.region.Name, "kind", kind, "err", r.err,
			"trigger", sw.trigger.String(), "attempt", sw.attempts, "failed_in_row", c.swap.failedInRow)
		c.nextAttempt()
		return
	}
	c.m.ConnectSeconds.WithLabelValues(r.region.Name).Observe(r.took.Seconds())
	c.finishSwap(c.registerDialed(r), false)
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
	items := c.rec.ReplayItems(ss.s.Dialect())
	c.callerAudioLast(items)
	c.startReplay(ss, warm, items)
}

// completeSwap puts ss in charge once its replay is confirmed (replay.go).
func (c *Conversation) completeSwap(ss *session, warm bool, items int) {
	sw := c.swap.sw
	c.active = ss
	if ss.lease != nil {
		ss.lease.Retag(SessionCall) // a standby or rotation target now carries the call
	}
	c.state = stActive
	c.swap.sw = nil
	c.swap.unconfirmed = true
	c.deliverBuffered()
	if sw.redo != nil {
		if !sw.initial {
			c.obs.nextPurpose = realtime.PurposeReplay
		}
		c.sendCreate(sw.redo)
	}
	now := c.now()
	if sw.initial {
		c.sessionLog().Info("failover: session started", "attempts", sw.attempts, "connect_ms", now.Sub(sw.startedAt).Milliseconds())
		c.readyOnce.Do(func() { close(c.ready) })
		c.maybeGreet()
	} else {
		if sw.trigger == TriggerRotation {
			c.m.Rotations.WithLabelValues(sw.from.region).Inc()
		} else {
			c.m.Swaps.WithLabelValues(sw.trigger.String(), sw.from.region, ss.region.Name).Inc()
		}
		c.emit(Control{Kind: ControlSwapFinished, Reason: sw.trigger.String()})
		c.swap.pendingLog = &swapReport{trigger: sw.trigger, from: sw.from, toRegion: ss.region.Name, toSession: ss.s.ID(),
			items: items, attempts: sw.attempts, warm: warm, swapDur: now.Sub(sw.startedAt), pauseStart: sw.pauseStart,
			awaitAudio: sw.redo != nil}
		if sw.redo == nil {
			c.emitSwapLog("no_answer_pending")
		}
	}
	c.pump()
	c.ensureSpare(now)
}

// giveUp ends the conversation's attempts: apology, then ControlGiveUp once
// it has played (checkGiveUp); Run returns ErrAllRegionsFailed once the call
// has ended it.
func (c *Conversation) giveUp() {
	sw := c.swap.sw
	c.state = stGaveUp
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
	failed := make([]string, 0, len(c.swap.outageFailed))
	for name, n := range c.swap.outageFailed {
		failed = append(failed, fmt.Sprintf("%s×%d", name, n))
	}
	slices.Sort(failed)
	c.log.Error("failover: giving up, no working session", "trigger", sw.trigger.String(), "region", sw.from.region,
		"session_id", sw.from.sessionID, "response_id", sw.from.responseID, "attempts", sw.attempts,
		"failed_in_row", c.swap.failedInRow, "regions_tried", tried, "regions_failed", failed,
		"outage_ms", c.now().Sub(c.outageStart()).Milliseconds(), "last_error", sw.lastErr, "transfer_to", c.cfg.GiveUpTransfer)
	c.result = fmt.Errorf("failover: call %s: %d attempts in a row failed, last: %s: %w", c.callID, c.swap.failedInRow, sw.lastErr, ErrAllRegionsFailed)
	if sw.capErr != nil {
		c.result = fmt.Errorf("%w: %w", c.result, sw.capErr)
	}
	g := &giveUpState{ctl: Control{Kind: ControlGiveUp, Target: c.cfg.GiveUpTransfer, Reason: sw.trigger.String()}}
	// Nobody hears an apology on a call that is still ringing (answer when
	// ready, and the AI never was): the call gets its 503 at once.
	if c.isReady() || c.cfg.AnsweredBeforeReady {
		g.apologyMs = len(c.cfg.ApologyAudio) / c.outBPM
		g.deadline = c.now().Add(time.Duration(g.apologyMs)*time.Millisecond + endCallSlack)
	}
	c.swap.givingUp = g
	c.checkGiveUp(c.now())
}

// giveUpState is a give-up whose ControlGiveUp waits for the apology: the
// call may hang up or transfer the moment it receives the control, so the
// conversation alone says when the caller has heard it.
type giveUpState struct {
	ctl       Control
	apologyMs int
	deadline  time.Time // emit even without the apology reported played by then
	sent      bool
}

// checkGiveUp emits ControlGiveUp once the apology has played, or could
// have by its deadline.
func (c *Conversation) checkGiveUp(now time.Time) {
	g := c.swap.givingUp
	if g == nil || g.sent {
		return
	}
	if g.apologyMs > 0 && c.player.PlayedMs(apologyItem) < g.apologyMs-playTolMs && now.Before(g.deadline) {
		return
	}
	g.sent = true
	c.emit(g.ctl)
}

// emitSwapLog writes the swap's one structured line.
func (c *Conversation) emitSwapLog(outcome string) {
	r := c.swap.pendingLog
	if r == nil {
		return
	}
	c.swap.pendingLog = nil
	c.observeSwap(r, outcome)
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
	if c.swap.pendingLog != nil {
		c.emitSwapLog(outcome)
	}
}
