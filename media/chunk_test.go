package media

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/media/g722"
)

// tonePackets makes n RTP packets of a tone at the codec's rate, 20 ms
// each, as the caller at from would send them to s.
func tonePackets(t *testing.T, s *Stream, codec Codec, n int) [][]byte {
	t.Helper()
	snd := &rtpSender{hdr: newSender(t, s.LocalAddr(), uint8(codec)).hdr}
	rate := codec.SampleRate()
	pcm := tone(n*rate/50, 700, float64(rate), 9000, 0)
	enc := g722.NewEncoder()
	out := make([][]byte, n)
	for i := range n {
		payload := make([]byte, 160)
		frame := pcm[i*rate/50 : (i+1)*rate/50]
		if codec == CodecG722 {
			enc.Encode(payload, frame)
		} else {
			codec.law().Encode(payload, frame)
		}
		out[i] = snd.packet(t, uint16(i), uint32(160*i), uint8(codec), payload)
	}
	return out
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
