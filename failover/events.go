package failover

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

var errNilSession = errors.New("failover: dialer returned no session and no error")

// onSessionEvent handles one event of a session. Events of a retired
// session are ignored; the spare's only matter when it ends.
func (c *Conversation) onActiveEvent(ev realtime.ServerEvent) {
	c.observeEvent(ev)
	if c.observeSilent(ev) {
		return
	}
	switch ev.Type {
	case realtime.EvError:
		c.onErrorEvent(ev)
	case realtime.EvInputSpeechStarted:
		c.onSpeechStarted(ev)
	case realtime.EvInputSpeechStopped:
		c.caller.speechActive = false
		c.caller.speechEnd[ev.ItemID] = ev.AudioEndMs
		c.caller.turnEndAt = c.now()
		if c.vadCreates() && c.turns.activeResp == "" && c.turns.noRespAt.IsZero() {
			c.turns.noRespAt = c.caller.turnEndAt.Add(c.cfg.StallNoResponse)
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
		c.turns.midAudioAt = time.Time{}
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
	case realtime.EvRateLimitsUpdated:
		c.onRateLimits(c.active.region.Name, ev)
	case realtime.EvSessionCreated, realtime.EvSessionUpdated, realtime.EvConversationCreated,
		realtime.EvContentPartAdded, realtime.EvContentPartDone,
		realtime.EvInputCleared, realtime.EvInputTranscriptionDelta, realtime.EvInputTranscriptionSegment,
		realtime.EvInputTranscriptionFailed:
		// Nothing to do: the record does not need them.
	default:
		c.sessionLog().Debug("failover: unknown server event ignored", "type", ev.Type, "wire_type", ev.WireType, "event_id", ev.EventID)
	}
}

// onActiveEnd: the active session's event stream ended (err is its Err).
func (c *Conversation) onActiveEnd(err error) {
	pastExpiry := false
	if d := c.active.deadline(); !d.IsZero() && !c.now().Before(d) {
		pastExpiry = true
	}
	msg := "event stream ended"
	if err != nil {
		msg = err.Error()
	}
	c.fail(classifySessionEnd(err, pastExpiry), failInfo{err: msg})
}

// onErrorEvent classifies an error event: a few end the session's usefulness
// (swap), the rest are recoverable and only logged (§3.2, §6.1).
func (c *Conversation) onErrorEvent(ev realtime.ServerEvent) {
	d := ev.Error
	if d == nil {
		d = &realtime.ErrorDetail{}
	}
	if trig := classifyErrorEvent(d); trig != 0 {
		rl, _ := realtime.RateLimitFromEvent(c.active.region.Name, ev)
		c.fail(trig, failInfo{err: fmt.Sprintf("%s/%s: %s", d.Type, d.Code, d.Message), rateLimit: rl})
		return
	}
	if d.Code == codeActiveResponse && c.turns.inflight != nil {
		// Our create lost the race with a server (VAD) response, which
		// answers the same conversation: ours is not needed (§2.6).
		c.turns.inflight = nil
		if c.turns.activeResp != "" {
			c.turns.noRespAt = time.Time{}
		}
	}
	level := slog.LevelWarn
	if recoverableExpected(d) {
		level = slog.LevelInfo
	}
	c.sessionLog().Log(c.ctx, level, "failover: recoverable error event", "event_id", ev.EventID,
		"client_event_id", d.EventID, "type", d.Type, "code", d.Code, "message", d.Message, "response_id", c.turns.activeResp)
}
