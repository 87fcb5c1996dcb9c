package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// call is one inbound call: the orchestrator that joins the SIP leg (leg.go),
// the media stream and the conversation. The INVITE handler goroutine owns
// it from the INVITE to the end of teardown (run): it sets the call up, then
// waits in one loop (waitForCallEnd) on the call's context, the leg's
// events, the media's events and the conversation's controls, and it alone
// decides why the call ends (end). The conversation, the media stream, the
// session timer and transfers run in wg on ctx and report back to the loop.
type call struct {
	s     *Server
	start time.Time
	log   *slog.Logger
	info  CallInfo

	// ctx is the call's lifetime; its cause is an *endCause.
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	leg    *leg
	conn   *net.UDPConn
	stream mediaStream
	conv   Conversation

	// Owned by the handler goroutine (the loop, then finish).
	answerDone <-chan error // result of the 200 OK (WriteResponse); nil until sent
	answerErr  error
	answerOver bool
	answeredAt time.Time // the 200 OK was sent

	// recorder gathers the call record and counts its tokens.
	recorder *callRecorder
	// unconfirmedSrc is the source this call counts against in
	// Server.unconfirmed until its ACK (or its end); invalid once released.
	unconfirmedSrc netip.Addr
}

// releaseUnconfirmed gives back the call's unconfirmed-call unit (at the
// ACK, or at the end of a call never confirmed). Handler goroutine only.
func (c *call) releaseUnconfirmed() {
	if c.unconfirmedSrc.IsValid() {
		c.s.unconfirmed.release(c.unconfirmedSrc)
		c.unconfirmedSrc = netip.Addr{}
	}
}

// noACKByeTimeout bounds the BYE of a call whose 200 OK was never ACKed.
const noACKByeTimeout = 2 * time.Second

// notifyBufferSize bounds the REFER progress NOTIFYs not yet read.
const notifyBufferSize = 8

func newCall(s *Server, req *sip.Request, tx sip.ServerTransaction, trunk string) *call {
	from, to := req.From().Address, req.To().Address
	info := CallInfo{
		CallID:   req.CallID().Value(),
		From:     uriForLog(from),
		To:       uriForLog(to),
		FromUser: from.User,
		ToUser:   to.User,
		FromName: req.From().DisplayName,
		Trunk:    trunk,
		Headers:  callerHeaders(req),
	}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		info.Remote = ap
	}
	ctx, cancel := context.WithCancelCause(s.baseCtx)
	log := s.log.With("call_id", info.CallID, "from", s.logFrom(info.From), "to", s.logTo(info.To))
	// The recorder feeds the token metrics always, the records file when
	// records.path is set.
	rec := newCallRecorder(s.cfg.Prices, s.metrics)
	info.Observer = rec
	return &call{
		recorder: rec,
		s:        s,
		start:    time.Now(),
		log:      log,
		info:     info,
		ctx:      ctx,
		cancel:   cancel,
		leg:      newLeg(s, ctx, req, tx, log),
	}
}

// uriForLog is scheme:user@host[:port]: no password, parameters or headers.
func uriForLog(u sip.Uri) string {
	s := u.Scheme + ":"
	if u.User != "" {
		s += u.User + "@"
	}
	s += u.Host
	if u.Port > 0 {
		s += ":" + strconv.Itoa(u.Port)
	}
	return s
}

// end records why the call ends (the first reason wins) and cancels ctx.
func (c *call) end(r EndReason, err error) {
	c.cancel(&endCause{reason: r, err: err})
}

// endWith ends the call with a rejection (its phrase and headers go into
// the final response).
func (c *call) endWith(r *rejection, err error) {
	c.cancel(&endCause{reason: r.reason, err: err, phrase: r.phrase(), hdrs: r.hdrs})
}

// run is the call: setup, answer and wait for the end, teardown.
func (c *call) run() {
	defer c.finish()

	// RFC 3261 §17.2.1: answer 100 at once so the trunk stops
	// retransmitting while we allocate media and build the conversation.
	if err := c.s.respond(c.leg.req, c.leg.tx, sip.StatusTrying, "Trying", nil); err != nil {
		c.log.Debug("sip: 100 Trying not sent", "error", err)
	}
	if err := c.leg.accept(); err != nil {
		if errors.Is(err, sip.ErrTransactionCanceled) {
			c.end(EndCancelled, nil)
		} else {
			c.end(EndDialogEnded, fmt.Errorf("sip: read invite: %w", err))
		}
		return
	}
	// Until the loop watches the dialog, a CANCEL ends the call from here,
	// so setup stops before its next resource.
	stopWatch := context.AfterFunc(c.leg.dlg.Context(), func() {
		if r, err, ok := c.leg.dialogEnded(); ok {
			c.end(r, err)
		}
	})
	if !c.setup() {
		stopWatch()
		return
	}
	stopWatch()
	c.waitForCallEnd()
}

