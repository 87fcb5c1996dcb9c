package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// runBinary runs a sipbridge subcommand to completion and returns its exit
// code and output.
func runBinary(t testing.TB, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "sipbridge %v: %v\n%s%s", args, err, out.String(), errOut.String())
		code = ee.ExitCode()
	}
	return code, out.String(), errOut.String()
}

// TestCallCommandHearsEmbeddedDefault: the README's quick start. The server
// runs with no -config (the embedded default: SIP on 127.0.0.1:5060, admin
// on 9090, two simulated regions); `sipbridge call sip:bot@127.0.0.1` speaks
// the bundled question, hears the answer, reports the region and writes what
// it heard, in which the simulated region's voice is found.
func TestCallCommandHearsEmbeddedDefault(t *testing.T) {
	br := startBridgeFile(t, "", os.Environ(), "127.0.0.1:5060", "127.0.0.1:9090")
	rec := filepath.Join(t.TempDir(), "answer.wav")
	code, out, errOut := runBinary(t, 90*time.Second, "call", "-rec", rec, "sip:bot@127.0.0.1")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, out, "answered: 200 in ")
	require.Contains(t, out, "saying: the bundled question")
	require.Contains(t, out, "answer: began ")
	require.Regexp(t, `region: sim-(east|west) \(\d+ responses\)`, out)
	require.Contains(t, out, "result: OK")
	br.WaitLog(5*time.Second, "call ended", "reason=caller_bye")

	b, err := os.ReadFile(rec)
	require.NoError(t, err)
	heard := wavSamples8k(t, b)
	var spans []phone.Span
	for _, hz := range []float64{eastHz, westHz} {
		spans = append(spans, phone.ToneSpans(heard, hz)...)
	}
	var total int
	for _, s := range spans {
		total += s.EndMs - s.StartMs
	}
	require.Greater(t, total, 1000, "the recording holds the simulated voice (spans %v)", spans)
}

// TestCallCommandFailures: exit 1 when nobody answers or the call is
// refused.
func TestCallCommandFailures(t *testing.T) {
	t.Parallel()
	t.Run("nothing listening", func(t *testing.T) {
		port := freePort(t)
		code, out, _ := runBinary(t, 60*time.Second, "call", "-admin", "off", "-wait", "3s", "sip:bot@127.0.0.1:"+strconv.Itoa(port))
		require.Equal(t, 1, code, out)
		require.Contains(t, out, "not answered")
	})
	t.Run("refused", func(t *testing.T) {
		// No region can take the call: every key is wrong, so the bridge
		// refuses the INVITE (answer-when-ready) with 503.
		east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
		east.Key = "wrong"
		br := startBridge(t, "", east)
		code, out, _ := runBinary(t, 60*time.Second, "call", "-admin", br.Admin, "sip:bot@"+br.SIPAddr)
		require.Equal(t, 1, code, out)
		require.Contains(t, out, "rejected: 503")
	})
}

// wavSamples8k decodes the mono 16-bit 8 kHz WAV `call -rec` writes.
func wavSamples8k(t testing.TB, b []byte) []int16 {
	t.Helper()
	require.GreaterOrEqual(t, len(b), 44)
	require.Equal(t, "RIFF", string(b[0:4]))
	require.Equal(t, "WAVE", string(b[8:12]))
	require.Equal(t, []byte{1, 0, 1, 0, 0x40, 0x1f, 0, 0}, b[20:28], "PCM, mono, 8000 Hz")
	require.Equal(t, "data", string(b[36:40]))
	s := make([]int16, (len(b)-44)/2)
	for i := range s {
		s[i] = int16(uint16(b[44+2*i]) | uint16(b[45+2*i])<<8)
	}
	return s
}
