package failover

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

func TestTransitionTableComplete(t *testing.T) {
	for s := range numStates {
		for k := range numInputs {
			require.NotNil(t, transitions[s][k], "%s × %s has no action", convState(s), k)
		}
	}
}

// reach builds a conversation in state st: its harness and its live
// session (nil when there is none).
func reach(t *testing.T, st convState) (*harness, *fakeSession) {
	t.Helper()
	switch st {
	case stConnecting:
		h := newHarness(t, Config{}, testRegions())
		h.dialer.then("A", dialStep{gate: make(chan struct{})})
		h.start()
		return h, nil
	case stActive:
		return startActive(t, Config{}, testRegions())
	case stSwapping:
		h := newHarness(t, Config{}, testRegions())
		h.dialer.then("B", dialStep{gate: make(chan struct{})})
		h.start()
		s1 := h.session(1)
		h.userTurn(s1, "u1", 1, 5)
		h.push(s1, created("r1"), done("r1", realtime.StatusFailed, failed("", "server_error", "")))
		return h, nil
	case stEnding:
		h, s1 := startActive(t, Config{}, testRegions())
		h.userTurn(s1, "u1", 1, 5)
		h.push(s1, created("r1"), fnCall("r1", "call_e", fnEndCall, `{}`))
		s1.end(&realtime.CloseError{Code: 1011})
		h.pump()
		return h, nil
	case stGaveUp:
		h := newHarness(t, Config{MaxSwapsInRow: 2}, testRegions())
		for _, r := range []string{"A", "B", "C"} { // every region refuses twice
			refused := dialStep{err: &realtime.DialError{Region: r, StatusCode: 503}}
			h.dialer.then(r, refused, refused)
		}
		h.start()
		return h, nil
	}
	t.Fatalf("no way to reach %s", st)
	return nil, nil
}

// TestTransitions: (state, input) → effects, state after, and what the
// input did to the session or the record. Synchronous: no Run, no clock.
func TestTransitions(t *testing.T) {
	dtmf := input{kind: inDTMF, msg: message{kind: msgDTMF, digit: '5'}}
	staleDial := func(p dialPurpose) input {
		return dialInput(dialResult{gen: 999, purpose: p, region: Region{Name: "B"}, s: newFakeSession("late", "B")})
	}
	type check func(t *testing.T, h *harness, s *fakeSession, before int)
	sent := func(t *testing.T, h *harness, s *fakeSession, _ int) {
		require.Len(t, s.appended(), frame, "the frame went to the session")
	}
	buffered := func(t *testing.T, h *harness, _ *fakeSession, _ int) {
		require.Len(t, h.conv.caller.swapBuf, frame, "the frame is kept for the next session")
	}
	dropped := func(t *testing.T, h *harness, _ *fakeSession, _ int) {
		require.Empty(t, h.conv.caller.swapBuf)
		require.Empty(t, h.conv.caller.turnBuf)
	}
	noted := func(t *testing.T, h *harness, _ *fakeSession, before int) {
		require.Equal(t, before+1, h.conv.rec.Len(), "the key press is in the record")
	}
	notedAndAsked := func(t *testing.T, h *harness, s *fakeSession, before int) {
		noted(t, h, s, before)
		require.Len(t, s.responses(), 1, "and the model is asked to respond")
	}
	ignored := func(t *testing.T, h *harness, _ *fakeSession, before int) {
		require.Equal(t, before, h.conv.rec.Len())
	}
	nothing := func(*testing.T, *harness, *fakeSession, int) {}

	for _, tc := range []struct {
		state     convState
		in        string
		wantFx    []string
		wantState convState
		check     check
	}{
		{stConnecting, "caller_audio", []string{}, stConnecting, buffered},
		{stActive, "caller_audio", []string{}, stActive, sent},
		{stSwapping, "caller_audio", []string{}, stSwapping, buffered},
		{stEnding, "caller_audio", []string{}, stEnding, dropped},
		{stGaveUp, "caller_audio", []string{}, stGaveUp, dropped},

		{stConnecting, "dtmf", []string{}, stConnecting, noted},
		{stActive, "dtmf", []string{}, stActive, notedAndAsked},
		{stSwapping, "dtmf", []string{}, stSwapping, noted},
		{stEnding, "dtmf", []string{}, stEnding, ignored},
		{stGaveUp, "dtmf", []string{}, stGaveUp, ignored},

		{stConnecting, "stale_swap_dial", []string{"fxClose"}, stConnecting, nothing},
		{stActive, "stale_swap_dial", []string{"fxClose"}, stActive, nothing},
		{stSwapping, "stale_swap_dial", []string{"fxClose"}, stSwapping, nothing},
		{stEnding, "stale_swap_dial", []string{"fxClose"}, stEnding, nothing},
		{stGaveUp, "stale_swap_dial", []string{"fxClose"}, stGaveUp, nothing},
		{stActive, "stale_spare_dial", []string{"fxClose"}, stActive, nothing},
		{stConnecting, "stale_hedge_dial", []string{"fxClose"}, stConnecting, nothing},
		{stActive, "stale_hedge_dial", []string{"fxClose"}, stActive, nothing},
		{stSwapping, "stale_hedge_dial", []string{"fxClose"}, stSwapping, nothing},
		{stEnding, "stale_hedge_dial", []string{"fxClose"}, stEnding, nothing},
		{stGaveUp, "stale_hedge_dial", []string{"fxClose"}, stGaveUp, nothing},
		{stGaveUp, "stale_spare_dial", []string{"fxClose"}, stGaveUp, nothing},

		{stConnecting, "tick", []string{}, stConnecting, nothing},
		{stActive, "tick", []string{}, stActive, nothing},
		{stSwapping, "tick", []string{}, stSwapping, nothing},
		{stGaveUp, "tick", []string{}, stGaveUp, nothing},
	} {
		t.Run(tc.state.String()+"/"+tc.in, func(t *testing.T) {
			h, s := reach(t, tc.state)
			require.Equal(t, tc.state, h.conv.state, "reached")
			if s != nil {
				s.mu.Lock()
				s.calls = nil
				s.mu.Unlock()
			}
			var in input
			switch tc.in {
			case "caller_audio":
				in = h.frameInput(7)
			case "dtmf":
				in = dtmf
			case "stale_swap_dial":
				in = staleDial(dialSwap)
			case "stale_spare_dial":
				in = staleDial(dialSpare)
			case "stale_hedge_dial":
				in = staleDial(dialHedge)
			case "tick":
				in = input{kind: inTick}
			}
			before := h.conv.rec.Len()
			require.Equal(t, tc.wantFx, effectKinds(h.stepFx(in)))
			require.Equal(t, tc.wantState, h.conv.state)
			tc.check(t, h, s, before)
		})
	}
}

