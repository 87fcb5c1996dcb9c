package sip

import (
	"context"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"
)

// A full instance answers OPTIONS 503 (with Retry-After), so a dispatcher
// pinging it stops sending calls; once a call ends it answers 200 again.
func TestOptionsAtCapacity(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *harness) { c.MaxCalls = 1 })
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	options := func() *sip.Response {
		res, err := u.client.Do(ctx, sip.NewRequest(sip.OPTIONS, u.uri("ai")))
		require.NoError(t, err)
		return res
	}
	require.Equal(t, sip.StatusOK, options().StatusCode, "idle")

	first := u.answeredCall(offer(4000, "0"))
	h.conv()
	res := options()
	require.Equal(t, sip.StatusServiceUnavailable, res.StatusCode, "at max calls")
	require.NotNil(t, res.GetHeader("Retry-After"))

	first.bye()
	h.waitIdle()
	require.Equal(t, sip.StatusOK, options().StatusCode, "a slot is free again")
}
