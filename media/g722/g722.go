package g722

// BytesPerFrame20ms is the payload of a 20 ms packet: 8000 codes per second.
const BytesPerFrame20ms = 160

// SamplesPerFrame20ms is the 16 kHz PCM of a 20 ms packet.
const SamplesPerFrame20ms = 320

// Tables of the Recommendation (G.722 §3 and §4).
var (
	// qmfCoeffs are the 24 QMF coefficients h0..h11 (the filter is symmetric:
	// h23-i = hi).
	qmfCoeffs = [12]int{3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11}
	// q6 are the low-band quantiser decision levels (scaled by det>>12).
	q6 = [32]int{
		0, 35, 72, 110, 150, 190, 233, 276,
		323, 370, 422, 473, 530, 587, 650, 714,
		786, 858, 940, 1023, 1121, 1219, 1339, 1458,
		1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
	}
	// iln/ilp map a decision interval to the 6-bit low-band code for a
	// negative/positive difference.
	iln = [32]int{
		0, 63, 62, 31, 30, 29, 28, 27,
		26, 25, 24, 23, 22, 21, 20, 19,
		18, 17, 16, 15, 14, 13, 12, 11,
		10, 9, 8, 7, 6, 5, 4, 0,
	}
	ilp = [32]int{
		0, 61, 60, 59, 58, 57, 56, 55,
		54, 53, 52, 51, 50, 49, 48, 47,
		46, 45, 44, 43, 42, 41, 40, 39,
		38, 37, 36, 35, 34, 33, 32, 0,
	}
	// wl: low-band log scale factor multipliers, indexed through rl42.
	wl   = [8]int{-60, -30, 58, 172, 334, 538, 1198, 3042}
	rl42 = [16]int{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}
	// ilb: the inverse log base-2 table of the scale factor adaptation.
	ilb = [32]int{
		2048, 2093, 2139, 2186, 2233, 2282, 2332,
		2383, 2435, 2489, 2543, 2599, 2656, 2714,
		2774, 2834, 2896, 2960, 3025, 3091, 3158,
		3228, 3298, 3371, 3444, 3520, 3597, 3676,
		3756, 3838, 3922, 4008,
	}
	// qm4: 4-bit low-band inverse quantiser (used by the predictor update in
	// every mode, which is what makes 64/56/48 kbit/s interchangeable).
	qm4 = [16]int{
		0, -20456, -12896, -8968,
		-6288, -4240, -2584, -1200,
		20456, 12896, 8968, 6288,
		4240, 2584, 1200, 0,
	}
	// qm6: 6-bit low-band inverse quantiser (64 kbit/s decoder output).
	qm6 = [64]int{
		-136, -136, -136, -136,
		-24808, -21904, -19008, -16704,
		-14984, -13512, -12280, -11192,
		-10232, -9360, -8576, -7856,
		-7192, -6576, -6000, -5456,
		-4944, -4464, -4008, -3576,
		-3168, -2776, -2400, -2032,
		-1688, -1360, -1040, -728,
		24808, 21904, 19008, 16704,
		14984, 13512, 12280, 11192,
		10232, 9360, 8576, 7856,
		7192, 6576, 6000, 5456,
		4944, 4464, 4008, 3576,
		3168, 2776, 2400, 2032,
		1688, 1360, 1040, 728,
		432, 136, -432, -136,
	}
	// High band: 2-bit quantiser.
	qm2 = [4]int{-7408, -1616, 7408, 1616}
	ihn = [3]int{0, 1, 0}
	ihp = [3]int{0, 3, 2}
	wh  = [3]int{0, -214, 798}
	rh2 = [4]int{2, 1, 2, 1}
)

// sat16 saturates to the int16 range.
func sat16(v int) int {
	switch {
	case v > 32767:
		return 32767
	case v < -32768:
		return -32768
	}
	return v
}

// band is one sub-band's ADPCM state, identical in encoder and decoder:
// the decoder tracks the encoder exactly because both adapt on the same
// 4-bit (low) / 2-bit (high) codes.
type band struct {
	s, sp, sz int    // predictor output, pole and zero parts
	r         [3]int // reconstructed signal history
	a, ap     [3]int // pole coefficients (a[1], a[2]) and their update
	p         [3]int // partial reconstructed signal history
	d         [7]int // quantised difference history
	b, bp     [7]int // zero coefficients (b[1..6]) and their update
	nb        int    // log scale factor
	det       int    // quantiser scale factor
}

