// Package phone is a small scriptable SIP+RTP user agent, used by the
// end-to-end tests, the load generator (cmd/sipload) and `sipbridge call`:
// a sipgo user agent that places calls with a G.711 SDP offer, streams
// paced RTP (tones as "speech", low noise otherwise, RFC 4733 DTMF), records
// what it hears, and detects tones in it with a Goertzel filter, so a test
// can assert that an answer was heard (and from which simulated region), not
// just that packets arrived.
package phone

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Config describes the phone.
type Config struct {
	// LocalIP to bind SIP and RTP on (default 127.0.0.1).
	LocalIP string
	// Transport: "udp" (default), "tcp" or "tls".
	Transport string
	// For "tls": ServerTLS is the phone's own listener (its certificate);
	// ClientTLS verifies the far end (RootCAs).
	ServerTLS, ClientTLS *tls.Config
	Logger               *slog.Logger
}

// Phone is a user agent that can hold several calls.
type Phone struct {
	cfg    Config
	ua     *sipgo.UserAgent
	client *sipgo.Client
	srv    *sipgo.Server
	dc     *sipgo.DialogClientCache
	addr   netip.AddrPort
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	calls map[string]*Call // by Call-ID
	// Requests received from the far end, by method (REFER, NOTIFY, INFO…).
	requests []*sip.Request
	// OnRefer, if set, answers REFERs (default 202 and a NOTIFY 200).
	OnRefer func(req *sip.Request) int
	// refresh answers the bridge's session refreshes (reinvite.go).
	refresh refreshHook
}

// New starts a phone listening on an ephemeral port.
func New(ctx context.Context, cfg Config) (*Phone, error) {
	if cfg.LocalIP == "" {
		cfg.LocalIP = "127.0.0.1"
	}
	if cfg.Transport == "" {
		cfg.Transport = "udp"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Phone{cfg: cfg, calls: map[string]*Call{}, done: make(chan struct{})}
	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent("sipbridge-phone")}
	if cfg.Transport == "tls" {
		if cfg.ServerTLS == nil || cfg.ClientTLS == nil {
			return nil, errors.New("phone: tls needs ServerTLS and ClientTLS")
		}
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(cfg.ClientTLS))
	}
	ua, err := sipgo.NewUA(uaOpts...)
	if err != nil {
		return nil, err
	}
	p.ua = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	p.srv = srv

	ctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	ready := make(chan string, 1)
	//lint:ignore SA1029 the key type is sipgo's
	lctx := context.WithValue(ctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyFuncCtxValue(func(network, addr string) {
		select {
		case ready <- addr:
		default:
		}
	}))
	srv.OnBye(p.onBye)
	srv.OnRefer(p.onRefer)
	srv.OnNotify(p.record)
	srv.OnInfo(p.record)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnInvite(p.onReInvite)
	srv.OnUpdate(p.onUpdate) // reinvite.go
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {})
	errc := make(chan error, 1)
	go func() {
		defer close(p.done)
		if cfg.Transport == "tls" {
			// "tls", not "tcp6": sipgo maps that to WSS.
			errc <- srv.ListenAndServeTLS(lctx, "tls", net.JoinHostPort(cfg.LocalIP, "0"), cfg.ServerTLS)
			return
		}
		errc <- srv.ListenAndServe(lctx, cfg.Transport, net.JoinHostPort(cfg.LocalIP, "0"))
	}()
	select {
	case a := <-ready:
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			cancel()
			return nil, err
		}
		p.addr = ap
	case err := <-errc:
		cancel()
		return nil, fmt.Errorf("phone: listen: %w", err)
	case <-time.After(5 * time.Second):
		cancel()
		return nil, errors.New("phone: listen timeout")
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(cfg.LocalIP), sipgo.WithClientPort(int(p.addr.Port())),
		sipgo.WithClientLogger(cfg.Logger))
	if err != nil {
		cancel()
		return nil, err
	}
	p.mu.Lock() // onBye may already run (a BYE to a phone that never called)
	p.client = client
	p.dc = sipgo.NewDialogClientCache(client, p.contact())
	p.mu.Unlock()
	return p, nil
}

// Addr is the phone's SIP address.
func (p *Phone) Addr() netip.AddrPort { return p.addr }

// Client exposes the sipgo client for raw requests in tests.
func (p *Phone) Client() *sipgo.Client { return p.client }

