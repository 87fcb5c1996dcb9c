package failover

import (
	"fmt"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// Hedged answers. When a turn's first output has not arrived by its hedge
// deadline (a multiple of the region's recent median time to first audio,
// between a floor and a ceiling), the same turn is asked in a session in
// another region: the warm standby when it fits, otherwise a fresh dial.
// That session gets the conversation replayed (the swap's replay, which
// holds the caller's committed turn) and the same response.create. The
// first answer whose output arrives is the one the caller hears:
//
//   - the primary's: the hedge's response is cancelled and its session
//     closed (it holds an answer the caller never heard);
//   - the hedge's: the primary's response is cancelled, its items leave the
//     record, its session is closed and its region is told of a stall; the
//     hedge session becomes the active one, its early events are handled
//     as the active session's, then the output that won.
//
// "First output wins" is decided inside one step, so the caller never
// hears two voices. A hedge that fails is dropped (the primary may still
// answer, the stall watchdogs remain the last resort); a primary that
// fails while the hedge is already asked hands the turn to the hedge
// instead of starting a swap. The caller speaking, hold, rotation and the
// end of the call drop the hedge. Hedging has a budget per call (Config)
// and per process (Pool), each a share of the turns plus one.

// hedgePart is the hedge in progress (nil: none) and the call's budget.
type hedgePart struct {
	run    *hedgeRun
	turns  int // turns of this call that waited for an answer
	hedges int // hedges started on this call
}

// hedgeRun is one hedge: its session (nil while dialled), the create it was
// sent and what it produced before it won.
type hedgeRun struct {
	ss        *session // nil while the dial runs
	dialGen   uint64
	region    string
	warm      bool
	ask       *createReq        // what to ask once the dialled session is there
	req       *createReq        // the create sent to the hedge session (nil: not asked yet)
	respID    string            // the hedge's response, from response.created
	acks      realtime.ItemAcks // the replayed items not yet acknowledged
	early     []realtime.ServerEvent
	replayed  int // tokens of the context replayed into it (estimated)
	startedAt time.Time
	askedAt   time.Time
	deadline  time.Duration
	// The primary as it was when the hedge started, for the log line.
	primaryRegion, primarySession string
}

// armTurnWait starts the wait for the answer's first output, once per
// turn: it counts the turn for the budgets and sets the hedge deadline.
func (c *Conversation) armTurnWait() {
	if !c.turns.waitFrom.IsZero() || c.active == nil {
		return
	}
	now := c.now()
	c.turns.waitFrom = now
	c.hedge.turns++
	c.pool.countTurn()
	if !c.cfg.Hedge.Disabled {
		c.turns.hedgeAt = now.Add(c.hedgeDeadline(c.active.region.Name))
	}
}

// hedgeDeadline is how long a turn in region may wait for its first output
// before it is hedged.
func (c *Conversation) hedgeDeadline(region string) time.Duration {
	h := c.cfg.Hedge
	d := h.Ceiling
	if med, ok := c.pool.MedianTTFA(region); ok {
		d = time.Duration(float64(med) * h.Multiple)
	}
	return min(max(d, h.Floor), h.Ceiling)
}

// turnAnswered: the active session's answer produced its first output.
// The time it took feeds the region's window; a running hedge lost.
func (c *Conversation) turnAnswered() {
	if !c.turns.waitFrom.IsZero() {
		c.pool.ObserveTTFA(c.active.region.Name, c.now().Sub(c.turns.waitFrom))
		c.turns.waitFrom, c.turns.hedgeAt = time.Time{}, time.Time{}
	}
	if c.hedge.run != nil {
		c.m.HedgeResults.WithLabelValues("primary").Inc()
		c.endHedge("primary", "")
	}
}

// checkHedge starts the hedge of the active turn when its deadline passed.
func (c *Conversation) checkHedge(now time.Time) {
	if c.turns.hedgeAt.IsZero() || now.Before(c.turns.hedgeAt) || c.hedge.run != nil {
		return
	}
	deadline := c.turns.hedgeAt.Sub(c.turns.waitFrom)
	c.turns.hedgeAt = time.Time{} // one hedge per turn
	if c.fn.ending != nil || c.caller.held || c.caller.speechActive {
		return
	}
	req := c.pendingAnswer(c.turns.activeResp)
	if req == nil {
		return
	}
	// The hedge's session: the warm standby in another region, else a
	// fresh one in the best other region.
	var region Region
	warm := c.standby.spare != nil && c.spareFits(&swapState{exclude: c.active.region.Name})
	if warm {
		region = c.standby.spare.region
	} else {
		cands := c.pool.Candidates(c.active.region.Name)
		if len(cands) == 0 {
			c.m.HedgesSkipped.WithLabelValues("no_region").Inc()
			return
		}
		region = cands[0]
	}
	if float64(c.hedge.hedges) > c.cfg.Hedge.CallShare*float64(c.hedge.turns) {
		c.m.HedgesSkipped.WithLabelValues("call_budget").Inc()
		c.sessionLog().Info("failover: hedge skipped, call budget spent", "response_id", c.turns.activeResp,
			"hedges", c.hedge.hedges, "turns", c.hedge.turns)
		return
	}
	// The hedge's session counts against the region's max_sessions: a
	// warm standby's slot is retagged, a cold dial takes one.
	var lease *Lease
	if !warm {
		l, err := c.pool.AcquireIn(region.Name, SessionHedge)
		if err != nil {
			c.m.HedgesSkipped.WithLabelValues("no_capacity").Inc()
			return
		}
		lease = l
	}
	if !c.pool.takeHedge() {
		if lease != nil {
			lease.Release()
		}
		c.m.HedgesSkipped.WithLabelValues("process_budget").Inc()
		c.sessionLog().Info("failover: hedge skipped, process budget spent", "response_id", c.turns.activeResp)
		return
	}
	c.hedge.hedges++
	c.m.Hedges.WithLabelValues(c.active.region.Name, region.Name).Inc()
	run := &hedgeRun{region: region.Name, warm: warm, startedAt: now, deadline: deadline,
		primaryRegion: c.active.region.Name, primarySession: c.active.s.ID()}
	c.hedge.run = run
	if warm {
		run.ss = c.standby.spare
		c.standby.spare = nil
		if run.ss.lease != nil {
			run.ss.lease.Retag(SessionHedge)
		}
		c.askHedge(req)
		return
	}
	c.pool.beginProbe(region.Name)
	c.nextGen++
	run.dialGen = c.nextGen
	run.ask = req
	c.do(fxDial{Gen: run.dialGen, Purpose: dialHedge, Region: region, Lease: lease})
}

// onHedgeDial takes the hedge session's dial result.
func (c *Conversation) onHedgeDial(r dialResult) {
	run := c.hedge.run
	if run == nil || run.ss != nil || r.gen != run.dialGen {
		c.closeDialed(r) // the hedge was decided while it was dialled
		return
	}
	run.dialGen = 0
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
		c.m.HedgeResults.WithLabelValues("hedge_failed").Inc()
		c.endHedge("hedge_failed", r.err.Error())
		return
	}
	c.m.ConnectSeconds.WithLabelValues(r.region.Name).Observe(r.took.Seconds())
	run.ss = c.registerDialed(r)
	c.askHedge(run.ask)
}

