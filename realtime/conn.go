package realtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const (
	// eventQueueSize buffers server events for a consumer that is briefly
	// busy. When it is full the reader waits: events are never dropped.
	// It must hold a whole answer's burst of audio and transcript deltas:
	// with 64, a loaded bridge stopped reading mid-answer, the simulator
	// stopped reading our audio in turn and caller audio was dropped
	// (sipload, BENCHMARKS.md). The queue holds pointers, so its buffer
	// (allocated whole) is 4 KB a call; as 312-byte values it was 160 KB.
	eventQueueSize = 512
	// controlQueueSize bounds queued control events. They are never dropped;
	// a sender waits (until its ctx ends) when the queue is full. The queue
	// holds pointers (a message is allocated when sent, a few per turn):
	// 2 KB a session instead of 18 KB of 72-byte values allocated whole.
	controlQueueSize = 256
	// audioRingFrames is how many caller frames (appends) may wait for the
	// writer; when that many are queued AppendAudio drops the frame. The
	// failover replay sizes its appends (1 s) to stay below it.
	audioRingFrames = 64
	// audioRingMs is the caller audio the queue holds in its preallocated
	// storage (ring.go), whatever the frame size: four of the media
	// stream's 100 ms uplink chunks, so the writer may fall 300 ms behind
	// before the storage grows; in steady state it holds one chunk, which
	// the writer takes at once. More than that queued (a swap's replay in
	// 1 s appends, a stalled writer) grows the storage until the writer
	// drains it; the frame bound (audioRingFrames), not the storage, says
	// what is dropped. It was 1.28 s, 10 KB per G.711 call held for a
	// backlog that does not come (issue 10).
	audioRingMs = 400
	// maxAudioFrame rejects absurd frames instead of growing a slot for them.
	maxAudioFrame = 64 << 10
	// coalesceMs caps how much queued audio the writer merges into one append
	// when it has fallen behind. Larger appends make VAD less responsive (§2.2).
	coalesceMs = 100
	// maxKeptReadBuf: a read buffer grown past this by one large event
	// (a long response.done) is dropped rather than kept for the session.
	maxKeptReadBuf = 64 << 10
	// closeWait bounds how long Close waits for the peer's close frame.
	closeWait = 2 * time.Second
)

// Conn is one live realtime WebSocket session; it implements Session.
//
// Goroutines: one reader (reads, decodes, delivers events) and one writer
// (owns every ws.Write except the close frame). Both end when the socket
// ends; Close waits for them.
type Conn struct {
	// Set before the goroutines start (or, for id and expires, before Dial
	// returns the Conn) and never written again.
	ws        *websocket.Conn
	raw       *rawConn // the TCP connection under ws, to force it shut
	log       *slog.Logger
	region    string
	voice     string // DialConfig.Voice: this region's override
	dialect   Dialect
	id        string
	expires   time.Time
	closeWait time.Duration

	// ctx is the session lifetime. It carries no deadline (style §2.4: a
	// Read whose ctx ends closes the connection); it is cancelled only to
	// force the socket shut. ws.Read and ws.Write get ioCtx instead.
	ctx    context.Context
	cancel context.CancelFunc
	// ioCtx is never done. coder/websocket registers a context.AfterFunc
	// for every Read and Write whose ctx can end (an allocation and a lock
	// on the parent context per message: 20 MB per 30 s at 100 calls in a
	// heap profile, BENCHMARKS.md). The reader and writer do not need it:
	// kill closes the TCP connection underneath, which ends them.
	ioCtx context.Context

	events    chan *ServerEvent // sent to and closed by the reader only
	hs        chan ServerEvent  // reader → Dial during the handshake
	hsDone    chan struct{}     // closed by Dial when it stops listening on hs
	done      chan struct{}     // closed by the reader when the session has ended
	stop      chan struct{}     // closed by Close
	ctrl      chan *ctrlMsg     // control events, FIFO, priority over audio
	audioWake chan struct{}     // capacity 1: "the ring has audio"
	ring      audioRing

	closeOnce sync.Once
	closing   atomic.Bool
	eventSeq  atomic.Uint64
	drops     atomic.Uint64
	coalesce  atomic.Int64 // max audio bytes per append (coalesceMs of input)
	dropLog   LogLimiter   // per-message warnings: one per DefaultLogEvery
	badLog    LogLimiter

	mu       sync.Mutex
	err      error // guarded by mu; the first cause wins
	writeErr error // guarded by mu; why the writer gave up, if it did

	wg sync.WaitGroup // reader and writer
}

