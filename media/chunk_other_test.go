//go:build !linux

package media

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Where a reader goroutine receives (not Linux), the stream hands the sink
// a chunk each time it holds the uplink chunk's frames.

// feed sends packets 20 ms apart (timestamps of the test clock) through the
// receive path of an unstarted stream: a tone of the codec's rate.
func feed(t *testing.T, s *Stream, codec Codec, packets int, t0 time.Time) time.Time {
	t.Helper()
	from := netip.MustParseAddrPort("192.0.2.7:4000")
	now := t0
	for i, p := range tonePackets(t, s, codec, packets) {
		now = t0.Add(time.Duration(i) * frameDur)
		s.processInbound(p, from, now)
	}
	return now
}

// TestUplinkChunks: with UplinkChunk the sink gets the same audio as frame
// by frame, in whole chunks while RTP flows; the partial chunk goes out
// once the caller has been quiet for flushAfter (with the jitter buffer's
// release), and silence fill then makes whole chunks again.
func TestUplinkChunks(t *testing.T) {
	for _, codec := range []Codec{CodecPCMU, CodecG722} {
		for _, model := range []ModelFormat{ModelPCM24, ModelPCMA} {
			for _, chunk := range []time.Duration{40 * time.Millisecond, 60 * time.Millisecond, 200 * time.Millisecond} {
				t.Run(fmt.Sprintf("codec=%d/model=%d/chunk=%v", codec, model, chunk), func(t *testing.T) {
					const packets = 25
					t0 := time.Unix(1000, 0)
					ref, got := &frameSink{}, &frameSink{}
					rs := newStream(t, StreamConfig{Codec: codec, DTMFPayloadType: -1, ModelFormat: model, Sink: ref})
					defer rs.conn.Close()
					cs := newStream(t, StreamConfig{Codec: codec, DTMFPayloadType: -1, ModelFormat: model, Sink: got, UplinkChunk: chunk})
					defer cs.conn.Close()
					last := feed(t, rs, codec, packets, t0)
					feed(t, cs, codec, packets, t0)

					k := int(chunk / frameDur)
					// The jitter buffer holds the newest packets until the
					// caller goes quiet; of those released, whole chunks only.
					released := len(ref.frames)
					require.Len(t, got.frames, released/k)
					for _, c := range got.frames {
						require.Len(t, c, k*model.FrameBytes())
					}
					cs.idle(last.Add(flushAfter / 2))
					require.Len(t, got.frames, released/k, "nothing before the caller is quiet")

					rs.idle(last.Add(flushAfter))
					cs.idle(last.Add(flushAfter))
					require.Len(t, ref.frames, packets)
					require.Equal(t, bytes.Join(ref.frames, nil), bytes.Join(got.frames, nil), "the same audio, all of it")
					n := len(got.frames)
					cs.idle(last.Add(flushAfter + time.Millisecond))
					require.Len(t, got.frames, n, "the partial chunk goes once")

					// Silence fill: one frame per 20 ms from silenceFillAfter, in
					// whole chunks.
					for i := range 2 * k {
						cs.idle(last.Add(silenceFillAfter + time.Duration(i)*frameDur))
					}
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

// TestUplinkChunkOnHold: while on hold (SetSending(false)) the partial
// chunk goes to the sink on the next tick instead of waiting for the rest.
func TestUplinkChunkOnHold(t *testing.T) {
	sink := &frameSink{}
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU, Sink: sink,
		UplinkChunk: 100 * time.Millisecond, JitterDepth: 1})
	defer s.conn.Close()
	t0 := time.Unix(1000, 0)
	last := feed(t, s, CodecPCMU, 7, t0)
	s.idle(last.Add(time.Millisecond))
	require.Len(t, sink.frames, 1, "one whole chunk, the rest waits")
	s.SetSending(false)
	s.idle(last.Add(2 * time.Millisecond))
	require.Len(t, sink.frames, 2)
	n := len(sink.frames[1])
	require.True(t, n > 0 && n < 5*160 && n%160 == 0, "the frames released so far, %d bytes", n)
}
