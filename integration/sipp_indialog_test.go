package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
)

// SIPp (Debian sip-tester) scenarios for the in-dialog features, run against
// the binary; each asserts on SIPp's exit code (its <ereg check_it> checks
// fail the call) and on what the bridge and the simulated model saw.

// TestSIPpInDialog runs the in-dialog scenarios; each must pass SIPp's own
// checks and leave the log lines that show what the bridge did.
func TestSIPpInDialog(t *testing.T) {
	cases := []struct {
		name, extra, scenario string
		logs                  [][]string
	}{
		// re-INVITE a=sendonly is answered a=recvonly, and a=sendrecv
		// resumes; the call survives both and ends on SIPp's BYE.
		{"hold and resume", "", "uac_hold_resume.xml", [][]string{
			{"call on hold", "direction=recvonly"}, {"call resumed"}, {"call ended", "reason=caller_bye"}}},
		// SIPp asks for a 4 s session it refreshes itself, alternately with
		// UPDATE and re-INVITE, for longer than the interval; every 2xx
		// carries Session-Expires and the call ends on SIPp's BYE, not ours.
		{"session refresh by the caller", "sip:\n  min_se: 2s\n", "uac_session_refresh.xml", [][]string{
			{"call ended", "reason=caller_bye"}}},
		// SIPp asks for a 3 s session it never refreshes; the bridge sends
		// BYE with Reason 408 "Session timer expired", which SIPp checks.
		{"session expiry", "sip:\n  min_se: 2s\n", "uac_session_expiry.xml", [][]string{
			{"call ended", "reason=session_expired"}}},
		// SIPp supports timers and allows UPDATE but asks for no interval;
		// the bridge imposes session_expires, refreshes with UPDATE at half
		// of it, and SIPp answers each.
		{"session refresh by the bridge", "sip:\n  min_se: 2s\n  session_expires: 4s\n", "uac_uas_refresh.xml", [][]string{
			{"call ended", "reason=caller_bye"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
			br := startBridge(t, tc.extra, east)
			out, err := runSIPp(t, br.SIPAddr, tc.scenario)
			require.NoError(t, err, "sipp failed:\n%s", out)
			for _, l := range tc.logs {
				br.WaitLog(10*time.Second, l...)
			}
		})
	}
}

// TestSIPpDTMF: SIPp plays the Debian RFC 4733 capture of digit 1 and sends
// a SIP INFO dtmf-relay 5; both reach the model as notes.
func TestSIPpDTMF(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "", east)
	out, err := runSIPp(t, br.SIPAddr, "uac_dtmf.xml")
	require.NoError(t, err, "sipp failed:\n%s", out)
	rec, ok := lastSession(east)
	require.True(t, ok)
	tr := rec.Transcript()
	require.Contains(t, tr, "system: The caller pressed 1.", "RFC 4733 from the capture: %q", tr)
	require.Contains(t, tr, "system: The caller pressed 5.", "SIP INFO: %q", tr)
}
