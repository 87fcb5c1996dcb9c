package failover

import (
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// Observer receives what a conversation did with its realtime sessions,
// for the call record (package sip converts these plain values into
// sip/records entries; failover cannot import it). Its methods are called
// on the conversation's actor goroutine: they must only copy and return.
type Observer interface {
	// SessionClosed: a session the call held is closed (retired, replaced,
	// or the call ended). Every session opened is reported once, closed.
	SessionClosed(SessionEntry)
	// ResponseDone: one response.done, reported when the call ends (so
	// PlayedMs is what the caller finally heard of it).
	ResponseDone(ResponseEntry)
	// Swapped: one move of the conversation to another session.
	Swapped(SwapEntry)
	// Hedged: one turn raced by two sessions (hedged answers).
	Hedged(HedgeEntry)
	// Transcript: the conversation as the record kept it (caller and
	// assistant turns in order), reported once when the call ends.
	Transcript([]TranscriptLine)
}

// TranscriptLine is one turn of the conversation.
type TranscriptLine struct {
	Role string // caller | assistant
	Text string
}

// SessionEntry is one realtime session of a call.
type SessionEntry struct {
	Region      string
	SessionID   string
	Purpose     SessionPurpose
	Opened      time.Time
	Closed      time.Time
	CloseReason string // call_end, failed, rotated, standby_replaced, swap (a replay into it failed), closed
	Error       string
}

// ResponseEntry is one response.done with the timings the conversation
// measured. Event is the response.done itself (its Response carries the
// decoded Usage).
type ResponseEntry struct {
	Region       string
	SessionID    string
	Purpose      realtime.Purpose
	Event        realtime.ServerEvent
	Created      time.Time // response.created seen (zero: never)
	Done         time.Time
	FirstAudioMs int64 // response.created → first audio delta
	AudioMs      int64 // audio the response produced
	PlayedMs     int64 // of which the caller heard
	LostRace     bool
}

// SwapEntry is one swap (or rotation) as the caller lived it.
type SwapEntry struct {
	At            time.Time
	From, To      string // regions
	Trigger       string
	PauseMs       int64 // the pause the caller heard (0 when no answer was pending)
	ItemsReplayed int
	Outcome       string // answered, no_answer_pending, failed_again, call_ended, rotated
	// TurnLost: an answer was pending (the caller's turn, or the cut
	// answer) and the caller never heard it from the new session.
	TurnLost bool
}

// HedgeEntry is one hedged turn: the primary and the hedge session raced
// for the answer.
type HedgeEntry struct {
	At             time.Time
	Primary, Hedge string // regions
	Trigger        string
	Winner         string // primary | hedge | none
	PauseMs        int64  // the wait the caller heard
}

// maxObservedResponses bounds what one call keeps for its record: a call
// of several hours still fits; beyond it entries are counted as dropped.
const maxObservedResponses = 2000

// observeState is the conversation's bookkeeping for its Observer, owned
// by the actor like the rest of its state.
type observeState struct {
	responses   []*observedResponse
	byID        map[string]*observedResponse
	nextPurpose realtime.Purpose // the next response.created is asked for this (a replay after a swap)
	dropped     int
}

type observedResponse struct {
	entry      ResponseEntry
	firstAudio time.Time
	audioBytes int
	items      []string
	done       bool
}

// observeEvent follows the active session's events that the record needs.
func (c *Conversation) observeEvent(ev realtime.ServerEvent) {
	if c.obs.byID == nil {
		c.obs.byID = map[string]*observedResponse{}
	}
	switch ev.Type {
	case realtime.EvResponseCreated:
		id := ev.ResponseID
		if ev.Response != nil && ev.Response.ID != "" {
			id = ev.Response.ID
		}
		r := c.observedResponse(id)
		if r != nil {
			r.entry.Created = c.now()
		}
	case realtime.EvOutputAudioDelta:
		r := c.observedResponse(ev.ResponseID)
		if r == nil {
			return
		}
		if r.firstAudio.IsZero() {
			r.firstAudio = c.now()
		}
		r.audioBytes += len(ev.Audio)
		if ev.ItemID != "" && (len(r.items) == 0 || r.items[len(r.items)-1] != ev.ItemID) {
			r.items = append(r.items, ev.ItemID)
		}
	case realtime.EvResponseDone:
		id := ev.ResponseID
		if ev.Response != nil && ev.Response.ID != "" {
			id = ev.Response.ID
		}
		r := c.observedResponse(id)
		if r == nil {
			return
		}
		r.done = true
		r.entry.Event = ev
		r.entry.Done = c.now()
	}
}

// observedResponse finds or starts the entry of response id in the active
// session (nil when the cap is reached).
func (c *Conversation) observedResponse(id string) *observedResponse {
	if r := c.obs.byID[id]; r != nil && id != "" {
		return r
	}
	if len(c.obs.responses) >= maxObservedResponses {
		c.obs.dropped++
		return nil
	}
	purpose := realtime.PurposeAnswer
	if c.obs.nextPurpose != "" {
		purpose, c.obs.nextPurpose = c.obs.nextPurpose, ""
	}
	r := &observedResponse{entry: ResponseEntry{Purpose: purpose}}
	if c.active != nil {
		r.entry.Region, r.entry.SessionID = c.active.region.Name, c.active.s.ID()
	}
	c.obs.responses = append(c.obs.responses, r)
	if id != "" {
		c.obs.byID[id] = r
	}
	return r
}

// observeQueued takes, for the record, the active session's events that
// were already queued when the call ended (a response.done that crossed
// the caller's BYE): the conversation no longer acts on them.
func (c *Conversation) observeQueued() {
	for {
		select {
		case se := <-c.events:
			if !se.end && c.active != nil && se.gen == c.active.gen {
				c.observeEvent(*se.ev)
			}
		default:
			return
		}
	}
}

// reportResponses hands every response that got its response.done to the
// observer, with what the player finally played of it (the call is
// ending; the player still answers PlayedMs).
func (c *Conversation) reportResponses() {
	if c.observer == nil {
		return
	}
	for _, r := range c.obs.responses {
		if !r.done {
			continue
		}
		e := r.entry
		if !r.firstAudio.IsZero() && !e.Created.IsZero() {
			e.FirstAudioMs = r.firstAudio.Sub(e.Created).Milliseconds()
		}
		if c.outBPM > 0 {
			e.AudioMs = int64(r.audioBytes / c.outBPM)
		}
		if c.player != nil {
			for _, it := range r.items {
				e.PlayedMs += int64(c.player.PlayedMs(it))
			}
		}
		e.PlayedMs = min(e.PlayedMs, e.AudioMs)
		c.observer.ResponseDone(e)
	}
	c.obs.responses = nil
	clear(c.obs.byID)
	var lines []TranscriptLine
	for _, e := range c.rec.Entries() {
		switch {
		case e.Text == "":
		case e.Kind == realtime.EntryUser:
			lines = append(lines, TranscriptLine{Role: "caller", Text: e.Text})
		case e.Kind == realtime.EntryAssistant:
			lines = append(lines, TranscriptLine{Role: "assistant", Text: e.Text})
		}
	}
	if len(lines) > 0 {
		c.observer.Transcript(lines)
	}
}

// observeClosed reports a session the conversation stops using.
func (c *Conversation) observeClosed(ss *session) {
	if c.observer == nil {
		return
	}
	why, errText := "closed", ""
	switch {
	case ss.closeWhy != "":
		why, errText = ss.closeWhy, ss.closeErr
	case c.ctx != nil && c.ctx.Err() != nil:
		why = "call_end"
	case ss == c.standby.spare:
		why = "standby_replaced"
	case c.swap.sw != nil:
		why, errText = "swap", c.swap.sw.from.err
	}
	purpose := SessionCall
	if ss.lease != nil {
		purpose = ss.lease.Purpose()
	}
	c.observer.SessionClosed(SessionEntry{Region: ss.region.Name, SessionID: ss.s.ID(), Purpose: purpose,
		Opened: ss.started, Closed: c.now(), CloseReason: why, Error: errText})
}

// observeSwap reports the swap the log line just described.
func (c *Conversation) observeSwap(r *swapReport, outcome string) {
	if c.observer == nil {
		return
	}
	e := SwapEntry{At: r.pauseStart, From: r.from.region, To: r.toRegion, Trigger: r.trigger.String(),
		ItemsReplayed: r.items, Outcome: outcome, TurnLost: r.awaitAudio && outcome != "answered"}
	if outcome == "answered" {
		e.PauseMs = r.pause.Milliseconds()
	}
	c.observer.Swapped(e)
}

// registerDialed puts a dialled session under the actor with the slot its
// dial took.
func (c *Conversation) registerDialed(r dialResult) *session {
	ss := c.register(r.s, r.region)
	ss.lease = r.lease
	return ss
}

// closeDialed closes a dialled session nobody waits for and frees its slot.
func (c *Conversation) closeDialed(r dialResult) {
	if r.lease != nil {
		r.lease.Release()
	}
	if r.s != nil {
		c.do(fxClose{S: r.s})
	}
}

// observeLostRace records, for the call record, the primary's answer that a
// hedge beat: cancelled, never heard. Its session closes at once, so the
// provider never reports its usage; the record says it lost the race.
func (c *Conversation) observeLostRace(responseID string, now time.Time) {
	r := c.obs.byID[responseID]
	if r == nil || responseID == "" || r.done {
		return
	}
	r.done = true
	r.entry.LostRace = true
	r.entry.Done = now
	r.entry.Event = realtime.ServerEvent{Type: realtime.EvResponseDone, ResponseID: responseID,
		Response: &realtime.ResponseInfo{ID: responseID, Status: realtime.StatusCancelled}}
}
