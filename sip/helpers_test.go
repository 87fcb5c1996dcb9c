package sip

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/media"
)

// wait is the generous bound for anything a test waits for: the suite runs
// with -race on two shared cores, and tests assert on messages and states,
// never on how fast they come.
const wait = 10 * time.Second

func TestMain(m *testing.M) {
	// sipgo timers are globals: set them once, before anything runs.
	// T1 = 50 ms makes 64·T1 (transaction timeouts) 3.2 s.
	sip.SetTimers(50*time.Millisecond, 400*time.Millisecond, 500*time.Millisecond)
	sip.UDPMTUSize = udpMTU
	if os.Getenv("SIPBRIDGE_TEST_LOG") == "" {
		sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
	}
	goleak.VerifyTestMain(m,
		// sipgo shutdown race: a message read just before a listener closes
		// is handled after the transport layer closed; finding no listener
		// in its pool, sipgo opens an ephemeral socket to answer it, which
		// nothing closes. Our server never opens one otherwise (in-dialog
		// requests leave from the listener, call.fromListener).
		goleak.IgnoreAnyFunction("github.com/emiago/sipgo/sip.(*TransportUDP).readUDPConnection"))
}

// logBuffer collects log lines for assertions (and echoes them to stderr
// with SIPBRIDGE_TEST_LOG=1).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if os.Getenv("SIPBRIDGE_TEST_LOG") != "" {
		_, _ = os.Stderr.Write(p)
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the log lines containing every one of subs.
func (l *logBuffer) lines(subs ...string) []string {
	var out []string
	for _, ln := range strings.Split(l.String(), "\n") {
		ok := true
		for _, s := range subs {
			if !strings.Contains(ln, s) {
				ok = false
				break
			}
		}
		if ok && ln != "" {
			out = append(out, ln)
		}
	}
	return out
}

// fakeConv records what the call gives it and plays audio back.
type fakeConv struct {
	info     CallInfo
	format   media.ModelFormat
	controls chan failover.Control
	// player is what Run was handed (the call's stream); playerSet is
	// closed when it is.
	player    failover.Player
	playerSet chan struct{}

	frames    chan []byte
	dtmf      chan rune
	holds     chan bool
	transfers chan transferResult
	playouts  chan string

	runStarted chan struct{}
	runDone    chan struct{}
	runErr     chan error // a value makes Run return it
	startOnce  sync.Once
	greeted    sync.Once
	greeting   []byte // played once the first caller frame arrives
}

type transferResult struct {
	callID string
	ok     bool
	detail string
}

func newFakeConv(info CallInfo) *fakeConv {
	return &fakeConv{
		info:       info,
		playerSet:  make(chan struct{}),
		controls:   make(chan failover.Control, 4),
		frames:     make(chan []byte, 4096),
		dtmf:       make(chan rune, 16),
		holds:      make(chan bool, 16),
		transfers:  make(chan transferResult, 4),
		playouts:   make(chan string, 64),
		runStarted: make(chan struct{}),
		runDone:    make(chan struct{}),
		runErr:     make(chan error, 1),
	}
}

func (f *fakeConv) WriteCallerAudio(frame []byte) {
	select {
	case f.frames <- frame:
	default:
	}
	if f.greeting != nil {
		select {
		case <-f.playerSet:
			f.greeted.Do(func() { f.player.Play("greeting", f.greeting) })
		default: // Run not started: nothing plays yet
		}
	}
}

func (f *fakeConv) AudioFormat() media.ModelFormat { return f.format }

func (f *fakeConv) Run(ctx context.Context, player failover.Player) error {
	f.startOnce.Do(func() {
		f.player = player
		close(f.playerSet)
		close(f.runStarted)
	})
	defer close(f.runDone)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-f.runErr:
		return err
	}
}

func (f *fakeConv) Controls() <-chan failover.Control { return f.controls }
func (f *fakeConv) PlayoutDone(itemID string, _ int) {
	select {
	case f.playouts <- itemID:
	default:
	}
}
func (f *fakeConv) DTMF(d rune) { f.dtmf <- d }
func (f *fakeConv) TransferResult(callID string, ok bool, detail string) {
	f.transfers <- transferResult{callID, ok, detail}
}
func (f *fakeConv) SetHold(held bool) { f.holds <- held }

// Ready: the fake is ready at once.
func (f *fakeConv) Ready() <-chan struct{} { return closedChan }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// playerOf waits for Run and returns the player it was handed.
func (f *fakeConv) playerOf(t *testing.T) failover.Player {
	t.Helper()
	select {
	case <-f.playerSet:
		return f.player
	case <-time.After(wait):
		t.Fatal("Run not started")
		return nil
	}
}

