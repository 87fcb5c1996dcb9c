package failover

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

var errNilSession = errors.New("failover: dialer returned no session and no error")

// onCallerAudio routes one caller frame: to the active session (and the
// uncommitted-turn buffer kept for replay), or into the swap buffer while
// no session takes it. Nothing is dropped during a swap.
func (c *Conversation) onCallerAudio(fp *[]byte) {
	defer c.putFrame(fp)
	f := *fp
	if c.held {
		return // on hold: the model hears nothing
	}
	switch c.state {
	case stActive:
		if !c.active.s.AppendAudio(f) {
			c.m.CallerFramesDropped.Inc()
		}
		c.active.inBytes += len(f)
		c.turnBuf = append(c.turnBuf, f...)
		c.trimTurnBuf()
	case stConnecting, stSwapping:
		c.swapBuf = append(c.swapBuf, f...)
		if over := len(c.swapBuf) - maxSwapMs*c.inBPM; over > 0 {
			// Reslice rather than copy: once full, copying the whole
			// buffer on every frame would be 30 s of audio per 20 ms.
			// append reallocates (copying) only when the capacity left
			// runs out.
			c.swapBuf = c.swapBuf[over:]
		}
	}
}

// trimTurnBuf keeps only the uncommitted audio a replay could need: from the
// start of the speech the server detected (capped), or a short tail while it
// hears none. Trimming waits for a second of excess so that the copy is not
// made on every frame.
func (c *Conversation) trimTurnBuf() {
	keep := keepTailMs * c.inBPM
	if c.speechActive {
		// From the earliest speech start still uncommitted, capped.
		since := 0
		for _, ms := range c.speechStart {
			since = max(since, c.active.inBytes-ms*c.inBPM)
		}
		keep = min(max(keep, since), maxTurnMs*c.inBPM)
	}
	if over := len(c.turnBuf) - keep; over > 1000*c.inBPM {
		c.turnBuf = append(c.turnBuf[:0], c.turnBuf[over:]...)
	}
}

// onSessionEvent handles one event of a session. Events of a retired
// session are ignored; the spare's only matter when it ends.
func (c *Conversation) onSessionEvent(se sessEvent) {
	if !se.end {
		c.evSeen++
	}
	if c.spare != nil && se.gen == c.spare.gen {
		if se.end {
			c.log.Info("failover: warm standby ended", "region", c.spare.region.Name, "session_id", c.spare.s.ID(), "err", se.err)
			c.retire(c.spare)
			c.spare = nil
			c.spareRetryAt = c.now().Add(spareRetry)
		}
		return
	}
	if c.active == nil || se.gen != c.active.gen {
		return // stale: a session already swapped out
	}
	if se.end {
		pastExpiry := false
		if d := c.active.deadline(); !d.IsZero() && !c.now().Before(d) {
			pastExpiry = true
		}
		msg := "event stream ended"
		if se.err != nil {
			msg = se.err.Error()
		}
		c.fail(classifySessionEnd(se.err, pastExpiry), failInfo{err: msg})
		return
	}
	ev := se.ev
	switch ev.Type {
	case realtime.EvError:
		c.onErrorEvent(ev)
	case realtime.EvInputSpeechStarted:
		c.onSpeechStarted(ev)
	case realtime.EvInputSpeechStopped:
		c.speechActive = false
		c.speechEnd[ev.ItemID] = ev.AudioEndMs
		c.turnEndAt = c.now()
		if c.vadCreates() && c.activeResp == "" && c.noRespAt.IsZero() {
			c.noRespAt = c.turnEndAt.Add(c.cfg.StallNoResponse)
		}
	case realtime.EvInputCommitted, realtime.EvInputTimeoutTriggered:
		c.onCommitted(ev)
	case realtime.EvItemAdded, realtime.EvItemDone:
		c.rec.Apply(ev)
		if ev.Item != nil && ev.Item.Type == "function_call" && ev.Item.CallID != "" {
			c.active.calls[ev.Item.CallID] = true
		}
	case realtime.EvInputTranscriptionCompleted, realtime.EvItemTruncated, realtime.EvItemDeleted:
		c.rec.Apply(ev)
	case realtime.EvResponseCreated:
		c.onResponseCreated(ev)
	case realtime.EvOutputItemAdded:
		c.rec.Apply(ev)
		if ev.Item != nil && ev.Item.Role == "assistant" {
			c.trackItem(ev.Item.ID)
		}
	case realtime.EvOutputAudioDelta:
		c.onAudioDelta(ev)
	case realtime.EvOutputAudioDone:
		c.midAudioAt = time.Time{}
	case realtime.EvOutputAudioTranscriptDelta, realtime.EvOutputTextDelta:
		c.rec.Apply(ev)
		c.progress()
	case realtime.EvOutputAudioTranscriptDone, realtime.EvOutputTextDone:
		c.rec.Apply(ev)
	case realtime.EvFunctionCallArgumentsDelta:
		c.progress()
	case realtime.EvFunctionCallArgumentsDone:
		c.rec.Apply(ev)
		c.progress()
		c.onFunctionCall(realtime.Item{ID: ev.ItemID, Type: "function_call", CallID: ev.CallID, Name: ev.Name, Arguments: ev.Arguments})
	case realtime.EvOutputItemDone:
		c.rec.Apply(ev)
		if ev.Item != nil && ev.Item.Type == "function_call" {
			c.onFunctionCall(*ev.Item)
		}
	case realtime.EvResponseDone:
		c.onResponseDone(ev)
	case realtime.EvSessionCreated, realtime.EvSessionUpdated, realtime.EvConversationCreated,
		realtime.EvContentPartAdded, realtime.EvContentPartDone, realtime.EvRateLimitsUpdated,
		realtime.EvInputCleared, realtime.EvInputTranscriptionDelta, realtime.EvInputTranscriptionSegment,
		realtime.EvInputTranscriptionFailed:
		// Nothing to do: the record does not need them.
	default:
		c.sessionLog().Debug("failover: unknown server event ignored", "type", ev.Type, "wire_type", ev.WireType, "event_id", ev.EventID)
	}
}

