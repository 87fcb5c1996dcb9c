package failover

import (
	"fmt"

	"github.com/sipbridge/sipbridge/realtime"
)

// The conversation as a state machine. Every input the actor takes (caller
// audio, a session's event or end, a dial's result, a message from the
// call, a watchdog tick) goes through step: the transition table names the
// action for the conversation's state and the input's kind, the action
// updates the owned parts and records effects, and step returns the
// effects for the shell to carry out. The give-up decision is made in one
// place, nextAttempt (swap.go); stGaveUp is the state it leads to.

// inputKind is what an input is, as the transition table sees it.
type inputKind uint8

const (
	inCallerAudio    inputKind = iota // one frame of caller audio
	inSessionEvent                    // an event of the active session
	inSessionEnd                      // the active session's stream ended
	inSpareEnd                        // the standby's stream ended
	inStale                           // nothing to act on: a retired session's event or end, the idle standby's event
	inSwapDial                        // a dial for the first session or a swap returned
	inSpareDial                       // a dial for the standby returned
	inPlayout                         // an item finished playing (PlayoutDone)
	inDTMF                            // the caller pressed a key
	inTransferResult                  // the outcome of a ControlTransfer
	inHold                            // the caller put the call on hold or resumed
	inToolResult                      // a custom tool's output
	inConfirmed                       // the call's answer was acknowledged (SIP ACK)
	inTick                            // the watchdog clock
	inHedgeEvent                      // an event of the hedge session (hedge.go)
	inHedgeEnd                        // the hedge session's stream ended
	inHedgeDial                       // a dial for a hedge session returned
	numInputs
)

var inputNames = [numInputs]string{"caller_audio", "session_event", "session_end", "spare_end", "stale", "swap_dial",
	"spare_dial", "playout", "dtmf", "transfer_result", "hold", "tool_result", "confirmed", "tick",
	"hedge_event", "hedge_end", "hedge_dial"}

func (k inputKind) String() string {
	if k < numInputs {
		return inputNames[k]
	}
	return fmt.Sprintf("input(%d)", k)
}

const numStates = int(stGaveUp) + 1

var stateNames = [numStates]string{"connecting", "active", "swapping", "ending", "gave_up"}

