package sip

import (
	"github.com/emiago/sipgo/sip"

	"github.com/sipbridge/sipbridge/sip/sdp"
)

// (*call).onUpdate takes UPDATE (RFC 3311) in a dialog: a session refresh
// without a body (RFC 4028 §7.4), or an SDP offer under the re-INVITE's
// offer/answer rules (hold, resume, new address or codec), answered in the
// 200 itself: there is no ACK. Routed by Server.inDialog (481 outside one).
func (c *call) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	// An UPDATE is a target refresh request: From tag and Contact as for
	// an INVITE (RFC 3311 §5.1), and no Require we lack.
	if r := validateInvite(req); r != nil {
		c.s.rejectRequest(req, tx, r)
		return
	}
	if !c.readInDialog(req, tx) {
		return
	}
	tres, r := c.timerFor(req)
	if r != nil {
		c.s.rejectRequest(req, tx, r)
		return
	}
	body, r := sdpBody(req)
	if r != nil {
		c.s.rejectRequest(req, tx, r)
		return
	}
	hdrs := append(capabilityHeaders(), tres.headers()...)
	if body == nil {
		// A session refresh (or a target refresh): nothing to negotiate.
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		res.AppendHeader(sip.HeaderClone(&c.contact)) // RFC 3311 §5.2: 2xx carries Contact
		if err := c.s.send(req, tx, res, hdrs...); err != nil {
			c.log.Warn("sip: UPDATE 200 not sent", "error", err)
			return
		}
		c.commitTimer(req, tres)
		c.refreshTarget(req)
		return
	}

	// RFC 3311 §5.2: an offer before the INVITE's own offer/answer is done,
	// or while ours is outstanding, gets 491 (the caller retries).
	if !c.confirmed.Load() || c.timer.offering.Load() || c.offerlessPending() {
		_ = c.s.respond(req, tx, sip.StatusRequestPending, "Request Pending", nil)
		c.s.metrics.reinvites.WithLabelValues("rejected").Inc()
		return
	}
	offer, ans, out, r := c.answerReoffer(body)
	if r != nil {
		c.s.rejectRequest(req, tx, r)
		c.s.metrics.reinvites.WithLabelValues("rejected").Inc()
		return
	}
	res := sip.NewSDPResponseFromRequest(req, out)
	res.AppendHeader(sip.HeaderClone(&c.contact))
	if err := c.s.send(req, tx, res, hdrs...); err != nil {
		c.log.Warn("sip: UPDATE 200 not sent", "error", err)
		return
	}
	c.commitTimer(req, tres)
	c.refreshTarget(req)
	c.s.metrics.reinvites.WithLabelValues(c.applyAnswer(offer, ans, out)).Inc()
}

// offerlessPending reports whether an offerless re-INVITE of the caller
// waits for the ACK that answers our offer (RFC 3311 §5.2: no new offer
// then).
func (c *call) offerlessPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reinvite != nil && c.reinvite.offerless
}

// answerReoffer answers an SDP offer inside the dialog (re-INVITE or
// UPDATE): the same rules as the initial offer, our SDP version one up
// (RFC 3264 §8). It does not touch the media; applyAnswer does once the
// answer is sent.
func (c *call) answerReoffer(body []byte) (sdp.Offer, sdp.Answer, []byte, *rejection) {
	offer, err := sdp.ParseOffer(body)
	if err != nil {
		return offer, sdp.Answer{}, nil, reject(EndRejectBadRequest, "unparsable SDP")
	}
	ans, err := sdp.Negotiate(offer, sdp.Prefs{})
	if err != nil {
		r := reject(EndRejectNoCommonCodec, "")
		r.hdrs = append(r.hdrs, warning(c.s.cfg.AdvertiseHost, 305, "Incompatible media format"))
		return offer, ans, nil, r
	}
	c.mu.Lock()
	local := c.local
	local.SessionVersion++ // our SDP changes with every answer (RFC 3264 §8)
	out, err := sdp.BuildAnswer(offer, ans, local)
	if err == nil {
		c.local = local
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Error("sip: building the SDP answer to a re-offer", "error", err)
		return offer, ans, nil, reject(EndInternal, "SDP answer")
	}
	return offer, ans, out, nil
}

// readInDialog checks the CSeq of an in-dialog request the caller sent
// (RFC 3261 §12.2.2: lower than the last one is out of order: 500). sipgo's
// ReadAck wants the ACK of our 200 to carry the last CSeq read, so a request
// overtaking that ACK (each message has its own goroutine) must not be read
// first: once answered, an ACK in flight gets ackGrace to land, and a request
// that still comes before it is taken unchecked. It reports whether to go on.
func (c *call) readInDialog(req *sip.Request, tx sip.ServerTransaction) bool {
	if !c.answered.Load() || !c.waitConfirmed(c.s.ackGrace) {
		return true
	}
	if err := c.dlg.ReadRequest(req, tx); err != nil {
		_ = c.s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error: CSeq out of order", nil)
		return false
	}
	return true
}
