package failover

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

// hedgeStart plays a call up to a hedge asked in region B: one answered
// turn, then a second turn whose answer (r2) is created in A but stays
// silent past the hedge deadline (the ceiling: the window is empty).
func hedgeStart(t *testing.T, cfg Config, regions []Region, opts ...harnessOpt) (h *harness, s1, s2 *fakeSession) {
	t.Helper()
	h, s1 = startActive(t, cfg, regions, opts...)
	h.userTurn(s1, "u1", 1, 5)
	h.answer(s1, "r1", "a1", "Hello.", 200)
	h.userTurn(s1, "u2", 2, 5)
	h.push(s1, created("r2"))
	h.advance(DefaultHedgeCeiling - 50*time.Millisecond)
	require.Len(t, h.dialer.opened(), 1, "no hedge before the deadline")
	h.advance(50 * time.Millisecond)
	s2 = h.session(2)
	require.Equal(t, "B", s2.region)
	require.Equal(t, 1.0, h.metric("sipbridge_failover_hedges_total", "region", "A", "to", "B"))
	// The hedge session has the conversation, the turn's caller audio
	// included, and the same question; no live caller audio.
	items := s2.items()
	require.Equal(t, []string{"u1", "a1", "u2"}, itemIDs(items))
	require.Equal(t, concat(framesOf(2, 5)...), items[2].Content[0].Audio)
	require.Len(t, s2.responses(), 1)
	require.Empty(t, s2.appended())
	require.Equal(t, []string{"create_item", "create_response"}, opSequence(s2))
	return h, s1, s2
}

func itemIDs(items []realtime.Item) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func hedgeLine(t *testing.T, h *harness) map[string]any {
	t.Helper()
	lines := h.logs.lines("failover: hedge")
	require.Len(t, lines, 1, "one line per hedge")
	return lines[0]
}

func TestHedgePrimaryFirst(t *testing.T) {
	h, s1, s2 := hedgeStart(t, Config{}, testRegions())
	h.push(s2, created("h2"))
	h.speak(s1, "r2", "a2", "Primary.", 300)
	require.Equal(t, 300*bpm, h.player.bytesFor("a2"))
	require.True(t, s2.closed(), "the hedge session holds an unheard answer: closed")
	require.Len(t, s2.ops("cancel"), 1)
	require.Equal(t, "h2", s2.ops("cancel")[0].respID)
	require.False(t, s1.closed())
	// Its later audio is never heard.
	h.actor(func(c *Conversation) {
		require.Nil(t, c.hedge.run)
		require.Equal(t, realtime.Session(s1), c.active.s)
	})
	require.Equal(t, 1.0, h.metric("sipbridge_failover_hedge_results_total", "result", "primary"))
	l := hedgeLine(t, h)
	require.Equal(t, "primary", l["result"])
	require.Equal(t, s1.id, l["session_id"])
	require.Equal(t, "r2", l["response_id"])
	require.Equal(t, s2.id, l["hedge_session_id"])
	require.Equal(t, "h2", l["hedge_response_id"])
	require.Equal(t, "call-1", l["call_id"])
	h.finishSpeech(s1, "r2", "a2", "Primary.")
	h.push(s1, done("r2", realtime.StatusCompleted, nil))
	require.Equal(t, BreakerClosed, h.pool.Status()[0].State)
	require.Zero(t, h.pool.Status()[0].Failures, "the primary won")
}

