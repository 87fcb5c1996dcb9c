package sip

import (
	"context"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"
)

// TestSetTrunksAppliesToTheNextCall: a reload's trunks decide the next
// INVITE; the admitting trunk, the caller's display name and headers reach
// the conversation factory; privacy keeps the numbers out of the logs.
func TestSetTrunksAppliesToTheNextCall(t *testing.T) {
	h := trunkHarness(t, AuthLimit{}, Trunk{Name: "old", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := u.invite(ctx, offer(4000, "0"))
	var de *sipgo.ErrDialogResponse
	require.ErrorAs(t, err, &de)
	require.Equal(t, sip.StatusForbidden, de.Res.StatusCode)

	require.Error(t, h.srv.SetTrunks([]Trunk{{Name: "open"}}, AuthLimit{}), "a trunk admitting anyone is refused")
	require.NoError(t, h.srv.SetTrunks([]Trunk{{Name: "pbx", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}}, AuthLimit{}))
	h.srv.SetPrivacy(Privacy{From: true})

	tc, err := u.invite(ctx, offer(4000, "0"), sip.NewHeader("X-Account", "A-17"),
		sip.NewHeader("Authorization", `Digest username="x"`))
	require.NoError(t, err)
	require.NoError(t, tc.dlg.Ack(ctx))
	fc := h.conv()
	require.Equal(t, "pbx", fc.info.Trunk)
	require.Equal(t, "A-17", fc.info.Headers["x-account"])
	require.NotContains(t, fc.info.Headers, "authorization", "credentials are not caller context")
	require.Equal(t, "ai", fc.info.ToUser)
	tc.bye()
	h.waitEnd(EndCallerBye, 1)
	lines := h.logs.lines(`"call_id":"` + fc.info.CallID + `"`)
	require.NotEmpty(t, lines)
	for _, l := range lines {
		require.NotContains(t, l, fc.info.From, "privacy: From is not logged")
		if fc.info.FromUser != "" {
			require.NotContains(t, l, "\"from\":\""+fc.info.FromUser)
		}
	}
	require.NotEmpty(t, h.logs.lines(`"from":"[private]"`))

	require.NoError(t, h.srv.SetTrunks(nil, AuthLimit{}), "no trunks: anyone may call")
	tc = u.answeredCall(offer(4000, "0"))
	require.Empty(t, h.conv().info.Trunk)
	tc.bye()
	h.waitEnd(EndCallerBye, 2)
}
