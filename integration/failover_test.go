package integration

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

const northHz = 880.0

// turn has the caller speak once and waits until the answer in voiceHz is
// heard; it returns where (ms into the call's received audio) the answer began.
func turn(t *testing.T, ctx context.Context, call *phone.Call, voiceHz float64, timeout time.Duration) int {
	t.Helper()
	from := call.HeardMs()
	call.Speak(callerHz, time.Second, -20)
	at, err := call.WaitTone(ctx, voiceHz, from+900, 500*time.Millisecond, timeout)
	require.NoError(t, err, "the caller must hear the answer at %.0f Hz", voiceHz)
	return at
}

var swapAttr = regexp.MustCompile(`(\w+)=("[^"]*"|\S+)`)

// logAttrs parses key=value pairs of a text log line.
func logAttrs(line string) map[string]string {
	out := map[string]string{}
	for _, m := range swapAttr.FindAllStringSubmatch(line, -1) {
		out[m[1]] = strings.Trim(m[2], `"`)
	}
	return out
}

// TestFailoverTriggers covers every way a session fails a caller, each
// through a real SIP call: the first turn is answered in region east; then
// east is broken; the caller's second turn is answered by region west, which
// received the replayed conversation (with the roles and texts in order, the
// assistant text cut to what was heard, and the failed turn's audio), and the
// bridge logged one swap line with both regions' ids and the pause.
func TestFailoverTriggers(t *testing.T) {
	cases := []struct {
		name    string
		faults  sim.Faults
		extra   string // bridge YAML
		trigger string
		// midAnswer: part of the failed answer was already playing.
		midAnswer bool
		// codecs the caller offers (default PCMU, PCMA).
		codecs []string
	}{
		{name: "failed response before audio", faults: sim.Faults{FailBeforeAudio: 1}, trigger: "response_failed"},
		{name: "failed response mid answer", faults: sim.Faults{FailAfterAudioMs: 1200, FailAfterAudioCount: 1}, trigger: "response_failed", midAnswer: true},
		{name: "sticky failing session", faults: sim.Faults{FailBeforeAudio: 1, Sticky: true}, trigger: "response_failed"},
		{name: "error event server_error", faults: sim.Faults{ErrorEventServerError: 1}, trigger: "server_error_event"},
		{name: "socket closed 1011", faults: sim.Faults{CloseAfterAudioMs: 1200}, trigger: "closed", midAnswer: true},
		{name: "socket dropped without close frame", faults: sim.Faults{DropAfterAudioMs: 1200}, trigger: "dropped", midAnswer: true},
		// The stall watchdogs are the last resort behind hedging, which
		// would answer these turns first (TestHedgeSlowAnswer): here they
		// are tested alone.
		{name: "stall: no response.created", faults: sim.Faults{StallNoResponse: 1}, extra: "failover:\n  stall_no_response: 1500ms\n  hedge:\n    enabled: false\n", trigger: "stall_no_response"},
		{name: "stall: no first audio", faults: sim.Faults{StallFirstAudio: 1}, extra: "failover:\n  stall_first_audio: 1500ms\n  hedge:\n    enabled: false\n", trigger: "stall_first_audio"},
		{name: "stall: audio stops mid answer", faults: sim.Faults{StallMidAudioMs: 1200}, extra: "failover:\n  stall_mid_audio: 1500ms\n", trigger: "stall_mid_audio", midAnswer: true},
		// The same swap on a wideband call: G.722 to the caller, 24 kHz PCM
		// to both regions.
		{name: "failed response mid answer over G.722", faults: sim.Faults{FailAfterAudioMs: 1200, FailAfterAudioCount: 1}, trigger: "response_failed", midAnswer: true,
			codecs: []string{"G722", "PCMU"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Long answers so "mid answer" faults hit while the caller listens.
			long := func(tcx sim.TurnContext) sim.Reply {
				r := sim.DefaultResponder(tcx)
				r.Text += " Let me explain that in a little more detail for you."
				return r
			}
			east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, Responder: long})
			west := startRegion(t, "west", sim.Config{VoiceHz: westHz, Responder: long})
			br := startBridge(t, tc.extra, east, west)
			ph := newPhone(t, "udp")
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()

			call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target(), Codecs: tc.codecs})
			require.NoError(t, err)
			if len(tc.codecs) > 0 && tc.codecs[0] == "G722" {
				require.Equal(t, uint8(9), call.PayloadType(), "the call runs G.722")
			}
			turn(t, ctx, call, eastHz, 20*time.Second)
			waitFor(t, 10*time.Second, "turn 1 to complete", func() bool {
				rec, _ := lastSession(east)
				return completedResponses(rec) >= 1 && call.SpeakingDone()
			})
			// Let the first answer play out.
			time.Sleep(2 * time.Second)

			east.Sim.SetFaults(tc.faults)
			heardBefore := call.HeardMs()
			from := heardBefore
			call.Speak(callerHz, time.Second, -20)
			if tc.midAnswer {
				_, err := call.WaitTone(ctx, eastHz, from+900, 160*time.Millisecond, 20*time.Second)
				require.NoError(t, err, "part of east's answer plays before the fault")
			}
			_, err = call.WaitTone(ctx, westHz, from+900, 500*time.Millisecond, 30*time.Second)
			require.NoError(t, err, "west answers the failed turn")

			line := br.WaitLog(10*time.Second, "session swapped", "trigger="+tc.trigger)
			a := logAttrs(line)
			require.Equal(t, call.CallID(), a["call_id"])
			require.Equal(t, "east", a["region"])
			require.Equal(t, "west", a["new_region"])
			require.True(t, strings.HasPrefix(a["session_id"], "sess_"), line)
			require.True(t, strings.HasPrefix(a["new_session_id"], "sess_"), line)
			require.NotEqual(t, a["session_id"], a["new_session_id"])
			require.Equal(t, "answered", a["outcome"], line)
			pause, err := strconv.Atoi(a["pause_ms"])
			require.NoError(t, err, line)
			if tc.midAnswer {
				// The audio east streamed keeps playing across the swap; the
				// continuation may arrive before it ends (no silence at all).
				require.GreaterOrEqual(t, pause, 0)
			} else {
				require.Greater(t, pause, 0)
			}
			if strings.HasPrefix(tc.trigger, "response_failed") {
				require.True(t, strings.HasPrefix(a["response_id"], "resp_"), line)
				require.Contains(t, line, "The server had an error", "the provider's error message is in the swap line")
			}

			// West's record: the replayed conversation then the answer.
			waitFor(t, 20*time.Second, "west's answer to complete", func() bool {
				rec, _ := lastSession(west)
				return completedResponses(rec) >= 1
			})
			rec, ok := lastSession(west)
			require.True(t, ok)
			tr := rec.Transcript()
			t.Logf("west transcript: %q", tr)
			require.GreaterOrEqual(t, len(tr), 4)
			require.True(t, strings.HasPrefix(tr[0], "user: "), "turn 1 replayed as a user item: %q", tr)
			require.True(t, strings.HasPrefix(tr[1], "assistant: This is east."), "east's answer replayed as assistant text: %q", tr)
			require.True(t, strings.HasPrefix(tr[2], "user"), "the failed turn's caller input is replayed: %q", tr)
			require.Contains(t, tr[len(tr)-1], "assistant: This is west.", "west answered last: %q", tr)
			require.Equal(t, 1, completedResponsesByTrigger(rec), "exactly one answer for the failed turn")
			// The replayed items came from the client, in order, before the answer.
			types := rec.EventTypes()
			require.Equal(t, "session.update", types[0])
			firstCreate := indexOf(types, "response.create")
			require.Greater(t, firstCreate, 2)
			for _, ty := range types[1:firstCreate] {
				require.Contains(t, []string{"conversation.item.create", "input_audio_buffer.append"}, ty)
			}
			// Identical session config in both regions.
			eastRec := east.Sim.Sessions()[0]
			require.JSONEq(t, string(eastRec.SessionUpdates[0]), string(rec.SessionUpdates[0]))

			if tc.midAnswer {
				// Only what the caller heard of east's second answer is replayed,
				// and west is told not to repeat it.
				require.GreaterOrEqual(t, len(tr), 5, "%q", tr)
				partial := strings.TrimPrefix(tr[3], "assistant: ")
				require.True(t, strings.HasPrefix(tr[3], "assistant: "), "the heard part of the failed answer is replayed: %q", tr)
				full := eastTurnAnswer(eastRec)
				require.True(t, strings.HasPrefix(full, partial), "replayed %q is a prefix of east's answer %q", partial, full)
				require.Less(t, len(partial), len(full), "cut to what was heard")
				require.Contains(t, lastCreateRaw(rec), "do not repeat")
			}
			require.NoError(t, call.Hangup(ctx))
		})
	}
}