func (f *fakeConv) started() bool {
	select {
	case <-f.runStarted:
		return true
	default:
		return false
	}
}

// harness is a Server on 127.0.0.1 with test media and fake conversations.
type harness struct {
	t       *testing.T
	srv     *Server
	addr    string // udp host:port
	media   *testBackend
	convs   chan *fakeConv
	logs    *logBuffer
	reg     *prometheus.Registry
	cancel  context.CancelFunc
	served  chan error
	factory func(ctx context.Context, info CallInfo) (*fakeConv, error)
	greet   []byte
	format  media.ModelFormat // the fake conversations' audio format
	tweak   func(*Server)     // applied before Serve
	// ports, when set, gives the server the production media backend
	// (media.Stream on this allocator) instead of testStream.
	ports *media.PortAllocator
}

type harnessOpt func(*Config, *harness)

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{
		t:     t,
		media: &testBackend{},
		convs: make(chan *fakeConv, 16),
		logs:  &logBuffer{},
		reg:   prometheus.NewRegistry(),
	}
	cfg := Config{
		Listen:       []Listener{{Network: "udp", Addr: "127.0.0.1:0"}},
		UserAgent:    "sipbridge-test",
		ACKTimeout:   5 * time.Second,
		MediaTimeout: -1,
	}
	for _, o := range opts {
		o(&cfg, h)
	}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	factory := func(ctx context.Context, info CallInfo, _ *slog.Logger) (Conversation, error) {
		if h.factory != nil {
			fc, err := h.factory(ctx, info)
			if err != nil {
				return nil, err
			}
			h.convs <- fc
			return fc, nil
		}
		fc := newFakeConv(info)
		fc.greeting, fc.format = h.greet, h.format
		h.convs <- fc
		return fc, nil
	}
	mb := h.media.backend()
	if h.ports != nil {
		mb = realMedia(h.ports)
	}
	srv, err := newServer(cfg, mb, factory, log, NewMetrics(h.reg))
	require.NoError(t, err)
	h.srv = srv
	if h.tweak != nil {
		h.tweak(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.served = make(chan error, 1)
	go func() { h.served <- srv.Serve(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-h.served:
		t.Fatalf("serve: %v", err)
	}
	h.addr = srv.Addrs()[0].String()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	select {
	case err := <-h.served:
		require.NoError(h.t, err)
	case <-time.After(wait):
		h.t.Fatal("Serve did not return")
	}
	require.Equal(h.t, 0, h.srv.ActiveCalls())
	require.True(h.t, h.media.allClosed(), "RTP sockets left open")
}

// conv returns the next conversation the factory built.
func (h *harness) conv() *fakeConv {
	h.t.Helper()
	select {
	case c := <-h.convs:
		return c
	case <-time.After(wait):
		h.t.Fatal("no conversation created")
		return nil
	}
}

// endCount is sipbridge_call_end_total{reason}.
func (h *harness) endCount(r EndReason) float64 {
	return metricValue(h.srv.metrics.callEnds.WithLabelValues(r.String()))
}

// metricValue reads a counter or gauge.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

// waitEnd waits until a call ended with r (metrics are recorded last).
func (h *harness) waitEnd(r EndReason, n float64) {
	h.t.Helper()
	require.Eventually(h.t, func() bool { return h.endCount(r) >= n }, wait, 5*time.Millisecond,
		"end reason %s count", r)
}

func (h *harness) waitIdle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(h.t, h.srv.Wait(ctx))
}

// uac is a sipgo user agent client on 127.0.0.1 that also answers the
// requests our server sends it (BYE, REFER).
type uac struct {
	t      *testing.T
	ua     *sipgo.UserAgent
	client *sipgo.Client
	srv    *sipgo.Server
	dua    sipgo.DialogUA
	target string // server host:port

	byes   chan *sip.Request
	refers chan *sip.Request
	hooks  *inDialogHooks // UPDATE, re-INVITE and ACK from the server (indialog_test.go)
	// referStatus answers REFERs (202 by default).
	mu          sync.Mutex
	referStatus int
}

func newUAC(t *testing.T, target string) *uac {
	t.Helper()
	discard := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-uac"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(discard)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(discard)))
	require.NoError(t, err)
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(discard))
	require.NoError(t, err)
	// Handlers go in before the listener serves: sipgo's handler map is
	// not guarded.
	u := &uac{
		t: t, ua: ua, srv: srv, target: target,
		byes:        make(chan *sip.Request, 8),
		refers:      make(chan *sip.Request, 8),
		hooks:       newInDialogHooks(srv),
		referStatus: sip.StatusAccepted,
	}
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		u.byes <- req
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	srv.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		u.refers <- req
		u.mu.Lock()
		st := u.referStatus
		u.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, st, "Refer Response", nil))
	})
	// The UAC sends and receives on one listening socket: sipgo's ephemeral
	// client sockets can lose their reference count and never close.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	laddr := pc.LocalAddr().(*net.UDPAddr)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.ServeUDP(pc)
	}()
	require.Eventually(t, func() bool {
		c, _ := ua.TransportLayer().GetConnection("udp", laddr.String())
		return c != nil
	}, wait, time.Millisecond, "uac listener not serving")
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(discard), sipgo.WithClientConnectionAddr(laddr.String()))
	require.NoError(t, err)
	u.client = client
	u.dua = sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1", Port: laddr.Port}}}
	t.Cleanup(func() {
		_ = ua.Close()
		_ = pc.Close()
		<-served
	})
	return u
}

