// Package failover owns a call's AI conversation across realtime sessions:
// the region pool with per-region health and circuit breakers, detection of
// every way a session fails a caller (failed responses, error events, closed
// or dropped sockets, refused connects, stalls, session expiry), and the swap
// to a session in another region with the conversation replayed, so the
// caller hears only a short pause. It also does what one healthy session
// needs: streaming caller audio, playing the model's audio, barge-in with
// exact truncation, and keeping a single response in flight.
//
// # Shape
//
// A Conversation is an actor: Run is one goroutine that owns the
// realtime.Record and the conversation's state; every other method posts to
// it and returns. Session events are tagged with the session's generation,
// so events of a session already swapped out are ignored; Run reads one
// session's events itself, and a forwarder goroutine moves those of any
// other session (a swap's new session, a standby, a hedge) into its queue.
//
// Inside the actor the conversation is a state machine (fsm.go): every
// input (caller audio, a session's event or end, a dial's result, a message
// from the call, a tick) goes through step, where the transition table
// names the action for the state (connecting, active, swapping, ending,
// gave up) and the input's kind. Actions update the state's owned parts,
// one file each: caller audio (caller.go), responses and watchdogs
// (turns.go), playout (playout.go), the swap and the give-up count
// (swap.go), the standby (standby.go), the hedge (hedge.go), function calls
// (functions.go). What leaves the actor (dial, watch or close a session, a
// control for the call, a tool run) is returned from step as effects
// (effects.go), which
// the shell carries out: Run on goroutines, the tests synchronously, so
// the failover tests are tables of (inputs, clock) → effects and state.
// Giving up is decided in one place (nextAttempt). The replay into a new
// session is sent from the actor; its acknowledgements come back as the
// session's events while swapping, bounded by a timeout and by the call's
// context.
//
// # Failure detection
//
// Each failure is classified once as a Trigger (its String is the log and
// metric label): response.done failed (server_error, rate limit, auth),
// `error` events of type server_error or a rate-limit code,
// session_expired / close 1001 / expires_at (expiry), other closes and
// drops, three stall watchdogs driven by the injected clock, and silent
// answers. Recoverable errors (the ones the protocol lists as races) are
// logged, never swapped on.
//
// Failures the service does not announce (silent.go): an answer that
// arrives as text in an audio call, or completes with no audio and no
// function call, is caught at its first text event (or its
// response.done), cancelled, deleted and asked again with the caller's
// last turn moved to the end as audio; silent again, the session is left
// (silent_answer). Throttling (throttle.go) is not an outage: a 429 or a
// rate-limit error sets the region aside for the time the provider asked,
// without counting against its breaker, and the turn goes elsewhere.
//
// # Swap and replay
//
//   - The answer the caller was waiting for is worked out first: the
//     response that failed or was running (unless the caller had interrupted
//     it), our create not yet started, or a committed turn not yet answered.
//   - If that answer had produced audio, the audio received keeps playing
//     (heard.go): the continuation is queued behind it, and the record
//     claims as heard only what a slow speaker says in that audio (the
//     transcript runs ahead of the audio).
//   - Caller audio is never dropped: audio the old session had not committed
//     and everything said during the swap is buffered, and appended to the
//     new session after the replay, before the response.create, so that the
//     new session's VAD decides whether it holds a turn (whose answer then
//     supersedes the one asked for, like a live barge-in). The turn
//     whose answer failed was committed, so it is already a user item in the
//     record (its audio, or its transcript when known) and is replayed.
//   - Don't repeat: when the caller heard part of the failed answer, the
//     replay holds that part as assistant output_text and the response.create
//     carries the session instructions plus a note asking to continue from
//     where it was cut without repeating (response instructions replace the
//     session's, so both are sent).
//   - Exactly one response.create ends a swap; plain creates queued behind
//     the failed answer (tool follow-ups, DTMF) are merged into it.
//   - The replay is confirmed (replay.go): the caller's last turn goes as
//     audio, every item must be acknowledged (item.added, or an error
//     naming its create) before the response.create; a refused item is
//     repaired and resent in its place, else the swap moves on to another
//     region; bounded by a timeout. Meanwhile the conversation stays
//     swapping and the new session's events go to the replay.
//   - MaxSwapsInRow consecutive failed attempts (dial error, replay error, or
//     a new session that fails before completing a response) give up
//     (apology, ControlGiveUp, ErrAllRegionsFailed) only once every region
//     the call may use has failed two attempts in an outage that has lasted
//     5 s (at once while the call is still ringing), or the outage has
//     lasted GiveUpAfter: a failing region never drops the call while
//     another can take it. Until then, once every region has failed twice,
//     the swap tries again once a second. A swap that finds every remaining
//     region throttled waits for its Retry-After within that bound.
//
// # Hedged answers
//
// A turn whose first output is late (past a multiple of its region's
// recent median time to first audio, between a floor and a ceiling) is
// asked again in a session in another region, the warm standby or a fresh
// one, with the same replay and create (hedge.go). The first output wins
// inside one step: the loser's response is cancelled and its session
// closed, so no session holds an answer the caller did not hear; a primary
// that lost counts against its region. Hedges are budgeted per call and
// per process (the pool); the stall watchdogs remain the last resort.
//
// Rotation prepares a fresh session (or uses the warm standby) before the
// session limit and switches at a turn boundary, with the same replay and no
// response.create.
package failover
