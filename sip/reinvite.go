package sip

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

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
func (l *leg) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	// RFC 3261 §14.2: 491 while our INVITE transaction (its ACK) is still
	// pending, or on glare with our own refresh re-INVITE (timers.go).
	if !l.waitConfirmed(l.s.ackGrace) || l.timer.offering.Load() {
		_ = l.s.respond(req, tx, sip.StatusRequestPending, "Request Pending", nil)
		l.s.metrics.reinvites.WithLabelValues("rejected").Inc()
		return
	}
	l.mu.Lock()
	if prev := l.reinvite; prev != nil {
		// The previous one may only be waiting for an ACK that is already
		// on its way (sipgo handles each message on its own goroutine).
		l.mu.Unlock()
		t := time.NewTimer(l.s.ackGrace)
		select {
		case <-prev.done:
		case <-t.C:
		case <-l.ctx.Done():
		}
		t.Stop()
		l.mu.Lock()
	}
	if l.reinvite != nil {
		l.mu.Unlock()
		// RFC 3261 §14.2: a re-INVITE while another is in progress gets 500
		// with a random Retry-After of 0 to 10 s.
		_ = l.s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error: re-INVITE in progress", nil,
			sip.NewHeader("Retry-After", strconv.Itoa(rand.IntN(11))))
		l.s.metrics.reinvites.WithLabelValues("rejected").Inc()
		return
	}
	p := &pendingReinvite{cseq: req.CSeq().SeqNo, acks: make(chan *sip.Request, 1), done: make(chan struct{})}
	l.reinvite = p
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.reinvite = nil
		l.mu.Unlock()
		close(p.done)
	}()

	if err := l.dlg.ReadRequest(req, tx); err != nil {
		// RFC 3261 §12.2.2: out of order.
		_ = l.s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error: CSeq out of order", nil)
		l.s.metrics.reinvites.WithLabelValues("rejected").Inc()
		return
	}
	if r := validateInvite(req); r != nil {
		l.rejectReinvite(req, tx, r)
		return
	}
	body, r := sdpBody(req)
	if r != nil {
		l.rejectReinvite(req, tx, r)
		return
	}
	// Every re-INVITE is a session refresh (RFC 4028 §9 applies to it).
	tres, r := l.timerFor(req)
	if r != nil {
		l.rejectReinvite(req, tx, r)
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
		l.mu.Lock()
		p.offerless = true // under mu: offerlessPending reads it
		out = l.answerSDP
		l.mu.Unlock()
		result = "offerless"
	} else if offer, ans, out, r = l.answerOffer(body); r != nil { // leg.go
		l.rejectReinvite(req, tx, r)
		return
	}

	res := sip.NewSDPResponseFromRequest(req, out)
	res.AppendHeader(sip.HeaderClone(&l.contact))
	if err := l.s.send(req, tx, res, append(capabilityHeaders(), tres.headers()...)...); err != nil {
		l.log.Warn("sip: re-INVITE 200 not sent", "error", err)
		return
	}
	l.commitTimer(req, tres)
	l.refreshTarget(req) // RFC 3261 §12.2.2: a re-INVITE is a target refresh
	if body != nil {
		result = l.applyAnswer(offer, ans, out)
	}
	l.s.metrics.reinvites.WithLabelValues(result).Inc()

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
				l.applyACKAnswer(ack)
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
			l.report(legEvent{kind: legExpired, reason: EndNoACK, err: errors.New("sip: no ACK for the re-INVITE 200")})
			return
		case <-l.ctx.Done():
			return
		}
	}
}

// rejectReinvite answers a re-INVITE with r's final response and counts it.
func (l *leg) rejectReinvite(req *sip.Request, tx sip.ServerTransaction, r *rejection) {
	l.s.rejectRequest(req, tx, r)
	l.s.metrics.reinvites.WithLabelValues("rejected").Inc()
}

// applyACKAnswer applies the answer an ACK carries after an offerless
// re-INVITE. Its direction describes the caller, so it is negotiated like an
// offer (the mirror rules are the same).
func (l *leg) applyACKAnswer(ack *sip.Request) {
	body, r := sdpBody(ack)
	if r != nil || body == nil {
		return
	}
	answer, ans, err := l.takeAnswer(body)
	if err != nil {
		l.log.Warn("sip: SDP answer in ACK", "error", err)
		return
	}
	_, out := l.current()
	l.s.metrics.reinvites.WithLabelValues(l.applyAnswer(answer, ans, out)).Inc()
}
