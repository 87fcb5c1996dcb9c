package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipbridge/sipbridge/sip/sdp"
)

// leg is a call's SIP signalling leg: the server dialog of the INVITE
// (RFC 3261 §12). It owns the offer/answer state (one answer-an-offer
// function, answerOffer, and one take-an-answer function, takeAnswer), the
// session timer (timers.go), the remote target (target.go), REFER and its
// NOTIFYs (transfer.go), ACK, BYE and the INVITE's final response, and it
// builds every request we send in the dialog (newRequest). It never touches
// the media or the conversation: what the call must act on (media changed,
// hold, DTMF, expiry, BYE) it reports as a legEvent on events, which only
// the call's loop reads.
//
// Its request handlers run on sipgo's goroutines; what they share is
// guarded by mu or atomic.
type leg struct {
	s   *Server
	log *slog.Logger
	ctx context.Context // the call's: its end stops everything the leg waits on

	req *sip.Request // the initial INVITE
	tx  sip.ServerTransaction

	// Written before the dialog is registered (the server's map mutex
	// publishes them), read-only afterwards.
	dlg      *sipgo.DialogServerSession
	dialogID string
	contact  sip.ContactHeader
	// laddr is the UDP listener the INVITE came in on: our in-dialog
	// requests leave from it, so the trunk sees the address it talks to
	// (sipgo would otherwise open an ephemeral socket for a destination it
	// has not heard from, e.g. a Record-Route proxy). Invalid for TCP,
	// where sipgo reuses the caller's connection.
	laddr netip.AddrPort

	events chan *legEvent

	// lateOffer: the INVITE had no SDP, so our 200 offers and the ACK
	// answers (RFC 3261 §13.2.1). Set by the call's setup, read by its
	// goroutine only.
	lateOffer bool
	// prefs is what the call may negotiate (the admitting trunk's codecs
	// and media encryption policy, mediapolicy.go). Set before the call
	// runs (narrowed by a late offer's setup), read-only afterwards.
	prefs sdp.Prefs

	answered    atomic.Bool   // our 200 OK was handed to sipgo
	confirmed   atomic.Bool   // its ACK arrived
	confirmedCh chan struct{} // closed when confirmed is set
	confirmOnce sync.Once

	mu        sync.Mutex // guards the fields below
	offer     sdp.Offer  // the caller's last offer (or answer, after a late offer)
	answer    sdp.Answer // what we negotiated from it
	answerSDP []byte     // our current session description
	local     sdp.Local
	held      bool
	reinvite  *pendingReinvite
	referSent bool
	notifies  chan notifyStatus
	ackSDP    []byte // SDP of the ACK of our 200 (the answer, for a late offer)

	timer  sessionTimer // RFC 4028 session timer (timers.go)
	target remoteTarget // remote target after a target refresh (target.go)
}

// legEventKind is what the leg reports to the call.
type legEventKind uint8

const (
	// legMediaChanged: the caller's media moved (address, codec or DTMF
	// payload type); answer holds the new session.
	legMediaChanged legEventKind = iota + 1
	// legHold: the caller put the call on hold (held) or resumed it.
	legHold
	// legDTMF: a key arrived in SIP INFO (RFC 4733 keys come from media).
	legDTMF
	// legExpired: the dialog is over without a BYE from the caller: the
	// session timer ran out, a refresh failed, or an ACK never came
	// (reason says which).
	legExpired
	// legBye: the caller hung up.
	legBye
)

// legEvent is one report of the leg.
type legEvent struct {
	kind   legEventKind
	answer sdp.Answer // legMediaChanged
	rekey  bool       // legMediaChanged: answer.SRTP carries new keys
	held   bool       // legHold
	digit  rune       // legDTMF
	durMs  int        // legDTMF
	reason EndReason  // legExpired
	err    error      // legExpired
}

// legEventQueue bounds the events not yet read by the call's loop; the
// handlers wait for room (or the end of the call).
const legEventQueue = 16

func newLeg(s *Server, ctx context.Context, req *sip.Request, tx sip.ServerTransaction, log *slog.Logger) *leg {
	return &leg{
		s:           s,
		log:         log,
		ctx:         ctx,
		req:         req,
		tx:          tx,
		events:      make(chan *legEvent, legEventQueue),
		confirmedCh: make(chan struct{}),
		notifies:    make(chan notifyStatus, notifyBufferSize),
	}
}

