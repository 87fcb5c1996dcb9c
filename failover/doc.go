// Package failover owns a call's AI conversation across realtime sessions:
// the region pool with per-region health and circuit breakers, detection of
// every way a session fails a caller (failed responses, error events, closed
// or dropped sockets, refused connects, stalls, session expiry), and the swap
// to a session in another region with the conversation replayed, so the
// caller hears only a short pause. It also does what one healthy session
// needs: streaming caller audio, playing the model's audio, barge-in with
// exact truncation, and keeping a single response in flight.
package failover