func completedResponsesByTrigger(rec sim.SessionRecord) int {
	n := 0
	for _, r := range rec.Responses {
		if r.Status == "completed" {
			n++
		}
	}
	return n
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// eastTurnAnswer is the full text east chose for turn 2 (the failed answer).
func eastTurnAnswer(rec sim.SessionRecord) string {
	for _, r := range rec.Responses {
		if strings.Contains(r.Text, "You are turn 2") {
			return r.Text
		}
	}
	return ""
}

func lastCreateRaw(rec sim.SessionRecord) string {
	for i := len(rec.Events) - 1; i >= 0; i-- {
		if rec.Events[i].Type == "response.create" {
			return string(rec.Events[i].Raw)
		}
	}
	return ""
}

// TestFailoverConnectRefusedTriesTheNextRegion: east fails a response, west
// refuses the WebSocket upgrade (429), north takes the call.
func TestFailoverConnectRefusedTriesTheNextRegion(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	north := startRegion(t, "north", sim.Config{VoiceHz: northHz})
	br := startBridge(t, "", east, west, north)
	ph := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target()})
	require.NoError(t, err)
	turn(t, ctx, call, eastHz, 20*time.Second)
	time.Sleep(2 * time.Second)
	west.Sim.SetFaults(sim.Faults{RefuseStatus: 429})
	east.Sim.SetFaults(sim.Faults{FailBeforeAudio: 1})
	turn(t, ctx, call, northHz, 30*time.Second)
	open := br.WaitLog(10*time.Second, "session open failed", "region=west")
	require.Contains(t, open, "kind=rate_limited")
	line := br.WaitLog(10*time.Second, "session swapped", "new_region=north")
	require.Contains(t, line, "region=east")
	require.Empty(t, west.Sim.Sessions(), "west refused every upgrade")
	require.NoError(t, call.Hangup(ctx))
}

