//go:build unix

package media

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// perCallPacer is the pacing sipbridge used before the shared clock: one
// goroutine and one timer per call, absolute deadlines, the same catch-up
// rule. It exists only so BenchmarkPacing can compare the two in one
// process under the same load.
func perCallPacer(ctx context.Context, s *Stream, h *latencyHist) {
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for tick := int64(0); ; tick++ {
		slot := start.Add(time.Duration(tick) * frameDur)
		if d := time.Until(slot); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if behind := int64(now.Sub(start)/frameDur) - tick; behind > maxCatchUp {
			tick += behind
			slot = start.Add(time.Duration(tick) * frameDur)
			s.skipFrames(behind)
		}
		if s.sendFrame(now) {
			h.observe(time.Since(slot))
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func switches() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Nvcsw + ru.Nivcsw
}

// BenchmarkPacing paces n streams for b.N frame periods (20 ms each) to a
// loopback sink, with a timer and goroutine per call or on the shared
// clock, and reports the process CPU time per packet sent, context
// switches per packet and the send lateness p99. CPU time, not wall
// time, is the figure to compare: it is what other load on the machine
// disturbs least.
//
//	go test -run '^$' -bench Pacing -benchtime 150x ./media/
func BenchmarkPacing(b *testing.B) {
	for _, n := range []int{100, 500} {
		for _, mode := range []string{"per-call-timers", "shared-clock"} {
			b.Run(fmt.Sprintf("%s/calls=%d", mode, n), func(b *testing.B) {
				sink := listen(b)
				defer sink.Close()
				_ = sink.SetReadBuffer(4 << 20)
				streams := make([]*Stream, n)
				for i := range streams {
					streams[i] = newStream(b, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, Remote: addrOf(sink)})
				}
				defer func() {
					for _, s := range streams {
						_ = s.conn.Close()
					}
				}()
				// The sink is drained so the kernel's receive work is
				// part of what is measured, as with a real caller.
				go func() {
					buf := make([]byte, 1500)
					for {
						if _, _, err := sink.ReadFromUDPAddrPort(buf); err != nil {
							return
						}
					}
				}()
				var hist latencyHist
				l0 := SendLateness()
				b.ResetTimer()
				cpu0, sw0 := cpuTime(), switches()
				switch mode {
				case "per-call-timers":
					ctx, cancel := context.WithCancel(context.Background())
					var wg sync.WaitGroup
					for _, s := range streams {
						wg.Add(1)
						go func() { defer wg.Done(); perCallPacer(ctx, s, &hist) }()
					}
					time.Sleep(time.Duration(b.N) * frameDur)
					cancel()
					wg.Wait()
				default:
					shards := make([]*clockShard, n)
					for i, s := range streams {
						shards[i] = sharedClock.register(s)
					}
					time.Sleep(time.Duration(b.N) * frameDur)
					for i, s := range streams {
						shards[i].remove(s)
					}
				}
				cpu, sw := cpuTime()-cpu0, switches()-sw0
				b.StopTimer()
				var sent uint64
				for _, s := range streams {
					sent += s.Stats().PacketsOut
				}
				lat := hist.snapshot()
				if mode == "shared-clock" {
					l1 := SendLateness()
					for i := range lat.Counts {
						lat.Counts[i] = l1.Counts[i] - l0.Counts[i]
					}
				}
				b.ReportMetric(float64(cpu.Microseconds())/float64(max(sent, 1)), "cpu-µs/packet")
				b.ReportMetric(float64(sw)/float64(max(sent, 1)), "ctxsw/packet")
				b.ReportMetric(float64(lat.Quantile(0.99).Microseconds()), "p99-late-µs")
				b.ReportMetric(float64(sent)/float64(uint64(b.N)*uint64(n)), "sent/slot")
			})
		}
	}
}
