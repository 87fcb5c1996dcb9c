package sim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// respond sends response.create and returns the events up to response.done.
func (c *client) respond() []map[string]any {
	c.t.Helper()
	c.send(map[string]any{"type": "response.create"})
	return c.until("response.done")
}

func doneOf(evs []map[string]any) map[string]any {
	return evs[len(evs)-1]["response"].(map[string]any)
}

func readyNoVAD(t *testing.T, url string) (*client, string) {
	c, created := dialReady(t, url, gaPath)
	c.update(noVADSession())
	return c, sessID(created)
}

func TestFaultFailBeforeAudio(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{FailBeforeAudio: 1}
	s, url := startSim(t, cfg)
	a, aID := readyNoVAD(t, url)
	b, _ := readyNoVAD(t, url)

	evs := a.respond()
	require.Equal(t, []string{"response.created", "rate_limits.updated", "response.done"}, types(evs))
	done := doneOf(evs)
	require.Equal(t, "failed", done["status"])
	require.Equal(t, []any{}, done["output"])
	sd := done["status_details"].(map[string]any)
	require.Equal(t, "failed", sd["type"])
	e := sd["error"].(map[string]any)
	require.Equal(t, "server_error", e["type"])
	require.Nil(t, e["code"])
	msg := e["message"].(string)
	require.True(t, strings.HasPrefix(msg, "The server had an error while processing your request. Sorry about that!"), msg)
	require.Contains(t, msg, "include session ID in your message: "+aID)
	require.Equal(t, 0.0, done["usage"].(map[string]any)["total_tokens"])

	// The count is server-wide: it is used up, the other session is fine.
	require.Equal(t, "completed", doneOf(b.respond())["status"])
	require.Equal(t, "completed", doneOf(a.respond())["status"])
	rec := sessionByID(t, s, aID)
	require.Equal(t, "failed", rec.Responses[0].Status)
	require.Equal(t, "fail_before_audio", rec.Responses[0].Fault)
	require.Equal(t, "server_error", rec.Responses[0].Reason)
}

func TestFaultSticky(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{FailBeforeAudio: 1, Sticky: true}
	_, url := startSim(t, cfg)
	a, _ := readyNoVAD(t, url)
	for range 3 {
		require.Equal(t, "failed", doneOf(a.respond())["status"], "livekit #6040: every later response fails too")
	}
	b, _ := readyNoVAD(t, url)
	require.Equal(t, "completed", doneOf(b.respond())["status"], "a new session recovers")
}

func TestFaultFailAfterAudio(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{FailAfterAudioMs: 300, FailAfterAudioCount: 1}
	_, url := startSim(t, cfg)
	c, _ := readyNoVAD(t, url)
	evs := c.respond()
	require.Equal(t, 300*8, len(audioOf(t, evs, "response.output_audio.delta")), "exactly 300 ms streamed")
	done := doneOf(evs)
	require.Equal(t, "failed", done["status"])
	out := done["output"].([]any)
	require.Len(t, out, 1, "partial output is kept")
	require.Equal(t, "incomplete", out[0].(map[string]any)["status"])
	require.Equal(t, "response.output_item.done", types(evs)[len(types(evs))-3])
	// Count 1: the next response is whole.
	evs = c.respond()
	require.Equal(t, "completed", doneOf(evs)["status"])
	require.Greater(t, len(audioOf(t, evs, "response.output_audio.delta")), 300*8)
}

func TestFaultFailureRateIsSeeded(t *testing.T) {
	outcomes := func() []string {
		cfg := fastConfig("east")
		cfg.Faults = Faults{FailureRate: 0.5, Seed: 42}
		cfg.Responder = func(TurnContext) Reply { return Reply{Text: "ok"} }
		s := New(cfg)
		url, err := s.Listen("127.0.0.1:0")
		require.NoError(t, err)
		defer func() { require.NoError(t, s.Close()) }()
		c, _ := readyNoVAD(t, url)
		var out []string
		for range 12 {
			out = append(out, doneOf(c.respond())["status"].(string))
		}
		return out
	}
	first := outcomes()
	require.Equal(t, first, outcomes(), "same seed, same outcomes")
	require.Contains(t, first, "failed")
	require.Contains(t, first, "completed")
}

