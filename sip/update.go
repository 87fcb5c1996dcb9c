package sip

import (
	"github.com/emiago/sipgo/sip"
)

// onUpdate takes UPDATE (RFC 3311) in a dialog: a session refresh
// without a body (RFC 4028 §7.4), or an SDP offer under the re-INVITE's
// offer/answer rules (hold, resume, new address or codec), answered in the
// 200 itself: there is no ACK. Routed by Server.inDialog (481 outside one).
func (l *leg) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	// An UPDATE is a target refresh request: From tag and Contact as for
	// an INVITE (RFC 3311 §5.1), and no Require we lack.
	if r := validateInvite(req); r != nil {
		l.s.rejectRequest(req, tx, r)
		return
	}
	if !l.readInDialog(req, tx) {
		return
	}
	tres, r := l.timerFor(req)
	if r != nil {
		l.s.rejectRequest(req, tx, r)
		return
	}
	body, r := sdpBody(req)
	if r != nil {
		l.s.rejectRequest(req, tx, r)
		return
	}
	hdrs := append(capabilityHeaders(), tres.headers()...)
	if body == nil {
		// A session refresh (or a target refresh): nothing to negotiate.
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		res.AppendHeader(sip.HeaderClone(&l.contact)) // RFC 3311 §5.2: 2xx carries Contact
		if err := l.s.send(req, tx, res, hdrs...); err != nil {
			l.log.Warn("sip: UPDATE 200 not sent", "error", err)
			return
		}
		l.commitTimer(req, tres)
		l.refreshTarget(req)
		return
	}

	// RFC 3311 §5.2: an offer before the INVITE's own offer/answer is done,
	// or while ours is outstanding, gets 491 (the caller retries).
	if !l.confirmed.Load() || l.timer.offering.Load() || l.offerlessPending() {
		_ = l.s.respond(req, tx, sip.StatusRequestPending, "Request Pending", nil)
		l.s.metrics.reinvites.WithLabelValues("rejected").Inc()
		return
	}
	offer, ans, out, r := l.answerOffer(body)
	if r != nil {
		l.s.rejectRequest(req, tx, r)
		l.s.metrics.reinvites.WithLabelValues("rejected").Inc()
		return
	}
	res := sip.NewSDPResponseFromRequest(req, out)
	res.AppendHeader(sip.HeaderClone(&l.contact))
	if err := l.s.send(req, tx, res, hdrs...); err != nil {
		l.log.Warn("sip: UPDATE 200 not sent", "error", err)
		return
	}
	l.commitTimer(req, tres)
	l.refreshTarget(req)
	l.s.metrics.reinvites.WithLabelValues(l.applyAnswer(offer, ans, out)).Inc()
}

// offerlessPending reports whether an offerless re-INVITE of the caller
// waits for the ACK that answers our offer (RFC 3311 §5.2: no new offer
// then).
func (l *leg) offerlessPending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reinvite != nil && l.reinvite.offerless
}

// readInDialog checks the CSeq of an in-dialog request the caller sent
// (RFC 3261 §12.2.2: lower than the last one is out of order: 500). sipgo's
// ReadAck wants the ACK of our 200 to carry the last CSeq read, so a request
// overtaking that ACK (each message has its own goroutine) must not be read
// first: once answered, an ACK in flight gets ackGrace to land, and a request
// that still comes before it is taken unchecked. It reports whether to go on.
func (l *leg) readInDialog(req *sip.Request, tx sip.ServerTransaction) bool {
	if !l.answered.Load() || !l.waitConfirmed(l.s.ackGrace) {
		return true
	}
	if err := l.dlg.ReadRequest(req, tx); err != nil {
		_ = l.s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error: CSeq out of order", nil)
		return false
	}
	return true
}
