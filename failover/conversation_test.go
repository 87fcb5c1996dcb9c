package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strings"
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
	default:
		t.Fatal("Ready not closed once the first session is up")
	}

	// The greeting: one response.create, instructions after the session's.
	h.pump()
	require.True(t, len(s1.responses()) == 1)
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

func TestRunTwice(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	h.start()
	h.waitActive(h.session(1))
	require.Error(t, h.conv.Run(t.Context(), h.player))
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

// flushSignalPlayer is a fakePlayer that also signals each Flush.
type flushSignalPlayer struct {
	*fakePlayer
	flushed chan struct{}
}

func (p flushSignalPlayer) Flush() {
	p.fakePlayer.Flush()
	p.flushed <- struct{}{}
}

// TestRunServesAfterGivingUp: the production shell. After giving up, Run
// keeps serving the call (here: a hold, which flushes playout) until the
// call's context ends; returning at once would let the call hang up before
// the caller heard the apology.
func TestRunServesAfterGivingUp(t *testing.T) {
	dialer := newFakeDialer()
	for _, r := range []string{"A", "B", "C"} { // every region refuses twice: giving up is right
		refused := dialStep{err: &realtime.DialError{Region: r, StatusCode: 503}}
		dialer.then(r, refused, refused)
	}
	player := flushSignalPlayer{fakePlayer: newFakePlayer(), flushed: make(chan struct{}, 4)}
	clock := newFakeClock()
	pool := NewPool(testRegions(), HealthConfig{Now: clock.Now}, nil, nil)
	conv := NewConversation(Params{CallID: "call-1", Config: Config{Session: testSessionConfig(), MaxSwapsInRow: 2,
		ApologyAudio: []byte("sorry")}, Pool: pool, Dialer: dialer, Now: clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- conv.Run(ctx, player) }()

	select {
	case ctl := <-conv.Controls():
		require.Equal(t, ControlGiveUp, ctl.Kind)
	case <-time.After(waitFor):
		t.Fatal("no give-up")
	}
	<-player.flushed // giving up flushed playout before the apology
	conv.SetHold(true)
	select {
	case <-player.flushed:
	case err := <-runErr:
		t.Fatalf("Run returned (%v) before the call ended it", err)
	case <-time.After(waitFor):
		t.Fatal("hold not handled")
	}
	cancel()
	require.ErrorIs(t, <-runErr, ErrAllRegionsFailed)
	_, open := <-conv.Controls()
	require.False(t, open, "Controls closed when Run returns")
	require.Equal(t, 5, player.bytesFor(apologyItem))
}

// TestGreetingWaitsForConfirm: with GreetAfterConfirm a call answered and
// never acknowledged has no response created (nothing billed); the ACK
// releases the greeting, whether it comes before or after the session is up.
func TestGreetingWaitsForConfirm(t *testing.T) {
	cfg := Config{Greeting: "Say hello.", GreetAfterConfirm: true}

	h := newHarness(t, cfg, testRegions())
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.pump()
	require.Empty(t, s1.responses(), "no response.create before the ACK")
	h.conv.CallConfirmed()
	h.pump()
	require.Len(t, s1.responses(), 1, "the ACK releases the greeting")
	require.Equal(t, testSessionConfig().Instructions+"\n\nSay hello.", s1.responses()[0].Instructions)
	h.conv.CallConfirmed() // a second confirmation changes nothing
	h.pump()
	require.Len(t, s1.responses(), 1)
	require.NoError(t, h.stop())

	h = newHarness(t, cfg, testRegions())
	h.conv.CallConfirmed() // ACK first (answered before ready)
	h.start()
	s1 = h.session(1)
	h.waitActive(s1)
	h.pump()
	require.Len(t, s1.responses(), 1, "greeted as soon as the session is up")
	require.NoError(t, h.stop())
}

// TestRunReadsTheSessionWithoutAForwarder: the production shell. A call on
// one session runs one goroutine of the conversation, Run, which reads the
// session's events itself: no forwarder goroutine waits on them (issue 10,
// a goroutine's stack per call). Sessions beyond it (a swap's, a hedge's)
// get forwarders: TestSwapAgainstSimulator.
func TestRunReadsTheSessionWithoutAForwarder(t *testing.T) {
	dialer := newFakeDialer()
	player := newFakePlayer()
	clock := newFakeClock()
	pool := NewPool(testRegions(), HealthConfig{Now: clock.Now}, nil, nil)
	conv := NewConversation(Params{CallID: "call-1", Config: Config{Session: testSessionConfig()}, Pool: pool, Dialer: dialer, Now: clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- conv.Run(ctx, player) }()
	defer func() {
		cancel()
		require.NoError(t, <-runErr)
	}()

	deadline := time.After(waitFor)
	for len(dialer.opened()) == 0 {
		select {
		case <-deadline:
			t.Fatal("no session opened")
		case <-time.After(time.Millisecond):
		}
	}
	s := dialer.opened()[0]
	require.True(t, s.push(created("resp_1"),
		realtime.ServerEvent{Type: realtime.EvOutputItemAdded, ResponseID: "resp_1", Item: &realtime.Item{ID: "item_1", Type: "message", Role: "assistant"}},
		realtime.ServerEvent{Type: realtime.EvOutputAudioDelta, ResponseID: "resp_1", ItemID: "item_1", Audio: bytes.Repeat([]byte{0x55}, 100*bpm)}))
	for player.bytesFor("item_1") == 0 {
		select {
		case <-deadline:
			t.Fatal("the session's events were not handled")
		case <-time.After(time.Millisecond):
		}
	}
	// The session's events reach the actor. The dial's goroutine has
	// delivered its result and ends; then Run is the only one left.
	var convStacks []string
	for {
		convStacks = convStacks[:0]
		buf := make([]byte, 1<<20)
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "sipbridge/failover.(*Conversation).") {
				convStacks = append(convStacks, g)
			}
		}
		if len(convStacks) == 1 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("%d goroutines of the conversation, want Run only:\n%s", len(convStacks), strings.Join(convStacks, "\n\n"))
		case <-time.After(time.Millisecond):
		}
	}
	require.Contains(t, convStacks[0], "failover.(*Conversation).Run(")
}
