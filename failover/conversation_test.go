package failover

import (
	"encoding/json"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

func requireSameConfig(t *testing.T, want, got realtime.SessionConfig) {
	t.Helper()
	require.Equal(t, want, got)
	wb, err := json.Marshal(want)
	require.NoError(t, err)
	gb, err := json.Marshal(got)
	require.NoError(t, err)
	require.Equal(t, string(wb), string(gb), "session config must be byte-identical")
}

func TestNormalTurn(t *testing.T) {
	h := newHarness(t, Config{Greeting: "Greet the caller by saying the clinic's name."}, testRegions())
	select {
	case <-h.conv.Ready():
		t.Fatal("ready before any session")
	default:
	}
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	requireSameConfig(t, testSessionConfig(), s1.cfg)
	select {
	case <-h.conv.Ready():
	case <-time.After(waitFor):
		t.Fatal("Ready not closed once the first session is up")
	}

	// The greeting: one response.create, instructions after the session's.
	require.Eventually(t, func() bool { return len(s1.responses()) == 1 }, waitFor, time.Millisecond)
	require.Equal(t, testSessionConfig().Instructions+"\n\nGreet the caller by saying the clinic's name.", s1.responses()[0].Instructions)
	h.answer(s1, "r0", "a0", "Hello, Main Street clinic.", 600)

	u1 := h.userTurn(s1, "u1", 1, 10)
	require.Equal(t, u1, s1.appended(), "caller audio goes to the session as is")
	h.answer(s1, "r1", "a1", "Sure, what day suits you?", 1000)
	require.Equal(t, 1000*bpm, h.player.bytesFor("a1"), "all model audio reached the player")
	h.push(s1, realtime.ServerEvent{Type: realtime.EvInputTranscriptionCompleted, ItemID: "u1", Transcript: "I need an appointment"})

	h.actor(func(c *Conversation) {
		entries := c.rec.Entries()
		require.Len(t, entries, 3)
		require.Equal(t, realtime.EntryAssistant, entries[0].Kind)
		require.Equal(t, "Hello, Main Street clinic.", entries[0].Text)
		require.Equal(t, realtime.EntryUser, entries[1].Kind)
		require.Equal(t, "I need an appointment", entries[1].Text)
		require.Equal(t, u1, entries[1].Audio)
		require.Equal(t, "Sure, what day suits you?", entries[2].Text)
		require.Equal(t, 1000, entries[2].HeardMs)
	})
	require.Equal(t, 1, len(s1.responses()), "VAD answers the caller; the bridge created only the greeting")
	require.Equal(t, 2.0, h.metric("sipbridge_realtime_responses_total", "region", "A", "status", "completed"))
	require.NoError(t, h.stop())
	require.True(t, s1.closed(), "the session is closed when the call ends")
}

func TestBargeIn(t *testing.T) {
	tests := []struct {
		name          string
		interrupt     bool // session interrupt_response
		playedMs      int
		wantTruncate  []call
		wantFlush     bool
		wantCancel    bool
		wantHeardMs   int
		secondItemMs  int // a second item queued after the first (0 = none)
		secondPlayed  int
		truncateOnSec bool
	}{
		{name: "truncate at played ms", interrupt: true, playedMs: 300, wantFlush: true,
			wantTruncate: []call{{op: "truncate", itemID: "a1", audioEndMs: 300}}, wantHeardMs: 300},
		{name: "nothing played: no truncate", interrupt: true, playedMs: 0, wantFlush: true, wantHeardMs: 0},
		{name: "interrupt_response false also cancels", interrupt: false, playedMs: 500, wantFlush: true, wantCancel: true,
			wantTruncate: []call{{op: "truncate", itemID: "a1", audioEndMs: 500}}, wantHeardMs: 500},
		{name: "all played: not a barge-in", interrupt: true, playedMs: 1000, wantHeardMs: 1000},
		{name: "truncate follows the item being played", interrupt: true, playedMs: 1000, wantFlush: true,
			secondItemMs: 800, secondPlayed: 200, wantHeardMs: 1000,
			wantTruncate: []call{{op: "truncate", itemID: "a2", audioEndMs: 200}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Session: testSessionConfig()}
			cfg.Session.TurnDetection.InterruptResponse = tc.interrupt
			h, s1 := startActive(t, cfg, testRegions())
			h.userTurn(s1, "u1", 1, 5)
			h.push(s1, created("r1"))
			h.speak(s1, "r1", "a1", "one two three four five six", 1000)
			h.player.setPlayed("a1", tc.playedMs)
			if tc.secondItemMs > 0 {
				h.speak(s1, "r1", "a2", "and more words here", tc.secondItemMs)
				h.player.setPlayed("a2", tc.secondPlayed)
			}
			flushes := h.player.flushCount()
			h.push(s1, realtime.ServerEvent{Type: realtime.EvInputSpeechStarted, ItemID: "u2", AudioStartMs: 100})
			require.Equal(t, tc.wantTruncate, s1.ops("truncate"))
			require.Equal(t, tc.wantFlush, h.player.flushCount() > flushes)
			if tc.wantCancel {
				require.Equal(t, []call{{op: "cancel", respID: "r1"}}, s1.ops("cancel"))
			} else {
				require.Empty(t, s1.ops("cancel"))
			}
			h.actor(func(c *Conversation) {
				e, ok := c.rec.Entry("a1")
				require.True(t, ok)
				require.Equal(t, tc.wantHeardMs, e.HeardMs)
			})
			if tc.wantFlush {
				// The tail of the interrupted answer must not play.
				before := h.player.bytesFor("a1")
				h.push(s1, realtime.ServerEvent{Type: realtime.EvOutputAudioDelta, ResponseID: "r1", ItemID: "a1", Audio: make([]byte, 800)})
				require.Equal(t, before, h.player.bytesFor("a1"))
			}
		})
	}
}

