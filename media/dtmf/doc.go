// Package dtmf owns RFC 4733 telephone-events: the 4-byte payload codec
// (§2.3) and a receive-side Detector that turns a stream of event packets
// into one report per key press.
//
// An event is identified by its RTP timestamp (§2.3.1: all packets of one
// event carry the timestamp of its start), never by the marker bit, which is
// lost with the first packet. The Detector reports a press once, at the
// first packet with the E bit (§2.5.1.3 sends the end packet three times;
// the copies are ignored); it also reports when the start packets were lost
// and only an end packet arrived, and when all end packets were lost (at the
// next event or after a timeout). Events longer than the 16-bit duration
// field are sent in segments with fresh timestamps (§2.5.1.3); a segment that
// continues the previous one exactly is not a new press.
//
// Events 0–15 are the DTMF keys 0–9, *, #, A–D (§3.2); other events (e.g. 16,
// flash) are ignored. Nothing here allocates; a Detector is owned by one
// goroutine.
package dtmf
