package sip

import (
	"context"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/sip/sdp"
)

// inDialogHooks answer the UPDATEs, re-INVITEs and ACKs our server sends a
// test UAC (session refreshes), from a script of status codes.
type inDialogHooks struct {
	reqs chan *sip.Request // UPDATE and INVITE, in arrival order
	acks chan *sip.Request

	mu     sync.Mutex
	script []hookReply // popped per request; empty: 200
}

type hookReply struct {
	status int
	hdrs   []sip.Header
}

func newInDialogHooks(srv *sipgo.Server) *inDialogHooks {
	h := &inDialogHooks{reqs: make(chan *sip.Request, 32), acks: make(chan *sip.Request, 32)}
	srv.OnUpdate(h.handle)
	srv.OnInvite(h.handle)
	srv.OnAck(func(req *sip.Request, _ sip.ServerTransaction) { h.acks <- req })
	return h
}

// then queues replies for the next requests.
func (h *inDialogHooks) then(replies ...hookReply) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.script = append(h.script, replies...)
}

func (h *inDialogHooks) handle(req *sip.Request, tx sip.ServerTransaction) {
	h.mu.Lock()
	rep := hookReply{status: sip.StatusOK}
	if len(h.script) > 0 {
		rep, h.script = h.script[0], h.script[1:]
	}
	h.mu.Unlock()
	h.reqs <- req
	var body []byte
	if req.IsInvite() && rep.status == sip.StatusOK {
		body = []byte(offer(4000, "0 101", "a=rtpmap:101 telephone-event/8000"))
	}
	res := sip.NewResponseFromRequest(req, rep.status, "Scripted", body)
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	for _, hd := range rep.hdrs {
		res.AppendHeader(hd)
	}
	_ = tx.Respond(res)
}

// next waits for the next UPDATE or re-INVITE from the server.
func (h *inDialogHooks) next(t *testing.T) *sip.Request {
	t.Helper()
	select {
	case r := <-h.reqs:
		return r
	case <-time.After(wait):
		t.Fatal("no in-dialog request from the server")
		return nil
	}
}

func withTimers(expires, minSE time.Duration) harnessOpt {
	return func(c *Config, _ *harness) { c.SessionExpires, c.MinSE = expires, minSE }
}

func hdr(m sip.Message, name string) string {
	if h := firstHeader(m, name); h != nil {
		return h.Value()
	}
	return ""
}

// inDialog sends an in-dialog request from the caller with headers and an
// optional SDP body; a 2xx to an INVITE is ACKed.
func (tc *testCall) inDialog(t *testing.T, method sip.RequestMethod, body string, hdrs ...sip.Header) *sip.Response {
	t.Helper()
	target := tc.dlg.InviteResponse.Contact().Address
	req := sip.NewRequest(method, target)
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if body != "" {
		req.SetBody([]byte(body))
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	res := tc.do(req)
	if method == sip.INVITE && res.IsSuccess() {
		require.NoError(t, tc.dlg.WriteRequest(sip.NewRequest(sip.ACK, target)))
	}
	return res
}

func TestParseSessionExpires(t *testing.T) {
	tests := []struct {
		in        string
		secs      uint32
		refresher string
		ok        bool
	}{
		{"1800", 1800, "", true},
		{" 90 ;refresher=uac", 90, "uac", true},
		{"90;REFRESHER = UAS", 90, "uas", true},
		{"4000;foo=bar;refresher=uas;x", 4000, "uas", true},
		{"2147483647", 2147483647, "", true},
		{"2147483648", 0, "", false},
		{"0", 0, "", false},
		{"", 0, "", false},
		{"-5", 0, "", false},
		{"1e3", 0, "", false},
		{"90;refresher=proxy", 0, "", false},
		{"90 30", 0, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			se, err := parseSessionExpires(tc.in)
			if !tc.ok {
				require.ErrorIs(t, err, errSessionExpires)
				return
			}
			require.NoError(t, err)
			require.Equal(t, sessionExpires{secs: tc.secs, refresher: tc.refresher}, se)
		})
	}
	v, err := parseMinSE("90;lr")
	require.NoError(t, err)
	require.Equal(t, uint32(90), v)
	_, err = parseMinSE("ninety")
	require.ErrorIs(t, err, errMinSE)
}

