//go:build linux

package media

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var chunkCaller = netip.MustParseAddrPort("192.0.2.7:4000")

// receiveGroups plays the shard's receives: each group of packets arrives
// 20 ms apart and is taken by one receive at the last packet's time
// (processInbound for each, then endBatch). It returns the time of the
// last packet.
func receiveGroups(t *testing.T, s *Stream, pkts [][]byte, groups []int, t0 time.Time) time.Time {
	t.Helper()
	i := 0
	now := t0
	for _, g := range groups {
		for range g {
			now = t0.Add(time.Duration(i) * frameDur)
			s.processInbound(pkts[i], chunkCaller, now)
			i++
		}
		require.NoError(t, s.endBatch(now))
	}
	return now
}

// TestUplinkChunkPerReceive: where the shard receives once per uplink chunk
// (recv_linux.go), each receive hands the sink what it released as one
// chunk, however many packets it got (a packet on the boundary between two
// receives makes one chunk shorter and the next longer, never a chunk that
// waits for the next receive), up to two chunks' worth; the audio is the
// same as frame by frame. The partial chunk goes once the caller is quiet,
// and silence fill makes one chunk per receive.
func TestUplinkChunkPerReceive(t *testing.T) {
	for _, codec := range []Codec{CodecPCMU, CodecG722} {
		for _, model := range []ModelFormat{ModelPCM24, ModelPCMA} {
			for _, chunk := range []time.Duration{40 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
				t.Run(fmt.Sprintf("codec=%d/model=%d/chunk=%v", codec, model, chunk), func(t *testing.T) {
					k := int(chunk / frameDur)
					t0 := time.Unix(1000, 0)
					ref, got := &frameSink{}, &frameSink{}
					rs := newStream(t, StreamConfig{Codec: codec, DTMFPayloadType: -1, ModelFormat: model, Sink: ref})
					defer rs.conn.Close()
					cs := newStream(t, StreamConfig{Codec: codec, DTMFPayloadType: -1, ModelFormat: model, Sink: got, UplinkChunk: chunk})
					defer cs.conn.Close()
					require.Equal(t, k, cs.rx.every, "received once per chunk")

					// Whole chunks, a boundary packet (k-1 then k+1), and a
					// late receive of more than two chunks' worth.
					groups := []int{k, k, k - 1, k + 1, k, 2*k + 1, k}
					total := 0
					for _, g := range groups {
						total += g
					}
					refPkts := tonePackets(t, rs, codec, total)
					pkts := tonePackets(t, cs, codec, total)
					refLast := receiveGroups(t, rs, refPkts, []int{total}, t0)

					var frames []int // frames released by each receive
					i, released := 0, 0
					for _, g := range groups {
						before := len(got.frames)
						receiveGroups(t, cs, pkts[i:i+g], []int{g}, t0.Add(time.Duration(i)*frameDur))
						i += g
						chunks := got.frames[before:]
						n := 0
						for _, c := range chunks {
							require.Zero(t, len(c)%model.FrameBytes())
							require.LessOrEqual(t, len(c), 2*k*model.FrameBytes(), "at most two chunks' worth at once")
							n += len(c) / model.FrameBytes()
						}
						if n <= 2*k {
							require.LessOrEqual(t, len(chunks), 1, "one chunk per receive")
						}
						frames = append(frames, n)
						released += n
					}
					// The jitter buffer may hold the newest packets until the
					// caller goes quiet; everything else went out at once.
					require.Equal(t, len(ref.frames), released, "released as frame by frame does, per receive %v", frames)
					last := t0.Add(time.Duration(total-1) * frameDur)
					require.Equal(t, refLast, last)

					n0 := len(got.frames)
					require.NoError(t, cs.endBatch(last.Add(flushAfter/2)))
					require.Len(t, got.frames, n0, "nothing before the caller is quiet")
					rs.idle(last.Add(flushAfter))
					require.NoError(t, cs.endBatch(last.Add(flushAfter)))
					require.Len(t, ref.frames, total)
					require.Equal(t, bytes.Join(ref.frames, nil), bytes.Join(got.frames, nil), "the same audio, all of it")

					// Silence fill: the frames due by each receive, one chunk.
					n := len(got.frames)
					require.NoError(t, cs.endBatch(last.Add(silenceFillAfter+time.Duration(k-1)*frameDur)))
					require.NoError(t, cs.endBatch(last.Add(silenceFillAfter+time.Duration(2*k-1)*frameDur)))
					require.Equal(t, uint64(2*k), cs.Stats().SilenceFilled)
					require.Len(t, got.frames, n+2)
					for _, c := range got.frames[n:] {
						require.Len(t, c, k*model.FrameBytes())
					}
				})
			}
		}
	}
}

// TestUplinkChunkOnHold: while on hold (SetSending(false)) what the caller
// said goes to the sink at the next receive, as it does anyway where a
// receive ends each chunk.
func TestUplinkChunkOnHold(t *testing.T) {
	sink := &frameSink{}
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU, Sink: sink,
		UplinkChunk: 100 * time.Millisecond, JitterDepth: 1})
	defer s.conn.Close()
	t0 := time.Unix(1000, 0)
	pkts := tonePackets(t, s, CodecPCMU, 7)
	last := t0
	for i, p := range pkts[:3] {
		last = t0.Add(time.Duration(i) * frameDur)
		s.processInbound(p, chunkCaller, last)
	}
	require.Empty(t, sink.frames, "a chunk waits for the receive's end")
	s.SetSending(false)
	s.idle(last.Add(time.Millisecond))
	require.Len(t, sink.frames, 1)
	n := len(sink.frames[0])
	require.True(t, n > 0 && n < 5*160 && n%160 == 0, "the frames released so far, %d bytes", n)
}
