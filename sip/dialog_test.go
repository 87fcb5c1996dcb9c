package sip

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// reinvite sends a re-INVITE from the caller, ACKs a 2xx and returns the
// final response.
func (tc *testCall) reinvite(t *testing.T, body string) *sip.Response {
	t.Helper()
	target := tc.dlg.InviteResponse.Contact().Address
	req := sip.NewRequest(sip.INVITE, target)
	if body != "" {
		req.SetBody([]byte(body))
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	res := tc.do(req)
	if res.IsSuccess() {
		require.NoError(t, tc.dlg.WriteRequest(sip.NewRequest(sip.ACK, target)))
	}
	return res
}

func TestReInviteHoldAndResume(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	tc := u.answeredCall(offer(4000, "0 101", "a=rtpmap:101 telephone-event/8000"))
	conv := h.conv()
	st := h.media.stream(0)
	require.NotNil(t, st)
	origin := func(body []byte) string {
		for _, l := range strings.Split(string(body), "\r\n") {
			if strings.HasPrefix(l, "o=") {
				return l
			}
		}
		return ""
	}
	firstOrigin := origin(tc.answer)

	steps := []struct {
		dir      string
		wantDir  sdp.Direction
		hold     bool
		version  string
		holdCall bool // SetHold is called (a change)
	}{
		{dir: "sendonly", wantDir: sdp.RecvOnly, hold: true, version: " 2 ", holdCall: true},
		{dir: "sendrecv", wantDir: sdp.SendRecv, hold: false, version: " 3 ", holdCall: true},
		{dir: "inactive", wantDir: sdp.Inactive, hold: true, version: " 4 ", holdCall: true},
		{dir: "inactive", wantDir: sdp.Inactive, hold: true, version: " 5 ", holdCall: false},
		{dir: "recvonly", wantDir: sdp.SendOnly, hold: false, version: " 6 ", holdCall: true},
	}
	for _, s := range steps {
		res := tc.reinvite(t, offer(4000, "0 101", "a=rtpmap:101 telephone-event/8000", "a="+s.dir))
		require.Equal(t, sip.StatusOK, res.StatusCode, s.dir)
		require.NotNil(t, res.Contact())
		m := answerAudio(t, res.Body())
		require.Equal(t, s.wantDir, m.Direction, s.dir)
		_, ok := m.TelephoneEvent()
		require.True(t, ok)
		o := origin(res.Body())
		require.Contains(t, o, s.version, "o= version grows with every new answer (RFC 3264 §8)")
		require.Equal(t, strings.Fields(firstOrigin)[1], strings.Fields(o)[1], "same session id")
		if s.holdCall {
			select {
			case held := <-conv.holds:
				require.Equal(t, s.hold, held, s.dir)
			case <-time.After(wait):
				t.Fatalf("SetHold not called for %s", s.dir)
			}
		}
		require.Equal(t, !s.hold, st.isSending(), s.dir)
	}
	require.Empty(t, conv.holds)

	// A re-INVITE we cannot accept leaves the call as it was (RFC 3261 §14.2).
	res := tc.reinvite(t, offer(4000, "18", "a=rtpmap:18 G729/8000"))
	require.Equal(t, sip.StatusNotAcceptableHere, res.StatusCode)
	// An offerless re-INVITE gets our current SDP as the offer.
	res = tc.reinvite(t, "")
	require.Equal(t, sip.StatusOK, res.StatusCode)
	require.Contains(t, origin(res.Body()), " 6 ")
	require.Equal(t, 1, h.srv.ActiveCalls())
	require.Equal(t, float64(2), metricValue(h.srv.metrics.reinvites.WithLabelValues("hold")))
	require.Equal(t, float64(2), metricValue(h.srv.metrics.reinvites.WithLabelValues("resume")))
	require.Equal(t, float64(1), metricValue(h.srv.metrics.reinvites.WithLabelValues("update")))

	tc.bye()
	h.waitEnd(EndCallerBye, 1)
	h.waitIdle()
}

func TestReInviteBeforeACKIsPending(t *testing.T) {
	h := newHarness(t, func(_ *Config, h *harness) {
		h.tweak = func(s *Server) { s.ackGrace = 100 * time.Millisecond }
	})
	u := newUAC(t, h.addr)
	ctx := t.Context()
	tc, err := u.invite(ctx, offer(4000, "0"))
	require.NoError(t, err) // 200 received, not ACKed yet
	res := tc.reinvite(t, offer(4000, "0", "a=sendonly"))
	require.Equal(t, sip.StatusRequestPending, res.StatusCode)
	require.NoError(t, tc.dlg.Ack(ctx))
	h.conv()
	tc.bye()
	h.waitIdle()
}

// notify sends a NOTIFY of the REFER subscription from the caller's side.
func (tc *testCall) notify(t *testing.T, frag string, terminated bool) *sip.Response {
	t.Helper()
	req := sip.NewRequest(sip.NOTIFY, tc.dlg.InviteResponse.Contact().Address)
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	state := "active;expires=60"
	if terminated {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody([]byte(frag))
	return tc.do(req)
}

func nextRefer(t *testing.T, u *uac) *sip.Request {
	t.Helper()
	select {
	case r := <-u.refers:
		return r
	case <-time.After(wait):
		t.Fatal("no REFER")
		return nil
	}
}

func nextTransfer(t *testing.T, c *fakeConv) transferResult {
	t.Helper()
	select {
	case r := <-c.transfers:
		return r
	case <-time.After(wait):
		t.Fatal("no transfer result")
		return transferResult{}
	}
}

func TestTransferSucceeds(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	tc := u.answeredCall(offer(4000, "0"))
	conv := h.conv()
	conv.controls <- failover.Control{Kind: failover.ControlTransfer, Target: "sip:agent@example.com", CallID: "fc_1"}

	refer := nextRefer(t, u)
	require.Equal(t, h.addr, refer.Source())
	require.Equal(t, "<sip:agent@example.com>", refer.GetHeader("Refer-To").Value())
	require.Contains(t, refer.GetHeader("Referred-By").Value(), "sip:ai@127.0.0.1")
	require.Equal(t, tc.dlg.InviteRequest.CallID().Value(), refer.CallID().Value())
	require.Greater(t, refer.CSeq().SeqNo, uint32(0))

	require.Equal(t, sip.StatusOK, tc.notify(t, "SIP/2.0 100 Trying\r\n", false).StatusCode)
	require.Equal(t, sip.StatusOK, tc.notify(t, "SIP/2.0 200 OK\r\n", true).StatusCode)
	r := nextTransfer(t, conv)
	require.Equal(t, transferResult{callID: "fc_1", ok: true, detail: "200 OK"}, r)

	bye := u.nextBye()
	require.Contains(t, bye.GetHeader("Reason").Value(), "transferred")
	h.waitEnd(EndTransferred, 1)
	h.waitIdle()
	require.Equal(t, float64(1), metricValue(h.srv.metrics.transfers.WithLabelValues("success")))
}

func TestTransferFailures(t *testing.T) {
	t.Run("target busy", func(t *testing.T) {
		h := newHarness(t)
		u := newUAC(t, h.addr)
		tc := u.answeredCall(offer(4000, "0"))
		conv := h.conv()
		conv.controls <- failover.Control{Kind: failover.ControlTransfer, Target: "tel:+15551234567", CallID: "fc_2"}
		refer := nextRefer(t, u)
		require.Equal(t, "<tel:+15551234567>", refer.GetHeader("Refer-To").Value())
		require.Equal(t, sip.StatusOK, tc.notify(t, "SIP/2.0 486 Busy Here\r\n", true).StatusCode)
		r := nextTransfer(t, conv)
		require.False(t, r.ok)
		require.Contains(t, r.detail, "486 Busy Here")
		// The call goes on; the caller is still with the AI.
		require.Equal(t, 1, h.srv.ActiveCalls())
		tc.bye()
		h.waitEnd(EndCallerBye, 1)
		h.waitIdle()
	})
	t.Run("REFER rejected", func(t *testing.T) {
		h := newHarness(t)
		u := newUAC(t, h.addr)
		u.referStatus = sip.StatusGlobalDecline
		tc := u.answeredCall(offer(4000, "0"))
		conv := h.conv()
		conv.controls <- failover.Control{Kind: failover.ControlTransfer, Target: "sip:agent@example.com", CallID: "fc_3"}
		nextRefer(t, u)
		r := nextTransfer(t, conv)
		require.False(t, r.ok)
		require.Contains(t, r.detail, "REFER rejected: 603")
		require.Equal(t, 1, h.srv.ActiveCalls())
		tc.bye()
		h.waitIdle()
	})
	t.Run("invalid target never sent", func(t *testing.T) {
		h := newHarness(t)
		u := newUAC(t, h.addr)
		tc := u.answeredCall(offer(4000, "0"))
		conv := h.conv()
		conv.controls <- failover.Control{Kind: failover.ControlTransfer, Target: "sip:agent@example.com>\r\nX-Evil: 1", CallID: "fc_4"}
		r := nextTransfer(t, conv)
		require.Equal(t, transferResult{callID: "fc_4", ok: false, detail: "invalid transfer target"}, r)
		require.Empty(t, u.refers)
		tc.bye()
		h.waitIdle()
	})
	t.Run("NOTIFY without a REFER", func(t *testing.T) {
		h := newHarness(t)
		u := newUAC(t, h.addr)
		tc := u.answeredCall(offer(4000, "0"))
		h.conv()
		require.Equal(t, sip.StatusCallTransactionDoesNotExists, tc.notify(t, "SIP/2.0 200 OK\r\n", true).StatusCode)
		tc.bye()
		h.waitIdle()
	})
}

func TestGiveUpTransfersToTarget(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	tc := u.answeredCall(offer(4000, "0"))
	conv := h.conv()
	conv.controls <- failover.Control{Kind: failover.ControlGiveUp, Target: "sip:operator@example.com", Reason: "all regions failed"}
	refer := nextRefer(t, u)
	require.Equal(t, "<sip:operator@example.com>", refer.GetHeader("Refer-To").Value())
	// The conversation is dead meanwhile: the call must wait for the transfer.
	conv.runErr <- errIfNil("regions down")
	require.Equal(t, sip.StatusOK, tc.notify(t, "SIP/2.0 200 OK\r\n", true).StatusCode)
	bye := u.nextBye()
	require.Contains(t, bye.GetHeader("Reason").Value(), "transferred")
	h.waitEnd(EndTransferred, 1)
	h.waitIdle()
}

type testErr string

func (e testErr) Error() string { return string(e) }

func errIfNil(s string) error { return testErr(s) }
