package main

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

func wav(format, bits uint16, rate uint32, data []byte) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, format)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(bits)/8)
	b = binary.LittleEndian.AppendUint16(b, bits/8)
	b = binary.LittleEndian.AppendUint16(b, bits)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func TestParseWAV(t *testing.T) {
	pcm := make([]byte, 1600) // 100 ms at 8 kHz
	for i := 0; i < 800; i++ {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(8000*math.Sin(2*math.Pi*400*float64(i)/8000))))
	}
	cases := []struct {
		name    string
		b       []byte
		wantErr string
		rate    int
		n       int
	}{
		{"pcm 8k", wav(1, 16, 8000, pcm), "", 8000, 800},
		{"pcm 24k", wav(1, 16, 24000, pcm), "", 24000, 800},
		{"ulaw", wav(7, 8, 8000, make([]byte, 160)), "", 8000, 160},
		{"alaw", wav(6, 8, 8000, make([]byte, 160)), "", 8000, 160},
		{"16k unsupported", wav(1, 16, 16000, pcm), "unsupported WAV", 0, 0},
		{"not wav", []byte("hello world, not a wav"), "not a RIFF/WAVE", 0, 0},
		{"no data", wav(1, 16, 8000, nil)[:36], "no fmt or data", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseWAV(tc.b)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.rate, p.rate)
			require.Len(t, p.samples, tc.n)
		})
	}
}

func TestPromptRender(t *testing.T) {
	p := &prompt{rate: 8000, samples: make([]int16, 800)}
	require.Len(t, p.render(realtime.FormatPCM24), 800*3*2)
	require.Len(t, p.render(realtime.FormatPCMU), 800)
	p24 := &prompt{rate: 24000, samples: make([]int16, 2400)}
	require.Len(t, p24.render(realtime.FormatPCM24), 4800)
	require.Len(t, p24.render(realtime.FormatPCMA), 800)
}
