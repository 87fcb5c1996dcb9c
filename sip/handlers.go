package sip

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// onInvite handles initial INVITEs (the handler goroutine becomes the call)
// and re-INVITEs (To tag present, RFC 3261 §12.2.2).
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.inDialog((*leg).onReInvite)(req, tx)
		return
	}
	// RFC 3261 §8.2: authentication before the other checks, and before
	// anything is allocated for the call (auth.go). A request too broken
	// to answer properly is left to validateInvite's 400.
	var trunk *Trunk
	if validateRequest(req) == nil {
		var ok bool
		if trunk, ok = s.authorize(req, tx); !ok {
			return
		}
	}
	if r := validateInvite(req); r != nil {
		s.rejectRequest(req, tx, r)
		s.recordRejected(req, r)
		s.metrics.callEnds.WithLabelValues(r.reason.String()).Inc()
		return
	}
	if r := s.checkSessionInterval(req); r != nil { // timers.go: 422, RFC 4028 §9
		s.rejectRequest(req, tx, r)
		s.recordRejected(req, r)
		s.metrics.callEnds.WithLabelValues(r.reason.String()).Inc()
		return
	}
	trunkName := ""
	if trunk != nil {
		trunkName = trunk.Name
	}
	c := newCall(s, req, tx, trunkName)
	c.leg.prefs = s.mediaPrefs(trunk)
	if r := s.admit(c); r != nil {
		c.cancel(nil) // release the context; the call never started
		s.rejectRequest(req, tx, r)
		s.recordRejected(req, r)
		s.metrics.callEnds.WithLabelValues(r.reason.String()).Inc()
		return
	}
	defer s.release(c)
	c.run()
}

// onAck confirms a dialog. An ACK matching nothing is dropped: ACKs are
// never answered (RFC 3261 §17.2.3), and retransmitted ones are normal.
func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if req.CallID() == nil || req.CSeq() == nil {
		return
	}
	l := s.lookupDialog(req)
	if l == nil {
		s.log.Debug("sip: stray ACK", "call_id", headerValue(req.CallID()))
		return
	}
	l.onAck(req, tx)
}

// inDialog routes a request that only makes sense inside a dialog (BYE,
// NOTIFY, UPDATE, INFO, re-INVITE) to its call's leg: 400 when malformed,
// 481 when no call has the dialog (RFC 3261 §12.2.2).
func (s *Server) inDialog(handle func(l *leg, req *sip.Request, tx sip.ServerTransaction)) func(*sip.Request, sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if r := validateRequest(req); r != nil {
			s.rejectRequest(req, tx, r)
			return
		}
		l := s.lookupDialog(req)
		if l == nil {
			s.inDialogUnknown(req, tx)
			return
		}
		handle(l, req, tx)
	}
}

// onCancel only sees CANCELs that match no INVITE transaction: sipgo's
// transaction layer answers the matching ones itself (200 to the CANCEL,
// 487 to the INVITE, RFC 3261 §9.2) and ends the dialog, which the call
// watches. The rest get 481.
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	if r := validateRequest(req); r != nil {
		s.rejectRequest(req, tx, r)
		return
	}
	_ = s.respond(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil)
}

// onOptions answers capability queries and keep-alive pings (RFC 3261 §11):
// 200 with what we accept, or 503 while draining, at MaxCalls or when no
// region has a free session (Config.Capacity) so the
// trunk's health check (a Kamailio dispatcher, an SBC) takes us out of
// rotation instead of sending INVITEs that would get 503.
func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	// limits.go: a flood of OPTIONS from one source is dropped, unanswered
	// (no reflection); INVITEs from that source are not affected.
	if src, ok := sourceAddr(req); ok && !s.optionsRate.allow(src) {
		s.metrics.limited.WithLabelValues(limitOptionsRate).Inc()
		return
	}
	if r := validateRequest(req); r != nil {
		s.rejectRequest(req, tx, r)
		return
	}
	if s.draining.Load() || (s.cfg.MaxCalls > 0 && s.ActiveCalls() >= s.cfg.MaxCalls) {
		_ = s.respond(req, tx, sip.StatusServiceUnavailable, "Service Unavailable", nil,
			sip.NewHeader("Retry-After", strconv.Itoa(retryAfterSeconds)))
		return
	}
	if r := s.noCapacity(); r != nil {
		_ = s.respond(req, tx, sip.StatusServiceUnavailable, r.phrase(), nil, r.hdrs...)
		return
	}
	_ = s.respond(req, tx, sip.StatusOK, "OK", nil, capabilityHeaders()...)
}

// onNoRoute: 405 with the methods we do handle (RFC 3261 §21.4.6 requires
// Allow in a 405).
func (s *Server) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	if req.IsAck() {
		return
	}
	_ = s.respond(req, tx, sip.StatusMethodNotAllowed, "Method Not Allowed", nil, sip.NewHeader("Allow", allowedMethods))
}

// inDialogUnknown answers an in-dialog request for a dialog we do not have
// (RFC 3261 §12.2.2).
func (s *Server) inDialogUnknown(req *sip.Request, tx sip.ServerTransaction) {
	err := s.respond(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil)
	if ok, suppressed := s.badLog.Allow(); ok {
		s.log.Info("sip: request for an unknown dialog", "method", sanitizePhrase(req.Method.String()),
			"call_id", headerValue(req.CallID()), "src", req.Source(), "suppressed", suppressed, "error", err)
	}
}

// capabilityHeaders go on OPTIONS 200 and on our 2xx to INVITE (RFC 3261
// §13.3.1.4: a 2xx SHOULD carry Allow and Supported). The one option tag is
// timer (RFC 4028 §7.1, timers.go); no 100rel. Accept lists the SDP and the
// DTMF INFO bodies (info.go).
func capabilityHeaders() []sip.Header {
	return []sip.Header{
		sip.NewHeader("Allow", allowedMethods),
		sip.NewHeader("Accept", "application/sdp, "+ctDTMFRelay+", "+ctDTMF),
		sip.NewHeader("Supported", "timer"),
	}
}