func TestFaultStallNoResponse(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{StallNoResponse: 1}
	s, url := startSim(t, cfg)
	c, id := readyNoVAD(t, url)
	c.send(map[string]any{"type": "response.create"})
	time.Sleep(5 * cfg.ResponseDelay) // let a non-stalled response have started
	c.probe()                         // nothing arrived: no response.created
	c.send(map[string]any{"type": "response.create", "event_id": "again"})
	require.Equal(t, "again", c.expectError("conversation_already_has_active_response")["event_id"])
	c.send(map[string]any{"type": "response.cancel"})
	evs := c.until("response.done")
	require.Equal(t, []string{"response.done"}, types(evs), "a bare response.done, no response.created (§3.6)")
	require.Equal(t, "cancelled", doneOf(evs)["status"])
	require.Equal(t, "completed", doneOf(c.respond())["status"])
	require.Equal(t, "stall_no_response", sessionByID(t, s, id).Responses[0].Fault)
}

func TestFaultStallFirstAudio(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{StallFirstAudio: 1}
	s, url := startSim(t, cfg)
	c, id := readyNoVAD(t, url)
	c.send(map[string]any{"type": "response.create"})
	evs := c.until("rate_limits.updated")
	require.Equal(t, "response.created", evs[0]["type"])
	time.Sleep(5 * cfg.ResponseDelay) // a healthy response would be streaming by now
	// Nothing more arrives: the clear's answer comes first.
	c.send(map[string]any{"type": "input_audio_buffer.clear"})
	for ev := c.next(); ev["type"] != "input_audio_buffer.cleared"; ev = c.next() {
		require.NotEqual(t, "response.output_audio.delta", ev["type"])
		require.NotEqual(t, "response.done", ev["type"])
	}
	c.send(map[string]any{"type": "response.cancel"})
	require.Equal(t, "cancelled", doneOf(c.until("response.done"))["status"])
	require.Equal(t, "completed", doneOf(c.respond())["status"], "the fault is consumed")
	require.Equal(t, "stall_first_audio", sessionByID(t, s, id).Responses[0].Fault)
}

func TestFaultStallMidAudio(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{StallMidAudioMs: 200}
	_, url := startSim(t, cfg)
	c, _ := readyNoVAD(t, url)
	c.send(map[string]any{"type": "response.create"})
	var audio []map[string]any
	for len(audio) < 2 {
		ev := c.next()
		require.NotEqual(t, "response.done", ev["type"])
		if ev["type"] == "response.output_audio.delta" {
			audio = append(audio, ev)
		}
	}
	time.Sleep(20 * time.Millisecond)
	// Everything the server sent before the probe's answer is the rest of
	// the stalled response: no more audio beyond 200 ms, and no done.
	c.send(map[string]any{"type": "input_audio_buffer.clear"})
	for ev := c.next(); ev["type"] != "input_audio_buffer.cleared"; ev = c.next() {
		require.NotEqual(t, "response.done", ev["type"])
		require.NotEqual(t, "response.output_audio.delta", ev["type"])
	}
	require.Equal(t, 200*8, len(audioOf(t, audio, "response.output_audio.delta")))
	c.send(map[string]any{"type": "response.cancel"})
	require.Equal(t, "cancelled", doneOf(c.until("response.done"))["status"])
}

