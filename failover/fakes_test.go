package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
}

// fakeSession is a scriptable realtime.Session: it records every call, and
// the test pushes server events and ends it.
type fakeSession struct {
	id      string
	region  string
	dialect realtime.Dialect
	expires time.Time
	cfg     realtime.SessionConfig

	events chan realtime.ServerEvent
	done   chan struct{}

	mu                sync.Mutex
	calls             []call
	err               error
	ended             bool
	keepOpenOnClose   bool // Close does not end the stream (a slow close)
	createItemErr     error
	blockCreateItem   bool          // CreateItem waits for its ctx
	createItemBlocked chan struct{} // closed when a blocked CreateItem started waiting
}

func newFakeSession(id, region string) *fakeSession {
	return &fakeSession{id: id, region: region, events: make(chan realtime.ServerEvent, 512), done: make(chan struct{})}
}

func (f *fakeSession) ID() string                          { return f.id }
func (f *fakeSession) Region() string                      { return f.region }
func (f *fakeSession) Dialect() realtime.Dialect           { return f.dialect }
func (f *fakeSession) ExpiresAt() time.Time                { return f.expires }
func (f *fakeSession) Events() <-chan realtime.ServerEvent { return f.events }
func (f *fakeSession) Done() <-chan struct{}               { return f.done }

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
	return f.record(call{op: "create_item", item: item})
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
		f.events <- ev
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
	d.mu.Lock()
	d.dials = append(d.dials, dialRecord{region: region.Name, cfg: cfg})
	var step dialStep
	if s := d.script[region.Name]; len(s) > 0 {
		step, d.script[region.Name] = s[0], s[1:]
	}
	d.mu.Unlock()
	if step.gate != nil {
		select {
		case <-step.gate:
		case <-ctx.Done():
			return nil, &realtime.DialError{Region: region.Name, Err: ctx.Err()}
		}
	}
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
	cancel context.CancelFunc
	runErr chan error

	ctlMu sync.Mutex
	ctls  []Control

	pushed int // events pushed to live sessions (see settle)
}

type harnessOpt func(*harness)

func newHarness(t *testing.T, cfg Config, regions []Region, opts ...harnessOpt) *harness {
	t.Helper()
	if cfg.Session.Instructions == "" {
		cfg.Session = testSessionConfig()
	}
	h := &harness{t: t, cfg: cfg, dialer: newFakeDialer(), player: newFakePlayer(), clock: newFakeClock(),
		reg: prometheus.NewRegistry(), logs: &lockedBuffer{}, runErr: make(chan error, 1)}
	h.m = NewMetrics(h.reg)
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.pool = NewPool(regions, HealthConfig{Window: time.Minute, MinSamples: 4, FailureRatio: 0.5, CoolDown: 30 * time.Second, Now: h.clock.Now}, h.m, log)
	for _, o := range opts {
		o(h)
	}
	h.conv = NewConversation(Params{CallID: "call-1", Config: cfg, Pool: h.pool, Dialer: h.dialer,
		Logger: log, Metrics: h.m, Now: h.clock.Now})
	h.conv.tickEvery = 2 * time.Millisecond
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runErr <- h.conv.Run(ctx, h.player) }()
	go func() {
		for ctl := range h.conv.Controls() {
			h.ctlMu.Lock()
			h.ctls = append(h.ctls, ctl)
			h.ctlMu.Unlock()
		}
	}()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-h.runErr:
		case <-time.After(waitFor):
			h.t.Error("Run did not return after cancel")
		}
	})
}

// stop cancels the call and returns Run's result.
func (h *harness) stop() error {
	h.cancel()
	select {
	case err := <-h.runErr:
		h.runErr <- err // for Cleanup
		return err
	case <-time.After(waitFor):
		h.t.Fatal("Run did not return")
	}
	return nil
}

func (h *harness) controls() []Control {
	h.ctlMu.Lock()
	defer h.ctlMu.Unlock()
	return append([]Control(nil), h.ctls...)
}

func (h *harness) controlsOf(k ControlKind) []Control {
	var out []Control
	for _, c := range h.controls() {
		if c.Kind == k {
			out = append(out, c)
		}
	}
	return out
}

func (h *harness) waitControl(k ControlKind) Control {
	h.t.Helper()
	require.Eventually(h.t, func() bool { return len(h.controlsOf(k)) > 0 }, waitFor, time.Millisecond, "control %d", k)
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

// actor runs fn on the actor goroutine.
func (h *harness) actor(fn func(c *Conversation)) {
	h.t.Helper()
	require.True(h.t, h.conv.inspect(func() { fn(h.conv) }), "conversation has ended")
}

// waitActor waits until cond holds on the actor goroutine.
func (h *harness) waitActor(cond func(c *Conversation) bool, msg string) {
	h.t.Helper()
	require.Eventually(h.t, func() bool {
		ok := false
		return h.conv.inspect(func() { ok = cond(h.conv) }) && ok
	}, waitFor, time.Millisecond, msg)
}

// session waits for the n-th (1-based) session the dialer opened.
func (h *harness) session(n int) *fakeSession {
	h.t.Helper()
	require.Eventually(h.t, func() bool { return len(h.dialer.opened()) >= n }, waitFor, time.Millisecond, "session %d", n)
	return h.dialer.opened()[n-1]
}

// waitActive waits until s carries the call.
func (h *harness) waitActive(s *fakeSession) {
	h.t.Helper()
	h.waitActor(func(c *Conversation) bool {
		return c.state == stActive && c.active != nil && c.active.s == realtime.Session(s)
	}, "session "+s.id+" active")
}

// push delivers events to the live session s and waits until the actor
// handled them, so the next step (audio, clock, messages) comes after.
func (h *harness) push(s *fakeSession, evs ...realtime.ServerEvent) {
	h.t.Helper()
	require.True(h.t, s.push(evs...), "session %s ended", s.id)
	h.pushed += len(evs)
	want := h.pushed
	h.waitActor(func(c *Conversation) bool { return c.evSeen >= want }, "events handled")
}

// write sends caller frames and waits until the actor took them.
func (h *harness) write(frames ...[]byte) {
	h.t.Helper()
	for _, f := range frames {
		h.conv.WriteCallerAudio(f)
	}
	h.waitActor(func(c *Conversation) bool { return len(c.audioIn) == 0 }, "caller audio taken")
}

// tick advances the clock and waits for the actor to pass a tick.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	// Two ticks after the advance: the first may have read the old time.
	for i := 0; i < 2; i++ {
		before := time.Now()
		h.waitActor(func(*Conversation) bool { return time.Since(before) > 3*h.conv.tickEvery }, "tick")
	}
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