// update is block 4 of the Recommendation: reconstruct, adapt the pole and
// zero predictors, and compute the next prediction from the quantised
// difference d.
func (b *band) update(d int) {
	var sg [7]int
	b.d[0] = d
	b.r[0] = sat16(b.s + d)
	b.p[0] = sat16(b.sz + d)

	// UPPOL2: second pole coefficient.
	for i := range 3 {
		sg[i] = b.p[i] >> 15
	}
	wd1 := sat16(b.a[1] << 2)
	wd2 := wd1
	if sg[0] == sg[1] {
		wd2 = -wd1
	}
	wd2 = min(wd2, 32767)
	wd3 := -128
	if sg[0] == sg[2] {
		wd3 = 128
	}
	wd3 += wd2 >> 7
	wd3 += (b.a[2] * 32512) >> 15
	b.ap[2] = max(-12288, min(wd3, 12288))

	// UPPOL1: first pole coefficient, bounded by the second.
	wd1 = -192
	if sg[0] == sg[1] {
		wd1 = 192
	}
	wd2 = (b.a[1] * 32640) >> 15
	b.ap[1] = sat16(wd1 + wd2)
	wd3 = sat16(15360 - b.ap[2])
	b.ap[1] = max(-wd3, min(b.ap[1], wd3))

	// UPZERO: the six zero coefficients.
	wd1 = 0
	if d != 0 {
		wd1 = 128
	}
	sg[0] = d >> 15
	for i := 1; i < 7; i++ {
		sg[i] = b.d[i] >> 15
		wd2 = -wd1
		if sg[i] == sg[0] {
			wd2 = wd1
		}
		wd3 = (b.b[i] * 32640) >> 15
		b.bp[i] = sat16(wd2 + wd3)
	}

	// DELAYA.
	for i := 6; i > 0; i-- {
		b.d[i] = b.d[i-1]
		b.b[i] = b.bp[i]
	}
	for i := 2; i > 0; i-- {
		b.r[i] = b.r[i-1]
		b.p[i] = b.p[i-1]
		b.a[i] = b.ap[i]
	}

	// FILTEP, FILTEZ, PREDIC.
	wd1 = sat16(b.r[1] + b.r[1])
	wd1 = (b.a[1] * wd1) >> 15
	wd2 = sat16(b.r[2] + b.r[2])
	wd2 = (b.a[2] * wd2) >> 15
	b.sp = sat16(wd1 + wd2)
	sz := 0
	for i := 6; i > 0; i-- {
		wd1 = sat16(b.d[i] + b.d[i])
		sz += (b.b[i] * wd1) >> 15
	}
	b.sz = sat16(sz)
	b.s = sat16(b.sp + b.sz)
}

// adaptLow is blocks 3L (LOGSCL, SCALEL): the low-band scale factor from
// the 4-bit code index ril.
func (b *band) adaptLow(ril int) {
	b.nb = max(0, min((b.nb*127)>>7+wl[rl42[ril]], 18432))
	b.det = scale(b.nb, 8)
}

// adaptHigh is blocks 3H (LOGSCH, SCALEH) for the 2-bit high-band code.
func (b *band) adaptHigh(ih int) {
	b.nb = max(0, min((b.nb*127)>>7+wh[rh2[ih]], 22528))
	b.det = scale(b.nb, 10)
}

// scale turns a log scale factor into the linear det (SCALEL/SCALEH).
func scale(nb, shift int) int {
	wd1 := (nb >> 6) & 31
	wd2 := shift - (nb >> 11)
	var wd3 int
	if wd2 < 0 {
		wd3 = ilb[wd1] << -wd2
	} else {
		wd3 = ilb[wd1] >> wd2
	}
	return wd3 << 2
}

func (b *band) reset(det int) { *b = band{det: det} }

// Encoder codes 16 kHz PCM into G.722 at 64 kbit/s.
type Encoder struct {
	x    [24]int // transmit QMF history, oldest first
	band [2]band // low, high
}

// NewEncoder returns an encoder in the initial state of the Recommendation.
func NewEncoder() *Encoder {
	e := &Encoder{}
	e.Reset()
	return e
}

// Reset returns to the initial state (a new call, or after a codec change).
func (e *Encoder) Reset() {
	e.x = [24]int{}
	e.band[0].reset(32)
	e.band[1].reset(8)
}

// EncodedLen is the number of bytes Encode writes for n samples (n/2; an
// odd last sample is ignored).
func EncodedLen(n int) int { return n / 2 }