func FuzzParseSessionExpires(f *testing.F) {
	for _, s := range []string{"1800", "90;refresher=uac", "1;refresher=uas;x=y", "", ";;", "99999999999", "5;refresher="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		se, err := parseSessionExpires(s)
		if err != nil {
			return
		}
		require.NotZero(t, se.secs)
		require.LessOrEqual(t, se.secs, uint32(maxDeltaSeconds))
		// What we would echo back parses to the same interval.
		ref := se.refresher
		if ref == "" {
			ref = refresherUAS
		}
		back, err := parseSessionExpires(formatSessionExpires(time.Duration(se.secs)*time.Second, ref))
		require.NoError(t, err)
		require.Equal(t, se.secs, back.secs)
		require.Equal(t, ref, back.refresher)
	})
}

func TestNegotiateTimer(t *testing.T) {
	cfg, err := Config{SessionExpires: 1800 * time.Second, MinSE: 90 * time.Second}.withTimerDefaults()
	require.NoError(t, err)
	uac := func(cfg Config) Config { cfg.SessionRefresher = refresherUAC; return cfg }
	tests := []struct {
		name string
		cfg  Config
		tr   timerRequest
		want timerResult
		rej  EndReason // 0: accepted
	}{
		{name: "no timer at all", cfg: cfg, tr: timerRequest{}, want: timerResult{}},
		{name: "supported, none asked: we impose ours and refresh", cfg: cfg, tr: timerRequest{supported: true},
			want: timerResult{active: true, interval: 1800 * time.Second, weRefresh: true, refresher: "uas", require: true}},
		{name: "supported, none asked, configured uac", cfg: uac(cfg), tr: timerRequest{supported: true},
			want: timerResult{active: true, interval: 1800 * time.Second, weRefresh: false, refresher: "uac", require: true}},
		{name: "imposed interval respects the request's Min-SE", cfg: cfg, tr: timerRequest{supported: true, minSE: 3600},
			want: timerResult{active: true, interval: 3600 * time.Second, weRefresh: true, refresher: "uas", require: true}},
		{name: "caller refreshes", cfg: cfg, tr: timerRequest{supported: true, hasSE: true, se: sessionExpires{secs: 600, refresher: "uac"}},
			want: timerResult{active: true, interval: 600 * time.Second, refresher: "uac", require: true}},
		{name: "caller asks us to refresh", cfg: uac(cfg), tr: timerRequest{supported: true, hasSE: true, se: sessionExpires{secs: 600, refresher: "uas"}},
			want: timerResult{active: true, interval: 600 * time.Second, weRefresh: true, refresher: "uas", require: true}},
		{name: "refresher left open: ours", cfg: cfg, tr: timerRequest{supported: true, hasSE: true, se: sessionExpires{secs: 7200}},
			want: timerResult{active: true, interval: 7200 * time.Second, weRefresh: true, refresher: "uas", require: true}},
		{name: "proxy-inserted, UAC without timer: we refresh, no Require", cfg: uac(cfg),
			tr:   timerRequest{hasSE: true, se: sessionExpires{secs: 300, refresher: "uac"}},
			want: timerResult{active: true, interval: 300 * time.Second, weRefresh: true, refresher: "uas"}},
		{name: "below Min-SE: 422", cfg: cfg, tr: timerRequest{supported: true, hasSE: true, se: sessionExpires{secs: 89}},
			rej: EndRejectSessionInterval},
		{name: "at Min-SE: fine", cfg: cfg, tr: timerRequest{supported: true, hasSE: true, se: sessionExpires{secs: 90}},
			want: timerResult{active: true, interval: 90 * time.Second, weRefresh: true, refresher: "uas", require: true}},
		{name: "never impose", cfg: Config{SessionExpires: -1, MinSE: 90 * time.Second, SessionRefresher: "uas"},
			tr: timerRequest{supported: true}, want: timerResult{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, r := tc.cfg.negotiateTimer(tc.tr)
			if tc.rej != 0 {
				require.NotNil(t, r)
				require.Equal(t, tc.rej, r.reason)
				require.Len(t, r.hdrs, 1)
				require.Equal(t, "Min-SE", r.hdrs[0].Name())
				require.Equal(t, "90", r.hdrs[0].Value())
				return
			}
			require.Nil(t, r)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestTimerConfigDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in      Config
		want    Config
		wantErr bool
	}{
		{name: "defaults", in: Config{}, want: Config{SessionExpires: 30 * time.Minute, MinSE: 90 * time.Second, SessionRefresher: "uas"}},
		{name: "min above default expires", in: Config{MinSE: time.Hour}, want: Config{SessionExpires: time.Hour, MinSE: time.Hour, SessionRefresher: "uas"}},
		{name: "short for tests", in: Config{SessionExpires: 3 * time.Second, MinSE: time.Second, SessionRefresher: "uac"},
			want: Config{SessionExpires: 3 * time.Second, MinSE: time.Second, SessionRefresher: "uac"}},
		{name: "never impose", in: Config{SessionExpires: -1}, want: Config{SessionExpires: -1, MinSE: 90 * time.Second, SessionRefresher: "uas"}},
		{name: "expires below min", in: Config{SessionExpires: 60 * time.Second}, wantErr: true},
		{name: "sub-second min", in: Config{MinSE: 500 * time.Millisecond}, wantErr: true},
		{name: "bad refresher", in: Config{SessionRefresher: "proxy"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.withTimerDefaults()
			if tc.wantErr {
				require.ErrorIs(t, err, ErrConfig)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSessionTimerNext(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name    string
		st      *sessionTimer
		wantAct timerAction
		wantAt  time.Time
	}{
		{name: "inactive", st: &sessionTimer{}, wantAct: timerIdle},
		{name: "we refresh at half", st: &sessionTimer{active: true, interval: 1800 * time.Second, weRefresh: true, last: t0},
			wantAct: timerRefresh, wantAt: t0.Add(900 * time.Second)},
		{name: "caller refreshes: BYE 32 s early", st: &sessionTimer{active: true, interval: 1800 * time.Second, last: t0},
			wantAct: timerExpire, wantAt: t0.Add(1768 * time.Second)},
		{name: "short interval: a third early", st: &sessionTimer{active: true, interval: 90 * time.Second, last: t0},
			wantAct: timerExpire, wantAt: t0.Add(60 * time.Second)},
		{name: "retry before expiry", st: &sessionTimer{active: true, interval: 90 * time.Second, weRefresh: true, last: t0, retryAt: t0.Add(70 * time.Second)},
			wantAct: timerRefresh, wantAt: t0.Add(70 * time.Second)},
		{name: "retry past expiry: expire", st: &sessionTimer{active: true, interval: 90 * time.Second, weRefresh: true, last: t0, retryAt: t0.Add(95 * time.Second)},
			wantAct: timerExpire, wantAt: t0.Add(90 * time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			act, at := tc.st.next()
			require.Equal(t, tc.wantAct, act)
			if act != timerIdle {
				require.Equal(t, tc.wantAt, at)
			}
		})
	}
	// A failed round retries after a third of what is left.
	st := sessionTimer{active: true, interval: 90 * time.Second, weRefresh: true, last: t0}
	st.retryLater(t0.Add(45 * time.Second))
	_, at := st.next()
	require.Equal(t, t0.Add(60*time.Second), at)
}

func TestTargetDest(t *testing.T) {
	mk := func(transport, src string) *sip.Request {
		r := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", Host: "127.0.0.1"})
		r.SetTransport(transport)
		r.SetSource(src)
		return r
	}
	tests := []struct {
		name string
		uri  sip.Uri
		req  *sip.Request
		want string
	}{
		{"same IP, new port: followed", sip.Uri{Host: "192.0.2.7", Port: 5080}, mk("UDP", "192.0.2.7:5060"), "192.0.2.7:5080"},
		{"default port", sip.Uri{Host: "192.0.2.7"}, mk("UDP", "192.0.2.7:6000"), "192.0.2.7:5060"},
		{"private Contact behind NAT: source", sip.Uri{Host: "10.0.0.5", Port: 5060}, mk("UDP", "203.0.113.9:34000"), "203.0.113.9:34000"},
		{"hostname: source", sip.Uri{Host: "pbx.example.com", Port: 5060}, mk("UDP", "203.0.113.9:5060"), "203.0.113.9:5060"},
		{"TCP: the connection", sip.Uri{Host: "192.0.2.7", Port: 5080}, mk("TCP", "192.0.2.7:40000"), "192.0.2.7:40000"},
		{"IPv6", sip.Uri{Host: "[2001:db8::1]", Port: 5070}, mk("UDP", "[2001:db8::1]:5060"), "[2001:db8::1]:5070"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, targetDest(tc.uri, tc.req))
		})
	}
}

// TestSessionTimerAnswers: the 2xx and 422 of RFC 4028 §9 on real INVITEs.
func TestSessionTimerAnswers(t *testing.T) {
	h := newHarness(t, withTimers(120*time.Second, 60*time.Second))
	u := newUAC(t, h.addr)
	tests := []struct {
		name        string
		hdrs        []sip.Header
		status      int
		wantSE      string
		wantRequire bool
		wantMinSE   string
	}{
		{name: "none", status: 200},
		{name: "supported only", hdrs: []sip.Header{sip.NewHeader("Supported", "timer, replaces")}, status: 200,
			wantSE: "120;refresher=uas", wantRequire: true},
		{name: "caller refreshes", hdrs: []sip.Header{sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "90;refresher=uac")},
			status: 200, wantSE: "90;refresher=uac", wantRequire: true},
		{name: "compact forms", hdrs: []sip.Header{sip.NewHeader("k", "timer"), sip.NewHeader("x", "95")},
			status: 200, wantSE: "95;refresher=uas", wantRequire: true},
		{name: "Require: timer", hdrs: []sip.Header{sip.NewHeader("Require", "timer"), sip.NewHeader("Session-Expires", "100")},
			status: 200, wantSE: "100;refresher=uas", wantRequire: true},
		{name: "inserted by a proxy", hdrs: []sip.Header{sip.NewHeader("Session-Expires", "300")}, status: 200, wantSE: "300;refresher=uas"},
		{name: "too small", hdrs: []sip.Header{sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "30")},
			status: 422, wantMinSE: "60"},
		{name: "malformed", hdrs: []sip.Header{sip.NewHeader("Session-Expires", "soon")}, status: 400},
		{name: "Require: timer and another", hdrs: []sip.Header{sip.NewHeader("Require", "timer, 100rel")}, status: 420},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			call, err := u.invite(ctx, offer(4000, "0"), tc.hdrs...)
			if tc.status != 200 {
				require.Error(t, err)
				res := call.dlg.InviteResponse
				if res == nil {
					var er *sipgo.ErrDialogResponse
					require.ErrorAs(t, err, &er)
					res = er.Res
				}
				require.Equal(t, tc.status, res.StatusCode)
				require.Equal(t, tc.wantMinSE, hdr(res, "Min-SE"))
				if tc.status == 420 {
					require.Equal(t, "100rel", hdr(res, "Unsupported"))
				}
				return
			}
			require.NoError(t, err)
			require.NoError(t, call.dlg.Ack(ctx))
			h.conv()
			res := call.dlg.InviteResponse
			require.Equal(t, "timer", hdr(res, "Supported"))
			require.Contains(t, hdr(res, "Allow"), "UPDATE")
			require.Equal(t, tc.wantSE, hdr(res, "Session-Expires"))
			if tc.wantRequire {
				require.Equal(t, "timer", hdr(res, "Require"))
			} else {
				require.Empty(t, hdr(res, "Require"))
			}
			call.bye()
		})
	}
	h.waitIdle()
	require.Equal(t, float64(1), h.endCount(EndRejectSessionInterval))
}

