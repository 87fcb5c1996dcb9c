package failover

import (
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// callerState is the caller's audio as the conversation keeps it for a
// replay: what the active session was sent and has not committed, what
// arrives while no session takes it, and where the server's VAD put the
// turns.
type callerState struct {
	// turnBuf is the tail of what the active session was sent and has not
	// committed: it ends at active.inBytes.
	turnBuf []byte
	// frameBytes is the largest caller delivery seen: the media stream
	// hands over uplink chunks (rtp.uplink_chunk, 20–200 ms), and the turn
	// buffer keeps room for one beyond its trimming slack.
	frameBytes int
	// swapBuf is the caller audio no session has taken yet (connect,
	// swap), delivered to the next session after its replay.
	swapBuf      []byte
	speechActive bool
	speechStart  map[string]int // item id → audio_start_ms
	speechEnd    map[string]int // item id → audio_end_ms
	held         bool
	turnEndAt    time.Time // when the caller's last turn ended
}

// onCallerAudio routes one caller frame: to the active session (and the
// uncommitted-turn buffer kept for replay), or into the swap buffer while
// no session takes it. Nothing is dropped during a swap.
func (c *Conversation) sendCallerAudio(f []byte) {
	if c.caller.held {
		return // on hold: the model hears nothing
	}
	if !c.active.s.AppendAudio(f) && !ended(c.active.s) {
		// A session whose socket just dropped refuses the frame too, but
		// that frame is not lost: it stays in turnBuf, which the swap the
		// session's end starts replays (counting it made the soak's
		// "caller frames dropped" a count of swaps, not of lost audio).
		c.m.CallerFramesDropped.Inc()
	}
	c.active.inBytes += len(f)
	c.caller.frameBytes = max(c.caller.frameBytes, len(f))
	if c.caller.turnBuf == nil {
		// Sized at once for what it holds between turns, rather than
		// grown there by doubling (and then up to twice as big).
		c.caller.turnBuf = make([]byte, 0, c.turnBufRoom(0))
	}
	c.caller.turnBuf = append(c.caller.turnBuf, f...)
	c.trimTurnBuf()
}

// bufferCallerAudio keeps a caller frame while no session takes it.
func (c *Conversation) bufferCallerAudio(f []byte) {
	if c.caller.held {
		return // on hold: the model hears nothing
	}
	c.caller.swapBuf = append(c.caller.swapBuf, f...)
	if over := len(c.caller.swapBuf) - maxSwapMs*c.inBPM; over > 0 {
		// Reslice rather than copy: once full, copying the whole
		// buffer on every frame would be 30 s of audio per 20 ms.
		// append reallocates (copying) only when the capacity left
		// runs out.
		c.caller.swapBuf = c.caller.swapBuf[over:]
	}
}

// trimSlackMs is the excess the uncommitted-turn buffer may hold before it
// is trimmed: the copy is not made on every frame (2 s of G.711 moved every
// 12th frame), and the buffer holds little more than it keeps.
const trimSlackMs = 250

// trimTurnBuf keeps only the uncommitted audio a replay could need: from the
// start of the speech the server detected (capped), or a short tail while it
// hears none. Trimming waits for trimSlackMs of excess so that the copy is
// not made on every frame.
func (c *Conversation) trimTurnBuf() {
	keep := keepTailMs * c.inBPM
	if c.caller.speechActive {
		// From the earliest speech start still uncommitted, capped.
		since := 0
		for _, ms := range c.caller.speechStart {
			since = max(since, c.active.inBytes-ms*c.inBPM)
		}
		keep = min(max(keep, since), maxTurnMs*c.inBPM)
	}
	if over := len(c.caller.turnBuf) - keep; over > trimSlackMs*c.inBPM {
		c.caller.turnBuf = c.keepTail(c.caller.turnBuf, keep)
	}
}

// turnBufRoom is the size of an uncommitted-turn buffer holding n bytes:
// at least keepTailMs, with the trimming slack and one more caller frame
// (an uplink chunk), so the append before a trim never outgrows it.
func (c *Conversation) turnBufRoom(n int) int {
	return max(n, keepTailMs*c.inBPM) + trimSlackMs*c.inBPM + c.caller.frameBytes
}

// keepTail returns the last n bytes of b, moved to the front of b's array;
// to a new array sized for what the buffer holds between turns (keepTailMs,
// or n when more, with the trimming slack and one more frame) when b's is
// more than twice that (after a long turn or a swap's backlog), so a call
// does not keep its longest turn's buffer for the rest of its life, nor
// grow a new one every turn.
func (c *Conversation) keepTail(b []byte, n int) []byte {
	room := c.turnBufRoom(n)
	if cap(b) > 2*room {
		nb := make([]byte, n, room)
		copy(nb, b[len(b)-n:])
		return nb
	}
	return append(b[:0], b[len(b)-n:]...)
}

// onSpeechStarted: the caller started talking. If assistant audio is playing
// or queued, this is a barge-in: flush playout at once and truncate the item
// at what was played.
func (c *Conversation) onSpeechStarted(ev realtime.ServerEvent) {
	c.caller.speechActive = true
	c.caller.speechStart[ev.ItemID] = ev.AudioStartMs
	// A new turn supersedes the one being waited for: its hedge is
	// dropped (the hedge session never heard this audio) and the next
	// commit starts a new wait.
	c.dropHedge("abandoned", "caller_spoke")
	c.turns.waitFrom, c.turns.hedgeAt = time.Time{}, time.Time{}
	if c.isPlaying() {
		c.interrupt(!c.interruptsOnServer(), "barge_in")
		return
	}
	if c.turns.activeResp != "" && c.interruptsOnServer() {
		// Nothing heard yet, but the server cancels this answer now
		// (interrupt_response): audio of it still in flight must not play.
		c.play.suppressRsp[c.turns.activeResp] = true
		for _, id := range c.turns.activeItems {
			c.play.suppressItm[id] = true
		}
		c.turns.firstAudioAt, c.turns.midAudioAt = time.Time{}, time.Time{}
	}
}

// onCommitted: the caller's turn became user item ev.ItemID. Its audio moves
// from the uncommitted buffer into the record.
func (c *Conversation) onCommitted(ev realtime.ServerEvent) {
	c.rec.Apply(realtime.ServerEvent{Type: realtime.EvInputCommitted, ItemID: ev.ItemID, PreviousItemID: ev.PreviousItemID})
	bufStart := c.active.inBytes - len(c.caller.turnBuf)
	start, end := bufStart, c.active.inBytes
	if ms, ok := c.caller.speechStart[ev.ItemID]; ok {
		start = ms * c.inBPM
	} else if ev.Type == realtime.EvInputTimeoutTriggered {
		start = ev.AudioStartMs * c.inBPM
	}
	if ms, ok := c.caller.speechEnd[ev.ItemID]; ok {
		end = ms * c.inBPM
	} else if ev.Type == realtime.EvInputTimeoutTriggered && ev.AudioEndMs > 0 {
		end = ev.AudioEndMs * c.inBPM
	}
	start = min(max(start, bufStart), c.active.inBytes)
	end = min(max(end, start), c.active.inBytes)
	if end > start && ev.ItemID != "" {
		c.rec.SetUserAudio(ev.ItemID, c.caller.turnBuf[start-bufStart:end-bufStart])
	}
	c.caller.turnBuf = c.keepTail(c.caller.turnBuf, c.active.inBytes-end)
	delete(c.caller.speechStart, ev.ItemID)
	delete(c.caller.speechEnd, ev.ItemID)
	c.caller.speechActive = false
	if c.caller.turnEndAt.IsZero() || ev.Type == realtime.EvInputTimeoutTriggered {
		c.caller.turnEndAt = c.now()
	}
	switch {
	case c.vadCreates():
		c.turns.awaitingResponse = true
		if c.turns.activeResp == "" && c.turns.noRespAt.IsZero() {
			c.turns.noRespAt = c.now().Add(c.cfg.StallNoResponse)
		}
		c.armTurnWait()
	case c.cfg.Session.TurnDetection != nil:
		// VAD commits but does not answer: answering is ours.
		c.turns.awaitingResponse = true
		c.enqueue(&createReq{plain: true})
	}
}

func (c *Conversation) onHold(held bool) {
	if held == c.caller.held {
		return
	}
	c.caller.held = held
	if !held {
		c.log.Info("failover: caller resumed from hold")
		c.pump()
		return
	}
	c.log.Info("failover: caller put the call on hold")
	c.dropHedge("abandoned", "hold")
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
	c.caller.turnBuf = c.caller.turnBuf[:0]
	c.caller.swapBuf = c.caller.swapBuf[:0]
	c.caller.speechActive = false
}

// deliverBuffered appends the caller audio buffered during the swap to the
// new session, in chunks (the session's send queue takes events, not a
// stream, and history need not be paced).
func (c *Conversation) deliverBuffered() {
	data := c.caller.swapBuf
	c.caller.swapBuf = nil
	if c.caller.held || len(data) == 0 {
		return
	}
	chunk := appendChunkMs * c.inBPM
	for off := 0; off < len(data); off += chunk {
		if !c.active.s.AppendAudio(data[off:min(off+chunk, len(data))]) {
			c.m.CallerFramesDropped.Inc()
		}
	}
	c.active.inBytes = len(data)
	c.caller.turnBuf = append(c.caller.turnBuf[:0], data...)
}

// ended reports whether s has ended (its event stream is done).
func ended(s realtime.Session) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}