func TestSingleResponseInFlight(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"),
		realtime.ServerEvent{Type: realtime.EvOutputItemDone, ResponseID: "r1",
			Item: &realtime.Item{ID: "fc1", Type: "function_call", CallID: "call_1", Name: "lookup", Arguments: `{}`}})
	outs := s1.items()
	require.Len(t, outs, 1)
	require.Equal(t, "function_call_output", outs[0].Type)
	require.Equal(t, "call_1", outs[0].CallID)
	require.JSONEq(t, `{"ok":false,"error":"unknown function \"lookup\""}`, outs[0].Output)
	require.Empty(t, s1.responses(), "the follow-up waits for response.done")

	// A DTMF while the response runs is queued too.
	h.conv.DTMF('4')
	h.waitActor(func(c *Conversation) bool { return len(c.queue) == 2 }, "two creates queued")
	require.Empty(t, s1.responses())

	h.push(s1, done("r1", realtime.StatusCompleted, nil))
	require.Len(t, s1.responses(), 1, "one create at a time")
	// The server's race error is not fatal: no swap, the create is dropped.
	h.push(s1, realtime.ServerEvent{Type: realtime.EvError, Error: &realtime.ErrorDetail{Type: "invalid_request_error",
		Code: "conversation_already_has_active_response", Message: "Conversation already has an active response"}})
	h.push(s1, created("r2"), done("r2", realtime.StatusCompleted, nil))
	require.Len(t, s1.responses(), 2, "the next queued create goes after response.done")
	require.Len(t, h.dialer.dialed(), 1, "recoverable errors never swap")
	note := s1.items()[1]
	require.Equal(t, "system", note.Role)
	require.Equal(t, "The caller pressed 4.", note.Content[0].Text)
}

func TestRecoverableErrorsDoNotSwap(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	for _, d := range []realtime.ErrorDetail{
		{Type: "invalid_request_error", Code: "response_cancel_not_active", Message: "Cancellation failed: no active response found"},
		{Type: "invalid_request_error", Code: "input_audio_buffer_commit_empty", Message: "buffer too small"},
		{Type: "invalid_request_error", Message: "Audio content of 900ms is already shorter than 1500ms"},
		{Type: "invalid_request_error", Code: "invalid_value", Message: "Only model output audio messages can be truncated"},
		{Type: "invalid_request_error", Code: "unknown_parameter", Message: "Unknown parameter"},
	} {
		h.push(s1, realtime.ServerEvent{Type: realtime.EvError, EventID: "event_1", Error: &d})
	}
	h.push(s1, realtime.ServerEvent{Type: "some.future.event"})
	require.Len(t, h.dialer.dialed(), 1)
	require.Empty(t, h.controlsOf(ControlSwapStarted))
	lines := h.logs.lines("failover: recoverable error event")
	require.Len(t, lines, 5)
	require.Equal(t, "event_1", lines[0]["event_id"])
	require.Equal(t, "response_cancel_not_active", lines[0]["code"])
	require.Equal(t, "call-1", lines[0]["call_id"])
	require.Equal(t, s1.id, lines[0]["session_id"])
	require.Equal(t, "A", lines[0]["region"])
}

func TestEndCallWaitsForGoodbye(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "bye", "Goodbye, have a nice day.", 1200)
	h.push(s1, realtime.ServerEvent{Type: realtime.EvOutputItemDone, ResponseID: "r1",
		Item: &realtime.Item{ID: "fc1", Type: "function_call", CallID: "call_end", Name: "end_call", Arguments: `{}`}})
	require.Len(t, s1.items(), 1)
	require.Equal(t, realtime.Item{ID: s1.items()[0].ID, Type: "function_call_output", CallID: "call_end", Output: `{"ok":true}`}, s1.items()[0])
	h.finishSpeech(s1, "r1", "bye", "Goodbye, have a nice day.")
	h.push(s1, done("r1", realtime.StatusCompleted, nil))
	require.Empty(t, s1.responses(), "no response after end_call")
	h.player.setPlayed("bye", 600)
	h.conv.PlayoutDone("bye", 600) // the queue drained early: not the end yet
	h.waitActor(func(*Conversation) bool { return true }, "sync")
	require.Empty(t, h.controlsOf(ControlEndCall), "the goodbye is still playing")
	h.player.setPlayed("bye", 1200)
	h.conv.PlayoutDone("bye", 1200)
	ctl := h.waitControl(ControlEndCall)
	require.Equal(t, ControlEndCall, ctl.Kind)
	require.Len(t, h.controlsOf(ControlEndCall), 1)
}

