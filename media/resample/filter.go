package resample

import "math"

const (
	// Taps is the length of the prototype low-pass filter at 24 kHz.
	Taps = 97
	// Delay24k is the group delay of either converter in 24 kHz samples
	// ((Taps-1)/2); it is Delay8k whole samples at 8 kHz.
	Delay24k = (Taps - 1) / 2
	// Delay8k is the group delay in 8 kHz samples.
	Delay8k = Delay24k / 3

	// phaseTaps is the number of taps of each of Up3's three polyphase
	// branches: ceil(Taps/3).
	phaseTaps = (Taps + 2) / 3

	rateHz   = 24000.0
	cutoffHz = 3920.0 // −6 dB point; keeps 0–3.4 kHz within 0.07 dB
	beta     = 8.5    // Kaiser β: ≈85 dB side-lobe rejection with 97 taps
)

var (
	// proto is the prototype low-pass at 24 kHz, unity gain at DC.
	proto [Taps]float64
	// downTaps is proto as float32 for Down3 (symmetric, so no reversal).
	downTaps [Taps]float32
	// upTaps[p] is the polyphase branch p of 3·proto (the factor 3 restores
	// the level lost to zero-stuffing), reversed to run over history in
	// oldest-to-newest order, zero-padded to phaseTaps.
	upTaps [3][phaseTaps]float32
)

func init() { design() }

// design builds the Kaiser-windowed sinc low-pass and its polyphase split.
func design() {
	kaiserLowpass(proto[:], cutoffHz, rateHz, beta)
	for i := range proto {
		downTaps[i] = float32(proto[i])
	}
	// Up3 output phase p at input time n is Σ_j 3·h[3j+p]·x[n−j]. With
	// history stored oldest first (x[n−phaseTaps+1] … x[n]), the tap for
	// history index k is h[3(phaseTaps−1−k)+p].
	for p := range 3 {
		for k := range phaseTaps {
			if i := 3*(phaseTaps-1-k) + p; i < Taps {
				upTaps[p][k] = float32(3 * proto[i])
			}
		}
	}
}

// besselI0 is the zeroth-order modified Bessel function of the first kind,
// by its power series (converges fast for the β used here).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 64; k++ {
		term *= x / 2 / float64(k)
		sum += term * term
		if term*term < sum*1e-17 {
			break
		}
	}
	return sum
}

// sat rounds v to the nearest integer and saturates it to int16.
func sat(v float32) int16 {
	switch {
	case v >= 32766.5:
		return math.MaxInt16
	case v <= -32767.5:
		return math.MinInt16
	case v >= 0:
		return int16(v + 0.5)
	default:
		return int16(v - 0.5)
	}
}

// kaiserLowpass fills h with a Kaiser-windowed sinc low-pass cut at cutoffHz
// for a sample rate of rateHz, normalised to unity gain at DC. Both
// converter families (3:1 and 2:3) design their prototypes with it.
func kaiserLowpass(h []float64, cutoffHz, rateHz, beta float64) {
	n := len(h)
	m := float64(n-1) / 2
	wc := 2 * cutoffHz / rateHz // normalised cut-off (1 = Nyquist)
	sum := 0.0
	for i := range h {
		x := float64(i) - m
		s := wc
		if x != 0 {
			s = math.Sin(math.Pi*wc*x) / (math.Pi * x)
		}
		r := 2*float64(i)/float64(n-1) - 1
		w := besselI0(beta*math.Sqrt(max(0, 1-r*r))) / besselI0(beta)
		h[i] = s * w
		sum += h[i]
	}
	for i := range h {
		h[i] /= sum
	}
}
