// Package jitter owns the caller-side reorder and de-duplication window of
// the RTP receive path: a few packets deep, keyed on the RFC 3550 extended
// sequence number (§A.1), so 16-bit wrap-around at 65535 is invisible.
//
// It is deliberately not a time-based playout buffer. The realtime model
// buffers audio itself, so all we need is to put packets back in order, drop
// duplicates and packets that arrive after their place was given up, and say
// where packets are missing so the caller can conceal them and keep the
// model's audio clock continuous. In-order packets are released at once; a
// gap holds later packets back until Depth packets beyond the hole have
// arrived (default 3, i.e. 60 ms of 20 ms audio), then the hole is reported
// as lost. Flush releases everything when the sender goes quiet, so the last
// words are not stuck behind a hole.
//
// A new SSRC (RFC 3550 §8.2) or a confirmed large sequence jump (more than
// JumpLimit; confirmed by the next packet following it, as RFC 3550 §A.1
// does with its probation) restarts the sequence space. Packets still held
// from before are released first, so nothing is reordered across the
// restart.
//
// Payloads are copied into slots allocated once in New: pion/rtp's Packet
// aliases the read buffer, which the reader reuses for the next datagram.
// Push and Pop never allocate. A Buffer is not safe for concurrent use; the
// RTP reader goroutine owns it.
package jitter
