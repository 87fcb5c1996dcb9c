package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// call is one inbound call. The INVITE handler goroutine owns it from the
// INVITE to the end of teardown (run); the RTP stream, the conversation and
// the event forwarder run in wg on ctx. In-dialog requests (ACK, BYE,
// re-INVITE, NOTIFY) arrive on other sipgo goroutines and only touch what
// is guarded below or atomic.
type call struct {
	s     *Server
	req   *sip.Request // the initial INVITE
	tx    sip.ServerTransaction
	start time.Time
	log   *slog.Logger
	info  CallInfo

	// ctx is the call's lifetime; its cause is an *endCause.
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	// Written by run before the dialog is registered (the map's mutex
	// publishes them), read-only afterwards.
	dlg      *sipgo.DialogServerSession
	dialogID string
	contact  sip.ContactHeader
	// laddr is the UDP listener the INVITE came in on: our in-dialog
	// requests leave from it, so the trunk sees the address it talks to
	// (sipgo would otherwise open an ephemeral socket for a destination it
	// has not heard from, e.g. a Record-Route proxy). Invalid for TCP,
	// where sipgo reuses the caller's connection.
	laddr  netip.AddrPort
	conn   *net.UDPConn
	stream mediaStream
	conv   Conversation

	// Owned by the handler goroutine (run and finish).
	lateOffer  bool       // the INVITE had no SDP: our 200 offers, the ACK answers
	answerDone chan error // result of the 200 OK (WriteResponse); nil until sent
	answerErr  error
	answerOver bool

	answered        atomic.Bool   // our 200 OK was handed to sipgo
	confirmed       atomic.Bool   // its ACK arrived
	confirmedCh     chan struct{} // closed when confirmed is set
	confirmOnce     sync.Once
	transferring    atomic.Bool  // a REFER is in progress
	hangupRequested atomic.Bool  // ControlEndCall seen
	pendingControls atomic.Int32 // control goroutines that will end the call themselves
	convExited      atomic.Bool
	convErr         atomic.Pointer[error]

	mu        sync.Mutex // guards the fields below
	offer     sdp.Offer
	answer    sdp.Answer
	answerSDP []byte
	local     sdp.Local
	held      bool
	reinvite  *pendingReinvite
	referSent bool
	notifies  chan notifyStatus
	ackSDP    []byte // SDP of the ACK of our 200 (the answer, for a late offer)

	timer  sessionTimer // RFC 4028 session timer (timers.go)
	target remoteTarget // remote target after a target refresh (target.go)
}

// Control timings.
const (
	endCallDrainMax  = 5 * time.Second  // goodbye still queued when ControlEndCall arrives
	giveUpDrainMax   = 20 * time.Second // apology prompt before giving up
	playoutPoll      = 20 * time.Millisecond
	notifyBufferSize = 8
)

func newCall(s *Server, req *sip.Request, tx sip.ServerTransaction) *call {
	from, to := req.From().Address, req.To().Address
	info := CallInfo{
		CallID:   req.CallID().Value(),
		From:     uriForLog(from),
		To:       uriForLog(to),
		FromUser: from.User,
		ToUser:   to.User,
	}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		info.Remote = ap
	}
	ctx, cancel := context.WithCancelCause(s.baseCtx)
	return &call{
		s:           s,
		req:         req,
		tx:          tx,
		start:       time.Now(),
		log:         s.log.With("call_id", info.CallID, "from", info.From, "to", info.To),
		info:        info,
		ctx:         ctx,
		cancel:      cancel,
		notifies:    make(chan notifyStatus, notifyBufferSize),
		confirmedCh: make(chan struct{}),
		timer:       sessionTimer{kick: make(chan struct{}, 1)},
	}
}

// markConfirmed records the ACK of our 200 (RFC 3261 §13.3.1.4).
func (c *call) markConfirmed() {
	c.confirmOnce.Do(func() {
		c.confirmed.Store(true)
		close(c.confirmedCh)
	})
}

