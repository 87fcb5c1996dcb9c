package resample

// Down3 decimates 24 kHz to 8 kHz. The zero value is ready to use.
//
// Output sample m is the filtered input at 24 kHz index 3m, so a stream of
// n input samples yields ceil(n/3) outputs in total; per call the count
// depends on how many inputs are carried over (see OutLen).
type Down3 struct {
	// hist holds the last Taps inputs twice (at pos and pos+Taps), so that
	// hist[pos+1 : pos+1+Taps] is always one contiguous window, oldest first,
	// without copying on every sample.
	hist  [2 * Taps]float32
	pos   int // index of the newest sample in the first copy
	phase int // inputs consumed modulo 3; an output is due when it is 0
}

// Reset clears the filter history, as for a new signal.
func (d *Down3) Reset() { *d = Down3{} }

// OutLen is the number of samples Process will write for n input samples
// given the current state.
func (d *Down3) OutLen(n int) int {
	if n <= 0 {
		return 0
	}
	// Outputs fall on inputs whose running index is ≡ 0 (mod 3).
	first := (3 - d.phase) % 3
	if first >= n {
		return 0
	}
	return (n-1-first)/3 + 1
}

// Process filters src (24 kHz) into dst (8 kHz) and returns the number of
// samples written, OutLen(len(src)). If dst is shorter than that it returns
// ErrShortBuffer and consumes nothing.
func (d *Down3) Process(dst, src []int16) (int, error) {
	if len(dst) < d.OutLen(len(src)) {
		return 0, ErrShortBuffer
	}
	n := 0
	for _, s := range src {
		d.pos++
		if d.pos == Taps {
			d.pos = 0
		}
		v := float32(s)
		d.hist[d.pos] = v
		d.hist[d.pos+Taps] = v
		if d.phase == 0 {
			// The window ends at the sample just written.
			w := d.hist[d.pos+1 : d.pos+1+Taps]
			dst[n] = sat(dot(w, downTaps[:]))
			n++
		}
		d.phase++
		if d.phase == 3 {
			d.phase = 0
		}
	}
	return n, nil
}

// Up3 interpolates 8 kHz to 24 kHz: exactly three outputs per input. The
// zero value is ready to use.
type Up3 struct {
	// hist holds the last phaseTaps inputs twice, like Down3.hist.
	hist [2 * phaseTaps]float32
	pos  int
}

// Reset clears the filter history, as for a new signal.
func (u *Up3) Reset() { *u = Up3{} }

// Process interpolates src (8 kHz) into dst (24 kHz) and returns
// 3·len(src). If dst is shorter than that it returns ErrShortBuffer and
// consumes nothing.
func (u *Up3) Process(dst, src []int16) (int, error) {
	if len(dst) < 3*len(src) {
		return 0, ErrShortBuffer
	}
	for i, s := range src {
		u.pos++
		if u.pos == phaseTaps {
			u.pos = 0
		}
		v := float32(s)
		u.hist[u.pos] = v
		u.hist[u.pos+phaseTaps] = v
		w := u.hist[u.pos+1 : u.pos+1+phaseTaps]
		o := dst[3*i : 3*i+3]
		o[0] = sat(dot(w, upTaps[0][:]))
		o[1] = sat(dot(w, upTaps[1][:]))
		o[2] = sat(dot(w, upTaps[2][:]))
	}
	return 3 * len(src), nil
}

// dot is the inner product of two equally long vectors. Four accumulators
// shorten the floating-point dependency chain.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