var _ Session = (*Conn)(nil)

// ctrlMsg is one encoded control event. A message with hasBarrier is written
// only after every audio frame queued before it (seq < barrier), so commit
// and clear cover the audio appended before them (§2.2).
type ctrlMsg struct {
	typ        string
	eventID    string
	data       []byte
	barrier    uint64
	hasBarrier bool
}

func newConn(dc DialConfig, d Dialect, inFormat AudioFormat, log *slog.Logger, wait time.Duration) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		log:       log,
		region:    dc.Region,
		voice:     dc.Voice,
		dialect:   d,
		closeWait: wait,
		ctx:       ctx,
		cancel:    cancel,
		ioCtx:     context.WithoutCancel(ctx),
		events:    make(chan *ServerEvent, eventQueueSize),
		hs:        make(chan ServerEvent),
		hsDone:    make(chan struct{}),
		done:      make(chan struct{}),
		stop:      make(chan struct{}),
		ctrl:      make(chan *ctrlMsg, controlQueueSize),
		audioWake: make(chan struct{}, 1),
	}
	c.ring.init(audioRingMs * bytesPerMs(inFormat))
	c.coalesce.Store(int64(coalesceMs * bytesPerMs(inFormat)))
	return c
}

// bytesPerMs is f.BytesPerMs, with an unset format meaning the server's
// default, PCM 24 kHz (§3.1).
func bytesPerMs(f AudioFormat) int {
	if f == "" {
		return FormatPCM24.BytesPerMs()
	}
	return f.BytesPerMs()
}

