package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"golang.org/x/sync/errgroup"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip/records"
)

// CallInfo is what the AI side may log or use about a call.
type CallInfo struct {
	CallID   string // SIP Call-ID
	From     string // caller URI (sip:user@host, without password or parameters)
	To       string // called URI
	FromUser string
	ToUser   string
	Remote   netip.AddrPort // source of the INVITE (the trunk's signalling address)
	// Codec is the negotiated codec (PCMU, PCMA or G722); for a late offer
	// our first choice, whose audio rate the ACK's answer keeps.
	Codec media.Codec
	// SRTP reports whether the call's media is encrypted (SDES-SRTP).
	SRTP bool
	// Observer, when set, gathers the call's sessions, responses and swaps
	// for its record: the factory passes it to the conversation.
	Observer failover.Observer
	// FromName is the From display name ("" when none).
	FromName string
	// Trunk is the name of the trunk that admitted the call ("" with no
	// trunks configured).
	Trunk string
	// Headers are the INVITE's headers by lower-case name (first value),
	// for routing and caller context; credentials (Authorization,
	// Proxy-Authorization) are left out.
	Headers map[string]string
}

// Conversation is one call's AI conversation (a *failover.Conversation,
// wired in cmd). It is built before the media stream: it declares the audio
// format it exchanges (AudioFormat), the stream is built with it as its sink
// (WriteCallerAudio), and Run plays the model's audio on that stream. It
// alone says when the call may end: ControlEndCall and ControlGiveUp come
// once their audio has played.
type Conversation interface {
	AudioFormat() media.ModelFormat
	WriteCallerAudio(frame []byte)
	Run(ctx context.Context, player failover.Player) error
	Controls() <-chan failover.Control
	PlayoutDone(itemID string, playedMs int)
	DTMF(digit rune)
	TransferResult(callID string, ok bool, detail string)
	SetHold(held bool)
	// Ready is closed once the AI is connected and configured (the call is
	// answered then when Config.AnswerWhenReady is set).
	Ready() <-chan struct{}
}

// ConversationFactory builds the conversation of a call; call.Codec is the
// negotiated law, from which it picks its audio format. It must not dial
// anything: the realtime session is opened by Run, which the call starts
// only once it is about to answer (so a CANCEL before that costs no
// session). ctx is the call's context.
type ConversationFactory func(ctx context.Context, call CallInfo, log *slog.Logger) (Conversation, error)

// mediaStream is what a call uses of *media.Stream.
type mediaStream interface {
	failover.Player
	Run(ctx context.Context) error
	Events() <-chan media.Event
	SetRemote(remote netip.AddrPort, codec media.Codec, dtmfPT int)
	Rekey(keys media.SRTPConfig) error
	SetSending(on bool)
	Stats() media.Stats
}

// *media.Stream is the production mediaStream.
var _ mediaStream = (*media.Stream)(nil)

// mediaBackend allocates RTP sockets and streams; tests swap it.
type mediaBackend struct {
	allocate  func() (*net.UDPConn, error)
	newStream func(media.StreamConfig) (mediaStream, error)
}