func TestFaultCloseAfterAudioOnce(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{CloseAfterAudioMs: 200}
	s, url := startSim(t, cfg)
	c, id := readyNoVAD(t, url)
	c.send(map[string]any{"type": "response.create"})
	var audio []byte
	for {
		ev, err := c.read()
		if err != nil {
			require.Equal(t, websocket.StatusInternalError, websocket.CloseStatus(err))
			break
		}
		audio = append(audio, audioOf(t, []map[string]any{ev}, "response.output_audio.delta")...)
	}
	require.Equal(t, 200*8, len(audio))
	require.Equal(t, 1011, sessionByID(t, s, id).CloseCode)
	// Once: the reconnect's response completes.
	c2, _ := readyNoVAD(t, url)
	require.Equal(t, "completed", doneOf(c2.respond())["status"])
}

func TestFaultDropAfterAudio(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{DropAfterAudioMs: 100}
	s, url := startSim(t, cfg)
	c, id := readyNoVAD(t, url)
	c.send(map[string]any{"type": "response.create"})
	var err error
	for err == nil {
		_, err = c.read()
	}
	require.Equal(t, websocket.StatusCode(-1), websocket.CloseStatus(err), "no close frame: %v", err)
	require.Eventually(t, func() bool { return sessionByID(t, s, id).CloseCode == -1 }, 10*time.Second, 10*time.Millisecond)
}

func TestFaultRefuseStatus(t *testing.T) {
	s, url := startSim(t, fastConfig("east"))
	for _, tc := range []struct {
		status int
		code   any
		typ    string
	}{{429, "rate_limit_exceeded", "requests"}, {503, nil, "server_error"}} {
		s.SetFaults(Faults{RefuseStatus: tc.status})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, resp, err := websocket.Dial(ctx, url+gaPath, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer sk-test-key-123456"}}})
		cancel()
		require.Error(t, err)
		require.Equal(t, tc.status, resp.StatusCode)
		require.Equal(t, "1", resp.Header.Get("Retry-After"))
		var body struct{ Error map[string]any }
		b, _ := io.ReadAll(resp.Body)
		require.NoError(t, json.Unmarshal(b, &body))
		require.Equal(t, tc.code, body.Error["code"])
		require.Equal(t, tc.typ, body.Error["type"])
	}
	s.SetFaults(Faults{})
	c := dial(t, url+gaPath, nil)
	c.expect("session.created")
}

func TestFaultRefuseConnect(t *testing.T) {
	s, url := startSim(t, fastConfig("east"))
	s.SetFaults(Faults{RefuseConnect: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, url+gaPath, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer sk-test-key-123456"}}})
	require.Error(t, err)
	require.Nil(t, resp, "refused before any HTTP")
	s.SetFaults(Faults{})
	dial(t, url+gaPath, nil).expect("session.created")
}

func TestFaultErrorEventServerError(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{ErrorEventServerError: 1}
	s, url := startSim(t, cfg)
	c, id := readyNoVAD(t, url)
	c.send(map[string]any{"type": "response.create", "event_id": "rc1"})
	ev := c.expect("error")
	e := ev["error"].(map[string]any)
	require.Equal(t, "server_error", e["type"])
	require.Equal(t, "rc1", e["event_id"])
	require.Contains(t, e["message"], id)
	c.probe() // no response.created
	require.Equal(t, "completed", doneOf(c.respond())["status"], "not active: the next create works")
	require.Equal(t, "error_event", sessionByID(t, s, id).Responses[0].Status)
}

func TestSessionExpiry(t *testing.T) {
	cfg := fastConfig("east")
	cfg.SessionLimit = 20 * time.Minute
	s, url := startSim(t, cfg)
	c, created := dialReady(t, url, gaPath)
	exp := created["session"].(map[string]any)["expires_at"].(float64)
	require.InDelta(t, float64(time.Now().Add(20*time.Minute).Unix()), exp, 5)
	// ExpireAfter set at run time applies to the live session.
	s.SetFaults(Faults{ExpireAfter: 200 * time.Millisecond})
	e := c.expectError("session_expired")
	require.Equal(t, "invalid_request_error", e["type"])
	require.Equal(t, "Your session hit the maximum duration of 20 minutes.", e["message"])
	require.Nil(t, e["event_id"])
	_, err := c.read()
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, websocket.StatusGoingAway, ce.Code)
	require.Equal(t, "Your session hit the maximum duration of 20 minutes.", ce.Reason)
	require.Equal(t, 1001, sessionByID(t, s, sessID(created)).CloseCode)
}

func TestSessionLimit(t *testing.T) {
	cfg := fastConfig("east")
	cfg.SessionLimit = 300 * time.Millisecond
	_, url := startSim(t, cfg)
	c, _ := dialReady(t, url, gaPath)
	require.Equal(t, "Your session hit the maximum duration of 1 minutes.", c.expectError("session_expired")["message"])
	_, err := c.read()
	require.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err))
}

