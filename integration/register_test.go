package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
)

// lockedWriter collects a peer's output safely while it runs.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// registrationStatus is one entry of /status "registrations".
type registrationStatus struct {
	Name       string `json:"name"`
	Contact    string `json:"contact"`
	State      string `json:"state"`
	Up         bool   `json:"up"`
	LastStatus int    `json:"last_status"`
	LastError  string `json:"last_error"`
}

func adminRegistrations(t *testing.T, br *bridge) []registrationStatus {
	t.Helper()
	res, err := http.Get("http://" + br.Admin + "/status")
	require.NoError(t, err)
	defer res.Body.Close()
	var st struct {
		Registrations []registrationStatus `json:"registrations"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&st))
	return st.Registrations
}

// TestRegisterWithSIPpRegistrar: the binary registers with a SIPp registrar
// that challenges every REGISTER (401) and grants 4 s: digest answered,
// binding refreshed before it lapses, /status and the up gauge report it,
// and SIGTERM removes it (Expires: 0) before the process exits. SIPp's
// message trace shows the REGISTERs left from the bridge's SIP listener
// (Via sent-by port) with the advertised Contact.
func TestRegisterWithSIPpRegistrar(t *testing.T) {
	t.Parallel()
	bin := requirePeer(t, "sipp")
	const pwEnv, pw = "SIPBRIDGE_TEST_REGISTER_PASSWORD", "Reg-s3cret-pw"
	regPort := freePort(t)
	dir := t.TempDir()
	msgLog := filepath.Join(dir, "sipp_messages.log")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sipp := exec.CommandContext(ctx, bin, "-sf", filepath.Join("testdata", "sipp", "registrar_uas.xml"),
		"-i", "127.0.0.1", "-p", strconv.Itoa(regPort), "-m", "1", "-timeout", "60s", "-timeout_error", "-nostdin",
		"-trace_msg", "-message_file", msgLog, "-trace_err", "-error_file", filepath.Join(dir, "sipp_errors.log"),
		"-key", "reg_user", "bot-auth", "-key", "reg_pass", pw)
	sippOut := &lockedWriter{}
	sipp.Stdout, sipp.Stderr = sippOut, sippOut
	require.NoError(t, sipp.Start())
	sippDone := make(chan error, 1)
	go func() { sippDone <- sipp.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-sippDone
	})

	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridgeEnv(t, "sip:\n  register:\n    - name: sipp\n      registrar: \"sip:127.0.0.1:"+strconv.Itoa(regPort)+"\"\n"+
		"      aor: \"sip:bot@example.test\"\n      username: bot-auth\n      password_env: "+pwEnv+"\n      expires: 60s\n",
		[]string{pwEnv + "=" + pw}, east)

	waitFor(t, 30*time.Second, "registered in /status", func() bool {
		r := adminRegistrations(t, br)
		return len(r) == 1 && r[0].Up
	})
	r := adminRegistrations(t, br)[0]
	require.Equal(t, "sipp", r.Name)
	require.Equal(t, "registered", r.State)
	require.Equal(t, 200, r.LastStatus)
	require.Equal(t, "sip:bot@"+br.SIPAddr, r.Contact)
	require.Equal(t, 1.0, adminMetric(t, br, `sipbridge_sip_registration_up{registrar="sipp"}`))
	br.WaitLog(20*time.Second, "registration refreshed", "expires=4s")

	require.NoError(t, br.stop(syscall.SIGTERM, 30*time.Second))
	select {
	case err := <-sippDone:
		sippDone <- err
		require.NoError(t, err, "SIPp registrar scenario failed:\n%s", sippOut.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("SIPp did not finish (no unREGISTER?):\n%s", sippOut.String())
	}
	require.NotEmpty(t, br.LogLines("sip: unregistered", "registrar="))
	require.NotContains(t, br.Logs(), pw, "the password is never logged")

	raw, err := os.ReadFile(msgLog)
	require.NoError(t, err)
	msgs := string(raw)
	_, sipPort, _ := strings.Cut(br.SIPAddr, ":")
	require.Contains(t, msgs, "Contact: <sip:bot@"+br.SIPAddr+">", "Contact: advertised host and listener port")
	require.Contains(t, msgs, "SIP/2.0/UDP 127.0.0.1:"+sipPort+";", "Via sent-by: the REGISTER left from the SIP listener")
	require.Contains(t, msgs, "Expires: 0")
	require.GreaterOrEqual(t, strings.Count(msgs, "Authorization: Digest"), 3, "register, refresh and removal each authenticated")
}