func (c *Conversation) vadCreates() bool {
	td := c.cfg.Session.TurnDetection
	return td != nil && td.CreateResponse
}

func (c *Conversation) interruptsOnServer() bool {
	td := c.cfg.Session.TurnDetection
	return td != nil && td.InterruptResponse
}

// onErrorEvent classifies an error event: a few end the session's usefulness
// (swap), the rest are recoverable and only logged (§3.2, §6.1).
func (c *Conversation) onErrorEvent(ev realtime.ServerEvent) {
	d := ev.Error
	if d == nil {
		d = &realtime.ErrorDetail{}
	}
	if trig := classifyErrorEvent(d); trig != 0 {
		c.fail(trig, failInfo{err: fmt.Sprintf("%s/%s: %s", d.Type, d.Code, d.Message)})
		return
	}
	if d.Code == codeActiveResponse && c.inflight != nil {
		// Our create lost the race with a server (VAD) response, which
		// answers the same conversation: ours is not needed (§2.6).
		c.inflight = nil
		if c.activeResp != "" {
			c.noRespAt = time.Time{}
		}
	}
	level := slog.LevelWarn
	if recoverableExpected(d) {
		level = slog.LevelInfo
	}
	c.sessionLog().Log(c.ctx, level, "failover: recoverable error event", "event_id", ev.EventID,
		"client_event_id", d.EventID, "type", d.Type, "code", d.Code, "message", d.Message, "response_id", c.activeResp)
}

// onSpeechStarted: the caller started talking. If assistant audio is playing
// or queued, this is a barge-in: flush playout at once and truncate the item
// at what was played.
func (c *Conversation) onSpeechStarted(ev realtime.ServerEvent) {
	c.speechActive = true
	c.speechStart[ev.ItemID] = ev.AudioStartMs
	if c.isPlaying() {
		c.interrupt(!c.interruptsOnServer(), "barge_in")
		return
	}
	if c.activeResp != "" && c.interruptsOnServer() {
		// Nothing heard yet, but the server cancels this answer now
		// (interrupt_response): audio of it still in flight must not play.
		c.suppressRsp[c.activeResp] = true
		for _, id := range c.activeItems {
			c.suppressItm[id] = true
		}
		c.firstAudioAt, c.midAudioAt = time.Time{}, time.Time{}
	}
}