// TestCloseEndsSessions: Close sends 1001 to live sessions, waits for every
// goroutine (goleak in TestMain checks none is left), and is idempotent.
func TestCloseEndsSessions(t *testing.T) {
	s := New(fastConfig("east"))
	url, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	c, _ := readyNoVAD(t, url)
	c.send(map[string]any{"type": "response.create"})
	c.expect("response.created")
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	for {
		if _, err := c.read(); err != nil {
			require.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err))
			break
		}
	}
	require.NoError(t, <-done)
	require.NoError(t, s.Close())
	_, err = s.Listen("127.0.0.1:0")
	require.Error(t, err)
}

func TestFaultRateLimitedResponse(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{RateLimitResponses: 1, RetryAfter: 2500 * time.Millisecond}
	s, url := startSim(t, cfg)
	c, id := readyNoVAD(t, url)
	evs := c.respond()
	require.Equal(t, []string{"response.created", "rate_limits.updated", "response.done"}, types(evs))
	for _, rl := range evs[1]["rate_limits"].([]any) {
		m := rl.(map[string]any)
		require.Equal(t, 0.0, m["remaining"], m["name"])
		require.Equal(t, 3.0, m["reset_seconds"], "whole seconds, rounded up")
	}
	done := doneOf(evs)
	require.Equal(t, "failed", done["status"])
	require.Equal(t, []any{}, done["output"])
	e := done["status_details"].(map[string]any)["error"].(map[string]any)
	require.Equal(t, "invalid_request_error", e["type"])
	require.Equal(t, "inference_rate_limit_exceeded", e["code"])
	require.Contains(t, e["message"], "Please try again in 3s.")
	// Counted: the next response is served, with rate limits to spare.
	evs = c.respond()
	require.Equal(t, "completed", doneOf(evs)["status"])
	require.Greater(t, evs[1]["rate_limits"].([]any)[0].(map[string]any)["remaining"], 0.0)
	rec := sessionByID(t, s, id)
	require.Equal(t, "rate_limited", rec.Responses[0].Fault)
	require.Equal(t, "inference_rate_limit_exceeded", rec.Responses[0].Reason)
}