func realMedia(ports *media.PortAllocator) mediaBackend {
	return mediaBackend{
		allocate: ports.Allocate,
		newStream: func(cfg media.StreamConfig) (mediaStream, error) {
			s, err := media.NewStream(cfg)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
	}
}

// Timings that are policy rather than configuration.
const (
	retryAfterSeconds = 30               // Retry-After on 503 (RFC 3261 §20.33)
	teardownTimeout   = 10 * time.Second // BYE and cleanup after a call ends
	shutdownHangup    = 5 * time.Second  // Serve's last HangupAll when its context ends
	udpMTU            = 8192             // sip.UDPMTUSize: sipgo sends UDP messages up to UDPMTUSize-200 bytes
)

// allowedMethods go into Allow (OPTIONS, 405, 2xx to INVITE).
const allowedMethods = "INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY, UPDATE, INFO"

var setGlobalsOnce sync.Once

// setSipgoGlobals raises sip.UDPMTUSize once per process. sipgo rejects
// every UDP message longer than UDPMTUSize-200 with ErrUDPMTUCongestion
// (1300 bytes by default), responses included; a 200 OK with SDP behind a
// carrier's Via/Record-Route chain can pass that. Larger datagrams are
// fragmented by IP, which trunks handle; the cmd package may set it earlier,
// in which case it is left alone.
func setSipgoGlobals() {
	setGlobalsOnce.Do(func() {
		if sip.UDPMTUSize < udpMTU {
			sip.UDPMTUSize = udpMTU
		}
	})
}

// Server is the bridge's SIP user agent server.
type Server struct {
	// handling counts SIP requests whose handler is still running: Wait
	// lets them finish, so the 200 to a call's last BYE goes out before a
	// drained process closes its transports.
	handling atomic.Int64
	cfg      Config
	log      *slog.Logger
	metrics  *Metrics
	newConv  ConversationFactory
	media    mediaBackend

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	guard  *guard
	auth   atomic.Pointer[authenticator] // trunk access control; nil: anyone may call (auth.go, SetTrunks)

	// baseCtx parents every call: detached from request scope, cancelled
	// when Serve returns.
	baseCtx    context.Context
	baseCancel context.CancelCauseFunc

	ready    chan struct{}
	privacy  atomic.Pointer[Privacy] // privacy.go
	serving  atomic.Bool
	draining atomic.Bool

	badLog *realtime.LogLimiter // malformed and rejected traffic
	// records writes the call records (nil: off); opened by Serve.
	records *records.Writer
	// Edge limits (limits.go): unconfirmed calls and OPTIONS per source,
	// stream connections per source and in total.
	unconfirmed *sourceCounts
	optionsRate *sourceRate
	streamConns *sourceCounts
	regs        *registrations // client registrations (register.go)
	// ackGrace is how long a re-INVITE waits for an ACK already in flight
	// before getting 491 (tests shorten it before Serve).
	ackGrace time.Duration

	mu      sync.Mutex
	addrs   []net.Addr      // guarded by mu; set once before ready closes
	calls   map[*call]bool  // every admitted call, setup included; guarded by mu
	dialogs map[string]*leg // by dialog ID (Call-ID + tags); guarded by mu
	changed chan struct{}   // closed and replaced when len(calls) changes; guarded by mu
}

// NewServer builds a server; Serve starts it. ports hands out RTP sockets
// and newConv builds each call's conversation. m may be nil.
func NewServer(cfg Config, ports *media.PortAllocator, newConv ConversationFactory, log *slog.Logger, m *Metrics) (*Server, error) {
	if ports == nil {
		return nil, fmt.Errorf("%w: nil port allocator", ErrConfig)
	}
	return newServer(cfg, realMedia(ports), newConv, log, m)
}

func newServer(cfg Config, mb mediaBackend, newConv ConversationFactory, log *slog.Logger, m *Metrics) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if newConv == nil {
		return nil, fmt.Errorf("%w: nil conversation factory", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	setSipgoGlobals()

	// sipgo logs through the same handler (style rule 6).
	sipLog := log.With("component", "sipgo")
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(cfg.UserAgent),
		sipgo.WithUserAgentHostname(cfg.AdvertiseHost),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog)),
	)
	if err != nil {
		return nil, fmt.Errorf("sip: new user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog))
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("sip: new sipgo server: %w", err)
	}
	// Via sent-by of our requests (BYE, REFER) is the advertised host; the
	// port comes from the socket (sipgo fills it in).
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(cfg.AdvertiseHost), sipgo.WithClientLogger(sipLog))
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("sip: new sipgo client: %w", err)
	}
	baseCtx, baseCancel := context.WithCancelCause(context.Background())
	s := &Server{
		cfg:         cfg,
		log:         log,
		metrics:     m,
		newConv:     newConv,
		media:       mb,
		ua:          ua,
		srv:         srv,
		client:      client,
		baseCtx:     baseCtx,
		baseCancel:  baseCancel,
		ready:       make(chan struct{}),
		badLog:      realtime.NewLogLimiter(time.Second, 10),
		unconfirmed: newSourceCounts(cfg.Limits.MaxUnconfirmedPerSource, 0),
		optionsRate: newSourceRate(cfg.Limits.OptionsRate),
		streamConns: newSourceCounts(cfg.Limits.MaxConnectionsPerSource, cfg.Limits.MaxConnections),
		ackGrace:    2 * time.Second,
		calls:       map[*call]bool{},
		dialogs:     map[string]*leg{},
		changed:     make(chan struct{}),
	}
	s.guard = &guard{parser: sip.NewParser(), server: cfg.UserAgent, report: s.reportMalformed,
		conns: s.streamConns, idleTimeout: cfg.Limits.StreamIdleTimeout, limited: s.reportLimited}
	s.auth.Store(newAuthenticator(s))
	s.regs = newRegistrations(s)

	srv.OnInvite(s.handler(s.onInvite))
	srv.OnAck(s.handler(s.onAck))
	// BYE ends a call on the caller's request (RFC 3261 §15.1.2); NOTIFY
	// carries REFER progress (RFC 3515 §2.4.5).
	srv.OnBye(s.handler(s.inDialog((*leg).onBye)))
	srv.OnCancel(s.handler(s.onCancel))
	srv.OnOptions(s.handler(s.onOptions))
	srv.OnNotify(s.handler(s.inDialog((*leg).onNotify)))
	srv.OnUpdate(s.handler(s.inDialog((*leg).onUpdate))) // update.go
	srv.OnInfo(s.handler(s.inDialog((*leg).onInfo)))     // info.go
	srv.OnNoRoute(s.handler(s.onNoRoute))
	return s, nil
}