// report hands an event to the call's loop. The queue holds pointers (an
// event is allocated when reported, a few per call): 128 bytes a call
// instead of 16 216-byte events allocated whole (issue 10).
func (l *leg) report(ev legEvent) {
	select {
	case l.events <- &ev:
	case <-l.ctx.Done():
	}
}

// accept reads the INVITE into a server dialog (our To tag) and registers
// it, so in-dialog requests find the leg.
func (l *leg) accept() error {
	l.contact = l.s.contactFor(l.req, l.tx)
	if ap, ok := localAddr(l.tx); ok && strings.EqualFold(l.req.Transport(), "udp") {
		l.laddr = ap
	}
	// No RewriteContact: it would send every request to the INVITE's
	// source even after a target refresh; newRequest routes them instead.
	ua := &sipgo.DialogUA{Client: l.s.client, ContactHDR: l.contact}
	dlg, err := ua.ReadInvite(l.req, l.tx)
	if err != nil {
		return err
	}
	l.dlg, l.dialogID = dlg, dlg.ID
	l.s.registerDialog(dlg.ID, l)
	return nil
}

// dialogEnded reports whether sipgo ended the dialog before it was
// confirmed, and why: a CANCEL (EndCancelled) or the INVITE transaction
// dying (EndDialogEnded).
func (l *leg) dialogEnded() (EndReason, error, bool) {
	if l.dlg == nil || l.dlg.Context().Err() == nil {
		return 0, nil, false
	}
	cause := context.Cause(l.dlg.Context())
	if errors.Is(cause, sip.ErrTransactionCanceled) {
		return EndCancelled, nil, true
	}
	return EndDialogEnded, cause, true
}

// ---- offer/answer ------------------------------------------------------------