// onCommitted: the caller's turn became user item ev.ItemID. Its audio moves
// from the uncommitted buffer into the record.
func (c *Conversation) onCommitted(ev realtime.ServerEvent) {
	c.rec.Apply(realtime.ServerEvent{Type: realtime.EvInputCommitted, ItemID: ev.ItemID, PreviousItemID: ev.PreviousItemID})
	bufStart := c.active.inBytes - len(c.turnBuf)
	start, end := bufStart, c.active.inBytes
	if ms, ok := c.speechStart[ev.ItemID]; ok {
		start = ms * c.inBPM
	} else if ev.Type == realtime.EvInputTimeoutTriggered {
		start = ev.AudioStartMs * c.inBPM
	}
	if ms, ok := c.speechEnd[ev.ItemID]; ok {
		end = ms * c.inBPM
	} else if ev.Type == realtime.EvInputTimeoutTriggered && ev.AudioEndMs > 0 {
		end = ev.AudioEndMs * c.inBPM
	}
	start = min(max(start, bufStart), c.active.inBytes)
	end = min(max(end, start), c.active.inBytes)
	if end > start && ev.ItemID != "" {
		c.rec.SetUserAudio(ev.ItemID, c.turnBuf[start-bufStart:end-bufStart])
	}
	c.turnBuf = append(c.turnBuf[:0], c.turnBuf[end-bufStart:]...)
	delete(c.speechStart, ev.ItemID)
	delete(c.speechEnd, ev.ItemID)
	c.speechActive = false
	if c.turnEndAt.IsZero() || ev.Type == realtime.EvInputTimeoutTriggered {
		c.turnEndAt = c.now()
	}
	switch {
	case c.vadCreates():
		c.awaitingResponse = true
		if c.activeResp == "" && c.noRespAt.IsZero() {
			c.noRespAt = c.now().Add(c.cfg.StallNoResponse)
		}
	case c.cfg.Session.TurnDetection != nil:
		// VAD commits but does not answer: answering is ours.
		c.awaitingResponse = true
		c.enqueue(&createReq{plain: true})
	}
}

func (c *Conversation) onResponseCreated(ev realtime.ServerEvent) {
	id := ev.ResponseID
	var meta map[string]string
	if ev.Response != nil {
		id = ev.Response.ID
		meta = ev.Response.Metadata
	}
	if c.inflight != nil {
		tag := meta[metaKey]
		if tag == "" || tag == c.inflight.tag {
			c.respReqs[id] = c.inflight
			c.inflight = nil
		}
	}
	c.activeResp = id
	c.activeItems = nil
	c.awaitingResponse = false
	c.noRespAt = time.Time{}
	c.midAudioAt = time.Time{}
	c.firstAudioAt = c.now().Add(c.cfg.StallFirstAudio)
}

// progress: the active response produced output, so it is not stalled
// before its first output.
func (c *Conversation) progress() {
	c.firstAudioAt = time.Time{}
}

func (c *Conversation) trackItem(itemID string) {
	if itemID != "" && !slices.Contains(c.activeItems, itemID) {
		c.activeItems = append(c.activeItems, itemID)
	}
}

func (c *Conversation) onAudioDelta(ev realtime.ServerEvent) {
	c.rec.Apply(ev) // produced audio counts even when the caller must not hear it
	if c.suppressRsp[ev.ResponseID] || c.suppressItm[ev.ItemID] || c.held {
		return // the tail of an interrupted answer
	}
	if c.activeResp == "" && ev.ResponseID != "" {
		// response.created can be missing around interruptions (§3.6).
		c.activeResp = ev.ResponseID
	}
	c.trackItem(ev.ItemID)
	c.player.Play(ev.ItemID, ev.Audio)
	ps := c.playout[ev.ItemID]
	if ps == nil {
		ps = &playState{}
		c.playout[ev.ItemID] = ps
	}
	if !ps.listed {
		ps.listed = true
		c.playOrder = append(c.playOrder, ev.ItemID)
	}
	ps.bytes += len(ev.Audio)
	ps.finished = false
	now := c.now()
	c.lastPlayAt = now
	c.progress()
	c.midAudioAt = now.Add(c.cfg.StallMidAudio)
	if c.pendingLog != nil && c.pendingLog.awaitAudio {
		// The pause ends when the new answer's first audio reaches the
		// player; the media layer adds at most one 20 ms frame until it is
		// on the wire.
		c.pendingLog.pause = now.Sub(c.pendingLog.pauseStart)
		c.m.Pause.Observe(c.pendingLog.pause.Seconds())
		c.emitSwapLog("answered")
	}
}

