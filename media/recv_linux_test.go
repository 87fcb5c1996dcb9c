//go:build linux

package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// openForTick prepares s for receiveTick without the clock: the
// descriptor Run would use, and its end channel.
func openForTick(t testing.TB, s *Stream) {
	t.Helper()
	require.NoError(t, s.openReceive())
	s.rx.done = make(chan struct{})
	t.Cleanup(func() { _ = s.closeSocket() })
}

// TestReceiveTickDoesNotAllocate: the shard's receive path (recvmmsg into
// the shard's batch, source parsing, processInbound, the idle checks)
// allocates nothing per tick.
func TestReceiveTickDoesNotAllocate(t *testing.T) {
	sink := &copySink{}
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: 101, ModelFormat: ModelPCM24, Sink: sink,
		SymmetricRTP: true, MediaTimeout: time.Minute, UplinkChunk: 60 * time.Millisecond})
	openForTick(t, s)
	snd := newSender(t, s.LocalAddr(), 0)
	pkt := snd.packet(t, 0, 0, 0, make([]byte, 160))
	b := newRecvBatch()
	seq, ts := uint16(0), uint32(0)
	sendTwo := func() {
		for range 2 {
			seq++
			ts += 160
			pkt[2], pkt[3] = byte(seq>>8), byte(seq)
			pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
			if _, err := snd.conn.WriteToUDPAddrPort(pkt, snd.to); err != nil {
				panic(err)
			}
		}
	}
	now := time.Now()
	sendTwo()
	s.receiveTick(b, now) // latch, first use
	allocs := testing.AllocsPerRun(200, func() {
		sendTwo()
		now = now.Add(frameDur)
		s.receiveTick(b, now)
	})
	require.Zero(t, allocs)
	require.False(t, s.rx.end)
	// Loopback delivery is all but synchronous; allow a straggler.
	require.GreaterOrEqual(t, s.Stats().PacketsIn, uint64(2*201-8))
	require.Positive(t, sink.n)
}

// TestReceiveTickBounded: an RTP flood at one stream is taken at most
// maxReadsPerTick datagrams a tick; the rest waits for later ticks.
func TestReceiveTickBounded(t *testing.T) {
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU, Sink: &frameSink{}})
	openForTick(t, s)
	snd := newSender(t, s.LocalAddr(), 0)
	const flood = 2*maxReadsPerTick + 4
	for i := range flood {
		snd.send(t, snd.packet(t, uint16(i), uint32(160*i), 0, make([]byte, 160)))
	}
	b := newRecvBatch()
	var ticks int
	now := time.Now()
	deadline := time.Now().Add(wait)
	for prev := uint64(0); prev < flood && time.Now().Before(deadline); ticks++ {
		s.receiveTick(b, now)
		in := s.Stats().PacketsIn
		require.LessOrEqual(t, in-prev, uint64(maxReadsPerTick))
		prev = in
	}
	require.Equal(t, uint64(flood), s.Stats().PacketsIn)
	require.GreaterOrEqual(t, ticks, 3, "the flood takes at least three ticks")
}

// TestReceiveTickSources: the source address of each datagram is parsed
// from the raw sockaddr, IPv4 and IPv6, and latching sees it.
func TestReceiveTickSources(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "::1"} {
		t.Run(ip, func(t *testing.T) {
			lc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
			if err != nil {
				t.Skipf("no %s: %v", ip, err)
			}
			s := newStream(t, StreamConfig{Conn: lc, Codec: CodecPCMU, DTMFPayloadType: -1, Sink: &frameSink{}, SymmetricRTP: true})
			openForTick(t, s)
			snd := newSender(t, s.LocalAddr(), 0)
			sc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
			require.NoError(t, err)
			defer sc.Close()
			snd.conn = sc
			snd.send(t, snd.packet(t, 1, 160, 0, make([]byte, 160)))
			b := newRecvBatch()
			require.Eventually(t, func() bool { s.receiveTick(b, time.Now()); return s.Stats().PacketsIn == 1 }, wait, time.Millisecond)
			ev := waitEvent(t, s, EventRemoteLatched)
			require.Equal(t, addrOf(sc), ev.Addr)
		})
	}
}

