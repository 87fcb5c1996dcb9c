package failover

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/zaf/g711"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/realtime/sim"
)

// instantPlayer "plays" everything the moment it is queued, and remembers
// it per item, as a media stream that is never behind would.
type instantPlayer struct {
	mu     sync.Mutex
	played map[string]int // bytes
	order  []string
}

func (p *instantPlayer) Play(itemID string, audio []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.played[itemID]; !ok {
		p.order = append(p.order, itemID)
	}
	p.played[itemID] += len(audio)
}

func (p *instantPlayer) Flush() {}

func (p *instantPlayer) PlayedMs(itemID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.played[itemID] / bpm
}

func (p *instantPlayer) items() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.order...)
}

// toneFrames is ms of a 300 Hz tone in μ-law, in 20 ms frames: speech for
// the simulator's energy VAD.
func toneFrames(ms int) [][]byte {
	var out [][]byte
	for f := 0; f < ms/20; f++ {
		b := make([]byte, frame)
		for i := range b {
			n := f*frame + i
			b[i] = g711.EncodeUlawFrame(int16(8000 * math.Sin(2*math.Pi*300*float64(n)/8000)))
		}
		out = append(out, b)
	}
	return out
}

func silenceFrames(ms int) [][]byte {
	out := make([][]byte, ms/20)
	for i := range out {
		out[i] = make([]byte, frame)
		for j := range out[i] {
			out[i][j] = 0xFF // μ-law zero
		}
	}
	return out
}

// TestSwapAgainstSimulator runs the real client (RealtimeDialer →
// realtime.Dial) against two simulated regions: the first fails its answer
// after 400 ms of audio, the second must accept the whole replay (ids,
// content types, the continuation create) and answer.
func TestSwapAgainstSimulator(t *testing.T) {
	east := sim.New(sim.Config{Region: "east", APIKey: "sk-test", ResponseDelay: 10 * time.Millisecond, Speedup: 20,
		Faults: sim.Faults{FailAfterAudioMs: 400, FailAfterAudioCount: 1}})
	west := sim.New(sim.Config{Region: "west", APIKey: "sk-test", ResponseDelay: 10 * time.Millisecond, Speedup: 20})
	t.Cleanup(func() {
		require.NoError(t, east.Close())
		require.NoError(t, west.Close())
	})
	eastURL, err := east.Listen("127.0.0.1:0")
	require.NoError(t, err)
	westURL, err := west.Listen("127.0.0.1:0")
	require.NoError(t, err)
	region := func(name, base string) Region {
		return Region{Name: name, Dial: realtime.DialConfig{Region: name, URL: wsURL(base) + "/v1/realtime?model=gpt-realtime",
			APIKey: "sk-test", Auth: realtime.AuthBearer, DialTimeout: 5 * time.Second}}
	}
	tap := newLogTap()
	log := slog.New(tap)
	m := NewMetrics(prometheus.NewRegistry())
	pool := NewPool([]Region{region("east", eastURL), region("west", westURL)}, HealthConfig{}, m, log)
	player := &instantPlayer{played: map[string]int{}}
	cfg := Config{Session: testSessionConfig()}
	conv := NewConversation(Params{CallID: "sim-call", Config: cfg, Pool: pool, Dialer: RealtimeDialer{Logger: log},
		Logger: log, Metrics: m})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- conv.Run(ctx, player) }()
	var ctls []ControlKind
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		for c := range conv.Controls() {
			ctls = append(ctls, c.Kind)
		}
	}()

	select {
	case <-conv.Ready():
	case <-time.After(waitFor):
		t.Fatal("east never took the call")
	}
	// The caller says something (1 s of tone), then is silent. In 100 ms
	// writes: the simulator's VAD counts samples, not arrival times, and
	// twenty writes fit the client's audio queue.
	frames := append(toneFrames(1000), silenceFrames(1000)...)
	for i := 0; i < len(frames); i += 5 {
		conv.WriteCallerAudio(concat(frames[i:min(i+5, len(frames))]...))
	}
	// east answers, fails after 400 ms of audio; west gets the replay and
	// answers in turn. The conversation logs each response.done it takes,
	// after every event of that response.
	tap.await(t, func(r tapRecord) bool {
		return r.msg == "failover: response done" && r.attrs["region"] == "west" && r.attrs["status"] == realtime.StatusCompleted
	}, "west answered after the swap")
	items := player.items()
	// The call ends; once the simulators have closed, their records are final.
	cancel()
	require.NoError(t, <-runErr)
	<-ctlDone
	require.NoError(t, east.Close())
	require.NoError(t, west.Close())

	ws0 := west.Sessions()
	require.Len(t, ws0, 1)
	require.Len(t, ws0[0].Responses, 1)
	require.Equal(t, realtime.StatusCompleted, ws0[0].Responses[0].Status)
	es := east.Sessions()[0]
	require.Len(t, es.Responses, 1)
	require.Equal(t, realtime.StatusFailed, es.Responses[0].Status)
	eastAnswer := es.Responses[0].Text

	ws := west.Sessions()[0]
	require.Empty(t, ws.Errors, "the replay is valid for the server")
	require.GreaterOrEqual(t, len(ws.Items), 3)
	require.Equal(t, "user", ws.Items[0].Role)
	require.Equal(t, "client", ws.Items[0].Origin)
	require.Equal(t, []string{"input_audio"}, ws.Items[0].ContentTypes, "the failed turn's caller audio")
	require.GreaterOrEqual(t, ws.Items[0].AudioMs, 1000)
	require.Less(t, ws.Items[0].AudioMs, 2000)
	require.Equal(t, "assistant", ws.Items[1].Role)
	require.Equal(t, []string{"output_text"}, ws.Items[1].ContentTypes)
	heard := ws.Items[1].Text
	require.NotEmpty(t, heard)
	require.True(t, strings.HasPrefix(eastAnswer, heard), "replayed text %q is a prefix of what east said %q", heard, eastAnswer)
	require.Less(t, len(heard), len(eastAnswer), "only what was heard")
	require.Equal(t, sim.TriggerClient, ws.Responses[0].Trigger)
	require.Contains(t, ws.Responses[0].Text, "This is west")
	require.Equal(t, 1, countEvents(ws, "response.create"), "exactly one response.create")
	for _, e := range ws.Events {
		if e.Type == "response.create" {
			require.Contains(t, string(e.Raw), "do not repeat what was already said", "the continuation asks not to repeat")
			require.Contains(t, string(e.Raw), "You are the clinic's phone agent.", "the session instructions stay")
		}
	}
	require.Len(t, items, 2)
	require.Equal(t, ws.Responses[0].ItemIDs[0], items[1], "west's answer reached the player")
	require.Equal(t, []ControlKind{ControlSwapStarted, ControlSwapFinished}, ctls)
}

