package failover

import (
	"io"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

// TestGiveUpWaitsForTheApology: ControlGiveUp (after which the call may hang
// up or transfer at once) comes only when the apology has played, or when
// its playout deadline passed without a report — and at once when nobody
// can hear it (the call still rings: answer when ready, no session ever).
func TestGiveUpWaitsForTheApology(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answered bool // the call was answered before the AI was ready
		advance  func(h *harness)
		waits    bool
	}{
		{"played", true, func(h *harness) { h.player.setPlayed(apologyItem, 1000); h.conv.PlayoutDone("other", 0) }, true},
		{"deadline", true, func(h *harness) { h.advance(1000*time.Millisecond + endCallSlack) }, true},
		{"still ringing", false, func(*harness) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{MaxSwapsInRow: 2, Session: testSessionConfig(), AnsweredBeforeReady: tc.answered}
			cfg.ApologyAudio = make([]byte, 1000*cfg.outputFormat().BytesPerMs()) // 1 s
			h := newHarness(t, cfg, testRegions())
			for _, r := range []string{"A", "B", "C"} {
				h.dialer.then(r, dialStep{err: &realtime.DialError{Region: r, StatusCode: 401, Body: "invalid api key"}})
			}
			h.start()
			require.Equal(t, len(cfg.ApologyAudio), h.player.bytesFor(apologyItem), "the apology is queued")
			if !tc.waits {
				require.Len(t, h.controlsOf(ControlGiveUp), 1, "nobody hears the apology: give up at once")
				require.ErrorIs(t, h.stop(), ErrAllRegionsFailed)
				return
			}
			h.player.setPlayed(apologyItem, 500)
			h.conv.PlayoutDone("other", 0)
			h.pump()
			require.Empty(t, h.controlsOf(ControlGiveUp), "half the apology played")
			tc.advance(h)
			h.pump()
			require.Len(t, h.controlsOf(ControlGiveUp), 1)
			require.ErrorIs(t, h.stop(), ErrAllRegionsFailed)
		})
	}
}

