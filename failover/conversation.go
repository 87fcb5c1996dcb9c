package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// Params builds a Conversation.
type Params struct {
	CallID  string
	Config  Config
	Pool    *Pool
	Dialer  Dialer
	Logger  *slog.Logger
	Metrics *Metrics
	Now     func() time.Time // nil = time.Now
	// Tools runs the custom functions the model may call (webhooks); nil: none.
	Tools ToolRunner
	// Observer receives the call's sessions, responses and swaps for its
	// record; nil: none.
	Observer Observer
}

// Queue sizes and internal timings.
const (
	// callerQueueFrames bounds WriteCallerAudio's queue: 5 s of 20 ms frames,
	// enough to ride out a replay without dropping.
	callerQueueFrames = 250
	msgQueue          = 64
	eventQueue        = 64
	controlQueue      = 16
	// defaultTick is the watchdog resolution: deadlines are compared with
	// the injected clock on every tick.
	defaultTick = 50 * time.Millisecond
	// quietTickFactor slows the tick while no deadline is armed (quiet): a
	// 50 ms tick per call was half of the actor's wake-ups at 100 calls
	// while the callers were speaking or silent, and nothing it checks then
	// needs that resolution (expiry and rotation are minutes away, standby
	// retries seconds). Every deadline is armed by an input, and the shell
	// re-reads the interval after each input.
	quietTickFactor = 5
	// replayTimeout bounds the sends of one replay.
	replayTimeout = 5 * time.Second
	// sendTimeout bounds one client event sent from the actor.
	sendTimeout = 2 * time.Second
	// dialMargin is added to the region's dial timeout for the dial context,
	// in case a Dialer does not enforce its own.
	dialMargin = 5 * time.Second
	// spareRetry is how long after a failed or dead standby the next one is
	// tried (so a region that is down is not hammered).
	spareRetry = 5 * time.Second
	// playTolMs is the playout slack: the media layer plays whole 20 ms
	// frames, so an item within one frame of its end has finished.
	playTolMs = 20
	// keepTailMs is how much caller audio is kept while the server hears no
	// speech: enough to replay the start of a turn the server had not
	// detected yet when the session failed.
	keepTailMs = 2000
	// maxTurnMs caps the kept audio of one uncommitted turn, and maxSwapMs
	// the audio buffered while no session takes it.
	maxTurnMs = 30000
	maxSwapMs = 30000
	// appendChunkMs is the size of the appends that deliver buffered audio:
	// large, so that even 60 s of it takes fewer slots than the client's
	// audio queue has (64), yet within its 64 KiB frame limit at 24 kHz.
	appendChunkMs = 1000
	// endCallSlack is added to the unplayed goodbye before ControlEndCall is
	// sent even without a playout report.
	endCallSlack = 2 * time.Second
	// metaKey tags our response.create so response.created can be matched
	// to it (the server echoes metadata, §2.6).
	metaKey = "sipbridge_req"
	// continueNote goes with the response.create after a swap that cut an
	// answer the caller was hearing.
	continueNote = "Your previous answer was cut off by a technical problem. Its part the caller heard is in the conversation. " +
		"Continue your previous answer from where it was cut off; do not repeat what was already said."
	fillerItem  = "sipbridge_filler"
	apologyItem = "sipbridge_apology"
)

type convState uint8

const (
	stConnecting convState = iota // opening the first session
	stActive                      // a session carries the call
	stSwapping                    // between sessions: caller audio is buffered
	stEnding                      // end_call accepted, the session is gone: wait for the goodbye
	stGaveUp                      // gave up
)

