package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

const (
	callerHz = 300.0 // the caller's "speech" tone
	eastHz   = 440.0 // region east's answer voice
	westHz   = 660.0 // region west's answer voice
)

// waitFor polls cond until it is true or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lastSession returns the newest simulator session record.
func lastSession(r *region) (sim.SessionRecord, bool) {
	s := r.Sim.Sessions()
	if len(s) == 0 {
		return sim.SessionRecord{}, false
	}
	return s[len(s)-1], true
}

func completedResponses(rec sim.SessionRecord) int {
	n := 0
	for _, r := range rec.Responses {
		if r.Status == "completed" {
			n++
		}
	}
	return n
}

// TestCallIsAnsweredAndTheAssistantIsHeard places a real SIP call through the
// binary: the caller's audio reaches the model, the model's spoken answer comes
// back as RTP, and the caller hears it (detected by frequency, not by counting
// packets).
func TestCallIsAnsweredAndTheAssistantIsHeard(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "", east)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	require.Equal(t, uint8(0), call.PayloadType(), "PCMU offered first is chosen")
	require.Contains(t, call.Answer(), "telephone-event/8000")
	require.Contains(t, call.Answer(), "a=rtpmap:101 telephone-event/8000", "the offer's telephone-event PT is echoed")

	// Speak one turn; the simulator's VAD commits it and answers.
	call.Speak(callerHz, 1200*time.Millisecond, -20)
	at, err := call.WaitTone(ctx, eastHz, 0, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err, "the caller must hear the assistant's answer")
	require.Greater(t, at, 1000, "the answer comes after the caller spoke")

	rec, ok := lastSession(east)
	require.True(t, ok)
	require.GreaterOrEqual(t, rec.AppendedAudioMs, 1200, "the caller's audio streamed to the model")
	require.NotEmpty(t, rec.Turns, "the caller's turn was committed by server VAD")
	require.GreaterOrEqual(t, rec.Turns[0].AudioMs, 1000)

	st := call.Stats()
	require.Zero(t, st.SeqErrors, "RTP sequence numbers are continuous")
	require.GreaterOrEqual(t, st.Markers, 1)

	require.NoError(t, call.Hangup(ctx))
	waitFor(t, 10*time.Second, "the realtime session to close after BYE", func() bool {
		rec, _ := lastSession(east)
		return !rec.Ended.IsZero()
	})
	line := br.WaitLog(5*time.Second, "call ended", call.CallID())
	if testing.Verbose() {
		t.Log(br.Logs())
	}
	require.Contains(t, line, "caller")
}

// TestSDPAnswerFollowsCallerCodecOrder: PCMA offered first is answered PCMA,
// a dynamic telephone-event PT is echoed, and the call works in A-law.
func TestSDPAnswerFollowsCallerCodecOrder(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "", east)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{Codecs: []string{"PCMA", "PCMU"}, TelephoneEvent: 96})
	require.Equal(t, uint8(8), call.PayloadType())
	require.Contains(t, call.Answer(), "a=rtpmap:96 telephone-event/8000")
	call.Speak(callerHz, 1200*time.Millisecond, -20)
	_, err := call.WaitTone(ctx, eastHz, 0, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err)
	require.NoError(t, call.Hangup(ctx))
}

// TestNoCommonCodecGets488: an offer of nothing the bridge is configured
// for (G.722 and Opus to a bridge limited to G.711 by sip.codecs) is
// refused before any realtime session is opened, and counted by reason.
func TestNoCommonCodecGets488(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{})
	br := startBridge(t, "sip:\n  codecs: [PCMU, PCMA]\n", east)
	ph := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := ph.Call(ctx, phone.CallOptions{Target: br.Target(), Codecs: []string{"G722", "OPUS"}, TelephoneEvent: -1})
	var rej *phone.ErrRejected
	require.True(t, errors.As(err, &rej), "want a rejection, got %v", err)
	require.Equal(t, 488, rej.Code)
	require.Empty(t, east.Sim.Sessions(), "no realtime session for a call that was refused")
	require.Equal(t, 1.0, requireMetric(t, br, `sipbridge_sip_sdp_rejections_total{reason="no-common-codec"}`))
}

