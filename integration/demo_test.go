package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/sip/phone"
)

// TestEmbeddedDefaultAnswers runs the binary exactly as the README's first
// command does (no -config: SIP on 127.0.0.1:5060, two simulated regions on
// 9001/9002, admin on 9090) and calls sip:bot@127.0.0.1.
func TestEmbeddedDefaultAnswers(t *testing.T) {
	br := startBridgeFile(t, "", os.Environ(), "127.0.0.1:5060", "127.0.0.1:9090")
	ph := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call, err := ph.Call(ctx, phone.CallOptions{Target: "sip:bot@127.0.0.1"})
	require.NoError(t, err)
	// The default greets the caller first, in either region's voice.
	_, errE := call.WaitTone(ctx, eastHz, 0, 500*time.Millisecond, 10*time.Second)
	if errE != nil {
		_, err := call.WaitTone(ctx, westHz, 0, 500*time.Millisecond, 2*time.Second)
		require.NoError(t, err, "the greeting is heard")
	}
	from := call.HeardMs()
	call.Speak(callerHz, time.Second, -20)
	waitAnswer(t, call, from+900, 500, 20*time.Second, eastHz, westHz)
	require.NoError(t, call.Hangup(ctx))
	br.WaitLog(5*time.Second, "call ended", call.CallID())
}

// TestDemoNeverLosesATurn is the demo with failures turned up: both
// simulated regions fail a quarter of their responses at random. The caller
// speaks turn after turn; every turn is answered, and every swap is logged
// with its trigger, both regions' session ids and the pause the caller heard.
func TestDemoNeverLosesATurn(t *testing.T) {
	t.Parallel()
	sipPort, adminPort := freePort(t), freePort(t)
	simA, simB := freePort(t), freePort(t)
	lo, hi := rtpRange()
	cfg := fmt.Sprintf(`sip:
  listen: 127.0.0.1:%d
rtp:
  port_min: %d
  port_max: %d
admin:
  listen: 127.0.0.1:%d
regions:
  - name: sim-east
    url: ws://127.0.0.1:%d/openai/v1/realtime?model=gpt-realtime
    simulator:
      enabled: true
      voice_hz: 440
      faults: {failure_rate: 0.25, seed: 7}
  - name: sim-west
    url: ws://127.0.0.1:%d/openai/v1/realtime?model=gpt-realtime
    simulator:
      enabled: true
      voice_hz: 660
      faults: {failure_rate: 0.25, seed: 11}
`, sipPort, lo, hi, adminPort, simA, simB)
	path := t.TempDir() + "/demo.yaml"
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	br := startBridgeFile(t, path, os.Environ(), fmt.Sprintf("127.0.0.1:%d", sipPort), fmt.Sprintf("127.0.0.1:%d", adminPort))
	call, ctx := dial(t, br, 3*time.Minute, phone.CallOptions{})
	const turns = 10
	for i := 0; i < turns; i++ {
		from := call.HeardMs()
		call.Speak(callerHz, time.Second, -20)
		waitAnswer(t, call, from+900, 400, 30*time.Second, eastHz, westHz)
		// Listen a little, then talk again (barge-in is part of a real call).
		time.Sleep(700 * time.Millisecond)
	}
	require.NoError(t, call.Hangup(ctx))
	swaps := br.LogLines("session swapped", call.CallID())
	t.Logf("%d swaps in %d turns", len(swaps), turns)
	require.NotEmpty(t, swaps, "a 25%% failure rate over %d turns produced no swap", turns)
	for _, l := range swaps {
		a := logAttrs(l)
		require.True(t, strings.HasPrefix(a["session_id"], "sess_"), l)
		require.True(t, strings.HasPrefix(a["new_session_id"], "sess_"), l)
		require.NotEmpty(t, a["trigger"], l)
		require.Contains(t, []string{"sim-east", "sim-west"}, a["new_region"], l)
		if a["outcome"] == "answered" {
			require.NotEmpty(t, a["pause_ms"], l)
		}
	}
}