func (p *Phone) contact() sip.ContactHeader {
	return sip.ContactHeader{Address: sip.Uri{User: "caller", Host: p.cfg.LocalIP, Port: int(p.addr.Port()),
		UriParams: transportParams(p.cfg.Transport)}}
}

func transportParams(t string) sip.HeaderParams {
	if t == "tcp" || t == "tls" {
		hp := sip.NewParams()
		hp.Add("transport", t)
		return hp
	}
	return nil
}

// Close ends every call and stops the phone.
func (p *Phone) Close() {
	p.mu.Lock()
	calls := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		calls = append(calls, c)
	}
	p.mu.Unlock()
	for _, c := range calls {
		c.stopMedia()
	}
	p.cancel()
	_ = p.ua.Close()
	<-p.done
}

// Requests returns the in-dialog requests the phone received with this method.
func (p *Phone) Requests(method string) []*sip.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*sip.Request
	for _, r := range p.requests {
		if string(r.Method) == method {
			out = append(out, r)
		}
	}
	return out
}

func (p *Phone) record(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	p.requests = append(p.requests, req)
	p.mu.Unlock()
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
}

func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	p.requests = append(p.requests, req)
	c := p.calls[req.CallID().Value()]
	dc := p.dc
	p.mu.Unlock()
	if dc == nil || dc.ReadBye(req, tx) != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	}
	if c != nil {
		c.markEnded("bye-received")
	}
}

func (p *Phone) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	p.requests = append(p.requests, req)
	fn := p.OnRefer
	c := p.calls[req.CallID().Value()]
	p.mu.Unlock()
	code := 202
	if fn != nil {
		code = fn(req)
	}
	reason := "Accepted"
	if code != 202 {
		reason = "Rejected"
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	if code != 202 || c == nil {
		return
	}
	// Report the transfer as done, as a PBX would after the new leg answers.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n := sip.NewRequest(sip.NOTIFY, c.dialog.InviteResponse.Contact().Address)
		n.AppendHeader(sip.NewHeader("Event", "refer"))
		n.AppendHeader(sip.NewHeader("Subscription-State", "terminated;reason=noresource"))
		n.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
		n.SetBody([]byte("SIP/2.0 200 OK\r\n"))
		_, _ = c.dialog.Do(ctx, n)
	}()
}

// onReInvite answers an in-dialog INVITE (e.g. a session refresh) with our SDP.
func (p *Phone) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	p.requests = append(p.requests, req)
	c := p.calls[req.CallID().Value()]
	p.mu.Unlock()
	code := p.refresh.status()
	if c == nil {
		code = 481
	}
	if code != 200 {
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, "Refused", nil))
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", c.offer)
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ct := p.contact()
	res.AppendHeader(&ct)
	_ = tx.Respond(res)
}

// CallOptions shape one outgoing call.
type CallOptions struct {
	// Target is the Request-URI, e.g. "sip:bot@127.0.0.1:5060".
	Target string
	// Codecs in offer order, by name: "PCMU", "PCMA" (default both, PCMU first).
	Codecs []string
	// TelephoneEvent offers RFC 4733 with this payload type (0 = 101; <0 = none).
	TelephoneEvent int
	// Headers are extra headers on the INVITE.
	Headers []sip.Header
	// Username/Password answer a digest challenge.
	Username, Password string
	// RawSDP replaces the generated offer (the RTP port is still ours).
	RawSDP func(rtpPort int) string
	// SRTPKey, 30 bytes, offers RTP/SAVP with SDES AES_CM_128_HMAC_SHA1_80
	// and this key; the call's RTP is then SRTP both ways.
	SRTPKey []byte
	// Pacer, if set, sends the call's RTP along with other calls' from a
	// shared clock instead of a goroutine and timer of its own (for load
	// generation); such a call cannot send DTMF.
	Pacer *Pacer
	// TrackTones, if set, replaces the recording of what the call hears:
	// received audio is only scanned for these tones as it arrives, so a
	// long call costs no memory. WaitTone works for these tones only, and
	// Heard returns nil.
	TrackTones []float64
}

// ErrRejected carries a non-2xx final answer to an INVITE.
type ErrRejected struct {
	Code   int
	Reason string
	Res    *sip.Response
}

func (e *ErrRejected) Error() string {
	return fmt.Sprintf("phone: call rejected: %d %s", e.Code, e.Reason)
}

