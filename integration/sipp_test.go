package integration

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
)

// runSIPp runs one SIPp scenario against the bridge (loopback only, bounded
// by -m and -timeout) and returns its combined output and error.
func runSIPp(t testing.TB, target, scenario string, extra ...string) (string, error) {
	t.Helper()
	bin := requirePeer(t, "sipp")
	host, port, ok := strings.Cut(target, ":")
	require.True(t, ok)
	mediaPort := freeSIPpMediaPort(t)
	args := []string{host + ":" + port, "-sf", filepath.Join("testdata", "sipp", scenario),
		"-i", "127.0.0.1", "-p", strconv.Itoa(freePort(t)), "-mi", "127.0.0.1", "-mp", strconv.Itoa(mediaPort),
		"-m", "1", "-l", "1", "-timeout", "40s", "-timeout_error", "-nostdin", "-trace_err",
		"-error_file", filepath.Join(t.TempDir(), "sipp_errors.log")}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = "."
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// freeSIPpMediaPort returns a UDP port p on 127.0.0.1 with p..p+3 free:
// SIPp binds its audio RTP, RTCP and video RTP (p+2) sockets there and
// exits when one is taken.
func freeSIPpMediaPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		p := freePort(t)
		var held []net.PacketConn
		ok := true
		for i := range 4 {
			c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				ok = false
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free SIPp media ports")
	return 0
}

// TestSIPpCallWithSpeech: SIPp places a call offering PCMA, streams the
// Debian speech capture; the simulator hears a caller turn and answers; SIPp
// hangs up and gets 200.
func TestSIPpCallWithSpeech(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "", east)
	out, err := runSIPp(t, br.SIPAddr, "uac_pcap_call.xml")
	require.NoError(t, err, "sipp failed:\n%s", out)

	rec, ok := lastSession(east)
	require.True(t, ok, "a realtime session was opened")
	require.GreaterOrEqual(t, rec.AppendedAudioMs, 6000, "SIPp's RTP reached the model")
	require.NotEmpty(t, rec.Turns, "the speech in the capture was heard as a caller turn")
	require.GreaterOrEqual(t, completedResponses(rec), 1, "the assistant answered: turns %+v responses %+v", rec.Turns, rec.Responses)
	line := br.WaitLog(10*time.Second, "call ended", "reason=caller_bye")
	a := logAttrs(line)
	out2, _ := strconv.Atoi(a["rtp_out"])
	require.Greater(t, out2, 400, "RTP flowed to SIPp for the whole call: %s", line)
	require.Contains(t, br.LogLines("call answered")[0], "codec=PCMA")
}

// TestSIPpCancelWhileRinging: SIPp cancels while the bridge rings (the AI
// region is slow): 200 to the CANCEL, 487 to the INVITE, no session left.
func TestSIPpCancelWhileRinging(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{Faults: sim.Faults{HandshakeDelay: 5 * time.Second}})
	br := startBridge(t, "", east)
	out, err := runSIPp(t, br.SIPAddr, "uac_cancel.xml")
	require.NoError(t, err, "sipp failed:\n%s", out)
	br.WaitLog(10*time.Second, "call ended", "reason=cancelled")
	waitFor(t, 10*time.Second, "the realtime session being opened to close", func() bool {
		s := east.Sim.Sessions()
		return len(s) <= 1 && (len(s) == 0 || !s[0].Ended.IsZero())
	})
}

// TestSIPpNoCommonCodec: an offer of only codecs the bridge does not run
// (Opus, G.729) gets 488, no session.
func TestSIPpNoCommonCodec(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{})
	br := startBridge(t, "", east)
	out, err := runSIPp(t, br.SIPAddr, "uac_488.xml")
	require.NoError(t, err, "sipp failed:\n%s", out)
	require.Empty(t, east.Sim.Sessions())
}

// TestSIPpMalformedRequests: SIPp sends broken requests; each gets the right
// error and the server keeps answering.
func TestSIPpMalformedRequests(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{})
	br := startBridge(t, "", east)
	out, err := runSIPp(t, br.SIPAddr, "uac_malformed.xml")
	require.NoError(t, err, "sipp failed:\n%s", out)
	require.Empty(t, east.Sim.Sessions())
}
