package integration

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// toneWAV writes a mono PCM16 8 kHz WAV holding a tone, as an operator's
// prompt file.
func toneWAV(t *testing.T, hz float64, d time.Duration) string {
	t.Helper()
	n := int(d.Seconds() * 8000)
	data := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(int16(8000*math.Sin(2*math.Pi*hz*float64(i)/8000))))
	}
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(36+len(data)))
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1) // PCM
	b = binary.LittleEndian.AppendUint16(b, 1) // mono
	b = binary.LittleEndian.AppendUint32(b, 8000)
	b = binary.LittleEndian.AppendUint32(b, 16000)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	p := filepath.Join(t.TempDir(), "prompt.wav")
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

const (
	fillerHz  = 1000.0
	apologyHz = 1200.0
)

// TestFillerPromptDuringALongSwap: east stalls (no response.created), the
// caller's wait passes filler_after, so the configured filler WAV plays; then
// west answers the turn. Hedging, which would answer the stalled turn
// before any swap (TestHedgeSlowAnswer), is off: the filler plays in swaps.
func TestFillerPromptDuringALongSwap(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	filler := toneWAV(t, fillerHz, 600*time.Millisecond)
	br := startBridge(t, "failover:\n  stall_no_response: 1500ms\n  hedge:\n    enabled: false\n  filler_after: 700ms\n  filler_file: "+filler+"\n", east, west)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	turn(t, ctx, call, eastHz, 20*time.Second)
	time.Sleep(2 * time.Second)
	east.Sim.SetFaults(sim.Faults{StallNoResponse: 1})
	from := call.HeardMs()
	call.Speak(callerHz, time.Second, -20)
	fillerAt, _ := waitAnswer(t, call, from+900, 400, 20*time.Second, fillerHz)
	answerAt, _ := waitAnswer(t, call, from+900, 400, 20*time.Second, westHz)
	require.Less(t, fillerAt, answerAt, "the filler plays during the gap, before the answer")
	require.NoError(t, call.Hangup(ctx))
}

// TestApologyBeforeGivingUp: every region fails; the caller hears the
// configured apology WAV, then the bridge hangs up (no transfer configured).
func TestApologyBeforeGivingUp(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "west", sim.Config{VoiceHz: westHz})
	apology := toneWAV(t, apologyHz, 800*time.Millisecond)
	br := startBridge(t, "failover:\n  max_swaps_in_row: 2\n  apology_file: "+apology+"\n", east, west)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{})
	turn(t, ctx, call, eastHz, 20*time.Second)
	time.Sleep(time.Second)
	east.Sim.SetFaults(sim.Faults{FailureRate: 1})
	west.Sim.SetFaults(sim.Faults{RefuseStatus: 503})
	from := call.HeardMs()
	call.Speak(callerHz, time.Second, -20)
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("the bridge did not hang up after giving up")
	}
	require.Equal(t, "bye-received", call.EndReason())
	spans := phone.ToneSpans(call.Heard(), apologyHz)
	heard := 0
	for _, s := range spans {
		if s.StartMs >= from {
			heard += s.EndMs - s.StartMs
		}
	}
	require.GreaterOrEqual(t, heard, 600, "the apology played out before the BYE (spans %v)", spans)
	br.WaitLog(5*time.Second, "call ended", "reason=ai_failed")
}
