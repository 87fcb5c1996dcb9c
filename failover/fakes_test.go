package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipbridge/sipbridge/realtime"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor is generous: tests assert on order and content, never on speed.
const waitFor = 10 * time.Second

// ---- fake clock ---------------------------------------------------------

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ---- fake session -------------------------------------------------------

type call struct {
	op         string // append create_item truncate create_response cancel clear commit delete update close
	item       realtime.Item
	params     realtime.ResponseParams
	audio      []byte
	itemID     string
	audioEndMs int
	respID     string
	prev       string // create_item's previous_item_id
}

// fakeSession is a scriptable realtime.Session: it records every call, and
// the test pushes server events and ends it.
type fakeSession struct {
	id      string
	region  string
	dialect realtime.Dialect
	expires time.Time
	cfg     realtime.SessionConfig

	events chan *realtime.ServerEvent
	done   chan struct{}

	mu                sync.Mutex
	calls             []call
	err               error
	ended             bool
	keepOpenOnClose   bool // Close does not end the stream (a slow close)
	discardAudio      bool // AppendAudio takes audio without recording it (allocation tests)
	queueFull         bool // AppendAudio refuses frames as a live session with a full send queue does
	createItemErr     error
	blockCreateItem   bool          // CreateItem waits for its ctx
	createItemBlocked chan struct{} // closed when a blocked CreateItem started waiting
	// Item acknowledgements, as the real service sends them: every created
	// item is echoed with conversation.item.added, unless noItemAck, or
	// refused with an error naming its create's event_id when refuseItem
	// says so.
	noItemAck  bool
	refuseItem func(realtime.Item) *realtime.ErrorDetail
}

func newFakeSession(id, region string) *fakeSession {
	return &fakeSession{id: id, region: region, events: make(chan *realtime.ServerEvent, 512), done: make(chan struct{})}
}

func (f *fakeSession) ID() string                           { return f.id }
func (f *fakeSession) Region() string                       { return f.region }
func (f *fakeSession) Dialect() realtime.Dialect            { return f.dialect }
func (f *fakeSession) ExpiresAt() time.Time                 { return f.expires }
func (f *fakeSession) Events() <-chan *realtime.ServerEvent { return f.events }
func (f *fakeSession) Done() <-chan struct{}                { return f.done }

func (f *fakeSession) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fakeSession) record(c call) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return realtime.ErrSessionClosed
	}
	f.calls = append(f.calls, c)
	return nil
}

func (f *fakeSession) AppendAudio(frame []byte) bool {
	f.mu.Lock()
	discard, full := f.discardAudio, f.queueFull
	f.mu.Unlock()
	if discard {
		return true
	}
	if full {
		return false // a live session whose send queue is full refuses the frame
	}
	return f.record(call{op: "append", audio: append([]byte(nil), frame...)}) == nil
}
func (f *fakeSession) CommitAudio(context.Context) error { return f.record(call{op: "commit"}) }
func (f *fakeSession) ClearAudio(context.Context) error  { return f.record(call{op: "clear"}) }
func (f *fakeSession) UpdateSession(context.Context, realtime.SessionConfig) error {
	return f.record(call{op: "update"})
}

func (f *fakeSession) CreateItem(ctx context.Context, item realtime.Item, prev string) error {
	f.mu.Lock()
	block, cerr := f.blockCreateItem, f.createItemErr
	f.mu.Unlock()
	if block {
		f.mu.Lock()
		if f.createItemBlocked != nil {
			close(f.createItemBlocked)
			f.createItemBlocked = nil
		}
		f.mu.Unlock()
		<-ctx.Done()
		return ctx.Err()
	}
	if cerr != nil {
		return cerr
	}
	if err := f.record(call{op: "create_item", item: item, prev: prev}); err != nil {
		return err
	}
	f.mu.Lock()
	noAck, refuse := f.noItemAck, f.refuseItem
	f.mu.Unlock()
	switch {
	case noAck:
	case refuse != nil && refuse(item) != nil:
		d := *refuse(item)
		d.EventID = realtime.ItemCreateEventID(item.ID)
		f.push(realtime.ServerEvent{Type: realtime.EvError, Error: &d})
	default:
		echo := item
		echo.Content = nil
		for _, p := range item.Content {
			p.Audio = nil // the service does not echo audio bytes
			echo.Content = append(echo.Content, p)
		}
		f.push(realtime.ServerEvent{Type: realtime.EvItemAdded, PreviousItemID: prev, Item: &echo})
	}
	return nil
}

