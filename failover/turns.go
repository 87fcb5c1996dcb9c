package failover

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

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
	confirmed        bool // CallConfirmed arrived

	// Watchdog deadlines (zero = disarmed).
	noRespAt     time.Time
	firstAudioAt time.Time
	midAudioAt   time.Time

	// The turn's wait for its answer's first output: since when (zero:
	// not waiting; gives the region's time to first audio) and the hedge
	// deadline (zero: none, or its hedge already decided).
	waitFrom time.Time
	hedgeAt  time.Time
}

func (c *Conversation) onResponseCreated(ev realtime.ServerEvent) {
	id := ev.ResponseID
	var meta map[string]string
	if ev.Response != nil {
		id = ev.Response.ID
		meta = ev.Response.Metadata
	}
	if c.turns.inflight != nil {
		tag := meta[metaKey]
		if tag == "" || tag == c.turns.inflight.tag {
			c.turns.respReqs[id] = c.turns.inflight
			c.turns.inflight = nil
		}
	}
	c.turns.activeResp = id
	c.turns.activeItems = nil
	c.turns.awaitingResponse = false
	c.turns.noRespAt = time.Time{}
	c.turns.midAudioAt = time.Time{}
	c.turns.firstAudioAt = c.now().Add(c.cfg.StallFirstAudio)
}

// progress: the active response produced output, so it is not stalled
// before its first output.
func (c *Conversation) progress() {
	c.turns.firstAudioAt = time.Time{}
	c.turnAnswered()
}

func (c *Conversation) trackItem(itemID string) {
	if itemID != "" && !slices.Contains(c.turns.activeItems, itemID) {
		c.turns.activeItems = append(c.turns.activeItems, itemID)
	}
}

func (c *Conversation) onResponseDone(ev realtime.ServerEvent) {
	r := ev.Response
	if r == nil {
		r = &realtime.ResponseInfo{ID: ev.ResponseID}
	}
	id := r.ID
	if id == "" {
		id = c.turns.activeResp
	}
	status := r.Status
	switch status {
	case realtime.StatusCompleted, realtime.StatusCancelled, realtime.StatusFailed, realtime.StatusIncomplete:
	default:
		status = "other"
	}
	c.m.Responses.WithLabelValues(c.active.region.Name, status).Inc()
	if status != realtime.StatusFailed {
		// One line per answer: the ids operators quote to their provider.
		reason := ""
		if r.StatusDetails != nil {
			reason = r.StatusDetails.Reason
		}
		c.sessionLog().Info("failover: response done", "response_id", id, "status", r.Status, "reason", reason)
	}
	if status == realtime.StatusFailed {
		trig := classifyFailedResponse(r)
		msg := ""
		if r.StatusDetails != nil && r.StatusDetails.Error != nil {
			e := r.StatusDetails.Error
			msg = fmt.Sprintf("%s/%s: %s", e.Type, e.Code, e.Message)
		}
		rl, _ := realtime.RateLimitFromEvent(c.active.region.Name, ev)
		c.fail(trig, failInfo{respID: id, err: msg, rateLimit: rl})
		return
	}
	silent := c.silentAtDone(r, id)
	if (status == realtime.StatusCompleted || status == realtime.StatusIncomplete) && !silent {
		c.pool.Report(c.active.region.Name, OutcomeResponseOK)
		// The session has proved itself: the swap that brought it worked.
		c.sessionWorked()
	}
	delete(c.turns.respReqs, id)
	if id == c.turns.activeResp || c.turns.activeResp == "" {
		// Done without output (cancelled, empty): the turn's wait ends
		// with no time to first audio, and a hedge of it has nothing to
		// answer.
		c.turns.waitFrom, c.turns.hedgeAt = time.Time{}, time.Time{}
		c.dropHedge("abandoned", "primary_done")
		c.turns.activeResp = ""
		c.turns.activeItems = nil
		c.turns.firstAudioAt = time.Time{}
		c.turns.midAudioAt = time.Time{}
	}
	if c.turns.awaitingResponse && c.turns.noRespAt.IsZero() && c.vadCreates() {
		// The caller's turn was committed while this response ran; its
		// answer is due now.
		c.turns.noRespAt = c.now().Add(c.cfg.StallNoResponse)
		c.armTurnWait()
	}
	if c.fn.ending != nil && !c.fn.ending.respDone && (c.fn.ending.respID == "" || c.fn.ending.respID == id) {
		c.fn.ending.respDone = true
		c.fn.ending.deadline = c.now().Add(time.Duration(c.unplayedMs())*time.Millisecond + endCallSlack)
		c.checkEnd(c.now())
	}
	c.pump()
}

