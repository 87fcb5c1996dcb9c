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

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// kamailioRegistrarCfg is a minimal registrar (in-memory usrloc) that
// challenges REGISTERs with a plain-text password (auth pv_auth_check, no
// database) and routes INVITEs for a registered user to its contact.
const kamailioRegistrarCfg = `#!KAMAILIO
debug=2
log_stderror=yes
children=2
listen=udp:%s
auto_aliases=no

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"

modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 10)

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (is_method("REGISTER")) {
		if (!pv_auth_check("$fd", "%s", "0", "1")) {
			auth_challenge("$fd", "0");
			exit;
		}
		consume_credentials();
		if (!save("location")) {
			sl_reply_error();
		}
		exit;
	}
	if (has_totag() || is_method("CANCEL|ACK")) {
		t_relay();
		exit;
	}
	if (is_method("INVITE")) {
		if (!lookup("location")) {
			sl_send_reply("404", "Not Registered");
			exit;
		}
		xlog("L_INFO", "INVITE $ru routed to the registered contact\n");
		t_relay();
		exit;
	}
	sl_send_reply("405", "Method Not Allowed");
}
`

// TestRegisterWithKamailioThenCallTheAOR: the binary registers with a real
// registrar (Kamailio: digest, usrloc); an INVITE for the AOR sent to
// Kamailio is routed to the registered contact and the caller talks to the
// assistant; after SIGTERM the binding is gone (404).
func TestRegisterWithKamailioThenCallTheAOR(t *testing.T) {
	t.Parallel()
	bin := requirePeer(t, "kamailio")
	const pwEnv, pw = "SIPBRIDGE_TEST_KAMAILIO_PASSWORD", "kam-Reg-pw-77"
	kam := "127.0.0.1:" + strconv.Itoa(freePort(t))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kamailio.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(kamailioRegistrarCfg, kam, pw)), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-DD", "-E", "-Y", dir, "-f", cfg)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	kamLog := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = kamLog, kamLog
	require.NoError(t, cmd.Start())
	kamDone := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(kamDone)
	}()
	t.Cleanup(func() {
		cancel()
		<-kamDone
		if t.Failed() {
			t.Logf("kamailio log:\n%s", kamLog.String())
		}
	})

	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridgeEnv(t, "sip:\n  register:\n    - name: kamailio\n      registrar: \"sip:"+kam+"\"\n"+
		"      aor: \"sip:bot@"+kam+"\"\n      password_env: "+pwEnv+"\n      expires: 60s\n",
		[]string{pwEnv + "=" + pw}, east)
	waitFor(t, 30*time.Second, "registered with kamailio", func() bool {
		r := adminRegistrations(t, br)
		return len(r) == 1 && r[0].Up
	})

	// A call to the AOR, through the registrar, reaches the bridge.
	call, cctx := dial(t, br, 60*time.Second, phone.CallOptions{Target: "sip:bot@" + kam})
	br.WaitLog(10*time.Second, "call answered", call.CallID())
	call.Speak(callerHz, 1200*time.Millisecond, -20)
	_, err := call.WaitTone(cctx, eastHz, 0, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err, "the caller talks to the assistant behind the registered contact")
	require.NoError(t, call.Hangup(cctx))
	br.WaitLog(10*time.Second, "call ended", call.CallID())

	// SIGTERM removes the binding: the AOR is no longer routable.
	require.NoError(t, br.stop(syscall.SIGTERM, 30*time.Second))
	require.NotEmpty(t, br.LogLines("sip: unregistered"))
	ph := newPhone(t, "udp")
	octx, ocancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ocancel()
	_, err = ph.Call(octx, phone.CallOptions{Target: "sip:bot@" + kam})
	rejectedWith(t, err, 404)
	require.NotContains(t, br.Logs(), pw, "the password is never logged")
}