// setup negotiates SDP, allocates the RTP socket, then builds, in their
// natural order, the conversation (it declares its audio format) and the
// media stream with the conversation as its sink. Nothing here dials the
// AI. It returns false when the call ended (rejected or cancelled).
func (c *call) setup() bool {
	body, r := sdpBody(c.leg.req)
	if r != nil {
		c.endWith(r, nil)
		return false
	}
	var (
		offer sdp.Offer
		ans   sdp.Answer
	)
	if body == nil {
		// Late offer (RFC 3261 §13.2.1): our offer goes in the 200 and the
		// answer comes in the ACK; until then the stream has no remote
		// and our first codec (and SRTP key) as placeholders.
		c.leg.lateOffer = true
		ans = c.leg.lateOfferSession() // mediapolicy.go
	} else if offer, ans, _, r = c.leg.answerOffer(body); r != nil {
		c.endWith(r, nil)
		return false
	}
	codec := media.Codec(ans.Codec.PT)
	c.info.Codec = codec
	c.info.SRTP = ans.SRTP != nil

	// A CANCEL (or shutdown) so far costs nothing: stop before each resource.
	if c.stopped() {
		return false
	}
	conn, err := c.s.media.allocate()
	if err != nil {
		c.end(EndRejectNoRTPPort, fmt.Errorf("sip: allocate rtp port: %w", err))
		return false
	}
	c.conn = conn
	port := 0
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		port = ua.Port
	}

	if c.stopped() {
		return false
	}
	conv, err := c.s.newConv(c.ctx, c.info, c.log)
	if err == nil && conv == nil {
		err = errors.New("factory returned no conversation")
	}
	if err != nil {
		c.end(EndRejectAIUnavailable, fmt.Errorf("sip: new conversation: %w", err))
		return false
	}
	stream, err := c.s.media.newStream(media.StreamConfig{
		Conn:            conn,
		Remote:          ans.Remote,
		Codec:           codec,
		DTMFPayloadType: ans.DTMFPT,
		DTMFClockRate:   ans.DTMFRate,
		SRTP:            srtpConfig(ans.SRTP),
		OnSRTPFailure:   c.s.metrics.srtpDropped,
		ModelFormat:     conv.AudioFormat(),
		SymmetricRTP:    c.s.cfg.SymmetricRTP,
		LatchBeforeSend: c.s.cfg.LatchBeforeSend,
		MediaTimeout:    c.s.cfg.MediaTimeout,
		ComfortNoiseDB:  c.s.cfg.ComfortNoiseDB,
		UplinkChunk:     c.s.cfg.UplinkChunk,
		Sink:            conv,
		Logger:          c.log,
	})
	if err != nil {
		c.end(EndRejectMediaSetup, fmt.Errorf("sip: new media stream: %w", err))
		return false
	}
	c.conv, c.stream = conv, stream
	if ans.Hold() {
		stream.SetSending(false)
		conv.SetHold(true)
	}
	if err := c.leg.bindLocal(port, offer, ans); err != nil {
		c.end(EndInternal, err)
		return false
	}
	// A CANCEL during setup ended ctx: the conversation is dropped without
	// Run ever being called, so no realtime session was opened.
	return !c.stopped()
}

// stopped reports whether the call ended during setup: its context ended
// (a CANCEL seen through the dialog, a shutdown), or a CANCEL ended the
// INVITE transaction without ending the dialog. sipgo hooks the dialog to
// the transaction's CANCEL after the dialog is made from the INVITE, and a
// CANCEL crossing that moment is answered 487 but never reaches the dialog
// (about 1 run in 100 of TestCancelBeforeConversationIsBuilt on a loaded
// machine); the transaction still says it was cancelled.
func (c *call) stopped() bool {
	if c.ctx.Err() != nil {
		return true
	}
	if errors.Is(c.leg.tx.Err(), sip.ErrTransactionCanceled) {
		c.end(EndCancelled, nil)
		return true
	}
	return false
}

// transferOutcome is the result of a REFER the loop started.
type transferOutcome struct {
	ok       bool
	detail   string
	fnCallID string // the model's function call id (a ControlTransfer)
	giveUp   string // the give-up reason (a ControlGiveUp's transfer)
}

