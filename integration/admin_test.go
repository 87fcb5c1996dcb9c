package integration

import (
	"context"
	"io"
	"net"
	"net/http"
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

// probe GETs an admin path and returns the status and body.
func probe(t testing.TB, br *bridge, path string) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + br.Admin + path)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

// requireProbes checks /livez, /readyz, /healthz and both forms of
// `sipbridge health` against one state.
func requireProbes(t testing.TB, br *bridge, ready bool, why string) {
	t.Helper()
	code, _ := probe(t, br, "/livez")
	require.Equal(t, http.StatusOK, code, "/livez")
	want := http.StatusOK
	if !ready {
		want = http.StatusServiceUnavailable
	}
	for _, p := range []string{"/readyz", "/healthz"} {
		code, body := probe(t, br, p)
		require.Equal(t, want, code, p)
		require.Contains(t, body, why, p)
	}
	exit, out, errOut := runBinary(t, 10*time.Second, "health", "-addr", br.Admin)
	require.Equal(t, 0, exit, "health (liveness): %s%s", out, errOut)
	exit, out, errOut = runBinary(t, 10*time.Second, "health", "-ready", "-addr", br.Admin)
	if ready {
		require.Equal(t, 0, exit, "health -ready: %s%s", out, errOut)
	} else {
		require.Equal(t, 1, exit, "health -ready: %s%s", out, errOut)
		require.Contains(t, errOut, why)
	}
}

// TestReadinessTransitions walks an instance through the states a load
// balancer and an orchestrator must tell apart: idle (ready), full at
// max_calls (alive, not ready, OPTIONS 503), a slot free again (ready),
// draining with a call up (alive, not ready), and gone (health fails).
func TestReadinessTransitions(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "sip:\n  max_calls: 1\n", east)
	_, portStr, err := net.SplitHostPort(br.SIPAddr)
	require.NoError(t, err)
	port, err := strconv.Atoi(portStr)
	require.NoError(t, err)
	options := func() int {
		ph := newPhone(t, "udp")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := ph.Client().Do(ctx, sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", User: "bot", Host: "127.0.0.1", Port: port}))
		require.NoError(t, err)
		return res.StatusCode
	}

	requireProbes(t, br, true, "ok")
	require.Equal(t, 200, options())
	_, metrics := probe(t, br, "/metrics")
	require.Contains(t, metrics, "\nsipbridge_ready 1\n")

	call, ctx := dial(t, br, time.Minute, phone.CallOptions{})
	requireProbes(t, br, false, "at max_calls (1 of 1 active)")
	_, metrics = probe(t, br, "/metrics")
	require.Contains(t, metrics, "\nsipbridge_max_calls 1\n")
	require.Contains(t, metrics, "\nsipbridge_ready 0\n")
	require.Equal(t, 503, options(), "a full instance answers OPTIONS 503")
	exit, out, _ := runBinary(t, 30*time.Second, "call", "-admin", "off", "sip:bot@"+br.SIPAddr)
	require.Equal(t, 1, exit, out)
	require.Contains(t, out, "rejected: 503")

	require.NoError(t, call.Hangup(ctx))
	waitFor(t, 10*time.Second, "ready after the call ended", func() bool {
		code, _ := probe(t, br, "/readyz")
		return code == http.StatusOK
	})
	requireProbes(t, br, true, "ok")

	call, ctx = dial(t, br, time.Minute, phone.CallOptions{})
	require.NoError(t, br.cmd.Process.Signal(syscall.SIGTERM))
	br.WaitLog(10*time.Second, "SIGTERM: draining")
	requireProbes(t, br, false, "draining")
	require.Equal(t, 503, options())

	require.NoError(t, call.Hangup(ctx))
	select {
	case <-br.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit once drained")
	}
	exit, _, errOut := runBinary(t, 10*time.Second, "health", "-addr", br.Admin)
	require.Equal(t, 1, exit, "health of a stopped server")
	require.Contains(t, errOut, "connection refused")
}

// TestNotReadyWithoutUsableRegion: once every region's breaker is open (here
// the only region refuses our key, which opens it at once), /readyz says so
// while /livez stays up.
func TestNotReadyWithoutUsableRegion(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	east.Key = "wrong"
	br := startBridge(t, "", east)
	requireProbes(t, br, true, "ok")
	exit, out, _ := runBinary(t, 30*time.Second, "call", "-admin", "off", "sip:bot@"+br.SIPAddr)
	require.Equal(t, 1, exit, out)
	requireProbes(t, br, false, "no usable region")
}