// TestSessionTimerCallerRefreshes: the caller is the refresher. UPDATEs and
// re-INVITEs keep the session past several intervals; when they stop, we
// send BYE with Reason 408 a third of the interval before it runs out.
func TestSessionTimerCallerRefreshes(t *testing.T) {
	h := newHarness(t, withTimers(0, time.Second))
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	timer := []sip.Header{sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "3;refresher=uac")}
	tc, err := u.invite(ctx, offer(4000, "0"), timer...)
	require.NoError(t, err)
	require.NoError(t, tc.dlg.Ack(ctx))
	h.conv()
	require.Equal(t, "3;refresher=uac", hdr(tc.dlg.InviteResponse, "Session-Expires"))

	// Eight refreshes 500 ms apart: 4 s, longer than the 3 s interval.
	var last time.Time
	for i := range 8 {
		time.Sleep(500 * time.Millisecond)
		method, body := sip.UPDATE, ""
		if i%3 == 2 {
			method, body = sip.INVITE, offer(4000, "0")
		}
		res := tc.inDialog(t, method, body, sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "3;refresher=uac"))
		last = time.Now()
		require.Equal(t, sip.StatusOK, res.StatusCode, method)
		require.Equal(t, "3;refresher=uac", hdr(res, "Session-Expires"), "RFC 4028 §9: every refresh's 2xx carries the interval")
		require.Equal(t, "timer", hdr(res, "Require"))
		require.NotNil(t, res.Contact())
		select {
		case bye := <-u.byes:
			t.Fatalf("BYE during refreshes: %s", bye.StartLine())
		default:
		}
	}
	bye := u.nextBye()
	require.GreaterOrEqual(t, time.Since(last), 1900*time.Millisecond,
		"BYE at interval - interval/3 = 2 s after the last refresh, not before")
	require.Equal(t, `SIP;cause=408;text="Session timer expired"`, hdr(bye, "Reason"))
	h.waitEnd(EndSessionExpired, 1)
	h.waitIdle()
}