func (c *Conversation) onResponseDone(ev realtime.ServerEvent) {
	r := ev.Response
	if r == nil {
		r = &realtime.ResponseInfo{ID: ev.ResponseID}
	}
	id := r.ID
	if id == "" {
		id = c.activeResp
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
		c.fail(trig, failInfo{respID: id, err: msg})
		return
	}
	if status == realtime.StatusCompleted || status == realtime.StatusIncomplete {
		c.pool.Report(c.active.region.Name, OutcomeResponseOK)
		// The session has proved itself: the swap that brought it worked.
		c.failedInRow = 0
		c.unconfirmed = false
	}
	delete(c.respReqs, id)
	if id == c.activeResp || c.activeResp == "" {
		c.activeResp = ""
		c.activeItems = nil
		c.firstAudioAt = time.Time{}
		c.midAudioAt = time.Time{}
	}
	if c.awaitingResponse && c.noRespAt.IsZero() && c.vadCreates() {
		// The caller's turn was committed while this response ran; its
		// answer is due now.
		c.noRespAt = c.now().Add(c.cfg.StallNoResponse)
	}
	if c.ending != nil && !c.ending.respDone && (c.ending.respID == "" || c.ending.respID == id) {
		c.ending.respDone = true
		c.ending.deadline = c.now().Add(time.Duration(c.unplayedMs())*time.Millisecond + endCallSlack)
		c.checkEnd(c.now())
	}
	c.pump()
}

// ---- response.create serialisation ----------------------------------------

// enqueue asks for a response. Only one response may be in flight (§2.6):
// creates wait until the previous response is done.
func (c *Conversation) enqueue(req *createReq) {
	if c.ending != nil {
		return // after end_call the model says nothing more
	}
	if req.plain && c.sw != nil && c.sw.redo != nil {
		return // the create at the end of the swap covers it
	}
	c.queue = append(c.queue, req)
	c.pump()
}

func (c *Conversation) pump() {
	if c.state != stActive || c.activeResp != "" || c.inflight != nil || c.held || len(c.queue) == 0 {
		return
	}
	req := c.queue[0]
	c.queue = c.queue[1:]
	c.sendCreate(req)
}