func TestHedgeFirst(t *testing.T) {
	h, s1, s2 := hedgeStart(t, Config{}, testRegions())
	var oldGen uint64
	h.actor(func(c *Conversation) { oldGen = c.active.gen })
	h.push(s1, realtime.ServerEvent{Type: realtime.EvOutputItemAdded, ResponseID: "r2",
		Item: &realtime.Item{ID: "a2", Type: "message", Role: "assistant"}})
	h.push(s2, created("h2"))
	h.speak(s2, "h2", "b2", "Hedge.", 300)
	require.Equal(t, 300*bpm, h.player.bytesFor("b2"))
	require.True(t, s1.closed(), "the primary lost: closed")
	require.Equal(t, []string{"r2"}, cancelled(s1))
	h.actor(func(c *Conversation) {
		require.Equal(t, realtime.Session(s2), c.active.s)
		require.Equal(t, "h2", c.turns.activeResp)
		_, ok := c.rec.Entry("a2")
		require.False(t, ok, "the primary's unheard answer left the record")
		_, ok = c.rec.Entry("b2")
		require.True(t, ok)
		// The primary's late audio is stale: never played.
		require.Empty(t, c.step(c.sessionInput(sessEvent{gen: oldGen, ev: &realtime.ServerEvent{Type: realtime.EvOutputAudioDelta,
			ResponseID: "r2", ItemID: "a2", Audio: make([]byte, 800)}})))
	})
	require.Zero(t, h.player.bytesFor("a2"))
	require.Equal(t, 1.0, h.metric("sipbridge_failover_hedge_results_total", "result", "hedge"))
	require.Positive(t, h.metric("sipbridge_failover_hedge_cancelled_tokens_total"))
	st := h.pool.Status()[0]
	require.Equal(t, 1, st.Failures, "a primary that lost a hedge counts against its region")
	l := hedgeLine(t, h)
	require.Equal(t, "hedge", l["result"])
	require.Equal(t, "r2", l["response_id"])
	require.Equal(t, "h2", l["hedge_response_id"])
	// The caller's next turn goes to the winner.
	h.finishSpeech(s2, "h2", "b2", "Hedge.")
	h.push(s2, done("h2", realtime.StatusCompleted, nil))
	h.write(framesOf(3, 2)...)
	require.Len(t, s2.appended(), 2*frame)
	require.Empty(t, h.controlsOf(ControlSwapStarted), "no swap")
}

// TestHedgeLostRaceInTheRecord: the primary's answer a hedge beat is in
// the call's record as cancelled and lost (its session closes at once, so
// the provider never reports it).
func TestHedgeLostRaceInTheRecord(t *testing.T) {
	obs := &recordingObserver{}
	h, s1, s2 := hedgeStart(t, Config{}, testRegions(), withObserver(obs))
	h.push(s2, created("h2"))
	h.speak(s2, "h2", "b2", "Hedge.", 300)
	require.True(t, s1.closed())
	h.finishSpeech(s2, "h2", "b2", "Hedge.")
	h.push(s2, done("h2", realtime.StatusCompleted, nil))
	require.NoError(t, h.stop())
	byID := map[string]ResponseEntry{}
	for _, e := range obs.responses {
		byID[e.Event.ResponseID] = e
		if e.Event.Response != nil {
			byID[e.Event.Response.ID] = e
		}
	}
	lost, ok := byID["r2"]
	require.True(t, ok, "the lost answer is recorded: %+v", obs.responses)
	require.True(t, lost.LostRace)
	require.Equal(t, realtime.StatusCancelled, lost.Event.Response.Status)
	require.Equal(t, "A", lost.Region)
	require.False(t, byID["r1"].LostRace)
}

func cancelled(s *fakeSession) []string {
	out := []string{}
	for _, c := range s.ops("cancel") {
		out = append(out, c.respID)
	}
	return out
}

// TestHedgeBothFail: the hedge's response fails (dropped, its region told),
// then the primary fails too: an ordinary swap to the third region.
func TestHedgeBothFail(t *testing.T) {
	h, s1, s2 := hedgeStart(t, Config{}, testRegions())
	h.push(s2, created("h2"), done("h2", realtime.StatusFailed, failed("", "server_error", "")))
	require.True(t, s2.closed())
	require.Equal(t, 1.0, h.metric("sipbridge_failover_hedge_results_total", "result", "hedge_failed"))
	require.Equal(t, 1, h.pool.Status()[1].Failures)
	h.push(s1, done("r2", realtime.StatusFailed, failed("", "server_error", "")))
	s3 := h.session(3)
	h.waitActive(s3)
	require.Len(t, s3.responses(), 1)
	h.push(s3, created("r3"))
	h.speak(s3, "r3", "c3", "Third.", 200)
	require.Equal(t, 200*bpm, h.player.bytesFor("c3"))
}