func TestTransferCall(t *testing.T) {
	tests := []struct {
		name       string
		args       string
		targets    []string
		wantTarget string
		wantRefuse string
	}{
		{name: "default target", args: `{}`, targets: []string{"sip:desk@pbx", "sip:nurse@pbx"}, wantTarget: "sip:desk@pbx"},
		{name: "named target", args: `{"target":"sip:nurse@pbx"}`, targets: []string{"sip:desk@pbx", "sip:nurse@pbx"}, wantTarget: "sip:nurse@pbx"},
		{name: "target not allowed", args: `{"target":"sip:ceo@pbx"}`, targets: []string{"sip:desk@pbx"}, wantRefuse: `target \"sip:ceo@pbx\" is not allowed`},
		{name: "no targets", args: `{}`, wantRefuse: "transfers are not available on this line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, s1 := startActive(t, Config{TransferTargets: tc.targets}, testRegions())
			h.userTurn(s1, "u1", 1, 5)
			h.push(s1, created("r1"), realtime.ServerEvent{Type: realtime.EvFunctionCallArgumentsDone, ResponseID: "r1",
				ItemID: "fc1", CallID: "call_t", Name: "transfer_call", Arguments: tc.args})
			h.push(s1, done("r1", realtime.StatusCompleted, nil))
			if tc.wantRefuse != "" {
				require.Len(t, s1.items(), 1)
				require.Contains(t, s1.items()[0].Output, tc.wantRefuse)
				require.Len(t, s1.responses(), 1)
				require.Empty(t, h.controlsOf(ControlTransfer))
				return
			}
			ctl := h.waitControl(ControlTransfer)
			require.Equal(t, Control{Kind: ControlTransfer, Target: tc.wantTarget, CallID: "call_t"}, ctl)
			require.Empty(t, s1.items(), "the output waits for the transfer's result")
			h.conv.TransferResult("call_t", false, "486 Busy Here")
			require.Eventually(t, func() bool { return len(s1.responses()) == 1 }, waitFor, time.Millisecond)
			require.Len(t, s1.items(), 1)
			require.Equal(t, "call_t", s1.items()[0].CallID)
			require.JSONEq(t, `{"ok":false,"error":"486 Busy Here"}`, s1.items()[0].Output)
		})
	}
}

func TestHoldStopsAudioAndCancels(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "a1", "let me check", 1000)
	h.player.setPlayed("a1", 200)
	h.conv.SetHold(true)
	h.waitActor(func(c *Conversation) bool { return c.held }, "held")
	require.Equal(t, []call{{op: "cancel", respID: "r1"}}, s1.ops("cancel"))
	require.Equal(t, []call{{op: "truncate", itemID: "a1", audioEndMs: 200}}, s1.ops("truncate"))
	require.Len(t, s1.ops("clear"), 1)
	before := len(s1.appended())
	h.write(framesOf(7, 5)...)
	require.Equal(t, before, len(s1.appended()), "no caller audio to the model on hold")
	h.conv.SetHold(false)
	h.waitActor(func(c *Conversation) bool { return !c.held }, "resumed")
	h.write(framesOf(8, 2)...)
	require.Equal(t, before+2*frame, len(s1.appended()))
}

// ---- failover triggers ------------------------------------------------------

const longAnswer = "one two three four five six seven eight nine ten"

type triggerCase struct {
	name      string
	trigger   Trigger
	midAnswer bool // the caller heard 400 of 1000 ms of the failing answer
	region    string
	cfg       func(*Config)
	setup     func(h *harness, gate chan struct{})
	induce    func(h *harness, s *fakeSession)
	pauseMs   int64
	check     func(t *testing.T, h *harness)
}

func failed(code, typ, msg string) *realtime.ErrorDetail {
	return &realtime.ErrorDetail{Type: typ, Code: code, Message: msg}
}

func TestSwapTriggers(t *testing.T) {
	gateB := func(h *harness, gate chan struct{}) { h.dialer.then("B", dialStep{gate: gate}) }
	tests := []triggerCase{
		{name: "response failed server_error mid-answer", trigger: TriggerResponseFailed, midAnswer: true, region: "B", setup: gateB,
			induce: func(h *harness, s *fakeSession) {
				h.push(s, done("r4", realtime.StatusFailed, failed("", "server_error", "The server had an error while processing your request.")))
			}},
		{name: "rate limited before audio", trigger: TriggerRateLimited, region: "B", setup: gateB,
			induce: func(h *harness, s *fakeSession) {
				h.push(s, created("r4"), done("r4", realtime.StatusFailed, failed("inference_rate_limit_exceeded", "invalid_request_error", "")))
			}},
		{name: "insufficient quota opens the breaker", trigger: TriggerAuth, region: "B", setup: gateB,
			induce: func(h *harness, s *fakeSession) {
				h.push(s, created("r4"), done("r4", realtime.StatusFailed, failed("insufficient_quota", "insufficient_quota", "You exceeded your current quota")))
			},
			check: func(t *testing.T, h *harness) {
				st := h.pool.Status()
				require.Equal(t, BreakerOpen, st[0].State)
				require.True(t, st[0].AuthFailed)
				require.NotContains(t, names(h.pool.Candidates()), "A")
			}},
		{name: "error event server_error", trigger: TriggerServerError, midAnswer: true, region: "B", setup: gateB,
			induce: func(h *harness, s *fakeSession) {
				h.push(s, realtime.ServerEvent{Type: realtime.EvError, Error: failed("", "server_error", "The server had an error")})
			}},
		{name: "close 1011", trigger: TriggerClosed, midAnswer: true, region: "B", setup: gateB,
			induce: func(_ *harness, s *fakeSession) {
				s.end(&realtime.CloseError{Code: 1011, Reason: "keepalive ping timeout"})
			}},
		{name: "connection dropped", trigger: TriggerDropped, region: "B", setup: gateB,
			induce: func(_ *harness, s *fakeSession) {
				s.end(&realtime.CloseError{Code: -1, Err: io.ErrUnexpectedEOF})
			}},
		{name: "events closed without a reason", trigger: TriggerDropped, midAnswer: true, region: "B", setup: gateB,
			induce: func(_ *harness, s *fakeSession) { s.end(nil) }},
		{name: "session_expired error", trigger: TriggerExpiry, midAnswer: true, region: "A",
			setup: func(h *harness, gate chan struct{}) { h.dialer.then("A", dialStep{}, dialStep{gate: gate}) },
			induce: func(h *harness, s *fakeSession) {
				h.push(s, realtime.ServerEvent{Type: realtime.EvError, Error: failed("session_expired", "invalid_request_error", "Your session hit the maximum duration of 30 minutes.")})
			}},
		{name: "close 1001", trigger: TriggerExpiry, region: "A",
			setup: func(h *harness, gate chan struct{}) { h.dialer.then("A", dialStep{}, dialStep{gate: gate}) },
			induce: func(_ *harness, s *fakeSession) {
				s.end(&realtime.CloseError{Code: 1001, Reason: "Your session hit the maximum duration of 60 minutes."})
			}},
		{name: "expires_at reached mid-answer", trigger: TriggerExpiry, midAnswer: true, region: "A",
			cfg: func(c *Config) { c.RotateMargin = time.Millisecond },
			setup: func(h *harness, gate chan struct{}) {
				s := newFakeSession("sess_A_expiring", "A")
				s.expires = h.clock.Now().Add(3 * time.Second)
				h.dialer.then("A", dialStep{sess: s}, dialStep{gate: gate})
			},
			induce:  func(h *harness, _ *fakeSession) { h.advance(3 * time.Second) },
			pauseMs: 3000},
		{name: "stall: no response.created", trigger: TriggerStallNoResponse, region: "B", setup: gateB,
			induce:  func(h *harness, _ *fakeSession) { h.advance(6 * time.Second) },
			pauseMs: 6000},
		{name: "stall: no first audio", trigger: TriggerStallFirstAudio, region: "B", setup: gateB,
			induce: func(h *harness, s *fakeSession) {
				h.push(s, created("r4"))
				h.advance(6 * time.Second)
			},
			pauseMs: 6000},
		{name: "stall: audio stops mid-answer", trigger: TriggerStallMidAudio, midAnswer: true, region: "B", setup: gateB,
			induce:  func(h *harness, _ *fakeSession) { h.advance(5 * time.Second) },
			pauseMs: 5000},
		{name: "connect refused on swap: next region", trigger: TriggerResponseFailed, region: "C",
			setup: func(h *harness, gate chan struct{}) {
				h.dialer.then("B", dialStep{err: &realtime.DialError{Region: "B", Err: syscall.ECONNREFUSED}})
				h.dialer.then("C", dialStep{gate: gate})
			},
			induce: func(h *harness, s *fakeSession) {
				h.push(s, created("r4"), done("r4", realtime.StatusFailed, failed("", "server_error", "")))
			},
			check: func(t *testing.T, h *harness) {
				require.Equal(t, 1.0, h.metric("sipbridge_realtime_connect_errors_total", "region", "B", "kind", "refused"))
				require.Equal(t, []string{"A", "B", "C"}, dialedRegions(h))
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runTriggerCase(t, tc) })
	}
}