func (c *Conversation) sendCreate(req *createReq) {
	c.reqSeq++
	req.tag = fmt.Sprintf("%d", c.reqSeq)
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
	ctx, cancel := c.sendCtx()
	err := c.active.s.CreateResponse(ctx, p)
	cancel()
	if err != nil {
		// The session is failing; its end will trigger the swap, which
		// re-sends this create.
		c.sessionLog().Warn("failover: response.create failed", "err", err)
	}
	c.inflight = req
	c.noRespAt = c.now().Add(c.cfg.StallNoResponse)
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

// ---- playout, barge-in, hold ----------------------------------------------

// isPlaying reports whether assistant audio of the active session is still
// queued or playing: an item counts as finished once the media layer reported
// it (PlayoutDone) or its played position reached what was produced.
func (c *Conversation) isPlaying() bool {
	playing := false
	kept := c.playOrder[:0]
	for _, id := range c.playOrder {
		ps := c.playout[id]
		if !ps.finished {
			produced := ps.bytes / c.outBPM
			if c.player.PlayedMs(id) >= produced-playTolMs {
				ps.finished = true
				c.rec.SetHeard(id, produced)
			}
		}
		if ps.finished {
			// Finished items leave the list, which stays as short as what
			// is queued; more audio for one puts it back.
			ps.listed = false
			continue
		}
		kept = append(kept, id)
		playing = true
	}
	c.playOrder = kept
	return playing
}

func (c *Conversation) unplayedMs() int {
	total := 0
	for _, id := range c.playOrder {
		ps := c.playout[id]
		if ps.finished {
			continue
		}
		if left := ps.bytes/c.outBPM - c.player.PlayedMs(id); left > 0 {
			total += left
		}
	}
	return total
}

// interrupt stops the assistant mid-answer: flush playout, truncate each
// unfinished item at what the caller heard (never more than the model
// produced; skipped when nothing was heard: the server rejects it, §2.4),
// record the heard position, drop the rest of the answer's audio, and cancel
// the response when the server will not (interrupt_response false, hold).
func (c *Conversation) interrupt(cancelResponse bool, why string) {
	c.player.Flush()
	for _, id := range c.playOrder {
		ps := c.playout[id]
		if ps.finished {
			continue
		}
		produced := ps.bytes / c.outBPM
		heard := min(c.player.PlayedMs(id), produced)
		if heard > 0 && heard < produced && c.active != nil {
			ctx, cancel := c.sendCtx()
			if err := c.active.s.Truncate(ctx, id, 0, heard); err != nil {
				c.sessionLog().Debug("failover: truncate failed", "item_id", id, "err", err)
			}
			cancel()
		}
		c.rec.Truncate(id, heard)
		c.suppressItm[id] = true
		c.sessionLog().Debug("failover: playout interrupted", "why", why, "item_id", id, "heard_ms", heard, "produced_ms", produced)
	}
	c.resetPlayout()
	if c.activeResp != "" {
		c.suppressRsp[c.activeResp] = true
		for _, id := range c.activeItems {
			c.suppressItm[id] = true
		}
		if cancelResponse && c.active != nil {
			ctx, cancel := c.sendCtx()
			if err := c.active.s.CancelResponse(ctx, c.activeResp); err != nil {
				c.sessionLog().Debug("failover: response.cancel failed", "response_id", c.activeResp, "err", err)
			}
			cancel()
		}
	}
	c.firstAudioAt, c.midAudioAt = time.Time{}, time.Time{}
}

func (c *Conversation) resetPlayout() {
	clear(c.playout)
	c.playOrder = c.playOrder[:0]
}

func (c *Conversation) onPlayoutDone(itemID string, playedMs int) {
	if ps := c.playout[itemID]; ps != nil && playedMs >= ps.bytes/c.outBPM-playTolMs {
		ps.finished = true
	}
	c.rec.SetHeard(itemID, playedMs)
	c.checkEnd(c.now())
	c.checkGiveUp(c.now())
}

func (c *Conversation) onHold(held bool) {
	if held == c.held {
		return
	}
	c.held = held
	if !held {
		c.log.Info("failover: caller resumed from hold")
		c.pump()
		return
	}
	c.log.Info("failover: caller put the call on hold")
	if c.state == stActive {
		c.interrupt(true, "hold")
		// What the caller said before the hold is not a turn to answer.
		ctx, cancel := c.sendCtx()
		if err := c.active.s.ClearAudio(ctx); err != nil {
			c.sessionLog().Debug("failover: input_audio_buffer.clear failed", "err", err)
		}
		cancel()
	} else {
		c.player.Flush()
	}
	c.turnBuf = c.turnBuf[:0]
	c.swapBuf = c.swapBuf[:0]
	c.speechActive = false
}

// ---- DTMF and functions ----------------------------------------------------

func (c *Conversation) onDTMF(digit rune) {
	if c.ending != nil || c.state == stDone || c.cfg.DTMFDisabled {
		return
	}
	c.addSystemNote(fmt.Sprintf("The caller pressed %c.", digit))
	if !c.cfg.DTMFSilent {
		c.enqueue(&createReq{plain: true})
	}
}

// addSystemNote records a system message and sends it to the active session
// (during a swap the replay carries it).
func (c *Conversation) addSystemNote(text string) {
	id := c.newItemID()
	c.rec.AddSystemNote(id, text)
	if c.state != stActive {
		return
	}
	ctx, cancel := c.sendCtx()
	defer cancel()
	item := realtime.Item{ID: id, Type: "message", Role: "system", Content: []realtime.ContentPart{{Type: "input_text", Text: text}}}
	if err := c.active.s.CreateItem(ctx, item, ""); err != nil {
		c.sessionLog().Warn("failover: sending system note failed", "err", err)
	}
}

// Function names the bridge implements.
const (
	fnEndCall      = "end_call"
	fnTransferCall = "transfer_call"
)

func (c *Conversation) onFunctionCall(it realtime.Item) {
	if it.CallID == "" || c.handledCalls[it.CallID] {
		return
	}
	c.handledCalls[it.CallID] = true
	if c.active != nil {
		c.active.calls[it.CallID] = true
	}
	log := c.sessionLog().With("response_id", c.activeResp, "function", it.Name, "fn_call_id", it.CallID)
	switch it.Name {
	case fnEndCall:
		log.Info("failover: model ended the call")
		c.sendFunctionOutput(it.CallID, `{"ok":true}`)
		// The goodbye (the rest of this response's audio) plays out first.
		c.ending = &endState{respID: c.activeResp}
		c.queue = nil
	case fnTransferCall:
		var args struct {
			Target string `json:"target"`
		}
		if it.Arguments != "" {
			if err := json.Unmarshal([]byte(it.Arguments), &args); err != nil {
				log.Warn("failover: transfer_call arguments are not JSON", "err", err)
			}
		}
		target, err := c.transferTarget(args.Target)
		if err != nil {
			log.Warn("failover: transfer refused", "target", args.Target, "err", err)
			c.sendFunctionOutput(it.CallID, jsonString(map[string]any{"ok": false, "error": err.Error()}))
			c.enqueue(&createReq{plain: true})
			return
		}
		log.Info("failover: model asked for a transfer", "target", target)
		c.pendingTransfers[it.CallID] = target
		c.emit(Control{Kind: ControlTransfer, Target: target, CallID: it.CallID})
	default:
		if c.tools.runner != nil && c.tools.runner.Has(it.Name) {
			c.startTool(log, it)
			return
		}
		log.Warn("failover: model called an unknown function")
		c.sendFunctionOutput(it.CallID, jsonString(map[string]any{"ok": false, "error": fmt.Sprintf("unknown function %q", it.Name)}))
		c.enqueue(&createReq{plain: true})
	}
}

func (c *Conversation) transferTarget(asked string) (string, error) {
	if len(c.cfg.TransferTargets) == 0 {
		return "", errors.New("transfers are not available on this line")
	}
	if asked == "" {
		return c.cfg.TransferTargets[0], nil
	}
	if slices.Contains(c.cfg.TransferTargets, asked) {
		return asked, nil
	}
	return "", fmt.Errorf("target %q is not allowed", asked)
}

func (c *Conversation) onTransferResult(callID string, ok bool, detail string) {
	target, known := c.pendingTransfers[callID]
	if !known {
		c.log.Warn("failover: transfer result for an unknown call", "fn_call_id", callID)
		return
	}
	delete(c.pendingTransfers, callID)
	c.log.Info("failover: transfer result", "fn_call_id", callID, "target", target, "ok", ok, "detail", detail)
	out := map[string]any{"ok": ok}
	if ok {
		out["detail"] = detail
	} else {
		out["error"] = detail
	}
	c.sendFunctionOutput(callID, jsonString(out))
	c.enqueue(&createReq{plain: true})
}

// sendFunctionOutput records a function_call_output and sends it to the
// active session, first re-creating the call if this session does not have
// it (the transfer started before a swap). During a swap the replay carries
// both.
func (c *Conversation) sendFunctionOutput(callID, output string) {
	id := c.newItemID()
	c.rec.AddFunctionOutput(id, callID, output)
	if c.state != stActive {
		return
	}
	ctx, cancel := c.sendCtx()
	defer cancel()
	if !c.active.calls[callID] {
		if fc, ok := c.rec.FunctionCall(callID); ok {
			if err := c.active.s.CreateItem(ctx, fc, ""); err != nil {
				c.sessionLog().Warn("failover: re-creating function call failed", "fn_call_id", callID, "err", err)
			}
			c.active.calls[callID] = true
		}
	}
	item := realtime.Item{ID: id, Type: "function_call_output", CallID: callID, Output: output}
	if err := c.active.s.CreateItem(ctx, item, ""); err != nil {
		c.sessionLog().Warn("failover: sending function output failed", "fn_call_id", callID, "err", err)
	}
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return `{"ok":false}`
	}
	return string(b)
}

