package failover

import (
	"strings"

	"github.com/sipbridge/sipbridge/realtime"
)

// Silent answers. After a replayed history the model sometimes answers an
// audio call in text only (a text content part, text deltas, no audio:
// protocol doc §9); the caller hears nothing while the session reports a
// completed response. Such an answer is a failure, detected at its first
// text event rather than at response.done: the response is cancelled, its
// item deleted, and the turn asked again with the caller's last turn as
// audio at the end of the conversation (what brings the audio back: an
// explicit audio output modality does not, §9). A response that completes
// with no audio and no function call is the same failure, seen at
// response.done. When the re-asked turn is silent again, the session is
// left (TriggerSilentAnswer) and the swap replays the conversation in
// another region.

// maxSilentRetries is how many silent answers in a row a session gets a
// second chance for before the call leaves it.
const maxSilentRetries = 1

// Kinds of silent answer (the metric's kind label).
const (
	silentText  = "text"
	silentEmpty = "empty"
)

// silentPart is what the actor knows about the responses of the active
// session for silent-answer detection.
type silentPart struct {
	audible map[string]bool // response id → produced audio
	called  map[string]bool // response id → produced a function call
	handled map[string]bool // response id → found silent (its text events are dropped)
	retries int             // silent answers in a row re-asked in this session
}

// observeSilent takes every event of the active session before it is
// handled; it reports true when the event belongs to a silent answer and
// must not be handled further.
func (c *Conversation) observeSilent(ev realtime.ServerEvent) bool {
	s := &c.silent
	switch ev.Type {
	case realtime.EvOutputAudioDelta:
		if len(ev.Audio) > 0 && ev.ResponseID != "" {
			if s.audible == nil {
				s.audible = map[string]bool{}
			}
			if !s.audible[ev.ResponseID] {
				s.audible[ev.ResponseID] = true
				s.retries = 0 // the session speaks again
			}
		}
		return false
	case realtime.EvFunctionCallArgumentsDelta, realtime.EvFunctionCallArgumentsDone:
		c.markCalled(ev.ResponseID)
		return false
	case realtime.EvOutputItemAdded, realtime.EvOutputItemDone:
		if ev.Item != nil && ev.Item.Type == "function_call" {
			c.markCalled(ev.ResponseID)
		}
		return false
	}
	if !realtime.IsTextAnswer(ev) {
		return false
	}
	respID := ev.ResponseID
	if respID == "" {
		respID = c.turns.activeResp
	}
	if s.handled[respID] {
		return true
	}
	if respID == "" || c.play.suppressRsp[respID] {
		return false // an interrupted answer's tail: nothing to ask again
	}
	if s.audible[respID] {
		// Text beside audio (a transcript-like text part) is not silent.
		return false
	}
	c.onSilentAnswer(respID, ev.ItemID, silentText)
	return true
}

func (c *Conversation) markCalled(respID string) {
	if respID == "" {
		respID = c.turns.activeResp
	}
	if respID == "" {
		return
	}
	if c.silent.called == nil {
		c.silent.called = map[string]bool{}
	}
	c.silent.called[respID] = true
}

// silentAtDone checks a completed response for audio or a function call; a
// response with neither is a silent answer (handled here). It reports true
// when the response was silent, so it does not count as a good answer.
func (c *Conversation) silentAtDone(r *realtime.ResponseInfo, id string) bool {
	s := &c.silent
	defer func() {
		delete(s.audible, id)
		delete(s.called, id)
	}()
	if s.handled[id] {
		delete(s.handled, id)
		return true
	}
	if r.Status != realtime.StatusCompleted || s.audible[id] || s.called[id] || c.play.suppressRsp[id] || c.caller.held {
		return false
	}
	for _, it := range r.Output {
		if it.Type == "function_call" {
			return false
		}
		for _, p := range it.Content {
			if p.Type == "output_audio" || p.Type == "audio" {
				return false
			}
		}
	}
	itemID := ""
	if len(c.turns.activeItems) > 0 {
		itemID = c.turns.activeItems[0]
	}
	c.onSilentAnswer(id, itemID, silentEmpty)
	delete(s.handled, id)
	return true
}