func TestFaultRefuse429CarriesRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		status int
		after  time.Duration
		want   string
	}{
		{429, 0, "1"},
		{429, 7 * time.Second, "7"},
		{503, 1500 * time.Millisecond, "2"},
	} {
		cfg := fastConfig("east")
		cfg.Faults = Faults{RefuseStatus: tc.status, RetryAfter: tc.after}
		_, url := startSim(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, resp, err := websocket.Dial(ctx, url+gaPath, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer sk-test-key-123456"}}})
		cancel()
		require.Error(t, err)
		require.Equal(t, tc.status, resp.StatusCode)
		require.Equal(t, tc.want, resp.Header.Get("Retry-After"))
		if tc.status == 429 {
			b, _ := io.ReadAll(resp.Body)
			require.Contains(t, string(b), `"code":"rate_limit_exceeded"`)
			require.Contains(t, string(b), "Please try again in "+tc.want+"s.")
		}
	}
}

func TestFaultRefuseCountLifts(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{RefuseStatus: 429, RefuseCount: 2, RetryAfter: 3 * time.Second}
	_, url := startSim(t, cfg)
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, resp, err := websocket.Dial(ctx, url+gaPath, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer sk-test-key-123456"}}})
		cancel()
		require.Error(t, err, "upgrade %d", i)
		require.Equal(t, 429, resp.StatusCode)
		require.Equal(t, "3", resp.Header.Get("Retry-After"))
	}
	c, _ := dialReady(t, url, gaPath)
	c.probe()
}

func TestFaultLatencySpikeIsRecorded(t *testing.T) {
	cfg := fastConfig("east")
	// Rate 1 with a tiny spike: every response is marked, and the test
	// never waits on the clock.
	cfg.Faults = Faults{LatencySpikeRate: 1, LatencySpike: time.Millisecond, Seed: 3}
	s, url := startSim(t, cfg)
	c, id := readyNoVAD(t, url)
	require.Equal(t, "completed", doneOf(c.respond())["status"])
	require.Equal(t, "latency_spike", sessionByID(t, s, id).Responses[0].Fault)
}

// TestFirstOutputDelayDistribution checks the drawn delays, not the clock:
// the spike share, the log-normal median and tail, and the cap.
func TestFirstOutputDelayDistribution(t *testing.T) {
	var fs faultState
	fs.set(Faults{LatencySpikeRate: 0.05, LatencySpike: 8 * time.Second, FirstAudioMedian: 400 * time.Millisecond,
		FirstAudioSigma: 0.8, FirstAudioMax: 6 * time.Second, Seed: 11})
	const n = 20000
	spikes := 0
	var base []time.Duration
	for range n {
		d, spiked := fs.firstOutputDelay(150 * time.Millisecond)
		if spiked {
			spikes++
			d -= 8 * time.Second
		}
		require.LessOrEqual(t, d, 6*time.Second, "capped")
		require.GreaterOrEqual(t, d, time.Duration(0))
		base = append(base, d)
	}
	require.InDelta(t, 0.05, float64(spikes)/n, 0.01)
	slices.Sort(base)
	median, p99 := base[n/2], base[n*99/100]
	t.Logf("first audio (median 400ms, sigma 0.8, cap 6s): p50 %v p90 %v p99 %v p99.9 %v max %v; spikes %.2f%%",
		median, base[n*9/10], p99, base[n*999/1000], base[n-1], 100*float64(spikes)/n)
	require.InDelta(t, 400, float64(median.Milliseconds()), 40, "median")
	require.Greater(t, p99, 4*median, "heavy tail: p99 %v, median %v", p99, median)

	// Unset: the configured ResponseDelay, untouched.
	fs.set(Faults{Seed: 1})
	d, spiked := fs.firstOutputDelay(150 * time.Millisecond)
	require.Equal(t, 150*time.Millisecond, d)
	require.False(t, spiked)
}

func TestFaultSeedZeroIsTimeSeeded(t *testing.T) {
	draw := func(seed int64) []float64 {
		var fs faultState
		fs.set(Faults{Seed: seed})
		out := make([]float64, 4)
		for i := range out {
			out[i] = fs.rng.Float64()
		}
		return out
	}
	require.Equal(t, draw(5), draw(5), "a seed reproduces")
	a := draw(0)
	time.Sleep(time.Microsecond) // a different time seed; no assertion on timing
	require.NotEqual(t, a, draw(0), "seed 0 differs run to run")
}

func TestFaultsValidate(t *testing.T) {
	tests := []struct {
		name string
		f    Faults
		key  string
	}{
		{"zero", Faults{}, ""},
		{"spike 5% at 8s", Faults{LatencySpikeRate: 0.05, LatencySpike: 8 * time.Second}, ""},
		{"heavy tail", Faults{FirstAudioMedian: time.Second, FirstAudioSigma: 1, FirstAudioMax: 10 * time.Second}, ""},
		{"negative count", Faults{FailBeforeAudio: -1}, "fail_before_audio"},
		{"rate above 1", Faults{FailureRate: 1.5}, "failure_rate"},
		{"text rate negative", Faults{TextAfterReplayRate: -0.1}, "text_after_replay_rate"},
		{"rate limit rate", Faults{RateLimitRate: 2}, "rate_limit_rate"},
		{"negative rate limit count", Faults{RateLimitResponses: -2}, "rate_limit_responses"},
		{"spike without delay", Faults{LatencySpikeRate: 0.1}, "latency_spike"},
		{"negative retry_after", Faults{RetryAfter: -time.Second}, "retry_after"},
		{"refuse 200", Faults{RefuseStatus: 200}, "refuse_status"},
		{"refuse count without status", Faults{RefuseCount: 1}, "refuse_status"},
		{"negative refuse count", Faults{RefuseStatus: 429, RefuseCount: -1}, "refuse_count"},
		{"sigma without median", Faults{FirstAudioSigma: 1}, "first_audio_median"},
		{"sigma too big", Faults{FirstAudioMedian: time.Second, FirstAudioSigma: 9}, "first_audio_sigma"},
		{"max below median", Faults{FirstAudioMedian: time.Second, FirstAudioMax: time.Millisecond}, "first_audio_max"},
		{"negative audio item refusals", Faults{RefuseAudioItems: -1}, "refuse_audio_items"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate()
			if tc.key == "" {
				require.NoError(t, err)
				return
			}
			var fe *FaultError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.key, fe.Key)
			require.Contains(t, err.Error(), "faults."+tc.key+": ")
		})
	}
}