// TestHedgeTakesOverFailedPrimary: the primary fails while the hedge is
// asked: the hedge answers, no swap.
func TestHedgeTakesOverFailedPrimary(t *testing.T) {
	h, s1, s2 := hedgeStart(t, Config{}, testRegions())
	h.push(s1, done("r2", realtime.StatusFailed, failed("", "server_error", "")))
	require.True(t, s1.closed())
	require.Len(t, h.dialer.opened(), 2, "no swap dial")
	require.Empty(t, h.controlsOf(ControlSwapStarted))
	h.push(s2, created("h2"))
	h.speak(s2, "h2", "b2", "Hedge.", 200)
	require.Equal(t, 200*bpm, h.player.bytesFor("b2"))
	require.Equal(t, 1.0, h.metric("sipbridge_failover_hedge_results_total", "result", "primary_failed"))
	// Then the hedge, now active, fails too: a swap to C.
	h.push(s2, done("h2", realtime.StatusFailed, failed("", "server_error", "")))
	s3 := h.session(3)
	h.waitActive(s3)
	require.Equal(t, "C", s3.region)
}

func TestHedgeCallerSpeaks(t *testing.T) {
	h, s1, s2 := hedgeStart(t, Config{}, testRegions())
	h.push(s1, realtime.ServerEvent{Type: realtime.EvInputSpeechStarted, ItemID: "u3", AudioStartMs: 300})
	require.True(t, s2.closed(), "the hedge never heard the new turn: closed")
	require.Equal(t, 1.0, h.metric("sipbridge_failover_hedge_results_total", "result", "abandoned"))
	require.Equal(t, "caller_spoke", hedgeLine(t, h)["why"])
	// The primary answers the new turn; nothing of the hedge plays.
	h.push(s1, done("r2", realtime.StatusCancelled, nil))
	h.userTurn(s1, "u3", 3, 5)
	h.push(s1, created("r3"))
	h.speak(s1, "r3", "a3", "New.", 200)
	require.Equal(t, 200*bpm, h.player.bytesFor("a3"))
	require.Len(t, h.dialer.opened(), 2)
}

func TestHedgeBye(t *testing.T) {
	h, s1, s2 := hedgeStart(t, Config{}, testRegions())
	require.NoError(t, h.stop())
	require.True(t, s1.closed())
	require.True(t, s2.closed())
	require.Equal(t, 1.0, h.metric("sipbridge_failover_hedge_results_total", "result", "abandoned"))
}

// TestHedgeByeWhileDialling: the call ends while the hedge's session is
// being opened: the late session is closed.
func TestHedgeByeWhileDialling(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	gate := make(chan struct{})
	h.dialer.then("B", dialStep{gate: gate})
	h.userTurn(s1, "u1", 1, 5)
	h.advance(DefaultHedgeCeiling)
	require.Len(t, h.dialer.dialed(), 2)
	fx := slices.Clone(h.conv.step(dialInput(dialResult{gen: 999, purpose: dialHedge, region: Region{Name: "B"},
		s: newFakeSession("late", "B")})))
	require.Equal(t, []string{"close late"}, describe(fx))
	require.NoError(t, h.stop())
	require.Equal(t, 1.0, h.metric("sipbridge_failover_hedge_results_total", "result", "abandoned"))
}

