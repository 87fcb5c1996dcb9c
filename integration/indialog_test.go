package integration

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// longAnswer makes every answer the simulator's longest (4 s of voice).
func longAnswer(sim.TurnContext) sim.Reply {
	return sim.Reply{Text: strings.Repeat("This answer goes on for quite a while. ", 4)}
}

// transcriptHas reports whether the region's newest session holds line.
func transcriptHas(r *region, line string) bool {
	rec, ok := lastSession(r)
	return ok && slices.Contains(rec.Transcript(), line)
}

func clientResponses(r *region) int {
	rec, _ := lastSession(r)
	n := 0
	for _, resp := range rec.Responses {
		if resp.Trigger == sim.TriggerClient {
			n++
		}
	}
	return n
}

func sdpHas(body []byte, line string) bool {
	return slices.Contains(strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n"), line)
}

// TestDTMFReachesTheModel: digits sent as RFC 4733 events and as SIP INFO
// (application/dtmf-relay, application/dtmf) reach the model as system notes
// through the binary, and assistant.dtmf decides whether it answers them.
func TestDTMFReachesTheModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		extra    string
		notes    bool
		responds bool
	}{
		{name: "default: note and answer", notes: true, responds: true},
		{name: "respond false: note only", extra: "assistant:\n  dtmf:\n    respond: false\n", notes: true},
		{name: "disabled", extra: "assistant:\n  dtmf:\n    enabled: false\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
			br := startBridge(t, tc.extra, east)
			ph := newPhone(t, "udp")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target()})
			require.NoError(t, err)
			waitFor(t, 10*time.Second, "the realtime session", func() bool { _, ok := lastSession(east); return ok })

			// RFC 4733 from the phone's RTP.
			require.NoError(t, call.SendDTMF("4"))
			br.WaitLog(10*time.Second, "dtmf", "digit=4", call.CallID())
			// SIP INFO, both body types, and one we do not take.
			info := func(ct, body string) *sip.Response {
				res, err := call.SendRequest(ctx, sip.INFO, []byte(body), sip.NewHeader("Content-Type", ct))
				require.NoError(t, err)
				return res
			}
			require.Equal(t, 200, info("application/dtmf-relay", "Signal=7\r\nDuration=160\r\n").StatusCode)
			require.Equal(t, 200, info("application/dtmf", "#").StatusCode)
			res := info("text/plain", "9")
			require.Equal(t, 415, res.StatusCode)
			require.Contains(t, res.GetHeader("Accept").Value(), "application/dtmf-relay")
			br.WaitLog(10*time.Second, "dtmf", "digit=#", "source=info", call.CallID())

			want := []string{"system: The caller pressed 4.", "system: The caller pressed 7.", "system: The caller pressed #."}
			if tc.notes {
				waitFor(t, 10*time.Second, "the three notes in the model's conversation", func() bool {
					for _, w := range want {
						if !transcriptHas(east, w) {
							return false
						}
					}
					return true
				})
				require.False(t, transcriptHas(east, "system: The caller pressed 9."), "the 415 body delivers nothing")
			}
			if tc.responds {
				waitFor(t, 10*time.Second, "the model asked to answer the keys", func() bool { return clientResponses(east) >= 1 })
			}
			// What must not happen has had the time the positive cases took.
			time.Sleep(time.Second)
			rec, _ := lastSession(east)
			if !tc.notes {
				for _, line := range rec.Transcript() {
					require.NotContains(t, line, "pressed", "dtmf disabled: the model hears of no key")
				}
			}
			if !tc.responds {
				require.Zero(t, clientResponses(east), "no response.create for the keys")
			}
			require.NoError(t, call.Hangup(ctx))
		})
	}
}