// TestTextOnlyAfterReplayedHistory models the documented real behaviour
// (§9): a text history created with conversation.item.create makes the
// model answer in text even when audio is asked for explicitly; caller
// audio as the last user turn brings the voice back (livekit #2015).
func TestTextOnlyAfterReplayedHistory(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{TextAfterReplayRate: 1}
	s, url := startSim(t, cfg)
	c, id := readyNoVAD(t, url)

	// A live audio turn with no replayed history: audio.
	require.NotEmpty(t, audioOf(t, c.respond(), "response.output_audio.delta"))

	c.createItem(map[string]any{"type": "message", "role": "system", "content": []any{map[string]any{"type": "input_text", "text": "Caller is VIP"}}}, nil)
	c.createItem(map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "output_text", "text": "Hello!"}}}, nil)
	c.createItem(userText("I need help"), nil)
	c.send(map[string]any{"type": "response.create", "response": map[string]any{"output_modalities": []any{"audio"}}})
	evs := c.until("response.done")
	require.Empty(t, audioOf(t, evs, "response.output_audio.delta"), "explicit audio modality does not prevent it")
	require.Contains(t, types(evs), "response.output_text.delta")
	for _, ev := range evs {
		if ev["type"] == "response.content_part.added" {
			require.Equal(t, "text", ev["part"].(map[string]any)["type"])
		}
	}
	done := doneOf(evs)
	require.Equal(t, "completed", done["status"])
	require.Equal(t, []any{"audio"}, done["output_modalities"], "audio was asked for")

	// Recovery: caller audio as the last user turn.
	audio := base64.StdEncoding.EncodeToString(encodeTest("pcmu", tone(8000, 300, -20, 400)))
	c.createItem(map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_audio", "audio": audio}}}, nil)
	require.NotEmpty(t, audioOf(t, c.respond(), "response.output_audio.delta"))

	rec := sessionByID(t, s, id)
	require.Equal(t, "text_after_replay", rec.Responses[1].Fault)
	require.Empty(t, rec.Responses[2].Fault)
}

