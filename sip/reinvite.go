package sip

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// pendingReinvite is a re-INVITE whose 200 OK waits for its ACK.
type pendingReinvite struct {
	cseq      uint32
	offerless bool // we sent the offer in the 200; the ACK carries the answer
	acks      chan *sip.Request
	done      chan struct{} // closed when its handler returns
}

func (p *pendingReinvite) ack(req *sip.Request) {
	select {
	case p.acks <- req:
	default:
	}
}

// onReInvite handles a re-INVITE in a confirmed dialog (RFC 3261 §14.2):
// hold and resume (RFC 3264 §8.4), a new remote address or codec. A failed
// re-INVITE leaves the session as it was.
func (c *call) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	// RFC 3261 §14.2: 491 while our INVITE transaction (its ACK) is still
	// pending, or on glare with our own refresh re-INVITE (timers.go).
	if !c.waitConfirmed(c.s.ackGrace) || c.timer.offering.Load() {
		_ = c.s.respond(req, tx, sip.StatusRequestPending, "Request Pending", nil)
		c.s.metrics.reinvites.WithLabelValues("rejected").Inc()
		return
	}
	c.mu.Lock()
	if prev := c.reinvite; prev != nil {
		// The previous one may only be waiting for an ACK that is already
		// on its way (sipgo handles each message on its own goroutine).
		c.mu.Unlock()
		t := time.NewTimer(c.s.ackGrace)
		select {
		case <-prev.done:
		case <-t.C:
		case <-c.ctx.Done():
		}
		t.Stop()
		c.mu.Lock()
	}
	if c.reinvite != nil {
		c.mu.Unlock()
		// RFC 3261 §14.2: a re-INVITE while another is in progress gets 500
		// with a random Retry-After of 0 to 10 s.
		_ = c.s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error: re-INVITE in progress", nil,
			sip.NewHeader("Retry-After", strconv.Itoa(rand.IntN(11))))
		c.s.metrics.reinvites.WithLabelValues("rejected").Inc()
		return
	}
	p := &pendingReinvite{cseq: req.CSeq().SeqNo, acks: make(chan *sip.Request, 1), done: make(chan struct{})}
	c.reinvite = p
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.reinvite = nil
		c.mu.Unlock()
		close(p.done)
	}()

	if err := c.dlg.ReadRequest(req, tx); err != nil {
		// RFC 3261 §12.2.2: out of order.
		_ = c.s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error: CSeq out of order", nil)
		c.s.metrics.reinvites.WithLabelValues("rejected").Inc()
		return
	}
	if r := validateInvite(req); r != nil {
		c.rejectReinvite(req, tx, r)
		return
	}
	body, r := sdpBody(req)
	if r != nil {
		c.rejectReinvite(req, tx, r)
		return
	}
	// Every re-INVITE is a session refresh (RFC 4028 §9 applies to it).
	tres, r := c.timerFor(req)
	if r != nil {
		c.rejectReinvite(req, tx, r)
		return
	}

	var (
		out    []byte
		ans    sdp.Answer
		offer  sdp.Offer
		result string
	)
	if body == nil {
		// No offer: the 200 carries ours, the current session unchanged
		// (same o= version, RFC 3264 §8), and the ACK brings the answer.
		c.mu.Lock()
		p.offerless = true // under mu: offerlessPending reads it
		out = c.answerSDP
		c.mu.Unlock()
		result = "offerless"
	} else if offer, ans, out, r = c.answerReoffer(body); r != nil { // update.go
		c.rejectReinvite(req, tx, r)
		return
	}

	res := sip.NewSDPResponseFromRequest(req, out)
	res.AppendHeader(sip.HeaderClone(&c.contact))
	if err := c.s.send(req, tx, res, append(capabilityHeaders(), tres.headers()...)...); err != nil {
		c.log.Warn("sip: re-INVITE 200 not sent", "error", err)
		return
	}
	c.commitTimer(req, tres)
	c.refreshTarget(req) // RFC 3261 §12.2.2: a re-INVITE is a target refresh
	if body != nil {
		result = c.applyAnswer(offer, ans, out)
	}
	c.s.metrics.reinvites.WithLabelValues(result).Inc()

	// The UAS core retransmits its 2xx until the ACK (RFC 3261 §13.3.1.4);
	// sipgo's transaction does not do it for us.
	interval := sip.T1
	retransmit := time.NewTimer(interval)
	defer retransmit.Stop()
	deadline := time.NewTimer(64 * sip.T1)
	defer deadline.Stop()
	for {
		select {
		case ack := <-p.acks:
			if p.offerless && len(ack.Body()) > 0 {
				c.applyACKAnswer(ack)
			}
			return
		case <-retransmit.C:
			if err := tx.Respond(res); err != nil {
				return
			}
			interval = min(2*interval, sip.T2)
			retransmit.Reset(interval)
		case <-deadline.C:
			// RFC 3261 §13.3.1.4: no ACK for 64·T1: end the session.
			c.end(EndNoACK, errors.New("sip: no ACK for the re-INVITE 200"))
			return
		case <-c.ctx.Done():
			return
		}
	}
}

