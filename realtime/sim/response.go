package sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/sipbridge/sipbridge/realtime"
)

const chunkMs = 100 // audio per output_audio.delta

type respPhase uint8

const (
	phaseStalled   respPhase = iota // nothing more will happen unless cancelled
	phaseDelay                      // created; waiting ResponseDelay before output
	phaseStreaming                  // sending audio chunks
	phaseDone
)

// response is one model response in flight, advanced by the session actor.
type response struct {
	id        string
	trigger   string
	eventID   string // client's response.create event_id, for error echoes
	spec      *responseSpec
	fault     respFault
	phase     respPhase
	due       time.Time
	created   bool // response.created was sent
	textOnly  bool
	askedText bool // what was asked for; textOnly may differ (TextAfterReplayRate)
	format    realtime.AudioFormat
	voice     string
	outOfBand bool

	ctxItems []*item
	text     string
	runes    []rune
	fc       *FunctionCall
	msg      *item
	outputs  []*item
	audio    []byte
	totalMs  int
	sentMs   int
	sentRune int
	inTokens int
}

func (r *response) waiting() bool {
	return r.phase == phaseDelay || r.phase == phaseStreaming
}

func (s *session) handleResponseCreate(ev *clientEvent) *apiError {
	spec := ev.Response
	if spec.HasInput {
		for i, in := range spec.Input {
			if in.Ref != "" {
				if x, _ := s.findItem(in.Ref); x == nil {
					return errItemNotFound(fmt.Sprintf("response.input[%d].id", i), in.Ref)
				}
			}
		}
	}
	if !spec.OutOfBand && s.active != nil {
		// §2.6: only one response may write to the default conversation; no
		// response.created/done follows for the rejected request.
		return errActiveResponse(s.active.id)
	}
	s.startResponse(TriggerClient, spec, ev.EventID)
	return nil
}

// autoResponse is a server-initiated response (VAD end of turn). If one is
// already active (interrupt_response off) it starts when that one ends.
func (s *session) autoResponse(trigger string) {
	if s.active != nil {
		s.pendingAuto = true
		return
	}
	s.startResponse(trigger, &responseSpec{}, "")
}

