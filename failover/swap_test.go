package failover

import (
	"errors"
	"io"
	"maps"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/stretchr/testify/require"
)

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
		// 400 of the 1000 ms received were played; the other 600 keep
		// playing. What is claimed heard is bounded by a slow speaker over
		// 1000 ms (12 characters of 48), back to a word boundary.
		want = append(want, realtime.Item{ID: "a4", Type: "message", Role: "assistant",
			Content: []realtime.ContentPart{{Type: "output_text", Text: "one two"}}})
		require.Equal(t, flushes, h.player.flushCount(), "the audio received keeps playing")
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
	h.pump()
	require.True(t, s1.closed(), "old session closed")
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
			induce: func(h *harness, _ *fakeSession) {
				h.player.setPlayed("a4", 1000) // the audio received plays out meanwhile
				h.advance(3 * time.Second)
			},
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
			induce: func(h *harness, _ *fakeSession) {
				h.player.setPlayed("a4", 1000) // the audio received plays out meanwhile
				h.advance(5 * time.Second)
			},
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
	h.pump()
	require.True(t, len(h.dialer.dialed()) == 2)
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
	// The caller hangs up while the replay is stuck in a send.
	go func() {
		<-blocked
		h.cancel()
	}()
	start := time.Now()
	h.push(s1, realtime.ServerEvent{Type: realtime.EvError, Error: failed("", "server_error", "")})
	require.Less(t, time.Since(start), replayTimeout, "the hang-up ends the replay, not its timeout")
	require.NoError(t, h.stop())
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
	h.actor(func(c *Conversation) { require.Equal(t, 1, c.swap.failedInRow) })
	h.answer(s3, "r4", "a4", "Sorry about that. Yes.", 400)
	h.actor(func(c *Conversation) {
		require.Equal(t, 0, c.swap.failedInRow, "an answered response resets the count")
	})
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
	// Every region refuses twice in the outage (one failure may be a
	// one-off: TestGiveUpNeedsEveryRegion), and again, once a second, until
	// the outage has lasted minOutageToGiveUp.
	h.dialer.then("A", dialStep{}, refused("A"), refused("A"), refused("A"), refused("A"))
	h.dialer.then("B", refused("B"), refused("B"), refused("B"), refused("B"))
	h.dialer.then("C", refused("C"), refused("C"), refused("C"), refused("C"))
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.userTurn(s1, "u1", 1, 5)
	h.answer(s1, "r1", "a1", "Hello.", 200)
	h.push(s1, created("r2"), done("r2", realtime.StatusFailed, failed("", "server_error", "")))
	for range 5 {
		require.Empty(t, h.controlsOf(ControlGiveUp), "not before the outage has lasted 5 s")
		h.advance(time.Second)
	}
	ctl := h.waitControl(ControlGiveUp)
	require.Equal(t, "sip:operator@pbx", ctl.Target)
	// Run keeps serving until the call ends it: returning now would cut
	// the apology. (Run returns only when its context ends; here the
	// conversation must still take playout reports.)
	h.conv.PlayoutDone(apologyItem, 500)
	h.pump()
	h.advance(time.Minute)
	require.Len(t, h.controlsOf(ControlGiveUp), 1, "gave up once")
	err := h.stop() // the call ends it once the apology has played
	require.ErrorIs(t, err, ErrAllRegionsFailed)
	require.Equal(t, len(apology), h.player.bytesFor(apologyItem))
	require.Equal(t, []string{"A", "B", "C", "A", "B", "C", "A", "B", "C", "A", "B"}, dialedRegions(h),
		"other regions first, the failed one last; then one a second")
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
	err := h.stop()
	require.ErrorIs(t, err, ErrAllRegionsFailed)
	// MaxSwapsInRow is reached after B, but C has not failed yet: a
	// failing region never drops the call while another may take it.
	require.Equal(t, []string{"A", "B", "C"}, dialedRegions(h))
	require.Equal(t, BreakerOpen, h.pool.Status()[0].State, "401 opens the breaker at once")
	require.Equal(t, 1.0, h.metric("sipbridge_realtime_connect_errors_total", "region", "A", "kind", "auth"))
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
			require.Empty(t, c.step(c.sessionInput(sessEvent{gen: oldGen, ev: &ev})))
		}
		require.Empty(t, c.step(c.sessionInput(sessEvent{gen: oldGen, end: true, err: errors.New("gone")})))
		require.Equal(t, "", c.turns.activeResp)
	})
	s1.push(stale...)         // the retired session's events are not delivered
	h.push(s2, created("r2")) // a live event after the stale ones
	require.Equal(t, 0, h.player.bytesFor("a9"))
	require.Len(t, h.dialer.dialed(), 2, "no second swap")
	h.actor(func(c *Conversation) { require.Equal(t, "r2", c.turns.activeResp) })
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
	h.pump()
	require.True(t, h.player.bytesFor(fillerItem) == len(filler))
	h.advance(2 * time.Second)
	require.Equal(t, len(filler), h.player.bytesFor(fillerItem), "once")
	close(gate)
	h.waitActive(h.session(2))
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
	// (An answer with audio: one with nothing would be a silent answer, asked again.)
	h.answer(s2, "r2", "a2", "Noted.", 200)
	require.Len(t, s2.responses(), 1, "no second answer after it")
}