// goroutineReceive is the receive path sipbridge used before the shards
// received: a goroutine per socket blocked in the read, a read deadline
// per packet (readLoop, kept for non-Linux systems in recv_other.go). It
// exists so BenchmarkReceive can compare the two in one process.
func goroutineReceive(ctx context.Context, s *Stream) {
	buf := make([]byte, readBufSize)
	stop := context.AfterFunc(ctx, func() { _ = s.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		now := time.Now()
		_ = s.conn.SetReadDeadline(now.Add(200 * time.Millisecond))
		if ctx.Err() != nil {
			return
		}
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.idle(time.Now())
				continue
			}
			return
		}
		s.processInbound(buf[:n], from, time.Now())
	}
}

// packetErr is packet without a test to fail.
func (r *rtpSender) packetErr(seq uint16, ts uint32, pt uint8, payload []byte) ([]byte, error) {
	h := r.hdr
	h.SequenceNumber, h.Timestamp, h.PayloadType = seq, ts, pt
	return (&rtp.Packet{Header: h, Payload: payload}).Marshal()
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countSink counts caller audio without keeping it.
type countSink struct{ n atomic.Int64 }

func (c *countSink) WriteCallerAudio(b []byte) { c.n.Add(int64(len(b))) }

// BenchmarkReceive receives 20 ms G.711 RTP for n streams (one packet per
// stream every 20 ms, spread over the frame in 5 ms steps as callers'
// phases are, sent by a goroutine on its own OS thread) for b.N frame
// periods, with a goroutine per socket or on the clock shards, and reports
// the process CPU time per packet sent minus the sender thread's own CPU
// time, and context switches per packet. send-only receives nothing: its
// figure is what the sending costs beyond the sender's thread (the runtime
// waking it), to subtract from the other two. CPU time, not wall time, is
// the figure to compare. In shard mode the shards' send work for the
// streams is included (they have no remote, so it is the tick alone); the
// per-socket mode has no shard running.
//
//	go test -run '^$' -bench Receive -benchtime 150x ./media/
func BenchmarkReceive(b *testing.B) {
	const subSlots = 4
	for _, n := range []int{100, 500} {
		for _, mode := range []string{"send-only", "goroutine-per-socket", "shard-polling"} {
			b.Run(fmt.Sprintf("%s/streams=%d", mode, n), func(b *testing.B) {
				sink := &countSink{}
				streams := make([]*Stream, n)
				for i := range streams {
					streams[i] = newStream(b, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU,
						Sink: sink, UplinkChunk: 60 * time.Millisecond})
				}
				src := listen(b)
				defer src.Close()
				pkt, err := (&rtpSender{hdr: newSender(b, netip.AddrPort{}, 0).hdr}).packetErr(0, 0, 0, make([]byte, 160))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				for _, s := range streams {
					wg.Add(1)
					switch mode {
					case "send-only":
						wg.Done()
					case "goroutine-per-socket":
						go func() { defer wg.Done(); goroutineReceive(ctx, s) }()
					default:
						go func() { defer wg.Done(); _ = s.Run(ctx) }()
					}
				}
				senderCPU := make(chan time.Duration, 1)
				start := make(chan struct{})
				b.ResetTimer()
				go func() {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					<-start
					c0 := threadCPU()
					t0 := time.Now()
					for k := range b.N {
						seq, ts := uint16(k), uint32(160*k)
						pkt[2], pkt[3] = byte(seq>>8), byte(seq)
						pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
						// Callers' packets are spread over the frame, not a
						// burst: a twentieth of the streams each millisecond.
						for j := range subSlots {
							time.Sleep(time.Until(t0.Add(time.Duration(k)*frameDur + time.Duration(j)*frameDur/subSlots)))
							for _, s := range streams[j*n/subSlots : (j+1)*n/subSlots] {
								_, _ = src.WriteToUDPAddrPort(pkt, s.LocalAddr())
							}
						}
					}
					senderCPU <- threadCPU() - c0
				}()
				cpu0, sw0 := cpuTime(), switches()
				close(start)
				sent := <-senderCPU
				time.Sleep(2 * frameDur) // the last packets are taken
				cpu, sw := cpuTime()-cpu0-sent, switches()-sw0
				b.StopTimer()
				cancel()
				wg.Wait()
				var in uint64
				for _, s := range streams {
					in += s.Stats().PacketsIn
					_ = s.conn.Close()
				}
				pkts := uint64(b.N) * uint64(n)
				b.ReportMetric(float64(cpu.Microseconds())/float64(pkts), "cpu-µs/packet")
				b.ReportMetric(float64(sw)/float64(pkts), "ctxsw/packet")
				b.ReportMetric(float64(in)/float64(pkts), "received/sent")
			})
		}
	}
}