// TestCallStartsInAHealthyRegionWhenTheFirstRefuses: a region refusing TCP
// connections at call start costs the caller nothing.
func TestCallStartsInAHealthyRegionWhenTheFirstRefuses(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, Faults: sim.Faults{RefuseConnect: true}})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	br := startBridge(t, "", east, west)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	turn(t, ctx, call, westHz, 20*time.Second)
	br.WaitLog(5*time.Second, "session open failed", "region=east")
	require.NoError(t, call.Hangup(ctx))
}

// TestSessionExpiryMidCall: the provider ends the session (session_expired,
// close 1001); the call moves on and the next turn is answered with context.
func TestSessionExpiryMidCall(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	br := startBridge(t, "", east, west)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	turn(t, ctx, call, eastHz, 20*time.Second)
	time.Sleep(2 * time.Second)
	east.Sim.SetFaults(sim.Faults{ExpireAfter: 10 * time.Millisecond})
	line := br.WaitLog(10*time.Second, "session swapped", "trigger=expiry")
	require.Contains(t, line, "level=INFO", "expiry is routine, not a failure")
	rec0 := east.Sim.Sessions()[0]
	require.Equal(t, 1001, rec0.CloseCode)
	east.Sim.SetFaults(sim.Faults{})
	// Expiry does not count against east: the next session may be in either region.
	from := call.HeardMs()
	call.Speak(callerHz, time.Second, -20)
	_, errE := call.WaitTone(ctx, eastHz, from+900, 500*time.Millisecond, 20*time.Second)
	if errE != nil {
		_, err := call.WaitTone(ctx, westHz, from+900, 500*time.Millisecond, 5*time.Second)
		require.NoError(t, err, "the turn after the expiry is answered")
	}
	// The new session carries the first turn.
	var newest sim.SessionRecord
	for _, r := range append(east.Sim.Sessions(), west.Sim.Sessions()...) {
		if r.Started.After(newest.Started) {
			newest = r
		}
	}
	require.True(t, strings.HasPrefix(newest.Transcript()[0], "user: "))
	require.True(t, strings.HasPrefix(newest.Transcript()[1], "assistant: This is east."))
	require.NoError(t, call.Hangup(ctx))
}

