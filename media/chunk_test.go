package media

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/media/g722"
)

// feed sends packets 20 ms apart (timestamps of the test clock) through the
// receive path of an unstarted stream: a tone of the codec's rate.
func feed(t *testing.T, s *Stream, codec Codec, packets int, t0 time.Time) time.Time {
	t.Helper()
	snd := &rtpSender{hdr: newSender(t, s.LocalAddr(), uint8(codec)).hdr}
	from := netip.MustParseAddrPort("192.0.2.7:4000")
	rate := codec.SampleRate()
	pcm := tone(packets*rate/50, 700, float64(rate), 9000, 0)
	enc := g722.NewEncoder()
	now := t0
	for i := range packets {
		payload := make([]byte, 160)
		frame := pcm[i*rate/50 : (i+1)*rate/50]
		if codec == CodecG722 {
			enc.Encode(payload, frame)
		} else {
			codec.law().Encode(payload, frame)
		}
		now = t0.Add(time.Duration(i) * frameDur)
		s.processInbound(snd.packet(t, uint16(i), uint32(160*i), uint8(codec), payload), from, now)
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

// TestUplinkChunkFlushedAtEnd: when Run ends, the audio received so far
// reaches the sink, whether the caller had gone quiet or not.
func TestUplinkChunkFlushedAtEnd(t *testing.T) {
	sink := &frameSink{}
	st := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, ModelFormat: ModelPCMU, Sink: sink,
		UplinkChunk: 200 * time.Millisecond, JitterDepth: 1})
	s := start(t, st)
	snd := newSender(t, s.LocalAddr(), 0)
	for i := range 4 {
		snd.send(t, snd.packet(t, uint16(i), uint32(160*i), 0, bytes.Repeat([]byte{byte(i)}, 160)))
	}
	require.Eventually(t, func() bool { return s.Stats().PacketsIn == 4 }, wait, 5*time.Millisecond)
	require.NoError(t, s.stop(t))
	got := bytes.Join(sink.waitFrames(t, 1), nil)
	// The jitter buffer (depth 1) may still hold the last packet when Run
	// ends; the three before it are the caller's and must all be there.
	require.GreaterOrEqual(t, len(got), 3*160)
	for i := range 3 {
		require.Equal(t, bytes.Repeat([]byte{byte(i)}, 160), got[160*i:160*(i+1)])
	}
}

func TestCheckUplinkChunk(t *testing.T) {
	for _, d := range []time.Duration{20 * time.Millisecond, 60 * time.Millisecond, 200 * time.Millisecond} {
		require.NoError(t, CheckUplinkChunk(d), "%v", d)
	}
	for _, d := range []time.Duration{0, 10 * time.Millisecond, 50 * time.Millisecond, 220 * time.Millisecond, -20 * time.Millisecond} {
		require.Error(t, CheckUplinkChunk(d), "%v", d)
	}
	conn := listen(t)
	defer conn.Close()
	_, err := NewStream(StreamConfig{Conn: conn, DTMFPayloadType: -1, UplinkChunk: 30 * time.Millisecond})
	require.ErrorIs(t, err, ErrBadConfig)
}
