package resample

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// tone returns n samples of a sine of freq Hz at rate Hz with amplitude amp.
func tone(n int, freq, rate, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/rate)))
	}
	return s
}

// amplitude is the amplitude of the freq component of x (single-bin DFT,
// the Goertzel quantity). Windows hold a whole number of cycles in the tests,
// so there is no leakage.
func amplitude(x []int16, freq, rate float64) float64 {
	var re, im float64
	w := 2 * math.Pi * freq / rate
	for i, v := range x {
		re += float64(v) * math.Cos(w*float64(i))
		im -= float64(v) * math.Sin(w*float64(i))
	}
	return 2 * math.Hypot(re, im) / float64(len(x))
}

func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

func db(ratio float64) float64 { return 20 * math.Log10(ratio) }

// down runs src through a fresh Down3 in 20 ms (480-sample) chunks.
func down(t testing.TB, src []int16) []int16 {
	var d Down3
	out := make([]int16, 0, len(src)/3+1)
	buf := make([]int16, 160)
	for len(src) > 0 {
		k := min(480, len(src))
		n, err := d.Process(buf, src[:k])
		require.NoError(t, err)
		out = append(out, buf[:n]...)
		src = src[k:]
	}
	return out
}

// up runs src through a fresh Up3 in 20 ms (160-sample) chunks.
func up(t testing.TB, src []int16) []int16 {
	var u Up3
	out := make([]int16, 0, 3*len(src))
	buf := make([]int16, 480)
	for len(src) > 0 {
		k := min(160, len(src))
		n, err := u.Process(buf, src[:k])
		require.NoError(t, err)
		out = append(out, buf[:n]...)
		src = src[k:]
	}
	return out
}

// Passband sweep: 300 Hz … 3.4 kHz keeps its level within 0.1 dB both ways.
func TestPassbandFlat(t *testing.T) {
	const amp = 16000.0
	worst := 0.0
	for f := 300.0; f <= 3400; f += 100 {
		t.Run("down", func(t *testing.T) {
			out := down(t, tone(24000*6/5, f, 24000, amp)) // 1.2 s
			got := amplitude(out[1000:9000], f, 8000)      // 1 s after the transient
			dev := db(got / amp)
			worst = max(worst, math.Abs(dev))
			require.InDelta(t, 0, dev, 0.1, "%.0f Hz", f)
		})
		t.Run("up", func(t *testing.T) {
			out := up(t, tone(8000*6/5, f, 8000, amp))
			got := amplitude(out[3000:27000], f, 24000)
			dev := db(got / amp)
			worst = max(worst, math.Abs(dev))
			require.InDelta(t, 0, dev, 0.1, "%.0f Hz", f)
		})
	}
	t.Logf("worst passband deviation 300–3400 Hz: %.4f dB", worst)
}

// A 24 kHz tone between 5 and 11 kHz folds to 0–4 kHz when decimated; the
// filter must remove it first: ≥ 80 dB at the alias frequency and in total.
func TestDown3AliasRejection(t *testing.T) {
	const amp = 30000.0
	worstBin, worstRMS := -1000.0, -1000.0
	for f := 5000.0; f <= 11000; f += 250 {
		out := down(t, tone(24000*6/5, f, 24000, amp))[1000:9000]
		alias := math.Mod(f, 8000)
		if alias > 4000 {
			alias = 8000 - alias
		}
		bin := db(amplitude(out, alias, 8000) / amp)
		total := db(rms(out) / (amp / math.Sqrt2))
		worstBin, worstRMS = max(worstBin, bin), max(worstRMS, total)
		require.Less(t, bin, -80.0, "%.0f Hz → alias %.0f Hz", f, alias)
		require.Less(t, total, -80.0, "%.0f Hz total output", f)
	}
	t.Logf("worst alias 5–11 kHz: bin %.1f dB, total RMS %.1f dB", worstBin, worstRMS)
}