// TestSessionTimerWeRefresh: we are the refresher, with UPDATE when the
// caller allows it, else with a re-INVITE of our unchanged SDP (ACKed). A
// 422 raises the interval and retries; a 481 ends the call with BYE.
func TestSessionTimerWeRefresh(t *testing.T) {
	for _, update := range []bool{true, false} {
		name := "reinvite"
		if update {
			name = "update"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, withTimers(0, time.Second))
			u := newUAC(t, h.addr)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			allow := "INVITE, ACK, BYE, CANCEL, OPTIONS"
			if update {
				allow += ", UPDATE"
			}
			u.hooks.then(
				hookReply{status: 422, hdrs: []sip.Header{sip.NewHeader("Min-SE", "3")}},
				hookReply{status: 200, hdrs: []sip.Header{sip.NewHeader("Session-Expires", "3;refresher=uac")}},
				hookReply{status: 200, hdrs: []sip.Header{sip.NewHeader("Session-Expires", "3;refresher=uac")}},
				hookReply{status: sip.StatusCallTransactionDoesNotExists},
			)
			tc, err := u.invite(ctx, offer(4000, "0 101", "a=rtpmap:101 telephone-event/8000"),
				sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "2;refresher=uas"), sip.NewHeader("Allow", allow))
			require.NoError(t, err)
			require.NoError(t, tc.dlg.Ack(ctx))
			h.conv()
			require.Equal(t, "2;refresher=uas", hdr(tc.dlg.InviteResponse, "Session-Expires"))
			ourOrigin := originLine(tc.answer)

			wantMethod := sip.INVITE
			if update {
				wantMethod = sip.UPDATE
			}
			for i, wantSE := range []string{"2;refresher=uac", "3;refresher=uac", "3;refresher=uac", "3;refresher=uac"} {
				req := u.hooks.next(t)
				require.Equal(t, wantMethod, req.Method, i)
				require.Equal(t, wantSE, hdr(req, "Session-Expires"), "request %d (RFC 4028 §7.4: we are its uac)", i)
				require.Equal(t, "timer", hdr(req, "Supported"))
				require.Equal(t, tc.dlg.InviteRequest.CallID().Value(), req.CallID().Value())
				if update {
					require.Empty(t, req.Body(), "a refresh UPDATE carries no offer")
					continue
				}
				require.Equal(t, ourOrigin, originLine(req.Body()), "the refresh offers the session unchanged (RFC 3264 §8)")
				if i == 1 || i == 2 { // 2xx: ACKed with the INVITE's CSeq
					select {
					case ack := <-u.hooks.acks:
						require.Equal(t, req.CSeq().SeqNo, ack.CSeq().SeqNo)
						require.Equal(t, sip.ACK, ack.CSeq().MethodName)
					case <-time.After(wait):
						t.Fatal("2xx of our re-INVITE not ACKed")
					}
				}
			}
			bye := u.nextBye()
			require.Equal(t, `SIP;cause=408;text="Session refresh failed"`, hdr(bye, "Reason"))
			h.waitEnd(EndRefreshFailed, 1)
			h.waitIdle()
		})
	}
}