// enqueue asks for a response. Only one response may be in flight (§2.6):
// creates wait until the previous response is done.
func (c *Conversation) enqueue(req *createReq) {
	if c.fn.ending != nil {
		return // after end_call the model says nothing more
	}
	if req.plain && c.swap.sw != nil && c.swap.sw.redo != nil {
		return // the create at the end of the swap covers it
	}
	c.turns.queue = append(c.turns.queue, req)
	c.pump()
}

func (c *Conversation) pump() {
	if c.state != stActive || c.turns.activeResp != "" || c.turns.inflight != nil || c.caller.held || len(c.turns.queue) == 0 {
		return
	}
	req := c.turns.queue[0]
	c.turns.queue = c.turns.queue[1:]
	c.sendCreate(req)
}

func (c *Conversation) sendCreate(req *createReq) {
	p := c.responseParams(req)
	ctx, cancel := c.sendCtx()
	err := c.active.s.CreateResponse(ctx, p)
	cancel()
	if err != nil {
		// The session is failing; its end will trigger the swap, which
		// re-sends this create.
		c.sessionLog().Warn("failover: response.create failed", "err", err)
	}
	c.turns.inflight = req
	c.turns.noRespAt = c.now().Add(c.cfg.StallNoResponse)
	c.armTurnWait()
}

// responseParams tags req with a fresh tag (echoed in response.created's
// metadata) and renders its response.create.
func (c *Conversation) responseParams(req *createReq) realtime.ResponseParams {
	c.turns.reqSeq++
	req.tag = fmt.Sprintf("%d", c.turns.reqSeq)
	p := realtime.ResponseParams{Instructions: req.params.Instructions, Metadata: map[string]string{}}
	maps.Copy(p.Metadata, req.params.Metadata)
	p.Metadata[metaKey] = req.tag
	if req.continuation {
		base := p.Instructions
		if base == "" {
			base = c.cfg.Session.Instructions
		}
		p.Instructions = joinInstructions(base, continueNote)
	}
	return p
}

func joinInstructions(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n\n" + b
}

// checkWatchdogs fires a stall trigger when a deadline passed; it reports
// whether it did.
func (c *Conversation) checkWatchdogs(now time.Time) bool {
	switch {
	case !c.turns.noRespAt.IsZero() && !now.Before(c.turns.noRespAt):
		c.fail(TriggerStallNoResponse, failInfo{err: fmt.Sprintf("no response.created %s after the turn", c.cfg.StallNoResponse)})
	case !c.turns.firstAudioAt.IsZero() && !now.Before(c.turns.firstAudioAt):
		c.fail(TriggerStallFirstAudio, failInfo{respID: c.turns.activeResp, err: fmt.Sprintf("no output %s after response.created", c.cfg.StallFirstAudio)})
	case !c.turns.midAudioAt.IsZero() && !now.Before(c.turns.midAudioAt):
		c.fail(TriggerStallMidAudio, failInfo{respID: c.turns.activeResp, err: fmt.Sprintf("audio stopped for %s mid-answer", c.cfg.StallMidAudio)})
	default:
		return false
	}
	return true
}

func (c *Conversation) vadCreates() bool {
	td := c.cfg.Session.TurnDetection
	return td != nil && td.CreateResponse
}

func (c *Conversation) interruptsOnServer() bool {
	td := c.cfg.Session.TurnDetection
	return td != nil && td.InterruptResponse
}

// maybeGreet queues the greeting once the first session is up and, with
// GreetAfterConfirm, the call is confirmed.
func (c *Conversation) maybeGreet() {
	if c.cfg.Greeting == "" || c.turns.greeted || !c.isReady() {
		return
	}
	if c.cfg.GreetAfterConfirm && !c.turns.confirmed {
		return
	}
	c.turns.greeted = true
	c.enqueue(&createReq{params: greetingParams(c.cfg)})
}

func greetingParams(cfg Config) realtime.ResponseParams {
	return realtime.ResponseParams{Instructions: joinInstructions(cfg.Session.Instructions, cfg.Greeting)}
}
