package g722

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func tone(n int, freq, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/16000)))
	}
	return s
}

// roundTrip encodes and decodes x in 20 ms frames through fresh codecs.
func roundTrip(x []int16) []int16 {
	enc, dec := NewEncoder(), NewDecoder()
	out := make([]int16, 0, len(x))
	var codes [BytesPerFrame20ms]byte
	var pcm [SamplesPerFrame20ms]int16
	for len(x) >= SamplesPerFrame20ms {
		n := enc.Encode(codes[:], x[:SamplesPerFrame20ms])
		m := dec.Decode(pcm[:], codes[:n])
		out = append(out, pcm[:m]...)
		x = x[SamplesPerFrame20ms:]
	}
	return out
}

const codecDelay = 22

func snrAt(x, y []int16, from, to, lag int) float64 {
	var sig, noise float64
	for i := from; i < to; i++ {
		s := float64(x[i])
		e := float64(y[i+lag]) - s
		sig += s * s
		noise += e * e
	}
	return 10 * math.Log10(sig/max(noise, 1e-9))
}

// snr is the signal-to-noise ratio (dB) of y against x over [from, to),
// at the lag in 0..40 samples that maximises it (the QMF pair delays the
// signal by a fixed number of samples).
func snr(x, y []int16, from, to int) (float64, int) {
	best, bestLag := math.Inf(-1), 0
	for lag := 0; lag <= 40; lag++ {
		if v := snrAt(x, y, from, to, lag); v > best {
			best, bestLag = v, lag
		}
	}
	return best, bestLag
}

// Tones across the 50–7000 Hz band survive coding with the SNR that
// 64 kbit/s SB-ADPCM gives: pure tones are predicted well, so the low band
// (6-bit) reaches 40–60 dB and the high band (2-bit) about 20 dB. The
// floors sit a few dB under the measured values, so a wrong table entry
// or a broken adaptation step fails.
func TestRoundTripTones(t *testing.T) {
	for _, tc := range []struct {
		freq, amp, minSNR float64
	}{
		{300, 8000, 55},
		{1000, 8000, 42},
		{1000, 1000, 38},
		{3000, 8000, 36},
		{5000, 8000, 18}, // high band: 2-bit ADPCM
		{6500, 4000, 20},
	} {
		x := tone(16000, tc.freq, tc.amp)
		y := roundTrip(x)
		got := snrAt(x, y, 2000, 15000, codecDelay)
		t.Logf("%5.0f Hz amp %5.0f: SNR %.1f dB", tc.freq, tc.amp, got)
		require.GreaterOrEqualf(t, got, tc.minSNR, "%v Hz", tc.freq)
	}
}

// The QMF analysis+synthesis pair delays by 22 samples; measured on a
// non-periodic signal (incommensurate tones) so the lag is unambiguous.
func TestDelay(t *testing.T) {
	x := make([]int16, 16000)
	for i := range x {
		ti := float64(i) / 16000
		x[i] = int16(3000*math.Sin(2*math.Pi*313*ti) + 3000*math.Sin(2*math.Pi*1171*ti) + 2000*math.Sin(2*math.Pi*2903*ti))
	}
	got, lag := snr(x, roundTrip(x), 2000, 15000)
	require.Equal(t, codecDelay, lag)
	require.Greater(t, got, 30.0)
}