// TestRotationBeforeTheSessionLimit: a region whose sessions end hard after a
// few seconds gets a fresh session at a turn boundary before the limit, with
// the conversation replayed; the caller is never cut off.
func TestRotationBeforeTheSessionLimit(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, SessionLimit: 12 * time.Second})
	east.Extra = []string{"session_limit: 12s"}
	br := startBridge(t, "failover:\n  rotate_margin: 9s\n", east)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	turn(t, ctx, call, eastHz, 20*time.Second)
	line := br.WaitLog(15*time.Second, "session swapped", "trigger=rotation")
	require.Contains(t, line, "level=INFO")
	sessions := east.Sim.Sessions()
	require.GreaterOrEqual(t, len(sessions), 2)
	require.NotEqual(t, 1001, sessions[0].CloseCode, "rotated before the provider ended it")
	turn(t, ctx, call, eastHz, 20*time.Second)
	// The session that answered turn 2 was rotated in: it holds turn 1 replayed.
	var tr []string
	waitFor(t, 10*time.Second, "the session that answered turn 2", func() bool {
		for _, rec := range east.Sim.Sessions() {
			for _, r := range rec.Responses {
				if r.Status == "completed" && strings.Contains(r.Text, "You are turn 2") {
					tr = rec.Transcript()
					return true
				}
			}
		}
		return false
	})
	require.GreaterOrEqual(t, len(tr), 3, "%q", tr)
	require.True(t, strings.HasPrefix(tr[0], "user: "), "%q", tr)
	require.True(t, strings.HasPrefix(tr[1], "assistant: This is east. You are turn 1"), "%q", tr)
	require.NoError(t, call.Hangup(ctx))
}

// TestWarmStandbySwap: with a warm standby in west, a swap does not dial.
func TestWarmStandbySwap(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	west.Extra = []string{"warm_standby: true"}
	br := startBridge(t, "", east, west)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	turn(t, ctx, call, eastHz, 20*time.Second)
	waitFor(t, 10*time.Second, "a warm standby in west", func() bool { return len(west.Sim.Sessions()) == 1 })
	br.WaitLog(10*time.Second, "warm standby ready", "region=west")
	time.Sleep(time.Second)
	east.Sim.SetFaults(sim.Faults{FailBeforeAudio: 1})
	turn(t, ctx, call, westHz, 20*time.Second)
	line := br.WaitLog(10*time.Second, "session swapped", "new_region=west")
	require.Contains(t, line, "warm_standby=true")
	require.NoError(t, call.Hangup(ctx))
}

