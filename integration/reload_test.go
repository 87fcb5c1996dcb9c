package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// Routing, caller context and SIGHUP reload through the binary; what the
// realtime side received is read from the simulator's session records.

// sessionInstructions is the instructions of the first session.update a
// simulator session received ("" when none yet).
func sessionInstructions(rec sim.SessionRecord) string {
	if len(rec.SessionUpdates) == 0 {
		return ""
	}
	var s struct {
		Instructions string `json:"instructions"`
	}
	_ = json.Unmarshal(rec.SessionUpdates[0], &s)
	return s.Instructions
}

// waitSessions waits until the region has n sessions that were configured.
func waitSessions(t *testing.T, r *region, n int) []sim.SessionRecord {
	t.Helper()
	var recs []sim.SessionRecord
	waitFor(t, 20*time.Second, "a configured realtime session", func() bool {
		recs = r.Sim.Sessions()
		configured := 0
		for _, rec := range recs {
			if len(rec.SessionUpdates) > 0 {
				configured++
			}
		}
		return configured >= n
	})
	return recs
}

func fromHeader(user, name string) *sip.FromHeader {
	params := sip.NewParams()
	params.Add("tag", sip.GenerateTagN(16))
	return &sip.FromHeader{DisplayName: name, Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1"}, Params: params}
}

// TestRoutesAndCallerContextThroughTheBinary: the dialled number and a
// header pick two assistants, whose instructions reach the realtime side
// with the caller's number, name and a listed header filled in; a call no
// route matches gets the assistant section; a profile's regions subset
// sends its calls to west although east comes first; the caller's number,
// private by the config, is not in the log.
func TestRoutesAndCallerContextThroughTheBinary(t *testing.T) {
	t.Parallel()
	const number = "+15550001234"
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	br := startBridge(t, `caller_headers: [X-Account]
privacy: [from]
assistant:
  instructions: "You are the main line."
assistants:
  sales:
    instructions: "You are the sales line. Caller {{caller.from_user}} ({{caller.from_name}}) dialled {{caller.to_user}}."
  support:
    instructions: "You are the support line for account {{ caller.header.X-Account }}."
    voice: sage
    regions: [west]
routes:
  - match: {to_user: sales}
    assistant: sales
  - match: {header: {X-Queue: support}}
    assistant: support
`, east, west)
	host := strings.TrimPrefix(br.Target(), "sip:bot@")

	cases := []struct {
		name, target string
		headers      []sip.Header
		want, voice  string
		region       *region
		sessions     int // the region's configured sessions after this call
		hz           float64
	}{
		{"by number", "sip:sales@" + host, nil, "You are the sales line. Caller " + number + " (Ada Lovelace) dialled sales.", "marin", east, 1, eastHz},
		{"by header", br.Target(), []sip.Header{sip.NewHeader("X-Queue", "support"), sip.NewHeader("X-Account", "A-17")},
			"You are the support line for account A-17.", "sage", west, 1, westHz},
		{"no route", br.Target(), []sip.Header{sip.NewHeader("X-Queue", "billing")}, "You are the main line.", "marin", east, 2, eastHz},
	}
	for _, tc := range cases {
		hdrs := append([]sip.Header{fromHeader(number, "Ada Lovelace")}, tc.headers...)
		call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{Target: tc.target, Headers: hdrs})
		recs := waitSessions(t, tc.region, tc.sessions)
		rec := recs[len(recs)-1]
		require.Equal(t, tc.want, sessionInstructions(rec), tc.name)
		require.Contains(t, string(rec.SessionUpdates[0]), `"voice":"`+tc.voice+`"`, tc.name)
		call.Speak(callerHz, 1200*time.Millisecond, -20)
		_, err := call.WaitTone(ctx, tc.hz, 0, 600*time.Millisecond, 20*time.Second)
		require.NoError(t, err, "%s: the caller hears the assistant", tc.name)
		require.NoError(t, call.Hangup(ctx))
	}
	routed := br.LogLines("call routed")
	require.Len(t, routed, 3)
	require.Contains(t, routed[0], "assistant=sales")
	require.Contains(t, routed[1], "assistant=support")
	require.Contains(t, routed[2], "assistant=assistant")
	require.Contains(t, routed[0], "from_user:[private]")
	require.NotContains(t, br.Logs(), number, "privacy: [from] keeps the caller's number out of the log, at debug level too")
	require.Len(t, west.Sim.Sessions(), 1, "only the support profile's call used west")
}

