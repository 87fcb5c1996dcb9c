package sip

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// testLeg is a leg without a dialog: enough for offer/answer and events.
func testLeg(t *testing.T) *leg {
	t.Helper()
	s := &Server{cfg: Config{AdvertiseHost: "192.0.2.10", UserAgent: "sipbridge-test"}, log: slog.New(slog.DiscardHandler), metrics: NewMetrics(nil)}
	return newLeg(s, t.Context(), nil, nil, s.log)
}

// legEvents returns the events the leg reported so far.
func legEvents(l *leg) []legEvent {
	var out []legEvent
	for {
		select {
		case ev := <-l.events:
			out = append(out, *ev)
		default:
			return out
		}
	}
}

// TestLegAnswerOffer: the one answer-an-offer function rejects what the
// INVITE, a re-INVITE or an UPDATE cannot carry, and once our session exists
// answers with our SDP one version up.
func TestLegAnswerOffer(t *testing.T) {
	l := testLeg(t)
	_, _, _, r := l.answerOffer([]byte("this is not sdp"))
	require.NotNil(t, r)
	require.Equal(t, EndRejectBadRequest, r.reason)

	_, _, _, r = l.answerOffer([]byte(offer(4000, "18", "a=rtpmap:18 G729/8000")))
	require.NotNil(t, r)
	require.Equal(t, EndRejectNoCommonCodec, r.reason)
	require.Len(t, r.hdrs, 1)
	require.Contains(t, r.hdrs[0].Value(), "305")

	// The INVITE's offer: negotiated, no SDP until bindLocal.
	o, ans, out, r := l.answerOffer([]byte(offer(4000, "8 0")))
	require.Nil(t, r)
	require.Nil(t, out)
	require.Equal(t, "PCMA", ans.Codec.Name)
	require.NoError(t, l.bindLocal(20000, o, ans))
	cur, sdp1 := l.current()
	require.Equal(t, ans, cur)
	require.Contains(t, string(sdp1), "m=audio 20000 ")

	// A re-offer: answered with the version one up, state untouched.
	_, ans2, out, r := l.answerOffer([]byte(offer(4002, "0")))
	require.Nil(t, r)
	require.Equal(t, "PCMU", ans2.Codec.Name)
	require.Contains(t, string(out), " 2 IN IP4 192.0.2.10")
	cur, _ = l.current()
	require.Equal(t, "PCMA", cur.Codec.Name, "applyAnswer, not answerOffer, changes the session")
	require.Empty(t, legEvents(l))
}

// TestLegTakeAnswer: the one take-an-answer function reads the caller's
// answer to our offer and mirrors its direction to ours.
func TestLegTakeAnswer(t *testing.T) {
	l := testLeg(t)
	_, _, err := l.takeAnswer(nil)
	require.Error(t, err)
	_, _, err = l.takeAnswer([]byte("garbage"))
	require.Error(t, err)
	_, _, err = l.takeAnswer([]byte(offer(4000, "18", "a=rtpmap:18 G729/8000")))
	require.Error(t, err)
	_, ans, err := l.takeAnswer([]byte(offer(4000, "0", "a=sendonly")))
	require.NoError(t, err)
	require.Equal(t, sdp.RecvOnly, ans.Direction)
	require.True(t, ans.Hold())
}

