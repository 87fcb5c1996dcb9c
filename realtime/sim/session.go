package sim

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/sipbridge/sipbridge/realtime"
)

// Audio time is kept in ticks of a 24 kHz clock, so 24 kHz PCM and 8 kHz
// G.711 (3 ticks per sample) share one timeline and a session may switch
// formats. audio_start_ms / audio_end_ms are offsets into all audio written
// in the session (§3.3).
const ticksPerMs = 24

func ticksPerSample(f realtime.AudioFormat) int64 {
	if f == realtime.FormatPCM24 {
		return 1
	}
	return 3
}

func bytesToTicks(f realtime.AudioFormat, n int) int64 {
	if f == realtime.FormatPCM24 {
		return int64(n / 2)
	}
	return int64(n) * 3
}

func ticksToBytes(f realtime.AudioFormat, t int64) int {
	if t < 0 {
		return 0
	}
	if f == realtime.FormatPCM24 {
		return int(t) * 2
	}
	return int(t / 3)
}

type inbound struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

// session is one simulated realtime session. One goroutine (run) owns all of
// its state; a reader goroutine feeds it client messages through in. Every
// server event is written by run, so events go out in a deterministic order.
type session struct {
	srv    *Server
	log    *slog.Logger
	conn   *websocket.Conn
	d      realtime.Dialect
	id     string
	convID string
	model  string

	started  time.Time
	ctx      context.Context
	cancel   context.CancelFunc
	in       chan inbound
	stop     chan struct{} // closed when run returns
	readDone chan struct{}
	faultsCh chan struct{}

	// Owned by run.
	cfg           sessionConfig
	items         []*item
	audioProduced bool // voice is fixed from here on (§2.1)
	failedOnce    bool // for Faults.Sticky
	dead          bool // the connection is gone or being closed
	expiry        time.Time

	dec          decoder
	totalTicks   int64
	buf          []byte // input audio since bufStart, in cfg.InputFormat
	bufStart     int64
	vad          *vad
	vadBase      int64 // tick of VAD sample index 0
	inSpeech     bool
	speechItem   string
	speechStart  int64
	idleArmed    bool
	idleStart    int64
	idleDeadline int64

	active      *response   // the one response writing to the conversation
	oob         []*response // out-of-band responses (conversation:"none")
	pendingAuto bool        // VAD asked for a response while one was active
	respCount   int

	recMu sync.Mutex
	rec   SessionRecord
}

func newSession(srv *Server, conn *websocket.Conn, d realtime.Dialect, path, model string) *session {
	ctx, cancel := context.WithCancel(srv.ctx)
	s := &session{
		srv: srv, conn: conn, d: d, model: model,
		id:       newID("sess_", 21),
		convID:   newID("conv_", 21),
		started:  time.Now(),
		ctx:      ctx,
		cancel:   cancel,
		in:       make(chan inbound),
		stop:     make(chan struct{}),
		readDone: make(chan struct{}),
		faultsCh: make(chan struct{}, 1),
	}
	s.log = srv.log.With("session", s.id, "dialect", d.String())
	s.cfg = defaultSessionConfig(d, model, srv.cfg.Region)
	s.dec = decoder{format: s.cfg.InputFormat}
	s.resetVAD()
	s.computeExpiry()
	s.rec = SessionRecord{ID: s.id, Region: srv.cfg.Region, Dialect: d, Path: path, Model: model, Started: s.started}
	return s
}

func (s *session) notifyFaults() {
	select {
	case s.faultsCh <- struct{}{}:
	default:
	}
}

// computeExpiry applies SessionLimit and the ExpireAfter fault (§4: the
// server sends session_expired and closes 1001 at the limit).
func (s *session) computeExpiry() {
	limit := s.srv.cfg.SessionLimit
	if ea := s.srv.faults.snapshot().ExpireAfter; ea > 0 && ea < limit {
		limit = ea
	}
	s.expiry = s.started.Add(limit)
}

func (s *session) snapshot() SessionRecord {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return s.rec.clone()
}

func (s *session) record(f func(r *SessionRecord)) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	f(&s.rec)
}

