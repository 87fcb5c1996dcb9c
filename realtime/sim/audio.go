package sim

import (
	"encoding/binary"
	"math"
	"sync"
	"unicode/utf8"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/zaf/g711"
)

// sampleRate of a wire format: 24 kHz PCM16, 8 kHz G.711 (§4 "Audio formats").
func sampleRate(f realtime.AudioFormat) int {
	if f == realtime.FormatPCM24 {
		return 24000
	}
	return 8000
}

func bytesToMs(f realtime.AudioFormat, n int) int {
	return n / f.BytesPerMs()
}

// decoder turns wire bytes of one input format into PCM samples, carrying an
// odd trailing byte of PCM16 to the next append.
type decoder struct {
	format realtime.AudioFormat
	carry  []byte
}

func (d *decoder) decode(b []byte, dst []int16) []int16 {
	switch d.format {
	case realtime.FormatPCMU:
		for _, c := range b {
			dst = append(dst, g711.DecodeUlawFrame(c))
		}
	case realtime.FormatPCMA:
		for _, c := range b {
			dst = append(dst, g711.DecodeAlawFrame(c))
		}
	default:
		if len(d.carry) > 0 {
			b = append(d.carry, b...)
			d.carry = nil
		}
		n := len(b) &^ 1
		for i := 0; i < n; i += 2 {
			dst = append(dst, int16(binary.LittleEndian.Uint16(b[i:])))
		}
		if n < len(b) {
			d.carry = []byte{b[n]}
		}
	}
	return dst
}

// decodeAll decodes a complete buffer (no carry), for transcribers.
func decodeAll(f realtime.AudioFormat, b []byte) []int16 {
	d := decoder{format: f}
	return d.decode(b, make([]int16, 0, len(b)))
}

// encode turns PCM samples (at the format's own rate) into wire bytes.
func encode(f realtime.AudioFormat, pcm []int16) []byte {
	switch f {
	case realtime.FormatPCMU:
		out := make([]byte, len(pcm))
		for i, s := range pcm {
			out[i] = g711.EncodeUlawFrame(s)
		}
		return out
	case realtime.FormatPCMA:
		out := make([]byte, len(pcm))
		for i, s := range pcm {
			out[i] = g711.EncodeAlawFrame(s)
		}
		return out
	}
	out := make([]byte, 2*len(pcm))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(s))
	}
	return out
}

// levelDBov is the RMS level of samples relative to full scale (0 dBov =
// RMS of 32768), so a full-scale sine is about −3 dBov.
func levelDBov(pcm []int16) float64 {
	if len(pcm) == 0 {
		return -120
	}
	var sum float64
	for _, s := range pcm {
		v := float64(s)
		sum += v * v
	}
	rms := math.Sqrt(sum / float64(len(pcm)))
	if rms < 1e-3 {
		return -120
	}
	return 20 * math.Log10(rms/32768)
}

// thresholdDBov maps the VAD threshold (0..1, §2.1) to an energy level:
// 0.5 → −30 dBov, so a −20 dBov talker triggers and −50 dBov line noise does
// not; 1.0 → 0 dBov (nothing short of clipping triggers), 0 → −60 dBov.
func thresholdDBov(threshold float64) float64 {
	return -60 + 60*threshold
}

const (
	vadWindowMs     = 10 // energy is measured on 10 ms windows
	vadOnsetWindows = 3  // 30 ms of consecutive speech start a turn (ignores clicks)
)

// vad is an energy detector that runs on audio time: every decision is made
// on sample counts, never on wall time, so a client may push audio faster
// than real time and get the same events.
type vad struct {
	rate      int
	window    []int16
	inSpeech  bool
	run       int   // consecutive loud windows while not in speech
	runStart  int64 // sample index where the current loud run began
	lastLoud  int64 // sample index at the end of the last loud window
	startedAt int64 // sample index of confirmed speech onset
}

type vadEvent struct {
	started bool
	stopped bool
	at      int64 // sample index: onset for started, end (incl. silence) for stopped
}