// The decoder tracks the encoder bit-exactly: after every code, both sides'
// ADPCM state (predictors, scale factors) is identical. This is the
// property that makes G.722 work at all, and it fails on any mismatch in
// the shared adaptation arithmetic.
func TestDecoderTracksEncoder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]int16, 16000*3)
	// Speech-like: tones plus noise bursts plus full-scale steps.
	for i := range x {
		v := 9000*math.Sin(2*math.Pi*440*float64(i)/16000) + 3000*math.Sin(2*math.Pi*5200*float64(i)/16000)
		if (i/4000)%2 == 1 {
			v += r.NormFloat64() * 6000
		}
		if (i/8000)%3 == 2 {
			v = 32767
			if (i/37)%2 == 0 {
				v = -32768
			}
		}
		x[i] = int16(max(-32768, min(v, 32767)))
	}
	enc, dec := NewEncoder(), NewDecoder()
	var code [1]byte
	var pcm [2]int16
	for i := 0; i+1 < len(x); i += 2 {
		enc.Encode(code[:], x[i:i+2])
		dec.Decode(pcm[:], code[:])
		require.Equal(t, enc.band, dec.band, "state diverged at sample %d", i)
	}
}

// Any chunking gives the same codes and PCM as one block.
func TestFramingInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]int16, 4000)
	for i := range x {
		x[i] = int16(r.IntN(20000) - 10000)
	}
	whole := make([]byte, len(x)/2)
	NewEncoder().Encode(whole, x)
	enc := NewEncoder()
	var parts []byte
	for rest := x; len(rest) > 0; {
		k := min(2*(1+r.IntN(100)), len(rest))
		buf := make([]byte, k/2)
		enc.Encode(buf, rest[:k])
		parts = append(parts, buf...)
		rest = rest[k:]
	}
	require.Equal(t, whole, parts)

	pcmWhole := make([]int16, 2*len(whole))
	NewDecoder().Decode(pcmWhole, whole)
	dec := NewDecoder()
	var pcmParts []int16
	for rest := whole; len(rest) > 0; {
		k := min(1+r.IntN(77), len(rest))
		buf := make([]int16, 2*k)
		dec.Decode(buf, rest[:k])
		pcmParts = append(pcmParts, buf...)
		rest = rest[k:]
	}
	require.Equal(t, pcmWhole, pcmParts)
}

// Silence in gives (near) silence out, and Reset restores the start state.
func TestSilenceAndReset(t *testing.T) {
	y := roundTrip(make([]int16, 3200))
	for _, v := range y {
		require.LessOrEqual(t, math.Abs(float64(v)), 4.0)
	}
	e := NewEncoder()
	var c [160]byte
	e.Encode(c[:], tone(320, 1000, 9000))
	e.Reset()
	require.Equal(t, *NewEncoder(), *e)
	d := NewDecoder()
	var p [320]int16
	d.Decode(p[:], c[:])
	d.Reset()
	require.Equal(t, *NewDecoder(), *d)
}

// Every possible code byte decodes without panicking or leaving the
// int16 range (the decoder reads network bytes).
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0, 0xff, 0x7f, 0x80})
	f.Fuzz(func(t *testing.T, codes []byte) {
		d := NewDecoder()
		out := make([]int16, DecodedLen(len(codes)))
		require.Equal(t, len(out), d.Decode(out, codes))
	})
}

func TestNoAllocs(t *testing.T) {
	enc, dec := NewEncoder(), NewDecoder()
	x := tone(SamplesPerFrame20ms, 1000, 8000)
	var c [BytesPerFrame20ms]byte
	var p [SamplesPerFrame20ms]int16
	require.Zero(t, testing.AllocsPerRun(100, func() {
		enc.Encode(c[:], x)
		dec.Decode(p[:], c[:])
	}))
}

func BenchmarkEncodeFrame(b *testing.B) {
	enc := NewEncoder()
	x := tone(SamplesPerFrame20ms, 1000, 8000)
	var c [BytesPerFrame20ms]byte
	b.ReportAllocs()
	for b.Loop() {
		enc.Encode(c[:], x)
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	enc, dec := NewEncoder(), NewDecoder()
	var c [BytesPerFrame20ms]byte
	enc.Encode(c[:], tone(SamplesPerFrame20ms, 1000, 8000))
	var p [SamplesPerFrame20ms]int16
	b.ReportAllocs()
	for b.Loop() {
		dec.Decode(p[:], c[:])
	}
}