// TestLegEvents: applying a negotiated session reports to the call exactly
// what changed.
func TestLegEvents(t *testing.T) {
	remote := netip.MustParseAddrPort("127.0.0.1:4000")
	moved := netip.MustParseAddrPort("127.0.0.1:4010")
	for _, tc := range []struct {
		name   string
		offer  string
		result string
		want   []legEvent // answer compared by remote, codec and DTMF only
	}{
		{name: "same session", offer: offer(4000, "0"), result: "update"},
		{name: "new address", offer: offer(4010, "0"), result: "update",
			want: []legEvent{{kind: legMediaChanged, answer: sdp.Answer{Remote: moved, Codec: sdp.Codec{PT: 0}, DTMFPT: -1}}}},
		{name: "new codec", offer: offer(4000, "8"), result: "update",
			want: []legEvent{{kind: legMediaChanged, answer: sdp.Answer{Remote: remote, Codec: sdp.Codec{PT: 8}, DTMFPT: -1}}}},
		{name: "hold", offer: offer(4000, "0", "a=sendonly"), result: "hold",
			want: []legEvent{{kind: legHold, held: true}}},
		{name: "hold with c=0.0.0.0 keeps the address", offer: strings.Replace(offer(4000, "0"), "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1),
			result: "hold", want: []legEvent{{kind: legHold, held: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := testLeg(t)
			o, ans, _, r := l.answerOffer([]byte(offer(4000, "0")))
			require.Nil(t, r)
			require.NoError(t, l.bindLocal(20000, o, ans))

			o, ans, out, r := l.answerOffer([]byte(tc.offer))
			require.Nil(t, r)
			require.Equal(t, tc.result, l.applyAnswer(o, ans, out))
			got := legEvents(l)
			require.Len(t, got, len(tc.want))
			for i, w := range tc.want {
				require.Equal(t, w.kind, got[i].kind)
				require.Equal(t, w.held, got[i].held)
				if w.kind == legMediaChanged {
					require.Equal(t, w.answer.Remote, got[i].answer.Remote)
					require.Equal(t, w.answer.Codec.PT, got[i].answer.Codec.PT)
					require.Equal(t, w.answer.DTMFPT, got[i].answer.DTMFPT)
				}
			}
			cur, _ := l.current()
			require.Equal(t, remote.Addr(), cur.Remote.Addr(), "never an unusable remote")
		})
	}

	t.Run("resume", func(t *testing.T) {
		l := testLeg(t)
		o, ans, _, _ := l.answerOffer([]byte(offer(4000, "0", "a=sendonly")))
		require.NoError(t, l.bindLocal(20000, o, ans))
		o, ans, out, _ := l.answerOffer([]byte(offer(4000, "0")))
		require.Equal(t, "resume", l.applyAnswer(o, ans, out))
		require.Equal(t, []legEvent{{kind: legHold, held: false}}, legEvents(l))
	})
}

// TestCallLoopEndDecisions: each report reaching the call's loop ends the
// call with its own reason, decided in the loop alone.
func TestCallLoopEndDecisions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		act    func(c *call, conv *fakeConv)
		reason EndReason
		bye    bool // we hang up with BYE
	}{
		{"caller BYE", func(c *call, _ *fakeConv) { c.leg.report(legEvent{kind: legBye}) }, EndCallerBye, false},
		{"session expired", func(c *call, _ *fakeConv) {
			c.leg.report(legEvent{kind: legExpired, reason: EndSessionExpired, err: errors.New("no refresh")})
		}, EndSessionExpired, true},
		{"refresh failed", func(c *call, _ *fakeConv) {
			c.leg.report(legEvent{kind: legExpired, reason: EndRefreshFailed, err: errors.New("481")})
		}, EndRefreshFailed, true},
		{"re-INVITE never ACKed", func(c *call, _ *fakeConv) {
			c.leg.report(legEvent{kind: legExpired, reason: EndNoACK, err: errors.New("no ACK")})
		}, EndNoACK, true},
		{"model hangs up", func(_ *call, conv *fakeConv) {
			conv.controls <- failover.Control{Kind: failover.ControlEndCall}
		}, EndModelHangup, true},
		{"conversation gives up", func(_ *call, conv *fakeConv) {
			conv.controls <- failover.Control{Kind: failover.ControlGiveUp, Reason: "all regions failed"}
		}, EndAIFailed, true},
		{"conversation returns", func(_ *call, conv *fakeConv) { conv.runErr <- nil }, EndAIFailed, true},
		{"conversation fails", func(_ *call, conv *fakeConv) { conv.runErr <- errors.New("boom") }, EndAIFailed, true},
		{"swap notices do not end it, shutdown does", func(c *call, conv *fakeConv) {
			conv.controls <- failover.Control{Kind: failover.ControlSwapStarted}
			conv.controls <- failover.Control{Kind: failover.ControlSwapFinished}
			c.end(EndShutdown, nil)
		}, EndShutdown, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			u := newUAC(t, h.addr)
			u.answeredCall(offer(4000, "0"))
			conv := h.conv()
			conv.playerOf(t)
			tc.act(onlyCall(t, h), conv)
			if tc.bye {
				u.nextBye()
			}
			h.waitEnd(tc.reason, 1)
			h.waitIdle()
			for r := range endReasonCount {
				if r != tc.reason {
					require.Zero(t, h.endCount(r), "ended once, with %s", tc.reason)
				}
			}
		})
	}
}

// TestCallLoopAppliesLegEvents: media changes, hold and INFO keys reach the
// stream and the conversation through the loop.
func TestCallLoopAppliesLegEvents(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	tc := u.answeredCall(offer(4000, "0"))
	conv := h.conv()
	conv.playerOf(t)
	c := onlyCall(t, h)
	stream := h.media.stream(0)

	moved := netip.MustParseAddrPort("127.0.0.1:4010")
	c.leg.report(legEvent{kind: legMediaChanged, answer: sdp.Answer{Remote: moved, Codec: sdp.Codec{PT: 8}, DTMFPT: 101}})
	require.Eventually(t, func() bool { return stream.remoteAddr() == moved }, wait, time.Millisecond)

	c.leg.report(legEvent{kind: legHold, held: true})
	require.True(t, <-conv.holds)
	require.False(t, stream.isSending())
	c.leg.report(legEvent{kind: legHold, held: false})
	require.False(t, <-conv.holds)
	require.True(t, stream.isSending())

	c.leg.report(legEvent{kind: legDTMF, digit: '7'})
	require.Equal(t, '7', <-conv.dtmf)

	tc.bye()
	h.waitEnd(EndCallerBye, 1)
	h.waitIdle()
	require.Zero(t, h.endCount(EndDialogEnded), "the BYE, not the dialog's end, says why")
}