// Zero-stuffing 8 kHz → 24 kHz creates images at 8k±f and 16k±f; they must
// be ≥ 60 dB down, each and all together (everything but the tone).
func TestUp3ImageRejection(t *testing.T) {
	const amp = 30000.0
	worstImg, worstResidual := -1000.0, -1000.0
	for f := 300.0; f <= 3400; f += 100 {
		in := tone(8000*6/5, f, 8000, amp)
		out := up(t, in)[3000:27000]
		for _, img := range []float64{8000 - f, 8000 + f, 16000 - f, 16000 + f} {
			lvl := db(amplitude(out, img, 24000) / amp)
			worstImg = max(worstImg, lvl)
			require.Less(t, lvl, -60.0, "tone %.0f Hz image %.0f Hz", f, img)
		}
		// Residual after removing the fitted tone (amplitude and phase).
		var re, im float64
		w := 2 * math.Pi * f / 24000
		for i, v := range out {
			re += float64(v) * math.Cos(w*float64(i))
			im += float64(v) * math.Sin(w*float64(i))
		}
		re, im = 2*re/float64(len(out)), 2*im/float64(len(out))
		var res float64
		for i, v := range out {
			d := float64(v) - re*math.Cos(w*float64(i)) - im*math.Sin(w*float64(i))
			res += d * d
		}
		lvl := db(math.Sqrt(res/float64(len(out))) / (amp / math.Sqrt2))
		worstResidual = max(worstResidual, lvl)
		require.Less(t, lvl, -60.0, "tone %.0f Hz residual", f)
	}
	t.Logf("worst Up3 image: %.1f dB, worst residual: %.1f dB", worstImg, worstResidual)
}

// The impulse response peaks at the documented delay in both directions.
func TestDelay(t *testing.T) {
	in := make([]int16, 300)
	in[30] = 30000
	out := down(t, in)
	peak := 0
	for i, v := range out {
		if v > out[peak] {
			peak = i
		}
	}
	require.Equal(t, 10+Delay8k, peak)

	in8 := make([]int16, 100)
	in8[10] = 10000
	out24 := up(t, in8)
	peak = 0
	for i, v := range out24 {
		if v > out24[peak] {
			peak = i
		}
	}
	require.Equal(t, 30+Delay24k, peak)
}

func randomSignal(r *rand.Rand, n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(r.IntN(65536) - 32768)
	}
	return s
}

// Processing in 20 ms frames or random chunks equals one block.
func TestFrameSplitInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	src24 := randomSignal(r, 24000)
	src8 := randomSignal(r, 8000)

	var d Down3
	whole := make([]int16, d.OutLen(len(src24)))
	n, err := d.Process(whole, src24)
	require.NoError(t, err)
	require.Equal(t, 8000, n)

	var u Up3
	whole24 := make([]int16, 3*len(src8))
	_, err = u.Process(whole24, src8)
	require.NoError(t, err)

	tests := []struct {
		name  string
		chunk func() int
	}{
		{"20ms at 24k", func() int { return 480 }},
		{"20ms at 8k", func() int { return 160 }},
		{"one sample", func() int { return 1 }},
		{"random incl. empty", func() int { return r.IntN(700) }},
		{"not multiple of 3", func() int { return 3*r.IntN(100) + 1 + r.IntN(2) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Down3
			got := make([]int16, 0, len(whole))
			buf := make([]int16, 1000)
			for rest := src24; len(rest) > 0; {
				k := min(tc.chunk(), len(rest))
				want := d.OutLen(k)
				n, err := d.Process(buf, rest[:k])
				require.NoError(t, err)
				require.Equal(t, want, n)
				got = append(got, buf[:n]...)
				rest = rest[k:]
			}
			require.Equal(t, whole, got)

			var u Up3
			got = got[:0]
			buf = make([]int16, 3000)
			for rest := src8; len(rest) > 0; {
				k := min(tc.chunk(), len(rest))
				n, err := u.Process(buf, rest[:k])
				require.NoError(t, err)
				require.Equal(t, 3*k, n)
				got = append(got, buf[:n]...)
				rest = rest[k:]
			}
			require.Equal(t, whole24, got)
		})
	}
}

func TestShortBufferAndReset(t *testing.T) {
	var d Down3
	src := tone(480, 1000, 24000, 10000)
	n, err := d.Process(make([]int16, 159), src)
	require.ErrorIs(t, err, ErrShortBuffer)
	require.Zero(t, n)
	require.Equal(t, Down3{}, d, "state untouched on error")

	var u Up3
	n, err = u.Process(make([]int16, 479), src[:160])
	require.ErrorIs(t, err, ErrShortBuffer)
	require.Zero(t, n)
	require.Equal(t, Up3{}, u)

	// Reset makes a used converter behave like a fresh one.
	a := make([]int16, 160)
	_, err = d.Process(a, src)
	require.NoError(t, err)
	_, err = d.Process(a, src[:7])
	require.NoError(t, err)
	d.Reset()
	b := make([]int16, 160)
	_, err = d.Process(b, src)
	require.NoError(t, err)
	var fresh Down3
	_, err = fresh.Process(a, src)
	require.NoError(t, err)
	require.Equal(t, a, b)

	u.Reset()
	require.Equal(t, Up3{}, u)
}