// rejectBeta answers a beta-shaped connection on a GA path the way OpenAI
// does since the beta shutdown: one error event, then close 4000 (§0).
func (s *session) rejectBeta() {
	s.log.Info("beta header on GA path: beta_api_shape_disabled")
	_ = s.sendError(invalidReq(codeBetaShapeDisabled, "", betaDisabledMessage), "")
	s.closeWith(closeCodeBetaDisabled, betaDisabledMessage)
	s.record(func(r *SessionRecord) { r.Ended = time.Now() })
	s.cancel()
}

// run is the session's actor loop.
func (s *session) run() {
	defer s.cancel()
	s.log.Info("session started", "path", s.rec.Path, "model", s.model)
	go s.readLoop()
	if d := s.srv.faults.snapshot().HandshakeDelay; d > 0 {
		// A slow region: the upgrade succeeded but session.created is late.
		select {
		case <-time.After(d):
		case <-s.ctx.Done():
		}
	}
	s.sendSessionCreated()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for !s.dead {
		timer.Reset(s.nextWake())
		select {
		case m := <-s.in:
			if m.err != nil {
				s.log.Info("client connection ended", "close_status", int(websocket.CloseStatus(m.err)), "err", m.err)
				s.dead = true
				break
			}
			s.handleMessage(m)
		case <-timer.C:
			s.onTimer()
		case <-s.faultsCh:
			s.computeExpiry()
		case <-s.ctx.Done():
			s.closeWith(websocket.StatusGoingAway, "server shutting down")
		}
	}
	close(s.stop)
	_ = s.conn.CloseNow() // no-op if already closed
	<-s.readDone
	s.record(func(r *SessionRecord) { r.Ended = time.Now() })
	s.log.Info("session ended")
}