// rejectReinvite answers a re-INVITE with r's final response and counts it.
func (c *call) rejectReinvite(req *sip.Request, tx sip.ServerTransaction, r *rejection) {
	c.s.rejectRequest(req, tx, r)
	c.s.metrics.reinvites.WithLabelValues("rejected").Inc()
}

// applyAnswer moves the media to what a re-INVITE negotiated and returns the
// metric result (hold, resume, update).
func (c *call) applyAnswer(offer sdp.Offer, ans sdp.Answer, out []byte) string {
	c.mu.Lock()
	prev, wasHeld := c.answer, c.held
	hold := ans.Hold()
	// Keep the old address while on hold with c=0.0.0.0: there is none.
	newRemote := ans.Remote.IsValid() && ans.Remote != prev.Remote
	if !ans.Remote.IsValid() {
		ans.Remote = prev.Remote
	}
	c.offer, c.answer, c.answerSDP, c.held = offer, ans, out, hold
	c.mu.Unlock()

	if newRemote || ans.Codec.PT != prev.Codec.PT || ans.DTMFPT != prev.DTMFPT {
		c.stream.SetRemote(ans.Remote, media.Codec(ans.Codec.PT), ans.DTMFPT)
		c.log.Info("re-INVITE: media updated", "rtp_remote", ans.Remote.String(), "codec", ans.Codec.Name, "dtmf_pt", ans.DTMFPT)
	}
	if hold == wasHeld {
		return "update"
	}
	c.stream.SetSending(!hold)
	c.conv.SetHold(hold)
	if hold {
		c.log.Info("call on hold", "direction", ans.Direction.String())
		return "hold"
	}
	c.log.Info("call resumed", "direction", ans.Direction.String())
	return "resume"
}

// applyACKAnswer applies the answer an ACK carries after an offerless
// re-INVITE. Its direction describes the caller, so it is negotiated like an
// offer (the mirror rules are the same).
func (c *call) applyACKAnswer(ack *sip.Request) {
	body, r := sdpBody(ack)
	if r != nil || body == nil {
		return
	}
	offer, err := sdp.ParseOffer(body)
	if err != nil {
		c.log.Warn("sip: unparsable SDP in ACK", "error", err)
		return
	}
	ans, err := sdp.Negotiate(offer, sdp.Prefs{})
	if err != nil {
		c.log.Warn("sip: SDP in ACK has no usable audio", "error", err)
		return
	}
	c.mu.Lock()
	out := c.answerSDP
	c.mu.Unlock()
	c.s.metrics.reinvites.WithLabelValues(c.applyAnswer(offer, ans, out)).Inc()
}
