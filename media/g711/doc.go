// Package g711 owns slice-level ITU-T G.711 μ-law and A-law conversion for
// the media path: encode int16 PCM into caller-provided byte buffers, decode
// back, transcode law to law, and convert PCM16 little-endian bytes to and
// from int16.
//
// It wraps the per-sample ("frame") functions of github.com/zaf/g711, never
// that package's slice functions, because those allocate a new slice per
// call and the media path handles one 20 ms frame per call every 20 ms for
// thousands of calls. Every function here writes into dst, returns how much
// it wrote and never allocates.
//
// The static RTP payload types are 0 (PCMU, μ-law) and 8 (PCMA, A-law),
// RFC 3551 §4.5.14 and Table 4.
package g711