func (f *fakeSession) DeleteItem(_ context.Context, id string) error {
	return f.record(call{op: "delete", itemID: id})
}

func (f *fakeSession) Truncate(_ context.Context, id string, _ int, endMs int) error {
	return f.record(call{op: "truncate", itemID: id, audioEndMs: endMs})
}

func (f *fakeSession) CreateResponse(_ context.Context, p realtime.ResponseParams) error {
	return f.record(call{op: "create_response", params: p})
}

func (f *fakeSession) CancelResponse(_ context.Context, id string) error {
	return f.record(call{op: "cancel", respID: id})
}

func (f *fakeSession) Close() error {
	f.mu.Lock()
	f.calls = append(f.calls, call{op: "close"})
	keep := f.keepOpenOnClose
	f.mu.Unlock()
	if !keep {
		f.end(&realtime.CloseError{Code: 1000, Reason: "client closed"})
	}
	return nil
}

// end ends the session with err (its Err); later pushes are dropped.
func (f *fakeSession) end(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return
	}
	f.ended, f.err = true, err
	close(f.events)
	close(f.done)
}

// push delivers server events; it reports false once the session ended.
func (f *fakeSession) push(evs ...realtime.ServerEvent) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return false
	}
	for _, ev := range evs {
		f.events <- &ev
	}
	return true
}

func (f *fakeSession) ops(op string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.op == op {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSession) closed() bool { return len(f.ops("close")) > 0 }

// appended is all caller audio the session received.
func (f *fakeSession) appended() []byte {
	var b []byte
	for _, c := range f.ops("append") {
		b = append(b, c.audio...)
	}
	return b
}

func (f *fakeSession) items() []realtime.Item {
	var out []realtime.Item
	for _, c := range f.ops("create_item") {
		out = append(out, c.item)
	}
	return out
}

func (f *fakeSession) responses() []realtime.ResponseParams {
	var out []realtime.ResponseParams
	for _, c := range f.ops("create_response") {
		out = append(out, c.params)
	}
	return out
}

// ---- fake dialer --------------------------------------------------------

type dialStep struct {
	sess *fakeSession
	err  error
	gate chan struct{} // the dial waits for it (or its ctx)
}

type dialRecord struct {
	region string
	cfg    realtime.SessionConfig
}

// fakeDialer returns scripted results per region; with no script left it
// opens a new fake session.
type fakeDialer struct {
	mu       sync.Mutex
	script   map[string][]dialStep
	dials    []dialRecord
	sessions []*fakeSession
	n        int
	expires  func(region string) time.Time
}

func newFakeDialer() *fakeDialer { return &fakeDialer{script: map[string][]dialStep{}} }

func (d *fakeDialer) then(region string, steps ...dialStep) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.script[region] = append(d.script[region], steps...)
}

func (d *fakeDialer) Dial(ctx context.Context, region Region, cfg realtime.SessionConfig) (realtime.Session, error) {
	step := d.take(region, cfg)
	if step.gate != nil {
		select {
		case <-step.gate:
		case <-ctx.Done():
			return nil, &realtime.DialError{Region: region.Name, Err: ctx.Err()}
		}
	}
	return d.finish(region, cfg, step)
}

// take records a dial and returns its scripted step.
func (d *fakeDialer) take(region Region, cfg realtime.SessionConfig) dialStep {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials = append(d.dials, dialRecord{region: region.Name, cfg: cfg})
	var step dialStep
	if s := d.script[region.Name]; len(s) > 0 {
		step, d.script[region.Name] = s[0], s[1:]
	}
	return step
}

// finish completes a dial whose gate (if any) is open.
func (d *fakeDialer) finish(region Region, cfg realtime.SessionConfig, step dialStep) (realtime.Session, error) {
	if step.err != nil {
		return nil, step.err
	}
	s := step.sess
	d.mu.Lock()
	defer d.mu.Unlock()
	if s == nil {
		d.n++
		s = newFakeSession(fmt.Sprintf("sess_%s_%d", region.Name, d.n), region.Name)
		if d.expires != nil {
			s.expires = d.expires(region.Name)
		}
	}
	s.cfg = cfg
	d.sessions = append(d.sessions, s)
	return s, nil
}

func (d *fakeDialer) dialed() []dialRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dialRecord(nil), d.dials...)
}

