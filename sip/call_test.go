package sip

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// callerRTP is the caller's RTP socket.
type callerRTP struct {
	t    *testing.T
	conn *net.UDPConn
	seq  uint16
	ts   uint32
}

func newCallerRTP(t *testing.T) *callerRTP {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &callerRTP{t: t, conn: c}
}

func (r *callerRTP) port() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

func (r *callerRTP) send(to int, pt uint8, payload []byte, marker bool) {
	r.seq++
	r.ts += 160
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: r.seq, Timestamp: r.ts, SSRC: 0xca11e5, Marker: marker}, Payload: payload}
	b, err := pkt.Marshal()
	require.NoError(r.t, err)
	_, err = r.conn.WriteToUDP(b, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: to})
	require.NoError(r.t, err)
}

// recvPayload waits for an RTP packet whose payload satisfies match.
func (r *callerRTP) recvPayload(match func(pt uint8, payload []byte) bool) bool {
	deadline := time.Now().Add(wait)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		_ = r.conn.SetReadDeadline(deadline)
		n, err := r.conn.Read(buf)
		if err != nil {
			return false
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) == nil && match(p.PayloadType, p.Payload) {
			return true
		}
	}
	return false
}

// answerPort parses our SDP answer and returns the accepted audio line.
func answerAudio(t *testing.T, body []byte) sdp.Media {
	t.Helper()
	o, err := sdp.ParseOffer(body)
	require.NoError(t, err)
	require.False(t, o.Lenient, "our answer must be strict SDP: %v", o.PionErr)
	i := o.FirstAudio()
	require.GreaterOrEqual(t, i, 0, "no accepted audio in answer:\n%s", body)
	return o.Media[i]
}

