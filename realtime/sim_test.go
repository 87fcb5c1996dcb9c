package realtime_test

// Strict-simulator tests: the client against realtime/sim, which answers
// the way the real service does (§9 behaviours included).

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/realtime/sim"
)

const simKey = "sk-sim-key-0123456789"

const (
	gaPath      = "/v1/realtime?model=gpt-realtime"
	azureGAPath = "/openai/v1/realtime?model=my-deployment"
	previewPath = "/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-4o-realtime-preview"
)

func startSim(t *testing.T, f sim.Faults) (*sim.Server, string) {
	t.Helper()
	s := sim.New(sim.Config{Region: "east", APIKey: simKey, ResponseDelay: 10 * time.Millisecond, Speedup: 50, Faults: f})
	url, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, url
}

func simSession() realtime.SessionConfig {
	return realtime.SessionConfig{
		Model:        "gpt-realtime",
		Instructions: "You are a phone agent.",
		Voice:        "marin",
		InputFormat:  realtime.FormatPCMU,
		OutputFormat: realtime.FormatPCMU,
		// VAD off: the test commits turns and asks for answers itself.
	}
}

func dialSim(t *testing.T, url string, dc realtime.DialConfig, sc realtime.SessionConfig) (realtime.Session, error) {
	t.Helper()
	dc.URL = url + dc.URL
	if dc.APIKey == "" {
		dc.APIKey = simKey
	}
	if dc.Region == "" {
		dc.Region = "east"
	}
	dc.DialTimeout = 10 * time.Second
	s, err := realtime.Dial(context.Background(), dc, sc, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

// until reads events until one of type typ, returning all of them.
func until(t *testing.T, s realtime.Session, typ string) []realtime.ServerEvent {
	t.Helper()
	var out []realtime.ServerEvent
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-s.Events():
			require.True(t, ok, "session ended: %v", s.Err())
			out = append(out, *ev)
			if ev.Type == typ {
				return out
			}
		case <-timeout:
			require.FailNow(t, "no "+typ)
		}
	}
}

func audioBytes(evs []realtime.ServerEvent) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == realtime.EvOutputAudioDelta {
			n += len(ev.Audio)
		}
	}
	return n
}

func lastUpdate(t *testing.T, s *sim.Server) map[string]any {
	t.Helper()
	recs := s.Sessions()
	require.NotEmpty(t, recs)
	ups := recs[len(recs)-1].SessionUpdates
	require.NotEmpty(t, ups)
	var m map[string]any
	require.NoError(t, json.Unmarshal(ups[len(ups)-1], &m))
	return m
}

// TestDialectSessionAccepted: one configuration (voice marin, a model) is
// accepted by every dialect's region; before, a preview region refused
// marin and could never take a call.
func TestDialectSessionAccepted(t *testing.T) {
	s, url := startSim(t, sim.Faults{})

	_, err := dialSim(t, url, realtime.DialConfig{URL: previewPath}, simSession())
	require.NoError(t, err)
	up := lastUpdate(t, s)
	require.Equal(t, "coral", up["voice"], "marin mapped for preview")
	require.NotContains(t, up, "model")

	_, err = dialSim(t, url, realtime.DialConfig{URL: azureGAPath}, simSession())
	require.NoError(t, err, "session.model gpt-realtime would be refused by a deployment-named session")
	up = lastUpdate(t, s)
	require.NotContains(t, up, "model")
	require.Equal(t, "marin", up["audio"].(map[string]any)["output"].(map[string]any)["voice"])

	_, err = dialSim(t, url, realtime.DialConfig{URL: previewPath, Voice: "verse"}, simSession())
	require.NoError(t, err)
	require.Equal(t, "verse", lastUpdate(t, s)["voice"], "regions[].voice override")

	n := len(s.Sessions())
	_, err = dialSim(t, url, realtime.DialConfig{URL: previewPath, Voice: "cedar"}, simSession())
	var de *realtime.DialError
	require.ErrorAs(t, err, &de)
	var ve *realtime.VoiceError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "cedar", ve.Voice)
	require.Len(t, s.Sessions(), n, "refused before connecting")
}

// TestUpdateSessionMapsPreviewVoice: a mid-call session.update renders the
// voice for the region's dialect too, and the strict simulator accepts it.
func TestUpdateSessionMapsPreviewVoice(t *testing.T) {
	srv, url := startSim(t, sim.Faults{})
	s, err := dialSim(t, url, realtime.DialConfig{URL: previewPath}, realtime.SessionConfig{Instructions: "x"})
	require.NoError(t, err)
	until(t, s, realtime.EvSessionUpdated)
	require.NoError(t, s.UpdateSession(context.Background(), realtime.SessionConfig{Instructions: "y", Voice: "cedar"}))
	evs := until(t, s, realtime.EvSessionUpdated)
	for _, ev := range evs {
		require.NotEqual(t, realtime.EvError, ev.Type, "%+v", ev.Error)
	}
	require.Equal(t, "ash", lastUpdate(t, srv)["voice"])
}

