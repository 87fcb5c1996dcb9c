package failover

import (
	"context"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// session is one realtime session as the actor sees it.
type session struct {
	s       realtime.Session
	gen     uint64 // events carry it; events of a retired generation are ignored
	region  Region
	started time.Time
	stop    chan struct{} // closed when retired: the forwarder stops forwarding
	// inBytes is how much caller audio this session was sent: the base of
	// the audio_start_ms / audio_end_ms offsets its VAD reports.
	inBytes int
	// calls are the function_call call ids this session knows, so that an
	// output for a call it does not have can be preceded by the call.
	calls map[string]bool
	// lease is the capacity slot the session holds (released when retired).
	lease *Lease
	// closeWhy/closeErr say why it is retired, for the call record
	// (observeClosed); empty: worked out from the conversation's state.
	closeWhy, closeErr string
}

// deadline is when the session ends for certain: its expires_at, or the
// region's session limit from its start, whichever comes first.
func (s *session) deadline() time.Time {
	d := s.s.ExpiresAt()
	if s.region.SessionLimit > 0 {
		if l := s.started.Add(s.region.SessionLimit); d.IsZero() || l.Before(d) {
			d = l
		}
	}
	return d
}

// sessEvent is a server event (or the end of the stream) tagged with the
// generation of the session it came from.
type sessEvent struct {
	gen uint64
	ev  *realtime.ServerEvent // nil when end; a pointer keeps the actor's queue small
	end bool
	err error
}

type dialPurpose uint8

const (
	dialSwap  dialPurpose = iota + 1 // the first session, or a swap attempt
	dialSpare                        // warm standby or rotation target
	dialHedge                        // the session a late turn is hedged in
)

type dialResult struct {
	gen     uint64
	purpose dialPurpose
	region  Region
	s       realtime.Session
	err     error
	took    time.Duration
	lease   *Lease // the slot the dial took; released here on error
}

// register wraps a new session and starts forwarding its events.
func (c *Conversation) register(s realtime.Session, region Region) *session {
	c.nextGen++
	ss := &session{s: s, gen: c.nextGen, region: region, started: c.now(), stop: make(chan struct{}), calls: map[string]bool{}}
	c.do(fxWatch{S: ss})
	return ss
}

// forward moves one session's events into the actor, tagged with its
// generation. Once the session is retired it only drains (so the session's
// reader is never stuck and Close can finish) until the stream ends.
func (c *Conversation) forward(ss *session) {
	defer c.wg.Done()
	events := ss.s.Events()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				select {
				case c.events <- sessEvent{gen: ss.gen, end: true, err: ss.s.Err()}:
				case <-ss.stop:
				case <-c.runDone:
				}
				return
			}
			select {
			case c.events <- sessEvent{gen: ss.gen, ev: ev}:
			case <-ss.stop:
				c.drain(events)
				return
			case <-c.runDone:
				return
			}
		case <-ss.stop:
			c.drain(events)
			return
		case <-c.runDone:
			return
		}
	}
}

func (c *Conversation) drain(events <-chan *realtime.ServerEvent) {
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-c.runDone:
			return
		}
	}
}

// retire stops a session's forwarding and closes it in the background: the
// actor never waits for a close handshake.
func (c *Conversation) retire(ss *session) {
	select {
	case <-ss.stop:
		return // already retired
	default:
	}
	close(ss.stop)
	c.observeClosed(ss)
	if ss.lease != nil {
		ss.lease.Release()
	}
	c.do(fxClose{S: ss.s})
}

// startDial opens a session in region in the background (the production
// shell's fxDial); the result comes back to the actor on dialResults.
func (c *Conversation) startDial(gen uint64, purpose dialPurpose, region Region, lease *Lease) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := c.dialCtx(region)
		defer cancel()
		start := c.now()
		s, err := c.dialer.Dial(ctx, region, c.cfg.Session)
		if err == nil && s == nil {
			err = errNilSession
		}
		if err != nil && lease != nil {
			lease.Release()
			lease = nil
		}
		res := dialResult{gen: gen, purpose: purpose, region: region, s: s, err: err, took: c.now().Sub(start), lease: lease}
		select {
		case c.dialResults <- res:
		case <-c.ctx.Done():
			if lease != nil {
				lease.Release()
			}
			if s != nil {
				if cerr := s.Close(); cerr != nil {
					c.log.Debug("failover: closing session dialled after the call ended", "region", region.Name, "err", cerr)
				}
			}
		}
	}()
}

// sendCtx bounds one client event sent from the actor.
func (c *Conversation) sendCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, sendTimeout)
}