func originLine(body []byte) string {
	for _, l := range strings.Split(string(body), "\r\n") {
		if strings.HasPrefix(l, "o=") {
			return l
		}
	}
	return ""
}

// TestUpdateOfferHoldAndResume: UPDATE with SDP follows the re-INVITE's
// offer/answer rules, answered in its 200 (RFC 3311 §5.2).
func TestUpdateOfferHoldAndResume(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	tc := u.answeredCall(offer(4000, "0 101", "a=rtpmap:101 telephone-event/8000"))
	conv := h.conv()
	st := h.media.stream(0)
	for i, s := range []struct {
		dir  string
		want sdp.Direction
		hold bool
	}{
		{"sendonly", sdp.RecvOnly, true},
		{"sendrecv", sdp.SendRecv, false},
		{"inactive", sdp.Inactive, true},
		{"sendrecv", sdp.SendRecv, false},
	} {
		res := tc.inDialog(t, sip.UPDATE, offer(4002, "0 101", "a=rtpmap:101 telephone-event/8000", "a="+s.dir))
		require.Equal(t, sip.StatusOK, res.StatusCode, s.dir)
		require.NotNil(t, res.Contact())
		m := answerAudio(t, res.Body())
		require.Equal(t, s.want, m.Direction, s.dir)
		require.Contains(t, originLine(res.Body()), " "+strconv.Itoa(i+2)+" IN ", "o= version grows")
		select {
		case held := <-conv.holds:
			require.Equal(t, s.hold, held, s.dir)
		case <-time.After(wait):
			t.Fatalf("SetHold not called for %s", s.dir)
		}
		require.Equal(t, !s.hold, st.isSending())
		require.Equal(t, 4002, int(st.remoteAddr().Port()), "the new port is used")
	}
	// An offer we cannot take leaves the session as it was.
	res := tc.inDialog(t, sip.UPDATE, offer(4000, "18", "a=rtpmap:18 G729/8000"))
	require.Equal(t, sip.StatusNotAcceptableHere, res.StatusCode)
	require.True(t, st.isSending())
	tc.bye()
	h.waitIdle()
}