func (s *session) startResponse(trigger string, spec *responseSpec, eventID string) {
	s.respCount++
	r := &response{
		id: newID("resp_", 21), trigger: trigger, eventID: eventID, spec: spec,
		fault: s.srv.faults.decide(s.failedOnce), textOnly: s.cfg.TextOnly,
		format: s.cfg.OutputFormat, voice: s.cfg.Voice, outOfBand: spec.OutOfBand,
	}
	if spec.TextOnly != nil {
		r.textOnly = *spec.TextOnly
	}
	r.askedText = r.textOnly
	if spec.OutputFormat != "" {
		r.format = spec.OutputFormat
	}
	if spec.Voice != "" {
		r.voice = spec.Voice
	}
	faultName := map[faultKind]string{faultStall: "stall_no_response", faultErrorEvent: "error_event_server_error",
		faultFailBefore: "fail_before_audio", faultStallAfterCreated: "stall_first_audio", faultRateLimited: "rate_limited"}[r.fault.kind]
	delay := s.srv.cfg.ResponseDelay
	if r.fault.kind == faultNone {
		var spiked bool
		delay, spiked = s.srv.faults.firstOutputDelay(delay)
		if spiked {
			faultName = "latency_spike"
		}
	}
	s.record(func(rec *SessionRecord) {
		rec.Responses = append(rec.Responses, ResponseRecord{ID: r.id, Trigger: trigger, OutOfBand: r.outOfBand,
			Status: realtime.StatusInProgress, Fault: faultName})
	})
	if faultName != "" {
		s.log.Info("fault injected", "fault", faultName, "response", r.id)
	}
	switch r.fault.kind {
	case faultErrorEvent:
		s.updateResp(r, func(rr *ResponseRecord) { rr.Status = "error_event" })
		_ = s.sendError(&apiError{Type: errTypeServer, Message: serverErrorMessage(s.id)}, eventID)
		return
	case faultStall:
		r.phase = phaseStalled
	default:
		r.created = true
		r.phase = phaseDelay
		r.due = time.Now().Add(delay)
		if r.fault.kind == faultStallAfterCreated {
			r.phase = phaseStalled
		}
		if r.fault.kind == faultFailBefore || r.fault.kind == faultRateLimited {
			// A failed-before-audio response (output [], zero usage, §3.7)
			// is reported without the inference latency: the server never
			// got to generate. This keeps the bridge's own swap cost, not
			// the provider's error latency, in the failover-pause benchmark.
			r.due = time.Now()
		}
		_ = s.send(map[string]any{"type": realtime.EvResponseCreated, "response": s.renderResponse(r, realtime.StatusInProgress, nil, false)})
		// §3.8: rate_limits.updated at the start of each response; a
		// throttled one shows nothing left until the wait it asks for.
		reqLeft, tokLeft, reset := max(0, 1000-s.respCount), 50000-4096, 60.0
		if r.fault.kind == faultRateLimited {
			reqLeft, tokLeft, reset = 0, 0, retryAfterSeconds(s.srv.faults.snapshot().retryAfter())
		}
		_ = s.send(map[string]any{"type": realtime.EvRateLimitsUpdated, "rate_limits": []map[string]any{
			{"name": "requests", "limit": 1000, "remaining": reqLeft, "reset_seconds": reset},
			{"name": "tokens", "limit": 50000, "remaining": tokLeft, "reset_seconds": reset},
		}})
	}
	if r.outOfBand {
		s.oob = append(s.oob, r)
	} else {
		s.active = r
	}
}

func (s *session) updateResp(r *response, f func(*ResponseRecord)) {
	s.record(func(rec *SessionRecord) {
		for i := len(rec.Responses) - 1; i >= 0; i-- {
			if rec.Responses[i].ID == r.id {
				f(&rec.Responses[i])
				return
			}
		}
	})
}

// advance moves a response one step: from the delay into its output, or one
// audio chunk further.
func (s *session) advance(r *response) {
	switch r.phase {
	case phaseDelay:
		switch r.fault.kind {
		case faultFailBefore:
			s.failResponse(r)
			return
		case faultRateLimited:
			s.failRateLimited(r)
			return
		}
		s.beginOutput(r)
	case phaseStreaming:
		s.streamChunk(r)
	}
}

// contextFor builds the model's view for a response: the conversation, or
// response.input when given (§2.6).
func (s *session) contextFor(r *response) []*item {
	if !r.spec.HasInput {
		return append([]*item(nil), s.items...)
	}
	var out []*item
	for _, in := range r.spec.Input {
		if in.Ref != "" {
			if it, _ := s.findItem(in.Ref); it != nil {
				out = append(out, it)
			}
			continue
		}
		it := in.Item.clone()
		it.Heard = s.heardFor(it)
		out = append(out, it)
	}
	return out
}

