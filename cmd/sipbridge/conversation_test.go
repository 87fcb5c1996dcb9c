package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/realtime"
)

// TestAudioFormat: the one codec → model-format decision, the same format
// for the realtime session and the media stream.
func TestAudioFormat(t *testing.T) {
	for _, tc := range []struct {
		assistant string
		codec     media.Codec
		session   realtime.AudioFormat
		stream    media.ModelFormat
	}{
		{"pcm24", media.CodecPCMU, realtime.FormatPCM24, media.ModelPCM24},
		{"pcm24", media.CodecPCMA, realtime.FormatPCM24, media.ModelPCM24},
		{"auto", media.CodecPCMU, realtime.FormatPCMU, media.ModelPCMU},
		{"auto", media.CodecPCMA, realtime.FormatPCMA, media.ModelPCMA},
		{"g711", media.CodecPCMU, realtime.FormatPCMU, media.ModelPCMU},
		{"g711", media.CodecPCMA, realtime.FormatPCMA, media.ModelPCMA},
		// G.722 is wideband: never G.711 passthrough.
		{"pcm24", media.CodecG722, realtime.FormatPCM24, media.ModelPCM24},
		{"g711", media.CodecG722, realtime.FormatPCM24, media.ModelPCM24},
		{"auto", media.CodecG722, realtime.FormatPCM24, media.ModelPCM24},
	} {
		session, stream := audioFormat(tc.assistant, tc.codec)
		require.Equal(t, tc.session, session, "%s/%d", tc.assistant, tc.codec)
		require.Equal(t, tc.stream, stream, "%s/%d", tc.assistant, tc.codec)
		require.Equal(t, session.BytesPerMs(), stream.BytesPerMs(), "the two agree on the byte rate")
	}
}