func wsURL(httpBase string) string {
	switch {
	case strings.HasPrefix(httpBase, "http://"):
		return "ws://" + strings.TrimPrefix(httpBase, "http://")
	case strings.HasPrefix(httpBase, "https://"):
		return "wss://" + strings.TrimPrefix(httpBase, "https://")
	}
	return httpBase
}

func countEvents(r sim.SessionRecord, typ string) int {
	n := 0
	for _, e := range r.Events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// logTap is a slog handler that hands each record (message and attributes,
// those of With included) to the test, so a test waits for what the
// conversation did instead of polling for it.
type logTap struct {
	ch    chan tapRecord
	done  chan struct{} // closed when the test stops reading
	attrs []slog.Attr
}

type tapRecord struct {
	msg   string
	attrs map[string]any
}

func newLogTap() *logTap { return &logTap{ch: make(chan tapRecord, 64), done: make(chan struct{})} }

func (l *logTap) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelInfo }

func (l *logTap) Handle(_ context.Context, r slog.Record) error {
	rec := tapRecord{msg: r.Message, attrs: map[string]any{}}
	for _, a := range l.attrs {
		rec.attrs[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Any()
		return true
	})
	// Nothing is dropped while the test reads; once it stopped, nothing
	// waits for it.
	select {
	case l.ch <- rec:
	case <-l.done:
	}
	return nil
}

func (l *logTap) WithAttrs(as []slog.Attr) slog.Handler {
	return &logTap{ch: l.ch, done: l.done, attrs: append(append([]slog.Attr(nil), l.attrs...), as...)}
}

func (l *logTap) WithGroup(string) slog.Handler { return l }

// await reads records until one matches; then the tap stops.
func (l *logTap) await(t *testing.T, match func(tapRecord) bool, what string) {
	t.Helper()
	defer close(l.done)
	timeout := time.After(waitFor)
	for {
		select {
		case r := <-l.ch:
			if match(r) {
				return
			}
		case <-timeout:
			t.Fatal(what)
		}
	}
}