// askHedge replays the conversation into the hedge session and asks it
// the turn.
func (c *Conversation) askHedge(req *createReq) {
	run := c.hedge.run
	// The swap's rendering and sender. The create follows at once: the
	// session takes client events in order, so every item is added or
	// refused before the answer starts, and a refused item drops the
	// hedge (onHedgeEvent) before it could win with a history missing it.
	items := c.rec.ReplayItems(run.ss.s.Dialect())
	c.callerAudioLast(items)
	err := c.sendReplay(run.ss, items, &run.acks)
	if err != nil {
		if c.ctx.Err() != nil {
			return
		}
		c.pool.Report(run.region, OutcomeSessionLost)
		c.m.HedgeResults.WithLabelValues("hedge_failed").Inc()
		c.endHedge("hedge_failed", err.Error())
		return
	}
	run.replayed = itemTokens(items)
	p := c.responseParams(req)
	ctx, cancel := c.sendCtx()
	err = run.ss.s.CreateResponse(ctx, p)
	cancel()
	if err != nil {
		c.m.HedgeResults.WithLabelValues("hedge_failed").Inc()
		c.endHedge("hedge_failed", "response.create: "+err.Error())
		return
	}
	run.req = req
	run.askedAt = c.now()
}

// onHedgeEvent handles an event of the hedge session before it won: its
// first output wins; a failure drops it; the rest waits in early.
func (c *Conversation) onHedgeEvent(ev realtime.ServerEvent) {
	run := c.hedge.run
	if ack, ok := run.acks.Observe(ev); ok {
		if !ack.Accepted {
			c.m.HedgeResults.WithLabelValues("hedge_failed").Inc()
			c.endHedge("hedge_failed", fmt.Sprintf("replay item %s refused: %s", ack.Item.ID, ack.Error.Message))
			return
		}
		run.early = append(run.early, ev)
		return
	}
	switch ev.Type {
	case realtime.EvError:
		d := ev.Error
		if d == nil {
			d = &realtime.ErrorDetail{}
		}
		if trig := classifyErrorEvent(d); trig != 0 {
			c.hedgeFailed(trig, fmt.Sprintf("%s/%s: %s", d.Type, d.Code, d.Message))
			return
		}
		c.log.Info("failover: recoverable error event on the hedge session", "region", run.region, "session_id", run.ss.s.ID(),
			"type", d.Type, "code", d.Code, "message", d.Message)
		return
	case realtime.EvResponseCreated:
		id := ev.ResponseID
		if ev.Response != nil {
			id = ev.Response.ID
		}
		run.respID = id
	case realtime.EvResponseDone:
		r := ev.Response
		if r != nil && r.Status == realtime.StatusFailed {
			c.hedgeFailed(classifyFailedResponse(r), "response failed")
			return
		}
		// Done with no output: the hedge has no answer to give.
		c.m.HedgeResults.WithLabelValues("hedge_failed").Inc()
		c.endHedge("hedge_failed", "response done without output")
		return
	case realtime.EvOutputAudioDelta, realtime.EvOutputAudioTranscriptDelta,
		realtime.EvFunctionCallArgumentsDelta, realtime.EvFunctionCallArgumentsDone:
		// An answer the caller can hear (or a function call). Text in an
		// audio session is a silent answer (silent.go): it never wins.
		c.hedgeWins(&ev)
		return
	}
	run.early = append(run.early, ev)
}