// TestRunReleasesPort: the descriptor Run receives on is closed when it
// returns, so the port can be bound again (the port allocator reuses it).
func TestRunReleasesPort(t *testing.T) {
	for _, timeout := range []time.Duration{0, 100 * time.Millisecond} {
		st := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, Sink: &frameSink{}, MediaTimeout: timeout})
		local := st.LocalAddr()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- st.Run(ctx) }()
		if timeout == 0 {
			cancel()
		}
		select {
		case err := <-errc:
			if timeout == 0 {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrMediaTimeout)
			}
		case <-time.After(wait):
			t.Fatal("Run did not return")
		}
		cancel()
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(local))
		require.NoError(t, err, "port %v still bound", local)
		require.NoError(t, c.Close())
	}
}

// TestFloodBacklogDoesNotMoveTheLatch: a back-to-back flood from a second
// source queues ahead of the caller's next packets; the shard drains it
// over several ticks, here made seconds apart as on a starved machine. The
// latched caller was never quiet on the wire (the kernel's arrival times
// say so), so the flood stays foreign and our RTP does not move.
func TestFloodBacklogDoesNotMoveTheLatch(t *testing.T) {
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU, Sink: &frameSink{}, SymmetricRTP: true})
	openForTick(t, s)
	caller := newSender(t, s.LocalAddr(), 0)
	attacker := newSender(t, s.LocalAddr(), 0)
	b := newRecvBatch()
	now := time.Now()
	caller.send(t, caller.packet(t, 1, 160, 0, make([]byte, 160)))
	require.Eventually(t, func() bool { s.receiveTick(b, now); return s.Stats().PacketsIn == 1 }, wait, time.Millisecond)
	require.Equal(t, addrOf(caller.conn), waitEvent(t, s, EventRemoteLatched).Addr)

	const flood = 4 * maxReadsPerTick
	attacker.hdr.SSRC = caller.hdr.SSRC // a spoofer copies the caller's SSRC
	for i := range flood {
		attacker.send(t, attacker.packet(t, uint16(2+i), uint32(160*(2+i)), 0, make([]byte, 160)))
	}
	caller.send(t, caller.packet(t, 2, 320, 0, make([]byte, 160)))
	deadline := time.Now().Add(wait)
	for s.Stats().PacketsIn+s.Stats().Foreign < flood+2 && time.Now().Before(deadline) {
		now = now.Add(2 * relatchQuiet) // each tick long after the last by processing time
		s.receiveTick(b, now)
	}
	st := s.Stats()
	require.Equal(t, uint64(flood), st.Foreign, "every flood packet was foreign")
	require.Equal(t, uint64(1), st.Latches, "the latch never moved")
	require.Equal(t, addrOf(caller.conn), *s.remote.Load())
}
