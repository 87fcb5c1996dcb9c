package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// wideHz is the wideband part of the caller's test signal: above 4 kHz,
// so only a wideband codec (G.722) carries it to the model.
const wideHz = 5500.0

// requireMetric reads one series from the bridge's /metrics; the series
// must exist (a missing counter is a failure, not a zero).
func requireMetric(t *testing.T, br *bridge, series string) float64 {
	t.Helper()
	res, err := http.Get("http://" + br.Admin + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("series %s not exported", series)
	return 0
}

// bandPower is the mean power of s at hz (Goertzel), per sample².
func bandPower(s []int16, rate int, hz float64) float64 {
	w := 2 * math.Pi * hz / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range s {
		s0 := float64(v) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(s))
	return p / (n * n)
}

// turnAudio keeps the PCM of every caller turn the model committed (the
// simulator's Transcriber sees it at the session's input rate).
type turnAudio struct {
	mu    sync.Mutex
	turns []sim.Utterance
}

func (a *turnAudio) transcriber(u sim.Utterance) string {
	a.mu.Lock()
	a.turns = append(a.turns, u)
	a.mu.Unlock()
	return sim.DefaultTranscriber(u)
}

// first is the first committed turn.
func (a *turnAudio) first(t *testing.T) sim.Utterance {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	require.NotEmpty(t, a.turns, "the model committed a caller turn")
	return a.turns[0]
}

// baresipRun is one headless baresip call: its microphone is a WAV, what
// it hears is dumped by sndfile into RecDir.
type baresipRun struct {
	Out    *lockedWriter
	RecDir string
	stop   func()
}

// startBaresip dials target from a headless baresip with the given account
// parameters (after the AoR), extra modules and config lines; mic is
// played at micRate. It stops with the test.
func startBaresip(t *testing.T, target, accountParams string, modules, extraCfg []string, mic []int16, micRate int) *baresipRun {
	t.Helper()
	bin := requirePeer(t, "baresip")
	dir := t.TempDir()
	recDir := filepath.Join(dir, "rec")
	require.NoError(t, os.Mkdir(recDir, 0o700))
	micPath := filepath.Join(dir, "mic.wav")
	require.NoError(t, writeWAVRate(micPath, mic, micRate))
	lo, hi := rtpRange()
	cfg := []string{
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
		"module aufile.so",
		"module aubridge.so",
		"module sndfile.so",
		"module_tmp account.so",
		"module_app menu.so",
		"snd_path " + recDir,
	}
	for _, m := range modules {
		cfg = append(cfg, "module "+m)
	}
	cfg = append(append(cfg, extraCfg...), "")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config"), []byte(strings.Join(cfg, "\n")), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:caller@127.0.0.1>"+accountParams+"\n"), 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, bin, "-f", dir, "-e", "/dial "+target, "-t", "60")
	cmd.Dir = dir
	out := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cancel() // SIGKILL
				<-exited
			}
			cancel()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("baresip output:\n%s", out.String())
		}
	})
	return &baresipRun{Out: out, RecDir: recDir, stop: stop}
}

// heard is what baresip decoded (its sndfile dump) and the dump's rate.
func (b *baresipRun) heard(t *testing.T) ([]int16, int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(b.RecDir, "*-dec.wav"))
	require.NoError(t, err)
	require.Len(t, files, 1, "sndfile recorded what baresip heard")
	s, rate, err := readWAV(files[0])
	require.NoError(t, err)
	return s, rate
}

// to8k takes a 16 kHz recording to 8 kHz for the tone detectors (a
// two-tap average then every other sample: enough for tones far below
// 4 kHz).
func to8k(s []int16, rate int) []int16 {
	if rate == 8000 {
		return s
	}
	out := make([]int16, len(s)/2)
	for i := range out {
		out[i] = int16((int32(s[2*i]) + int32(s[2*i+1])) / 2)
	}
	return out
}

// answerSpan is the first answer-long span of hz in heard (8 kHz).
func answerSpan(heard []int16, hz float64) *phone.Span {
	for _, s := range phone.ToneSpans(heard, hz) {
		if s.EndMs-s.StartMs >= 600 {
			return &s
		}
	}
	return nil
}