// TestTargetRefresh: a re-INVITE or UPDATE with a new Contact moves our
// later requests (here the BYE) to it (RFC 3261 §12.2.2, RFC 3311 §5.2).
func TestTargetRefresh(t *testing.T) {
	for _, method := range []sip.RequestMethod{sip.INVITE, sip.UPDATE} {
		t.Run(method.String(), func(t *testing.T) {
			h := newHarness(t)
			u := newUAC(t, h.addr)
			moved := newUAC(t, h.addr) // where the caller's dialog moves to
			tc := u.answeredCall(offer(4000, "0"))
			h.conv()
			newContact := moved.dua.ContactHDR
			res := tc.inDialog(t, method, offer(4000, "0"), &newContact)
			require.Equal(t, sip.StatusOK, res.StatusCode)
			require.Eventually(t, func() bool { return len(h.logs.lines("remote target refreshed")) == 1 }, wait, 5*time.Millisecond)

			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			h.srv.HangupAll(ctx)
			bye := moved.nextBye()
			require.Equal(t, tc.dlg.InviteRequest.CallID().Value(), bye.CallID().Value())
			require.Equal(t, newContact.Address.Port, bye.Recipient.Port, "Request-URI is the new target")
			require.Empty(t, u.byes, "nothing goes to the old target")
			h.waitIdle()
		})
	}
}