// Serve binds every listener and serves until ctx ends or a listener fails.
// When ctx ends it hangs up the calls still up (bounded), then closes the
// listeners. It returns nil after a normal shutdown.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return ErrAlreadyServing
	}
	defer s.baseCancel(errors.New("sip: server stopped"))
	defer func() { _ = s.ua.Close() }()

	type bound struct {
		l     Listener
		pc    net.PacketConn
		ln    net.Listener
		close func() error
	}
	var socks []bound
	closeAll := func() {
		for _, b := range socks {
			_ = b.close()
		}
	}
	var lc net.ListenConfig
	for _, l := range s.cfg.Listen {
		b := bound{l: l}
		if strings.HasPrefix(l.Network, "udp") {
			pc, err := lc.ListenPacket(ctx, l.Network, l.Addr)
			if err != nil {
				closeAll()
				return fmt.Errorf("sip: listen %s %s: %w", l.Network, l.Addr, err)
			}
			b.pc, b.close = &guardedPacketConn{PacketConn: pc, g: s.guard}, pc.Close
		} else {
			ln, err := lc.Listen(ctx, streamNetwork(l.Network), l.Addr)
			if err != nil {
				closeAll()
				return fmt.Errorf("sip: listen %s %s: %w", l.Network, l.Addr, err)
			}
			b.ln, b.close = s.wrapStream(l, ln), ln.Close // tls.go
		}
		socks = append(socks, b)
	}
	s.mu.Lock()
	for _, b := range socks {
		if b.pc != nil {
			s.addrs = append(s.addrs, b.pc.LocalAddr())
		} else {
			s.addrs = append(s.addrs, b.ln.Addr())
		}
	}
	s.mu.Unlock()
	if s.cfg.Records.Path != "" {
		w, err := records.Open(s.cfg.Records, s.metrics.reg, s.log)
		if err != nil {
			closeAll()
			return err
		}
		s.records = w
	}
	for _, a := range s.Addrs() {
		s.log.Info("sip listening", "network", a.Network(), "addr", a.String(), "advertise", s.cfg.AdvertiseHost)
	}
	close(s.ready)

	g, gctx := errgroup.WithContext(ctx)
	var stopping atomic.Bool
	// The records writer outlives the calls: its context ends after the
	// last call has ended (and submitted its record).
	rctx, stopRecords := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRecords()
	g.Go(func() error { return s.runRecords(rctx) })
	for _, b := range socks {
		g.Go(func() error {
			var err error
			if b.pc != nil {
				err = s.srv.ServeUDP(b.pc)
			} else {
				err = s.serveStream(b.l, b.ln)
			}
			if stopping.Load() {
				return nil
			}
			if err == nil {
				err = ErrListenerStopped
			}
			return fmt.Errorf("sip: serve %s %s: %w", b.l.Network, b.l.Addr, err)
		})
	}
	// Registrations end with their unREGISTER while the sockets are open.
	regsDone := s.regs.start(gctx)
	g.Go(func() error {
		<-gctx.Done()
		// Calls still up get their BYE while the sockets are open.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownHangup)
		s.HangupAll(hctx)
		cancel()
		stopRecords()
		<-regsDone
		stopping.Store(true)
		closeAll()
		return nil
	})
	return g.Wait()
}