func (c *Conn) start() {
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

// ID is the server's session id (sess_…) from session.created.
func (c *Conn) ID() string { return c.id }

// Region is DialConfig.Region.
func (c *Conn) Region() string { return c.region }

// Dialect is the wire dialect of the session's URL.
func (c *Conn) Dialect() Dialect { return c.dialect }

// ExpiresAt is session.created's expires_at (§3.1, §4), zero if absent.
func (c *Conn) ExpiresAt() time.Time { return c.expires }

// Events delivers decoded server events in order, starting with the
// handshake's session.created (conversation.created) and session.updated.
// It is closed when the session ends.
func (c *Conn) Events() <-chan *ServerEvent { return c.events }

// Done is closed when the session has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the session ended: a *CloseError when the socket closed or
// dropped, ErrSessionClosed after Close. Nil while it is live.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// DroppedAudioFrames counts frames AppendAudio refused because the send
// queue was full (or the frame was oversized).
func (c *Conn) DroppedAudioFrames() uint64 { return c.drops.Load() }

func (c *Conn) setErr(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *Conn) ended() bool {
	if c.closing.Load() {
		return true
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill forces the socket shut: it cancels the session ctx and closes the TCP
// connection underneath, which ends any Read or Write in flight (they run on
// ioCtx, which never ends) and a close handshake that is waiting on an
// unresponsive peer.
func (c *Conn) kill() {
	c.cancel()
	c.raw.close()
}

// ---- reader ---------------------------------------------------------------

func (c *Conn) readLoop() {
	defer c.wg.Done()
	// One read buffer for the connection instead of a new one grown by
	// doubling for every message (websocket.Conn.Read): a session receives
	// tens of audio deltas a second. DecodeServerEvent copies what it keeps
	// (strings, RawMessage, the decoded audio), so the buffer is reused.
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.Reader(c.ioCtx)
		if err == nil {
			if buf.Cap() > maxKeptReadBuf {
				buf = bytes.Buffer{} // do not keep one huge message's buffer
			}
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			c.finish(c.readError(err))
			return
		}
		data := buf.Bytes()
		// A fresh event each time: the consumer owns what it receives.
		ev := new(ServerEvent)
		if err := decodeServerEventInto(ev, data, c.dialect); err != nil {
			// A malformed event is a server bug, not a reason to end the call.
			// The payload is not logged: a server may echo credentials.
			if ok, suppressed := c.badLog.Allow(); ok {
				c.log.Warn("realtime: skipping undecodable server event",
					"region", c.region, "err", err, "bytes", len(data), "suppressed", suppressed)
			}
			continue
		}
		c.forwardHandshake(ev)
		select {
		case c.events <- ev:
		case <-c.stop:
			// Close was called: nobody reads events any more. Keep reading
			// so the peer's close frame completes the close handshake.
		}
	}
}

// forwardHandshake hands the events Dial waits for to Dial, until Dial stops
// listening.
func (c *Conn) forwardHandshake(ev *ServerEvent) {
	switch ev.Type {
	case EvSessionCreated, EvSessionUpdated, EvError:
	default:
		return
	}
	select {
	case c.hs <- *ev:
	case <-c.hsDone:
	case <-c.stop:
	}
}

func (c *Conn) finish(err error) {
	c.setErr(err)
	// Release the socket even if nobody calls Close.
	c.kill()
	close(c.events)
	close(c.done)
}

// readError maps the reader's error to a *CloseError: the close code and
// reason when the peer sent a close frame (1001 at the session limit, 4000
// after beta_api_shape_disabled, §6.4), or -1 for a drop without one.
func (c *Conn) readError(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(websocket.CloseStatus(err)), Reason: ce.Reason, Err: err}
	}
	c.mu.Lock()
	werr := c.writeErr
	c.mu.Unlock()
	if werr != nil {
		return &CloseError{Code: -1, Err: fmt.Errorf("write: %w", werr)}
	}
	return &CloseError{Code: -1, Err: fmt.Errorf("read: %w", err)}
}

// ---- writer ---------------------------------------------------------------

// writeBufs are the writer's reused buffers: raw audio gathered from the
// ring and the encoded append event. They grow to the largest batch once and
// are reused, so steady-state audio sends do not allocate here.
type writeBufs struct {
	raw []byte
	out []byte
}

func (c *Conn) writeLoop() {
	defer c.wg.Done()
	n := int(c.coalesce.Load())
	b := writeBufs{raw: make([]byte, 0, n), out: make([]byte, 0, InputAudioEventLen(n))}
	for {
		select {
		case <-c.stop:
			return
		case <-c.done:
			return
		default:
		}
		// Control events first: a barge-in truncate or cancel must not queue
		// behind audio (§6.4).
		select {
		case m := <-c.ctrl:
			if !c.writeControl(m, &b) {
				return
			}
			continue
		default:
		}
		if c.ring.pending(noBarrier) {
			if !c.writeAudio(&b, noBarrier) {
				return
			}
			continue
		}
		select {
		case m := <-c.ctrl:
			if !c.writeControl(m, &b) {
				return
			}
		case <-c.audioWake:
		case <-c.stop:
			return
		case <-c.done:
			return
		}
	}
}

func (c *Conn) writeControl(m *ctrlMsg, b *writeBufs) bool {
	if m.hasBarrier {
		for c.ring.pending(m.barrier) {
			if !c.writeAudio(b, m.barrier) {
				return false
			}
		}
	}
	if !c.write(m.data) {
		return false
	}
	c.log.Debug("realtime: sent", "region", c.region, "type", m.typ, "event_id", m.eventID)
	return true
}

// writeAudio sends one input_audio_buffer.append with the oldest queued
// frames (before barrier), merged up to coalesceMs of audio.
func (c *Conn) writeAudio(b *writeBufs, barrier uint64) bool {
	b.raw = c.ring.take(b.raw[:0], int(c.coalesce.Load()), barrier)
	if len(b.raw) == 0 {
		return true
	}
	b.out = AppendInputAudioEvent(b.out[:0], b.raw)
	return c.write(b.out)
}