// answerOffer is the one answer-an-offer function, for the INVITE, a
// re-INVITE and an UPDATE (RFC 3264 §5, §8): parse the caller's SDP and
// negotiate our side; once our session exists (local has a port) also build
// our answer, its version one up (RFC 3264 §8). It changes no state:
// applyAnswer does once the answer is sent.
func (l *leg) answerOffer(body []byte) (sdp.Offer, sdp.Answer, []byte, *rejection) {
	offer, err := sdp.ParseOffer(body)
	if err != nil {
		return offer, sdp.Answer{}, nil, reject(EndRejectBadRequest, "unparsable SDP")
	}
	if offer.Lenient {
		l.log.Debug("sip: SDP read by the lenient parser", "pion_error", offer.PionErr)
	}
	l.mu.Lock()
	cur, running := l.answer, l.local.Port != 0
	l.mu.Unlock()
	prefs := l.prefs
	if running {
		// The stream keeps its sample rate for the call (PCMU ↔ PCMA only).
		prefs = prefs.SameAudioRate(cur.Codec.PT)
	}
	ans, err := sdp.Negotiate(offer, prefs)
	if err == nil && running {
		err = keepSecurity(cur, &ans)
	}
	if err != nil {
		l.s.metrics.countNegotiationError(err)
		l.log.Info("sip: SDP offer not acceptable", "error", err, "codecs", codecList(prefs.Codecs), "media_encryption", prefs.Encryption.String())
		// RFC 3261 §21.4.26 and §20.43 (Warning 305 Incompatible media format).
		r := reject(EndRejectNoCommonCodec, "")
		r.hdrs = append(r.hdrs, warning(l.s.cfg.AdvertiseHost, 305, "Incompatible media format"))
		return offer, ans, nil, r
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.local.Port == 0 {
		return offer, ans, nil, nil // the INVITE's offer: bindLocal builds the answer
	}
	local := l.local
	local.SessionVersion++ // our SDP changes with every answer (RFC 3264 §8)
	out, err := sdp.BuildAnswer(offer, ans, local)
	if err != nil {
		l.log.Error("sip: building the SDP answer", "error", err)
		return offer, ans, nil, reject(EndInternal, "SDP answer")
	}
	l.local = local
	return offer, ans, out, nil
}

// takeAnswer is the one take-an-answer function: the caller's answer to our
// offer (the ACK after a late offer or an offerless re-INVITE, the 200 to
// our refresh re-INVITE). The answer's direction describes the caller, so
// negotiating it like an offer gives our side (RFC 3264 §6.1 mirrors both
// ways).
func (l *leg) takeAnswer(body []byte) (sdp.Offer, sdp.Answer, error) {
	if len(body) == 0 {
		return sdp.Offer{}, sdp.Answer{}, errors.New("sip: no SDP answer")
	}
	answer, err := sdp.ParseOffer(body)
	if err != nil {
		return answer, sdp.Answer{}, fmt.Errorf("sip: unparsable SDP answer: %w", err)
	}
	l.mu.Lock()
	cur := l.answer
	l.mu.Unlock()
	ans, err := sdp.Negotiate(answer, l.prefs.SameAudioRate(cur.Codec.PT))
	if err == nil && (ans.SRTP != nil) != (cur.SRTP != nil) {
		err = fmt.Errorf("answer proto %s, our offer was %s", ans.Proto, secureName(cur.SRTP != nil))
	}
	if err == nil && ans.SRTP != nil {
		// Our offer carried our current keying (a late offer's, or the
		// session's for an offerless re-INVITE or our refresh): we keep
		// encrypting with that key.
		err = ans.UseOfferedKey(*cur.SRTP)
	}
	if err != nil {
		l.s.metrics.countNegotiationError(err)
		return answer, ans, fmt.Errorf("sip: SDP answer without usable audio: %w", err)
	}
	return answer, ans, nil
}

// keepSecurity checks an answer to a re-INVITE or UPDATE on a running
// session: SRTP cannot be switched on or off mid-call (the stream was built
// with or without it, and dropping it would send clear RTP), and a caller
// that kept its key keeps ours (no re-key, nothing in flight lost).
func keepSecurity(cur sdp.Answer, ans *sdp.Answer) error {
	if (ans.SRTP != nil) != (cur.SRTP != nil) {
		return &sdp.NegotiationError{Reason: rejectSRTPChange,
			Detail: fmt.Sprintf("the call runs %s; a re-offer of %s cannot change that", secureName(cur.SRTP != nil), ans.Proto)}
	}
	if ans.SRTP != nil {
		ans.KeepLocalKey(cur.SRTP)
	}
	return nil
}

// rejectSRTPChange is the negotiation rejection of a re-offer that would
// turn SRTP on or off.
const rejectSRTPChange sdp.RejectReason = "srtp-change"

func secureName(secure bool) string {
	if secure {
		return "SRTP"
	}
	return "clear RTP"
}

// bindLocal creates our session on the RTP port and builds the SDP of our
// 200: the answer to the INVITE's offer, or our offer for a late offer.
func (l *leg) bindLocal(port int, offer sdp.Offer, ans sdp.Answer) error {
	local := sdp.Local{
		Host:           l.s.cfg.AdvertiseHost,
		Port:           port,
		SessionID:      sdp.NewSessionID(),
		SessionVersion: 1,
		Username:       "sipbridge",
	}
	var (
		out []byte
		err error
	)
	if l.lateOffer {
		if ans.SRTP != nil {
			local.SRTP = &sdp.SRTP{Suite: ans.SRTP.Suite, Tag: ans.SRTP.Tag, LocalKey: ans.SRTP.LocalKey}
		}
		out, err = sdp.BuildOffer(local, l.prefs)
	} else {
		out, err = sdp.BuildAnswer(offer, ans, local)
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.offer, l.answer, l.answerSDP, l.local, l.held = offer, ans, out, local, ans.Hold()
	l.mu.Unlock()
	return nil
}

// applyAnswer makes a negotiated session current, reports what changed
// (legMediaChanged, legHold) and returns the metric result (hold, resume,
// update). out is our SDP for it.
func (l *leg) applyAnswer(offer sdp.Offer, ans sdp.Answer, out []byte) string {
	l.mu.Lock()
	prev, wasHeld := l.answer, l.held
	hold := ans.Hold()
	// Keep the old address while on hold with c=0.0.0.0: there is none.
	newRemote := ans.Remote.IsValid() && ans.Remote != prev.Remote
	if !ans.Remote.IsValid() {
		ans.Remote = prev.Remote
	}
	l.offer, l.answer, l.answerSDP, l.held = offer, ans, out, hold
	l.mu.Unlock()

	rekey := ans.SRTP != nil && !sameKeys(prev.SRTP, ans.SRTP)
	if newRemote || ans.Codec.PT != prev.Codec.PT || ans.DTMFPT != prev.DTMFPT || rekey {
		l.log.Info("re-INVITE: media updated", "rtp_remote", ans.Remote.String(), "codec", ans.Codec.Name, "dtmf_pt", ans.DTMFPT, "rekey", rekey)
		l.report(legEvent{kind: legMediaChanged, answer: ans, rekey: rekey})
	}
	if hold == wasHeld {
		return "update"
	}
	l.report(legEvent{kind: legHold, held: hold})
	if hold {
		l.log.Info("call on hold", "direction", ans.Direction.String())
		return "hold"
	}
	l.log.Info("call resumed", "direction", ans.Direction.String())
	return "resume"
}

// current is the negotiated session and our SDP for it.
func (l *leg) current() (sdp.Answer, []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answer, l.answerSDP
}

// takeLateAnswer applies the answer the ACK of our 200 carried after a late
// offer (RFC 3261 §13.2.1). Without an acceptable one the call must end
// (§13.3.1.4: the session SHOULD then be terminated with BYE).
func (l *leg) takeLateAnswer() error {
	l.mu.Lock()
	body, out := l.ackSDP, l.answerSDP
	l.mu.Unlock()
	if body == nil {
		return errors.New("sip: ACK without SDP answer")
	}
	answer, ans, err := l.takeAnswer(body)
	if err != nil {
		return fmt.Errorf("sip: SDP answer in ACK: %w", err)
	}
	// The placeholder session had no remote, so the media is reported.
	l.applyAnswer(answer, ans, out)
	return nil
}

// ---- the INVITE transaction --------------------------------------------------

// sendAnswer hands our 200 OK to sipgo. WriteResponse blocks until the ACK
// (it retransmits the 2xx itself, RFC 6026 §7.1), so it runs beside the
// call; its result arrives on the returned channel.
func (l *leg) sendAnswer() <-chan error {
	_, body := l.current()
	res := sip.NewSDPResponseFromRequest(l.dlg.InviteRequest, body)
	for _, h := range append(capabilityHeaders(), l.armTimer()...) {
		res.AppendHeader(h)
	}
	res.AppendHeader(sip.NewHeader("Server", l.s.cfg.UserAgent))
	res = sanitizeResponse(res)
	l.s.metrics.responses.WithLabelValues("INVITE", "200").Inc()
	done := make(chan error, 1)
	l.answered.Store(true)
	go func() { done <- l.dlg.WriteResponse(res) }()
	return done
}

// ring sends 180 Ringing (answer-when-ready).
func (l *leg) ring() {
	ringing := sip.NewResponseFromRequest(l.dlg.InviteRequest, sip.StatusRinging, "Ringing", nil)
	ringing.AppendHeader(sip.NewHeader("Server", l.s.cfg.UserAgent))
	if err := l.tx.Respond(sanitizeResponse(ringing)); err != nil {
		l.log.Debug("sip: 180 Ringing not sent", "error", err)
	}
}

// ackInInviteTx takes an ACK matched to the INVITE transaction itself (a
// peer that reuses the INVITE branch) and reports whether it confirmed the
// dialog.
func (l *leg) ackInInviteTx(ack *sip.Request) bool {
	l.keepACKSDP(ack)
	if err := l.dlg.ReadAck(ack, l.tx); err != nil {
		l.log.Debug("sip: ACK in INVITE transaction rejected", "error", err)
		return false
	}
	l.markConfirmed()
	return true
}

// markConfirmed records the ACK of our 200 (RFC 3261 §13.3.1.4).
func (l *leg) markConfirmed() {
	l.confirmOnce.Do(func() {
		l.confirmed.Store(true)
		close(l.confirmedCh)
	})
}

// waitConfirmed waits for the ACK of our 200, at most d. sipgo hands each
// message to its own goroutine, so a request sent right after the ACK
// (re-INVITE, or our own REFER decided at once) can be handled first.
func (l *leg) waitConfirmed(d time.Duration) bool {
	if l.confirmed.Load() {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.confirmedCh:
		return true
	case <-t.C:
	case <-l.ctx.Done():
	}
	return false
}

// onAck handles an ACK in our dialog: the ACK of our 200 (ReadAck releases
// WriteResponse) or of a re-INVITE's 200.
func (l *leg) onAck(req *sip.Request, tx sip.ServerTransaction) {
	initial := l.answered.Load() && req.CSeq().SeqNo == l.req.CSeq().SeqNo
	if initial {
		l.keepACKSDP(req) // before ReadAck releases the answering goroutine
	}
	if err := l.dlg.ReadAck(req, tx); err != nil {
		l.log.Debug("sip: ACK with unexpected CSeq", "error", err)
	} else if initial {
		l.markConfirmed()
	}
	l.mu.Lock()
	p := l.reinvite
	l.mu.Unlock()
	if p != nil && req.CSeq().SeqNo == p.cseq {
		p.ack(req)
	}
}

// keepACKSDP stores the SDP of the ACK of our 200, before markConfirmed
// publishes it.
func (l *leg) keepACKSDP(ack *sip.Request) {
	body, r := sdpBody(ack)
	if r != nil || body == nil {
		return
	}
	l.mu.Lock()
	if l.ackSDP == nil {
		l.ackSDP = body
	}
	l.mu.Unlock()
}

// onBye takes the caller's BYE (RFC 3261 §15.1.2) and reports it.
func (l *leg) onBye(req *sip.Request, tx sip.ServerTransaction) {
	// RFC 3261 §12.2.2: a CSeq lower than the dialog's is out of order.
	if req.CSeq().SeqNo < l.req.CSeq().SeqNo {
		_ = l.s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error: CSeq out of order", nil)
		return
	}
	l.report(legEvent{kind: legBye})
	if err := l.dlg.ReadBye(req, tx); err != nil {
		l.log.Warn("sip: answering BYE failed", "error", err)
		return
	}
	l.s.metrics.responses.WithLabelValues("BYE", "200").Inc()
}

// sendFinal answers the INVITE with a final status (call not answered).
func (l *leg) sendFinal(status int, phrase string, hdrs []sip.Header) {
	req := l.req
	if l.dlg != nil {
		req = l.dlg.InviteRequest // carries our To tag
	}
	if err := l.s.respond(req, l.tx, status, phrase, nil, hdrs...); err != nil {
		l.log.Debug("sip: final response not sent", "status", status, "error", err)
	}
}

// bye hangs up with a Reason header (RFC 3326).
func (l *leg) bye(ctx context.Context, reason string) {
	bye := l.newRequest(sip.BYE)
	if reason != "" {
		bye.AppendHeader(sip.NewHeader("Reason", reason))
	}
	if err := l.dlg.WriteBye(ctx, bye); err != nil {
		l.log.Warn("sip: BYE failed", "error", err)
	}
}

// close releases the dialog.
func (l *leg) close() {
	if l.dlg != nil {
		_ = l.dlg.Close()
	}
}

// ---- requests we send ----------------------------------------------------------

// newRequest is the one builder of our in-dialog requests (BYE, REFER,
// session refresh): to the remote target (target.go), from the listener
// the INVITE came in on, with our User-Agent. sipgo's dialog adds the
// dialog headers (From, To, Call-ID, CSeq, Route) when it sends it.
func (l *leg) newRequest(method sip.RequestMethod) *sip.Request {
	req := sip.NewRequest(method, l.dlg.InviteRequest.Contact().Address)
	req.SetTransport(l.dlg.InviteRequest.Transport())
	req.AppendHeader(sip.NewHeader("User-Agent", l.s.cfg.UserAgent))
	if l.laddr.IsValid() {
		ip := l.laddr.Addr().AsSlice()
		req.Laddr = sip.Addr{IP: net.IP(ip), Port: int(l.laddr.Port())}
	}
	l.routeToTarget(req)
	return req
}