func TestCallAudioBothWaysDTMFAndCallerBye(t *testing.T) {
	greeting := bytes.Repeat([]byte{0x55}, 160*5)
	h := newHarness(t, func(_ *Config, h *harness) { h.greet = greeting })
	rtpc := newCallerRTP(t)
	u := newUAC(t, h.addr)

	tc := u.answeredCall(offer(rtpc.port(), "8 0 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20"))
	// (sipgo's UAC handles each response on its own goroutine and may drop
	// the 100 when it lands after the 200; TestRawInviteOrder checks 100.)
	require.Equal(t, sip.StatusOK, tc.statuses[len(tc.statuses)-1])

	// The answer: PCMA first as the caller listed it, telephone-event echoed.
	m := answerAudio(t, tc.answer)
	require.Equal(t, "127.0.0.1", m.Addr.String())
	require.NotZero(t, m.Port)
	require.Equal(t, []string{"8", "101"}, m.Formats)
	te, ok := m.TelephoneEvent()
	require.True(t, ok)
	require.Equal(t, uint8(101), te.PT)
	require.Equal(t, "0-15", te.Fmtp)
	require.Equal(t, 20, m.Ptime)
	require.Equal(t, sdp.SendRecv, m.Direction)
	require.Contains(t, string(tc.answer), "o=sipbridge ")
	res := tc.dlg.InviteResponse
	require.NotNil(t, res.Contact())
	require.Equal(t, "application/sdp", res.ContentType().Value())
	require.Contains(t, res.GetHeader("Allow").Value(), "INVITE")
	require.Equal(t, "sipbridge-test", res.GetHeader("Server").Value())

	conv := h.conv()
	require.Equal(t, media.CodecPCMA, conv.info.Codec)
	require.Equal(t, tc.dlg.InviteRequest.CallID().Value(), conv.info.CallID)
	require.Equal(t, "ai", conv.info.ToUser)
	require.True(t, conv.info.Remote.IsValid())
	select {
	case <-conv.runStarted:
	case <-time.After(wait):
		t.Fatal("conversation never ran")
	}

	// Caller audio reaches the conversation.
	voice := bytes.Repeat([]byte{0x2a}, 160)
	var got []byte
	require.Eventually(t, func() bool {
		rtpc.send(m.Port, 8, voice, false)
		select {
		case got = <-conv.frames:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	}, wait, time.Millisecond)
	require.Equal(t, voice, got)

	// The conversation's audio comes back as RTP, PCMA.
	require.True(t, rtpc.recvPayload(func(pt uint8, p []byte) bool {
		return pt == 8 && bytes.Equal(p, greeting[:160])
	}), "greeting never arrived as RTP")
	select {
	case item := <-conv.playouts:
		require.Equal(t, "greeting", item)
	case <-time.After(wait):
		t.Fatal("no playout-done for the greeting")
	}

	// RFC 4733 end packet for digit 5 reaches the conversation.
	rtpc.send(m.Port, 101, []byte{5, 0x80 | 10, 0x03, 0x20}, true)
	select {
	case d := <-conv.dtmf:
		require.Equal(t, '5', d)
	case <-time.After(wait):
		t.Fatal("no DTMF")
	}

	tc.bye()
	select {
	case <-conv.runDone:
	case <-time.After(wait):
		t.Fatal("conversation still running after BYE")
	}
	h.waitEnd(EndCallerBye, 1)
	h.waitIdle()
	lines := h.logs.lines(`"msg":"call ended"`, `"reason":"caller_bye"`)
	require.Len(t, lines, 1)
	require.Contains(t, lines[0], `"call_id":"`+conv.info.CallID+`"`)
	require.Contains(t, lines[0], `"from":"sip:test-uac@`)
	require.Contains(t, lines[0], `"to":"sip:ai@127.0.0.1`)
}

func TestModelEndsCall(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	u.answeredCall(offer(4000, "0"))
	conv := h.conv()
	conv.controls <- failover.Control{Kind: failover.ControlEndCall, Reason: "goodbye"}
	bye := u.nextBye()
	require.Equal(t, h.addr, bye.Source(), "BYE leaves from the listener the INVITE came in on")
	require.Contains(t, bye.GetHeader("Reason").Value(), `cause=16`)
	require.Contains(t, bye.GetHeader("Reason").Value(), `model ended call`)
	h.waitEnd(EndModelHangup, 1)
	<-conv.runDone
	h.waitIdle()
}

func TestConversationFailureHangsUp(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	u.answeredCall(offer(4000, "0"))
	conv := h.conv()
	conv.runErr <- errors.New("all regions down")
	bye := u.nextBye()
	require.Contains(t, bye.GetHeader("Reason").Value(), "AI unavailable")
	h.waitEnd(EndAIFailed, 1)
	h.waitIdle()
}

// TestGiveUpHangsUpAfterTheApology: the conversation sends ControlGiveUp
// once its apology has played (failover's TestGiveUpWaitsForTheApology); the
// call then hangs up at once, and the caller heard the whole apology.
func TestGiveUpHangsUpAfterTheApology(t *testing.T) {
	h := newHarness(t)
	rtpc := newCallerRTP(t)
	u := newUAC(t, h.addr)
	tc := u.answeredCall(offer(rtpc.port(), "0"))
	m := answerAudio(t, tc.answer)
	conv := h.conv()
	apology := bytes.Repeat([]byte{0x11}, 160*10) // 200 ms
	conv.playerOf(t).Play("apology", apology)
	n := 0
	require.True(t, rtpc.recvPayload(func(pt uint8, p []byte) bool {
		if bytes.Equal(p, apology[:160]) {
			n++
		}
		return n == 10
	}))
	conv.controls <- failover.Control{Kind: failover.ControlGiveUp, Reason: "every region failed"}
	bye := u.nextBye()
	require.Contains(t, bye.GetHeader("Reason").Value(), "AI unavailable")
	require.NotZero(t, m.Port)
	h.waitEnd(EndAIFailed, 1)
	h.waitIdle()
}

func TestMediaTimeoutHangsUp(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	u.answeredCall(offer(4000, "0"))
	h.conv()
	var st *testStream
	require.Eventually(t, func() bool { st = h.media.stream(0); return st != nil && st.running.Load() }, wait, 5*time.Millisecond)
	close(st.timeoutNow)
	bye := u.nextBye()
	require.Contains(t, bye.GetHeader("Reason").Value(), "cause=102")
	h.waitEnd(EndMediaTimeout, 1)
	h.waitIdle()
}

func TestCancelBeforeAnswer(t *testing.T) {
	release := make(chan struct{})
	built := make(chan struct{}, 1)
	h := newHarness(t, func(_ *Config, h *harness) {
		h.factory = func(ctx context.Context, info CallInfo) (*fakeConv, error) {
			built <- struct{}{}
			select { // a factory that takes a while, like one reading config
			case <-release:
			case <-ctx.Done():
			}
			return newFakeConv(info), nil
		}
	})
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var tc *testCall
	go func() {
		var err error
		tc, err = u.invite(ctx, offer(4000, "0"))
		done <- err
	}()
	select {
	case <-built:
	case <-time.After(wait):
		t.Fatal("factory not called")
	}
	cancel() // WaitAnswer sends CANCEL
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(wait):
		t.Fatal("INVITE not cancelled")
	}
	close(release)
	conv := h.conv()
	require.Equal(t, sip.StatusRequestTerminated, tc.dlg.InviteResponse.StatusCode)
	h.waitEnd(EndCancelled, 1)
	h.waitIdle()
	require.False(t, conv.started(), "a cancelled call must not start its conversation (no realtime session)")
	require.True(t, h.media.allClosed())
}