func TestAuthStylesPerRoute(t *testing.T) {
	_, url := startSim(t, sim.Faults{})
	tests := []struct {
		name string
		path string
		auth realtime.AuthStyle
		ok   bool
	}{
		{"openai bearer", gaPath, realtime.AuthBearer, true},
		{"openai api-key header refused", gaPath, realtime.AuthAPIKey, false},
		{"azure GA api-key", azureGAPath, realtime.AuthAPIKey, true},
		{"azure GA bearer (Entra)", azureGAPath, realtime.AuthBearer, true},
		{"preview api-key", previewPath, realtime.AuthAPIKey, true},
		{"preview bearer (Entra)", previewPath, realtime.AuthBearer, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialSim(t, url, realtime.DialConfig{URL: tc.path, Auth: tc.auth}, simSession())
			if tc.ok {
				require.NoError(t, err)
				return
			}
			var de *realtime.DialError
			require.ErrorAs(t, err, &de)
			require.Equal(t, 401, de.StatusCode)
		})
	}
}

func TestDialRateLimited(t *testing.T) {
	_, url := startSim(t, sim.Faults{RefuseStatus: 429, RetryAfter: 7 * time.Second})
	_, err := dialSim(t, url, realtime.DialConfig{URL: gaPath}, simSession())
	var de *realtime.DialError
	require.ErrorAs(t, err, &de)
	require.Equal(t, 429, de.StatusCode)
	require.Equal(t, 7*time.Second, de.RetryAfter)
	rl, ok := realtime.AsRateLimit(err)
	require.True(t, ok)
	require.Equal(t, realtime.RateLimitHTTP, rl.Source)
	require.Equal(t, realtime.CodeRateLimitExceeded, rl.Code)
	require.Equal(t, 7*time.Second, rl.RetryAfter)
}

func TestResponseRateLimited(t *testing.T) {
	_, url := startSim(t, sim.Faults{RateLimitResponses: 1, RetryAfter: 4 * time.Second})
	s, err := dialSim(t, url, realtime.DialConfig{URL: gaPath}, simSession())
	require.NoError(t, err)
	require.NoError(t, s.CreateResponse(context.Background(), realtime.ResponseParams{}))
	evs := until(t, s, realtime.EvResponseDone)
	var limits []realtime.RateLimit
	for _, ev := range evs {
		if ev.Type == realtime.EvRateLimitsUpdated {
			limits = ev.RateLimits
		}
	}
	require.Equal(t, []realtime.RateLimit{{Name: "requests", Limit: 1000, Remaining: 0, ResetSeconds: 4},
		{Name: "tokens", Limit: 50000, Remaining: 0, ResetSeconds: 4}}, limits)
	rl, ok := realtime.RateLimitFromEvent("east", evs[len(evs)-1])
	require.True(t, ok)
	require.Equal(t, realtime.RateLimitResponse, rl.Source)
	require.Equal(t, realtime.CodeInferenceRateLimitExceeded, rl.Code)
	require.Equal(t, 4*time.Second, rl.RetryAfter)

	// Throttling passes; the next response is served.
	require.NoError(t, s.CreateResponse(context.Background(), realtime.ResponseParams{}))
	evs = until(t, s, realtime.EvResponseDone)
	require.Equal(t, realtime.StatusCompleted, evs[len(evs)-1].Response.Status)
	_, ok = realtime.RateLimitFromEvent("east", evs[len(evs)-1])
	require.False(t, ok)
}