// waitForCallEnd is the call's life after setup, in one loop: it starts the
// conversation (it dials in parallel with the 200/ACK exchange, so the AI
// is ready when the caller first speaks), answers (at once, or once the AI
// is ready), starts the media after the ACK, and acts on what the leg, the
// media and the conversation report until the call ends.
func (c *call) waitForCallEnd() {
	convDone := make(chan error, 1)
	c.wg.Go(func() { convDone <- c.conv.Run(c.ctx, c.stream) })
	mediaDone := make(chan error, 1)
	transferDone := make(chan transferOutcome, 1)

	var (
		ready        <-chan struct{}
		readyTimeout <-chan time.Time
		ackTimer     *time.Timer
		ackTimeout   <-chan time.Time
		mediaEvents  <-chan media.Event
		controls     = c.conv.Controls()
		inviteAcks   = c.leg.tx.Acks()
		dialogDone   = c.leg.dlg.Context().Done()
		transferring bool
		convOver     bool
		convErr      error
	)
	answer := func() {
		c.answerDone = c.leg.sendAnswer()
		c.answeredAt = time.Now()
		c.s.metrics.answerDelay.Observe(time.Since(c.start).Seconds())
		ackTimer = time.NewTimer(c.s.cfg.ACKTimeout)
		ackTimeout = ackTimer.C
	}
	defer func() {
		if ackTimer != nil {
			ackTimer.Stop()
		}
	}()
	answerTimeout := c.s.cfg.AnswerTimeout
	if answerTimeout <= 0 {
		answerTimeout = defaultAnswerTimeout
	}
	if c.s.cfg.AnswerWhenReady {
		c.leg.ring()
		t := time.NewTimer(answerTimeout)
		defer t.Stop()
		ready, readyTimeout = c.conv.Ready(), t.C
	} else {
		answer()
	}
	startTransfer := func(target, fnCallID, giveUp string) {
		transferring = true
		c.wg.Go(func() {
			ok, detail := c.leg.transfer(target)
			c.recorder.transfer(target, ok, detail)
			transferDone <- transferOutcome{ok: ok, detail: detail, fnCallID: fnCallID, giveUp: giveUp}
		})
	}
	endAfterConversation := func() {
		err := convErr
		if err == nil {
			err = errors.New("conversation returned")
		}
		c.end(EndAIFailed, fmt.Errorf("sip: conversation: %w", err))
	}

	for c.ctx.Err() == nil {
		select {
		case <-c.ctx.Done():
		case <-ready:
			ready, readyTimeout = nil, nil
			answer()
		case <-readyTimeout:
			c.end(EndAIFailed, fmt.Errorf("sip: AI not ready within %s", answerTimeout))
		case err := <-c.answerDone:
			c.answerDone, ackTimeout = nil, nil
			ackTimer.Stop()
			c.answerOver, c.answerErr = true, err
			switch {
			case err != nil && c.leg.confirmed.Load():
				// ReadAck confirmed the dialog but WriteResponse failed
				// afterwards (a late retransmission): the call is up.
				c.log.Debug("sip: 200 retransmission failed after ACK", "error", err)
			case errors.Is(err, sip.ErrTransactionCanceled):
				c.end(EndCancelled, nil) // CANCEL crossed our 200
				continue
			case err != nil:
				c.end(EndDialogEnded, fmt.Errorf("sip: answer: %w", err))
				continue
			}
			c.leg.markConfirmed()
			c.releaseUnconfirmed()
			// A conversation that holds its greeting for the ACK (so an
			// answer never acknowledged bills nothing) hears of it now.
			if cc, ok := c.conv.(interface{ CallConfirmed() }); ok {
				cc.CallConfirmed()
			}
			if c.leg.lateOffer {
				if err := c.leg.takeLateAnswer(); err != nil {
					c.end(EndBadAnswer, err)
					continue
				}
			}
			ans, _ := c.leg.current()
			c.log.Info("call answered", "codec", ans.Codec.Name, "srtp", ans.SRTP != nil, "dtmf_pt", ans.DTMFPT, "rtp_remote", ans.Remote.String(),
				"direction", ans.Direction.String(), "setup_ms", time.Since(c.start).Milliseconds())
			mediaEvents = c.stream.Events()
			c.wg.Go(func() { mediaDone <- c.stream.Run(c.ctx) })
			c.leg.startSessionTimer()
		case ack := <-inviteAcks:
			// An ACK matched to the INVITE transaction itself (a peer that
			// reuses the INVITE branch) confirms the dialog.
			c.leg.ackInInviteTx(ack)
		case <-ackTimeout:
			c.end(EndNoACK, fmt.Errorf("sip: no ACK within %s", c.s.cfg.ACKTimeout))
		case <-dialogDone:
			dialogDone = nil
			c.drainLegEvents() // a BYE reported just before says why
			if r, err, ok := c.leg.dialogEnded(); ok && c.ctx.Err() == nil {
				c.end(r, err)
			}
		case ev := <-c.leg.events:
			c.onLegEvent(*ev)
		case ev, ok := <-mediaEvents:
			if !ok {
				mediaEvents = nil
				continue
			}
			c.onMediaEvent(ev)
		case err := <-mediaDone:
			c.endAfterMedia(err)
		case ctl, ok := <-controls:
			if !ok {
				controls = nil
				continue
			}
			switch ctl.Kind {
			case failover.ControlEndCall:
				// Sent once the goodbye has played.
				c.log.Info("model ended the call", "reason", ctl.Reason)
				c.end(EndModelHangup, nil)
			case failover.ControlTransfer:
				if transferring {
					c.conv.TransferResult(ctl.CallID, false, "a transfer is already in progress")
					continue
				}
				startTransfer(ctl.Target, ctl.CallID, "")
			case failover.ControlGiveUp:
				// Sent once the apology has played.
				c.log.Warn("conversation gave up", "reason", ctl.Reason, "target", ctl.Target)
				switch {
				case !c.leg.answered.Load():
					// Not answered yet (answer-when-ready): refuse with 503
					// so the SBC can route the call elsewhere; there is no
					// dialog to REFER. When every region is full the 503
					// carries the pool's Retry-After.
					if r := c.s.noCapacity(); r != nil {
						c.endWith(r, fmt.Errorf("sip: no region has capacity: %s", ctl.Reason))
						continue
					}
					c.end(EndAIFailed, fmt.Errorf("sip: no AI region available: %s", ctl.Reason))
				case ctl.Target != "" && !transferring:
					startTransfer(ctl.Target, "", ctl.Reason)
				default:
					c.end(EndAIFailed, fmt.Errorf("sip: conversation gave up: %s", ctl.Reason))
				}
			case failover.ControlSwapStarted:
				c.log.Info("realtime session swap started", "reason", ctl.Reason)
			case failover.ControlSwapFinished:
				c.log.Info("realtime session swap finished", "reason", ctl.Reason)
			default:
				c.log.Warn("unknown conversation control", "kind", int(ctl.Kind))
			}
		case err := <-convDone:
			convOver, convErr = true, err
			if !transferring { // else the transfer's outcome decides
				endAfterConversation()
			}
		case t := <-transferDone:
			transferring = false
			if t.giveUp == "" {
				c.conv.TransferResult(t.fnCallID, t.ok, t.detail)
			}
			switch {
			case t.ok:
				c.end(EndTransferred, nil)
			case t.giveUp != "":
				c.log.Warn("give-up transfer failed", "detail", t.detail)
				c.end(EndAIFailed, fmt.Errorf("sip: conversation gave up: %s", t.giveUp))
			case convOver:
				endAfterConversation()
			}
		}
	}
}