func names(rs []Region) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func dialedRegions(h *harness) []string {
	var out []string
	for _, d := range h.dialer.dialed() {
		out = append(out, d.region)
	}
	return out
}

// history plays the call up to the caller's second turn: a first turn and
// answer, a function call with its output and the answer after it.
func history(h *harness, s1 *fakeSession) (u1, u2 []byte, fnOut realtime.Item) {
	u1 = h.userTurn(s1, "u1", 1, 10)
	h.answer(s1, "r1", "a1", "Hello, this is the clinic.", 1000)
	h.push(s1, created("r2"), realtime.ServerEvent{Type: realtime.EvOutputItemDone, ResponseID: "r2",
		Item: &realtime.Item{ID: "fc1", Type: "function_call", CallID: "call_1", Name: "lookup", Arguments: `{"day":"monday"}`}})
	h.push(s1, done("r2", realtime.StatusCompleted, nil))
	require.Len(h.t, s1.responses(), 1, "the tool follow-up")
	fnOut = s1.items()[0]
	h.answer(s1, "r3", "a3", "Monday is free.", 500)
	u2 = h.userTurn(s1, "u2", 2, 15)
	return u1, u2, fnOut
}

func runTriggerCase(t *testing.T, tc triggerCase) {
	cfg := Config{}
	if tc.cfg != nil {
		tc.cfg(&cfg)
	}
	cfg.Session = testSessionConfig()
	h := newHarness(t, cfg, testRegions())
	gate := make(chan struct{})
	tc.setup(h, gate)
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	u1, u2, fnOut := history(h, s1)
	if tc.midAnswer {
		h.push(s1, created("r4"))
		h.speak(s1, "r4", "a4", longAnswer, 1000)
		h.player.setPlayed("a4", 400)
	}
	flushes := h.player.flushCount()
	tc.induce(h, s1)
	h.waitControl(ControlSwapStarted)

	// The caller speaks while the new session is being opened.
	swapAudio := concat(framesOf(9, 5)...)
	h.write(framesOf(9, 5)...)
	close(gate)
	s2 := h.session(2)
	h.waitActive(s2)
	h.waitControl(ControlSwapFinished)
	require.Equal(t, tc.region, s2.region)
	requireSameConfig(t, testSessionConfig(), s2.cfg)

	want := []realtime.Item{
		{ID: "u1", Type: "message", Role: "user", Content: []realtime.ContentPart{{Type: "input_audio", Audio: u1}}},
		{ID: "a1", Type: "message", Role: "assistant", Content: []realtime.ContentPart{{Type: "output_text", Text: "Hello, this is the clinic."}}},
		{ID: "fc1", Type: "function_call", CallID: "call_1", Name: "lookup", Arguments: `{"day":"monday"}`},
		fnOut,
		{ID: "a3", Type: "message", Role: "assistant", Content: []realtime.ContentPart{{Type: "output_text", Text: "Monday is free."}}},
		{ID: "u2", Type: "message", Role: "user", Content: []realtime.ContentPart{{Type: "input_audio", Audio: u2}}},
	}
	if tc.midAnswer {
		// 400 of 1000 ms heard: 40 % of the text, back to a word boundary.
		want = append(want, realtime.Item{ID: "a4", Type: "message", Role: "assistant",
			Content: []realtime.ContentPart{{Type: "output_text", Text: "one two three four"}}})
		require.Greater(t, h.player.flushCount(), flushes, "the unheard rest of the answer is flushed")
	}
	require.Equal(t, want, s2.items())

	resp := s2.responses()
	require.Len(t, resp, 1, "exactly one response.create")
	if tc.midAnswer {
		require.Equal(t, testSessionConfig().Instructions+"\n\n"+continueNote, resp[0].Instructions)
	} else {
		require.Empty(t, resp[0].Instructions)
	}
	require.Equal(t, swapAudio, s2.appended(), "caller audio of the swap delivered, nothing else")
	require.Equal(t, []string{"create_item", "append", "create_response"}, opSequence(s2),
		"replay, then the buffered audio, then one response.create")
	require.Eventually(t, s1.closed, waitFor, time.Millisecond, "old session closed")
	require.Equal(t, 1.0, h.metric("sipbridge_failover_swaps_total", "trigger", tc.trigger.String(), "from", "A", "to", tc.region))

	// The new answer's first audio ends the pause and writes the swap line.
	h.push(s2, created("r5"))
	h.speak(s2, "r5", "a5", "five six seven.", 300)
	require.Equal(t, 300*bpm, h.player.bytesFor("a5"))
	lines := h.logs.lines("failover: session swapped")
	require.Len(t, lines, 1)
	l := lines[0]
	require.Equal(t, tc.trigger.String(), l["trigger"])
	require.Equal(t, "call-1", l["call_id"])
	require.Equal(t, "A", l["region"])
	require.Equal(t, s1.id, l["session_id"])
	require.Equal(t, tc.region, l["new_region"])
	require.Equal(t, s2.id, l["new_session_id"])
	require.Equal(t, float64(len(want)), l["items_replayed"])
	require.Equal(t, float64(tc.pauseMs), l["pause_ms"])
	require.Equal(t, uint64(1), histCount(t, h, "sipbridge_failover_pause_seconds"))
	if tc.check != nil {
		tc.check(t, h)
	}
	require.NoError(t, h.stop())
}