// TestGiveUpGate: the one gate gives up after MaxSwapsInRow consecutive
// failed attempts, whichever way each failed, once every region failed one
// (TestGiveUpNeedsEveryRegion).
func TestGiveUpGate(t *testing.T) {
	refused := func(r string) dialStep {
		return dialStep{err: &realtime.DialError{Region: r, StatusCode: 503}}
	}
	for _, tc := range []struct {
		name       string
		max        int
		script     map[string][]dialStep
		wantDials  []string
		wantGiveUp bool
	}{
		{"first dial works", 3, nil, []string{"A"}, false},
		{"two refusals then a session", 3, map[string][]dialStep{"A": {refused("A")}, "B": {refused("B")}}, []string{"A", "B", "C"}, false},
		{"max 1: one refusal, B has not failed: B takes the call", 1, map[string][]dialStep{"A": {refused("A")}}, []string{"A", "B"}, false},
		{"max 3: one refusal in each region is no outage of all", 3, map[string][]dialStep{"A": {refused("A")}, "B": {refused("B")}, "C": {refused("C")}}, []string{"A", "B", "C", "A"}, false},
		{"max 1: every region refuses twice: give up", 1, map[string][]dialStep{"A": {refused("A"), refused("A")}, "B": {refused("B"), refused("B")}, "C": {refused("C"), refused("C")}}, []string{"A", "B", "C", "A", "B", "C"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{MaxSwapsInRow: tc.max}, testRegions())
			for r, steps := range tc.script {
				h.dialer.then(r, steps...)
			}
			h.start()
			require.Equal(t, tc.wantDials, dialedRegions(h))
			require.Equal(t, tc.wantGiveUp, h.conv.state == stGaveUp)
			require.Len(t, h.controlsOf(ControlGiveUp), map[bool]int{true: 1}[tc.wantGiveUp])
		})
	}
}

// TestTickSlowsWhileQuiet: the watchdog ticks at full resolution while a
// deadline is armed or the conversation is not settled, and slower only
// while nothing could come due.
func TestTickSlowsWhileQuiet(t *testing.T) {
	for _, st := range []convState{stConnecting, stSwapping, stEnding, stGaveUp} {
		h, _ := reach(t, st)
		require.Equal(t, h.conv.tickEvery, h.conv.tickInterval(), "%s ticks at full resolution", st)
	}
	h, s1 := reach(t, stActive)
	slow := h.conv.tickEvery * quietTickFactor
	require.Equal(t, slow, h.conv.tickInterval(), "settled, waiting for the caller")
	h.userTurn(s1, "u1", 1, 5)
	require.Equal(t, h.conv.tickEvery, h.conv.tickInterval(), "the caller's turn ended: an answer is awaited")
	h.push(s1, created("r1"))
	require.Equal(t, h.conv.tickEvery, h.conv.tickInterval(), "the answer's first audio is awaited")
	h.speak(s1, "r1", "a1", "hello", 200)
	require.Equal(t, h.conv.tickEvery, h.conv.tickInterval(), "mid-answer: the audio may stall")
	h.finishSpeech(s1, "r1", "a1", "hello")
	require.Equal(t, slow, h.conv.tickInterval(), "answered: nothing is due")
}