func TestGreetingRedoneAfterFirstSessionFails(t *testing.T) {
	h, s1 := startActive(t, Config{Greeting: "Say hello."}, testRegions())
	h.pump()
	require.True(t, len(s1.responses()) == 1)
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
	h.actor(func(c *Conversation) { require.Equal(t, 1, c.swap.failedInRow, "the first session never answered") })
}

// TestPendingAnswer: what a swap must have the new session answer — the
// response that failed or was running (its own create, instructions
// included), our create not yet started, or a committed turn's answer; and
// nothing when the caller had interrupted the answer or none was due.
func TestPendingAnswer(t *testing.T) {
	greeting := &createReq{params: realtime.ResponseParams{Instructions: "greet"}}
	for _, tc := range []struct {
		name       string
		respID     string
		suppressed bool
		reqs       map[string]*createReq
		inflight   *createReq
		awaiting   bool
		want       *createReq
	}{
		{"nothing due", "", false, nil, nil, false, nil},
		{"failed VAD answer: plain create", "r1", false, nil, nil, false, &createReq{plain: true}},
		{"failed answer to our create: the same create", "r1", false, map[string]*createReq{"r1": greeting}, nil, false, greeting},
		{"interrupted answer: not redone", "r1", true, nil, nil, false, nil},
		{"interrupted, turn waits: the turn's answer", "r1", true, nil, nil, true, &createReq{plain: true}},
		{"our create not started yet", "", false, nil, greeting, false, greeting},
		{"committed turn not answered", "", false, nil, nil, true, &createReq{plain: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConversation(Params{})
			if tc.suppressed {
				c.play.suppressRsp[tc.respID] = true
			}
			maps.Copy(c.turns.respReqs, tc.reqs)
			c.turns.inflight = tc.inflight
			c.turns.awaitingResponse = tc.awaiting
			got := c.pendingAnswer(tc.respID)
			require.Equal(t, tc.want, got)
			if tc.want == greeting {
				require.NotSame(t, greeting, got, "a copy: the original belongs to the old session")
			}
		})
	}
}