// TestGiveUpNeedsEveryRegion: a failing region never drops the call while
// another may take it. MaxSwapsInRow failed attempts give up only once
// every region the call may use failed twice in this outage, or the outage
// lasted GiveUpAfter; a swap that finds the remaining region throttled
// waits for it. Each row starts with session A carrying the call after an answered
// turn, regions A and B; its steps are fed one by one, the clock moved by
// hand, and each step's effects compared.
func TestGiveUpNeedsEveryRegion(t *testing.T) {
	regions := []Region{{Name: "A"}, {Name: "B"}}
	dropped := func(h *harness) input {
		return h.conv.sessionInput(sessEvent{gen: h.conv.active.gen, end: true, err: &realtime.CloseError{Code: -1, Err: io.EOF}})
	}
	dialed := func(region string, err error) func(h *harness) input {
		return func(h *harness) input {
			var s realtime.Session
			if err == nil {
				s = newFakeSession("sess_"+region+"_new", region)
			}
			return dialInput(dialResult{gen: h.conv.swap.sw.dialGen, purpose: dialSwap, region: Region{Name: region}, s: s, err: err})
		}
	}
	refused := func(region string) func(h *harness) input {
		return dialed(region, &realtime.DialError{Region: region, Err: syscall.ECONNREFUSED})
	}
	acked := func(h *harness) input {
		fs := h.conv.replaying().ss.s.(*fakeSession)
		return h.conv.sessionInput(sessEvent{gen: h.conv.replaying().ss.gen, ev: <-fs.events})
	}
	tick := func(d time.Duration) func(h *harness) input {
		return func(h *harness) input {
			h.clock.Advance(d)
			return input{kind: inTick}
		}
	}
	type stepCase struct {
		in     func(h *harness) input
		wantFx []string
	}
	for _, tc := range []struct {
		name      string
		setup     func(h *harness)
		steps     []stepCase
		wantState convState
		wantErr   error
	}{
		{"the soak's burst: A fails thrice while B is throttled for a second; the call waits for B", func(h *harness) {
			h.pool.SetAside("B", time.Second)
		}, []stepCase{
			{dropped, []string{"close sess_A_1", "emit swap_started dropped", "dial swap A"}},
			{refused("A"), []string{"dial swap A"}},
			{refused("A"), []string{"dial swap A"}},
			{refused("A"), []string{}}, // three in a row, all in A: wait for B
			{tick(500 * time.Millisecond), []string{}},
			{tick(500 * time.Millisecond), []string{"dial swap B"}},
			{dialed("B", nil), []string{"watch sess_B_new"}},
			{acked, []string{}},
			{acked, []string{"emit swap_finished dropped"}},
		}, stActive, nil},
		{"B's breaker opened on other calls: tried before giving up", func(h *harness) {
			for range 4 {
				h.pool.Report("B", OutcomeConnectError)
			}
			for range 10 {
				h.pool.Report("A", OutcomeResponseOK) // A's own breaker stays closed
			}
		}, []stepCase{
			{dropped, []string{"close sess_A_1", "emit swap_started dropped", "dial swap A"}},
			{refused("A"), []string{"dial swap A"}},
			{refused("A"), []string{"dial swap A"}},
			{refused("A"), []string{"dial swap B"}},
			{dialed("B", nil), []string{"watch sess_B_new"}},
			{acked, []string{}},
			{acked, []string{"emit swap_finished dropped"}},
		}, stActive, nil},
		{"a real outage: every region fails twice and keeps failing for 5 s, the call gives up", func(*harness) {}, []stepCase{
			{dropped, []string{"close sess_A_1", "emit swap_started dropped", "dial swap B"}},
			{refused("B"), []string{"dial swap A"}},
			{refused("A"), []string{"dial swap B"}},
			{refused("B"), []string{"dial swap A"}}, // MaxSwapsInRow, but A failed only once
			{refused("A"), []string{}},              // every region failed twice: a pause
			{tick(time.Second), []string{"dial swap B"}},
			{refused("B"), []string{}},
			{tick(2 * time.Second), []string{"dial swap A"}},
			{refused("A"), []string{}},
			{tick(2 * time.Second), []string{"emit give_up dropped"}}, // 5 s into the outage
		}, stGaveUp, ErrAllRegionsFailed},
		{"the soak's bad luck: B drops in its burst and A fails by chance, twice each within a second; A takes the call", func(*harness) {}, []stepCase{
			{dropped, []string{"close sess_A_1", "emit swap_started dropped", "dial swap B"}},
			{refused("B"), []string{"dial swap A"}},
			{refused("A"), []string{"dial swap B"}},
			{refused("B"), []string{"dial swap A"}},
			{refused("A"), []string{}}, // 0 s into the outage: not an outage of both yet
			{tick(time.Second), []string{"dial swap B"}},
			{refused("B"), []string{}},
			{tick(time.Second), []string{"dial swap A"}},
			{dialed("A", nil), []string{"watch sess_A_new"}},
			{acked, []string{}},
			{acked, []string{"emit swap_finished dropped"}},
		}, stActive, nil},
		{"B fails once by chance during A's burst: one failure each is no outage of both", func(*harness) {}, []stepCase{
			{dropped, []string{"close sess_A_1", "emit swap_started dropped", "dial swap B"}},
			{refused("B"), []string{"dial swap A"}},
			{refused("A"), []string{"dial swap B"}},
			{refused("B"), []string{"dial swap A"}},
			{dialed("A", nil), []string{"watch sess_A_new"}},
			{acked, []string{}},
			{acked, []string{"emit swap_finished dropped"}},
		}, stActive, nil},
		{"bounded in time: B throttled past GiveUpAfter, the call gives up", func(h *harness) {
			h.pool.SetAside("B", time.Minute)
		}, []stepCase{
			{dropped, []string{"close sess_A_1", "emit swap_started dropped", "dial swap A"}},
			{refused("A"), []string{"dial swap A"}},
			{refused("A"), []string{"dial swap A"}},
			{refused("A"), []string{"emit give_up dropped"}},
		}, stGaveUp, ErrNoCapacity},
		{"bounded in time: 20 s into the outage, three failures give up though B failed once", func(h *harness) {
			h.pool.SetAside("B", 19*time.Second)
		}, []stepCase{
			{dropped, []string{"close sess_A_1", "emit swap_started dropped", "dial swap A"}},
			{refused("A"), []string{"dial swap A"}},
			{tick(19 * time.Second), []string{}},
			{refused("A"), []string{"dial swap B"}}, // B is back
			{tick(time.Second), []string{}},
			{refused("B"), []string{"emit give_up dropped"}}, // 20 s: GiveUpAfter
		}, stGaveUp, ErrAllRegionsFailed},
		{"B refuses: A, the failed region, takes the call", func(*harness) {}, []stepCase{
			{dropped, []string{"close sess_A_1", "emit swap_started dropped", "dial swap B"}},
			{refused("B"), []string{"dial swap A"}},
			{dialed("A", nil), []string{"watch sess_A_new"}},
			{acked, []string{}},
			{acked, []string{"emit swap_finished dropped"}},
		}, stActive, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s1 := startActive(t, Config{MaxSwapsInRow: 3}, regions)
			h.userTurn(s1, "u1", 1, 5)
			h.answer(s1, "r1", "a1", "Hi.", 200)
			tc.setup(h)
			for i, st := range tc.steps {
				fx := slices.Clone(h.conv.step(st.in(h)))
				require.Equal(t, st.wantFx, describe(fx), "step %d", i+1)
				for _, e := range fx {
					if d, ok := e.(fxDial); ok {
						h.dialer.take(d.Region, h.conv.cfg.Session)
						continue
					}
					h.exec(e)
				}
			}
			require.Equal(t, tc.wantState, h.conv.state)
			if tc.wantErr != nil {
				require.ErrorIs(t, h.stop(), tc.wantErr)
			}
		})
	}
}