// Ready is closed once every listener is bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the bound addresses (after Ready), in Config.Listen order.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// Drain stops accepting calls: new INVITEs and OPTIONS get 503 with
// Retry-After, so trunks and load balancers move traffic elsewhere. Calls
// in progress continue.
func (s *Server) Drain() {
	if !s.draining.Swap(true) {
		s.log.Info("sip draining: new calls are refused")
	}
}

// ActiveCalls counts calls admitted and not yet ended (setup included).
func (s *Server) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// Wait blocks until there are no active calls or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, ch := len(s.calls), s.changed
		s.mu.Unlock()
		if n == 0 {
			return s.waitHandlers(ctx)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("sip: wait for %d calls: %w", n, ctx.Err())
		}
	}
}

// waitHandlers waits (until ctx ends) for the requests still being handled
// once no call is left: the BYE that ended the last call reports the end
// before its 200 is sent (so the call knows the caller hung up), and the
// 200 must not be lost to a process that exits on the last call's end.
func (s *Server) waitHandlers(ctx context.Context) error {
	const poll = 10 * time.Millisecond
	for s.handling.Load() > 0 {
		select {
		case <-time.After(poll):
		case <-ctx.Done():
			return nil // the calls are gone; a request still in flight is not a call
		}
	}
	return nil
}

// HangupAll ends every active call (BYE with a shutdown Reason, or 503 for
// calls not answered yet) and waits for them until ctx ends.
func (s *Server) HangupAll(ctx context.Context) {
	s.mu.Lock()
	calls := make([]*call, 0, len(s.calls))
	for c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	for _, c := range calls {
		c.end(EndShutdown, nil)
	}
	if err := s.Wait(ctx); err != nil {
		s.log.Warn("sip: calls still active after hangup", "error", err)
	}
}

// admit reserves a call slot, or says why not (RFC 3261 §21.5.4: 503 with
// Retry-After when overloaded or going away).
func (s *Server) admit(c *call) *rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return reject(EndRejectDraining, "draining")
	}
	if s.cfg.MaxCalls > 0 && len(s.calls) >= s.cfg.MaxCalls {
		return reject(EndRejectMaxCalls, "too many calls")
	}
	if r := s.noCapacity(); r != nil {
		return r
	}
	// limits.go: a source that does not ACK cannot hold every slot.
	if src := c.info.Remote.Addr().Unmap(); src.IsValid() {
		if !s.unconfirmed.acquire(src) {
			s.metrics.limited.WithLabelValues(limitUnconfirmed).Inc()
			return reject(EndRejectUnconfirmed, "too many unconfirmed calls from this source")
		}
		c.unconfirmedSrc = src
	}
	s.calls[c] = true
	s.metrics.callsActive.Set(float64(len(s.calls)))
	s.notifyLocked()
	return nil
}

