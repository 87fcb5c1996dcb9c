package failover

import (
	"io"
	"maps"
	"testing"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/stretchr/testify/require"
)

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
	h.waitActor(func(c *Conversation) bool { return c.standby.spare != nil }, "rotation target ready")
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
	h.pump()
	require.True(t, s1.closed())
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
	h.waitActor(func(c *Conversation) bool { return c.standby.spare != nil }, "standby ready")
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
	h.pump()
	require.True(t, s1.closed())
}

func TestWarmStandbyReplacedWhenItDies(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions("B"))
	sb1 := h.session(2)
	h.waitActor(func(c *Conversation) bool { return c.standby.spare != nil }, "standby ready")
	sb1.end(&realtime.CloseError{Code: -1, Err: io.EOF})
	h.waitActor(func(c *Conversation) bool { return c.standby.spare == nil }, "dead standby dropped")
	h.advance(spareRetry)
	sb2 := h.session(3)
	require.Equal(t, "B", sb2.region)
	h.waitActor(func(c *Conversation) bool {
		return c.standby.spare != nil && c.standby.spare.s == realtime.Session(sb2)
	}, "new standby")
	h.actor(func(c *Conversation) { require.Equal(t, realtime.Session(s1), c.active.s) })
}

// TestPickRegion: the next attempt of a swap goes to the region tried
// least, the failed one last, regions whose breaker is open not at all
// while others are left (and never those an auth error opened).
func TestPickRegion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		exclude string
		tried   map[string]int
		authErr []string // regions whose breaker an auth error opened
		down    []string // regions whose breaker connect errors opened
		want    string
	}{
		{"first connect: priority order", "", nil, nil, nil, "A"},
		{"the failed region is not first", "A", nil, nil, nil, "B"},
		{"tried least wins", "A", map[string]int{"B": 1}, nil, nil, "C"},
		{"the failed region as a last resort", "A", map[string]int{"B": 1, "C": 1}, nil, nil, "A"},
		{"open breaker skipped", "", nil, []string{"A"}, nil, "B"},
		{"all down: a live caller still tries", "", nil, nil, []string{"A", "B", "C"}, "A"},
		{"every region refuses our key: nothing to try", "", nil, []string{"A", "B", "C"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{}, testRegions())
			for _, r := range tc.authErr {
				h.pool.Report(r, OutcomeAuthError)
			}
			for _, r := range tc.down {
				for range 4 {
					h.pool.Report(r, OutcomeConnectError)
				}
				require.False(t, h.pool.usable(r), "breaker of %s open", r)
			}
			tried := map[string]int{}
			maps.Copy(tried, tc.tried)
			got, lease, err := h.conv.pickRegion(&swapState{exclude: tc.exclude, tried: tried})
			require.Equal(t, tc.want != "", err == nil, "err %v", err)
			require.Equal(t, tc.want, got.Name)
			if lease != nil {
				require.Equal(t, tc.want, lease.Region())
				lease.Release()
			}
		})
	}
}

// TestSpareFits: the standby takes over a swap unless it is in the region
// that failed, its breaker is open, or it is about to expire itself.
func TestSpareFits(t *testing.T) {
	for _, tc := range []struct {
		name      string
		region    string
		exclude   string
		authErr   bool
		expiresIn time.Duration // 0: no expiry
		want      bool
	}{
		{"other region", "B", "A", false, 0, true},
		{"the failed region", "A", "A", false, 0, false},
		{"breaker open", "B", "A", true, 0, false},
		{"expires well after the margin", "B", "A", false, DefaultRotateMargin + time.Minute, true},
		{"expires within the margin", "B", "A", false, DefaultRotateMargin - time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{}, testRegions())
			if tc.authErr {
				h.pool.Report(tc.region, OutcomeAuthError)
			}
			fs := newFakeSession("spare", tc.region)
			if tc.expiresIn > 0 {
				fs.expires = h.clock.Now().Add(tc.expiresIn)
			}
			h.conv.standby.spare = &session{s: fs, region: Region{Name: tc.region}, started: h.clock.Now()}
			require.Equal(t, tc.want, h.conv.spareFits(&swapState{exclude: tc.exclude}))
		})
	}
}
