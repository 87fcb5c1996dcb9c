package failover

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// callerAudioLast renders the caller's last turn of a replay as its audio
// when the record still holds it, instead of its transcript. A history
// whose last user turn is client text is what makes the model answer in
// text only (§9); caller audio as the last user turn makes it speak.
// Earlier turns stay text: cheaper, and they do not decide the modality.
func (c *Conversation) callerAudioLast(items []realtime.Item) {
	for i := len(items) - 1; i >= 0; i-- {
		it := &items[i]
		if it.Type != "message" || it.Role != "user" {
			continue
		}
		if len(it.Content) != 1 || it.Content[0].Type != "input_text" {
			return
		}
		e, ok := c.rec.Entry(it.ID)
		if !ok || len(e.Audio) == 0 {
			return
		}
		it.Content = []realtime.ContentPart{{Type: "input_audio", Audio: e.Audio}}
		return
	}
}

// Replay confirmation. Every replayed item must be acknowledged by the new
// session before the swap's response.create: its conversation.item.added
// (.created in the preview shape), or an `error` naming its create's
// event_id (realtime.ItemAcks). A refused item is repaired and sent again
// (an over-long id or call_id fitted, caller audio replaced by its
// transcript: realtime.RepairItem); an item no repair fixes moves the swap
// on to another region, and is only left out, loudly, when a second region
// refuses it too (a live caller is worth more than one history item). The
// whole confirmation is bounded by replayTimeout; the new session's end
// during it is a failed attempt. While it runs the conversation stays
// swapping: caller audio is buffered, the session's events come here.

// replayState is one replay awaiting its acknowledgements.
type replayState struct {
	ss       *session
	warm     bool
	items    []realtime.Item // as sent, in order
	acks     realtime.ItemAcks
	accepted map[string]bool
	dropped  map[string]bool
	repaired map[string]bool
	deadline time.Time
}

// startReplay sends the replay into ss and waits for its
// acknowledgements (completeSwap once they are all in).
func (c *Conversation) startReplay(ss *session, warm bool, items []realtime.Item) {
	sw := c.swap.sw
	rp := &replayState{ss: ss, warm: warm, items: items, accepted: map[string]bool{}, dropped: map[string]bool{},
		repaired: map[string]bool{}, deadline: c.now().Add(replayTimeout)}
	sw.replay = rp
	if err := c.sendReplay(ss, items, &rp.acks); err != nil {
		c.replayFailed(rp, OutcomeSessionLost, err.Error())
		return
	}
	c.maybeReplayDone(rp)
}

// sendReplay sends items into ss, each expected in acks: the one replay
// sender of a swap, a rotation and a hedge (hedge.go).
func (c *Conversation) sendReplay(ss *session, items []realtime.Item, acks *realtime.ItemAcks) error {
	ctx, cancel := context.WithTimeout(c.ctx, replayTimeout)
	defer cancel()
	for i, it := range items {
		if err := acks.Expect(it); err != nil {
			// No id to confirm it by (never from the record): sent as is.
			c.log.Warn("failover: replay item not confirmable", "item_id", it.ID, "err", err)
		}
		if err := ss.s.CreateItem(ctx, it, ""); err != nil {
			return fmt.Errorf("replay item %d of %d: %w", i+1, len(items), err)
		}
		if it.Type == "function_call" {
			ss.calls[it.CallID] = true
		}
	}
	return nil
}

// replaying is the replay awaiting acknowledgements, if any.
func (c *Conversation) replaying() *replayState {
	if c.swap.sw == nil {
		return nil
	}
	return c.swap.sw.replay
}

func (c *Conversation) maybeReplayDone(rp *replayState) {
	if rp.acks.Len() > 0 || c.replaying() != rp {
		return
	}
	c.swap.sw.replay = nil
	c.silent = silentPart{} // a new session gets its own second chance
	c.completeSwap(rp.ss, rp.warm, len(rp.items)-len(rp.dropped))
}

// replayFailed abandons the replaying session: a failed attempt.
func (c *Conversation) replayFailed(rp *replayState, o Outcome, reason string) {
	sw := c.swap.sw
	sw.replay = nil
	c.retire(rp.ss)
	if c.ctx.Err() != nil {
		return // the caller hung up during the replay
	}
	if o != 0 {
		c.pool.Report(rp.ss.region.Name, o)
	}
	c.attemptFailed(rp.ss.region.Name)
	sw.lastErr = reason
	c.log.Warn("failover: replay failed", "region", rp.ss.region.Name, "session_id", rp.ss.s.ID(), "err", reason,
		"trigger", sw.trigger.String(), "pending", rp.acks.Len(), "failed_in_row", c.swap.failedInRow)
	c.nextAttempt()
}