// release frees the slot and the dialog entry of c.
func (s *Server) release(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.calls, c)
	c.releaseUnconfirmed()
	if id := c.leg.dialogID; id != "" && s.dialogs[id] == c.leg {
		delete(s.dialogs, id)
	}
	s.metrics.callsActive.Set(float64(len(s.calls)))
	s.notifyLocked()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) registerDialog(id string, l *leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dialogs[id] = l
}

// lookupDialog finds the leg an in-dialog request belongs to (RFC 3261
// §12.2.2: Call-ID, local tag = To tag, remote tag = From tag).
func (s *Server) lookupDialog(req *sip.Request) *leg {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dialogs[id]
}

// localAddr is the address of the socket req came in on.
func localAddr(tx sip.ServerTransaction) (netip.AddrPort, bool) {
	ct, ok := tx.(interface{ Connection() sip.Connection })
	if !ok || ct.Connection() == nil {
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(ct.Connection().LocalAddr().String())
	return ap, err == nil
}

// contactFor is our Contact for a dialog created by req: the advertised
// host with the port of the socket the request came in on.
func (s *Server) contactFor(req *sip.Request, tx sip.ServerTransaction) sip.ContactHeader {
	network := strings.ToLower(req.Transport())
	port := 0
	if ap, ok := localAddr(tx); ok {
		port = int(ap.Port())
	}
	if port == 0 {
		for _, a := range s.Addrs() {
			if strings.HasPrefix(a.Network(), network) {
				if _, p, err := sip.ParseAddr(a.String()); err == nil {
					port = p
					break
				}
			}
		}
	}
	host := s.cfg.AdvertiseHost
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
		host = "[" + ip.String() + "]"
	}
	uri := sip.Uri{Scheme: "sip", Host: host, Port: port}
	if strings.EqualFold(req.Recipient.Scheme, "sips") && network == "tls" {
		// RFC 3261 §12.1.1: a sips Request-URI makes our Contact sips
		// (transport=tls is implied and deprecated there, RFC 5630 §3.2).
		uri.Scheme = "sips"
	} else if network != "udp" && network != "" {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", network)
	}
	return sip.ContactHeader{Address: uri}
}

// reportMalformed counts a message the guard could not parse and logs it,
// rate-limited (a flood must not flood the logs).
func (s *Server) reportMalformed(transport, action string, src net.Addr, err error) {
	s.metrics.malformed.WithLabelValues(transport, action).Inc()
	if ok, suppressed := s.badLog.Allow(); ok {
		addr := ""
		if src != nil {
			addr = src.String()
		}
		s.log.Warn("sip: malformed message", "transport", transport, "action", action, "src", addr,
			"error", sanitizePhrase(err.Error()), "suppressed", suppressed)
	}
}

// reportLimited counts a connection refused or closed by an edge limit and
// logs it, rate-limited.
func (s *Server) reportLimited(label string, src net.Addr) {
	s.metrics.limited.WithLabelValues(label).Inc()
	if label == limitStreamIdle {
		return // routine: a peer that opened a connection and went quiet
	}
	if ok, suppressed := s.badLog.Allow(); ok {
		addr := ""
		if src != nil {
			addr = src.String()
		}
		s.log.Warn("sip: connection limit", "limit", label, "src", addr, "suppressed", suppressed)
	}
}

