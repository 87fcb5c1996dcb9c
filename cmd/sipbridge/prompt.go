package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/zaf/g711"
)

// prompt is an operator-supplied audio file (filler, apology), decoded to
// PCM16 at 8 or 24 kHz; conversation.go renders it into each call's audio
// format.
type prompt struct {
	rate    int     // 8000 or 24000
	samples []int16 // mono
}

const (
	wavFormatPCM  = 1
	wavFormatALaw = 6
	wavFormatULaw = 7
)

var errPromptFormat = errors.New("unsupported WAV: use mono PCM16 at 8000 or 24000 Hz, or G.711 μ-law/A-law at 8000 Hz (e.g. sox in.wav -r 8000 -c 1 -b 16 out.wav)")

// loadPrompt reads a RIFF/WAVE file.
func loadPrompt(path string) (*prompt, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseWAV(b)
}

func parseWAV(b []byte) (*prompt, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New("not a RIFF/WAVE file")
	}
	var (
		format, channels, bits uint16
		rate                   uint32
		haveFmt                bool
		data                   []byte
	)
	for p := 12; p+8 <= len(b); {
		id := string(b[p : p+4])
		size := int(binary.LittleEndian.Uint32(b[p+4 : p+8]))
		body := b[p+8:]
		if size < 0 || size > len(body) {
			size = len(body) // tolerate writers that leave the data size at 0 or too large
		}
		body = body[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, errors.New("WAV fmt chunk too short")
			}
			format = binary.LittleEndian.Uint16(body[0:2])
			channels = binary.LittleEndian.Uint16(body[2:4])
			rate = binary.LittleEndian.Uint32(body[4:8])
			bits = binary.LittleEndian.Uint16(body[14:16])
			if format == 0xFFFE && size >= 26 { // WAVE_FORMAT_EXTENSIBLE: sub-format GUID starts with the real tag
				format = binary.LittleEndian.Uint16(body[24:26])
			}
			haveFmt = true
		case "data":
			data = body
		}
		p += 8 + size + size%2
	}
	if !haveFmt || data == nil {
		return nil, errors.New("WAV has no fmt or data chunk")
	}
	if channels != 1 {
		return nil, fmt.Errorf("%d channels: %w", channels, errPromptFormat)
	}
	pr := &prompt{rate: int(rate)}
	switch {
	case format == wavFormatPCM && bits == 16 && (rate == 8000 || rate == 24000):
		pr.samples = make([]int16, len(data)/2)
		for i := range pr.samples {
			pr.samples[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case format == wavFormatULaw && bits == 8 && rate == 8000:
		pr.samples = make([]int16, len(data))
		for i, c := range data {
			pr.samples[i] = g711.DecodeUlawFrame(c)
		}
	case format == wavFormatALaw && bits == 8 && rate == 8000:
		pr.samples = make([]int16, len(data))
		for i, c := range data {
			pr.samples[i] = g711.DecodeAlawFrame(c)
		}
	default:
		return nil, fmt.Errorf("format %d, %d bits, %d Hz: %w", format, bits, rate, errPromptFormat)
	}
	if len(pr.samples) == 0 {
		return nil, errors.New("WAV has no audio")
	}
	return pr, nil
}