func (c *Conn) write(p []byte) bool {
	err := c.ws.Write(c.ioCtx, websocket.MessageText, p)
	if err == nil {
		return true
	}
	if !c.closing.Load() {
		// Remember why, then make the reader see the end too; it reports it.
		c.mu.Lock()
		if c.writeErr == nil {
			c.writeErr = err
		}
		c.mu.Unlock()
		c.kill()
	}
	return false
}

// ---- sending ----------------------------------------------------------------

func (c *Conn) nextEventID() string {
	// Unique per session, so an error's error.event_id names the client event
	// that caused it (§2, §3.2).
	return "evt_" + strconv.FormatUint(c.eventSeq.Add(1), 10)
}

// send queues an encoded control event. It waits only when the control queue
// is full, until ctx ends.
func (c *Conn) send(ctx context.Context, typ, eventID string, data []byte, barrier bool) error {
	if c.ended() {
		return ErrSessionClosed
	}
	m := &ctrlMsg{typ: typ, eventID: eventID, data: data}
	if barrier {
		m.barrier, m.hasBarrier = c.ring.mark(), true
	}
	select {
	case c.ctrl <- m:
		return nil
	default:
	}
	select {
	case c.ctrl <- m:
		return nil
	case <-c.stop:
		return ErrSessionClosed
	case <-c.done:
		return ErrSessionClosed
	case <-ctx.Done():
		return fmt.Errorf("realtime: send %s: %w", typ, ctx.Err())
	}
}

// AppendAudio queues one frame of caller audio for input_audio_buffer.append
// (§2.2); a frame is any whole number of samples (the media stream hands
// over uplink chunks of several 20 ms frames). It copies the frame into the
// preallocated queue and never blocks: the caller is the conversation actor
// relaying the RTP path's audio. It returns false when the frame was not queued:
// the queue is full (the writer is stalled) or the frame is oversized, both
// counted in DroppedAudioFrames, or the session has ended.
func (c *Conn) AppendAudio(frame []byte) bool {
	if len(frame) == 0 {
		return true
	}
	if c.ended() {
		return false
	}
	if len(frame) > maxAudioFrame || !c.ring.push(frame) {
		n := c.drops.Add(1)
		if ok, suppressed := c.dropLog.Allow(); ok {
			// Both causes share this message: an oversized frame is not a full queue.
			c.log.Warn("realtime: dropping caller audio (send queue full or frame oversized)",
				"region", c.region, "frame_bytes", len(frame), "dropped_total", n, "suppressed", suppressed)
		}
		return false
	}
	select {
	case c.audioWake <- struct{}{}:
	default:
	}
	return true
}

// CommitAudio sends input_audio_buffer.commit after the audio queued so far.
func (c *Conn) CommitAudio(ctx context.Context) error {
	id := c.nextEventID()
	b, err := EncodeInputAudioCommit(id)
	if err != nil {
		return err
	}
	return c.send(ctx, evInputCommit, id, b, true)
}

// ClearAudio sends input_audio_buffer.clear after the audio queued so far.
func (c *Conn) ClearAudio(ctx context.Context) error {
	id := c.nextEventID()
	b, err := EncodeInputAudioClear(id)
	if err != nil {
		return err
	}
	return c.send(ctx, evInputClear, id, b, true)
}

// UpdateSession sends session.update for cfg in the session's dialect, with
// the region's voice (DialConfig.Voice) or cfg's mapped for the dialect. The
// server answers with session.updated on Events().
func (c *Conn) UpdateSession(ctx context.Context, cfg SessionConfig) error {
	voice, err := ResolveVoice(c.dialect, cfg.Voice, c.voice)
	if err != nil {
		return err
	}
	cfg.Voice = voice
	id := c.nextEventID()
	b, err := EncodeSessionUpdate(cfg, c.dialect, id)
	if err != nil {
		return err
	}
	if err := c.send(ctx, evSessionUpdate, id, b, false); err != nil {
		return err
	}
	if cfg.InputFormat != "" {
		c.coalesce.Store(int64(coalesceMs * bytesPerMs(cfg.InputFormat)))
		c.ring.setStore(audioRingMs * bytesPerMs(cfg.InputFormat))
	}
	return nil
}