// handler wraps every sipgo handler: counting, and never letting a panic in
// our code take the process down with it.
func (s *Server) handler(h func(req *sip.Request, tx sip.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		s.handling.Add(1)
		defer s.handling.Add(-1)
		s.metrics.requests.WithLabelValues(methodLabel(req.Method.String())).Inc()
		defer func() {
			// A bug must cost one request, not every call on the box.
			if v := recover(); v != nil {
				s.log.Error("sip: handler panic", "method", sanitizePhrase(req.Method.String()),
					"call_id", headerValue(req.CallID()), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !req.IsAck() {
					_ = s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error", nil)
				}
			}
		}()
		if !s.screen(req, tx) { // trunk IP check and failure block (acl.go)
			return
		}
		h(req, tx)
	}
}

// respond sends a response built from req, with our Server header, after
// making sure nothing copied from the request can break a header line.
func (s *Server) respond(req *sip.Request, tx sip.ServerTransaction, status int, phrase string, body []byte, hdrs ...sip.Header) error {
	res := sip.NewResponseFromRequest(req, status, phrase, body)
	return s.send(req, tx, res, hdrs...)
}

// send completes and sends res on tx.
func (s *Server) send(req *sip.Request, tx sip.ServerTransaction, res *sip.Response, hdrs ...sip.Header) error {
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	// sipgo copies the request's version into the response: a 505 would
	// echo whatever the sender wrote there. We only speak SIP/2.0.
	res.SipVersion = "SIP/2.0"
	if res.GetHeader("Server") == nil {
		res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
	}
	res = sanitizeResponse(res)
	s.metrics.responses.WithLabelValues(methodLabel(req.Method.String()), codeLabel(res.StatusCode)).Inc()
	if err := tx.Respond(res); err != nil {
		return fmt.Errorf("sip: respond %d to %s: %w", res.StatusCode, req.Method, err)
	}
	return nil
}

// rejectRequest answers a request we will not process and logs it
// (rate-limited: this is what scanners and broken peers produce).
func (s *Server) rejectRequest(req *sip.Request, tx sip.ServerTransaction, r *rejection) {
	t := r.reason.Termination()
	hdrs := r.hdrs
	if t.RetryAfter {
		hdrs = append(hdrs, sip.NewHeader("Retry-After", strconv.Itoa(retryAfterSeconds)))
	}
	err := s.respond(req, tx, t.Status, r.phrase(), nil, hdrs...)
	if ok, suppressed := s.badLog.Allow(); ok {
		var from, to string
		if h := req.From(); h != nil {
			from = s.logFrom(sanitizePhrase(uriForLog(h.Address)))
		}
		if h := req.To(); h != nil {
			to = s.logTo(sanitizePhrase(uriForLog(h.Address)))
		}
		s.log.Log(context.Background(), t.Level, "sip: request rejected",
			"call_id", headerValue(req.CallID()), "from", from, "to", to,
			"method", sanitizePhrase(req.Method.String()), "status", t.Status, "reason", r.phrase(),
			"src", req.Source(), "suppressed", suppressed, "error", err)
	}
}

// sanitizeResponse rebuilds res if a header copied from the request carries
// CR, LF or NUL (a request rejected for exactly that, or sipgo echoing
// what it parsed): those bytes become spaces.
func sanitizeResponse(res *sip.Response) *sip.Response {
	dirty := false
	for _, h := range res.Headers() {
		if !headerSafe(h.Value()) {
			dirty = true
			break
		}
	}
	if !dirty {
		return res
	}
	clean := sip.NewResponse(res.StatusCode, sanitizePhrase(res.Reason))
	clean.SipVersion = "SIP/2.0"
	for _, h := range res.Headers() {
		if headerSafe(h.Value()) {
			clean.AppendHeader(h)
			continue
		}
		clean.AppendHeader(sip.NewHeader(h.Name(), strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == 0 {
				return ' '
			}
			return r
		}, h.Value())))
	}
	clean.SetBody(res.Body())
	clean.SetTransport(res.Transport())
	clean.SetDestination(res.Destination())
	return clean
}

// headerValue is h.Value() for a possibly nil header.
func headerValue(h sip.Header) string {
	if h == nil {
		return ""
	}
	if cid, ok := h.(*sip.CallIDHeader); ok && cid == nil {
		return ""
	}
	return sanitizePhrase(h.Value())
}