// Conversation is a call's one logical AI conversation. It survives the
// sessions it runs on: Run is an actor goroutine that owns the record, the
// active session, the warm standby and the swap state; every other method
// only posts to it and never blocks on the network.
type Conversation struct {
	callID    string
	cfg       Config
	pool      *Pool
	dialer    Dialer
	player    Player
	log       *slog.Logger
	m         *Metrics
	now       func() time.Time
	tickEvery time.Duration
	inBPM     int // caller audio bytes per ms
	outBPM    int // model audio bytes per ms

	audioIn     chan *[]byte
	msgs        chan *message // pointers: 64 × 8 bytes allocated whole, not 64 × 80 (issue 10)
	events      chan sessEvent
	dialResults chan dialResult
	controls    chan Control
	done        chan struct{} // closed when Run returns
	runDone     chan struct{} // closed when Run starts tearing down
	started     atomic.Bool
	frames      sync.Pool
	wg          sync.WaitGroup // every goroutine Run starts

	// Everything below is owned by the actor goroutine (Run).

	// direct is the one watched session whose events Run's loop reads
	// itself (directEvs, its Events), with no forwarder goroutine: a call
	// that never swaps runs none (issue 10, a goroutine's stack per call).
	// A session watched while it is taken gets a forwarder; the slot is
	// freed when its session ends or is closed (execLive).
	direct    *session
	directEvs <-chan *realtime.ServerEvent

	ctx    context.Context //nolint:containedctx // the call-lifetime context of Run, for sends from the actor
	cancel context.CancelFunc
	result error

	rec     *realtime.Record
	state   convState
	active  *session
	nextGen uint64
	idSeq   int
	// ready is closed once the call's first session is configured: the
	// SIP side answers the call then (answer-when-ready).
	ready     chan struct{}
	readyOnce sync.Once

	// The conversation's state, in owned parts (one file each).
	caller  callerState   // caller audio kept for replay (caller.go)
	turns   turnState     // responses asked for and running (turns.go)
	play    playoutState  // model audio handed to the player (playout.go)
	swap    swapPart      // between sessions, and the give-up count (swap.go)
	standby standbyState  // the warm standby / rotation target (standby.go)
	fn      functionState // end_call, transfers, custom tools (functions.go)
	hedge   hedgePart     // the hedge of a late turn, and the call's budget (hedge.go)
	silent  silentPart    // answers the caller cannot hear (silent.go)
	obs     observeState  // what the Observer gets (observer.go)

	observer Observer

	// fx are the effects of the step running now (see step).
	fx []effect
}

type msgKind uint8

const (
	msgPlayout msgKind = iota + 1
	msgDTMF
	msgTransfer
	msgHold
	msgTool      // a custom tool's output (tools.go)
	msgConfirmed // the SIP side received the ACK of its 200 OK
)

type message struct {
	kind   msgKind
	itemID string
	ms     int
	digit  rune
	callID string
	ok     bool
	detail string
}

// createReq is one response.create the bridge wants.
type createReq struct {
	params realtime.ResponseParams
	// plain: no instructions of its own (tool follow-up, DTMF, replayed
	// turn). A create sent at the end of a swap covers every plain one.
	plain bool
	// continuation: the answer was cut by a swap; ask to continue it.
	continuation bool
	tag          string
}

type playState struct {
	bytes    int  // model audio handed to the player for the item
	finished bool // played out (reported, or played position reached bytes)
	listed   bool // in playOrder
}

type endState struct {
	respID   string
	respDone bool      // the end_call response is done (or its session is gone)
	deadline time.Time // end even without a playout report by then
	sent     bool      // ControlEndCall emitted
}

// NewConversation prepares a conversation; Run starts it.
func NewConversation(p Params) *Conversation {
	cfg := p.Config.withDefaults()
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := p.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	now := p.Now
	if now == nil {
		now = time.Now
	}
	c := &Conversation{
		callID:      p.CallID,
		ready:       make(chan struct{}),
		cfg:         cfg,
		pool:        p.Pool,
		dialer:      p.Dialer,
		observer:    p.Observer,
		log:         log.With("call_id", p.CallID),
		m:           m,
		now:         now,
		tickEvery:   defaultTick,
		inBPM:       cfg.inputFormat().BytesPerMs(),
		outBPM:      cfg.outputFormat().BytesPerMs(),
		audioIn:     make(chan *[]byte, callerQueueFrames),
		msgs:        make(chan *message, msgQueue),
		events:      make(chan sessEvent, eventQueue),
		dialResults: make(chan dialResult),
		controls:    make(chan Control, controlQueue),
		done:        make(chan struct{}),
		runDone:     make(chan struct{}),
		rec:         realtime.NewRecord(realtime.RecordConfig{InputFormat: cfg.inputFormat(), OutputFormat: cfg.outputFormat(), KeepAudioTurns: cfg.KeepAudioTurns}),
		caller:      callerState{speechStart: map[string]int{}, speechEnd: map[string]int{}},
		turns:       turnState{respReqs: map[string]*createReq{}},
		play:        playoutState{items: map[string]*playState{}, suppressRsp: map[string]bool{}, suppressItm: map[string]bool{}},
		fn:          functionState{handled: map[string]bool{}, transfers: map[string]string{}, tools: toolState{runner: p.Tools}},
	}
	if c.pool == nil {
		c.pool = NewPool(nil, HealthConfig{Now: now}, m, log)
	}
	return c
}