// TestSwapEffects: a swap as a synchronous table of (inputs) → effects, in
// order. Each row starts with session A carrying the call after a
// committed turn; its steps are fed one by one and each step's effects
// compared.
func TestSwapEffects(t *testing.T) {
	serverError := func(h *harness, s1 *fakeSession) input {
		return h.conv.sessionInput(sessEvent{gen: h.conv.active.gen, ev: &realtime.ServerEvent{Type: realtime.EvError,
			Error: failed("", "server_error", "")}})
	}
	dropped := func(h *harness, s1 *fakeSession) input {
		return h.conv.sessionInput(sessEvent{gen: h.conv.active.gen, end: true, err: &realtime.CloseError{Code: -1, Err: io.EOF}})
	}
	tick := func(d time.Duration) func(h *harness, _ *fakeSession) input {
		return func(h *harness, _ *fakeSession) input {
			h.clock.Advance(d)
			return input{kind: inTick}
		}
	}
	// dialed answers the dial the last step asked for.
	dialed := func(region string, err error) func(h *harness, _ *fakeSession) input {
		return func(h *harness, _ *fakeSession) input {
			var s realtime.Session
			if err == nil {
				s = newFakeSession("sess_"+region+"_new", region)
			}
			return dialInput(dialResult{gen: h.conv.swap.sw.dialGen, purpose: dialSwap, region: Region{Name: region}, s: s, err: err})
		}
	}
	// acked: the replayed session's next event (an item's acknowledgement).
	acked := func(h *harness, _ *fakeSession) input {
		fs := h.conv.replaying().ss.s.(*fakeSession)
		return h.conv.sessionInput(sessEvent{gen: h.conv.replaying().ss.gen, ev: <-fs.events})
	}
	refused := &realtime.DialError{Region: "B", Err: syscall.ECONNREFUSED}
	type stepCase struct {
		in     func(h *harness, s1 *fakeSession) input
		wantFx []string
	}
	for _, tc := range []struct {
		name      string
		max       int
		steps     []stepCase
		wantState convState
	}{
		{"error event, B answers", 3, []stepCase{
			{serverError, []string{"close sess_A_1", "emit swap_started server_error_event", "dial swap B"}},
			{dialed("B", nil), []string{"watch sess_B_new"}},
			// The swap finishes when both replayed items (u1, a1) are acknowledged.
			{acked, []string{}},
			{acked, []string{"emit swap_finished server_error_event"}},
		}, stActive},
		{"dropped, B refuses, C answers", 3, []stepCase{
			{dropped, []string{"close sess_A_1", "emit swap_started dropped", "dial swap B"}},
			{dialed("B", refused), []string{"dial swap C"}},
			{dialed("C", nil), []string{"watch sess_C_new"}},
			{acked, []string{}},
			{acked, []string{"emit swap_finished dropped"}},
		}, stActive},
		{"MaxSwapsInRow 1: every region refused twice: a try a second, give up 5 s into the outage", 1, []stepCase{
			{serverError, []string{"close sess_A_1", "emit swap_started server_error_event", "dial swap B"}},
			{dialed("B", refused), []string{"dial swap C"}},
			{dialed("C", refused), []string{"dial swap A"}},
			{dialed("A", refused), []string{"dial swap B"}},
			{dialed("B", refused), []string{"dial swap C"}},
			{dialed("C", refused), []string{"dial swap A"}},
			{dialed("A", refused), []string{}}, // 0 s into the outage: a pause
			{tick(500 * time.Millisecond), []string{}},
			{tick(500 * time.Millisecond), []string{"dial swap B"}},
			{dialed("B", refused), []string{}},
			{tick(time.Second), []string{"dial swap C"}},
			{dialed("C", refused), []string{}},
			{tick(time.Second), []string{"dial swap A"}},
			{dialed("A", refused), []string{}},
			{tick(time.Second), []string{"dial swap B"}},
			{dialed("B", refused), []string{}},
			{tick(time.Second), []string{"emit give_up server_error_event"}}, // 5 s
		}, stGaveUp},
		{"MaxSwapsInRow 1: every region refused twice within a second, then B takes the call", 1, []stepCase{
			{serverError, []string{"close sess_A_1", "emit swap_started server_error_event", "dial swap B"}},
			{dialed("B", refused), []string{"dial swap C"}},
			{dialed("C", refused), []string{"dial swap A"}},
			{dialed("A", refused), []string{"dial swap B"}},
			{dialed("B", refused), []string{"dial swap C"}},
			{dialed("C", refused), []string{"dial swap A"}},
			{dialed("A", refused), []string{}},
			{tick(time.Second), []string{"dial swap B"}},
			{dialed("B", nil), []string{"watch sess_B_new"}},
		}, stSwapping},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s1 := startActive(t, Config{MaxSwapsInRow: tc.max}, testRegions())
			// The first session's failure counts as a failed attempt only
			// if it never completed a response: this one did.
			h.userTurn(s1, "u1", 1, 5)
			h.answer(s1, "r1", "a1", "Hi.", 200)
			for i, st := range tc.steps {
				fx := slices.Clone(h.conv.step(st.in(h, s1)))
				require.Equal(t, st.wantFx, describe(fx), "step %d", i+1)
				for _, e := range fx {
					if d, ok := e.(fxDial); ok {
						h.dialer.take(d.Region, h.conv.cfg.Session) // recorded, answered by the next step
						continue
					}
					h.exec(e)
				}
			}
			require.Equal(t, tc.wantState, h.conv.state)
		})
	}
}