func (s *session) beginOutput(r *response) {
	r.ctxItems = s.contextFor(r)
	reply, err := s.callResponder(r)
	if err != nil {
		s.log.Warn("responder failed", "err", err)
		s.failResponse(r)
		return
	}
	r.text, r.runes, r.fc = reply.Text, []rune(reply.Text), reply.FunctionCall
	s.updateResp(r, func(rr *ResponseRecord) { rr.Text = reply.Text })
	if !r.textOnly && r.text != "" && textReplayContext(r.ctxItems) && s.srv.faults.draw(s.srv.faults.snapshot().TextAfterReplayRate) {
		// The documented failure: audio was asked for, text came back.
		r.textOnly = true
		s.log.Info("fault injected", "fault", "text_after_replay", "response", r.id)
		s.updateResp(r, func(rr *ResponseRecord) { rr.Fault = "text_after_replay" })
	}
	if r.text == "" {
		s.emitFunctionCall(r)
		s.completeResponse(r)
		return
	}
	r.msg = &item{ID: newID("item_", 21), Type: "message", Role: "assistant", Status: "in_progress",
		Origin: OriginResponse, ResponseID: r.id}
	s.addOutputItem(r, r.msg)
	typ := "audio"
	if r.textOnly {
		typ = "text"
	}
	partWire := map[string]any{"type": typ, "transcript": ""}
	p := part{Type: "output_audio", HasTrans: true}
	if r.textOnly {
		partWire = map[string]any{"type": typ, "text": ""}
		p = part{Type: "output_text"}
	}
	r.msg.Content = []part{p}
	s.syncItems()
	_ = s.send(map[string]any{"type": realtime.EvContentPartAdded, "response_id": r.id, "item_id": r.msg.ID,
		"output_index": 0, "content_index": 0, "part": partWire})
	if r.textOnly {
		s.emitText(r)
		s.finishMessage(r, "completed")
		s.emitFunctionCall(r)
		s.completeResponse(r)
		return
	}
	r.totalMs = answerDurationMs(r.text)
	r.audio = encodedVoice(r.format, s.srv.cfg.VoiceHz, r.totalMs)
	r.phase = phaseStreaming
	r.due = time.Now()
	s.streamChunk(r)
}

// callResponder runs the user's script, turning a panic in it into a failed
// response instead of a crashed server.
func (s *session) callResponder(r *response) (reply Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sim: responder panicked: %v", p)
		}
	}()
	tc := TurnContext{Region: s.srv.cfg.Region, SessionID: s.id, Dialect: s.d, ResponseID: r.id, Trigger: r.trigger,
		Instructions: s.cfg.Instructions, Metadata: r.spec.Metadata}
	if r.spec.Instructions != nil {
		tc.Instructions = *r.spec.Instructions
	}
	for _, it := range r.ctxItems {
		tc.Items = append(tc.Items, s.itemRecord(it))
		r.inTokens += itemTokens(it)
		switch {
		case it.Type == "message" && it.Role == "user":
			tc.Turn++
			tc.Heard = it.Heard
		case it.Type == "function_call_output":
			tc.Heard = it.Heard
		}
	}
	for _, raw := range s.cfg.Tools {
		var t struct{ Name string }
		if json.Unmarshal(raw, &t) == nil && t.Name != "" {
			tc.Tools = append(tc.Tools, t.Name)
		}
	}
	return s.srv.cfg.Responder(tc), nil
}

// itemTokens is a rough, deterministic usage estimate ([COSTS]: user audio
// 1 token / 100 ms, assistant audio 1 token / 50 ms; text ≈ 4 chars/token).
func itemTokens(it *item) int {
	n := utf8.RuneCountInString(it.Name+it.Arguments+it.Output) / 4
	for _, p := range it.Content {
		n += utf8.RuneCountInString(p.Text+p.Transcript) / 4
		if p.Type == "input_audio" {
			n += p.AudioMs / 100
		} else if p.Type == "output_audio" {
			n += p.AudioMs / 50
		}
	}
	return n
}

// addOutputItem appends a model output item: response.output_item.added and,
// for default-conversation responses, the conversation notification with the
// item in_progress and empty (§3.6 steps 2–3). Returns the previous item id.
func (s *session) addOutputItem(r *response, it *item) string {
	idx := len(r.outputs)
	r.outputs = append(r.outputs, it)
	s.updateResp(r, func(rr *ResponseRecord) { rr.ItemIDs = append(rr.ItemIDs, it.ID) })
	prev := ""
	if !r.outOfBand {
		prev = s.lastItemID()
		s.items = append(s.items, it)
		s.syncItems()
	}
	_ = s.send(map[string]any{"type": realtime.EvOutputItemAdded, "response_id": r.id, "output_index": idx, "item": renderItem(s.d, it, false)})
	if !r.outOfBand {
		typ := realtime.EvItemAdded
		if s.d == realtime.DialectPreview {
			typ = "conversation.item.created"
		}
		_ = s.send(map[string]any{"type": typ, "previous_item_id": nullIfEmpty(prev), "item": renderItem(s.d, it, false)})
	}
	return prev
}