func (d *fakeDialer) opened() []*fakeSession {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*fakeSession(nil), d.sessions...)
}

// ---- fake player --------------------------------------------------------

type play struct {
	item  string
	audio []byte
}

type fakePlayer struct {
	mu      sync.Mutex
	plays   []play
	flushes int
	played  map[string]int
}

func newFakePlayer() *fakePlayer { return &fakePlayer{played: map[string]int{}} }

func (p *fakePlayer) Play(itemID string, audio []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plays = append(p.plays, play{itemID, append([]byte(nil), audio...)})
}

func (p *fakePlayer) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushes++
}

func (p *fakePlayer) PlayedMs(itemID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.played[itemID]
}

func (p *fakePlayer) setPlayed(itemID string, ms int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.played[itemID] = ms
}

func (p *fakePlayer) bytesFor(itemID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, x := range p.plays {
		if x.item == itemID {
			n += len(x.audio)
		}
	}
	return n
}

func (p *fakePlayer) flushCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flushes
}

// ---- log capture ----------------------------------------------------------

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON log records whose msg is msg.
func (l *lockedBuffer) lines(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(l.b.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// ---- harness ------------------------------------------------------------

const (
	bpm   = 8   // PCMU bytes per ms
	frame = 160 // 20 ms
)

func testSessionConfig() realtime.SessionConfig {
	return realtime.SessionConfig{
		Instructions: "You are the clinic's phone agent.",
		Voice:        "marin",
		InputFormat:  realtime.FormatPCMU,
		OutputFormat: realtime.FormatPCMU,
		TurnDetection: &realtime.TurnDetection{Type: "server_vad", SilenceDurationMs: 500,
			CreateResponse: true, InterruptResponse: true},
		Tools: []realtime.Tool{
			{Name: "end_call", Description: "End the call"},
			{Name: "transfer_call", Parameters: json.RawMessage(`{"type":"object","properties":{"target":{"type":"string"}}}`)},
		},
	}
}

func testRegions(standby ...string) []Region {
	regs := []Region{{Name: "A"}, {Name: "B"}, {Name: "C"}}
	for i := range regs {
		for _, s := range standby {
			if regs[i].Name == s {
				regs[i].WarmStandby = true
			}
		}
	}
	return regs
}

// harness drives a Conversation synchronously on the test goroutine: no
// Run loop, no ticker. It is the conversation's shell for tests: it
// carries out the effects the handlers record (dials from the fake
// dialer's script, session events from the fake sessions, controls into a
// slice), and after every step delivers whatever inputs are ready and runs
// one watchdog tick, until nothing more happens. Tests therefore read the
// outcome of each step at once: nothing sleeps or polls.
type harness struct {
	t      *testing.T
	cfg    Config
	conv   *Conversation
	pool   *Pool
	dialer *fakeDialer
	player *fakePlayer
	clock  *fakeClock
	m      *Metrics
	reg    *prometheus.Registry
	logs   *lockedBuffer
	ctx    context.Context //nolint:containedctx // the call's context, as Run would have it
	cancel context.CancelFunc

	ctls    []Control
	watched []*session    // sessions whose events are delivered (fxWatch)
	dials   []pendingDial // dials not yet answered (a closed gate holds them)
	tools   []ToolCall    // custom tool calls started (fxRunTool)
	toolOut chan message  // their outputs
	toolWG  sync.WaitGroup
	stopped bool
	result  error
	obs     Observer
}

type pendingDial struct {
	fx   fxDial
	step dialStep
}

type harnessOpt func(*harness)

func newHarness(t *testing.T, cfg Config, regions []Region, opts ...harnessOpt) *harness {
	t.Helper()
	if cfg.Session.Instructions == "" {
		cfg.Session = testSessionConfig()
	}
	h := &harness{t: t, cfg: cfg, dialer: newFakeDialer(), player: newFakePlayer(), clock: newFakeClock(),
		reg: prometheus.NewRegistry(), logs: &lockedBuffer{}, toolOut: make(chan message, 64)}
	h.m = NewMetrics(h.reg)
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.pool = NewPool(regions, HealthConfig{Window: time.Minute, MinSamples: 4, FailureRatio: 0.5, CoolDown: 30 * time.Second, Now: h.clock.Now}, h.m, log)
	for _, o := range opts {
		o(h)
	}
	h.conv = NewConversation(Params{CallID: "call-1", Config: cfg, Pool: h.pool, Dialer: h.dialer,
		Logger: log, Metrics: h.m, Now: h.clock.Now, Observer: h.obs})
	h.conv.player = h.player // what Run(ctx, player) does
	return h
}

// start does what Run does before its loop: the first connect attempt.
func (h *harness) start() {
	h.ctx, h.cancel = context.WithCancel(context.Background())
	require.True(h.t, h.conv.started.CompareAndSwap(false, true))
	h.t.Cleanup(func() {
		if !h.stopped {
			h.stop()
		}
	})
	for _, e := range h.conv.begin(h.ctx) {
		h.exec(e)
	}
	h.pump()
}

// stop ends the call as Run does when its context ends, and returns Run's
// result.
func (h *harness) stop() error {
	h.t.Helper()
	require.False(h.t, h.stopped, "stopped twice")
	h.stopped = true
	h.cancel()
	h.conv.teardown(h.exec)
	h.toolWG.Wait()
	h.result = h.conv.result
	return h.result
}

// exec is the test shell's effect executor.
func (h *harness) exec(e effect) {
	switch e := e.(type) {
	case fxDial:
		h.dials = append(h.dials, pendingDial{fx: e, step: h.dialer.take(e.Region, h.conv.cfg.Session)})
	case fxWatch:
		h.watched = append(h.watched, e.S)
	case fxClose:
		_ = e.S.Close()
	case fxEmit:
		h.ctls = append(h.ctls, e.Ctl)
	case fxRunTool:
		h.tools = append(h.tools, e.Call)
		runner, ctx, call := h.conv.fn.tools.runner, h.conv.ctx, e.Call
		h.toolWG.Add(1)
		go func() {
			defer h.toolWG.Done()
			h.toolOut <- message{kind: msgTool, callID: call.CallID, detail: runner.Run(ctx, call)}
		}()
	default:
		h.t.Fatalf("unknown effect %T", e)
	}
}

// run steps the conversation with one input and carries out its effects.
func (h *harness) run(in input) {
	for _, e := range h.conv.step(in) {
		h.exec(e)
	}
}

// deliver handles one ready input, if any: a dial whose gate is open,
// caller audio, a message, a session event. Tool outputs come only when
// the test asks (toolResult), so their order is the test's.
func (h *harness) deliver() bool {
	c := h.conv
	for i, d := range h.dials {
		if d.step.gate != nil {
			select {
			case <-d.step.gate:
			default:
				continue
			}
		}
		h.dials = append(h.dials[:i:i], h.dials[i+1:]...)
		s, err := h.dialer.finish(d.fx.Region, c.cfg.Session, d.step)
		lease := d.fx.Lease
		if err != nil && lease != nil { // as startDial does
			lease.Release()
			lease = nil
		}
		res := dialResult{gen: d.fx.Gen, purpose: d.fx.Purpose, region: d.fx.Region, s: s, err: err, lease: lease}
		h.run(dialInput(res))
		return true
	}
	select {
	case f := <-c.audioIn:
		h.run(input{kind: inCallerAudio, frame: f})
		return true
	case m := <-c.msgs:
		h.run(messageInput(*m))
		return true
	default:
	}
	for i, ss := range h.watched {
		select {
		case <-ss.stop:
			h.watched = append(h.watched[:i:i], h.watched[i+1:]...)
			return true
		default:
		}
		select {
		case ev, ok := <-ss.s.Events():
			se := sessEvent{gen: ss.gen, ev: ev}
			if !ok {
				h.watched = append(h.watched[:i:i], h.watched[i+1:]...)
				se = sessEvent{gen: ss.gen, end: true, err: ss.s.Err()}
			}
			h.run(c.sessionInput(se))
			return true
		default:
		}
	}
	return false
}

// pump delivers every ready input, then ticks the watchdogs once, until a
// tick leads to nothing new.
func (h *harness) pump() {
	h.t.Helper()
	require.False(h.t, h.stopped, "the call has ended")
	for range 1000 {
		for h.deliver() {
		}
		h.run(input{kind: inTick})
		if !h.deliver() {
			return
		}
	}
	h.t.Fatal("the conversation does not settle")
}

func (h *harness) controlsOf(k ControlKind) []Control {
	var out []Control
	for _, c := range h.ctls {
		if c.Kind == k {
			out = append(out, c)
		}
	}
	return out
}

// waitControl returns the first control of kind k, which must have been
// emitted.
func (h *harness) waitControl(k ControlKind) Control {
	h.t.Helper()
	h.pump()
	require.NotEmpty(h.t, h.controlsOf(k), "control %d", k)
	return h.controlsOf(k)[0]
}

// metric reads a counter or gauge from the harness registry; kv are label
// name/value pairs that must all match.
func (h *harness) metric(name string, kv ...string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	require.NoError(h.t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			match := len(labels) == len(kv)/2
			for i := 0; match && i+1 < len(kv); i += 2 {
				match = labels[kv[i]] == kv[i+1]
			}
			if !match {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// actor runs fn on the conversation once every ready input was handled.
func (h *harness) actor(fn func(c *Conversation)) {
	h.t.Helper()
	h.pump()
	fn(h.conv)
}

// waitActor asserts cond once every ready input was handled.
func (h *harness) waitActor(cond func(c *Conversation) bool, msg string) {
	h.t.Helper()
	h.pump()
	require.True(h.t, cond(h.conv), msg)
}

// session returns the n-th (1-based) session the dialer opened.
func (h *harness) session(n int) *fakeSession {
	h.t.Helper()
	h.pump()
	require.GreaterOrEqual(h.t, len(h.dialer.opened()), n, "session %d", n)
	return h.dialer.opened()[n-1]
}

// waitActive asserts that s carries the call.
func (h *harness) waitActive(s *fakeSession) {
	h.t.Helper()
	h.waitActor(func(c *Conversation) bool {
		return c.state == stActive && c.active != nil && c.active.s == realtime.Session(s)
	}, "session "+s.id+" active")
}

// push delivers events to the live session s and handles them.
func (h *harness) push(s *fakeSession, evs ...realtime.ServerEvent) {
	h.t.Helper()
	require.True(h.t, s.push(evs...), "session %s ended", s.id)
	h.pump()
}

// write sends caller frames and handles them.
func (h *harness) write(frames ...[]byte) {
	h.t.Helper()
	for _, f := range frames {
		h.conv.WriteCallerAudio(f)
		// One at a time: the queue holds 5 s, a test may send more.
		for h.deliver() {
		}
	}
	h.pump()
}

// advance moves the clock and runs the watchdogs.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	h.pump()
}

// toolResult waits for the next custom tool output (its runner is released
// by the test) and handles it.
func (h *harness) toolResult() {
	h.t.Helper()
	select {
	case m := <-h.toolOut:
		h.run(messageInput(m))
	case <-time.After(waitFor):
		h.t.Fatal("no tool output")
	}
	h.pump()
}

func frameOf(b byte) []byte { return bytes.Repeat([]byte{b}, frame) }

func framesOf(b byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = frameOf(b)
	}
	return out
}

func concat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// userTurn: the caller says frames, the server VAD commits them as itemID.
// It returns the audio of the turn.
func (h *harness) userTurn(s *fakeSession, itemID string, b byte, n int) []byte {
	h.t.Helper()
	startMs := len(s.appended()) / bpm
	fr := framesOf(b, n)
	h.write(fr...)
	endMs := len(s.appended()) / bpm
	h.push(s,
		realtime.ServerEvent{Type: realtime.EvInputSpeechStarted, ItemID: itemID, AudioStartMs: startMs},
		realtime.ServerEvent{Type: realtime.EvInputSpeechStopped, ItemID: itemID, AudioEndMs: endMs},
		realtime.ServerEvent{Type: realtime.EvInputCommitted, ItemID: itemID},
		realtime.ServerEvent{Type: realtime.EvItemAdded, Item: &realtime.Item{ID: itemID, Type: "message", Role: "user",
			Content: []realtime.ContentPart{{Type: "input_audio"}}}},
	)
	return concat(fr...)
}

func created(respID string) realtime.ServerEvent {
	return realtime.ServerEvent{Type: realtime.EvResponseCreated, Response: &realtime.ResponseInfo{ID: respID, Status: realtime.StatusInProgress}}
}

func done(respID, status string, errDetail *realtime.ErrorDetail) realtime.ServerEvent {
	r := &realtime.ResponseInfo{ID: respID, Status: status}
	if errDetail != nil {
		r.StatusDetails = &realtime.StatusDetails{Type: status, Error: errDetail}
	}
	return realtime.ServerEvent{Type: realtime.EvResponseDone, Response: r}
}

// speak: the model starts an audio answer itemID in respID with transcript
// and audioMs of audio (in 100 ms deltas).
func (h *harness) speak(s *fakeSession, respID, itemID, transcript string, audioMs int) {
	h.t.Helper()
	evs := []realtime.ServerEvent{
		{Type: realtime.EvOutputItemAdded, ResponseID: respID, Item: &realtime.Item{ID: itemID, Type: "message", Role: "assistant"}},
		{Type: realtime.EvItemAdded, Item: &realtime.Item{ID: itemID, Type: "message", Role: "assistant"}},
		{Type: realtime.EvOutputAudioTranscriptDelta, ResponseID: respID, ItemID: itemID, Delta: transcript},
	}
	for left := audioMs; left > 0; left -= 100 {
		evs = append(evs, realtime.ServerEvent{Type: realtime.EvOutputAudioDelta, ResponseID: respID, ItemID: itemID,
			Audio: bytes.Repeat([]byte{0x55}, min(left, 100)*bpm)})
	}
	h.push(s, evs...)
}

// finishSpeech ends the answer's audio item.
func (h *harness) finishSpeech(s *fakeSession, respID, itemID, transcript string) {
	h.t.Helper()
	h.push(s,
		realtime.ServerEvent{Type: realtime.EvOutputAudioDone, ResponseID: respID, ItemID: itemID},
		realtime.ServerEvent{Type: realtime.EvOutputAudioTranscriptDone, ResponseID: respID, ItemID: itemID, Transcript: transcript},
		realtime.ServerEvent{Type: realtime.EvOutputItemDone, ResponseID: respID, Item: &realtime.Item{ID: itemID, Type: "message", Role: "assistant", Status: "completed"}},
	)
}

// answer is a whole answer, completed and played out.
func (h *harness) answer(s *fakeSession, respID, itemID, transcript string, audioMs int) {
	h.t.Helper()
	h.push(s, created(respID))
	h.speak(s, respID, itemID, transcript, audioMs)
	h.finishSpeech(s, respID, itemID, transcript)
	h.push(s, done(respID, realtime.StatusCompleted, nil))
	h.player.setPlayed(itemID, audioMs)
	h.conv.PlayoutDone(itemID, audioMs)
	h.waitActor(func(c *Conversation) bool { return !c.isPlaying() }, "played out")
}

// startActive builds a harness, starts it and waits until its first session
// carries the call.
func startActive(t *testing.T, cfg Config, regions []Region, opts ...harnessOpt) (*harness, *fakeSession) {
	t.Helper()
	h := newHarness(t, cfg, regions, opts...)
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	return h, s1
}

// stepFx steps the conversation with in, returns the effects of that step
// (before carrying them out) and then lets it settle.
func (h *harness) stepFx(in input) []effect {
	h.t.Helper()
	h.pump()
	fx := slices.Clone(h.conv.step(in))
	for _, e := range fx {
		h.exec(e)
	}
	h.pump()
	return fx
}

// frameInput is one caller frame as the actor takes it.
func (h *harness) frameInput(b byte) input {
	f := h.conv.getFrame(frame)
	copy(*f, frameOf(b))
	return input{kind: inCallerAudio, frame: f}
}

// effectKinds names the effects, for tables.
func effectKinds(fx []effect) []string {
	out := []string{}
	for _, e := range fx {
		out = append(out, strings.TrimPrefix(fmt.Sprintf("%T", e), "failover."))
	}
	return out
}

// describe renders effects as short lines for tables: "dial swap B",
// "watch sess_B_2", "close sess_A_1", "emit swap_started server_error_event".
func describe(fx []effect) []string {
	out := []string{}
	for _, e := range fx {
		switch e := e.(type) {
		case fxDial:
			p := map[dialPurpose]string{dialSwap: "swap", dialSpare: "spare", dialHedge: "hedge"}[e.Purpose]
			out = append(out, "dial "+p+" "+e.Region.Name)
		case fxWatch:
			out = append(out, "watch "+e.S.s.ID())
		case fxClose:
			out = append(out, "close "+e.S.ID())
		case fxEmit:
			k := map[ControlKind]string{ControlEndCall: "end_call", ControlTransfer: "transfer", ControlGiveUp: "give_up",
				ControlSwapStarted: "swap_started", ControlSwapFinished: "swap_finished"}[e.Ctl.Kind]
			out = append(out, strings.TrimSpace("emit "+k+" "+e.Ctl.Reason))
		case fxRunTool:
			out = append(out, "run_tool "+e.Call.Name)
		}
	}
	return out
}