// onSilentAnswer: response respID (its message itemID, if known) reached
// the caller as nothing. Cancel and delete it, then ask again with the
// caller's last turn as audio, or leave the session when that was tried.
func (c *Conversation) onSilentAnswer(respID, itemID, kind string) {
	s := &c.silent
	if s.handled == nil {
		s.handled = map[string]bool{}
	}
	s.handled[respID] = true
	region := c.active.region.Name
	c.m.quiet.SilentAnswers.WithLabelValues(region, kind).Inc()
	c.sessionLog().Warn("failover: silent answer", "kind", kind, "response_id", respID, "item_id", itemID,
		"retries", s.retries)

	req := c.turns.respReqs[respID]
	if req == nil && c.turns.inflight != nil && respID == c.turns.activeResp {
		req = c.turns.inflight
	}
	redo := &createReq{plain: true}
	if req != nil {
		cp := *req
		redo = &cp
	}
	audio, moved := c.lastCallerAudio()
	if c.fn.ending != nil {
		// The model ended the call: nothing more is asked of it.
		moved = false
	}
	if s.retries >= maxSilentRetries || !moved {
		delete(s.handled, respID)
		c.fail(TriggerSilentAnswer, failInfo{respID: respID, err: "answer without audio (" + kind + ")"})
		return
	}
	s.retries++
	ctx, cancel := c.sendCtx()
	defer cancel()
	if kind == silentText {
		if err := c.active.s.CancelResponse(ctx, respID); err != nil {
			c.sessionLog().Debug("failover: response.cancel failed", "response_id", respID, "err", err)
		}
	}
	if itemID != "" {
		if err := c.active.s.DeleteItem(ctx, itemID); err != nil {
			c.sessionLog().Debug("failover: conversation.item.delete failed", "item_id", itemID, "err", err)
		}
		c.rec.Apply(realtime.ServerEvent{Type: realtime.EvItemDeleted, ItemID: itemID})
	}
	// The caller's last turn moves to the end of the conversation as audio:
	// deleted where it is, created again (a fresh id) after everything else.
	if err := c.active.s.DeleteItem(ctx, audio.ItemID); err != nil {
		c.sessionLog().Debug("failover: conversation.item.delete failed", "item_id", audio.ItemID, "err", err)
	}
	c.rec.Apply(realtime.ServerEvent{Type: realtime.EvItemDeleted, ItemID: audio.ItemID})
	id := realtime.NewItemID()
	it := realtime.Item{ID: id, Type: "message", Role: "user",
		Content: []realtime.ContentPart{{Type: "input_audio", Audio: audio.Audio}}}
	if err := c.active.s.CreateItem(ctx, it, ""); err != nil {
		c.sessionLog().Warn("failover: re-creating the caller's turn failed", "err", err)
	}
	c.rec.SetUserAudio(id, audio.Audio)
	if strings.TrimSpace(audio.Text) != "" {
		c.rec.Apply(realtime.ServerEvent{Type: realtime.EvInputTranscriptionCompleted, ItemID: id, Transcript: audio.Text})
	}
	c.sessionLog().Info("failover: asking again with the caller's audio last", "response_id", respID,
		"old_item_id", audio.ItemID, "item_id", id, "audio_ms", len(audio.Audio)/c.inBPM)
	if respID == c.turns.activeResp {
		// Its remaining events are dropped; the retry waits for its
		// response.done (one response at a time).
		c.play.suppressRsp[respID] = true
	}
	c.turns.queue = append([]*createReq{redo}, c.turns.queue...)
	c.pump()
}

// lastCallerAudio is the record's last user turn, when it still has its
// audio.
func (c *Conversation) lastCallerAudio() (realtime.Entry, bool) {
	es := c.rec.Entries()
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Kind == realtime.EntryUser {
			return es[i], len(es[i].Audio) > 0
		}
	}
	return realtime.Entry{}, false
}