// onHedgeEnd: the hedge session's stream ended before it won.
func (c *Conversation) onHedgeEnd(err error) {
	msg := "event stream ended"
	if err != nil {
		msg = err.Error()
	}
	c.hedgeFailed(classifySessionEnd(err, false), msg)
}

func (c *Conversation) hedgeFailed(trig Trigger, msg string) {
	if o := trig.outcome(); o != 0 {
		c.pool.Report(c.hedge.run.region, o)
	}
	c.m.HedgeResults.WithLabelValues("hedge_failed").Inc()
	c.endHedge("hedge_failed", trig.String()+": "+msg)
}

// hedgeTakesOver: the primary failed (trig) while the hedge was already
// asked: the hedge session takes the turn, no swap. It reports whether it
// did.
func (c *Conversation) hedgeTakesOver(trig Trigger) bool {
	run := c.hedge.run
	if run == nil || run.req == nil {
		return false
	}
	c.m.HedgeResults.WithLabelValues("primary_failed").Inc()
	c.promoteHedge(nil, "primary_failed", trig.String())
	return true
}

// hedgeWins: the hedge's output came first.
func (c *Conversation) hedgeWins(ev *realtime.ServerEvent) {
	c.m.HedgeResults.WithLabelValues("hedge").Inc()
	// The primary lost a hedge: that counts against its region.
	c.pool.Report(c.active.region.Name, OutcomeStall)
	c.promoteHedge(ev, "hedge", "")
}

// promoteHedge makes the hedge session the active one: the primary's
// answer is cancelled, leaves the record and its session is closed; the
// hedge's early events, then won (if any), are handled as the active
// session's.
func (c *Conversation) promoteHedge(won *realtime.ServerEvent, result, why string) {
	run := c.hedge.run
	now := c.now()
	primary := c.active
	primaryResp := c.turns.activeResp
	if !c.turns.waitFrom.IsZero() {
		// How long the primary had waited: a lower bound of its time
		// to first audio, which keeps a slow region's deadline honest.
		c.pool.ObserveTTFA(primary.region.Name, now.Sub(c.turns.waitFrom))
	}
	if won != nil {
		c.pool.ObserveTTFA(run.region, now.Sub(run.askedAt))
	}
	if primaryResp != "" && c.ctx.Err() == nil {
		ctx, cancel := c.sendCtx()
		if err := primary.s.CancelResponse(ctx, primaryResp); err != nil {
			c.sessionLog().Debug("failover: response.cancel failed", "response_id", primaryResp, "err", err)
		}
		cancel()
	}
	lostTokens := run.replayed + c.outputTokens(c.turns.activeItems)
	for _, id := range c.turns.activeItems {
		c.rec.Apply(realtime.ServerEvent{Type: realtime.EvItemDeleted, ItemID: id})
	}
	c.m.HedgeCancelledTok.Add(float64(lostTokens))
	c.observeLostRace(primaryResp, now)
	// Caller audio the primary had not committed goes to the hedge
	// session, as after a swap.
	c.caller.swapBuf = append(append([]byte(nil), c.caller.turnBuf...), c.caller.swapBuf...)
	c.caller.turnBuf = c.caller.turnBuf[:0]
	c.resetResponseState()
	c.retire(primary)
	c.hedge.run = nil
	c.active = run.ss
	if run.ss.lease != nil {
		run.ss.lease.Retag(SessionCall) // the winning hedge now carries the call
	}
	c.swap.unconfirmed = true
	c.turns.inflight = run.req
	c.turns.noRespAt = now.Add(c.cfg.StallNoResponse)
	c.deliverBuffered()
	c.logHedge(run, result, why, primaryResp, now)
	for _, ev := range run.early {
		c.onActiveEvent(ev)
	}
	if won != nil {
		c.onActiveEvent(*won)
	}
	c.ensureSpare(now)
}