func TestTextOnlyAfterReplayOffByDefault(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	c, _ := readyNoVAD(t, url)
	c.createItem(map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "output_text", "text": "Hello!"}}}, nil)
	c.createItem(userText("I need help"), nil)
	require.NotEmpty(t, audioOf(t, c.respond(), "response.output_audio.delta"))
}

func TestTextReplayContext(t *testing.T) {
	text := func(role, typ string, origin string) *item {
		return &item{Type: "message", Role: role, Origin: origin, Content: []part{{Type: typ}}}
	}
	tests := []struct {
		name  string
		items []*item
		want  bool
	}{
		{"empty", nil, false},
		{"live audio only", []*item{text("user", "input_audio", OriginVAD), text("assistant", "output_audio", OriginResponse)}, false},
		{"replayed assistant text", []*item{text("assistant", "output_text", OriginClient)}, true},
		{"replayed system note", []*item{text("system", "input_text", OriginClient)}, true},
		{"replayed then user text", []*item{text("assistant", "output_text", OriginClient), text("user", "input_text", OriginClient)}, true},
		{"replayed then caller audio", []*item{text("assistant", "output_text", OriginClient), text("user", "input_audio", OriginCommit)}, false},
		{"replayed then user audio item", []*item{text("user", "input_text", OriginClient), text("user", "input_audio", OriginClient)}, false},
		{"audio then replayed text after", []*item{text("user", "input_audio", OriginVAD), text("system", "input_text", OriginClient)}, true},
		{"model text output is not replay", []*item{text("assistant", "output_text", OriginResponse)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, textReplayContext(tc.items))
		})
	}
}

// TestFaultRefuseAudioItems: the next N items carrying input_audio are
// refused with an error naming the part and echoing the create's event_id,
// and are not added; text items pass; after N, audio items pass again.
func TestFaultRefuseAudioItems(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Faults = Faults{RefuseAudioItems: 1}
	s, url := startSim(t, cfg)
	c, id := readyNoVAD(t, url)
	audio := base64.StdEncoding.EncodeToString(make([]byte, 800))
	audioItem := func(itemID string) map[string]any {
		return map[string]any{"id": itemID, "type": "message", "role": "user", "content": []any{
			map[string]any{"type": "input_text", "text": "and"},
			map[string]any{"type": "input_audio", "audio": audio, "transcript": "I need help"}}}
	}

	c.createItem(userText("hello"), nil) // text is not refused, nor counted
	c.send(map[string]any{"type": "conversation.item.create", "event_id": "evt_replay_2", "item": audioItem("item_a")})
	e := c.expectError("invalid_value")
	require.Equal(t, "invalid_request_error", e["type"])
	require.Equal(t, "item.content[1].type", e["param"])
	require.Equal(t, "evt_replay_2", e["event_id"], "the refusal carries the create's event_id")
	require.Equal(t, "Invalid value: 'input_audio'. Supported values are: 'input_text' and 'input_image'.", e["message"])
	c.probe()

	added := c.createItem(audioItem("item_b"), nil) // the fault is used up
	require.Equal(t, "item_b", added["item"].(map[string]any)["id"])

	rec := s.Sessions()[0]
	require.Equal(t, id, rec.ID)
	_, refused := rec.Item("item_a")
	require.False(t, refused, "a refused item is not in the conversation")
	_, ok := rec.Item("item_b")
	require.True(t, ok)
	var creates []ClientEventRecord
	for _, ev := range rec.Events {
		if ev.Type == "conversation.item.create" {
			creates = append(creates, ev)
		}
	}
	require.Len(t, creates, 3)
	require.Equal(t, []bool{false, true, false}, []bool{creates[0].Rejected, creates[1].Rejected, creates[2].Rejected})
	require.Equal(t, ErrorRecord{Type: "invalid_request_error", Code: "invalid_value", Param: "item.content[1].type",
		Message: e["message"].(string), EventID: "evt_replay_2"}, rec.Errors[len(rec.Errors)-1])
}
