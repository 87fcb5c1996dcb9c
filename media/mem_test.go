package media

import (
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// BenchmarkHeapPerStream reports the live Go heap one call's media stream
// holds (issue 10: memory sized for the work): idle (between answers, after
// the caller's first packets, so the jitter buffer has its room), with
// a 6 s answer just queued (the model sends faster than real time), and
// with 1 s of it left to play. The UDP sockets are made before the first
// measurement, so only the stream is counted; two GCs before each reading
// empty the sync.Pools, so audio memory a stream gave back is not counted
// (a pooled chunk or ring serves the next call that plays):
//
//	go test -run '^$' -bench HeapPerStream -benchtime 1x ./media/
func BenchmarkHeapPerStream(b *testing.B) {
	const streams = 50
	answer := make([]byte, 6*8000) // 6 s of G.711 model audio
	for i := range answer {
		answer[i] = byte(i)
	}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 42}, Payload: make([]byte, 160)}
	from := netip.MustParseAddrPort("192.0.2.1:4000")
	var idle, queued, tail float64
	for b.Loop() {
		conns := make([]*net.UDPConn, streams)
		for i := range conns {
			conns[i] = listen(b)
		}
		var base runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&base)
		perStream := func() float64 {
			var m runtime.MemStats
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&m)
			return float64(int64(m.HeapAlloc)-int64(base.HeapAlloc)) / streams
		}
		live := make([]*Stream, streams)
		for i := range live {
			s, err := NewStream(StreamConfig{Conn: conns[i], Codec: CodecPCMU, DTMFPayloadType: 101, ModelFormat: ModelPCMU})
			if err != nil {
				b.Fatal(err)
			}
			live[i] = s
			for seq := range uint16(10) {
				pkt.SequenceNumber, pkt.Timestamp = seq, uint32(seq)*160
				raw, err := pkt.Marshal()
				if err != nil {
					b.Fatal(err)
				}
				s.processInbound(raw, from, time.Now())
			}
		}
		idle = perStream()
		for _, s := range live {
			s.Play("item", answer)
		}
		queued = perStream()
		frame := make([]byte, 200)
		for _, s := range live {
			for s.QueuedMs() > 1000 {
				s.nextOutboundPacket(frame)
			}
		}
		tail = perStream()
		for _, c := range conns {
			_ = c.Close()
		}
		runtime.KeepAlive(live)
	}
	b.ReportMetric(idle, "idle-heap-B/stream")
	b.ReportMetric(queued, "6s-queued-heap-B/stream")
	b.ReportMetric(tail, "1s-left-heap-B/stream")
}
