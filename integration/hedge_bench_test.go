package integration

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// BenchmarkHedgeSpikes measures issue 7's hedging targets through the
// binary on the minimal two-region config (no warm standby, no tuning):
// one call, b.N caller turns, every 20th answer (5 %) made late in the
// region answering it (slowAnswerFault). Each turn's wait is measured at
// the caller's RTP, from the end of their speech to the start of the
// answer. Modes: healthy (no spikes), spikes (hedging on, the default) and
// spikes-nohedge (hedging off: the stall watchdog, as before hedging).
// Reported: p50/p99 turn wait, the spike turns' extra wait over the
// healthy median, and the hedge rate (hedges per turn), which bounds the
// extra tokens: a hedge costs at most one more answer over the same
// context, its loser cut at the winner's first audio.
//
//	go test -run '^$' -bench HedgeSpikes -benchtime 40x -timeout 30m ./integration
func BenchmarkHedgeSpikes(b *testing.B) {
	for _, mode := range []struct {
		name          string
		spikes, hedge bool
	}{{"healthy", false, true}, {"spikes", true, true}, {"spikes-nohedge", true, false}} {
		b.Run(mode.name, func(b *testing.B) {
			delay := 150 * time.Millisecond
			east := startRegion(b, "east", sim.Config{VoiceHz: eastHz, ResponseDelay: delay, Responder: shortReply})
			west := startRegion(b, "west", sim.Config{VoiceHz: westHz, ResponseDelay: delay, Responder: shortReply})
			byHz := map[float64]*region{eastHz: east, westHz: west}
			extra := "log:\n  level: info\n"
			if !mode.hedge {
				extra += "failover:\n  hedge:\n    enabled: false\n"
			}
			br := startBridge(b, extra, east, west)
			ph := newPhone(b, "udp")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			call, err := ph.Call(ctx, phone.CallOptions{Target: br.Target()})
			require.NoError(b, err)
			var waits, spikeWaits []int
			lastHz := eastHz
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				spike := mode.spikes && i%20 == 10
				if spike {
					byHz[lastHz].Sim.SetFaults(slowAnswerFault())
				}
				w, hz := answerLatencyMs(b, ctx, call, eastHz, westHz)
				if spike {
					byHz[lastHz].Sim.SetFaults(sim.Faults{})
					spikeWaits = append(spikeWaits, w)
				} else {
					waits = append(waits, w)
				}
				lastHz = hz
			}
			b.StopTimer()
			hedges := adminMetric(b, br, `sipbridge_failover_hedges_total{region="east",to="west"}`) +
				adminMetric(b, br, `sipbridge_failover_hedges_total{region="west",to="east"}`)
			cancelledTok := adminMetric(b, br, "sipbridge_failover_hedge_cancelled_tokens_total")
			_ = call.Hangup(ctx)
			all := slices.Concat(waits, spikeWaits)
			slices.Sort(all)
			slices.Sort(waits)
			healthyMedian := waits[len(waits)/2]
			b.ReportMetric(float64(all[len(all)/2]), "p50-wait-ms")
			b.ReportMetric(float64(all[(len(all)*99+99)/100-1]), "p99-wait-ms")
			b.ReportMetric(100*hedges/float64(len(all)), "hedge-rate-%")
			b.ReportMetric(cancelledTok/float64(len(all)), "cancelled-tok/turn")
			if len(spikeWaits) > 0 {
				worst := slices.Max(spikeWaits)
				b.ReportMetric(float64(worst-healthyMedian), "spike-extra-max-ms")
			}
			b.Logf("%s: %d turns, waits %v ms, spike turns %v ms, healthy median %d ms, hedges %.0f, cancelled tokens %.0f (estimated)",
				mode.name, len(all), all, spikeWaits, healthyMedian, hedges, cancelledTok)
		})
	}
}
