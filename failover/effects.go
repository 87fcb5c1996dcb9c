package failover

import (
	"context"

	"github.com/sipbridge/sipbridge/realtime"
)

// effect is something a step of the actor decided that leaves the actor: a
// dial, a session to watch or close, a control for the call, a tool to
// run. Actions only record effects (Conversation.do); step returns them and
// the shell carries them out (execLive in production, a synchronous
// executor in the tests), so a step's outcome is a value a test can compare
// and no action starts a goroutine or blocks on the call.
//
// Session sends (append, create item, create response, truncate, cancel)
// are not effects yet: they go straight to the realtime.Session, whose
// methods only queue (never block on the network), and tests read them off
// the fake session.
type effect interface{ isEffect() }

// fxDial opens a session in Region for Purpose; the result comes back as a
// dialResult tagged with Gen. A result whose Gen is no longer awaited is
// closed (a standby took over first, the call ended).
type fxDial struct {
	Gen     uint64
	Purpose dialPurpose
	Region  Region
	Lease   *Lease // the capacity slot taken for it
}

// fxWatch starts delivering a registered session's events to the actor,
// tagged with its generation, until the session is retired.
type fxWatch struct{ S *session }

// fxClose closes a session in the background: the actor never waits for a
// close handshake.
type fxClose struct{ S realtime.Session }

// fxEmit hands a control to the call (Controls).
type fxEmit struct{ Ctl Control }

// fxRunTool runs a custom tool call off the actor; its output comes back as
// a msgTool message.
type fxRunTool struct{ Call ToolCall }

func (fxDial) isEffect()    {}
func (fxWatch) isEffect()   {}
func (fxClose) isEffect()   {}
func (fxEmit) isEffect()    {}
func (fxRunTool) isEffect() {}

// do records an effect of the current step.
func (c *Conversation) do(e effect) { c.fx = append(c.fx, e) }

// execLive is the production shell: dials, forwarders (for sessions beyond
// the one Run reads directly), closes and tools run on goroutines of the
// conversation (Run waits for them all), controls go to the call's channel.
func (c *Conversation) execLive(e effect) {
	switch e := e.(type) {
	case fxDial:
		c.startDial(e.Gen, e.Purpose, e.Region, e.Lease)
	case fxWatch:
		if c.direct == nil {
			c.direct, c.directEvs = e.S, e.S.s.Events()
			return
		}
		c.wg.Add(1)
		go c.forward(e.S)
	case fxClose:
		if c.direct != nil && c.direct.s == e.S {
			// Retired (stop is closed): drained until its stream ends, as
			// a forwarder does, so its reader is never stuck.
			evs := c.directEvs
			c.direct, c.directEvs = nil, nil
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.drain(evs)
			}()
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := e.S.Close(); err != nil {
				c.log.Debug("failover: closing session", "region", e.S.Region(), "session_id", e.S.ID(), "err", err)
			}
		}()
	case fxEmit:
		c.sendControl(e.Ctl)
	case fxRunTool:
		runner, ctx, call := c.fn.tools.runner, c.ctx, e.Call
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			out := runner.Run(ctx, call)
			// runDone closes before teardown waits for this goroutine, so
			// the send never blocks a conversation that is ending.
			select {
			case c.msgs <- &message{kind: msgTool, callID: call.CallID, detail: out}:
			case <-c.runDone:
			}
		}()
	}
}

// sendControl sends a control to the call. Swap notices are informational
// and dropped when the call is not reading; the others wait for it (or for
// the end of the call).
func (c *Conversation) sendControl(ctl Control) {
	if ctl.Kind == ControlSwapStarted || ctl.Kind == ControlSwapFinished {
		select {
		case c.controls <- ctl:
		default:
			c.log.Debug("failover: control dropped, call not reading", "kind", ctl.Kind)
		}
		return
	}
	select {
	case c.controls <- ctl:
	case <-c.ctx.Done():
	}
}

// dialCtx bounds one dial: the region's timeout plus a margin, in case a
// Dialer does not enforce its own, and the call's life.
func (c *Conversation) dialCtx(region Region) (context.Context, context.CancelFunc) {
	timeout := region.Dial.DialTimeout
	if timeout <= 0 {
		timeout = realtime.DefaultDialTimeout
	}
	return context.WithTimeout(c.ctx, timeout+dialMargin)
}