// streamChunk sends the next audio chunk with its share of the transcript,
// applying mid-audio faults at their exact thresholds.
func (s *session) streamChunk(r *response) {
	if thr := r.fault.nextThreshold(); thr > 0 && r.sentMs >= thr {
		s.fireThreshold(r, thr)
		return
	}
	c := min(chunkMs, r.totalMs-r.sentMs)
	if thr := r.fault.nextThreshold(); thr > 0 {
		c = min(c, thr-r.sentMs)
	}
	bpm := r.format.BytesPerMs()
	chunk := r.audio[r.sentMs*bpm : (r.sentMs+c)*bpm]
	r.sentMs += c
	upto := len(r.runes) * r.sentMs / r.totalMs
	deltaType, transType := realtime.EvOutputAudioDelta, realtime.EvOutputAudioTranscriptDelta
	if s.d == realtime.DialectPreview {
		deltaType, transType = "response.audio.delta", "response.audio_transcript.delta"
	}
	if upto > r.sentRune {
		_ = s.send(map[string]any{"type": transType, "response_id": r.id, "item_id": r.msg.ID, "output_index": 0,
			"content_index": 0, "delta": string(r.runes[r.sentRune:upto])})
		r.sentRune = upto
	}
	_ = s.send(map[string]any{"type": deltaType, "response_id": r.id, "item_id": r.msg.ID, "output_index": 0,
		"content_index": 0, "delta": base64.StdEncoding.EncodeToString(chunk)})
	s.audioProduced = true
	p := &r.msg.Content[0]
	p.AudioMs, p.Transcript = r.sentMs, string(r.runes[:r.sentRune])
	s.updateResp(r, func(rr *ResponseRecord) { rr.AudioMs = r.sentMs })
	s.syncItems()
	if s.dead {
		return
	}
	if thr := r.fault.nextThreshold(); thr > 0 && r.sentMs >= thr {
		s.fireThreshold(r, thr)
		return
	}
	if r.sentMs >= r.totalMs {
		s.finishMessage(r, "completed")
		s.emitFunctionCall(r)
		s.completeResponse(r)
		return
	}
	// Pace at Speedup× real time; a late wake-up catches up.
	r.due = r.due.Add(time.Duration(float64(time.Duration(c)*time.Millisecond) / s.srv.cfg.Speedup))
}

// fireThreshold applies the mid-audio fault(s) armed at thr, most severe
// first: drop, close 1011, fail, stall.
func (s *session) fireThreshold(r *response, thr int) {
	f := &r.fault
	switch {
	case f.dropAfterMs == thr:
		s.log.Info("fault injected: dropping connection", "response", r.id, "audio_ms", r.sentMs)
		s.updateResp(r, func(rr *ResponseRecord) { rr.Fault = "drop_after_audio" })
		s.drop()
	case f.closeAfterMs == thr:
		f.closeAfterMs = 0
		if !s.srv.faults.takeCloseOnce() {
			s.streamChunk(r) // already fired elsewhere: carry on
			return
		}
		s.log.Info("fault injected: close 1011", "response", r.id, "audio_ms", r.sentMs)
		s.updateResp(r, func(rr *ResponseRecord) { rr.Fault = "close_after_audio" })
		s.closeWith(websocket.StatusInternalError, "internal server error")
	case f.failAfterMs == thr:
		s.log.Info("fault injected: fail after audio", "response", r.id, "audio_ms", r.sentMs)
		s.updateResp(r, func(rr *ResponseRecord) { rr.Fault = "fail_after_audio" })
		s.failResponse(r)
	case f.stallMidMs == thr:
		s.log.Info("fault injected: stall mid audio", "response", r.id, "audio_ms", r.sentMs)
		s.updateResp(r, func(rr *ResponseRecord) { rr.Fault = "stall_mid_audio" })
		r.phase = phaseStalled
	}
}

