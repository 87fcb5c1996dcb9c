package resample

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// down16 runs src (24 kHz) through a fresh Down24To16 in 20 ms chunks.
func down16(t testing.TB, src []int16) []int16 {
	var d Down24To16
	out := make([]int16, 0, 2*len(src)/3+2)
	buf := make([]int16, 321)
	for len(src) > 0 {
		k := min(480, len(src))
		n, err := d.Process(buf, src[:k])
		require.NoError(t, err)
		out = append(out, buf[:n]...)
		src = src[k:]
	}
	return out
}

// up24 runs src (16 kHz) through a fresh Up16To24 in 20 ms chunks.
func up24(t testing.TB, src []int16) []int16 {
	var u Up16To24
	out := make([]int16, 0, 3*len(src)/2+2)
	buf := make([]int16, 481)
	for len(src) > 0 {
		k := min(320, len(src))
		n, err := u.Process(buf, src[:k])
		require.NoError(t, err)
		out = append(out, buf[:n]...)
		src = src[k:]
	}
	return out
}

// Passband sweep: 50 Hz … 7 kHz (the G.722 audio band) keeps its level
// within 0.1 dB both ways. Windows hold whole cycles (1 s, integer Hz).
func TestWidePassbandFlat(t *testing.T) {
	const amp = 16000.0
	worst := 0.0
	for f := 50.0; f <= 7000; f += 50 {
		out := down16(t, tone(24000*6/5, f, 24000, amp))
		dev := db(amplitude(out[2000:18000], f, 16000) / amp)
		worst = max(worst, math.Abs(dev))
		require.InDelta(t, 0, dev, 0.1, "down %.0f Hz", f)

		out = up24(t, tone(16000*6/5, f, 16000, amp))
		dev = db(amplitude(out[3000:27000], f, 24000) / amp)
		worst = max(worst, math.Abs(dev))
		require.InDelta(t, 0, dev, 0.1, "up %.0f Hz", f)
	}
	t.Logf("worst passband deviation 50–7000 Hz: %.4f dB", worst)
}

// A 24 kHz tone between 9 and 12 kHz folds to 4–7 kHz when decimated to
// 16 kHz; it must be ≥ 80 dB down at the alias and in total.
func TestDown24To16AliasRejection(t *testing.T) {
	const amp = 30000.0
	worstBin, worstRMS := -1000.0, -1000.0
	for f := 9000.0; f <= 12000; f += 100 {
		out := down16(t, tone(24000*6/5, f, 24000, amp))[2000:18000]
		alias := 16000 - f
		bin := db(amplitude(out, alias, 16000) / amp)
		total := db(rms(out) / (amp / math.Sqrt2))
		worstBin, worstRMS = max(worstBin, bin), max(worstRMS, total)
		require.Less(t, bin, -80.0, "%.0f Hz → alias %.0f Hz", f, alias)
		require.Less(t, total, -80.0, "%.0f Hz total output", f)
	}
	t.Logf("worst alias 9–12 kHz: bin %.1f dB, total RMS %.1f dB", worstBin, worstRMS)
}

// Interpolating 16 kHz → 24 kHz creates images at 16k±f (folded to 8k+f
// at 24 kHz); everything but the tone must be ≥ 80 dB down.
func TestUp16To24ImageRejection(t *testing.T) {
	const amp = 30000.0
	worstImg, worstResidual := -1000.0, -1000.0
	for f := 100.0; f <= 7000; f += 100 {
		out := up24(t, tone(16000*6/5, f, 16000, amp))[3000:27000]
		img := 8000 + f
		if img > 12000 {
			img = 24000 - img
		}
		lvl := db(amplitude(out, img, 24000) / amp)
		worstImg = max(worstImg, lvl)
		require.Less(t, lvl, -80.0, "tone %.0f Hz image %.0f Hz", f, img)
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
		lvl = db(math.Sqrt(res/float64(len(out))) / (amp / math.Sqrt2))
		worstResidual = max(worstResidual, lvl)
		require.Less(t, lvl, -80.0, "tone %.0f Hz residual", f)
	}
	t.Logf("worst Up16To24 image: %.1f dB, worst residual: %.1f dB", worstImg, worstResidual)
}

// The impulse response peaks at the documented delay in both directions.
func TestWideDelay(t *testing.T) {
	in := make([]int16, 600)
	in[60] = 30000 // 24 kHz index 60 = 16 kHz index 40
	out := down16(t, in)
	require.Equal(t, 40+WideDelay16k, argmax(out))

	in16 := make([]int16, 400)
	in16[40] = 20000 // 16 kHz index 40 = 24 kHz index 60
	require.Equal(t, 60+WideDelay24k, argmax(up24(t, in16)))
}