// TestHoldAndResumeThroughTheBinary: during a long answer the caller holds
// (sendonly, then inactive): the 200 mirrors it (recvonly / inactive), the
// bridge stops sending RTP and the answer is cut; after resume (sendrecv) the
// old answer does not come back and the next turn is answered.
func TestHoldAndResumeThroughTheBinary(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, Responder: longAnswer})
	br := startBridge(t, "", east)
	call, ctx := dial(t, br, 120*time.Second, phone.CallOptions{})

	for i, hold := range []struct{ offer, answer string }{{"sendonly", "recvonly"}, {"inactive", "inactive"}} {
		from := call.HeardMs()
		call.Speak(callerHz, 1200*time.Millisecond, -20)
		_, err := call.WaitTone(ctx, eastHz, from, 400*time.Millisecond, 20*time.Second)
		require.NoError(t, err, "%s: the answer before the hold", hold.offer)

		// Mid-answer (4 s of voice): hold.
		res, err := call.ReInvite(ctx, phone.ReInviteOptions{Direction: hold.offer})
		require.NoError(t, err)
		require.Equal(t, 200, res.StatusCode)
		require.True(t, sdpHas(res.Body(), "a="+hold.answer), "%s answered %s:\n%s", hold.offer, hold.answer, res.Body())
		heldAt, pktsAt := call.HeardMs(), call.Stats().PacketsIn
		br.WaitLog(10*time.Second, "call on hold", "direction="+hold.answer, call.CallID())
		time.Sleep(1500 * time.Millisecond)
		heard := call.Heard()
		toneMs := 0
		for _, s := range phone.ToneSpans(heard[min(heldAt*8, len(heard)):], eastHz) {
			toneMs += s.EndMs - s.StartMs
		}
		t.Logf("%s: %d ms of answer tone and %d RTP packets after the hold's 200", hold.offer, toneMs, call.Stats().PacketsIn-pktsAt)
		require.LessOrEqual(t, toneMs, 60, "%s: the answer stops at once (spans after hold)", hold.offer)
		require.LessOrEqual(t, call.Stats().PacketsIn-pktsAt, 5, "%s: no RTP while held, beyond a frame or two", hold.offer)

		res, err = call.ReInvite(ctx, phone.ReInviteOptions{Direction: "sendrecv"})
		require.NoError(t, err)
		require.Equal(t, 200, res.StatusCode)
		require.True(t, sdpHas(res.Body(), "a=sendrecv"))
		br.WaitLog(10*time.Second, "call resumed", call.CallID())
		// The interrupted answer does not resume: a second of quiet.
		resumedAt := call.HeardMs()
		time.Sleep(time.Second)
		heard = call.Heard()
		require.Empty(t, phone.ToneSpans(heard[min(resumedAt*8, len(heard)):], eastHz), "%s: the held answer was dropped", hold.offer)

		rec, ok := lastSession(east)
		require.True(t, ok)
		cut := len(rec.Truncations) > i
		for _, r := range rec.Responses {
			cut = cut || r.Status == "cancelled"
		}
		require.True(t, cut, "%s: the model's answer was cut (truncated or cancelled)", hold.offer)
	}
	// Resumed: the next turn is answered and heard.
	from := call.HeardMs()
	call.Speak(callerHz, 1200*time.Millisecond, -20)
	_, err := call.WaitTone(ctx, eastHz, from, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err, "the AI speaks again after resume")
	require.NoError(t, call.Hangup(ctx))
}

// TestReInviteMovesMedia: a re-INVITE offering a new RTP port (a new socket
// on the phone) moves the bridge's media there: the answer is heard on it.
func TestReInviteMovesMedia(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "", east)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	oldRTP := call.LocalRTP()

	res, err := call.ReInvite(ctx, phone.ReInviteOptions{NewRTPSocket: true})
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	newRTP := call.LocalRTP()
	require.NotEqual(t, oldRTP.Port(), newRTP.Port())
	br.WaitLog(10*time.Second, "re-INVITE: media updated", "rtp_remote="+newRTP.String(), call.CallID())

	from := call.HeardMs()
	call.Speak(callerHz, 1200*time.Millisecond, -20)
	_, err = call.WaitTone(ctx, eastHz, from, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err, "the answer reaches the new port (the old socket is closed)")
	require.NoError(t, call.Hangup(ctx))
}

