package integration

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// writeWAVRate writes mono 16-bit PCM at rate.
func writeWAVRate(path string, s []int16, rate int) error {
	var b bytes.Buffer
	data := len(s) * 2
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(36+data))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(2 * rate), uint16(2), uint16(16)} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, binary.LittleEndian, uint32(data))
	_ = binary.Write(&b, binary.LittleEndian, s)
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// readWAV reads a mono 16-bit PCM WAV and returns its samples and rate.
func readWAV(path string) ([]int16, int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(raw) < 12 || string(raw[:4]) != "RIFF" || string(raw[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF/WAVE file")
	}
	var rate, channels, bits int
	for p := 12; p+8 <= len(raw); {
		id, size := string(raw[p:p+4]), int(binary.LittleEndian.Uint32(raw[p+4:p+8]))
		body := raw[p+8 : min(p+8+size, len(raw))]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, 0, errors.New("short fmt chunk")
			}
			if format := binary.LittleEndian.Uint16(body[0:2]); format != 1 && format != 0xFFFE {
				return nil, 0, fmt.Errorf("WAV format %d is not PCM", format)
			}
			channels = int(binary.LittleEndian.Uint16(body[2:4]))
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
		case "data":
			if channels != 1 || bits != 16 {
				return nil, 0, fmt.Errorf("want mono 16-bit, got %d channels, %d bits", channels, bits)
			}
			s := make([]int16, len(body)/2)
			for i := range s {
				s[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return s, rate, nil
		}
		p += 8 + size + size%2
	}
	return nil, 0, errors.New("no data chunk")
}

// TestBaresipSoftphoneCall: a real softphone (baresip, headless) calls the
// binary. Its microphone is a WAV file (1.2 s of a 300 Hz tone at -20 dBov,
// then silence); what it hears is recorded by its sndfile module. The
// recording must hold the assistant's answer (the simulated voice's tone),
// after the caller spoke; when the file ends baresip hangs up.
func TestBaresipSoftphoneCall(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	// baresip advertises the host's interface address in its SDP even when
	// it talks SIP on loopback; strict latching keeps every RTP packet on
	// loopback (to where baresip's RTP really comes from).
	br := startBridge(t, "rtp:\n  latch_before_send: true\n", east)

	const toneMs, silenceMs = 1200, 6000
	mic := make([]int16, (toneMs+silenceMs)*8)
	amp := 32767 * math.Pow(10, -20.0/20)
	for i := range toneMs * 8 {
		mic[i] = int16(amp * math.Sin(2*math.Pi*callerHz*float64(i)/8000))
	}
	// The call ends when the WAV does (aufile end of file: baresip hangs
	// up); baresip is then stopped.
	run := startBaresip(t, br.Target(), ";regint=0;audio_codecs=PCMU", []string{"g711.so"}, nil, mic, 8000)

	// The bridge sees a normal call that the caller ended.
	line := br.WaitLog(45*time.Second, "call ended", "reason=caller_bye")
	require.Contains(t, line, "answered=true")
	run.stop()
	require.Contains(t, run.Out.String(), "Call established")

	rec, ok := lastSession(east)
	require.True(t, ok)
	require.GreaterOrEqual(t, rec.AppendedAudioMs, toneMs, "baresip's microphone reached the model")
	require.NotEmpty(t, rec.Turns, "its tone was heard as a caller turn")
	require.GreaterOrEqual(t, rec.Turns[0].AudioMs, toneMs-300)

	// What baresip heard: the decoded-direction dump.
	heard, rate := run.heard(t)
	require.Equal(t, 8000, rate)
	answer := answerSpan(heard, eastHz)
	require.NotNil(t, answer, "the recording holds the assistant's answer (%v Hz spans: %v)", eastHz, phone.ToneSpans(heard, eastHz))
	require.Greater(t, answer.StartMs, toneMs-200, "the answer comes after the caller spoke")
	require.Empty(t, phone.ToneSpans(heard, callerHz), "the caller's own voice is not echoed back")

	sent, err := filepath.Glob(filepath.Join(run.RecDir, "*-enc.wav"))
	require.NoError(t, err)
	require.Len(t, sent, 1)
	mine, _, err := readWAV(sent[0])
	require.NoError(t, err)
	require.NotEmpty(t, phone.ToneSpans(mine, callerHz), "the microphone file was what baresip sent")
}