// TestReplayAcknowledged sends a replay the way failover should: every item
// tracked, a refused one repaired and re-sent, response.create only once
// every item is confirmed.
func TestReplayAcknowledged(t *testing.T) {
	srv, url := startSim(t, sim.Faults{})
	s, err := dialSim(t, url, realtime.DialConfig{URL: gaPath}, simSession())
	require.NoError(t, err)
	until(t, s, realtime.EvSessionUpdated)
	longCall := "call_" + strings.Repeat("z", 40) // e.g. another provider's id
	items := []realtime.Item{
		{ID: realtime.NewItemID(), Type: "message", Role: "user", Content: []realtime.ContentPart{{Type: "input_text", Text: "book a table"}}},
		{ID: realtime.NewItemID(), Type: "function_call", CallID: longCall, Name: "book", Arguments: `{"n":2}`},
		{ID: realtime.NewItemID(), Type: "function_call_output", CallID: longCall, Output: `{"ok":true}`},
		{ID: "item_" + strings.Repeat("L", 40), Type: "message", Role: "assistant", Content: []realtime.ContentPart{{Type: "output_text", Text: "Booked."}}},
	}
	var acks realtime.ItemAcks
	send := func(it realtime.Item) {
		require.NoError(t, acks.Expect(it))
		require.NoError(t, s.CreateItem(context.Background(), it, ""))
	}
	for _, it := range items {
		send(it)
	}
	refused, repaired := 0, 0
	timeout := time.After(15 * time.Second)
	for acks.Len() > 0 {
		select {
		case ev := <-s.Events():
			ack, ok := acks.Observe(*ev)
			if !ok {
				continue
			}
			if ack.Accepted {
				continue
			}
			refused++
			fixed, ok := realtime.RepairItem(ack.Item, *ack.Error)
			if !ok {
				// The output of a refused call is refused too until the
				// call is repaired: its own repair is the same FitID.
				require.Equal(t, "item.call_id", ack.Error.Param, "%+v", ack.Error)
				fixed, ok = realtime.RepairItem(ack.Item, realtime.ErrorDetail{Code: "string_above_max_length", Param: "item.call_id"})
				require.True(t, ok)
			}
			repaired++
			send(fixed)
		case <-timeout:
			require.FailNow(t, "replay not acknowledged", "pending %+v", acks.Pending())
		}
	}
	require.Equal(t, 3, refused, "long call_id twice (call, output), long id once")
	require.Equal(t, refused, repaired)
	rec := srv.Sessions()[0]
	require.Len(t, rec.Items, 4, "every item in the new session")
	for _, it := range rec.Items {
		require.LessOrEqual(t, len(it.ID), realtime.MaxClientIDLen)
		require.LessOrEqual(t, len(it.CallID), realtime.MaxClientIDLen)
	}
	require.Equal(t, realtime.FitID(longCall), rec.Items[1].CallID)
	require.Equal(t, rec.Items[1].CallID, rec.Items[2].CallID)
}

// TestTextAnswerAfterReplayAndRecovery: a replayed text history makes the
// (simulated, as reported for the real) model answer in text; the client
// sees it (IsTextAnswer) and recovers with caller audio as the last turn.
func TestTextAnswerAfterReplayAndRecovery(t *testing.T) {
	_, url := startSim(t, sim.Faults{TextAfterReplayRate: 1, Seed: 1})
	s, err := dialSim(t, url, realtime.DialConfig{URL: gaPath}, simSession())
	require.NoError(t, err)
	ctx := context.Background()
	for _, it := range []realtime.Item{
		{ID: realtime.NewItemID(), Type: "message", Role: "assistant", Content: []realtime.ContentPart{{Type: "output_text", Text: "Hello, how can I help?"}}},
		{ID: realtime.NewItemID(), Type: "message", Role: "user", Content: []realtime.ContentPart{{Type: "input_text", Text: "My order is late."}}},
	} {
		require.NoError(t, s.CreateItem(ctx, it, ""))
	}
	require.NoError(t, s.CreateResponse(ctx, realtime.ResponseParams{}))
	evs := until(t, s, realtime.EvResponseDone)
	text := false
	for _, ev := range evs {
		text = text || realtime.IsTextAnswer(ev)
	}
	require.True(t, text, "a text answer is visible to the bridge")
	require.Zero(t, audioBytes(evs), "and nothing was heard")

	// Recovery: the caller's audio as the last user turn, then ask again.
	for range 30 { // 600 ms of μ-law "speech"
		frame := make([]byte, 160)
		for i := range frame {
			frame[i] = byte(0x10 + i%32)
		}
		require.True(t, s.AppendAudio(frame))
	}
	require.NoError(t, s.CommitAudio(ctx))
	require.NoError(t, s.CreateResponse(ctx, realtime.ResponseParams{}))
	evs = until(t, s, realtime.EvResponseDone)
	require.Positive(t, audioBytes(evs))
	for _, ev := range evs {
		require.False(t, realtime.IsTextAnswer(ev))
	}
}

// TestTurnDetectionNoneEndToEnd: with VAD off (turn_detection null, the
// config's type: none) the bridge commits the caller's turn and asks for
// the answer itself; the server starts nothing on its own.
func TestTurnDetectionNoneEndToEnd(t *testing.T) {
	srv, url := startSim(t, sim.Faults{})
	for _, path := range []string{gaPath, previewPath} {
		t.Run(path, func(t *testing.T) {
			s, err := dialSim(t, url, realtime.DialConfig{URL: path}, simSession())
			require.NoError(t, err)
			ctx := context.Background()
			for range 25 {
				require.True(t, s.AppendAudio(make([]byte, 160)))
			}
			require.NoError(t, s.CommitAudio(ctx))
			evs := until(t, s, realtime.EvInputCommitted)
			for _, ev := range evs {
				require.NotEqual(t, realtime.EvResponseCreated, ev.Type)
			}
			require.NoError(t, s.CreateResponse(ctx, realtime.ResponseParams{}))
			evs = until(t, s, realtime.EvResponseDone)
			require.Equal(t, realtime.StatusCompleted, evs[len(evs)-1].Response.Status)
			require.Positive(t, audioBytes(evs))
		})
	}
	for _, rec := range srv.Sessions() {
		for _, r := range rec.Responses {
			require.Equal(t, sim.TriggerClient, r.Trigger)
		}
	}
}