// TestInfoDTMF: SIP INFO digits reach the conversation like RFC 4733 ones.
func TestInfoDTMF(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	tc := u.answeredCall(offer(4000, "0"))
	conv := h.conv()
	info := func(ct, body string) *sip.Response {
		req := sip.NewRequest(sip.INFO, tc.dlg.InviteResponse.Contact().Address)
		if ct != "" {
			req.AppendHeader(sip.NewHeader("Content-Type", ct))
		}
		if body != "" {
			req.SetBody([]byte(body))
		}
		return tc.do(req)
	}
	tests := []struct {
		ct, body string
		status   int
		digit    rune
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", 200, '5'},
		{"application/dtmf-relay", "signal= #\nduration=250", 200, '#'},
		{"application/dtmf-relay", "Signal=10\r\nDuration=100", 200, '*'},
		{"application/dtmf", "7", 200, '7'},
		{"application/dtmf", " d \r\n", 200, 'D'},
		{"", "", 200, 0}, // empty INFO: a keep-alive
		{"application/dtmf-relay", "Signal=X\r\n", 400, 0},
		{"application/dtmf-relay", "Duration=160", 400, 0},
		{"text/plain", "5", 415, 0},
		{"application/json", `{"digit":"5"}`, 415, 0},
	}
	for _, c := range tests {
		res := info(c.ct, c.body)
		require.Equal(t, c.status, res.StatusCode, "%s %q", c.ct, c.body)
		if c.status == 415 {
			require.Equal(t, "application/dtmf-relay, application/dtmf", hdr(res, "Accept"))
		}
		if c.digit == 0 {
			continue
		}
		select {
		case d := <-conv.dtmf:
			require.Equal(t, c.digit, d, "%q", c.body)
		case <-time.After(wait):
			t.Fatalf("digit of %q not delivered", c.body)
		}
	}
	require.Empty(t, conv.dtmf, "rejected bodies deliver nothing")
	tc.bye()
	h.waitIdle()
}

func TestParseDTMFBodies(t *testing.T) {
	tests := []struct {
		body  string
		digit rune
		dur   int
		ok    bool
	}{
		{"Signal=5\r\nDuration=160\r\n", '5', 160, true},
		{"Signal=*", '*', 0, true},
		{"Signal=11\nDuration=0", '#', 0, true},
		{"Duration=100\r\nSignal=a\r\n", 'A', 100, true},
		{"Signal=15", 'D', 0, true},
		{"Signal=16", 0, 0, false},
		{"Signal=55", 0, 0, false},
		{"Signal=", 0, 0, false},
		{"Signal=5\r\nDuration=-1", 0, 0, false},
		{"Signal=5\r\nDuration=lots", 0, 0, false},
		{"", 0, 0, false},
		{strings.Repeat("x", 2000) + "\nSignal=5", 0, 0, false},
	}
	for _, tc := range tests {
		d, dur, err := parseDTMFRelay([]byte(tc.body))
		if !tc.ok {
			require.ErrorIs(t, err, errDTMFBody, "%.40q", tc.body)
			continue
		}
		require.NoError(t, err, "%q", tc.body)
		require.Equal(t, tc.digit, d)
		require.Equal(t, tc.dur, dur)
	}
	d, err := parseDTMFPlain([]byte("#\r\n"))
	require.NoError(t, err)
	require.Equal(t, '#', d)
	_, err = parseDTMFPlain([]byte("17"))
	require.ErrorIs(t, err, errDTMFBody)
}