// TestBaresipSRTPWidebandOverTLS is issue 12's "done when": a softphone
// with mandatory SRTP (baresip srtp, mediaenc=srtp-mand: RTP/SAVP only)
// and G.722 calls over SIP/TLS a trunk with media_encryption required. The
// caller hears the answer (baresip drops anything that is not SRTP from
// our keys), the bridge decrypted the caller's SRTP (the model heard the
// caller's turn) and dropped nothing (0 SRTP auth failures: no clear RTP
// reached it), and the model received wideband audio: the caller's 5.5 kHz
// tone is present in what it got, at a level only a wideband codec carries
// (G.711 removes everything above 4 kHz).
func TestBaresipSRTPWidebandOverTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, _, _ := writeTestCert(t)
	audio := &turnAudio{}
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, Transcriber: audio.transcriber})
	tlsPort := freePort(t)
	br := startBridge(t, fmt.Sprintf(`sip:
  tls:
    listen: 127.0.0.1:%d
    cert_file: %s
    key_file: %s
  trunks:
    - name: softphone
      allow: [127.0.0.1]
      codecs: [G722, PCMU]
      media_encryption: required
rtp:
  latch_before_send: true
`, tlsPort, certFile, keyFile), east)

	mic := wideMic()
	softphone := startBaresip(t, fmt.Sprintf("sip:bot@127.0.0.1:%d;transport=tls", tlsPort),
		";regint=0;mediaenc=srtp-mand;audio_codecs=G722",
		[]string{"g722.so", "srtp.so"}, []string{"sip_cafile " + certFile}, mic, wideRate)

	answered := br.WaitLog(45*time.Second, "call answered")
	require.Contains(t, answered, "codec=G722")
	require.Contains(t, answered, "srtp=true")
	line := br.WaitLog(60*time.Second, "call ended", "reason=caller_bye")
	require.Contains(t, line, "answered=true")
	require.Contains(t, line, "srtp=true")
	require.Contains(t, line, "srtp_auth_failed=0", "no clear or forged RTP reached the bridge")
	require.Contains(t, line, "srtp_protect_failed=0")
	require.NotContains(t, line, "rtp_in=0 ")
	softphone.stop()
	require.Contains(t, softphone.Out.String(), "Call established")
	require.Zero(t, requireMetric(t, br, `sipbridge_media_srtp_dropped_total{reason="auth"}`))

	// The bridge decrypted the caller: the model heard its turn.
	rec, ok := lastSession(east)
	require.True(t, ok)
	require.NotEmpty(t, rec.Turns, "the caller's tone was heard as a turn")
	require.GreaterOrEqual(t, rec.Turns[0].AudioMs, toneMs-300)

	requireWideband(t, audio)
	requireHeardAnswerG722(t, softphone) // through SRTP
}

// The wideband microphone: 1.2 s of the caller's tone plus a 5.5 kHz tone,
// each at -20 dBov, then 6 s of silence, at 16 kHz.
const (
	wideRate              = 16000
	toneMs, wideSilenceMs = 1200, 6000
)

func wideMic() []int16 {
	mic := make([]int16, (toneMs+wideSilenceMs)*wideRate/1000)
	amp := 32767 * math.Pow(10, -20.0/20)
	for i := range toneMs * wideRate / 1000 {
		x := float64(i) / wideRate
		mic[i] = int16(amp * (math.Sin(2*math.Pi*callerHz*x) + math.Sin(2*math.Pi*wideHz*x)))
	}
	return mic
}

// requireWideband: what the model got (24 kHz PCM) carries the caller's
// 5.5 kHz tone at about the level of its low tone; G.711 (or a G.711
// passthrough) leaves nothing above 4 kHz.
func requireWideband(t *testing.T, audio *turnAudio) {
	t.Helper()
	u := audio.first(t)
	require.Equal(t, 24000, u.SampleRate, "the model gets 24 kHz PCM")
	low, high := bandPower(u.PCM, u.SampleRate, callerHz), bandPower(u.PCM, u.SampleRate, wideHz)
	ratioDB := 10 * math.Log10(high/low)
	t.Logf("model input: %.0f Hz vs %.0f Hz: %.1f dB", wideHz, callerHz, ratioDB)
	require.Greater(t, ratioDB, -12.0, "the model received the caller's band above 4 kHz (G.722, not G.711)")
}

// requireHeardAnswerG722: baresip decoded G.722 (16 kHz) and heard the
// assistant's answer after the caller spoke.
func requireHeardAnswerG722(t *testing.T, softphone *baresipRun) {
	t.Helper()
	heard, heardRate := softphone.heard(t)
	require.Equal(t, 16000, heardRate, "baresip decoded G.722")
	h8 := to8k(heard, heardRate)
	answer := answerSpan(h8, eastHz)
	require.NotNil(t, answer, "the recording holds the assistant's answer (%v Hz spans: %v)", eastHz, phone.ToneSpans(h8, eastHz))
	require.Greater(t, answer.StartMs, toneMs-200, "the answer comes after the caller spoke")
}