func TestOutLen(t *testing.T) {
	tests := []struct {
		name     string
		consumed int // inputs processed before
		n, want  int
	}{
		{"fresh 480", 0, 480, 160},
		{"fresh 1", 0, 1, 1},
		{"fresh 0", 0, 0, 0},
		{"fresh 4", 0, 4, 2},
		{"after 1, n=2", 1, 2, 0},
		{"after 1, n=3", 1, 3, 1},
		{"after 2, n=1", 2, 1, 0},
		{"after 2, n=2", 2, 2, 1},
		{"after 2, n=480", 2, 480, 160},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Down3
			buf := make([]int16, 200)
			_, err := d.Process(buf, make([]int16, tc.consumed))
			require.NoError(t, err)
			require.Equal(t, tc.want, d.OutLen(tc.n))
			n, err := d.Process(buf, make([]int16, tc.n))
			require.NoError(t, err)
			require.Equal(t, tc.want, n)
		})
	}
}

// Full-scale steps overshoot (Gibbs); the result must saturate, not wrap.
func TestSaturation(t *testing.T) {
	in := make([]int16, 2400)
	for i := range in {
		if (i/300)%2 == 0 {
			in[i] = math.MaxInt16
		} else {
			in[i] = math.MinInt16
		}
	}
	out := down(t, in)
	sawMax, sawMin := false, false
	for i := Delay8k + 20; i < len(out); i++ {
		// Away from the edges each 100-sample half period is settled.
		if j := (i - Delay8k) % 200; j > 20 && j < 80 {
			require.Greater(t, out[i], int16(30000), "sample %d", i)
		} else if j > 120 && j < 180 {
			require.Less(t, out[i], int16(-30000), "sample %d", i)
		}
		sawMax = sawMax || out[i] == math.MaxInt16
		sawMin = sawMin || out[i] == math.MinInt16
	}
	require.True(t, sawMax && sawMin, "overshoot must saturate")

	require.Equal(t, int16(math.MaxInt16), sat(40000))
	require.Equal(t, int16(math.MinInt16), sat(-40000))
	require.Equal(t, int16(2), sat(1.5))
	require.Equal(t, int16(-2), sat(-1.5))
}

func TestNoAllocs(t *testing.T) {
	var d Down3
	var u Up3
	in24 := tone(480, 800, 24000, 10000)
	in8 := tone(160, 800, 8000, 10000)
	out8 := make([]int16, 161)
	out24 := make([]int16, 480)
	allocs := testing.AllocsPerRun(200, func() {
		_, _ = d.Process(out8, in24)
		_, _ = u.Process(out24, in8)
	})
	require.Zero(t, allocs)
}

// FuzzChunking: any chunking of any signal equals one-block processing.
func FuzzChunking(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7}, []byte{3, 0, 1})
	f.Add(make([]byte, 2000), []byte{200, 17, 255, 1})
	f.Add([]byte{0xFF, 0x7F, 0x00, 0x80}, []byte{})
	f.Fuzz(func(t *testing.T, raw []byte, chunks []byte) {
		src := make([]int16, len(raw)/2)
		for i := range src {
			src[i] = int16(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
		var dWhole, dChunk Down3
		var uWhole, uChunk Up3
		want := make([]int16, dWhole.OutLen(len(src)))
		n, err := dWhole.Process(want, src)
		require.NoError(t, err)
		require.Equal(t, (len(src)+2)/3, n)
		want24 := make([]int16, 3*len(src))
		_, err = uWhole.Process(want24, src)
		require.NoError(t, err)

		got := make([]int16, 0, len(want))
		got24 := make([]int16, 0, len(want24))
		buf := make([]int16, 3*256)
		rest, i := src, 0
		for len(rest) > 0 {
			k := len(rest)
			if len(chunks) > 0 {
				k = min(int(chunks[i%len(chunks)]), len(rest))
				i++
				if i > 4*len(src)+len(chunks) { // all-zero chunk list
					k = len(rest)
				}
			}
			k = min(k, 256)
			n, err := dChunk.Process(buf, rest[:k])
			require.NoError(t, err)
			got = append(got, buf[:n]...)
			n, err = uChunk.Process(buf, rest[:k])
			require.NoError(t, err)
			got24 = append(got24, buf[:n]...)
			rest = rest[k:]
		}
		require.Equal(t, want, got)
		require.Equal(t, want24, got24)
	})
}

func BenchmarkDown3Frame(b *testing.B) {
	var d Down3
	in := tone(480, 800, 24000, 10000)
	out := make([]int16, 160)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = d.Process(out, in)
	}
}

func BenchmarkUp3Frame(b *testing.B) {
	var u Up3
	in := tone(160, 800, 8000, 10000)
	out := make([]int16, 480)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = u.Process(out, in)
	}
}