func TestCancelBeforeConversationIsBuilt(t *testing.T) {
	gate := make(chan struct{})
	var factoryCalls atomic.Int32
	h := newHarness(t, func(_ *Config, h *harness) {
		h.factory = func(ctx context.Context, info CallInfo) (*fakeConv, error) {
			factoryCalls.Add(1)
			return nil, errors.New("unreachable: the call is cancelled first")
		}
		// Block media allocation until the CANCEL has been processed.
		h.media.allocGate = gate
	})
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := u.invite(ctx, offer(4000, "0"))
		done <- err
	}()
	require.Eventually(t, func() bool { return h.srv.ActiveCalls() == 1 }, wait, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	close(gate)
	h.waitEnd(EndCancelled, 1)
	h.waitIdle()
	require.Zero(t, factoryCalls.Load(), "no conversation is built for a cancelled call")
	require.Empty(t, h.convs)
}

func TestRejections(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		hdrs    []sip.Header
		status  int
		reason  EndReason
		check   func(t *testing.T, res *sip.Response)
		factory bool // the conversation factory is reached
	}{
		{name: "no common codec", body: offer(4000, "18 3", "a=rtpmap:18 G729/8000") /* G.722 (9) is ours now */, status: 488, reason: EndRejectNoCommonCodec,
			check: func(t *testing.T, res *sip.Response) {
				require.Contains(t, res.GetHeader("Warning").Value(), "305")
			}},
		{name: "savp only", body: strings.Replace(offer(4000, "0"), "RTP/AVP", "RTP/SAVP", 1), status: 488, reason: EndRejectNoCommonCodec},
		{name: "unparsable sdp", body: "this is not sdp", status: 400, reason: EndRejectBadRequest,
			check: func(t *testing.T, res *sip.Response) { require.Contains(t, res.Reason, "SDP") }},
		{name: "require 100rel", body: offer(4000, "0"), hdrs: []sip.Header{sip.NewHeader("Require", "100rel")}, status: 420, reason: EndRejectBadExtension,
			check: func(t *testing.T, res *sip.Response) {
				require.Equal(t, "100rel", res.GetHeader("Unsupported").Value())
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			u := newUAC(t, h.addr)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			call, err := u.invite(ctx, tc.body, tc.hdrs...)
			var de *sipgo.ErrDialogResponse
			require.ErrorAs(t, err, &de)
			require.Equal(t, tc.status, de.Res.StatusCode)
			if tc.check != nil {
				tc.check(t, de.Res)
			}
			require.Equal(t, tc.status, call.dlg.InviteResponse.StatusCode)
			h.waitEnd(tc.reason, 1)
			h.waitIdle()
			require.Empty(t, h.convs)
			require.Zero(t, h.media.allocated())
		})
	}
}

func TestSetupFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  harnessOpt
		status int
		reason EndReason
	}{
		{name: "no rtp port", setup: func(_ *Config, h *harness) { h.media.failAlloc = true }, status: 503, reason: EndRejectNoRTPPort},
		{name: "media stream", setup: func(_ *Config, h *harness) { h.media.failStream = true }, status: 500, reason: EndRejectMediaSetup},
		{name: "conversation", setup: func(_ *Config, h *harness) {
			h.factory = func(context.Context, CallInfo) (*fakeConv, error) {
				return nil, errors.New("no region configured")
			}
		}, status: 503, reason: EndRejectAIUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.setup)
			u := newUAC(t, h.addr)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_, err := u.invite(ctx, offer(4000, "0"))
			var de *sipgo.ErrDialogResponse
			require.ErrorAs(t, err, &de)
			require.Equal(t, tc.status, de.Res.StatusCode)
			if tc.status == 503 {
				require.NotNil(t, de.Res.GetHeader("Retry-After"))
			}
			h.waitEnd(tc.reason, 1)
			h.waitIdle()
		})
	}
}

func TestMaxCallsAndDrain(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *harness) { c.MaxCalls = 1 })
	u := newUAC(t, h.addr)
	first := u.answeredCall(offer(4000, "0"))
	h.conv()

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := u.invite(ctx, offer(4002, "0"))
	var de *sipgo.ErrDialogResponse
	require.ErrorAs(t, err, &de)
	require.Equal(t, sip.StatusServiceUnavailable, de.Res.StatusCode)
	require.NotNil(t, de.Res.GetHeader("Retry-After"))
	h.waitEnd(EndRejectMaxCalls, 1)

	h.srv.Drain()
	first.bye()
	h.waitIdle()
	_, err = u.invite(ctx, offer(4004, "0"))
	require.ErrorAs(t, err, &de)
	require.Equal(t, sip.StatusServiceUnavailable, de.Res.StatusCode)
	require.NotNil(t, de.Res.GetHeader("Retry-After"))
	h.waitEnd(EndRejectDraining, 1)

	res, err := u.client.Do(ctx, sip.NewRequest(sip.OPTIONS, u.uri("ai")))
	require.NoError(t, err)
	require.Equal(t, sip.StatusServiceUnavailable, res.StatusCode)
	require.NotNil(t, res.GetHeader("Retry-After"))
}

func TestNoACKEndsWithBye(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *harness) { c.ACKTimeout = 300 * time.Millisecond })
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tc, err := u.invite(ctx, offer(4000, "0"))
	require.NoError(t, err) // 200 received; no ACK sent
	conv := h.conv()
	bye := u.nextBye()
	require.Equal(t, tc.dlg.InviteRequest.CallID().Value(), bye.CallID().Value())
	require.Contains(t, bye.GetHeader("Reason").Value(), "cause=408")
	h.waitEnd(EndNoACK, 1)
	<-conv.runDone
	h.waitIdle()
}

func TestShutdownHangsUpActiveCalls(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	u.answeredCall(offer(4000, "0"))
	conv := h.conv()
	h.cancel() // Serve's context ends: BYE every call, then close
	bye := u.nextBye()
	require.Contains(t, bye.GetHeader("Reason").Value(), "shutting down")
	<-conv.runDone
	h.waitEnd(EndShutdown, 1)
}

func TestHangupAll(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	u.answeredCall(offer(4000, "0"))
	u.answeredCall(offer(4002, "0"))
	require.Equal(t, 2, h.srv.ActiveCalls())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	h.srv.HangupAll(ctx)
	require.Equal(t, 0, h.srv.ActiveCalls())
	u.nextBye()
	u.nextBye()
	require.Equal(t, float64(2), h.endCount(EndShutdown))
}