func (s *session) emitText(r *response) {
	deltaType, doneType := realtime.EvOutputTextDelta, realtime.EvOutputTextDone
	if s.d == realtime.DialectPreview {
		deltaType, doneType = "response.text.delta", "response.text.done"
	}
	for i := 0; i < len(r.runes); i += 24 {
		_ = s.send(map[string]any{"type": deltaType, "response_id": r.id, "item_id": r.msg.ID, "output_index": 0,
			"content_index": 0, "delta": string(r.runes[i:min(i+24, len(r.runes))])})
	}
	r.sentRune = len(r.runes)
	r.msg.Content[0].Text = r.text
	_ = s.send(map[string]any{"type": doneType, "response_id": r.id, "item_id": r.msg.ID, "output_index": 0,
		"content_index": 0, "text": r.text})
}

// finishMessage closes the assistant message: the audio/transcript .done
// events (also sent for interrupted responses, §3.6), content_part.done,
// output_item.done and, in GA, conversation.item.done.
func (s *session) finishMessage(r *response, status string) {
	it := r.msg
	if it == nil || it.Status != "in_progress" {
		return
	}
	it.Status = status
	partWire := map[string]any{"type": "text", "text": r.text}
	if !r.textOnly {
		transcript := string(r.runes[:r.sentRune])
		if status == "completed" {
			transcript = r.text
			r.sentRune = len(r.runes)
		}
		p := &it.Content[0]
		if !it.Truncated {
			p.Transcript, p.HasTrans = transcript, true
		}
		audioDone, transDone := realtime.EvOutputAudioDone, realtime.EvOutputAudioTranscriptDone
		if s.d == realtime.DialectPreview {
			audioDone, transDone = "response.audio.done", "response.audio_transcript.done"
		}
		_ = s.send(map[string]any{"type": audioDone, "response_id": r.id, "item_id": it.ID, "output_index": 0, "content_index": 0})
		_ = s.send(map[string]any{"type": transDone, "response_id": r.id, "item_id": it.ID, "output_index": 0,
			"content_index": 0, "transcript": transcript})
		partWire = map[string]any{"type": "audio", "transcript": transcript}
	}
	s.syncItems()
	_ = s.send(map[string]any{"type": realtime.EvContentPartDone, "response_id": r.id, "item_id": it.ID,
		"output_index": 0, "content_index": 0, "part": partWire})
	s.finishItem(r, it, 0)
}

func (s *session) finishItem(r *response, it *item, idx int) {
	_ = s.send(map[string]any{"type": realtime.EvOutputItemDone, "response_id": r.id, "output_index": idx, "item": renderItem(s.d, it, false)})
	if !r.outOfBand && s.d == realtime.DialectGA {
		_ = s.send(map[string]any{"type": realtime.EvItemDone, "previous_item_id": nullIfEmpty(s.prevOf(it.ID)), "item": renderItem(s.d, it, false)})
	}
}

func (s *session) prevOf(id string) string {
	_, idx := s.findItem(id)
	if idx <= 0 {
		return ""
	}
	return s.items[idx-1].ID
}

