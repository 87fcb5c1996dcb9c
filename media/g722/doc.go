// Package g722 owns the ITU-T G.722 wideband codec (7 kHz audio, 16 kHz
// sampling) at 64 kbit/s, the only mode RTP payload type 9 carries
// (RFC 3551 §4.5.2). It is pure Go, so the binary stays static and
// cgo-free: no G.722 module the workplace proxy serves builds without cgo
// (github.com/gotranspile/g722 and github.com/shenjinti/go722 are refused).
//
// The algorithm is the one of the Recommendation: a 24-tap quadrature
// mirror filter splits 16 kHz PCM into a 0–4 kHz and a 4–8 kHz sub-band at
// 8 kHz each; the low band is coded with 6-bit and the high band with 2-bit
// backward-adaptive ADPCM (pole-zero predictors, logarithmic scale
// factors), one byte per pair of input samples: 160 bytes per 20 ms. The
// integer arithmetic (saturations, shifts, tables) follows the fixed-point
// description of G.722 and the widely used public-domain implementation
// derived from the CMU codec, so the codes are interoperable with other
// implementations.
//
// Encoder and Decoder are stateful, carry their history across calls (any
// framing gives the same result), allocate nothing, and the zero value is
// NOT ready: use NewEncoder/NewDecoder or Reset. A codec must not be used
// from two goroutines at once.
package g722
