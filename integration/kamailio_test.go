package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// startKamailio runs configs/kamailio/dispatcher.cfg on a loopback port with
// the given dispatcher list, in the foreground, and returns its address.
func startKamailio(t *testing.T, dsList string) string {
	t.Helper()
	bin := requirePeer(t, "kamailio")
	port := freePort(t)
	dir := t.TempDir()
	list := filepath.Join(dir, "dispatcher.list")
	require.NoError(t, os.WriteFile(list, []byte(dsList), 0o600))
	cfg, err := filepath.Abs(filepath.Join("..", "configs", "kamailio", "dispatcher.cfg"))
	require.NoError(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-DD", "-E", "-Y", dir, "-f", cfg, "-A", "LISTEN=udp:" + addr, "-A", `DS_LIST="` + list + `"`}
	check, err := exec.Command(bin, append([]string{"-c"}, args...)...).CombinedOutput()
	require.NoError(t, err, "kamailio -c: %s", check)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	logs := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("kamailio log:\n%s", logs.String())
		}
	})
	// Ready once it answers an OPTIONS (the cfg answers out-of-dialog
	// OPTIONS without a user itself).
	ph := newPhone(t, "udp")
	waitFor(t, 20*time.Second, "kamailio up", func() bool {
		octx, ocancel := context.WithTimeout(context.Background(), time.Second)
		defer ocancel()
		var uri sip.Uri
		if err := sip.ParseUri("sip:"+addr, &uri); err != nil {
			return false
		}
		res, err := ph.Client().Do(octx, sip.NewRequest(sip.OPTIONS, uri))
		return err == nil && res.StatusCode == 200
	})
	return addr
}

// TestKamailioDispatcherDrainRoutesAway: Kamailio's dispatcher
// (configs/kamailio/dispatcher.cfg) spreads calls over two sipbridge
// instances. One is told to drain (SIGTERM) while it still carries a call:
// it answers new INVITEs with 503, and Kamailio's failure route sends them
// to the other instance, so callers are still answered; the drained
// instance's call goes on until the caller hangs up.
func TestKamailioDispatcherDrainRoutesAway(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	a := startBridge(t, "", east)
	b := startBridge(t, "", west)
	kam := startKamailio(t, fmt.Sprintf("1 sip:%s 0 0 duid=a\n1 sip:%s 0 0 duid=b\n", a.SIPAddr, b.SIPAddr))
	target := "sip:bot@" + kam

	answeredBy := func(call *phone.Call) *bridge {
		t.Helper()
		var by *bridge
		waitFor(t, 20*time.Second, "an instance logs the call answered", func() bool {
			for _, br := range []*bridge{a, b} {
				if len(br.LogLines("call answered", call.CallID())) > 0 {
					by = br
					return true
				}
			}
			return false
		})
		return by
	}

	first, ctx := dial(t, a, 90*time.Second, phone.CallOptions{Target: target})
	drained := answeredBy(first)
	other := b
	voice := westHz
	if drained == b {
		other, voice = a, eastHz
	}

	// Drain the instance carrying the first call: it stays up for it.
	require.NoError(t, drained.cmd.Process.Signal(syscall.SIGTERM))
	drained.WaitLog(10*time.Second, "SIGTERM: draining")

	for i := range 2 {
		call, cctx := dial(t, other, 60*time.Second, phone.CallOptions{Target: target})
		require.Same(t, other, answeredBy(call), "call %d is answered by the instance still in service", i)
		call.Speak(callerHz, 1200*time.Millisecond, -20)
		_, err := call.WaitTone(cctx, voice, 0, 600*time.Millisecond, 20*time.Second)
		require.NoError(t, err, "call %d hears the other instance's assistant", i)
		require.NoError(t, call.Hangup(cctx))
	}

	// The drained instance kept its call, and exits once it ends.
	select {
	case <-drained.exited:
		t.Fatal("the draining instance exited with a call up")
	default:
	}
	require.NoError(t, first.Hangup(ctx))
	select {
	case <-drained.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the drained instance did not exit after its last call")
	}
}