// checkEnd emits ControlEndCall once the end_call response is done and its
// goodbye has played (or could have, by the deadline).
func (c *Conversation) checkEnd(now time.Time) {
	e := c.ending
	if e == nil || !e.respDone || e.sent {
		return
	}
	if c.isPlaying() && now.Before(e.deadline) {
		return
	}
	e.sent = true
	c.log.Info("failover: goodbye played, ending the call")
	c.emit(Control{Kind: ControlEndCall, Reason: "model ended the call"})
}

// ---- watchdogs --------------------------------------------------------------

// checkWatchdogs fires a stall trigger when a deadline passed; it reports
// whether it did.
func (c *Conversation) checkWatchdogs(now time.Time) bool {
	switch {
	case !c.noRespAt.IsZero() && !now.Before(c.noRespAt):
		c.fail(TriggerStallNoResponse, failInfo{err: fmt.Sprintf("no response.created %s after the turn", c.cfg.StallNoResponse)})
	case !c.firstAudioAt.IsZero() && !now.Before(c.firstAudioAt):
		c.fail(TriggerStallFirstAudio, failInfo{respID: c.activeResp, err: fmt.Sprintf("no output %s after response.created", c.cfg.StallFirstAudio)})
	case !c.midAudioAt.IsZero() && !now.Before(c.midAudioAt):
		c.fail(TriggerStallMidAudio, failInfo{respID: c.activeResp, err: fmt.Sprintf("audio stopped for %s mid-answer", c.cfg.StallMidAudio)})
	default:
		return false
	}
	return true
}