func newVAD(rate int) *vad {
	return &vad{rate: rate}
}

// feed runs the detector over pcm whose first sample has absolute index
// first. It returns at most one event per window, in order.
func (v *vad) feed(pcm []int16, first int64, thrDB float64, silenceMs int, emit func(vadEvent) bool) {
	winLen := v.rate * vadWindowMs / 1000
	silence := int64(v.rate * silenceMs / 1000)
	pos := first - int64(len(v.window))
	for len(pcm) > 0 {
		need := winLen - len(v.window)
		take := min(need, len(pcm))
		v.window = append(v.window, pcm[:take]...)
		pcm = pcm[take:]
		if len(v.window) < winLen {
			return
		}
		winStart := pos
		winEnd := pos + int64(winLen)
		pos = winEnd
		loud := levelDBov(v.window) >= thrDB
		v.window = v.window[:0]
		if !v.inSpeech {
			if !loud {
				v.run = 0
				continue
			}
			if v.run == 0 {
				v.runStart = winStart
			}
			v.run++
			if v.run >= vadOnsetWindows {
				v.inSpeech = true
				v.lastLoud = winEnd
				v.startedAt = v.runStart
				if !emit(vadEvent{started: true, at: v.runStart}) {
					return
				}
			}
			continue
		}
		if loud {
			v.lastLoud = winEnd
			continue
		}
		if winEnd-v.lastLoud >= silence {
			v.inSpeech = false
			v.run = 0
			if !emit(vadEvent{stopped: true, at: winEnd}) {
				return
			}
		}
	}
}

// Voice synthesis: the simulator's "voice" is a tone at Config.VoiceHz whose
// amplitude follows syllable-like bumps, so tests and a listener can tell
// regions apart by pitch and hear that something is being said.
const (
	msPerChar     = 60
	minAnswerMs   = 300
	maxAnswerMs   = 4000
	syllableMs    = 180
	voicePeakAmpl = 10400 // sine × sin-envelope at this peak ≈ −16 dBov RMS
)

// answerDurationMs is ≈ 60 ms per character, clamped to 0.3–4 s.
func answerDurationMs(text string) int {
	ms := utf8.RuneCountInString(text) * msPerChar
	return max(minAnswerMs, min(ms, maxAnswerMs))
}

// synthVoice renders durationMs of the voice at rate.
func synthVoice(hz float64, rate, durationMs int) []int16 {
	n := rate * durationMs / 1000
	syl := rate * syllableMs / 1000
	out := make([]int16, n)
	for i := range out {
		t := float64(i) / float64(rate)
		phase := float64(i%syl) / float64(syl)
		env := math.Sin(math.Pi * phase)
		out[i] = int16(voicePeakAmpl * env * math.Sin(2*math.Pi*hz*t))
	}
	return out
}

// voiceCache keeps answers already rendered, by format, pitch and length:
// a server answering hundreds of calls renders the same few answers over
// and over. Bounded in entries; the slices are never modified (a response
// only slices its audio into chunks).
var voiceCache struct {
	sync.Mutex
	m map[voiceKey][]byte
}

type voiceKey struct {
	f  realtime.AudioFormat
	hz float64
	ms int
}

const voiceCacheMax = 32

// encodedVoice is encode(f, synthVoice(hz, sampleRate(f), ms)), shared.
func encodedVoice(f realtime.AudioFormat, hz float64, ms int) []byte {
	k := voiceKey{f, hz, ms}
	voiceCache.Lock()
	b, ok := voiceCache.m[k]
	voiceCache.Unlock()
	if ok {
		return b
	}
	b = encode(f, synthVoice(hz, sampleRate(f), ms))
	voiceCache.Lock()
	if voiceCache.m == nil {
		voiceCache.m = map[voiceKey][]byte{}
	}
	if len(voiceCache.m) < voiceCacheMax {
		voiceCache.m[k] = b
	}
	voiceCache.Unlock()
	return b
}