// waitConfirmed waits for the ACK of our 200, at most d. sipgo hands each
// message to its own goroutine, so a request sent right after the ACK
// (re-INVITE, or our own REFER decided at once) can be handled first.
func (c *call) waitConfirmed(d time.Duration) bool {
	if c.confirmed.Load() {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.confirmedCh:
		return true
	case <-t.C:
	case <-c.ctx.Done():
	}
	return false
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

// run is the call: setup, answer, wait for the end, teardown.
func (c *call) run() {
	defer c.finish()

	// RFC 3261 §17.2.1: answer 100 at once so the trunk stops
	// retransmitting while we allocate media and build the conversation.
	if err := c.s.respond(c.req, c.tx, sip.StatusTrying, "Trying", nil); err != nil {
		c.log.Debug("sip: 100 Trying not sent", "error", err)
	}
	c.contact = c.s.contactFor(c.req, c.tx)
	if ap, ok := localAddr(c.tx); ok && strings.EqualFold(c.req.Transport(), "udp") {
		c.laddr = ap
	}
	// No RewriteContact: it would send every request to the INVITE's
	// source even after a target refresh; fromListener routes them instead.
	ua := &sipgo.DialogUA{Client: c.s.client, ContactHDR: c.contact}
	dlg, err := ua.ReadInvite(c.req, c.tx)
	if err != nil {
		if errors.Is(err, sip.ErrTransactionCanceled) {
			c.end(EndCancelled, nil)
		} else {
			c.end(EndDialogEnded, fmt.Errorf("sip: read invite: %w", err))
		}
		return
	}
	c.dlg, c.dialogID = dlg, dlg.ID
	c.s.registerDialog(dlg.ID, c)
	c.wg.Go(c.watchDialog)

	if !c.setup() {
		return
	}
	c.answerAndRun()
}

// setup negotiates SDP, allocates the RTP socket, creates the stream and the
// conversation. Nothing here dials the AI. It returns false when the call
// ended (rejected or cancelled).
func (c *call) setup() bool {
	body, r := sdpBody(c.req)
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
		// and PCMU as a placeholder.
		c.lateOffer = true
		ans = sdp.Answer{Codec: sdp.Codec{PT: sdp.PTPCMU, Name: "PCMU", Rate: 8000}, DTMFPT: -1, Direction: sdp.SendRecv, Ptime: sdp.DefaultPtime}
	} else {
		var err error
		offer, err = sdp.ParseOffer(body)
		if err != nil {
			c.endWith(reject(EndRejectBadRequest, "unparsable SDP"), err)
			return false
		}
		if offer.Lenient {
			c.log.Debug("sip: SDP read by the lenient parser", "pion_error", offer.PionErr)
		}
		ans, err = sdp.Negotiate(offer, sdp.Prefs{})
		if err != nil {
			// RFC 3261 §21.4.26 and §20.43 (Warning 305 Incompatible media format).
			r := reject(EndRejectNoCommonCodec, "")
			r.hdrs = append(r.hdrs, warning(c.s.cfg.AdvertiseHost, 305, "Incompatible media format"))
			c.endWith(r, err)
			return false
		}
	}
	codec := media.Codec(ans.Codec.PT)
	c.info.Codec = codec

	// A CANCEL (or shutdown) so far costs nothing: stop before each resource.
	if c.ctx.Err() != nil {
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
	modelFormat := c.s.cfg.ModelFormat
	if c.s.cfg.ModelFormatFollowsCodec {
		modelFormat = media.ModelPCMU
		if codec == media.CodecPCMA {
			modelFormat = media.ModelPCMA
		}
	}
	sink := &sinkShim{}
	stream, err := c.s.media.newStream(media.StreamConfig{
		Conn:            conn,
		Remote:          ans.Remote,
		Codec:           codec,
		DTMFPayloadType: ans.DTMFPT,
		ModelFormat:     modelFormat,
		SymmetricRTP:    c.s.cfg.SymmetricRTP,
		LatchBeforeSend: c.s.cfg.LatchBeforeSend,
		MediaTimeout:    c.s.cfg.MediaTimeout,
		ComfortNoiseDB:  c.s.cfg.ComfortNoiseDB,
		Sink:            sink,
		Logger:          c.log,
	})
	if err != nil {
		c.end(EndRejectMediaSetup, fmt.Errorf("sip: new media stream: %w", err))
		return false
	}
	c.stream = stream
	if ans.Hold() {
		stream.SetSending(false)
	}

	if c.ctx.Err() != nil {
		return false
	}
	conv, err := c.s.newConv(c.ctx, c.info, stream, c.log)
	if err == nil && conv == nil {
		err = errors.New("factory returned no conversation")
	}
	if err != nil {
		c.end(EndRejectAIUnavailable, fmt.Errorf("sip: new conversation: %w", err))
		return false
	}
	sink.set(conv)
	c.conv = conv
	if ans.Hold() {
		conv.SetHold(true)
	}

	local := sdp.Local{
		Host:           c.s.cfg.AdvertiseHost,
		Port:           port,
		SessionID:      sdp.NewSessionID(),
		SessionVersion: 1,
		Username:       "sipbridge",
	}
	var out []byte
	if c.lateOffer {
		out, err = sdp.BuildOffer(local, sdp.Prefs{})
	} else {
		out, err = sdp.BuildAnswer(offer, ans, local)
	}
	if err != nil {
		c.end(EndInternal, err)
		return false
	}
	c.mu.Lock()
	c.offer, c.answer, c.answerSDP, c.local, c.held = offer, ans, out, local, ans.Hold()
	c.mu.Unlock()
	// A CANCEL during setup ended ctx: the conversation is dropped without
	// Run ever being called, so no realtime session was opened.
	return c.ctx.Err() == nil
}

// answerAndRun starts the conversation, sends 200 OK, waits for the ACK,
// starts the media and waits for the call to end.
func (c *call) answerAndRun() {
	// The conversation dials the realtime session in parallel with the
	// 200/ACK exchange, so the AI is ready when the caller first speaks.
	c.wg.Go(c.runConversation)
	c.wg.Go(c.forward)
	if c.s.cfg.AnswerWhenReady && !c.waitAIReady() {
		return
	}

	res := sip.NewSDPResponseFromRequest(c.dlg.InviteRequest, c.answerSDP)
	for _, h := range append(capabilityHeaders(), c.armTimer()...) {
		res.AppendHeader(h)
	}
	res.AppendHeader(sip.NewHeader("Server", c.s.cfg.UserAgent))
	res = sanitizeResponse(res)
	c.s.metrics.responses.WithLabelValues("INVITE", "200").Inc()
	c.s.metrics.answerDelay.Observe(time.Since(c.start).Seconds())
	c.answerDone = make(chan error, 1)
	c.answered.Store(true)
	// WriteResponse blocks until the ACK (it retransmits the 2xx itself,
	// RFC 6026 §7.1), so it runs beside us and we keep the ACK timeout.
	go func() { c.answerDone <- c.dlg.WriteResponse(res) }()

	ackTimer := time.NewTimer(c.s.cfg.ACKTimeout)
	defer ackTimer.Stop()
	for !c.answerOver {
		select {
		case err := <-c.answerDone:
			c.answerOver, c.answerErr = true, err
			if err != nil && c.confirmed.Load() {
				// ReadAck confirmed the dialog but WriteResponse failed
				// afterwards (a late retransmission): the call is up.
				c.log.Debug("sip: 200 retransmission failed after ACK", "error", err)
				break
			}
			if err != nil {
				if errors.Is(err, sip.ErrTransactionCanceled) {
					c.end(EndCancelled, nil) // CANCEL crossed our 200
				} else {
					c.end(EndDialogEnded, fmt.Errorf("sip: answer: %w", err))
				}
				return
			}
			c.markConfirmed()
		case ack := <-c.tx.Acks():
			// An ACK matched to the INVITE transaction itself (a peer that
			// reuses the INVITE branch): confirm the dialog with it.
			c.keepACKSDP(ack)
			if err := c.dlg.ReadAck(ack, c.tx); err != nil {
				c.log.Debug("sip: ACK in INVITE transaction rejected", "error", err)
			} else {
				c.markConfirmed()
			}
		case <-ackTimer.C:
			c.end(EndNoACK, fmt.Errorf("sip: no ACK within %s", c.s.cfg.ACKTimeout))
			return
		case <-c.ctx.Done():
			return
		}
	}
	if c.lateOffer && !c.applyLateAnswer() {
		return
	}
	c.mu.Lock()
	ans := c.answer
	c.mu.Unlock()
	c.log.Info("call answered", "codec", ans.Codec.Name, "dtmf_pt", ans.DTMFPT, "rtp_remote", ans.Remote.String(),
		"direction", ans.Direction.String(), "setup_ms", time.Since(c.start).Milliseconds())
	c.wg.Go(c.runMedia)
	c.wg.Go(c.runSessionTimer)
	<-c.ctx.Done()
}

// waitAIReady rings until the conversation is ready to listen (Config.
// AnswerWhenReady). It returns false when the call ended meanwhile: CANCEL
// (sipgo answers 487), the conversation gave up (503), or the timeout (503).
func (c *call) waitAIReady() bool {
	ringing := sip.NewResponseFromRequest(c.dlg.InviteRequest, sip.StatusRinging, "Ringing", nil)
	ringing.AppendHeader(sip.NewHeader("Server", c.s.cfg.UserAgent))
	if err := c.tx.Respond(sanitizeResponse(ringing)); err != nil {
		c.log.Debug("sip: 180 Ringing not sent", "error", err)
	}
	timeout := c.s.cfg.AnswerTimeout
	if timeout <= 0 {
		timeout = defaultAnswerTimeout
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.conv.Ready():
		return c.ctx.Err() == nil
	case <-c.ctx.Done():
		return false
	case <-t.C:
		c.end(EndAIFailed, fmt.Errorf("sip: AI not ready within %s", timeout))
		return false
	}
}

// runConversation runs the AI side until the call ends or it gives out.
func (c *call) runConversation() {
	err := c.conv.Run(c.ctx)
	if err != nil {
		c.convErr.Store(&err)
	}
	c.convExited.Store(true)
	if c.ctx.Err() != nil || c.pendingControls.Load() > 0 {
		return // we ended it, or a control in progress will end the call
	}
	c.endAfterConversation()
}

// endAfterConversation ends the call because the conversation returned.
func (c *call) endAfterConversation() {
	var err error
	if p := c.convErr.Load(); p != nil {
		err = *p
	}
	if err == nil && c.hangupRequested.Load() {
		c.end(EndModelHangup, nil)
		return
	}
	if err == nil {
		err = errors.New("conversation returned")
	}
	c.end(EndAIFailed, fmt.Errorf("sip: conversation: %w", err))
}

// runMedia runs the RTP stream (after the ACK).
func (c *call) runMedia() {
	err := c.stream.Run(c.ctx)
	if c.ctx.Err() != nil {
		return
	}
	switch {
	case errors.Is(err, media.ErrMediaTimeout):
		c.end(EndMediaTimeout, err)
	case err != nil:
		c.end(EndMediaError, fmt.Errorf("sip: media: %w", err))
	default:
		c.end(EndMediaError, errors.New("sip: media stream stopped"))
	}
}

// watchDialog ends the call when sipgo ends the dialog: CANCEL before our
// answer (cause ErrTransactionCanceled), or the INVITE transaction dying.
func (c *call) watchDialog() {
	select {
	case <-c.dlg.Context().Done():
		cause := context.Cause(c.dlg.Context())
		if errors.Is(cause, sip.ErrTransactionCanceled) {
			c.end(EndCancelled, nil)
			return
		}
		c.end(EndDialogEnded, cause)
	case <-c.ctx.Done():
	}
}

// forward passes media events to the conversation and acts on its controls.
func (c *call) forward() {
	events := c.stream.Events()
	controls := c.conv.Controls()
	for {
		select {
		case <-c.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			c.onMediaEvent(ev)
		case ctl, ok := <-controls:
			if !ok {
				controls = nil
				continue
			}
			c.onControl(ctl)
		}
	}
}

func (c *call) onMediaEvent(ev media.Event) {
	switch ev.Kind {
	case media.EventDTMF:
		c.log.Debug("dtmf", "digit", string(ev.Digit), "duration_ms", ev.DurationMs)
		c.conv.DTMF(ev.Digit)
	case media.EventPlayoutDone:
		c.conv.PlayoutDone(ev.ItemID, ev.PlayedMs)
	case media.EventRemoteLatched:
		c.log.Info("rtp remote latched", "addr", ev.Addr.String())
	}
}

func (c *call) onControl(ctl failover.Control) {
	switch ctl.Kind {
	case failover.ControlEndCall:
		c.log.Info("model ended the call", "reason", ctl.Reason)
		c.hangupRequested.Store(true)
		c.spawnControl(func() {
			c.waitPlayout(endCallDrainMax)
			c.end(EndModelHangup, nil)
		})
	case failover.ControlTransfer:
		if !c.transferring.CompareAndSwap(false, true) {
			c.conv.TransferResult(ctl.CallID, false, "a transfer is already in progress")
			return
		}
		c.spawnControl(func() {
			ok, detail := c.transfer(ctl.Target)
			c.transferring.Store(false)
			c.conv.TransferResult(ctl.CallID, ok, detail)
			switch {
			case ok:
				c.end(EndTransferred, nil)
			case c.convExited.Load():
				c.endAfterConversation()
			}
		})
	case failover.ControlGiveUp:
		c.log.Warn("conversation gave up", "reason", ctl.Reason, "target", ctl.Target)
		if !c.answered.Load() {
			// Not answered yet (answer-when-ready): refuse with 503 so the
			// SBC can route the call elsewhere; there is no dialog to REFER.
			c.end(EndAIFailed, fmt.Errorf("sip: no AI region available: %s", ctl.Reason))
			return
		}
		c.spawnControl(func() {
			c.waitPlayout(giveUpDrainMax) // let the apology finish
			if ctl.Target != "" && c.transferring.CompareAndSwap(false, true) {
				ok, detail := c.transfer(ctl.Target)
				c.transferring.Store(false)
				if ok {
					c.end(EndTransferred, nil)
					return
				}
				c.log.Warn("give-up transfer failed", "detail", detail)
			}
			c.end(EndAIFailed, fmt.Errorf("sip: conversation gave up: %s", ctl.Reason))
		})
	case failover.ControlSwapStarted:
		c.log.Info("realtime session swap started", "reason", ctl.Reason)
	case failover.ControlSwapFinished:
		c.log.Info("realtime session swap finished", "reason", ctl.Reason)
	default:
		c.log.Warn("unknown conversation control", "kind", int(ctl.Kind))
	}
}

// spawnControl runs f beside the forwarder; while it runs, a returning
// conversation does not end the call by itself (f decides).
func (c *call) spawnControl(f func()) {
	c.pendingControls.Add(1)
	c.wg.Go(func() {
		defer c.pendingControls.Add(-1)
		f()
	})
}

// waitPlayout waits until the stream has nothing queued, at most max.
func (c *call) waitPlayout(max time.Duration) {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(playoutPoll)
	defer tick.Stop()
	for c.stream.QueuedMs() > 0 {
		select {
		case <-tick.C:
		case <-deadline.C:
			return
		case <-c.ctx.Done():
			return
		}
	}
}

// onAck handles an ACK in our dialog: the ACK of our 200 (ReadAck releases
// WriteResponse) or of a re-INVITE's 200.
func (c *call) onAck(req *sip.Request, tx sip.ServerTransaction) {
	initial := c.answered.Load() && req.CSeq().SeqNo == c.req.CSeq().SeqNo
	if initial {
		c.keepACKSDP(req) // before ReadAck releases the answering goroutine
	}
	if err := c.dlg.ReadAck(req, tx); err != nil {
		c.log.Debug("sip: ACK with unexpected CSeq", "error", err)
	} else if initial {
		c.markConfirmed()
	}
	c.mu.Lock()
	p := c.reinvite
	c.mu.Unlock()
	if p != nil && req.CSeq().SeqNo == p.cseq {
		p.ack(req)
	}
}

// keepACKSDP stores the SDP of the ACK of our 200, before markConfirmed
// publishes it.
func (c *call) keepACKSDP(ack *sip.Request) {
	body, r := sdpBody(ack)
	if r != nil || body == nil {
		return
	}
	c.mu.Lock()
	if c.ackSDP == nil {
		c.ackSDP = body
	}
	c.mu.Unlock()
}

// applyLateAnswer reads the answer to our offer from the ACK and points the
// stream at it. Without an acceptable answer the call ends (RFC 3261
// §13.3.1.4: the session SHOULD then be terminated with BYE).
func (c *call) applyLateAnswer() bool {
	c.mu.Lock()
	body := c.ackSDP
	c.mu.Unlock()
	if body == nil {
		c.end(EndBadAnswer, errors.New("sip: ACK without SDP answer"))
		return false
	}
	answer, err := sdp.ParseOffer(body)
	if err != nil {
		c.end(EndBadAnswer, fmt.Errorf("sip: SDP answer in ACK: %w", err))
		return false
	}
	// The answer's direction describes the caller, so negotiating it like an
	// offer gives our side (RFC 3264 §6.1 mirrors both ways).
	ans, err := sdp.Negotiate(answer, sdp.Prefs{})
	if err != nil {
		c.end(EndBadAnswer, fmt.Errorf("sip: SDP answer in ACK: %w", err))
		return false
	}
	c.stream.SetRemote(ans.Remote, media.Codec(ans.Codec.PT), ans.DTMFPT)
	hold := ans.Hold()
	if hold {
		c.stream.SetSending(false)
		c.conv.SetHold(true)
	}
	c.mu.Lock()
	c.offer, c.answer, c.held = answer, ans, hold
	c.mu.Unlock()
	return true
}

// onBye ends the call on the caller's BYE (RFC 3261 §15.1.2).
func (c *call) onBye(req *sip.Request, tx sip.ServerTransaction) {
	// RFC 3261 §12.2.2: a CSeq lower than the dialog's is out of order.
	if req.CSeq().SeqNo < c.req.CSeq().SeqNo {
		_ = c.s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error: CSeq out of order", nil)
		return
	}
	c.end(EndCallerBye, nil)
	if err := c.dlg.ReadBye(req, tx); err != nil {
		c.log.Warn("sip: answering BYE failed", "error", err)
		return
	}
	c.s.metrics.responses.WithLabelValues("BYE", "200").Inc()
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

	if c.answered.Load() && !c.answerOver {
		// The 200 is still being retransmitted without an ACK. Declare the
		// INVITE transaction over (ACKTimeout plays Timer L's part), which
		// also lets WriteBye go ahead (RFC 3261 §15: BYE only after the ACK
		// or the end of the transaction); WriteResponse notices at its next
		// retransmission.
		c.tx.Terminate()
		select {
		case c.answerErr = <-c.answerDone:
			c.answerOver = true
		case <-ctx.Done():
		}
	}
	switch {
	case !c.answered.Load():
		if ec.reason != EndCancelled { // sipgo already answered 487
			c.sendFinal(ec, term)
		}
	case errors.Is(c.answerErr, sip.ErrTransactionCanceled):
		// CANCEL won against our 200: 487 was sent, there is no dialog.
	case !c.answerOver:
		c.log.Warn("sip: answer still pending at teardown; no BYE sent")
	case term.Hangup:
		c.bye(ctx, term.Reason)
	}

	c.wg.Wait()
	if c.conn != nil {
		if err := c.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.log.Debug("sip: closing rtp socket", "error", err)
		}
	}
	if c.dlg != nil {
		_ = c.dlg.Close()
	}

	dur := time.Since(c.start)
	c.s.metrics.callEnds.WithLabelValues(term.Label).Inc()
	if c.answered.Load() {
		c.s.metrics.callDuration.Observe(dur.Seconds())
	}
	attrs := []any{"reason", term.Label, "duration_s", dur.Seconds(), "answered", c.answered.Load(), "confirmed", c.confirmed.Load()}
	if !c.answered.Load() && ec.reason != EndCancelled {
		attrs = append(attrs, "status", term.Status)
	}
	if ec.err != nil {
		attrs = append(attrs, "error", ec.err.Error())
	}
	if c.stream != nil {
		st := c.stream.Stats()
		attrs = append(attrs, "rtp_in", st.PacketsIn, "rtp_out", st.PacketsOut, "rtp_lost", st.Lost)
	}
	c.log.Log(ctx, term.Level, "call ended", attrs...)
}

