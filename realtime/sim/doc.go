// Package sim is a protocol-faithful simulator of the OpenAI / Azure OpenAI
// gpt-realtime WebSocket service, the other side of package realtime's wire.
// The sipbridge binary embeds it (run the server against two simulated
// regions and call it with a softphone) and every test dials it.
//
// It owns: the upgrade (routes /v1/realtime and /openai/v1/realtime for GA,
// /openai/realtime for the Azure preview shape; Bearer / api-key header /
// api-key query auth, each route taking exactly its provider's styles; the
// beta header rejected with beta_api_shape_disabled and close 4000); strict parsing and validation of every client event in
// both dialects, answering each violation with the documented `error` event
// (code, message, param, and the client's event_id); the input audio buffer
// with an energy-based server VAD that runs on audio time, not wall time;
// the conversation (items, create/delete/truncate/retrieve rules); responses
// with the documented event order, a synthetic tone "voice" at
// Config.VoiceHz paced at Config.Speedup× real time, text-only output and
// function calls; idle timeouts and the session limit; and injectable Faults
// (failed, stalled, throttled and error-event responses, latency spikes and
// a heavy-tailed time to first audio, text-only answers after a replayed
// history, 1011 closes, dropped connections, refused upgrades (429 with
// Retry-After) and connects, early expiry) for failover tests. Sessions() exposes what each session received for assertions.
//
// The simulator parses client events itself (it must not share the client's
// codec, or both could be wrong together) and imports package realtime only
// for constants and types. It never imports media: G.711 comes from
// zaf/g711 directly.
//
// Wire reference: shared/docs/realtime-protocol.md; section numbers (§2.6 …)
// in comments point there. Where the reference does not say what the real
// service answers, the simulator picks the API's usual wording and says so
// at the spot.
package sim