// onReplayEvent takes an event of the session being replayed into.
func (c *Conversation) onReplayEvent(ev realtime.ServerEvent) {
	rp := c.replaying()
	if rp == nil {
		return
	}
	ack, ok := rp.acks.Observe(ev)
	if !ok {
		switch ev.Type {
		case realtime.EvItemAdded, realtime.EvItemDone:
			c.rec.Apply(ev)
		case realtime.EvError:
			d := ev.Error
			if d == nil {
				d = &realtime.ErrorDetail{}
			}
			if trig := classifyErrorEvent(d); trig != 0 {
				c.replayFailed(rp, trig.outcome(), fmt.Sprintf("during the replay: %s/%s: %s", d.Type, d.Code, d.Message))
				return
			}
			c.log.Info("failover: error event during the replay", "region", rp.ss.region.Name, "session_id", rp.ss.s.ID(),
				"client_event_id", d.EventID, "code", d.Code, "message", d.Message)
		}
		return
	}
	if ack.Accepted {
		rp.accepted[ack.Item.ID] = true
		c.rec.Apply(ev)
	} else if !c.onItemRefused(rp, ack) {
		return // the swap moved on
	}
	c.maybeReplayDone(rp)
}

// onItemRefused repairs and resends a refused item, moves the swap on, or
// (refused in a second region) leaves it out. It reports false when the
// swap moved on.
func (c *Conversation) onItemRefused(rp *replayState, ack realtime.ItemAck) bool {
	it, d := ack.Item, *ack.Error
	log := c.log.With("region", rp.ss.region.Name, "session_id", rp.ss.s.ID(), "item_id", it.ID, "item_type", it.Type,
		"code", d.Code, "param", d.Param, "message", d.Message)
	if fixed, ok := realtime.RepairItem(c.withTranscripts(it), d); ok && !rp.repaired[it.ID] {
		rp.repaired[it.ID], rp.repaired[fixed.ID] = true, true
		ctx, cancel := c.sendCtx()
		defer cancel()
		if err := rp.acks.Expect(fixed); err == nil {
			if err := rp.ss.s.CreateItem(ctx, fixed, rp.prevOf(it.ID)); err != nil {
				c.replayFailed(rp, OutcomeSessionLost, fmt.Sprintf("resending repaired item %s: %v", it.ID, err))
				return false
			}
			c.m.quiet.ReplayRefused.WithLabelValues(rp.ss.region.Name, "repaired").Inc()
			log.Info("failover: replay item refused, repaired and sent again", "new_item_id", fixed.ID)
			return true
		}
	}
	sw := c.swap.sw
	if sw.refused == nil {
		sw.refused = map[string]int{}
	}
	sw.refused[it.ID]++
	if sw.refused[it.ID] == 1 && len(c.pool.Regions()) > 1 {
		c.m.quiet.ReplayRefused.WithLabelValues(rp.ss.region.Name, "moved_on").Inc()
		log.Warn("failover: replay item refused, no repair: trying another region")
		c.replayFailed(rp, 0, fmt.Sprintf("replay item %s refused: %s: %s", it.ID, d.Code, d.Message))
		return false
	}
	rp.dropped[it.ID] = true
	c.m.quiet.ReplayRefused.WithLabelValues(rp.ss.region.Name, "dropped").Inc()
	log.Error("failover: replay item refused again, left out of the conversation")
	return true
}

// prevOf is the id of the nearest accepted item sent before id ("" = none:
// the item goes at the end).
func (rp *replayState) prevOf(id string) string {
	i := slices.IndexFunc(rp.items, func(it realtime.Item) bool { return it.ID == id })
	for j := i - 1; j >= 0; j-- {
		if rp.accepted[rp.items[j].ID] {
			return rp.items[j].ID
		}
	}
	return ""
}

// checkReplay fails a replay whose acknowledgements did not all come in
// time.
func (c *Conversation) checkReplay(now time.Time) {
	rp := c.replaying()
	if rp == nil || now.Before(rp.deadline) {
		return
	}
	c.replayFailed(rp, OutcomeStall, fmt.Sprintf("%d of %d replayed items not acknowledged in %s", rp.acks.Len(), len(rp.items), replayTimeout))
}

// onReplayEnd: the session being replayed into ended.
func (c *Conversation) onReplayEnd(err error) {
	rp := c.replaying()
	if rp == nil {
		return
	}
	msg := "event stream ended during the replay"
	if err != nil {
		msg = "during the replay: " + err.Error()
	}
	c.replayFailed(rp, OutcomeSessionLost, msg)
}

// withTranscripts fills the transcript of a user item's audio parts from
// the record (the replay sends the audio alone), so that a refused audio
// turn can be repaired as its transcript.
func (c *Conversation) withTranscripts(it realtime.Item) realtime.Item {
	if it.Type != "message" || it.Role != "user" {
		return it
	}
	e, ok := c.rec.Entry(it.ID)
	if !ok || e.Text == "" {
		return it
	}
	parts := slices.Clone(it.Content)
	for i := range parts {
		if parts[i].Type == "input_audio" && parts[i].Transcript == "" {
			parts[i].Transcript = e.Text
		}
	}
	it.Content = parts
	return it
}