// drainLegEvents acts on the leg's events already queued.
func (c *call) drainLegEvents() {
	for {
		select {
		case ev := <-c.leg.events:
			c.onLegEvent(*ev)
		default:
			return
		}
	}
}

// onLegEvent applies what the leg reports to the media and the
// conversation, or ends the call.
func (c *call) onLegEvent(ev legEvent) {
	switch ev.kind {
	case legMediaChanged:
		c.stream.SetRemote(ev.answer.Remote, media.Codec(ev.answer.Codec.PT), ev.answer.DTMFPT)
		if ev.rekey {
			if err := c.stream.Rekey(*srtpConfig(ev.answer.SRTP)); err != nil {
				c.end(EndInternal, fmt.Errorf("sip: SRTP re-key: %w", err))
			}
		}
	case legHold:
		c.stream.SetSending(!ev.held)
		c.conv.SetHold(ev.held)
	case legDTMF:
		c.log.Debug("dtmf", "digit", string(ev.digit), "duration_ms", ev.durMs, "source", "info")
		c.recorder.dtmf(ev.digit, "info")
		c.conv.DTMF(ev.digit)
	case legExpired:
		c.end(ev.reason, ev.err)
	case legBye:
		c.end(EndCallerBye, nil)
	}
}

func (c *call) onMediaEvent(ev media.Event) {
	switch ev.Kind {
	case media.EventDTMF:
		c.log.Debug("dtmf", "digit", string(ev.Digit), "duration_ms", ev.DurationMs)
		c.recorder.dtmf(ev.Digit, "rfc4733")
		c.conv.DTMF(ev.Digit)
	case media.EventPlayoutDone:
		c.conv.PlayoutDone(ev.ItemID, ev.PlayedMs)
	case media.EventRemoteLatched:
		c.log.Info("rtp remote latched", "addr", ev.Addr.String())
	}
}

