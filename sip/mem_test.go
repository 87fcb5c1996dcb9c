package sip

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
)

// BenchmarkHeapPerLeg reports the live Go heap one call's SIP leg holds
// when it is made, before any request of the call is parsed into it
// (issue 10: memory sized for the work), after a GC:
//
//	go test -run '^$' -bench HeapPerLeg -benchtime 1x ./sip/
func BenchmarkHeapPerLeg(b *testing.B) {
	const legs = 100
	s := &Server{cfg: Config{AdvertiseHost: "192.0.2.10", UserAgent: "sipbridge-test"}, log: slog.New(slog.DiscardHandler), metrics: NewMetrics(nil)}
	var perLeg float64
	for b.Loop() {
		live := make([]*leg, legs)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range live {
			live[i] = newLeg(s, context.Background(), nil, nil, s.log)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perLeg = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / legs
		runtime.KeepAlive(live)
	}
	b.ReportMetric(perLeg, "heap-B/leg")
}
