package resample

// Wideband (G.722) conversion between 16 kHz and 24 kHz, ratio 2:3.
//
// Both directions use one prototype low-pass designed at 48 kHz, the
// common multiple: a 145-tap Kaiser-windowed sinc (cut-off 8 kHz, the
// 16 kHz Nyquist frequency) run in polyphase form. Up16To24 zero-stuffs by
// 3 and keeps every second sample; Down24To16 zero-stuffs by 2 and keeps
// every third; only the products that reach a kept sample are computed.
const (
	// WideTaps is the length of the 48 kHz prototype.
	WideTaps = 145
	// WideDelay16k and WideDelay24k are the group delay of either wideband
	// converter, (WideTaps-1)/2 = 72 samples at 48 kHz, in whole samples at
	// each side's rate (1.5 ms).
	WideDelay16k = (WideTaps - 1) / 2 / 3
	WideDelay24k = (WideTaps - 1) / 2 / 2

	wideRateHz   = 48000.0
	wideCutoffHz = 8000.0
	wideBeta     = 9.0

	upWidePhaseTaps   = (WideTaps + 2) / 3 // taps per branch when stuffing by 3
	downWidePhaseTaps = (WideTaps + 1) / 2 // taps per branch when stuffing by 2
)

var (
	wideProto [WideTaps]float64
	// upWideTaps[r] is the branch of 3·wideProto at 48 kHz offset r, in
	// oldest-to-newest window order; downWideTaps likewise with 2·proto.
	upWideTaps   [3][upWidePhaseTaps]float32
	downWideTaps [2][downWidePhaseTaps]float32
)

func init() { designWide() }

func designWide() {
	kaiserLowpass(wideProto[:], wideCutoffHz, wideRateHz, wideBeta)
	// Output with 48 kHz offset r from the newest input n is
	// Σ_j L·h[r+L·j]·x[n−j]; window index k (oldest first) holds x[n−(P−1−k)].
	for r := range 3 {
		for k := range upWidePhaseTaps {
			if i := r + 3*(upWidePhaseTaps-1-k); i < WideTaps {
				upWideTaps[r][k] = float32(3 * wideProto[i])
			}
		}
	}
	for r := range 2 {
		for k := range downWidePhaseTaps {
			if i := r + 2*(downWidePhaseTaps-1-k); i < WideTaps {
				downWideTaps[r][k] = float32(2 * wideProto[i])
			}
		}
	}
}

// Up16To24 interpolates 16 kHz to 24 kHz: three outputs per two inputs.
// The zero value is ready to use.
type Up16To24 struct {
	hist [2 * upWidePhaseTaps]float32
	pos  int
	// next is the 48 kHz offset of the next output after the newest input,
	// minus 3 (so that the zero value means "no input yet").
	next int
}

// Reset clears the filter history, as for a new signal.
func (u *Up16To24) Reset() { *u = Up16To24{} }

// OutLen is the number of samples Process will write for n inputs.
func (u *Up16To24) OutLen(n int) int { return wideOutLen(u.next+3, 3, 2, n) }

// Process interpolates src (16 kHz) into dst (24 kHz) and returns
// OutLen(len(src)). If dst is shorter it returns ErrShortBuffer and
// consumes nothing. Twenty ms (320 samples) give exactly 480.
func (u *Up16To24) Process(dst, src []int16) (int, error) {
	if len(dst) < u.OutLen(len(src)) {
		return 0, ErrShortBuffer
	}
	r := u.next + 3
	n := 0
	for _, s := range src {
		u.pos++
		if u.pos == upWidePhaseTaps {
			u.pos = 0
		}
		v := float32(s)
		u.hist[u.pos] = v
		u.hist[u.pos+upWidePhaseTaps] = v
		w := u.hist[u.pos+1 : u.pos+1+upWidePhaseTaps]
		for r -= 3; r < 3; r += 2 {
			dst[n] = sat(dot(w, upWideTaps[r][:]))
			n++
		}
	}
	u.next = r - 3
	return n, nil
}

// Down24To16 decimates 24 kHz to 16 kHz: two outputs per three inputs.
// The zero value is ready to use.
type Down24To16 struct {
	hist [2 * downWidePhaseTaps]float32
	pos  int
	next int // as Up16To24.next, minus 2
}

// Reset clears the filter history, as for a new signal.
func (d *Down24To16) Reset() { *d = Down24To16{} }

// OutLen is the number of samples Process will write for n inputs.
func (d *Down24To16) OutLen(n int) int { return wideOutLen(d.next+2, 2, 3, n) }

// Process decimates src (24 kHz) into dst (16 kHz) and returns
// OutLen(len(src)). If dst is shorter it returns ErrShortBuffer and
// consumes nothing. Twenty ms (480 samples) give exactly 320.
func (d *Down24To16) Process(dst, src []int16) (int, error) {
	if len(dst) < d.OutLen(len(src)) {
		return 0, ErrShortBuffer
	}
	r := d.next + 2
	n := 0
	for _, s := range src {
		d.pos++
		if d.pos == downWidePhaseTaps {
			d.pos = 0
		}
		v := float32(s)
		d.hist[d.pos] = v
		d.hist[d.pos+downWidePhaseTaps] = v
		w := d.hist[d.pos+1 : d.pos+1+downWidePhaseTaps]
		for r -= 2; r < 2; r += 3 {
			dst[n] = sat(dot(w, downWideTaps[r][:]))
			n++
		}
	}
	d.next = r - 2
	return n, nil
}

// wideOutLen counts the outputs of n inputs for a converter stuffing by l
// and keeping every m-th sample, whose next output offset is r.
func wideOutLen(r, l, m, n int) int {
	out := 0
	for range n {
		for r -= l; r < l; r += m {
			out++
		}
	}
	return out
}