// TestModelEndsTheCall: the model calls end_call after its goodbye; the bridge
// lets the goodbye play out, then sends BYE.
func TestModelEndsTheCall(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, Responder: func(tc sim.TurnContext) sim.Reply {
		if tc.Turn >= 1 {
			return sim.Reply{Text: "Thanks for calling, goodbye.", FunctionCall: &sim.FunctionCall{Name: "end_call", Arguments: `{"reason":"caller done"}`}}
		}
		return sim.DefaultResponder(tc)
	}})
	br := startBridge(t, "", east)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	call.Speak(callerHz, time.Second, -20)
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("the bridge never hung up")
	}
	require.Equal(t, "bye-received", call.EndReason())
	spans := phone.ToneSpans(call.Heard(), eastHz)
	require.NotEmpty(t, spans, "the goodbye was heard before the BYE")
	heard := 0
	for _, s := range spans {
		heard += s.EndMs - s.StartMs
	}
	require.Greater(t, heard, 1000, "the whole goodbye played out before the BYE (spans %v)", spans)
	rec, _ := lastSession(east)
	found := false
	for _, it := range rec.Items {
		if it.Type == "function_call_output" {
			found = true
		}
	}
	require.True(t, found, "the bridge answered the end_call function call")
	br.WaitLog(5*time.Second, "call ended", call.CallID())
}

// TestBargeInTruncatesAtThePlayedPosition: the caller talks over a long answer;
// the bridge stops the playout at once and truncates the assistant item at
// what was actually sent as RTP.
func TestBargeInTruncatesAtThePlayedPosition(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("This is a long answer that keeps going. ", 3)
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, Speedup: 8, Responder: func(tc sim.TurnContext) sim.Reply {
		if tc.Turn == 1 {
			return sim.Reply{Text: long}
		}
		return sim.Reply{Text: "Sure."}
	}})
	br := startBridge(t, "", east)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	call.Speak(callerHz, time.Second, -20)
	start, err := call.WaitTone(ctx, eastHz, 0, 800*time.Millisecond, 20*time.Second)
	require.NoError(t, err)
	// The whole answer (≈4 s of audio) has reached the bridge by now (8× real
	// time); interrupt it after about a second of listening.
	call.Speak(callerHz, time.Second, -20)
	interruptAt := call.HeardMs()

	waitFor(t, 15*time.Second, "a truncation", func() bool {
		rec, _ := lastSession(east)
		return len(rec.Truncations) > 0
	})
	rec, _ := lastSession(east)
	tr := rec.Truncations[0]
	require.Equal(t, rec.Responses[0].ItemIDs[0], tr.ItemID, "the assistant item being played is truncated")
	require.Less(t, tr.AudioEndMs, rec.Responses[0].AudioMs, "truncated before the end of what the model produced")
	// What the caller heard of the answer: from its start to the interruption
	// plus VAD latency; the truncate point must lie inside that window.
	require.GreaterOrEqual(t, tr.AudioEndMs, interruptAt-start-200)
	require.LessOrEqual(t, tr.AudioEndMs, call.HeardMs()-start+200)

	// The playout stopped: less than a second of the long answer after the
	// barge-in was detected.
	spans := phone.ToneSpans(call.Heard(), eastHz)
	require.NotEmpty(t, spans)
	require.Less(t, spans[0].EndMs-spans[0].StartMs, tr.AudioEndMs+600, "playout continued after the truncate (spans %v)", spans)
	require.NoError(t, call.Hangup(ctx))
}

// TestOptionsAndMethodNotAllowed: OPTIONS gets 200 with Allow/Accept; an
// unsupported method gets 405 with Allow.
func TestOptionsAndMethodNotAllowed(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{})
	br := startBridge(t, "", east)
	res := rawSIP(t, br.SIPAddr, "OPTIONS", "")
	require.True(t, strings.HasPrefix(res, "SIP/2.0 200"), res)
	require.Contains(t, res, "Allow:")
	require.Contains(t, res, "INVITE")
	require.Contains(t, res, "Accept: application/sdp")
	res = rawSIP(t, br.SIPAddr, "SUBSCRIBE", "")
	require.True(t, strings.HasPrefix(res, "SIP/2.0 405"), res)
	require.Contains(t, res, "Allow:")
}