func histCount(t *testing.T, h *harness, name string) uint64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func TestRotationAtTurnBoundary(t *testing.T) {
	regions := []Region{{Name: "A", SessionLimit: 30 * time.Minute}, {Name: "B", SessionLimit: 30 * time.Minute}}
	h, s1 := startActive(t, Config{}, regions)
	u1 := h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "a1", "Your appointment is on Monday.", 800)
	h.finishSpeech(s1, "r1", "a1", "Your appointment is on Monday.")

	// Within the margin mid-answer: a fresh session is prepared, but the
	// switch waits for the turn boundary.
	h.advance(29 * time.Minute)
	s2 := h.session(2)
	require.Equal(t, "A", s2.region, "rotation is not a failure: the best region, the current one included")
	h.waitActor(func(c *Conversation) bool { return c.spare != nil }, "rotation target ready")
	require.Empty(t, s2.items())
	h.actor(func(c *Conversation) { require.Equal(t, realtime.Session(s1), c.active.s) })
	h.push(s1, done("r1", realtime.StatusCompleted, nil))
	h.actor(func(c *Conversation) { require.Equal(t, realtime.Session(s1), c.active.s, "still playing") })
	h.player.setPlayed("a1", 800)
	h.conv.PlayoutDone("a1", 800)
	h.waitActive(s2)
	require.Equal(t, []realtime.Item{
		{ID: "u1", Type: "message", Role: "user", Content: []realtime.ContentPart{{Type: "input_audio", Audio: u1}}},
		{ID: "a1", Type: "message", Role: "assistant", Content: []realtime.ContentPart{{Type: "output_text", Text: "Your appointment is on Monday."}}},
	}, s2.items())
	require.Empty(t, s2.responses(), "no turn pending: no response.create")
	require.Eventually(t, s1.closed, waitFor, time.Millisecond)
	require.Equal(t, 1.0, h.metric("sipbridge_failover_rotations_total", "region", "A"))
	require.Equal(t, 0.0, h.metric("sipbridge_failover_swaps_total", "trigger", "rotation", "from", "A", "to", "A"))
	lines := h.logs.lines("failover: session swapped")
	require.Len(t, lines, 1)
	require.Equal(t, "rotation", lines[0]["trigger"])
	require.Equal(t, "no_answer_pending", lines[0]["outcome"])
	// The caller goes on talking to the new session.
	h.write(framesOf(3, 2)...)
	require.Equal(t, 2*frame, len(s2.appended()))
}

func TestWarmStandbyUsedOnSwap(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions("B"))
	standby := h.session(2)
	require.Equal(t, "B", standby.region, "standby in the next candidate region")
	h.waitActor(func(c *Conversation) bool { return c.spare != nil }, "standby ready")
	requireSameConfig(t, testSessionConfig(), standby.cfg)

	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"), done("r1", realtime.StatusFailed, failed("", "server_error", "")))
	h.waitActive(standby)
	require.Len(t, h.dialer.dialed(), 2, "no dial on the swap")
	require.Len(t, standby.items(), 1)
	require.Len(t, standby.responses(), 1)
	h.push(standby, created("r2"))
	h.speak(standby, "r2", "a2", "Sorry, go on.", 200)
	lines := h.logs.lines("failover: session swapped")
	require.Len(t, lines, 1)
	require.Equal(t, true, lines[0]["warm_standby"])
	// A new standby is opened for the next candidate after B (C has none
	// configured, so none), and the old session is closed.
	require.Eventually(t, s1.closed, waitFor, time.Millisecond)
}