// TestBaresipG722WidebandWithG711Passthrough: baresip with g722 calls a
// bridge with no trunks (default codecs G722, PCMU, PCMA) configured for
// G.711 passthrough (assistant.audio_format g711): the call runs G.722 and
// the model still gets 24 kHz PCM with the band above 4 kHz (passthrough
// would have thrown it away), and the caller hears the answer.
func TestBaresipG722WidebandWithG711Passthrough(t *testing.T) {
	t.Parallel()
	audio := &turnAudio{}
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz, Transcriber: audio.transcriber})
	br := startBridge(t, "rtp:\n  latch_before_send: true\nassistant:\n  audio_format: g711\n", east)
	softphone := startBaresip(t, br.Target(), ";regint=0;audio_codecs=G722",
		[]string{"g722.so"}, nil, wideMic(), wideRate)

	answered := br.WaitLog(45*time.Second, "call answered")
	require.Contains(t, answered, "codec=G722")
	require.Contains(t, answered, "srtp=false")
	line := br.WaitLog(60*time.Second, "call ended", "reason=caller_bye")
	require.Contains(t, line, "answered=true")
	softphone.stop()
	require.Contains(t, softphone.Out.String(), "Call established")

	rec, ok := lastSession(east)
	require.True(t, ok)
	require.NotEmpty(t, rec.Turns)
	require.GreaterOrEqual(t, rec.Turns[0].AudioMs, toneMs-300)
	requireWideband(t, audio)
	requireHeardAnswerG722(t, softphone)
}

// TestSIPpSRTPRequiredRefusesClearOffers: to a trunk with
// media_encryption required, SIPp offering RTP/SAVP without a=crypto, and
// then clear RTP, gets 488 each time (the scenarios require it); no
// realtime session is opened and the refusals are counted by reason.
func TestSIPpSRTPRequiredRefusesClearOffers(t *testing.T) {
	t.Parallel()
	requirePeer(t, "sipp")
	east := startRegion(t, "east", sim.Config{})
	br := startBridge(t, "sip:\n  trunks:\n    - name: secure\n      allow: [127.0.0.1/32]\n      media_encryption: required\n", east)

	out, err := runSIPp(t, br.SIPAddr, "uac_488_savp_nocrypto.xml")
	require.NoError(t, err, "sipp failed:\n%s", out)
	out, err = runSIPp(t, br.SIPAddr, "uac_488_clear.xml")
	require.NoError(t, err, "sipp failed:\n%s", out)

	require.Empty(t, east.Sim.Sessions(), "no realtime session for a refused call")
	require.Equal(t, 1.0, requireMetric(t, br, `sipbridge_sip_sdp_rejections_total{reason="no-usable-crypto"}`))
	require.Equal(t, 1.0, requireMetric(t, br, `sipbridge_sip_sdp_rejections_total{reason="encryption-required"}`))
	require.Len(t, br.LogLines("SDP offer not acceptable", "media_encryption=required"), 2)
}

// TestTamperedSRTPDroppedAndCounted: a caller on SDES-SRTP (the test phone
// with pion/srtp) to a trunk with media_encryption required. Its speech
// reaches the model and it hears the answer, every packet the bridge sent
// authenticated under the bridge's key (a clear or badly keyed packet would
// fail at the phone); then 25 packets with one ciphertext bit flipped are
// dropped by the bridge and counted, exactly 25, in the metric and the
// call's end line.
func TestTamperedSRTPDroppedAndCounted(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "east", sim.Config{VoiceHz: eastHz})
	br := startBridge(t, "sip:\n  trunks:\n    - name: secure\n      allow: [127.0.0.1/32]\n      media_encryption: required\n", east)
	key := make([]byte, 30)
	_, _ = rand.Read(key)
	call, ctx := dial(t, br, 60*time.Second, phone.CallOptions{SRTPKey: key})
	require.Contains(t, call.Answer(), " RTP/SAVP 0 ")
	require.Contains(t, call.Answer(), "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
	require.NotContains(t, call.Answer(), base64.StdEncoding.EncodeToString(key), "the bridge answers with its own key")

	call.Speak(callerHz, 1200*time.Millisecond, -20)
	at, err := call.WaitTone(ctx, eastHz, 0, 600*time.Millisecond, 20*time.Second)
	require.NoError(t, err, "the caller hears the answer through SRTP")
	require.Greater(t, at, 1000)
	rec, ok := lastSession(east)
	require.True(t, ok)
	require.NotEmpty(t, rec.Turns, "the bridge decrypted the caller's turn")
	require.Zero(t, call.SRTPAuthFailures(), "everything the bridge sent was SRTP under its key")
	require.Zero(t, requireMetric(t, br, `sipbridge_media_srtp_dropped_total{reason="auth"}`))

	const tampered = 25
	call.TamperNext(tampered)
	waitFor(t, 20*time.Second, "the tampered packets to be counted", func() bool {
		return requireMetric(t, br, `sipbridge_media_srtp_dropped_total{reason="auth"}`) >= tampered
	})
	time.Sleep(200 * time.Millisecond) // nothing more may come
	require.Equal(t, float64(tampered), requireMetric(t, br, `sipbridge_media_srtp_dropped_total{reason="auth"}`))
	require.Zero(t, requireMetric(t, br, `sipbridge_media_srtp_dropped_total{reason="replay"}`))

	require.NoError(t, call.Hangup(ctx))
	line := br.WaitLog(10*time.Second, "call ended", call.CallID())
	require.Contains(t, line, fmt.Sprintf("srtp_auth_failed=%d", tampered))
	require.Zero(t, call.SRTPAuthFailures())
}