// TestMalformedRequestsGet400 sends broken SIP over UDP; each gets the right
// error response and the server keeps working.
func TestMalformedRequestsGet400(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "", east)
	cases := []struct {
		name string
		msg  func(port int) string
		want string
	}{
		{"missing Call-ID", func(port int) string {
			return fmt.Sprintf("INVITE sip:bot@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-m1;rport\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", br.SIPAddr, port)
		}, "SIP/2.0 400"},
		{"bad CSeq", func(port int) string {
			return fmt.Sprintf("OPTIONS sip:bot@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-m2;rport\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: m2@test\r\nCSeq: abc OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", br.SIPAddr, port)
		}, "SIP/2.0 400"},
		{"garbage SDP", func(port int) string {
			body := "this is not sdp"
			return fmt.Sprintf("INVITE sip:bot@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-m3;rport\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: m3@test\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:%d>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", br.SIPAddr, port, port, len(body), body)
		}, "SIP/2.0 4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := rawSIPMessage(t, br.SIPAddr, tc.msg)
			require.True(t, strings.HasPrefix(res, tc.want), "got %q", res)
		})
	}
	// Still healthy afterwards.
	res := rawSIP(t, br.SIPAddr, "OPTIONS", "")
	require.True(t, strings.HasPrefix(res, "SIP/2.0 200"), res)
	require.Empty(t, east.Sim.Sessions())
}

// rawSIP sends a minimal request of the method over UDP and returns the first final response.
func rawSIP(t *testing.T, addr, method, body string) string {
	return rawSIPMessage(t, addr, func(port int) string {
		return fmt.Sprintf("%s sip:bot@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-%d;rport\r\nFrom: <sip:tester@127.0.0.1>;tag=t%d\r\nTo: <sip:bot@%s>\r\nCall-ID: raw-%d@test\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\nContent-Length: %d\r\n\r\n%s",
			method, addr, port, time.Now().UnixNano(), time.Now().UnixNano(), addr, time.Now().UnixNano(), method, len(body), body)
	})
}

func rawSIPMessage(t *testing.T, addr string, msg func(port int) string) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer conn.Close()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	dst, err := net.ResolveUDPAddr("udp", addr)
	require.NoError(t, err)
	_, err = conn.WriteTo([]byte(msg(port)), dst)
	require.NoError(t, err)
	buf := make([]byte, 8192)
	deadline := time.Now().Add(5 * time.Second)
	for {
		require.NoError(t, conn.SetReadDeadline(deadline))
		n, _, err := conn.ReadFrom(buf)
		require.NoError(t, err, "no response")
		res := string(buf[:n])
		if strings.HasPrefix(res, "SIP/2.0 1") {
			continue
		}
		return res
	}
}

// TestG711PassthroughFollowsTheCallCodec: with audio_format auto (the
// default) or g711 the model gets the call's own law (no transcoding): a
// PCMU call asks the realtime session for audio/pcmu both ways, a PCMA call
// audio/pcma, and the answer is heard.
func TestG711PassthroughFollowsTheCallCodec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, config, codec, wire string }{
		{"default_auto_pcmu", "", "PCMU", "audio/pcmu"},
		{"g711_pcma", "assistant:\n  audio_format: g711\n", "PCMA", "audio/pcma"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
			br := startBridge(t, tc.config, east)
			call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{Codecs: []string{tc.codec}})
			call.Speak(callerHz, 1200*time.Millisecond, -20)
			_, err := call.WaitTone(ctx, eastHz, 0, 600*time.Millisecond, 20*time.Second)
			require.NoError(t, err)
			rec, _ := lastSession(east)
			upd := string(rec.SessionUpdates[0])
			require.Contains(t, upd, `"input":{"format":{"type":"`+tc.wire+`"}`)
			require.Contains(t, upd, `"output":{"format":{"type":"`+tc.wire+`"}`)
			require.NoError(t, call.Hangup(ctx))
		})
	}
}