// endAfterMedia ends the call because the RTP stream stopped.
func (c *call) endAfterMedia(err error) {
	switch {
	case c.ctx.Err() != nil:
	case errors.Is(err, media.ErrMediaTimeout):
		c.end(EndMediaTimeout, err)
	case err != nil:
		c.end(EndMediaError, fmt.Errorf("sip: media: %w", err))
	default:
		c.end(EndMediaError, errors.New("sip: media stream stopped"))
	}
}

// finish tears the call down on a context that cannot be cancelled: final
// response or BYE, stop media and conversation, release the port, record
// the end once.
func (c *call) finish() {
	c.end(EndInternal, errors.New("sip: call returned without an end reason"))
	ec, ok := reasonOf(context.Cause(c.ctx))
	if !ok {
		ec = &endCause{reason: EndInternal, err: context.Cause(c.ctx)}
	}
	term := ec.reason.Termination()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), teardownTimeout)
	defer cancel()

	answered := c.leg.answered.Load()
	if answered && !c.answerOver {
		// The 200 is still being retransmitted without an ACK. Declare the
		// INVITE transaction over (ACKTimeout plays Timer L's part), which
		// also lets WriteBye go ahead (RFC 3261 §15: BYE only after the ACK
		// or the end of the transaction); WriteResponse notices at its next
		// retransmission.
		c.leg.tx.Terminate()
		select {
		case c.answerErr = <-c.answerDone:
			c.answerOver = true
		case <-ctx.Done():
		}
	}
	switch {
	case !answered:
		if ec.reason != EndCancelled { // sipgo already answered 487
			phrase := term.Phrase
			if ec.phrase != "" {
				phrase = ec.phrase
			}
			hdrs := append([]sip.Header(nil), ec.hdrs...)
			if term.RetryAfter {
				hdrs = append(hdrs, sip.NewHeader("Retry-After", strconv.Itoa(retryAfterSeconds)))
			}
			c.leg.sendFinal(term.Status, phrase, hdrs)
		}
	case errors.Is(c.answerErr, sip.ErrTransactionCanceled):
		// CANCEL won against our 200: 487 was sent, there is no dialog.
	case !c.answerOver:
		c.log.Warn("sip: answer still pending at teardown; no BYE sent")
	case ec.reason == EndNoACK:
		// The peer never acknowledged: it is most likely gone (or was
		// never there: a flood). The BYE RFC 3261 §13.3.1.4 asks for
		// goes out, but the call's slot and port are not held for a
		// full teardownTimeout waiting for an answer that will not come.
		bctx, bcancel := context.WithTimeout(ctx, noACKByeTimeout)
		c.leg.bye(bctx, term.Reason)
		bcancel()
	case term.Hangup:
		c.leg.bye(ctx, term.Reason)
	}

	c.leg.stopSessionTimer()
	c.wg.Wait()
	if c.conn != nil {
		if err := c.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.log.Debug("sip: closing rtp socket", "error", err)
		}
	}
	c.leg.close()

	dur := time.Since(c.start)
	c.s.metrics.callEnds.WithLabelValues(term.Label).Inc()
	if answered {
		c.s.metrics.callDuration.Observe(dur.Seconds())
	}
	attrs := []any{"reason", term.Label, "duration_s", dur.Seconds(), "answered", answered, "confirmed", c.leg.confirmed.Load()}
	if !answered && ec.reason != EndCancelled {
		attrs = append(attrs, "status", term.Status)
	}
	if ec.err != nil {
		attrs = append(attrs, "error", ec.err.Error())
	}
	if c.stream != nil {
		st := c.stream.Stats()
		attrs = append(attrs, "rtp_in", st.PacketsIn, "rtp_out", st.PacketsOut, "rtp_lost", st.Lost, "rtp_foreign", st.Foreign)
		if c.info.SRTP {
			attrs = append(attrs, "srtp", true, "srtp_auth_failed", st.SRTPAuthFailed, "srtp_replayed", st.SRTPReplayed,
				"srtp_protect_failed", st.SRTPProtectFailed)
		}
	}
	c.log.Log(ctx, term.Level, "call ended", attrs...)
	c.record(ec, term, answered, time.Now())
}

// warning is a Warning header (RFC 3261 §20.43).
func warning(agent string, code int, text string) sip.Header {
	return sip.NewHeader("Warning", strconv.Itoa(code)+" "+agent+` "`+text+`"`)
}