func (s convState) String() string {
	if int(s) < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// input is one thing the actor takes. Passed by value: the caller audio
// path does not allocate.
type input struct {
	kind  inputKind
	frame *[]byte              // inCallerAudio
	ev    realtime.ServerEvent // inSessionEvent
	err   error                // inSessionEnd, inSpareEnd
	dial  dialResult           // inSwapDial, inSpareDial
	msg   message              // inPlayout … inToolResult
}

// sessionInput sorts a session's event by whose it is: the active
// session's, the standby's (only its end matters), or a retired one's.
// A hedge session's events and end have inputs and columns of their own.
func (c *Conversation) sessionInput(se sessEvent) input {
	switch {
	case c.hedge.run != nil && c.hedge.run.ss != nil && se.gen == c.hedge.run.ss.gen:
		if se.end {
			return input{kind: inHedgeEnd, err: se.err}
		}
		return input{kind: inHedgeEvent, ev: *se.ev}
	case c.standby.spare != nil && se.gen == c.standby.spare.gen:
		if se.end {
			return input{kind: inSpareEnd, err: se.err}
		}
		return input{kind: inStale}
	case c.replaying() != nil && se.gen == c.replaying().ss.gen:
		// The session a swap is replaying into (stSwapping, replay.go).
		if se.end {
			return input{kind: inSessionEnd, err: se.err}
		}
		return input{kind: inSessionEvent, ev: *se.ev}
	case c.active == nil || se.gen != c.active.gen:
		return input{kind: inStale}
	case se.end:
		return input{kind: inSessionEnd, err: se.err}
	}
	return input{kind: inSessionEvent, ev: *se.ev}
}

func dialInput(r dialResult) input {
	switch r.purpose {
	case dialSpare:
		return input{kind: inSpareDial, dial: r}
	case dialHedge:
		return input{kind: inHedgeDial, dial: r}
	}
	return input{kind: inSwapDial, dial: r}
}

func messageInput(m message) input {
	k := inToolResult
	switch m.kind {
	case msgPlayout:
		k = inPlayout
	case msgDTMF:
		k = inDTMF
	case msgTransfer:
		k = inTransferResult
	case msgHold:
		k = inHold
	case msgConfirmed:
		k = inConfirmed
	case msgTool:
	default:
		panic(fmt.Sprintf("failover: message kind %d has no input", m.kind))
	}
	return input{kind: k, msg: m}
}

// action is one cell of the transition table.
type action func(c *Conversation, in input)

// transitions is the conversation's behaviour: state × input → action.
// A state changes only inside actions (startSwap, finishSwap, fail on a
// session lost while ending, giveUp).
var transitions = [numStates][numInputs]action{
	stConnecting: {
		inCallerAudio: actBufferAudio, inSessionEvent: actIgnore, inSessionEnd: actIgnore, inSpareEnd: actSpareEnded,
		inStale: actIgnore, inSwapDial: actSwapDialed, inSpareDial: actSpareDialed, inPlayout: actPlayoutDone,
		inDTMF: actDTMF, inTransferResult: actTransferResult, inHold: actHold, inToolResult: actToolResult, inConfirmed: actConfirmed,
		inTick: actIgnore, inHedgeEvent: actIgnore, inHedgeEnd: actIgnore, inHedgeDial: actCloseDialed,
	},
	stActive: {
		inCallerAudio: actSendAudio, inSessionEvent: actSessionEvent, inSessionEnd: actSessionEnded, inSpareEnd: actSpareEnded,
		inStale: actIgnore, inSwapDial: actCloseDialed, inSpareDial: actSpareDialed, inPlayout: actPlayoutDone,
		inDTMF: actDTMF, inTransferResult: actTransferResult, inHold: actHold, inToolResult: actToolResult, inConfirmed: actConfirmed,
		inTick: actTickActive, inHedgeEvent: actHedgeEvent, inHedgeEnd: actHedgeEnded, inHedgeDial: actHedgeDialed,
	},
	stSwapping: {
		inCallerAudio: actBufferAudio, inSessionEvent: actReplayEvent, inSessionEnd: actReplayEnded, inSpareEnd: actSpareEnded,
		inStale: actIgnore, inSwapDial: actSwapDialed, inSpareDial: actSpareDialed, inPlayout: actPlayoutDone,
		inDTMF: actDTMF, inTransferResult: actTransferResult, inHold: actHold, inToolResult: actToolResult, inConfirmed: actConfirmed,
		inTick: actTickSwapping, inHedgeEvent: actIgnore, inHedgeEnd: actIgnore, inHedgeDial: actCloseDialed,
	},
	stEnding: {
		inCallerAudio: actIgnore, inSessionEvent: actIgnore, inSessionEnd: actIgnore, inSpareEnd: actSpareEnded,
		inStale: actIgnore, inSwapDial: actCloseDialed, inSpareDial: actSpareDialed, inPlayout: actPlayoutDone,
		inDTMF: actIgnore, inTransferResult: actTransferResult, inHold: actHold, inToolResult: actToolResult, inConfirmed: actIgnore,
		inTick: actTickEnding, inHedgeEvent: actIgnore, inHedgeEnd: actIgnore, inHedgeDial: actCloseDialed,
	},
	stGaveUp: {
		inCallerAudio: actIgnore, inSessionEvent: actIgnore, inSessionEnd: actIgnore, inSpareEnd: actSpareEnded,
		inStale: actIgnore, inSwapDial: actCloseDialed, inSpareDial: actCloseDialed, inPlayout: actPlayoutDone,
		inDTMF: actIgnore, inTransferResult: actTransferResult, inHold: actHold, inToolResult: actToolResult, inConfirmed: actIgnore,
		inTick: actTickGaveUp, inHedgeEvent: actIgnore, inHedgeEnd: actIgnore, inHedgeDial: actCloseDialed,
	},
}

// step runs one input through the transition table and returns the
// effects the action decided, for the shell to carry out before the next
// step (the slice is reused by the next step).
func (c *Conversation) step(in input) []effect {
	clear(c.fx) // the last step's sessions are not kept alive by this slice
	c.fx = c.fx[:0]
	transitions[c.state][in.kind](c, in)
	if in.kind == inCallerAudio {
		c.putFrame(in.frame)
	}
	return c.fx
}

func actIgnore(*Conversation, input) {}

// actConfirmed: the caller acknowledged the answer; a greeting held for it
// goes out now (Config.GreetAfterConfirm).
func actConfirmed(c *Conversation, _ input) {
	c.turns.confirmed = true
	c.maybeGreet()
}

func actBufferAudio(c *Conversation, in input) { c.bufferCallerAudio(*in.frame) }
func actSendAudio(c *Conversation, in input)   { c.sendCallerAudio(*in.frame) }
func actSessionEvent(c *Conversation, in input) {
	c.onActiveEvent(in.ev)
}
func actSessionEnded(c *Conversation, in input) { c.onActiveEnd(in.err) }
func actSpareEnded(c *Conversation, in input)   { c.onSpareEnd(in.err) }
func actSwapDialed(c *Conversation, in input)   { c.onSwapDial(in.dial) }
func actSpareDialed(c *Conversation, in input)  { c.onSpareDial(in.dial) }

// actCloseDialed: no swap waits for this dial (a standby took over, the
// conversation gave up): its session, if any, is closed.
func actCloseDialed(c *Conversation, in input) {
	c.closeDialed(in.dial)
}

func actHedgeEvent(c *Conversation, in input)  { c.onHedgeEvent(in.ev) }
func actHedgeEnded(c *Conversation, in input)  { c.onHedgeEnd(in.err) }
func actHedgeDialed(c *Conversation, in input) { c.onHedgeDial(in.dial) }

func actPlayoutDone(c *Conversation, in input) { c.onPlayoutDone(in.msg.itemID, in.msg.ms) }
func actDTMF(c *Conversation, in input)        { c.onDTMF(in.msg.digit) }
func actTransferResult(c *Conversation, in input) {
	c.onTransferResult(in.msg.callID, in.msg.ok, in.msg.detail)
}
func actHold(c *Conversation, in input)       { c.onHold(in.msg.ok) }
func actToolResult(c *Conversation, in input) { c.onToolResult(in.msg.callID, in.msg.detail) }
func actTickActive(c *Conversation, _ input)  { c.tickActive() }
func actTickSwapping(c *Conversation, _ input) {
	c.maybeFiller(c.now())
	c.checkReplay(c.now())
	c.retryAttempt(c.now())
}
func actReplayEvent(c *Conversation, in input) { c.onReplayEvent(in.ev) }
func actReplayEnded(c *Conversation, in input) { c.onReplayEnd(in.err) }
func actTickEnding(c *Conversation, _ input)   { c.checkEnd(c.now()) }
func actTickGaveUp(c *Conversation, _ input)   { c.checkGiveUp(c.now()) }