// TestSIGHUPReloadDuringALiveCall: a call up across a reload goes on and
// is still answered with what it started with (instructions and region);
// the next call gets the new instructions and the new region list; a
// broken file changes nothing and is logged by key; the metrics count
// both.
func TestSIGHUPReloadDuringALiveCall(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	br := startBridge(t, "assistant:\n  instructions: \"Generation one.\"\n", east, west)
	path := br.cmd.Args[len(br.cmd.Args)-1]
	original, err := os.ReadFile(path)
	require.NoError(t, err)

	// A call is up and has been answered once.
	live, liveCtx := dial(t, br, 90*time.Second, phone.CallOptions{})
	live.Speak(callerHz, 1200*time.Millisecond, -20)
	first, err := live.WaitTone(liveCtx, eastHz, 0, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err)

	// Reload with new instructions, east removed from the regions, and a
	// key that needs a restart.
	updated := strings.Replace(string(original), "Generation one.", "Generation two.", 1)
	updated = strings.Replace(updated, "level: debug", "level: info", 1)
	eastAt := strings.Index(updated, "  - name: east\n")
	westAt := strings.Index(updated, "  - name: west\n")
	require.True(t, eastAt > 0 && westAt > eastAt, updated)
	updated = updated[:eastAt] + updated[westAt:]
	require.NoError(t, os.WriteFile(path, []byte(updated), 0o600))
	require.NoError(t, br.cmd.Process.Signal(syscall.SIGHUP))
	line := br.WaitLog(10*time.Second, "config reloaded")
	require.Contains(t, line, "config_generation=2")
	require.Contains(t, line, `changed="[assistant regions]"`)
	require.Contains(t, line, "regions_removed=[east]")
	require.Contains(t, br.WaitLog(5*time.Second, "needs_restart"), "log.level")

	// The live call goes on and is answered again, by its own session in
	// east: the answer to a turn spoken after the reload.
	heard := live.HeardMs()
	require.Greater(t, heard, first)
	live.Speak(callerHz, 1200*time.Millisecond, -20)
	_, err = live.WaitTone(liveCtx, eastHz, heard+1200, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err, "the call up during the reload is still answered")
	waitFor(t, 10*time.Second, "the live session's answer to the second turn", func() bool {
		rec, _ := lastSession(east)
		n := len(rec.Responses)
		return n >= 2 && rec.Responses[n-1].Status == "completed" // the first may have been cut by barge-in
	})
	select {
	case <-live.Ended():
		t.Fatalf("the live call ended: %s", live.EndReason())
	default:
	}
	recs := east.Sim.Sessions()
	require.Len(t, recs, 1, "the live call kept its session")
	require.Equal(t, "Generation one.", sessionInstructions(recs[0]))

	// The next call gets the new instructions, in west.
	next, nextCtx := dial(t, br, 60*time.Second, phone.CallOptions{})
	recs = waitSessions(t, west, 1)
	require.Equal(t, "Generation two.", sessionInstructions(recs[0]))
	next.Speak(callerHz, 1200*time.Millisecond, -20)
	_, err = next.WaitTone(nextCtx, westHz, 0, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err)
	require.NoError(t, next.Hangup(nextCtx))

	// A broken file is refused, named by key, and changes nothing.
	broken := strings.Replace(updated, "Generation two.", "Generation three.\"\n  voice: \"robot", 1)
	require.NoError(t, os.WriteFile(path, []byte(broken), 0o600))
	require.NoError(t, br.cmd.Process.Signal(syscall.SIGHUP))
	refused := br.WaitLog(10*time.Second, "config reload refused")
	require.Contains(t, refused, "assistant.voice")
	require.Contains(t, refused, "config_generation=2")
	third, thirdCtx := dial(t, br, 60*time.Second, phone.CallOptions{})
	recs = waitSessions(t, west, 2)
	require.Equal(t, "Generation two.", sessionInstructions(recs[1]))
	require.Len(t, east.Sim.Sessions(), 1, "east took no new call after it was removed")
	require.NoError(t, third.Hangup(thirdCtx))

	require.Equal(t, 1.0, adminMetric(t, br, `sipbridge_config_reloads_total{result="ok"}`))
	require.Equal(t, 1.0, adminMetric(t, br, `sipbridge_config_reloads_total{result="failed"}`))
	require.Equal(t, 2.0, adminMetric(t, br, "sipbridge_config_generation"))

	// The live call is still up and ends normally.
	require.NoError(t, live.Hangup(liveCtx))
	require.NoError(t, br.stop(syscall.SIGTERM, 20*time.Second))
}

// TestCheckDial: check -dial completes the handshake in a good region and
// names each failing region with the provider's error: a wrong key (the
// region's 401) and a region nobody listens on.
func TestCheckDial(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{})
	west := startRegion(t, "west", sim.Config{})
	deadPort := freePort(t)
	cfg := fmt.Sprintf(`sip:
  listen: 127.0.0.1:5060
regions:
  - name: east
    url: %s
    api_key_env: %s
  - name: west
    url: %s
    api_key_env: %s
  - name: gone
    url: ws://127.0.0.1:%d/openai/v1/realtime?model=gpt-realtime
    dial_timeout: 2s
assistants:
  support:
    voice: sage
`, east.URL, east.KeyEnv, west.URL, west.KeyEnv, deadPort)
	path := filepath.Join(t.TempDir(), "dial.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))

	run := func(env ...string) (string, int) {
		cmd := exec.Command(binPath, "check", "-config", path, "-dial")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return string(out), code
	}

	out, code := run(east.KeyEnv+"="+east.Key, west.KeyEnv+"=not-the-key")
	require.Equal(t, 1, code, out)
	require.Regexp(t, `regions "east" \(assistant\): OK: session \S+ configured`, out)
	require.Regexp(t, `regions "east" \(assistants.support\): OK`, out, "a profile with its own voice is tried too")
	require.Regexp(t, `regions "west" \(assistant\): FAILED: realtime: dial west: HTTP 401`, out)
	require.Regexp(t, `regions "gone" \(assistant\): FAILED: realtime: dial gone: `, out)
	require.NotContains(t, out, "not-the-key", "keys never reach the output")
	require.Len(t, east.Sim.Sessions(), 2, "one handshake per assistant with its own voice")
	rec := east.Sim.Sessions()[0]
	require.NotEmpty(t, rec.SessionUpdates, "the session.update was sent and accepted")
	require.Zero(t, rec.AppendedAudioMs, "no audio")
}