func TestWarmStandbyReplacedWhenItDies(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions("B"))
	sb1 := h.session(2)
	h.waitActor(func(c *Conversation) bool { return c.spare != nil }, "standby ready")
	sb1.end(&realtime.CloseError{Code: -1, Err: io.EOF})
	h.waitActor(func(c *Conversation) bool { return c.spare == nil }, "dead standby dropped")
	h.advance(spareRetry)
	sb2 := h.session(3)
	require.Equal(t, "B", sb2.region)
	h.waitActor(func(c *Conversation) bool { return c.spare != nil && c.spare.s == realtime.Session(sb2) }, "new standby")
	h.actor(func(c *Conversation) { require.Equal(t, realtime.Session(s1), c.active.s) })
}

// ---- races ----------------------------------------------------------------

func TestFailureDuringSwap(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	gate := make(chan struct{})
	s1 := newFakeSession("sess_A_slowclose", "A")
	s1.keepOpenOnClose = true // it goes on sending after the swap began
	h.dialer.then("A", dialStep{sess: s1})
	h.dialer.then("B", dialStep{gate: gate, err: &realtime.DialError{Region: "B", StatusCode: 503, Body: "overloaded"}})
	h.start()
	h.waitActive(s1)
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "a1", "partial answer here", 500)
	h.player.setPlayed("a1", 500)
	h.push(s1, done("r1", realtime.StatusFailed, failed("", "server_error", "")))
	h.waitControl(ControlSwapStarted)
	// The old session keeps talking and then dies: all of it is ignored.
	s1.push(
		realtime.ServerEvent{Type: realtime.EvOutputAudioDelta, ResponseID: "r1", ItemID: "a1", Audio: make([]byte, 800)},
		done("r1", realtime.StatusFailed, failed("", "server_error", "")))
	s1.end(&realtime.CloseError{Code: 1011})
	close(gate) // B answers 503
	s2 := h.session(2)
	h.waitActive(s2)
	require.Equal(t, "C", s2.region)
	require.Equal(t, 500*bpm, h.player.bytesFor("a1"), "no audio from the failed session after the swap began")
	h.waitControl(ControlSwapFinished)
	require.Len(t, h.controlsOf(ControlSwapStarted), 1)
	require.Len(t, h.controlsOf(ControlSwapFinished), 1)
	require.Len(t, s2.responses(), 1)
	require.Equal(t, 1.0, h.metric("sipbridge_realtime_connect_errors_total", "region", "B", "kind", "http_5xx"))
}

func TestCancelDuringSwap(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	h.dialer.then("B", dialStep{gate: make(chan struct{})}) // never opens
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.push(s1, realtime.ServerEvent{Type: realtime.EvError, Error: failed("", "server_error", "")})
	h.waitControl(ControlSwapStarted)
	require.Eventually(t, func() bool { return len(h.dialer.dialed()) == 2 }, waitFor, time.Millisecond)
	require.NoError(t, h.stop(), "the caller hung up: not a failure")
	require.Empty(t, h.controlsOf(ControlGiveUp))
	require.Equal(t, 0.0, h.metric("sipbridge_failover_giveups_total"))
}

func TestCancelDuringReplay(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	s2 := newFakeSession("sess_B_slow", "B")
	s2.blockCreateItem = true
	blocked := make(chan struct{})
	s2.createItemBlocked = blocked
	h.dialer.then("B", dialStep{sess: s2})
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.userTurn(s1, "u1", 1, 5)
	// Not h.push: the actor will be stuck in the replay.
	require.True(t, s1.push(realtime.ServerEvent{Type: realtime.EvError, Error: failed("", "server_error", "")}))
	select {
	case <-blocked:
	case <-time.After(waitFor):
		t.Fatal("replay did not start")
	}
	start := time.Now()
	require.NoError(t, h.stop())
	require.Less(t, time.Since(start), replayTimeout, "the hang-up ends the replay, not its timeout")
	require.Empty(t, h.controlsOf(ControlGiveUp))
	require.True(t, s2.closed(), "the half-replayed session is closed")
}

func TestTwoFailuresInARow(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	u1 := h.userTurn(s1, "u1", 1, 5)
	h.answer(s1, "r1", "a1", "Hi.", 300)
	u2 := h.userTurn(s1, "u2", 2, 5)
	h.push(s1, created("r2"), done("r2", realtime.StatusFailed, failed("", "server_error", "")))
	s2 := h.session(2)
	h.waitActive(s2)
	// The new session fails at once, before any audio.
	h.push(s2, created("r3"), done("r3", realtime.StatusFailed, failed("", "server_error", "")))
	s3 := h.session(3)
	h.waitActive(s3)
	require.Equal(t, []string{"A", "B", "C"}, dialedRegions(h))
	wantItems := []realtime.Item{
		{ID: "u1", Type: "message", Role: "user", Content: []realtime.ContentPart{{Type: "input_audio", Audio: u1}}},
		{ID: "a1", Type: "message", Role: "assistant", Content: []realtime.ContentPart{{Type: "output_text", Text: "Hi."}}},
		{ID: "u2", Type: "message", Role: "user", Content: []realtime.ContentPart{{Type: "input_audio", Audio: u2}}},
	}
	require.Equal(t, wantItems, s3.items())
	require.Len(t, s3.responses(), 1)
	h.actor(func(c *Conversation) { require.Equal(t, 1, c.failedInRow) })
	h.answer(s3, "r4", "a4", "Sorry about that. Yes.", 400)
	h.actor(func(c *Conversation) { require.Equal(t, 0, c.failedInRow, "an answered response resets the count") })
	require.Equal(t, 1.0, h.metric("sipbridge_failover_swaps_total", "trigger", "response_failed", "from", "A", "to", "B"))
	require.Equal(t, 1.0, h.metric("sipbridge_failover_swaps_total", "trigger", "response_failed", "from", "B", "to", "C"))
	lines := h.logs.lines("failover: session swapped")
	require.Len(t, lines, 2)
	require.Equal(t, "failed_again", lines[0]["outcome"])
	require.Equal(t, "answered", lines[1]["outcome"])
}