// emitFunctionCall emits the Reply's function call as an output item (§3.6
// function-call round trip). The client must answer with a
// function_call_output item and its own response.create.
func (s *session) emitFunctionCall(r *response) {
	if r.fc == nil || s.dead {
		return
	}
	callID := r.fc.CallID
	if callID == "" {
		callID = newID("call_", 16)
	}
	it := &item{ID: newID("item_", 21), Type: "function_call", Status: "in_progress", CallID: callID, Name: r.fc.Name,
		Origin: OriginResponse, ResponseID: r.id}
	idx := len(r.outputs)
	s.addOutputItem(r, it)
	s.updateResp(r, func(rr *ResponseRecord) { rr.CallID = callID })
	args := []rune(r.fc.Arguments)
	half := len(args) / 2
	for _, d := range []string{string(args[:half]), string(args[half:])} {
		if d == "" {
			continue
		}
		_ = s.send(map[string]any{"type": realtime.EvFunctionCallArgumentsDelta, "response_id": r.id, "item_id": it.ID,
			"output_index": idx, "call_id": callID, "delta": d})
	}
	it.Arguments, it.Status = r.fc.Arguments, "completed"
	s.syncItems()
	_ = s.send(map[string]any{"type": realtime.EvFunctionCallArgumentsDone, "response_id": r.id, "item_id": it.ID,
		"output_index": idx, "call_id": callID, "name": it.Name, "arguments": it.Arguments})
	s.finishItem(r, it, idx)
}

func (s *session) completeResponse(r *response) {
	s.endResponse(r, realtime.StatusCompleted, nil, "")
}

// failResponse ends r with status failed and the §3.7 server_error, keeping
// any partial output.
func (s *session) failResponse(r *response) {
	s.finishMessage(r, "incomplete")
	s.failedOnce = true
	details := map[string]any{"type": realtime.StatusFailed, "error": map[string]any{
		"type": errTypeServer, "code": nil, "message": serverErrorMessage(s.id)}}
	s.endResponse(r, realtime.StatusFailed, details, errTypeServer)
}

// failRateLimited ends r as a throttled response: status failed with the
// inference_rate_limit_exceeded error (§3.7, [LK]) and no output. The
// message carries the wait in the API's usual "Please try again in Ns."
// wording, the only place a WebSocket session can say it.
func (s *session) failRateLimited(r *response) {
	wait := retryAfterSeconds(s.srv.faults.snapshot().retryAfter())
	details := map[string]any{"type": realtime.StatusFailed, "error": map[string]any{
		"type": errTypeInvalidRequest, "code": codeInferenceRateLimit, "message": rateLimitMessage(s.model, wait)}}
	s.endResponse(r, realtime.StatusFailed, details, codeInferenceRateLimit)
}

// textReplayContext reports whether a response context holds a
// client-created text message after its last caller-audio user turn (or
// with none): the condition of TextAfterReplayRate.
func textReplayContext(items []*item) bool {
	replayed := false
	for _, it := range items {
		if it.Type != "message" {
			continue
		}
		if it.Origin == OriginClient {
			for _, p := range it.Content {
				if p.Type == "input_text" || p.Type == "output_text" {
					replayed = true
				}
			}
		}
		if it.Role == "user" {
			// A later user turn decides: caller audio answers in audio.
			audio := false
			for _, p := range it.Content {
				audio = audio || p.Type == "input_audio"
			}
			if audio {
				replayed = false
			}
		}
	}
	return replayed
}

// cancelResponse ends r with status cancelled (reason client_cancelled or
// turn_detected, §3.7). A response that never announced itself ends with a
// bare response.done, the quirk §3.6 notes.
func (s *session) cancelResponse(r *response, reason string) {
	s.finishMessage(r, "incomplete")
	s.endResponse(r, realtime.StatusCancelled, map[string]any{"type": realtime.StatusCancelled, "reason": reason}, reason)
}

func (s *session) handleCancel(responseID string) *apiError {
	var target *response
	for _, r := range s.responses() {
		if responseID == "" && r == s.active || responseID != "" && r.id == responseID {
			target = r
		}
	}
	if target == nil {
		return invalidReq(codeCancelNotActive, "", cancelNotActiveMessage)
	}
	s.cancelResponse(target, "client_cancelled")
	return nil
}