func FuzzParseDTMFRelay(f *testing.F) {
	for _, s := range []string{"Signal=5\r\nDuration=160", "Signal=#", "signal = 10", "=\n=", "Signal=5\nSignal=6", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, dur, err := parseDTMFRelay(b)
		if err != nil {
			return
		}
		require.Contains(t, "0123456789*#ABCD", string(d))
		require.GreaterOrEqual(t, dur, 0)
		require.LessOrEqual(t, dur, 60000)
	})
}

// TestReInviteSessionTimer: a re-INVITE is a refresh under the same rules
// (422 too), and glares with our own refresh re-INVITE get 491.
func TestReInviteSessionTimer(t *testing.T) {
	h := newHarness(t, withTimers(0, 60*time.Second))
	u := newUAC(t, h.addr)
	tc := u.answeredCall(offer(4000, "0"))
	h.conv()
	res := tc.inDialog(t, sip.INVITE, offer(4000, "0"), sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "10"))
	require.Equal(t, 422, res.StatusCode)
	require.Equal(t, "60", hdr(res, "Min-SE"))
	res = tc.inDialog(t, sip.INVITE, offer(4000, "0"), sip.NewHeader("Require", "timer"), sip.NewHeader("Session-Expires", "600;refresher=uac"))
	require.Equal(t, sip.StatusOK, res.StatusCode)
	require.Equal(t, "600;refresher=uac", hdr(res, "Session-Expires"))
	// A re-INVITE from a caller without timers: none in the 2xx.
	res = tc.inDialog(t, sip.INVITE, offer(4000, "0"))
	require.Equal(t, sip.StatusOK, res.StatusCode)
	require.Empty(t, hdr(res, "Session-Expires"))

	c := onlyCall(t, h)
	c.leg.timer.offering.Store(true)
	res = tc.inDialog(t, sip.INVITE, offer(4000, "0"))
	require.Equal(t, sip.StatusRequestPending, res.StatusCode, "RFC 3261 §14.2 glare")
	res = tc.inDialog(t, sip.UPDATE, offer(4000, "0"))
	require.Equal(t, sip.StatusRequestPending, res.StatusCode, "RFC 3311 §5.2")
	res = tc.inDialog(t, sip.UPDATE, "")
	require.Equal(t, sip.StatusOK, res.StatusCode, "a refresh without offer is fine")
	c.leg.timer.offering.Store(false)
	tc.bye()
	h.waitIdle()
}

// onlyCall is the server's one active call.
func onlyCall(t *testing.T, h *harness) *call {
	t.Helper()
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	require.Len(t, h.srv.calls, 1)
	for c := range h.srv.calls {
		return c
	}
	return nil
}

func (s *testStream) remoteAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remote
}

// TestSessionTimerHoldsNoGoroutine: an answered call whose session timer is
// armed (we refresh, half an hour away) runs three goroutines of the sip
// layer (the call's loop, the conversation's Run and the media's Run), not
// a fourth waiting for the timer: the refresh runs on a goroutine of its
// own only when it is due (issue 10, stack memory per call).
func TestSessionTimerHoldsNoGoroutine(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tc, err := u.invite(ctx, offer(4000, "0"), sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "1800;refresher=uas"))
	require.NoError(t, err)
	require.NoError(t, tc.dlg.Ack(ctx))
	h.conv()
	require.Equal(t, "1800;refresher=uas", hdr(tc.dlg.InviteResponse, "Session-Expires"))
	st := h.media.stream(0)
	for !st.running.Load() {
		select {
		case <-ctx.Done():
			t.Fatal("media not started")
		case <-time.After(5 * time.Millisecond):
		}
	}
	// The media's Run has started: every goroutine of the call exists.
	var callStacks []string
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "sipbridge/sip.(*call).") || strings.Contains(g, "sipbridge/sip.(*leg).") {
			callStacks = append(callStacks, g)
		}
	}
	require.Len(t, callStacks, 3, "goroutines of the call:\n%s", strings.Join(callStacks, "\n\n"))
	tc.bye()
	h.waitIdle()
}

// next is what the timer does next and when (tests only).
func (t *sessionTimer) next() (timerAction, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nextLocked()
}
