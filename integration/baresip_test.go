package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// writeWAV writes 8 kHz mono 16-bit PCM.
func writeWAV(path string, s []int16) error {
	var b bytes.Buffer
	data := len(s) * 2
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(36+data))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
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
	bin := requirePeer(t, "baresip")
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	// baresip advertises the host's interface address in its SDP even when
	// it talks SIP on loopback; strict latching keeps every RTP packet on
	// loopback (to where baresip's RTP really comes from).
	br := startBridge(t, "rtp:\n  latch_before_send: true\n", east)

	dir := t.TempDir()
	recDir := filepath.Join(dir, "rec")
	require.NoError(t, os.Mkdir(recDir, 0o700))
	const toneMs, silenceMs = 1200, 6000
	mic := make([]int16, (toneMs+silenceMs)*8)
	amp := 32767 * math.Pow(10, -20.0/20)
	for i := range toneMs * 8 {
		mic[i] = int16(amp * math.Sin(2*math.Pi*callerHz*float64(i)/8000))
	}
	micPath := filepath.Join(dir, "mic.wav")
	require.NoError(t, writeWAV(micPath, mic))

	// Loopback SIP; no sound card: the microphone is aufile, the speaker
	// an aubridge device nothing reads, and sndfile dumps both directions.
	lo, hi := rtpRange()
	cfg := strings.Join([]string{
		"poll_method epoll",
		fmt.Sprintf("sip_listen 127.0.0.1:%d", freePort(t)),
		"call_local_timeout 30",
		"call_max_calls 1",
		"audio_player aubridge,nowhere",
		"audio_alert aubridge,nowhere",
		"audio_source aufile," + micPath,
		"audio_buffer 20-160",
		fmt.Sprintf("rtp_ports %d-%d", lo, hi),
		"jitter_buffer_delay 5-10",
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module aufile.so",
		"module aubridge.so",
		"module sndfile.so",
		"module_tmp account.so",
		"module_app menu.so",
		"snd_path " + recDir,
		"",
	}, "\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMU\n"), 0o600))

	// The call ends when the WAV does (aufile end of file: baresip hangs
	// up); baresip is then stopped. -t and the context bound it anyway.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-f", dir, "-e", "/dial "+br.Target(), "-t", "45")
	cmd.Dir = dir
	out := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cancel() // SIGKILL
			<-exited
		}
	}
	t.Cleanup(stop)
	defer func() {
		if t.Failed() {
			t.Logf("baresip output:\n%s", out.String())
		}
	}()

	// The bridge sees a normal call that the caller ended.
	line := br.WaitLog(45*time.Second, "call ended", "reason=caller_bye")
	require.Contains(t, line, "answered=true")
	stop()
	require.Contains(t, out.String(), "Call established")

	rec, ok := lastSession(east)
	require.True(t, ok)
	require.GreaterOrEqual(t, rec.AppendedAudioMs, toneMs, "baresip's microphone reached the model")
	require.NotEmpty(t, rec.Turns, "its tone was heard as a caller turn")
	require.GreaterOrEqual(t, rec.Turns[0].AudioMs, toneMs-300)

	// What baresip heard: the decoded-direction dump.
	heardFiles, err := filepath.Glob(filepath.Join(recDir, "*-dec.wav"))
	require.NoError(t, err)
	require.Len(t, heardFiles, 1, "sndfile recorded what baresip heard")
	heard, rate, err := readWAV(heardFiles[0])
	require.NoError(t, err)
	require.Equal(t, 8000, rate)
	var answer *phone.Span
	for _, s := range phone.ToneSpans(heard, eastHz) {
		if s.EndMs-s.StartMs >= 600 {
			answer = &s
			break
		}
	}
	require.NotNil(t, answer, "the recording holds the assistant's answer (%v Hz spans: %v)", eastHz, phone.ToneSpans(heard, eastHz))
	require.Greater(t, answer.StartMs, toneMs-200, "the answer comes after the caller spoke")
	require.Empty(t, phone.ToneSpans(heard, callerHz), "the caller's own voice is not echoed back")

	sent, err := filepath.Glob(filepath.Join(recDir, "*-enc.wav"))
	require.NoError(t, err)
	require.Len(t, sent, 1)
	mine, _, err := readWAV(sent[0])
	require.NoError(t, err)
	require.NotEmpty(t, phone.ToneSpans(mine, callerHz), "the microphone file was what baresip sent")
}
