package integration

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// answerLatencyMs has the caller speak one turn and returns, on the caller's
// received-audio timeline, the time from the end of their speech to the start
// of the answer in voiceHz. Measured at the RTP the caller receives, so it
// includes everything: VAD, the model, the bridge, any swap, the pacer.
func answerLatencyMs(tb testing.TB, ctx context.Context, call *phone.Call, voices ...float64) (int, float64) {
	tb.Helper()
	from := call.HeardMs()
	call.Speak(callerHz, time.Second, -20)
	for !call.SpeakingDone() {
		time.Sleep(2 * time.Millisecond)
	}
	spokeEnd := call.HeardMs() // the send and receive streams run on the same 20 ms clock
	at, voiceHz := waitAnswer(tb, call, from+900, 300, 30*time.Second, voices...)
	// Let the answer finish so the next turn starts from silence.
	time.Sleep(500 * time.Millisecond)
	for {
		spans := phone.ToneSpans(call.Heard(), voiceHz)
		if len(spans) > 0 && call.HeardMs()-spans[len(spans)-1].EndMs > 600 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return at - spokeEnd, voiceHz
}

// BenchmarkFailoverPause measures the failover pause defined in issue 3:
// when the failed turn's answer starts, minus when a healthy turn's answer
// starts, under the same simulated model latency, for a cold swap (dial +
// session.update + replay) and with a warm standby. Each iteration is one
// healthy turn and one failed turn on the same call; the pause is reported as
// the median and worst over the iterations.
//
//	go test -run '^$' -bench FailoverPause -benchtime 8x ./integration
func BenchmarkFailoverPause(b *testing.B) {
	for _, mode := range []string{"cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			delay := 150 * time.Millisecond
			east := startRegion(b, "east", sim.Config{VoiceHz: eastHz, ResponseDelay: delay, Responder: shortReply})
			west := startRegion(b, "west", sim.Config{VoiceHz: westHz, ResponseDelay: delay, Responder: shortReply})
			if mode == "warm" {
				east.Extra = []string{"warm_standby: true"}
				west.Extra = []string{"warm_standby: true"}
			}
			byHz := map[float64]*region{eastHz: east, westHz: west}
			other := map[float64]float64{eastHz: westHz, westHz: eastHz}
			br := startBridge(b, "log:\n  level: info\n", east, west)
			ph := newPhone(b, "udp")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var pauses, healthy, swapMs []int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target()})
				require.NoError(b, err)
				if mode == "warm" {
					waitFor(b, 10*time.Second, "warm standby", func() bool {
						return len(br.LogLines("warm standby ready", call.CallID())) > 0
					})
				}
				b.StartTimer()
				// New calls start in the healthiest region, which changes
				// after a failure: see which one answers, then break it.
				h, hz := answerLatencyMs(b, ctx, call, eastHz, westHz)
				byHz[hz].Sim.SetFaults(sim.Faults{FailBeforeAudio: 1})
				f, _ := answerLatencyMs(b, ctx, call, other[hz])
				b.StopTimer()
				byHz[hz].Sim.SetFaults(sim.Faults{})
				line := br.WaitLog(5*time.Second, "session swapped", call.CallID())
				ms, err := strconv.Atoi(logAttrs(line)["swap_ms"])
				require.NoError(b, err, line)
				swapMs = append(swapMs, ms)
				healthy = append(healthy, h)
				pauses = append(pauses, f-h)
				_ = call.Hangup(ctx)
				b.StartTimer()
			}
			b.StopTimer()
			slices.Sort(pauses)
			slices.Sort(healthy)
			slices.Sort(swapMs)
			b.ReportMetric(float64(swapMs[len(swapMs)/2]), "swap-median-ms")
			b.ReportMetric(float64(pauses[len(pauses)/2]), "pause-median-ms")
			b.ReportMetric(float64(pauses[len(pauses)-1]), "pause-max-ms")
			b.ReportMetric(float64(healthy[len(healthy)/2]), "healthy-latency-ms")
			b.Logf("%s: pauses %v ms; healthy answer latency %v ms; swap (failure → new session ready) %v ms", mode, pauses, healthy, swapMs)
		})
	}
}

func shortReply(tc sim.TurnContext) sim.Reply {
	return sim.Reply{Text: fmt.Sprintf("Answer number %d here.", tc.Turn)}
}
