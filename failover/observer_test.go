package failover

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

// recordingObserver keeps what a conversation reports.
type recordingObserver struct {
	mu        sync.Mutex
	sessions  []SessionEntry
	responses []ResponseEntry
	swaps     []SwapEntry
}

func (o *recordingObserver) SessionClosed(e SessionEntry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sessions = append(o.sessions, e)
}

func (o *recordingObserver) ResponseDone(e ResponseEntry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.responses = append(o.responses, e)
}

func (o *recordingObserver) Transcript([]TranscriptLine) {}

func (o *recordingObserver) Hedged(HedgeEntry) {}

func (o *recordingObserver) Swapped(e SwapEntry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.swaps = append(o.swaps, e)
}

func withObserver(o Observer) harnessOpt { return func(h *harness) { h.obs = o } }

// loadOf is the sessions held in region by purpose.
func loadOf(p *Pool, region string) map[string]int {
	for _, l := range p.Load() {
		if l.Name == region {
			return l.ByPurpose
		}
	}
	return nil
}

// TestLeasesFollowSessions: the call's session and its warm standby each
// hold a slot, by purpose; a swap to the standby retags it as the call's
// and frees the failed session's; the end of the call frees everything.
func TestLeasesFollowSessions(t *testing.T) {
	obs := &recordingObserver{}
	h, s1 := startActive(t, Config{}, testRegions("B"), withObserver(obs))
	standby := h.session(2)
	h.waitActor(func(c *Conversation) bool { return c.standby.spare != nil }, "standby ready")
	require.Equal(t, 1, loadOf(h.pool, "A")["call"])
	require.Equal(t, 1, loadOf(h.pool, "B")["standby"])

	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"), done("r1", realtime.StatusFailed, failed("", "server_error", "boom")))
	h.waitActive(standby)
	require.Equal(t, 0, loadOf(h.pool, "A")["call"], "the failed session's slot is free")
	require.Equal(t, 1, loadOf(h.pool, "B")["call"], "the standby now carries the call")
	require.Equal(t, 0, loadOf(h.pool, "B")["standby"])

	require.NoError(t, h.stop())
	for _, l := range h.pool.Load() {
		require.Zero(t, l.Sessions, "region %s holds nothing after the call", l.Name)
	}
	require.Len(t, obs.responses, 1)
	require.Equal(t, "A", obs.responses[0].Region)
	require.Equal(t, realtime.PurposeAnswer, obs.responses[0].Purpose)
	require.Equal(t, realtime.StatusFailed, obs.responses[0].Event.Response.Status)
	var closed []string
	for _, s := range obs.sessions {
		closed = append(closed, s.Region+":"+s.CloseReason)
	}
	require.ElementsMatch(t, []string{"A:failed", "B:call_end"}, closed)
	require.Len(t, obs.swaps, 1)
	require.Equal(t, "A", obs.swaps[0].From)
	require.Equal(t, "B", obs.swaps[0].To)
}

// TestFirstSessionRespectsCaps: a region at its cap is skipped for the
// next call; when every region is full the call gives up at once with a
// NoCapacityError (the 503's Retry-After) and dials nothing.
func TestFirstSessionRespectsCaps(t *testing.T) {
	regions := []Region{{Name: "A", MaxSessions: 1}, {Name: "B", MaxSessions: 1}}
	h, _ := startActive(t, Config{}, regions)
	require.Equal(t, 1, loadOf(h.pool, "A")["call"])

	held, err := h.pool.AcquireIn("B", SessionCall)
	require.NoError(t, err)
	require.True(t, h.pool.Full())

	h2 := newHarness(t, Config{}, regions)
	h2.pool = h.pool
	h2.conv.pool = h.pool
	h2.start()
	require.Empty(t, h2.dialer.dialed(), "nothing dialled when every region is full")
	err = h2.stop()
	require.ErrorIs(t, err, ErrAllRegionsFailed)
	require.ErrorIs(t, err, ErrNoCapacity)
	var nc *NoCapacityError
	require.True(t, errors.As(err, &nc))
	require.Equal(t, DefaultRetryAfter, nc.RetryAfter)

	held.Release()
	require.False(t, h.pool.Full())
}

// TestWeightsWithinTier: regions sharing a priority split new calls by
// weight; a lower tier is used only when the upper one is full.
func TestWeightsWithinTier(t *testing.T) {
	zero, one := 0, 1
	p := NewPool([]Region{
		{Name: "A", Weight: 3, Priority: &zero},
		{Name: "B", Weight: 1, Priority: &zero},
		{Name: "C", Priority: &one, MaxSessions: 1},
	}, HealthConfig{}, nil, nil)
	count := map[string]int{}
	for range 400 {
		r, l, err := p.Lease(SessionCall, p.Candidates())
		require.NoError(t, err)
		count[r.Name]++
		l.Release()
	}
	require.InDelta(t, 300, count["A"], 12)
	require.InDelta(t, 100, count["B"], 12)
	require.Zero(t, count["C"])
}

// TestConnect429ThrottlesTheRegion: a connect refused with 429 keeps new
// sessions away from the region for the Retry-After it asked; the call
// goes on in the next region, and the region is picked again once the
// wait is over.
func TestConnect429ThrottlesTheRegion(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	h.dialer.then("A", dialStep{err: &realtime.DialError{Region: "A", StatusCode: 429, RetryAfter: 20 * time.Second}})
	h.start()
	s := h.session(1)
	require.Equal(t, "B", s.region)
	h.waitActive(s)
	var throttled *time.Time
	for _, l := range h.pool.Load() {
		if l.Name == "A" {
			throttled = l.ThrottledUntil
		}
	}
	require.NotNil(t, throttled, "A is throttled")
	require.Equal(t, h.clock.Now().Add(20*time.Second), *throttled)
	r, l, err := h.pool.Lease(SessionCall, h.pool.Candidates())
	require.NoError(t, err)
	require.NotEqual(t, "A", r.Name, "no new session in a throttled region")
	l.Release()

	h.clock.Advance(21 * time.Second)
	r, l, err = h.pool.Lease(SessionCall, []Region{{Name: "A"}})
	require.NoError(t, err)
	require.Equal(t, "A", r.Name, "the wait is over")
	l.Release()
}

// The record's bookkeeping of a model audio delta (one per ~20-100 ms of
// answer) allocates nothing in steady state.
func TestObserveAudioDeltaDoesNotAllocate(t *testing.T) {
	h, _ := startActive(t, Config{}, testRegions())
	c := h.conv
	c.observeEvent(created("r1"))
	ev := realtime.ServerEvent{Type: realtime.EvOutputAudioDelta, ResponseID: "r1", ItemID: "a1", Audio: make([]byte, 960)}
	c.observeEvent(ev)
	allocs := testing.AllocsPerRun(1000, func() { c.observeEvent(ev) })
	require.Zero(t, allocs)
}

func BenchmarkObserveAudioDelta(b *testing.B) {
	c := NewConversation(Params{CallID: "bench"})
	c.observeEvent(created("r1"))
	ev := realtime.ServerEvent{Type: realtime.EvOutputAudioDelta, ResponseID: "r1", ItemID: "a1", Audio: make([]byte, 960)}
	b.ReportAllocs()
	for b.Loop() {
		c.observeEvent(ev)
	}
}