func argmax(x []int16) int {
	p := 0
	for i, v := range x {
		if v > x[p] {
			p = i
		}
	}
	return p
}

func TestWideOutLenAndShortBuffer(t *testing.T) {
	var u Up16To24
	var d Down24To16
	require.Equal(t, 480, u.OutLen(320))
	require.Equal(t, 320, d.OutLen(480))
	total := 0
	for _, k := range []int{1, 1, 1, 5, 7} { // 15 inputs
		want := u.OutLen(k)
		n, err := u.Process(make([]int16, want), make([]int16, k))
		require.NoError(t, err)
		require.Equal(t, want, n)
		total += n
	}
	require.Equal(t, (3*15+1)/2, total) // ceil(1.5·n): output 0 lines up with input 0
	total = 0
	for _, k := range []int{2, 1, 4, 8} { // 15 inputs
		n, err := d.Process(make([]int16, 20), make([]int16, k))
		require.NoError(t, err)
		total += n
	}
	require.Equal(t, 10, total)
	_, err := u.Process(make([]int16, 2), make([]int16, 4))
	require.ErrorIs(t, err, ErrShortBuffer)
	_, err = d.Process(make([]int16, 1), make([]int16, 6))
	require.ErrorIs(t, err, ErrShortBuffer)
	u.Reset()
	d.Reset()
	require.Equal(t, Up16To24{}, u)
	require.Equal(t, Down24To16{}, d)
}

// FuzzWideChunking: any chunking equals one-block processing.
func FuzzWideChunking(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7}, []byte{3, 0, 1})
	f.Add(make([]byte, 2000), []byte{200, 17, 255, 1})
	f.Fuzz(func(t *testing.T, raw []byte, chunks []byte) {
		src := make([]int16, len(raw)/2)
		for i := range src {
			src[i] = int16(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
		var uw, uc Up16To24
		var dw, dc Down24To16
		wantU := make([]int16, uw.OutLen(len(src)))
		_, err := uw.Process(wantU, src)
		require.NoError(t, err)
		wantD := make([]int16, dw.OutLen(len(src)))
		_, err = dw.Process(wantD, src)
		require.NoError(t, err)
		var gotU, gotD []int16
		buf := make([]int16, 400)
		for i, rest := 0, src; len(rest) > 0; i++ {
			k := len(rest)
			if len(chunks) > 0 && i < 4*len(src) {
				k = max(1, int(chunks[i%len(chunks)]))
			}
			k = min(k, 256, len(rest))
			n, err := uc.Process(buf, rest[:k])
			require.NoError(t, err)
			gotU = append(gotU, buf[:n]...)
			n, err = dc.Process(buf, rest[:k])
			require.NoError(t, err)
			gotD = append(gotD, buf[:n]...)
			rest = rest[k:]
		}
		require.Equal(t, wantU, append([]int16{}, gotU...))
		require.Equal(t, wantD, append([]int16{}, gotD...))
	})
}

func TestWideNoAllocs(t *testing.T) {
	var u Up16To24
	var d Down24To16
	in16 := tone(320, 800, 16000, 10000)
	in24 := tone(480, 800, 24000, 10000)
	o24 := make([]int16, 480)
	o16 := make([]int16, 320)
	require.Zero(t, testing.AllocsPerRun(200, func() {
		_, _ = u.Process(o24, in16)
		_, _ = d.Process(o16, in24)
	}))
}

func TestWideRoundTrip(t *testing.T) {
	x := tone(16000, 1000, 16000, 12000)
	y := down16(t, up24(t, x))
	// 16k → 24k → 16k: delay 2·WideDelay16k, same tone.
	var noise, sig float64
	for i := 2000; i < 15000; i++ {
		e := float64(y[i+2*WideDelay16k]) - float64(x[i])
		noise += e * e
		sig += float64(x[i]) * float64(x[i])
	}
	require.Greater(t, 10*math.Log10(sig/noise), 80.0)
}

func BenchmarkUp16To24Frame(b *testing.B) {
	var u Up16To24
	in := tone(320, 800, 16000, 10000)
	out := make([]int16, 480)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = u.Process(out, in)
	}
}

func BenchmarkDown24To16Frame(b *testing.B) {
	var d Down24To16
	in := tone(480, 800, 24000, 10000)
	out := make([]int16, 320)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = d.Process(out, in)
	}
}