// Call places a call and, once it is answered, ACKs it and starts RTP.
func (p *Phone) Call(ctx context.Context, opt CallOptions) (*Call, error) {
	var target sip.Uri
	if err := sip.ParseUri(opt.Target, &target); err != nil {
		return nil, err
	}
	if p.cfg.Transport == "tcp" || p.cfg.Transport == "tls" {
		target.UriParams = transportParams(p.cfg.Transport)
	}
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(p.cfg.LocalIP)})
	if err != nil {
		return nil, err
	}
	port := rtpConn.LocalAddr().(*net.UDPAddr).Port
	codecs := opt.Codecs
	if len(codecs) == 0 {
		codecs = []string{"PCMU", "PCMA"}
	}
	te := opt.TelephoneEvent
	if te == 0 {
		te = 101
	}
	offer := buildOffer(p.cfg.LocalIP, port, codecs, te)
	var sec *srtpState
	if len(opt.SRTPKey) == 30 {
		sec = &srtpState{local: opt.SRTPKey}
		offer = strings.Replace(offer, " RTP/AVP ", " RTP/SAVP ", 1) + sec.cryptoLine() + "\r\n"
	}
	if opt.RawSDP != nil {
		offer = opt.RawSDP(port)
	}
	hdrs := append([]sip.Header{sip.NewHeader("Content-Type", "application/sdp")}, opt.Headers...)
	dlg, err := p.dc.Invite(ctx, target, []byte(offer), hdrs...)
	if err != nil {
		rtpConn.Close()
		return nil, err
	}
	c := newCall(p, dlg, rtpConn, []byte(offer))
	c.srtp = sec
	c.pacer = opt.Pacer
	for _, hz := range opt.TrackTones {
		c.tones = append(c.tones, toneTrack{hz: hz})
	}
	p.mu.Lock()
	p.calls[dlg.InviteRequest.CallID().Value()] = c
	p.mu.Unlock()

	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{Username: opt.Username, Password: opt.Password,
		OnResponse: func(res *sip.Response) error {
			c.addProvisional(res.StatusCode)
			return nil
		}})
	if err != nil {
		c.stopMedia()
		p.forget(c)
		var er *sipgo.ErrDialogResponse
		if errors.As(err, &er) {
			return nil, &ErrRejected{Code: er.Res.StatusCode, Reason: er.Res.Reason, Res: er.Res}
		}
		return nil, err
	}
	err = c.applyAnswer(dlg.InviteResponse.Body())
	if err == nil && sec != nil {
		err = sec.keyFromAnswer(string(dlg.InviteResponse.Body()))
	}
	if err != nil {
		_ = dlg.Ack(ctx)
		_ = dlg.Bye(ctx)
		c.stopMedia()
		p.forget(c)
		return nil, err
	}
	if err := dlg.Ack(ctx); err != nil {
		c.stopMedia()
		p.forget(c)
		return nil, err
	}
	c.startMedia()
	return c, nil
}

func (p *Phone) forget(c *Call) {
	p.mu.Lock()
	delete(p.calls, c.CallID())
	p.mu.Unlock()
}

func buildOffer(ip string, port int, codecs []string, te int) string {
	var pts []string
	var maps []string
	for _, c := range codecs {
		switch strings.ToUpper(c) {
		case "PCMU":
			pts = append(pts, "0")
			maps = append(maps, "a=rtpmap:0 PCMU/8000")
		case "PCMA":
			pts = append(pts, "8")
			maps = append(maps, "a=rtpmap:8 PCMA/8000")
		case "G722":
			pts = append(pts, "9")
			maps = append(maps, "a=rtpmap:9 G722/8000")
		case "OPUS":
			pts = append(pts, "111")
			maps = append(maps, "a=rtpmap:111 opus/48000/2")
		}
	}
	if te > 0 {
		pts = append(pts, strconv.Itoa(te))
		maps = append(maps, fmt.Sprintf("a=rtpmap:%d telephone-event/8000", te), fmt.Sprintf("a=fmtp:%d 0-16", te))
	}
	sess := time.Now().UnixNano() & 0x7fffffffffff
	lines := []string{
		"v=0",
		fmt.Sprintf("o=sipbridge-phone %d %d IN IP4 %s", sess, sess, ip),
		"s=sipbridge-phone",
		"c=IN IP4 " + ip,
		"t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP %s", port, strings.Join(pts, " ")),
	}
	lines = append(lines, maps...)
	lines = append(lines, "a=ptime:20", "a=sendrecv")
	return strings.Join(lines, "\r\n") + "\r\n"
}