// readLoop reads with a context that is never cancelled: cancelling a Read
// closes the connection (style-and-deps §2.4), which would race the close
// code run wants to send. run closes the connection to end it.
func (s *session) readLoop() {
	defer close(s.readDone)
	for {
		typ, data, err := s.conn.Read(context.Background())
		select {
		case s.in <- inbound{typ: typ, data: data, err: err}:
		case <-s.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// nextWake is how long run may sleep: until the next response step or the
// session's expiry.
func (s *session) nextWake() time.Duration {
	next := s.expiry
	for _, r := range s.responses() {
		if r.waiting() && r.due.Before(next) {
			next = r.due
		}
	}
	return max(time.Until(next), 0)
}

func (s *session) responses() []*response {
	out := slices.Clone(s.oob)
	if s.active != nil {
		out = append(out, s.active)
	}
	return out
}

func (s *session) onTimer() {
	now := time.Now()
	if !now.Before(s.expiry) {
		s.expire()
		return
	}
	for _, r := range s.responses() {
		if s.dead {
			return
		}
		if r.waiting() && !now.Before(r.due) {
			s.advance(r)
		}
	}
}

func (s *session) expire() {
	minutes := int(math.Round(s.srv.cfg.SessionLimit.Minutes()))
	minutes = max(minutes, 1)
	s.log.Info("session expired", "minutes", minutes)
	_ = s.sendError(errSessionExpired(minutes), "")
	s.closeWith(websocket.StatusGoingAway, sessionExpiredMessage(minutes))
}

// closeWith sends a close frame with code and ends the session.
func (s *session) closeWith(code websocket.StatusCode, reason string) {
	if s.dead {
		return
	}
	s.dead = true
	s.record(func(r *SessionRecord) { r.CloseCode, r.CloseReason = int(code), reason })
	if err := s.conn.Close(code, reason); err != nil {
		s.log.Debug("close handshake incomplete", "code", int(code), "err", err)
	}
}

// drop ends the connection without a close frame (Faults.DropAfterAudioMs).
func (s *session) drop() {
	if s.dead {
		return
	}
	s.dead = true
	s.record(func(r *SessionRecord) { r.CloseCode, r.CloseReason = -1, "dropped" })
	_ = s.conn.CloseNow()
}

// send writes one server event, stamping its event_id.
// writeTimeout bounds one write to a client that stopped reading.
const writeTimeout = 10 * time.Second

func (s *session) send(ev map[string]any) error {
	if s.dead {
		return errClosed
	}
	ev["event_id"] = newID("event_", 21)
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	// Not s.ctx: a write whose context ends closes the whole connection
	// without a close frame (coder/websocket), which would turn a server
	// shutdown racing a write into a drop instead of close 1001.
	wctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := s.conn.Write(wctx, websocket.MessageText, b); err != nil {
		s.log.Debug("write failed", "type", ev["type"], "err", err)
		s.dead = true
		return err
	}
	return nil
}

var errClosed = errors.New("sim: session closed")

func (s *session) sendError(e *apiError, clientEventID string) error {
	s.log.Debug("error event", "code", e.Code, "message", e.Message, "event_id", clientEventID)
	s.record(func(r *SessionRecord) {
		r.Errors = append(r.Errors, ErrorRecord{Type: e.Type, Code: e.Code, Message: e.Message, Param: e.Param, EventID: clientEventID})
	})
	return s.send(map[string]any{"type": realtime.EvError, "error": e.wire(clientEventID)})
}

func (s *session) expiresAt() int64 {
	return s.started.Add(s.srv.cfg.SessionLimit).Unix()
}

func (s *session) sendSessionCreated() {
	_ = s.send(map[string]any{"type": realtime.EvSessionCreated, "session": renderSession(s.d, s.cfg, s.id, s.expiresAt())})
	if s.d == realtime.DialectPreview {
		// §1.3/§3.1: the beta protocol follows with conversation.created.
		_ = s.send(map[string]any{"type": realtime.EvConversationCreated,
			"conversation": map[string]any{"id": s.convID, "object": "realtime.conversation"}})
	}
}

// handleMessage parses and dispatches one client message.
func (s *session) handleMessage(m inbound) {
	if m.typ != websocket.MessageText {
		s.recordEvent("", "", nil, 0)
		s.markRejected()
		_ = s.sendError(invalidReq(codeInvalidEvent, "", "Invalid event: binary messages are not supported; send JSON text."), "")
		return
	}
	ev, eventID, apiErr := parseClientEvent(s.d, s.cfg, m.data)
	if apiErr != nil {
		s.recordEvent(peekType(m.data), eventID, m.data, 0)
		s.markRejected()
		_ = s.sendError(apiErr, eventID)
		return
	}
	if ev.Type == "input_audio_buffer.append" {
		s.recordEvent(ev.Type, eventID, nil, len(ev.Audio))
	} else {
		s.recordEvent(ev.Type, eventID, m.data, 0)
	}
	var err *apiError
	switch ev.Type {
	case "session.update":
		err = s.handleSessionUpdate(ev)
	case "input_audio_buffer.append":
		s.handleAppend(ev.Audio)
	case "input_audio_buffer.commit":
		err = s.handleCommit()
	case "input_audio_buffer.clear":
		s.clearBuffer()
		_ = s.send(map[string]any{"type": realtime.EvInputCleared})
	case "output_audio_buffer.clear":
		// §2.8: WebRTC/SIP only; a WebSocket client owns playback.
		err = &apiError{Type: errTypeInvalidRequest, Message: outputAudioBufferWSReason}
	case "conversation.item.create":
		err = s.handleItemCreate(ev)
	case "conversation.item.retrieve":
		it, _ := s.findItem(ev.ItemID)
		if it == nil {
			err = errItemNotFound("item_id", ev.ItemID)
			break
		}
		_ = s.send(map[string]any{"type": realtime.EvItemRetrieved, "item": renderItem(s.d, it, true)})
	case "conversation.item.delete":
		err = s.handleDelete(ev.ItemID)
	case "conversation.item.truncate":
		err = s.handleTruncate(ev)
	case "response.create":
		err = s.handleResponseCreate(ev)
	case "response.cancel":
		err = s.handleCancel(ev.ResponseID)
	}
	if err != nil {
		s.markRejected()
		_ = s.sendError(err, eventID)
	}
}

// peekType pulls a string "type" out of a rejected message for the record.
func peekType(data []byte) string {
	var v struct {
		Type any `json:"type"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	t, _ := v.Type.(string)
	return t
}

func (s *session) recordEvent(typ, eventID string, raw []byte, audioBytes int) {
	s.record(func(r *SessionRecord) {
		if typ == "input_audio_buffer.append" {
			if n := len(r.Events); n > 0 && r.Events[n-1].Type == typ && !r.Events[n-1].Rejected {
				r.Events[n-1].Appends++
				r.Events[n-1].AudioBytes += audioBytes
				return
			}
			r.Events = append(r.Events, ClientEventRecord{Type: typ, EventID: eventID, Appends: 1, AudioBytes: audioBytes})
			return
		}
		r.Events = append(r.Events, ClientEventRecord{Type: typ, EventID: eventID, Raw: slices.Clone(raw)})
	})
}

func (s *session) markRejected() {
	s.record(func(r *SessionRecord) {
		if n := len(r.Events); n > 0 {
			r.Events[n-1].Rejected = true
		}
	})
}

func (s *session) handleSessionUpdate(ev *clientEvent) *apiError {
	next := *ev.Session
	if s.audioProduced && (next.Voice != s.cfg.Voice || next.VoiceIsID != s.cfg.VoiceIsID) {
		// Observed wording and code (openai/openai-python #2607).
		return invalidReq(codeCannotUpdateVoice, "", cannotUpdateVoiceMessage)
	}
	formatChanged := next.InputFormat != s.cfg.InputFormat
	vadChanged := !equalTD(next.TurnDetection, s.cfg.TurnDetection)
	s.cfg = next
	if formatChanged {
		// Buffered bytes are in the old format: drop them.
		s.dec = decoder{format: next.InputFormat}
		s.buf = nil
		s.bufStart = s.totalTicks
	}
	if formatChanged || vadChanged {
		s.resetVAD()
	}
	if !s.idleEnabled() {
		s.idleArmed = false
	}
	s.record(func(r *SessionRecord) { r.SessionUpdates = append(r.SessionUpdates, ev.SessionRaw) })
	// session.updated carries the full effective config and does not echo
	// the client's event_id (§2.1).
	_ = s.send(map[string]any{"type": realtime.EvSessionUpdated, "session": renderSession(s.d, s.cfg, s.id, s.expiresAt())})
	return nil
}

func equalTD(a, b *turnDetection) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func (s *session) resetVAD() {
	s.vad = newVAD(sampleRate(s.cfg.InputFormat))
	s.vadBase = s.totalTicks
	s.inSpeech = false
	s.speechItem = ""
}

func (s *session) idleEnabled() bool {
	td := s.cfg.TurnDetection
	return s.d == realtime.DialectGA && td != nil && td.Type == "server_vad" && td.IdleTimeoutMs > 0
}

// handleAppend adds audio to the input buffer and runs server VAD over it.
func (s *session) handleAppend(audio []byte) {
	f := s.cfg.InputFormat
	pcm := s.dec.decode(audio, nil)
	// buf may end in half a PCM16 sample; offsets into it are always
	// sample-aligned, so the odd byte just waits for its partner.
	s.buf = append(s.buf, audio...)
	first := s.totalTicks
	s.totalTicks += int64(len(pcm)) * ticksPerSample(f)
	s.record(func(r *SessionRecord) { r.AppendedAudioMs = int(s.totalTicks / ticksPerMs) })

	if td := s.cfg.TurnDetection; td != nil {
		tps := ticksPerSample(f)
		s.vad.feed(pcm, (first-s.vadBase)/tps, thresholdDBov(td.Threshold), td.silenceMs(), func(e vadEvent) bool {
			at := s.vadBase + e.at*tps
			if e.started {
				s.onSpeechStarted(at)
			} else {
				s.onSpeechStopped(at)
			}
			return !s.dead
		})
		if s.dead {
			return
		}
		if !s.inSpeech {
			s.trimBuffer()
		}
		s.checkIdle()
	}
}

// trimBuffer forgets input audio VAD can no longer need: it keeps the prefix
// padding (plus the onset window) and, while the idle timer runs, the audio
// the idle commit will carry.
func (s *session) trimBuffer() {
	keep := int64(s.cfg.TurnDetection.PrefixPaddingMs+100) * ticksPerMs
	from := s.totalTicks - keep
	if s.idleArmed {
		from = min(from, s.idleStart)
	}
	if from <= s.bufStart {
		return
	}
	n := ticksToBytes(s.cfg.InputFormat, from-s.bufStart)
	n = min(n, len(s.buf))
	s.buf = slices.Clone(s.buf[n:])
	s.bufStart += bytesToTicks(s.cfg.InputFormat, n)
}

func (s *session) clearBuffer() {
	s.buf = nil
	s.bufStart = s.totalTicks
	s.dec.carry = nil
	s.resetVAD()
}

func (s *session) onSpeechStarted(at int64) {
	td := s.cfg.TurnDetection
	// audio_start_ms includes prefix_padding_ms (§3.3), but never reaches
	// back before audio the buffer still holds.
	start := max(s.bufStart, at-int64(td.PrefixPaddingMs)*ticksPerMs)
	s.inSpeech = true
	s.speechStart = start
	s.speechItem = newID("item_", 21)
	s.idleArmed = false
	_ = s.send(map[string]any{"type": realtime.EvInputSpeechStarted, "audio_start_ms": start / ticksPerMs, "item_id": s.speechItem})
	if td.InterruptResponse && s.active != nil {
		// §2.1 interrupt_response: the in-flight response is cancelled with
		// reason turn_detected and its audio stops.
		s.cancelResponse(s.active, "turn_detected")
	}
}

func (s *session) onSpeechStopped(at int64) {
	td := s.cfg.TurnDetection
	id := s.speechItem
	s.inSpeech = false
	_ = s.send(map[string]any{"type": realtime.EvInputSpeechStopped, "audio_end_ms": at / ticksPerMs, "item_id": id})
	s.commitRange(s.speechStart, at, OriginVAD, id)
	if td.CreateResponse {
		s.autoResponse(TriggerVAD)
	}
}

// handleCommit commits the whole buffer as a user turn (§2.2: no response).
func (s *session) handleCommit() *apiError {
	bufferedMs := float64(s.totalTicks-s.bufStart) / ticksPerMs
	if bufferedMs < minCommitMs {
		return errCommitEmpty(bufferedMs)
	}
	id := s.speechItem
	if !s.inSpeech || id == "" {
		id = newID("item_", 21)
	}
	start := s.bufStart
	if s.inSpeech {
		start = s.speechStart
	}
	s.commitRange(start, s.totalTicks, OriginCommit, id)
	s.resetVAD()
	return nil
}

// commitRange turns buffered input audio [start, end) into a user message
// item: committed, item added (+done) / created, and the input
// transcription if enabled (§3.3–3.5).
func (s *session) commitRange(start, end int64, origin, id string) {
	f := s.cfg.InputFormat
	lo := min(ticksToBytes(f, start-s.bufStart), len(s.buf))
	hi := min(ticksToBytes(f, end-s.bufStart), len(s.buf))
	audio := slices.Clone(s.buf[lo:hi])
	s.buf = slices.Clone(s.buf[hi:])
	s.bufStart = end
	durMs := int((end - start) / ticksPerMs)

	heard := s.srv.cfg.Transcriber(Utterance{SessionID: s.id, ItemID: id, DurationMs: durMs,
		SampleRate: sampleRate(f), PCM: decodeAll(f, audio)})
	it := &item{ID: id, Type: "message", Role: "user", Status: "completed", Origin: origin, Heard: heard,
		Content: []part{{Type: "input_audio", Audio: audio, AudioMs: durMs}}}
	prev := s.lastItemID()
	_ = s.send(map[string]any{"type": realtime.EvInputCommitted, "previous_item_id": nullIfEmpty(prev), "item_id": id})
	s.items = append(s.items, it)
	s.record(func(r *SessionRecord) {
		r.Turns = append(r.Turns, TurnRecord{ItemID: id, Origin: origin, AudioStartMs: int(start / ticksPerMs),
			AudioEndMs: int(end / ticksPerMs), AudioMs: durMs, Heard: heard})
	})
	s.syncItems()
	s.announceItem(it, prev)
	if tr := s.cfg.Transcription; tr != nil {
		it.Content[0].Transcript, it.Content[0].HasTrans = heard, true
		s.syncItems()
		_ = s.send(map[string]any{"type": realtime.EvInputTranscriptionCompleted, "item_id": id, "content_index": 0,
			"transcript": heard, "logprobs": nil,
			"usage": map[string]any{"type": "duration", "seconds": math.Ceil(float64(durMs) / 1000)}})
	}
}

// announceItem sends the dialect's "item created" events for a finished
// item: GA conversation.item.added + conversation.item.done, preview
// conversation.item.created (§3.4).
func (s *session) announceItem(it *item, prev string) {
	if s.d == realtime.DialectPreview {
		_ = s.send(map[string]any{"type": "conversation.item.created", "previous_item_id": nullIfEmpty(prev), "item": renderItem(s.d, it, false)})
		return
	}
	_ = s.send(map[string]any{"type": realtime.EvItemAdded, "previous_item_id": nullIfEmpty(prev), "item": renderItem(s.d, it, false)})
	_ = s.send(map[string]any{"type": realtime.EvItemDone, "previous_item_id": nullIfEmpty(prev), "item": renderItem(s.d, it, false)})
}

// checkIdle fires idle_timeout_ms (GA server_vad): timeout_triggered, a
// commit of the silent audio, and a response (§2.1). The timer runs on input
// audio time, like VAD.
func (s *session) checkIdle() {
	if !s.idleArmed || s.inSpeech || s.active != nil || s.totalTicks < s.idleDeadline {
		return
	}
	s.idleArmed = false
	id := newID("item_", 21)
	start := max(s.idleStart, s.bufStart)
	_ = s.send(map[string]any{"type": realtime.EvInputTimeoutTriggered, "audio_start_ms": start / ticksPerMs,
		"audio_end_ms": s.totalTicks / ticksPerMs, "item_id": id})
	s.commitRange(start, s.totalTicks, OriginIdle, id)
	s.resetVAD()
	s.startResponse(TriggerIdle, &responseSpec{}, "")
}

func (s *session) lastItemID() string {
	if len(s.items) == 0 {
		return ""
	}
	return s.items[len(s.items)-1].ID
}

func (s *session) findItem(id string) (*item, int) {
	for i, it := range s.items {
		if it.ID == id {
			return it, i
		}
	}
	return nil, -1
}

func (s *session) hasFunctionCall(callID string) bool {
	for _, it := range s.items {
		if it.Type == "function_call" && it.CallID == callID {
			return true
		}
	}
	return false
}

func (s *session) handleItemCreate(ev *clientEvent) *apiError {
	it := ev.Item
	if i := slices.IndexFunc(it.Content, func(p part) bool { return p.Type == "input_audio" }); i >= 0 &&
		s.srv.faults.takeAudioItemRefusal() {
		// RefuseAudioItems: the API's wording for a content type it does
		// not take, without input_audio among the supported ones.
		supported := []string{"input_text"}
		if s.d == realtime.DialectGA {
			supported = append(supported, "input_image")
		}
		s.log.Info("fault injected", "fault", "refuse_audio_items", "item", it.ID)
		return errInvalidEnum("item.content["+itoa(i)+"].type", "input_audio", supported)
	}
	if it.ID == "" {
		it.ID = newID("item_", 21)
	} else if x, _ := s.findItem(it.ID); x != nil {
		return invalidReq(codeInvalidValue, "item.id", "Invalid value: '%s'. An item with this id already exists in the conversation.", it.ID)
	}
	if it.Type == "function_call_output" && !s.hasFunctionCall(it.CallID) {
		// §2.3: the server checks that a function_call with the same call_id exists.
		return invalidReq(codeInvalidValue, "item.call_id",
			"Invalid value: '%s'. No function_call item with this call_id exists in the conversation.", it.CallID)
	}
	pos := len(s.items)
	if p := ev.PrevItemID; p != nil {
		if *p == "root" {
			pos = 0
		} else {
			_, idx := s.findItem(*p)
			if idx < 0 {
				return errItemNotFound("previous_item_id", *p)
			}
			pos = idx + 1
		}
	}
	it.Heard = s.heardFor(it)
	prev := ""
	if pos > 0 {
		prev = s.items[pos-1].ID
	}
	s.items = slices.Insert(s.items, pos, it)
	s.syncItems()
	s.announceItem(it, prev)
	return nil
}

// heardFor is what the model understands of a client-created item.
func (s *session) heardFor(it *item) string {
	if it.Type == "function_call_output" {
		return it.Output
	}
	var parts []string
	for _, p := range it.Content {
		switch p.Type {
		case "input_text", "output_text":
			parts = append(parts, p.Text)
		case "input_audio":
			if p.HasTrans && p.Transcript != "" {
				parts = append(parts, p.Transcript)
				continue
			}
			f := s.cfg.InputFormat
			parts = append(parts, s.srv.cfg.Transcriber(Utterance{SessionID: s.id, ItemID: it.ID, DurationMs: p.AudioMs,
				SampleRate: sampleRate(f), PCM: decodeAll(f, p.Audio)}))
		}
	}
	return joinNonEmpty(parts)
}

func joinNonEmpty(parts []string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += " "
		}
		out += p
	}
	return out
}

func (s *session) handleDelete(id string) *apiError {
	it, idx := s.findItem(id)
	if it == nil {
		return errItemNotFound("item_id", id)
	}
	if it.Status == "in_progress" {
		return invalidReq(codeInvalidValue, "item_id", "Invalid value: '%s'. The item is still being generated.", id)
	}
	s.items = slices.Delete(s.items, idx, idx+1)
	s.record(func(r *SessionRecord) { r.Deleted = append(r.Deleted, id) })
	s.syncItems()
	_ = s.send(map[string]any{"type": realtime.EvItemDeleted, "item_id": id})
	return nil
}

// handleTruncate applies §2.4: only assistant audio can be truncated, never
// past the audio produced; truncation drops the server-side transcript.
func (s *session) handleTruncate(ev *clientEvent) *apiError {
	it, _ := s.findItem(ev.ItemID)
	if it == nil {
		return errItemNotFound("item_id", ev.ItemID)
	}
	p := it.outputAudioPart(ev.ContentIdx)
	if p == nil || p.AudioMs == 0 {
		// Code per livekit/agents PR #6158; also sent when no audio exists yet.
		return invalidReq(codeUnsupportedContent, "", truncateNotAudioMessage)
	}
	if ev.AudioEndMs > p.AudioMs {
		return invalidReq(codeInvalidValue, "audio_end_ms", "Audio content of %dms is already shorter than %dms", p.AudioMs, ev.AudioEndMs)
	}
	p.AudioMs = ev.AudioEndMs
	p.Transcript, p.HasTrans = "", false
	it.Truncated, it.TruncateMs = true, ev.AudioEndMs
	s.record(func(r *SessionRecord) {
		r.Truncations = append(r.Truncations, TruncationRecord{ItemID: it.ID, ContentIndex: ev.ContentIdx, AudioEndMs: ev.AudioEndMs})
		for i := range r.Responses {
			if r.Responses[i].ID == it.ResponseID {
				r.Responses[i].Truncated = true
			}
		}
	})
	s.syncItems()
	_ = s.send(map[string]any{"type": realtime.EvItemTruncated, "item_id": it.ID, "content_index": ev.ContentIdx, "audio_end_ms": ev.AudioEndMs})
	return nil
}

// syncItems mirrors the conversation into the record.
func (s *session) syncItems() {
	recs := make([]ItemRecord, len(s.items))
	for i, it := range s.items {
		recs[i] = s.itemRecord(it)
	}
	s.record(func(r *SessionRecord) { r.Items = recs })
}

func (s *session) itemRecord(it *item) ItemRecord {
	ms := 0
	for _, p := range it.Content {
		ms += p.AudioMs
	}
	return ItemRecord{ID: it.ID, Type: it.Type, Role: it.Role, Status: it.Status, ContentTypes: contentTypes(s.d, it),
		Text: it.text(), CallID: it.CallID, Name: it.Name, Arguments: it.Arguments, Output: it.Output,
		AudioMs: ms, Origin: it.Origin, ResponseID: it.ResponseID, Truncated: it.Truncated, TruncateMs: it.TruncateMs}
}
