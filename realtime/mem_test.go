package realtime

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

// BenchmarkHeapPerConn reports the live Go heap one idle, handshaken
// session costs (issue 10: memory sized for the work). It dials conns
// sessions to an in-process server, and reports the growth of the live heap
// per session after a GC. The figure includes the in-process server's end
// of each WebSocket, the same before and after any change to Conn:
//
//	go test -run '^$' -bench HeapPerConn -benchtime 1x ./realtime/
func BenchmarkHeapPerConn(b *testing.B) {
	const conns = 50
	fs := newFakeServer(b, func(p *peer) {
		if _, ok := p.handshake(); ok {
			_ = p.drain()
		}
	})
	url := wsURL(fs.srv, "/v1/realtime")
	dialOne := func() *Conn {
		c, err := dial(context.Background(), DialConfig{Region: "test", URL: url, APIKey: testKey, DialTimeout: 10 * time.Second},
			testConfig(), slog.New(slog.DiscardHandler), dialOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for range 3 { // session.created, conversation.created, session.updated
			<-c.Events()
		}
		return c
	}
	// Warm up: the first dial creates the transport and the server's pools.
	_ = dialOne().Close()

	var perConn float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		live := make([]*Conn, 0, conns)
		for range conns {
			live = append(live, dialOne())
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perConn = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / conns
		for _, c := range live {
			_ = c.Close()
		}
	}
	b.ReportMetric(perConn, "heap-B/conn")
}
