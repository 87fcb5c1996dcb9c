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
	log := slog.New(slog.DiscardHandler)
	m := NewMetrics(prometheus.NewRegistry())
	pool := NewPool([]Region{region("east", eastURL), region("west", westURL)}, HealthConfig{}, m, log)
	player := &instantPlayer{played: map[string]int{}}
	cfg := Config{Session: testSessionConfig()}
	conv := NewConversation(Params{CallID: "sim-call", Config: cfg, Pool: pool, Dialer: RealtimeDialer{Logger: log},
		Logger: log, Metrics: m})

	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- conv.Run(ctx, player) }()
	var ctlMu sync.Mutex
	var ctls []Control
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		for c := range conv.Controls() {
			ctlMu.Lock()
			ctls = append(ctls, c)
			ctlMu.Unlock()
		}
	}()
	defer func() {
		cancel()
		require.NoError(t, <-runErr)
		<-ctlDone
	}()

	require.Eventually(t, func() bool { return len(east.Sessions()) == 1 }, waitFor, 5*time.Millisecond)
	// The caller says something (1 s of tone), then is silent.
	// Paced like the RTP reader, only faster: a burst would overflow the
	// client's audio queue, which no real caller can do.
	for _, f := range append(toneFrames(1000), silenceFrames(1000)...) {
		conv.WriteCallerAudio(f)
		time.Sleep(5 * time.Millisecond)
	}
	// east answers, fails after 400 ms of audio; west gets the replay and
	// answers in turn.
	require.Eventually(t, func() bool {
		ws := west.Sessions()
		return len(ws) == 1 && len(ws[0].Responses) == 1 && ws[0].Responses[0].Status == realtime.StatusCompleted
	}, waitFor, 5*time.Millisecond, "west answered after the swap")

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
	require.Eventually(t, func() bool {
		items := player.items()
		return len(items) == 2 && items[1] == ws.Responses[0].ItemIDs[0]
	}, waitFor, 5*time.Millisecond, "west's answer reached the player")

	ctlMu.Lock()
	kinds := []ControlKind{}
	for _, c := range ctls {
		kinds = append(kinds, c.Kind)
	}
	ctlMu.Unlock()
	require.Equal(t, []ControlKind{ControlSwapStarted, ControlSwapFinished}, kinds)
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
