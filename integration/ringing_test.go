package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// TestCancelWhileRinging: the bridge rings while the realtime session
// connects (here a slow region); the caller cancels; the INVITE gets 487 and
// the realtime session being opened is closed, nothing left running.
func TestCancelWhileRinging(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, Faults: sim.Faults{HandshakeDelay: 3 * time.Second}})
	br := startBridge(t, "", east)
	ph := newPhone(t, "udp")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := ph.Call(ctx, phone.CallOptions{Target: br.Target()})
		done <- err
	}()
	// Wait until the bridge is dialling the region (the upgrade arrived).
	waitFor(t, 10*time.Second, "the bridge to dial east", func() bool { return len(east.Sim.Sessions()) == 1 })
	cancel() // sipgo's WaitAnswer sends CANCEL when its context ends
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the call attempt did not end after CANCEL")
	}
	require.Error(t, err)
	line := br.WaitLog(10*time.Second, "call ended", "reason=cancelled")
	require.Contains(t, line, "answered=false")
	waitFor(t, 10*time.Second, "the half-open realtime session to close", func() bool {
		s := east.Sim.Sessions()
		return len(s) == 1 && !s[0].Ended.IsZero()
	})
	require.Zero(t, east.Sim.Sessions()[0].AppendedAudioMs)
}

// TestAllRegionsDownAtCallStartGets503: no region can take the call, so the
// bridge refuses it (503 + Retry-After) instead of answering into dead air.
func TestAllRegionsDownAtCallStartGets503(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{Faults: sim.Faults{RefuseStatus: 503}})
	west := startRegion(t, "west", sim.Config{Faults: sim.Faults{RefuseConnect: true}})
	br := startBridge(t, "failover:\n  max_swaps_in_row: 2\n", east, west)
	ph := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target()})
	require.Nil(t, call)
	var rej *phone.ErrRejected
	require.True(t, errors.As(err, &rej), "want a rejection, got %v", err)
	require.Equal(t, 503, rej.Code)
	require.NotNil(t, rej.Res.GetHeader("Retry-After"))
	br.WaitLog(5*time.Second, "call ended", "answered=false")
}

// TestRingingThenAnswer: a slow region costs the caller ringing, not silence:
// 180 first, then 200 once the AI listens, and the first turn is answered.
func TestRingingThenAnswer(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, Faults: sim.Faults{HandshakeDelay: 800 * time.Millisecond}})
	br := startBridge(t, "", east)
	start := time.Now()
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	require.GreaterOrEqual(t, time.Since(start), 700*time.Millisecond, "answered only once the AI was up")
	require.Contains(t, call.Provisional(), 180)
	turn(t, ctx, call, eastHz, 20*time.Second)
	require.NoError(t, call.Hangup(ctx))
}