// TestSessionTimerCallerRefreshes: the caller refreshes (UPDATE) past the
// interval and the call stays; when it stops, the bridge hangs up with
// Reason 408 "Session timer expired".
func TestSessionTimerCallerRefreshes(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "sip:\n  min_se: 2s\n", east)
	ph := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	timer := []sip.Header{sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "4;refresher=uac")}
	call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target(), Headers: timer})
	require.NoError(t, err)

	var last time.Time
	for range 6 { // 6 s of refreshes, 1.5 intervals
		time.Sleep(time.Second)
		res, err := call.SendRequest(ctx, sip.UPDATE, nil, timer...)
		require.NoError(t, err)
		last = time.Now()
		require.Equal(t, 200, res.StatusCode)
		require.Equal(t, "4;refresher=uac", res.GetHeader("Session-Expires").Value())
		select {
		case <-call.Ended():
			t.Fatal("the call ended while the caller refreshed")
		default:
		}
	}
	select {
	case <-call.Ended():
	case <-time.After(20 * time.Second):
		t.Fatal("no BYE after the refreshes stopped")
	}
	require.GreaterOrEqual(t, time.Since(last), 2*time.Second, "BYE at expiry - min(32 s, 4/3 s)")
	require.Equal(t, "bye-received", call.EndReason())
	byes := ph.Requests("BYE")
	require.NotEmpty(t, byes)
	require.Equal(t, `SIP;cause=408;text="Session timer expired"`, byes[len(byes)-1].GetHeader("Reason").Value())
	br.WaitLog(5*time.Second, "call ended", "reason=session_expired", call.CallID())
}

// TestSessionTimerBridgeRefreshes: the bridge refreshes at half the interval
// (UPDATE when the caller allows it, re-INVITE otherwise); a refresh answered
// 481 ends the call with Reason "Session refresh failed".
func TestSessionTimerBridgeRefreshes(t *testing.T) {
	t.Parallel()
	for _, update := range []bool{true, false} {
		method := "INVITE"
		if update {
			method = "UPDATE"
		}
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
			br := startBridge(t, "sip:\n  min_se: 2s\n  session_expires: 4s\n", east)
			ph := newPhone(t, "udp")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			hdrs := []sip.Header{sip.NewHeader("Supported", "timer")}
			if update {
				hdrs = append(hdrs, sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO"))
			}
			call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target(), Headers: hdrs})
			require.NoError(t, err)

			refreshes := func() []*sip.Request {
				var out []*sip.Request
				for _, r := range ph.Requests(method) {
					if r.CallID().Value() == call.CallID() {
						out = append(out, r)
					}
				}
				return out
			}
			waitFor(t, 20*time.Second, "three refreshes from the bridge", func() bool { return len(refreshes()) >= 3 })
			r := refreshes()[0]
			require.Equal(t, "4;refresher=uac", r.GetHeader("Session-Expires").Value(), "the bridge is the refresh's uac")
			if !update {
				require.Contains(t, string(r.Body()), "m=audio ", "a re-INVITE refresh offers the current SDP")
			}
			select {
			case <-call.Ended():
				t.Fatal("the call ended while refreshed")
			default:
			}

			ph.SetRefreshStatus(481)
			select {
			case <-call.Ended():
			case <-time.After(20 * time.Second):
				t.Fatal("no BYE after a refresh got 481")
			}
			byes := ph.Requests("BYE")
			require.NotEmpty(t, byes)
			require.Equal(t, `SIP;cause=408;text="Session refresh failed"`, byes[len(byes)-1].GetHeader("Reason").Value())
			br.WaitLog(5*time.Second, "call ended", "reason=session_refresh_failed", call.CallID())
		})
	}
}

// TestTargetRefreshThroughTheBinary: after a re-INVITE with another Contact
// the bridge's BYE (here at shutdown) goes to the new target.
func TestTargetRefreshThroughTheBinary(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "", east)
	ph := newPhone(t, "udp")
	moved := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target()})
	require.NoError(t, err)
	res, err := call.ReInvite(ctx, phone.ReInviteOptions{ContactOf: moved})
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	br.WaitLog(10*time.Second, "remote target refreshed", strconv.Itoa(int(moved.Addr().Port())), call.CallID())

	require.NoError(t, br.stop(syscall.SIGINT, 20*time.Second))
	waitFor(t, 10*time.Second, "the BYE at the new target", func() bool {
		for _, r := range moved.Requests("BYE") {
			if r.CallID().Value() == call.CallID() {
				return true
			}
		}
		return false
	})
	for _, r := range ph.Requests("BYE") {
		require.NotEqual(t, call.CallID(), r.CallID().Value(), "no BYE to the old target")
	}
}