func TestAllRegionsDown(t *testing.T) {
	apology := []byte("sorry-audio")
	h := newHarness(t, Config{ApologyAudio: apology, GiveUpTransfer: "sip:operator@pbx"}, testRegions())
	refused := func(r string) dialStep {
		return dialStep{err: &realtime.DialError{Region: r, Err: syscall.ECONNREFUSED}}
	}
	h.dialer.then("A", dialStep{}, refused("A"))
	h.dialer.then("B", refused("B"))
	h.dialer.then("C", refused("C"))
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.userTurn(s1, "u1", 1, 5)
	h.answer(s1, "r1", "a1", "Hello.", 200)
	// Not h.push: the conversation ends while handling these.
	require.True(t, s1.push(created("r2"), done("r2", realtime.StatusFailed, failed("", "server_error", ""))))
	ctl := h.waitControl(ControlGiveUp)
	require.Equal(t, "sip:operator@pbx", ctl.Target)
	select {
	case err := <-h.runErr:
		t.Fatalf("Run returned (%v) before the call ended it: the apology would be cut", err)
	case <-time.After(50 * time.Millisecond):
	}
	h.cancel() // the call ends it once the apology has played
	var err error
	select {
	case err = <-h.runErr:
		h.runErr <- err
	case <-time.After(waitFor):
		t.Fatal("Run did not return")
	}
	require.ErrorIs(t, err, ErrAllRegionsFailed)
	require.Equal(t, len(apology), h.player.bytesFor(apologyItem))
	require.Equal(t, []string{"A", "B", "C", "A"}, dialedRegions(h), "other regions first, the failed one last")
	require.Equal(t, 1.0, h.metric("sipbridge_failover_giveups_total"))
	require.Len(t, h.logs.lines("failover: giving up, no working session"), 1)
}

func TestFirstConnectGivesUp(t *testing.T) {
	h := newHarness(t, Config{MaxSwapsInRow: 2}, testRegions())
	for _, r := range []string{"A", "B", "C"} {
		h.dialer.then(r, dialStep{err: &realtime.DialError{Region: r, StatusCode: 401, Body: "invalid api key"}})
	}
	h.start()
	h.waitControl(ControlGiveUp)
	h.cancel()
	err := <-h.runErr
	h.runErr <- err
	require.ErrorIs(t, err, ErrAllRegionsFailed)
	require.Equal(t, []string{"A", "B"}, dialedRegions(h))
	require.Equal(t, BreakerOpen, h.pool.Status()[0].State, "401 opens the breaker at once")
	require.Equal(t, 1.0, h.metric("sipbridge_realtime_connect_errors_total", "region", "A", "kind", "auth"))
}

func TestCallerAudioDuringFirstConnect(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	gate := make(chan struct{})
	h.dialer.then("A", dialStep{gate: gate})
	h.start()
	early := concat(framesOf(4, 3)...)
	h.write(framesOf(4, 3)...)
	close(gate)
	s1 := h.session(1)
	h.waitActive(s1)
	require.Equal(t, early, s1.appended(), "audio before the session was up is delivered, not dropped")
}

func TestStaleEventsIgnored(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	s1 := newFakeSession("sess_A_slowclose", "A")
	s1.keepOpenOnClose = true // its events can still arrive after the swap
	h.dialer.then("A", dialStep{sess: s1})
	h.start()
	h.waitActive(s1)
	var oldGen uint64
	h.actor(func(c *Conversation) { oldGen = c.active.gen })
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"), done("r1", realtime.StatusFailed, failed("", "server_error", "")))
	s2 := h.session(2)
	h.waitActive(s2)
	// Directly through the actor's filter, and through the old session.
	stale := []realtime.ServerEvent{
		created("r9"),
		{Type: realtime.EvOutputAudioDelta, ResponseID: "r9", ItemID: "a9", Audio: make([]byte, 800)},
		done("r9", realtime.StatusFailed, failed("", "server_error", "")),
	}
	h.actor(func(c *Conversation) {
		for _, ev := range stale {
			c.onSessionEvent(sessEvent{gen: oldGen, ev: ev})
		}
		c.onSessionEvent(sessEvent{gen: oldGen, end: true, err: errors.New("gone")})
		require.Equal(t, "", c.activeResp)
	})
	h.pushed += len(stale) // counted by the actor, though ignored
	s1.push(stale...)
	h.push(s2, created("r2")) // a live event after the stale ones
	require.Equal(t, 0, h.player.bytesFor("a9"))
	require.Len(t, h.dialer.dialed(), 2, "no second swap")
	h.actor(func(c *Conversation) { require.Equal(t, "r2", c.activeResp) })
}