func (s *session) endResponse(r *response, status string, details map[string]any, reason string) {
	if r.phase == phaseDone {
		return
	}
	r.phase = phaseDone
	usage := status == realtime.StatusCompleted || r.sentMs > 0
	_ = s.send(map[string]any{"type": realtime.EvResponseDone, "response": s.renderResponse(r, status, details, usage)})
	u := s.usage(r, usage)
	s.updateResp(r, func(rr *ResponseRecord) {
		rr.Status, rr.Reason, rr.AudioMs = status, reason, r.sentMs
		rr.InputTokens, rr.OutputTokens = u["input_tokens"].(int), u["output_tokens"].(int)
	})
	if r == s.active {
		s.active = nil
	}
	for i, x := range s.oob {
		if x == r {
			s.oob = append(s.oob[:i], s.oob[i+1:]...)
			break
		}
	}
	if !r.outOfBand && s.idleEnabled() && !s.inSpeech {
		// §2.1: the idle timer starts at response.done plus the assistant
		// audio's playback duration.
		s.idleArmed = true
		s.idleStart = s.totalTicks + int64(r.sentMs)*ticksPerMs
		s.idleDeadline = s.idleStart + int64(s.cfg.TurnDetection.IdleTimeoutMs)*ticksPerMs
	}
	if s.pendingAuto && s.active == nil && !s.dead {
		s.pendingAuto = false
		s.startResponse(TriggerVAD, &responseSpec{}, "")
	}
}

// renderResponse renders the response object of response.created/done in
// the session's dialect (§3.6, §3.7).
func (s *session) renderResponse(r *response, status string, details map[string]any, withUsage bool) map[string]any {
	output := make([]map[string]any, 0, len(r.outputs))
	if status != realtime.StatusInProgress {
		for _, it := range r.outputs {
			output = append(output, renderItem(s.d, it, false))
		}
	}
	var conv any = s.convID
	if r.outOfBand {
		conv = nil
	}
	var md any
	if r.spec.Metadata != nil {
		md = r.spec.Metadata
	}
	var sd any
	if details != nil {
		sd = details
	}
	var usage any
	if status != realtime.StatusInProgress {
		usage = s.usage(r, withUsage)
	}
	m := map[string]any{"object": "realtime.response", "id": r.id, "status": status, "status_details": sd,
		"output": output, "conversation_id": conv, "usage": usage, "metadata": md}
	if s.d == realtime.DialectPreview {
		mods := []string{"text", "audio"}
		if r.askedText {
			mods = []string{"text"}
		}
		m["modalities"] = mods
		m["voice"] = r.voice
		m["output_audio_format"] = previewFormatName(r.format)
		m["temperature"] = s.cfg.Temperature
		m["max_output_tokens"] = s.cfg.MaxOutputTokens
		return m
	}
	mods := []string{"audio"}
	if r.askedText {
		mods = []string{"text"}
	}
	m["output_modalities"] = mods
	m["max_output_tokens"] = s.cfg.MaxOutputTokens
	m["audio"] = map[string]any{"output": map[string]any{"format": gaFormatObj(r.format), "voice": r.voice}}
	return m
}

// usage is zero for responses that produced nothing (§3.7: failed responses
// usually carry zero usage).
func (s *session) usage(r *response, nonZero bool) map[string]any {
	in, outText, outAudio := 0, 0, 0
	if nonZero {
		in = r.inTokens
		outText = r.sentRune / 4
		if !r.textOnly {
			outAudio = r.sentMs / 50
		}
	}
	return map[string]any{
		"total_tokens": in + outText + outAudio, "input_tokens": in, "output_tokens": outText + outAudio,
		"input_token_details": map[string]any{"text_tokens": in, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 0,
			"cached_tokens_details": map[string]any{"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
		"output_token_details": map[string]any{"text_tokens": outText, "audio_tokens": outAudio},
	}
}
