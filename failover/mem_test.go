package failover

import (
	"runtime"
	"testing"
)

// BenchmarkHeapPerConversation reports the live Go heap one call's
// conversation holds when it is made, before its first session (issue 10:
// memory sized for the work), after a GC:
//
//	go test -run '^$' -bench HeapPerConversation -benchtime 1x ./failover/
func BenchmarkHeapPerConversation(b *testing.B) {
	const convs = 100
	clock := newFakeClock()
	pool := NewPool(testRegions(), HealthConfig{Now: clock.Now}, nil, nil)
	dialer := newFakeDialer()
	m := NewMetrics(nil) // shared by the calls, as in the bridge
	var perConv float64
	for b.Loop() {
		live := make([]*Conversation, convs)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range live {
			live[i] = NewConversation(Params{CallID: "call-1", Config: Config{Session: testSessionConfig()}, Pool: pool, Dialer: dialer, Metrics: m, Now: clock.Now})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perConv = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / convs
		runtime.KeepAlive(live)
	}
	b.ReportMetric(perConv, "heap-B/conversation")
}
