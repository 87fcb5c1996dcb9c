// Package realtime owns one realtime WebSocket session to one region of
// OpenAI / Azure OpenAI gpt-realtime: the URL and auth, the two wire dialects
// (GA and the legacy Azure preview / beta shape), typed server events, client
// event encoding, and the ordered conversation record a failover layer replays
// into a new session.
//
// What differs by region is rendered here too: the session.update for the
// region's dialect (voices each dialect accepts, ResolveVoice; no
// session.model), the 32-character limit on client ids (FitID), throttling
// as a typed *RateLimitError carrying the provider's wait, and the
// acknowledgement of each created item (ItemAcks) that a replay waits for.
//
// A Session keeps nothing that must survive it: the durable Record of the
// conversation is owned by whoever owns the call (package failover) and is
// updated from the events a Session delivers.
//
// Wire reference: shared/docs/realtime-protocol.md. Event names are normalised
// to their GA spelling on decode (response.audio.delta arrives as
// response.output_audio.delta, conversation.item.created as
// conversation.item.added), so code above this package handles one dialect.
package realtime