func (u *uac) uri(user string) sip.Uri {
	host, port, err := sip.ParseAddr(u.target)
	require.NoError(u.t, err)
	return sip.Uri{Scheme: "sip", User: user, Host: host, Port: port}
}

// call is an answered test call.
type testCall struct {
	u        *uac
	dlg      *sipgo.DialogClientSession
	answer   []byte
	statuses []int
}

// invite sends an INVITE with body and returns the dialog after the final
// response (err is the WaitAnswer error).
func (u *uac) invite(ctx context.Context, body string, hdrs ...sip.Header) (*testCall, error) {
	hdrs = append(hdrs, sip.NewHeader("Content-Type", "application/sdp"))
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	dlg, err := u.dua.Invite(ctx, u.uri("ai"), b, hdrs...)
	require.NoError(u.t, err)
	tc := &testCall{u: u, dlg: dlg}
	var mu sync.Mutex
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		mu.Lock()
		tc.statuses = append(tc.statuses, res.StatusCode)
		mu.Unlock()
		return nil
	}})
	if dlg.InviteResponse != nil {
		tc.answer = dlg.InviteResponse.Body()
	}
	return tc, err
}

// answeredCall runs INVITE → 200 → ACK.
func (u *uac) answeredCall(body string) *testCall {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tc, err := u.invite(ctx, body)
	require.NoError(u.t, err)
	require.NoError(u.t, tc.dlg.Ack(ctx))
	return tc
}

func (tc *testCall) bye() {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(tc.u.t, tc.dlg.Bye(ctx))
}

// do sends an in-dialog request from the caller and returns the final response.
func (tc *testCall) do(req *sip.Request) *sip.Response {
	tc.u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	res, err := tc.dlg.Do(ctx, req)
	require.NoError(tc.u.t, err)
	return res
}

// nextBye waits for a BYE from the server.
func (u *uac) nextBye() *sip.Request {
	u.t.Helper()
	select {
	case r := <-u.byes:
		return r
	case <-time.After(wait):
		u.t.Fatal("no BYE received")
		return nil
	}
}

// offer builds a caller SDP offer with the given m= formats and extra lines.
func offer(rtpPort int, formats string, extra ...string) string {
	s := "v=0\r\no=- 42 42 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		fmt.Sprintf("m=audio %d RTP/AVP %s\r\n", rtpPort, formats)
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s
}

// rawUDP sends raw bytes to addr and returns the responses received.
type rawUDP struct {
	t    *testing.T
	conn *net.UDPConn
}

func newRawUDP(t *testing.T, addr string) *rawUDP {
	ra, err := net.ResolveUDPAddr("udp", addr)
	require.NoError(t, err)
	c, err := net.DialUDP("udp", nil, ra)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &rawUDP{t: t, conn: c}
}

func (r *rawUDP) localPort() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

func (r *rawUDP) send(msg string) {
	_, err := r.conn.Write([]byte(msg))
	require.NoError(r.t, err)
}

// recv returns the next datagram, or "" after d.
func (r *rawUDP) recv(d time.Duration) string {
	buf := make([]byte, 65535)
	_ = r.conn.SetReadDeadline(time.Now().Add(d))
	n, err := r.conn.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// recvStatus returns the first response whose status is not 100.
func (r *rawUDP) recvFinal(d time.Duration) string {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m := r.recv(time.Until(deadline))
		if m == "" {
			return ""
		}
		if !strings.HasPrefix(m, "SIP/2.0 100 ") {
			return m
		}
	}
	return ""
}