// TestCallWithRealMedia runs the production wiring: media.PortAllocator and
// media.Stream (jitter buffer, pacer, G.711) between the caller's RTP and
// the conversation.
func TestCallWithRealMedia(t *testing.T) {
	ports, err := media.NewPortAllocator(netip.MustParseAddr("127.0.0.1"), 42000, 42998)
	require.NoError(t, err)
	greeting := bytes.Repeat([]byte{0x55}, 160*10)
	h := newHarness(t, func(c *Config, h *harness) {
		h.ports = ports
		h.greet = greeting
		h.format = media.ModelPCMU
		c.MediaTimeout = 0 // the default (30 s): the test ends long before
	})
	rtpc := newCallerRTP(t)
	u := newUAC(t, h.addr)
	tc := u.answeredCall(offer(rtpc.port(), "0 101", "a=rtpmap:101 telephone-event/8000"))
	m := answerAudio(t, tc.answer)
	require.GreaterOrEqual(t, m.Port, 42000)
	require.Zero(t, m.Port%2, "RTP on an even port (RFC 3550 §11)")
	conv := h.conv()

	// Caller audio, paced like a phone, reaches the conversation as PCMU
	// frames of 20 ms.
	voice := bytes.Repeat([]byte{0x2a}, 160)
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				rtpc.send(m.Port, 0, voice, false)
			}
		}
	}()
	select {
	case f := <-conv.frames:
		require.Len(t, f, 160)
	case <-time.After(wait):
		t.Fatal("no caller audio reached the conversation")
	}
	// The conversation's greeting comes back as PCMU RTP.
	require.True(t, rtpc.recvPayload(func(pt uint8, p []byte) bool {
		return pt == 0 && bytes.Equal(p, greeting[:160])
	}), "greeting never arrived as RTP")
	close(stop)
	<-sent

	tc.bye()
	h.waitEnd(EndCallerBye, 1)
	h.waitIdle()
}

// TestLateOffer: an INVITE without SDP gets our offer in the 200 and the
// caller's answer in the ACK decides codec and address (RFC 3261 §13.2.1).
func TestLateOffer(t *testing.T) {
	greeting := bytes.Repeat([]byte{0x77}, 160*3)
	h := newHarness(t, func(_ *Config, h *harness) { h.greet = greeting })
	rtpc := newCallerRTP(t)
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tc, err := u.invite(ctx, "")
	require.NoError(t, err)
	o, err := sdp.ParseOffer(tc.answer)
	require.NoError(t, err)
	m := o.Media[0]
	require.Equal(t, []string{"0", "8", "101"}, m.Formats, "our offer: PCMU, PCMA, telephone-event")
	_, ok := m.TelephoneEvent()
	require.True(t, ok)

	// The caller answers PCMA in the ACK.
	ack := sip.NewRequest(sip.ACK, tc.dlg.InviteResponse.Contact().Address)
	ack.SetBody([]byte(offer(rtpc.port(), "8 101", "a=rtpmap:101 telephone-event/8000")))
	ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	require.NoError(t, tc.dlg.WriteAck(ctx, ack))
	conv := h.conv()

	require.Eventually(t, func() bool {
		rtpc.send(m.Port, 8, bytes.Repeat([]byte{1}, 160), false)
		select {
		case <-conv.frames:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	}, wait, time.Millisecond)
	require.True(t, rtpc.recvPayload(func(pt uint8, p []byte) bool {
		return pt == 8 && bytes.Equal(p, greeting[:160])
	}), "RTP goes to the address and codec of the ACK's answer")
	tc.bye()
	h.waitEnd(EndCallerBye, 1)
	h.waitIdle()
}

func TestLateOfferACKWithoutAnswer(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tc, err := u.invite(ctx, "")
	require.NoError(t, err)
	require.NoError(t, tc.dlg.Ack(ctx)) // no SDP in the ACK
	bye := u.nextBye()
	require.Contains(t, bye.GetHeader("Reason").Value(), "cause=488")
	h.waitEnd(EndBadAnswer, 1)
	h.waitIdle()
}
