// Package media owns a call's audio between RTP and PCM frames: the RTP
// socket and symmetric-RTP latching, a small reorder/dedupe jitter buffer
// with loss concealment, G.711 (via zaf/g711), band-limited 8 kHz ↔ 24 kHz
// resampling, the 20 ms playout pacer with continuous timestamps, comfort
// noise, and RFC 4733 DTMF. It knows nothing of SIP or of the AI: audio goes
// out through an AudioSink and comes in through Play, tagged with an item id
// so the caller of Play can ask how much of each item was actually sent.
//
// Subpackages: g711, resample, jitter, dtmf (pure, allocation-free codecs).
package media