func TestFillerDuringLongSwap(t *testing.T) {
	filler := []byte("one-moment")
	h := newHarness(t, Config{FillerAfter: 800 * time.Millisecond, FillerAudio: filler}, testRegions())
	gate := make(chan struct{})
	h.dialer.then("B", dialStep{gate: gate})
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"), done("r1", realtime.StatusFailed, failed("", "server_error", "")))
	h.waitControl(ControlSwapStarted)
	h.advance(500 * time.Millisecond)
	require.Equal(t, 0, h.player.bytesFor(fillerItem))
	h.advance(500 * time.Millisecond)
	require.Eventually(t, func() bool { return h.player.bytesFor(fillerItem) == len(filler) }, waitFor, time.Millisecond)
	h.advance(2 * time.Second)
	require.Equal(t, len(filler), h.player.bytesFor(fillerItem), "once")
	close(gate)
	h.waitActive(h.session(2))
}

func TestTransferSurvivesSwap(t *testing.T) {
	h, s1 := startActive(t, Config{TransferTargets: []string{"sip:desk@pbx"}}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"), realtime.ServerEvent{Type: realtime.EvOutputItemDone, ResponseID: "r1",
		Item: &realtime.Item{ID: "fc1", Type: "function_call", CallID: "call_t", Name: "transfer_call", Arguments: `{}`}})
	h.waitControl(ControlTransfer)
	h.push(s1, done("r1", realtime.StatusCompleted, nil))
	s1.end(&realtime.CloseError{Code: 1011})
	s2 := h.session(2)
	h.waitActive(s2)
	for _, it := range s2.items() {
		require.NotEqual(t, "function_call", it.Type, "the call without output is not replayed")
	}
	h.conv.TransferResult("call_t", true, "transferred")
	require.Eventually(t, func() bool { return len(s2.responses()) == 1 }, waitFor, time.Millisecond)
	items := s2.items()
	require.Equal(t, realtime.Item{ID: "fc1", Type: "function_call", CallID: "call_t", Name: "transfer_call", Arguments: `{}`}, items[len(items)-2])
	require.Equal(t, "function_call_output", items[len(items)-1].Type)
	require.JSONEq(t, `{"ok":true,"detail":"transferred"}`, items[len(items)-1].Output)
}

func TestRunTwice(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	h.start()
	h.waitActive(h.session(1))
	require.Error(t, h.conv.Run(t.Context(), h.player))
}

func TestDTMFDuringSwapMergedIntoOneAnswer(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	gate := make(chan struct{})
	h.dialer.then("B", dialStep{gate: gate})
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"), done("r1", realtime.StatusFailed, failed("", "server_error", "")))
	h.waitControl(ControlSwapStarted)
	h.conv.DTMF('7')
	h.waitActor(func(c *Conversation) bool { return c.rec.Len() == 2 }, "note recorded")
	close(gate)
	s2 := h.session(2)
	h.waitActive(s2)
	items := s2.items()
	require.Len(t, items, 2)
	require.Equal(t, "u1", items[0].ID)
	require.Equal(t, "system", items[1].Role)
	require.Equal(t, "The caller pressed 7.", items[1].Content[0].Text)
	require.Len(t, s2.responses(), 1, "the swap's answer covers the key press")
	h.push(s2, created("r2"), done("r2", realtime.StatusCompleted, nil))
	require.Len(t, s2.responses(), 1, "no second answer after it")
}

func TestGreetingRedoneAfterFirstSessionFails(t *testing.T) {
	h, s1 := startActive(t, Config{Greeting: "Say hello."}, testRegions())
	require.Eventually(t, func() bool { return len(s1.responses()) == 1 }, waitFor, time.Millisecond)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "g1", "Hello and welcome to", 1000)
	h.player.setPlayed("g1", 500)
	h.push(s1, done("r1", realtime.StatusFailed, failed("", "server_error", "")))
	s2 := h.session(2)
	h.waitActive(s2)
	require.Equal(t, []realtime.Item{{ID: "g1", Type: "message", Role: "assistant",
		Content: []realtime.ContentPart{{Type: "output_text", Text: "Hello and"}}}}, s2.items())
	resp := s2.responses()
	require.Len(t, resp, 1)
	require.Equal(t, testSessionConfig().Instructions+"\n\nSay hello.\n\n"+continueNote, resp[0].Instructions,
		"the greeting's own instructions are kept, with the continuation")
	h.actor(func(c *Conversation) { require.Equal(t, 1, c.failedInRow, "the first session never answered") })
}

func TestWriteCallerAudioDoesNotAllocate(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	f := frameOf(1)
	// Not running: the queue fills, then every frame takes the drop path,
	// whose buffer goes back to the pool.
	for i := 0; i < callerQueueFrames+1; i++ {
		h.conv.WriteCallerAudio(f)
	}
	allocs := testing.AllocsPerRun(200, func() { h.conv.WriteCallerAudio(f) })
	require.Zero(t, allocs)
	require.Equal(t, float64(201+1), h.metric("sipbridge_failover_caller_frames_dropped_total"))
}

func TestBargeInAfterPlayoutCaughtUp(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "a1", "one two three", 200)
	h.player.setPlayed("a1", 200) // the player caught up with the model
	h.waitActor(func(c *Conversation) bool { return !c.isPlaying() }, "caught up")
	h.push(s1, realtime.ServerEvent{Type: realtime.EvOutputAudioDelta, ResponseID: "r1", ItemID: "a1", Audio: make([]byte, 300*bpm)})
	h.push(s1, realtime.ServerEvent{Type: realtime.EvInputSpeechStarted, ItemID: "u2", AudioStartMs: 100})
	require.Equal(t, []call{{op: "truncate", itemID: "a1", audioEndMs: 200}}, s1.ops("truncate"))
}

// opSequence is s's calls with repeats collapsed.
func opSequence(s *fakeSession) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.calls {
		if len(out) == 0 || out[len(out)-1] != c.op {
			out = append(out, c.op)
		}
	}
	return out
}