// sendFinal answers the INVITE with the termination's status.
func (c *call) sendFinal(ec *endCause, term Termination) {
	req := c.req
	if c.dlg != nil {
		req = c.dlg.InviteRequest // carries our To tag
	}
	phrase := term.Phrase
	if ec.phrase != "" {
		phrase = ec.phrase
	}
	hdrs := append([]sip.Header(nil), ec.hdrs...)
	if term.RetryAfter {
		hdrs = append(hdrs, sip.NewHeader("Retry-After", strconv.Itoa(retryAfterSeconds)))
	}
	if err := c.s.respond(req, c.tx, term.Status, phrase, nil, hdrs...); err != nil {
		c.log.Debug("sip: final response not sent", "status", term.Status, "error", err)
	}
}

// bye hangs up with a Reason header (RFC 3326).
func (c *call) bye(ctx context.Context, reason string) {
	bye := sip.NewRequest(sip.BYE, c.dlg.InviteRequest.Contact().Address)
	bye.SetTransport(c.dlg.InviteRequest.Transport())
	if reason != "" {
		bye.AppendHeader(sip.NewHeader("Reason", reason))
	}
	bye.AppendHeader(sip.NewHeader("User-Agent", c.s.cfg.UserAgent))
	c.fromListener(bye)
	if err := c.dlg.WriteBye(ctx, bye); err != nil {
		c.log.Warn("sip: BYE failed", "error", err)
	}
}

// fromListener makes an in-dialog request leave from the socket the INVITE
// came in on (UDP), toward the dialog's remote target (target.go).
func (c *call) fromListener(req *sip.Request) {
	if c.laddr.IsValid() {
		ip := c.laddr.Addr().AsSlice()
		req.Laddr = sip.Addr{IP: net.IP(ip), Port: int(c.laddr.Port())}
	}
	c.routeToTarget(req)
}

// warning is a Warning header (RFC 3261 §20.43).
func warning(agent string, code int, text string) sip.Header {
	return sip.NewHeader("Warning", strconv.Itoa(code)+" "+agent+` "`+text+`"`)
}

// sinkShim breaks the stream/conversation cycle: the stream needs its sink
// before the conversation (which needs the stream as its player) exists.
// Caller audio that arrives before the conversation is set is dropped.
type sinkShim struct{ target atomic.Pointer[sinkTarget] }

type sinkTarget struct{ Conversation }

func (s *sinkShim) set(c Conversation) { s.target.Store(&sinkTarget{c}) }

func (s *sinkShim) WriteCallerAudio(frame []byte) {
	if t := s.target.Load(); t != nil {
		t.WriteCallerAudio(frame)
	}
}