// requireCallKept: the bridge did not give up and the call is still up;
// the caller hangs up.
func requireCallKept(t *testing.T, ctx context.Context, br *bridge, call *phone.Call) {
	t.Helper()
	require.Empty(t, br.LogLines("giving up"))
	select {
	case <-call.Ended():
		t.Fatal("the bridge ended the call")
	default:
	}
	require.NoError(t, call.Hangup(ctx))
}

// TestOneFailureInEachRegionKeepsTheCall: a failing region never drops the
// call while another can take it. East fails the caller's turn and the next
// attempt there, west refuses one upgrade in between: with
// max_swaps_in_row 2 that was two failed attempts in a row and the call was
// dropped, though west answers on the next try. A region is ruled out of
// an outage only after two failed attempts there, so west answers.
func TestOneFailureInEachRegionKeepsTheCall(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	br := startBridge(t, "failover:\n  max_swaps_in_row: 2\n", east, west)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	turn(t, ctx, call, eastHz, 20*time.Second)
	time.Sleep(time.Second)
	east.Sim.SetFaults(sim.Faults{FailBeforeAudio: 3})
	west.Sim.SetFaults(sim.Faults{RefuseStatus: 503, RefuseCount: 1})
	turn(t, ctx, call, westHz, 30*time.Second)
	br.WaitLog(10*time.Second, "session open failed", "region=west")
	requireCallKept(t, ctx, br, call)
}

// TestBothRegionsFailingTwiceInASecondKeepTheCall: east fails the caller's
// turn and two more attempts there while west refuses two upgrades, so
// every region has failed twice within a second. That is bad luck, not an
// outage of both (the soak dropped a call this way): the bridge pauses,
// tries again and the caller hears the answer.
func TestBothRegionsFailingTwiceInASecondKeepTheCall(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	br := startBridge(t, "failover:\n  max_swaps_in_row: 2\n", east, west)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	turn(t, ctx, call, eastHz, 20*time.Second)
	time.Sleep(time.Second)
	east.Sim.SetFaults(sim.Faults{FailBeforeAudio: 3})
	west.Sim.SetFaults(sim.Faults{RefuseStatus: 503, RefuseCount: 2})
	from := call.HeardMs()
	call.Speak(callerHz, time.Second, -20)
	br.WaitLog(20*time.Second, "every region failed twice, pausing before the next attempt")
	// Either region may take the call after the pause: the answer is
	// in its voice.
	heard := false
	for deadline := time.Now().Add(20 * time.Second); !heard && time.Now().Before(deadline); {
		for _, hz := range []float64{eastHz, westHz} {
			if _, err := call.WaitTone(ctx, hz, from+900, 500*time.Millisecond, 250*time.Millisecond); err == nil {
				heard = true
			}
		}
	}
	require.True(t, heard, "the caller must hear the answer after the pause")
	requireCallKept(t, ctx, br, call)
}

// TestAllRegionsDownTransfersTheCaller: every region fails; the bridge plays
// the apology and transfers the caller (REFER) to the configured queue.
func TestAllRegionsDownTransfersTheCaller(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	br := startBridge(t, "failover:\n  max_swaps_in_row: 2\n  give_up_transfer: sip:agents@127.0.0.1\n", east, west)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	turn(t, ctx, call, eastHz, 20*time.Second)
	time.Sleep(time.Second)
	east.Sim.SetFaults(sim.Faults{FailureRate: 1})
	west.Sim.SetFaults(sim.Faults{RefuseStatus: 503})
	call.Speak(callerHz, time.Second, -20)
	ph := call.Phone()
	waitFor(t, 30*time.Second, "a REFER to the agents' queue", func() bool { return len(ph.Requests("REFER")) > 0 })
	refer := ph.Requests("REFER")[0]
	require.Contains(t, refer.GetHeader("Refer-To").Value(), "sip:agents@127.0.0.1")
	br.WaitLog(10*time.Second, "giving up")
	select {
	case <-call.Ended():
	case <-time.After(15 * time.Second):
		t.Fatal("the bridge did not hang up after the transfer succeeded")
	}
}