// TestHedgeBudget: past the call's share a late turn is not hedged; the
// stall watchdog stays the last resort.
func TestHedgeBudget(t *testing.T) {
	h, s1 := startActive(t, Config{Hedge: HedgeConfig{CallShare: 0.01}}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.advance(DefaultHedgeCeiling)
	s2 := h.session(2)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "a1", "One.", 100)
	require.True(t, s2.closed())
	h.finishSpeech(s1, "r1", "a1", "One.")
	h.push(s1, done("r1", realtime.StatusCompleted, nil))
	h.player.setPlayed("a1", 100)

	h.userTurn(s1, "u2", 2, 5)
	h.advance(DefaultHedgeCeiling)
	h.advance(time.Second)
	require.Len(t, h.dialer.dialed(), 2, "budget spent: no second hedge")
	require.Equal(t, 1.0, h.metric("sipbridge_failover_hedges_skipped_total", "reason", "call_budget"))
	h.advance(DefaultStallNoResponse)
	require.Len(t, h.controlsOf(ControlSwapStarted), 1, "the watchdog swaps")
}

func TestHedgeDisabled(t *testing.T) {
	h, s1 := startActive(t, Config{Hedge: HedgeConfig{Disabled: true}}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	for range 10 {
		h.advance(400 * time.Millisecond)
	}
	require.Len(t, h.dialer.dialed(), 1)
}

// TestHedgeWarmStandby: the hedge takes the warm standby (no dial), as a
// table of steps → effects.
func TestHedgeWarmStandby(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions("B"))
	spare := h.session(2)
	h.actor(func(c *Conversation) { require.NotNil(t, c.standby.spare) })
	h.userTurn(s1, "u1", 1, 5)
	h.clock.Advance(DefaultHedgeCeiling)
	fx := slices.Clone(h.conv.step(input{kind: inTick}))
	require.Equal(t, []string{}, describe(fx), "the standby is asked at once: nothing to dial or watch")
	require.Len(t, spare.responses(), 1)
	require.Equal(t, []string{"u1"}, itemIDs(spare.items()))
	var gen uint64
	h.actor(func(c *Conversation) { gen = c.hedge.run.ss.gen })
	fx = slices.Clone(h.conv.step(h.conv.sessionInput(sessEvent{gen: gen, ev: new(created("h1"))})))
	require.Equal(t, []string{}, describe(fx))
	fx = slices.Clone(h.conv.step(h.conv.sessionInput(sessEvent{gen: gen, ev: &realtime.ServerEvent{
		Type: realtime.EvOutputAudioDelta, ResponseID: "h1", ItemID: "b1", Audio: make([]byte, 100*bpm)}})))
	require.Equal(t, []string{"close " + s1.id}, describe(fx), "the primary is retired in the step its hedge won")
	require.Equal(t, 100*bpm, h.player.bytesFor("b1"))
	for _, e := range fx {
		h.exec(e)
	}
	l := hedgeLine(t, h)
	require.Equal(t, true, l["warm_standby"])
}

// TestHedgeDeadline: the deadline follows the region's median time to
// first audio, within the floor and the ceiling.
func TestHedgeDeadline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    time.Duration
	}{
		{"no samples: the ceiling", nil, DefaultHedgeCeiling},
		{"too few: the ceiling", []time.Duration{100 * time.Millisecond, 100 * time.Millisecond}, DefaultHedgeCeiling},
		{"fast region: the floor", []time.Duration{100, 120, 90, 110}, DefaultHedgeFloor},
		{"median × multiple", []time.Duration{200 * time.Millisecond, 250 * time.Millisecond, 300 * time.Millisecond, 5 * time.Second}, 900 * time.Millisecond},
		{"slow region: the ceiling", []time.Duration{time.Second, time.Second, time.Second}, DefaultHedgeCeiling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{}, testRegions())
			for _, d := range tc.samples {
				h.pool.ObserveTTFA("A", d)
			}
			require.Equal(t, tc.want, h.conv.hedgeDeadline("A"))
		})
	}
	// Samples leave the window.
	h := newHarness(t, Config{}, testRegions())
	for range 5 {
		h.pool.ObserveTTFA("A", 100*time.Millisecond)
	}
	require.Equal(t, DefaultHedgeFloor, h.conv.hedgeDeadline("A"))
	h.clock.Advance(DefaultTTFAWindow + time.Second)
	require.Equal(t, DefaultHedgeCeiling, h.conv.hedgeDeadline("A"))
}