// dropHedge ends a running hedge that lost its reason to be (the caller
// spoke, hold, the call ended, …), counted as result.
func (c *Conversation) dropHedge(result, why string) {
	if c.hedge.run == nil {
		return
	}
	c.m.HedgeResults.WithLabelValues(result).Inc()
	c.endHedge(result, why)
}

// endHedge closes the hedge session, whose answer the caller never heard:
// its response is cancelled first (the session closes right after, so it
// can never be used out of sync). A hedge still being dialled has its
// session closed when the dial returns.
func (c *Conversation) endHedge(result, why string) {
	run := c.hedge.run
	c.hedge.run = nil
	if run.ss != nil {
		if run.req != nil && c.ctx.Err() == nil {
			ctx, cancel := c.sendCtx()
			if err := run.ss.s.CancelResponse(ctx, run.respID); err != nil {
				c.log.Debug("failover: hedge response.cancel failed", "region", run.region, "session_id", run.ss.s.ID(), "err", err)
			}
			cancel()
		}
		c.retire(run.ss)
	}
	if run.req != nil {
		c.m.HedgeCancelledTok.Add(float64(run.replayed + earlyTokens(run.early)))
	}
	c.logHedge(run, result, why, c.turns.activeResp, c.now())
}

// logHedge writes the hedge's one line, with both sessions and responses.
func (c *Conversation) logHedge(run *hedgeRun, result, why, primaryResp string, now time.Time) {
	hedgeSession := ""
	if run.ss != nil {
		hedgeSession = run.ss.s.ID()
	}
	c.log.Info("failover: hedge", "result", result, "why", why,
		"region", run.primaryRegion, "session_id", run.primarySession, "response_id", primaryResp,
		"hedge_region", run.region, "hedge_session_id", hedgeSession, "hedge_response_id", run.respID,
		"warm_standby", run.warm, "deadline_ms", run.deadline.Milliseconds(), "hedge_ms", now.Sub(run.startedAt).Milliseconds())
	if c.observer != nil {
		c.observer.Hedged(HedgeEntry{At: run.startedAt, Primary: run.primaryRegion, Hedge: run.region, Trigger: why,
			Winner: result, PauseMs: now.Sub(run.startedAt).Milliseconds()})
	}
}

// Token estimates for the cancelled-tokens metric: the service's own
// counts are in response.done's usage, which a cancelled, closed session
// never sends.
const (
	charsPerToken       = 4
	audioTokensPerSec   = 20
	inputAudioMsPerTok  = 100
	tokensPerItemHeader = 4
)

func itemTokens(items []realtime.Item) int {
	n := 0
	for _, it := range items {
		n += tokensPerItemHeader + (len(it.Arguments)+len(it.Output))/charsPerToken
		for _, p := range it.Content {
			n += len(p.Text) / charsPerToken
			if len(p.Audio) > 0 {
				// input audio, 8 kHz G.711 or 24 kHz PCM: bounded by the
				// PCM rate so the estimate never runs high
				n += len(p.Audio)/48/inputAudioMsPerTok + 1
			}
		}
	}
	return n
}

func (c *Conversation) outputTokens(items []string) int {
	n := 0
	for _, id := range items {
		if e, ok := c.rec.Entry(id); ok {
			n += len(e.Text)/charsPerToken + e.ProducedBytes/c.outBPM*audioTokensPerSec/1000
		}
	}
	return n
}

func earlyTokens(evs []realtime.ServerEvent) int {
	n := 0
	for _, ev := range evs {
		n += len(ev.Delta) / charsPerToken
	}
	return n
}