// CreateItem sends conversation.item.create. previousItemID "" appends. An
// item with an id goes with event_id ItemCreateEventID(id), so an error
// refusing it can be matched to it (ItemAcks).
func (c *Conn) CreateItem(ctx context.Context, item Item, previousItemID string) error {
	id := c.nextEventID()
	if item.ID != "" {
		id = ItemCreateEventID(item.ID)
	}
	b, err := EncodeItemCreate(item, previousItemID, c.dialect, id)
	if err != nil {
		return err
	}
	return c.send(ctx, evItemCreate, id, b, false)
}

// DeleteItem sends conversation.item.delete.
func (c *Conn) DeleteItem(ctx context.Context, itemID string) error {
	id := c.nextEventID()
	b, err := EncodeItemDelete(itemID, id)
	if err != nil {
		return err
	}
	return c.send(ctx, evItemDelete, id, b, false)
}

// Truncate sends conversation.item.truncate (barge-in, §2.4).
func (c *Conn) Truncate(ctx context.Context, itemID string, contentIndex, audioEndMs int) error {
	id := c.nextEventID()
	b, err := EncodeItemTruncate(itemID, contentIndex, audioEndMs, id)
	if err != nil {
		return err
	}
	return c.send(ctx, evItemTruncate, id, b, false)
}

// CreateResponse sends response.create.
func (c *Conn) CreateResponse(ctx context.Context, p ResponseParams) error {
	id := c.nextEventID()
	b, err := EncodeResponseCreate(p, id)
	if err != nil {
		return err
	}
	return c.send(ctx, evResponseCreate, id, b, false)
}

// CancelResponse sends response.cancel; responseID "" cancels the active one.
func (c *Conn) CancelResponse(ctx context.Context, responseID string) error {
	id := c.nextEventID()
	b, err := EncodeResponseCancel(responseID, id)
	if err != nil {
		return err
	}
	return c.send(ctx, evResponseCancel, id, b, false)
}

// ---- closing ----------------------------------------------------------------

// Close ends the session: it writes close 1000 "normal", waits up to 2 s for
// the peer's close frame to reach the reader, then forces the socket shut
// and waits for both goroutines. Err() is ErrSessionClosed afterwards unless
// the session had already ended for another reason. Safe to call more than
// once and from any goroutine; it always returns nil.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		c.setErr(ErrSessionClosed)
		close(c.stop)

		closed := make(chan struct{})
		go func() {
			defer close(closed)
			// Our own code and reason first; a cancelled ctx would close the
			// socket without either (style §2.4). The result does not matter:
			// the session is over either way.
			_ = c.ws.Close(websocket.StatusNormalClosure, "normal")
		}()
		t := time.NewTimer(c.closeWait)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		c.kill()
		<-closed
		_ = c.ws.CloseNow() // a no-op by now; releases coder's state if not
		c.wg.Wait()
		c.log.Debug("realtime: session closed", "region", c.region, "session_id", c.id,
			"dropped_audio_frames", c.drops.Load())
	})
	return nil
}

// ---- helpers ----------------------------------------------------------------

// rawConn remembers the TCP connection a dial created, so that Close can end
// a close handshake the peer never answers (coder/websocket's Close waits up
// to 5 s + 5 s, and CloseNow does nothing once Close has started).
type rawConn struct {
	mu   sync.Mutex
	conn net.Conn
}

func (r *rawConn) set(c net.Conn) {
	r.mu.Lock()
	r.conn = c
	r.mu.Unlock()
}

func (r *rawConn) close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	conn := r.conn
	r.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}