// Encode codes pcm (16 kHz) into dst and returns the bytes written,
// EncodedLen(len(pcm)); dst must hold that many. A trailing odd sample is
// not coded.
func (e *Encoder) Encode(dst []byte, pcm []int16) int {
	n := len(pcm) / 2
	dst = dst[:n]
	lo, hi := &e.band[0], &e.band[1]
	for j := range n {
		// Transmit QMF: shift two samples in, keep one output per pair.
		copy(e.x[:22], e.x[2:])
		e.x[22] = int(pcm[2*j])
		e.x[23] = int(pcm[2*j+1])
		sumOdd, sumEven := 0, 0
		for i := range 12 {
			sumOdd += e.x[2*i] * qmfCoeffs[i]
			sumEven += e.x[2*i+1] * qmfCoeffs[11-i]
		}
		xlow := (sumEven + sumOdd) >> 14
		xhigh := (sumEven - sumOdd) >> 14

		// Low band: SUBTRA, QUANTL, INVQAL.
		el := sat16(xlow - lo.s)
		wd := el
		if el < 0 {
			wd = -(el + 1)
		}
		i := 1
		for ; i < 30; i++ {
			if wd < (q6[i]*lo.det)>>12 {
				break
			}
		}
		ilow := ilp[i]
		if el < 0 {
			ilow = iln[i]
		}
		ril := ilow >> 2
		dlow := (lo.det * qm4[ril]) >> 15
		lo.adaptLow(ril)
		lo.update(dlow)

		// High band: SUBTRA, QUANTH, INVQAH.
		eh := sat16(xhigh - hi.s)
		wd = eh
		if eh < 0 {
			wd = -(eh + 1)
		}
		mih := 1
		if wd >= (564*hi.det)>>12 {
			mih = 2
		}
		ihigh := ihp[mih]
		if eh < 0 {
			ihigh = ihn[mih]
		}
		dhigh := (hi.det * qm2[ihigh]) >> 15
		hi.adaptHigh(ihigh)
		hi.update(dhigh)

		dst[j] = byte(ihigh<<6 | ilow)
	}
	return n
}

// Decoder decodes 64 kbit/s G.722 into 16 kHz PCM.
type Decoder struct {
	x    [24]int // receive QMF history, oldest first
	band [2]band
}

// NewDecoder returns a decoder in the initial state of the Recommendation.
func NewDecoder() *Decoder {
	d := &Decoder{}
	d.Reset()
	return d
}

// Reset returns to the initial state.
func (d *Decoder) Reset() {
	d.x = [24]int{}
	d.band[0].reset(32)
	d.band[1].reset(8)
}

// DecodedLen is the number of samples Decode writes for n bytes.
func DecodedLen(n int) int { return 2 * n }

// Decode decodes codes into dst (16 kHz) and returns the samples written,
// DecodedLen(len(codes)); dst must hold that many.
func (d *Decoder) Decode(dst []int16, codes []byte) int {
	dst = dst[:2*len(codes)]
	lo, hi := &d.band[0], &d.band[1]
	for j, c := range codes {
		code := int(c)
		ilow := code & 0x3f
		ihigh := code >> 6 & 0x03

		// Low band: INVQBL (6-bit, for the output), RECONS, LIMIT; the
		// predictor adapts on the 4-bit code (INVQAL) like the encoder's.
		rlow := max(-16384, min(lo.s+(lo.det*qm6[ilow])>>15, 16383))
		ril := ilow >> 2
		dlow := (lo.det * qm4[ril]) >> 15
		lo.adaptLow(ril)
		lo.update(dlow)

		// High band: INVQAH, RECONS, LIMIT.
		dhigh := (hi.det * qm2[ihigh]) >> 15
		rhigh := max(-16384, min(dhigh+hi.s, 16383))
		hi.adaptHigh(ihigh)
		hi.update(dhigh)

		// Receive QMF: two output samples per code.
		copy(d.x[:22], d.x[2:])
		d.x[22] = rlow + rhigh
		d.x[23] = rlow - rhigh
		out1, out2 := 0, 0
		for i := range 12 {
			out2 += d.x[2*i] * qmfCoeffs[i]
			out1 += d.x[2*i+1] * qmfCoeffs[11-i]
		}
		dst[2*j] = int16(sat16(out1 >> 11))
		dst[2*j+1] = int16(sat16(out2 >> 11))
	}
	return 2 * len(codes)
}
