// Package resample owns the fixed-ratio 3:1 sample-rate conversion between
// the 8 kHz telephone side (G.711) and the 24 kHz PCM16 side of the AI
// model: Up3 interpolates 8 kHz → 24 kHz and Down3 decimates 24 kHz → 8 kHz.
//
// Both use one prototype low-pass filter designed for 24 kHz: a 97-tap
// Kaiser-windowed sinc (cut-off 3.92 kHz, β = 8.5), linear phase, built once
// at package initialisation. Its measured response: within 0.07 dB from 0 to
// 3.4 kHz (the G.711 speech band), at least 85 dB down from 4.6 kHz, at least
// 90 dB from 5 kHz. Down3 needs that stop band because everything above
// 4 kHz at 24 kHz folds back into the 0–4 kHz band at 8 kHz; Up3 needs it to
// remove the spectral images that zero-stuffing creates around 8 and 16 kHz.
// Both run in polyphase form (only the products that contribute to an output
// are computed). The group delay is 48 samples at 24 kHz (2 ms), which is 16
// whole samples at 8 kHz, so the two directions stay sample-aligned.
//
// For wideband (G.722) calls, Up16To24 and Down24To16 convert 16 kHz ↔
// 24 kHz (ratio 2:3) the same way: a 145-tap Kaiser-windowed sinc designed
// at 48 kHz (cut-off 8 kHz, β = 9), in polyphase form. Measured (tests in
// wide_test.go): within 0.001 dB from 50 Hz to 7 kHz (the G.722 audio band),
// aliases of 9–12 kHz and images of 0.1–7 kHz at least 88 dB down; group
// delay 72 samples at 48 kHz (1.5 ms: 24 samples at 16 kHz, 36 at 24 kHz).
//
// The converters are stateful: the filter history is carried across calls,
// so a signal processed in 20 ms frames (or any chunking, including lengths
// that are not a multiple of 3 for Down3) gives the same output as the
// signal processed in one block. The zero value is ready to use; Reset
// returns to it. Samples are int16; results are rounded and saturated to the
// int16 range. Nothing here allocates, and a converter must not be used from
// two goroutines at once.
package resample
