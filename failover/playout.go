package failover

import (
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// playoutState is the model audio of the active session handed to the
// Player: per item how much was produced and whether it finished, and the
// answers whose remaining audio must not play (interrupted).
type playoutState struct {
	items       map[string]*playState
	order       []string // unfinished items, in play order
	suppressRsp map[string]bool
	suppressItm map[string]bool
	lastPlayAt  time.Time
}

func (c *Conversation) onAudioDelta(ev realtime.ServerEvent) {
	c.rec.Apply(ev) // produced audio counts even when the caller must not hear it
	if c.play.suppressRsp[ev.ResponseID] || c.play.suppressItm[ev.ItemID] || c.caller.held {
		return // the tail of an interrupted answer
	}
	if c.turns.activeResp == "" && ev.ResponseID != "" {
		// response.created can be missing around interruptions (§3.6).
		c.turns.activeResp = ev.ResponseID
	}
	c.trackItem(ev.ItemID)
	c.player.Play(ev.ItemID, ev.Audio)
	ps := c.play.items[ev.ItemID]
	if ps == nil {
		ps = &playState{}
		c.play.items[ev.ItemID] = ps
	}
	if !ps.listed {
		ps.listed = true
		c.play.order = append(c.play.order, ev.ItemID)
	}
	ps.bytes += len(ev.Audio)
	ps.finished = false
	now := c.now()
	c.play.lastPlayAt = now
	c.progress()
	c.turns.midAudioAt = now.Add(c.cfg.StallMidAudio)
	if c.swap.pendingLog != nil && c.swap.pendingLog.awaitAudio {
		// The pause ends when the new answer's first audio reaches the
		// player; the media layer adds at most one 20 ms frame until it is
		// on the wire.
		c.swap.pendingLog.pause = max(now.Sub(c.swap.pendingLog.pauseStart), 0) // 0: the kept audio still plays
		c.m.Pause.Observe(c.swap.pendingLog.pause.Seconds())
		c.emitSwapLog("answered")
	}
}

// isPlaying reports whether assistant audio of the active session is still
// queued or playing: an item counts as finished once the media layer reported
// it (PlayoutDone) or its played position reached what was produced.
func (c *Conversation) isPlaying() bool {
	playing := false
	kept := c.play.order[:0]
	for _, id := range c.play.order {
		ps := c.play.items[id]
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
	c.play.order = kept
	return playing
}

func (c *Conversation) unplayedMs() int {
	total := 0
	for _, id := range c.play.order {
		ps := c.play.items[id]
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
	for _, id := range c.play.order {
		ps := c.play.items[id]
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
		c.play.suppressItm[id] = true
		c.sessionLog().Debug("failover: playout interrupted", "why", why, "item_id", id, "heard_ms", heard, "produced_ms", produced)
	}
	c.resetPlayout()
	if c.turns.activeResp != "" {
		c.play.suppressRsp[c.turns.activeResp] = true
		for _, id := range c.turns.activeItems {
			c.play.suppressItm[id] = true
		}
		if cancelResponse && c.active != nil {
			ctx, cancel := c.sendCtx()
			if err := c.active.s.CancelResponse(ctx, c.turns.activeResp); err != nil {
				c.sessionLog().Debug("failover: response.cancel failed", "response_id", c.turns.activeResp, "err", err)
			}
			cancel()
		}
	}
	c.turns.firstAudioAt, c.turns.midAudioAt = time.Time{}, time.Time{}
}

func (c *Conversation) resetPlayout() {
	clear(c.play.items)
	c.play.order = c.play.order[:0]
}

func (c *Conversation) onPlayoutDone(itemID string, playedMs int) {
	if ps := c.play.items[itemID]; ps != nil && playedMs >= ps.bytes/c.outBPM-playTolMs {
		ps.finished = true
	}
	c.rec.SetHeard(itemID, playedMs)
	c.checkEnd(c.now())
	c.checkGiveUp(c.now())
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

// maybeFiller plays FillerAudio once when the caller has waited FillerAfter
// for the answer a swap owes them.
func (c *Conversation) maybeFiller(now time.Time) {
	if c.swap.fillerPlayed || c.cfg.FillerAfter <= 0 || len(c.cfg.FillerAudio) == 0 {
		return
	}
	var start time.Time
	switch {
	case c.state == stSwapping && c.swap.sw != nil && !c.swap.sw.initial && c.swap.sw.redo != nil:
		start = c.swap.sw.pauseStart
	case c.swap.pendingLog != nil && c.swap.pendingLog.awaitAudio:
		start = c.swap.pendingLog.pauseStart
	default:
		return
	}
	if now.Sub(start) < c.cfg.FillerAfter {
		return
	}
	c.swap.fillerPlayed = true
	c.log.Debug("failover: playing filler", "waited_ms", now.Sub(start).Milliseconds())
	c.player.Play(fillerItem, c.cfg.FillerAudio)
}