// TestHedgeTTFALearned: a turn's time to first audio feeds its region's
// window.
func TestHedgeTTFALearned(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	for i, n := range []string{"1", "2", "3"} {
		h.userTurn(s1, "u"+n, byte(i), 2)
		h.advance(200 * time.Millisecond)
		h.answer(s1, "r"+n, "a"+n, "x", 100)
	}
	med, ok := h.pool.MedianTTFA("A")
	require.True(t, ok)
	require.Equal(t, 200*time.Millisecond, med)
}

// TestProcessHedgeBudget: the process hedges at most HedgeShare of its
// turns in the window, plus one.
func TestProcessHedgeBudget(t *testing.T) {
	clock := newFakeClock()
	p := NewPool(testRegions(), HealthConfig{HedgeShare: 0.1, Now: clock.Now}, nil, nil)
	for range 20 {
		p.countTurn()
	}
	taken := 0
	for range 10 {
		if p.takeHedge() {
			taken++
		}
	}
	require.Equal(t, 3, taken, "0.1 × 20 + 1")
	clock.Advance(DefaultTTFAWindow + DefaultTTFAWindow/budgetSlots)
	require.True(t, p.takeHedge(), "the window moved on")
	require.False(t, p.takeHedge())
}

// TestHedgeProcessBudget: the process's budget is shared by every call of
// the pool: once spent, a late turn is not hedged.
func TestHedgeProcessBudget(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	require.True(t, h.pool.takeHedge(), "another call took the one hedge the empty window allows")
	h.userTurn(s1, "u1", 1, 5)
	h.advance(DefaultHedgeCeiling)
	require.Len(t, h.dialer.dialed(), 1, "no hedge")
	require.Equal(t, 1.0, h.metric("sipbridge_failover_hedges_skipped_total", "reason", "process_budget"))
}

// TestHedgeSessionFails: the hedge's dial is refused, or its session
// drops: the hedge is dropped, its region told, and the primary's answer
// is the one heard.
func TestHedgeSessionFails(t *testing.T) {
	t.Run("dial refused", func(t *testing.T) {
		h, s1 := startActive(t, Config{}, testRegions())
		h.dialer.then("B", dialStep{err: &realtime.DialError{Region: "B", StatusCode: 503}})
		h.userTurn(s1, "u1", 1, 5)
		h.advance(DefaultHedgeCeiling)
		require.Len(t, h.dialer.dialed(), 2)
		require.Equal(t, 1.0, h.metric("sipbridge_failover_hedge_results_total", "result", "hedge_failed"))
		require.Equal(t, 1, h.pool.Status()[1].Failures)
		h.push(s1, created("r1"))
		h.speak(s1, "r1", "a1", "Late but here.", 200)
		require.Equal(t, 200*bpm, h.player.bytesFor("a1"))
	})
	t.Run("session dropped", func(t *testing.T) {
		h, s1, s2 := hedgeStart(t, Config{}, testRegions())
		s2.end(&realtime.CloseError{Code: 1011})
		h.pump()
		require.Equal(t, 1.0, h.metric("sipbridge_failover_hedge_results_total", "result", "hedge_failed"))
		h.actor(func(c *Conversation) { require.Nil(t, c.hedge.run) })
		h.speak(s1, "r2", "a2", "Primary.", 200)
		require.Equal(t, 200*bpm, h.player.bytesFor("a2"))
		require.False(t, s1.closed())
	})
}