// Controls delivers what the conversation asks of the call. It is closed
// when Run returns. The call must keep reading it: end-call, transfer and
// give-up wait for room; swap notices are dropped when it is full.
func (c *Conversation) Controls() <-chan Control { return c.controls }

// Ready is closed once the first realtime session is connected and
// configured, so the call can be answered with the AI already listening. If
// no region can take the call, Run returns ErrAllRegionsFailed instead.
func (c *Conversation) Ready() <-chan struct{} { return c.ready }

// isReady says whether the call's first session was ever configured.
func (c *Conversation) isReady() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

// WriteCallerAudio takes one frame of caller audio (session input format),
// copied. It never blocks: when the actor is wedged and the queue is full
// the frame is dropped and counted.
func (c *Conversation) WriteCallerAudio(frame []byte) {
	select {
	case <-c.done:
		return
	default:
	}
	buf := c.getFrame(len(frame))
	copy(*buf, frame)
	select {
	case c.audioIn <- buf:
	default:
		c.putFrame(buf)
		c.m.CallerFramesDropped.Inc()
	}
}

// PlayoutDone reports that itemID finished playing out, playedMs of it.
func (c *Conversation) PlayoutDone(itemID string, playedMs int) {
	c.post(message{kind: msgPlayout, itemID: itemID, ms: playedMs})
}

// DTMF reports a key the caller pressed: the model gets a system note
// "The caller pressed 4." and is asked to respond (Config.DTMFDisabled and
// DTMFSilent turn either off).
func (c *Conversation) DTMF(digit rune) { c.post(message{kind: msgDTMF, digit: digit}) }

// TransferResult reports the outcome of a ControlTransfer; the model gets it
// as the function_call_output of its transfer_call and is asked to respond.
func (c *Conversation) TransferResult(callID string, ok bool, detail string) {
	c.post(message{kind: msgTransfer, callID: callID, ok: ok, detail: detail})
}

// SetHold stops (true) or resumes (false) the conversation while the caller
// has put us on hold: no caller audio goes to the model, the answer in
// progress is cancelled and its playout flushed.
func (c *Conversation) SetHold(held bool) { c.post(message{kind: msgHold, ok: held}) }

// CallConfirmed tells the conversation that the caller acknowledged the
// answer (the SIP ACK). With Config.GreetAfterConfirm the greeting waits for
// it, so a call answered and never acknowledged (a flood of INVITEs that
// never ACK) never has a response created, and never bills one.
func (c *Conversation) CallConfirmed() { c.post(message{kind: msgConfirmed}) }

func (c *Conversation) post(m message) {
	select {
	case c.msgs <- &m: // allocated: a few messages per turn, none per frame
	case <-c.done:
	}
}

// getFrame and putFrame recycle frame buffers (as *[]byte, so that putting
// one back does not allocate): the 20 ms hot path allocates nothing once
// warm (style rule 10).
func (c *Conversation) getFrame(n int) *[]byte {
	if b, ok := c.frames.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

func (c *Conversation) putFrame(b *[]byte) {
	c.frames.Put(b)
}

// Run is the actor loop. It plays the model's audio on player (the call's
// media stream, which was built with the conversation as its sink). It opens
// the first session (trying candidates in order), then carries the call
// across swaps and rotations, until ctx ends.
// It returns nil, or, when it gave up after MaxSwapsInRow consecutive failed
// attempts (apology played, ControlGiveUp emitted), an error wrapping
// ErrAllRegionsFailed. After giving up it keeps serving (playout reports,
// controls) until the call, which owns the ending — the apology playing out,
// the transfer — cancels ctx: returning at once would let the call hang up
// before the caller heard the apology.
func (c *Conversation) Run(ctx context.Context, player Player) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("failover: Run called twice")
	}
	c.player = player
	if c.dialer == nil || c.player == nil {
		close(c.done)
		close(c.controls)
		return errors.New("failover: conversation needs a Dialer and a Player")
	}
	defer c.teardown(c.execLive)
	for _, e := range c.begin(ctx) {
		c.execLive(e)
	}

	interval := c.tickInterval()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	for {
		select {
		case <-c.ctx.Done():
			return c.result
		case f := <-c.audioIn:
			c.run(input{kind: inCallerAudio, frame: f})
		case m := <-c.msgs:
			c.run(messageInput(*m))
		case se := <-c.events:
			c.run(c.sessionInput(se))
		case ev, ok := <-c.directEvs:
			se := sessEvent{gen: c.direct.gen, ev: ev}
			if !ok {
				se = sessEvent{gen: c.direct.gen, end: true, err: c.direct.s.Err()}
				c.direct, c.directEvs = nil, nil
			}
			c.run(c.sessionInput(se))
		case r := <-c.dialResults:
			c.run(dialInput(r))
		case <-ticker.C:
			c.run(input{kind: inTick})
		}
		if d := c.tickInterval(); d != interval {
			interval = d
			ticker.Reset(d)
		}
	}
}

// tickInterval is the watchdog tick the actor needs now: tickEvery while a
// deadline is armed or anything but a settled active session is going on,
// quietTickFactor times slower otherwise.
func (c *Conversation) tickInterval() time.Duration {
	if c.quiet() {
		return c.tickEvery * quietTickFactor
	}
	return c.tickEvery
}

// quiet reports whether no watchdog deadline is armed: an active session
// with no answer awaited or in flight, no hedge, no ending, no swap being
// logged and no spare being dialled.
func (c *Conversation) quiet() bool {
	t := &c.turns
	return c.state == stActive &&
		t.noRespAt.IsZero() && t.firstAudioAt.IsZero() && t.midAudioAt.IsZero() && t.hedgeAt.IsZero() &&
		c.hedge.run == nil && c.fn.ending == nil && c.swap.pendingLog == nil && !c.standby.dialing
}

// run is the production shell's step: the input through the transition
// table, then its effects carried out.
func (c *Conversation) run(in input) {
	for _, e := range c.step(in) {
		c.execLive(e)
	}
}

// begin is the actor's first step: the first connect attempt.
func (c *Conversation) begin(ctx context.Context) []effect {
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.fx = c.fx[:0]
	c.state = stConnecting
	c.swap.unconfirmed = true
	c.swap.sw = &swapState{trigger: TriggerConnect, initial: true, startedAt: c.now(), tried: map[string]int{}}
	c.attempt()
	return c.fx
}

// leave is the actor's last step, when the call has ended: the pending
// swap line is written and the sessions are retired.
func (c *Conversation) leave() []effect {
	c.fx = c.fx[:0]
	c.flushSwapLog("call_ended")
	c.observeQueued()
	c.reportResponses()
	if c.active != nil {
		c.retire(c.active)
		c.active = nil
	}
	if c.standby.spare != nil {
		c.retire(c.standby.spare)
		c.standby.spare = nil
	}
	c.dropHedge("abandoned", "call_ended")
	if rp := c.replaying(); rp != nil {
		c.swap.sw.replay = nil
		c.retire(rp.ss)
	}
	return c.fx
}

// teardown ends everything Run started, carrying out the last effects
// with exec, and waits for it, so that Run returns with no goroutine of
// the conversation left.
func (c *Conversation) teardown(exec func(effect)) {
	c.cancel()
	close(c.runDone)
	for _, e := range c.leave() {
		exec(e)
	}
	c.wg.Wait()
	close(c.done)
	close(c.controls)
	// Frames still queued go back to the pool.
	for {
		select {
		case f := <-c.audioIn:
			c.putFrame(f)
		default:
			return
		}
	}
}

// emit asks something of the call (an fxEmit effect).
func (c *Conversation) emit(ctl Control) { c.do(fxEmit{Ctl: ctl}) }

// sessionLog is the call logger with the active session's region and id.
func (c *Conversation) sessionLog() *slog.Logger {
	if c.active == nil {
		return c.log
	}
	return c.log.With("region", c.active.region.Name, "session_id", c.active.s.ID())
}

func (c *Conversation) newItemID() string {
	c.idSeq++
	// Item ids are at most 32 characters (the server rejects longer).
	return fmt.Sprintf("sb_%.16s_%d", sanitizeID(c.callID), c.idSeq)
}

func sanitizeID(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 16; i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' {
			b = append(b, ch)
		}
	}
	return string(b)
}

// tickActive runs the watchdogs of the active session: stalls, expiry,
// the end of the call, rotation, the standby, the filler.
func (c *Conversation) tickActive() {
	now := c.now()
	if c.checkWatchdogs(now) {
		return
	}
	c.checkHedge(now)
	if d := c.active.deadline(); !d.IsZero() && !now.Before(d) {
		c.fail(TriggerExpiry, failInfo{err: "session reached expires_at / session limit"})
		return
	}
	c.checkEnd(now)
	c.maybeRotate(now)
	c.ensureSpare(now)
	c.maybeFiller(now)
}
