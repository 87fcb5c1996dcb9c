// Package sip is the bridge's SIP user agent server: it answers calls from a
// SIP trunk and joins each one to an AI conversation.
//
// One Server listens on the configured UDP/TCP sockets with
// github.com/emiago/sipgo (transaction layer, RFC 3261 §17) and keeps its own
// small dialog map for in-dialog requests (BYE, re-INVITE, ACK, NOTIFY).
// Each INVITE is handled by the goroutine sipgo gives its handler: that
// goroutine owns the call until it ends. The call (call.go) is the
// orchestrator: it builds the conversation (package failover), then the RTP
// stream (package media) with the conversation as its sink, and waits in
// one loop (waitForCallEnd) on its context, its leg's events, the media's
// events and the conversation's controls; it alone decides why the call
// ends. The leg (leg.go) is the SIP signalling: the dialog, offer/answer
// (one answer-an-offer and one take-an-answer function), session timers,
// target refresh, REFER/NOTIFY, ACK and BYE, and the one builder of our
// in-dialog requests; it reports media changes, hold, INFO DTMF, expiry and
// the caller's BYE to the call as events on one channel.
//
// The conversation factory gets the call's CallInfo: who called and how
// (From with its display name, To, the INVITE's headers without
// credentials, the trunk that admitted it), for the AI side's routing and
// caller context. What may change while serving is swapped atomically and
// read once per INVITE (reconfigure.go, privacy.go): the trunks
// (SetTrunks, a configuration reload) and which caller identities the
// logs leave out (SetPrivacy); calls in progress are unaffected.
//
// What each request gets:
//   - INVITE: 100, then 200 with the SDP answer (RFC 3264), or 400/415/416/
//     420/483/488/500/503/505 (validate.go, termination.go). An INVITE
//     without SDP gets our offer in the 200 and its answer from the ACK
//     (RFC 3261 §13.2.1). A request with a To-tag that matches a dialog is
//     a re-INVITE (hold/resume, RFC 3264 §8.4; 491 before our ACK, 500 while
//     another is pending); an unknown one gets 481.
//   - ACK, BYE (200; 481 when unknown), CANCEL (sipgo answers 200 + 487),
//     OPTIONS (200 with Allow/Accept/Supported; 503 while draining or at MaxCalls),
//     NOTIFY for our REFER subscriptions (RFC 3515), everything else 405.
//   - UPDATE (RFC 3311, update.go): a session refresh without body, or an
//     SDP offer under the re-INVITE's rules answered in its 200; INFO
//     (info.go) with application/dtmf-relay or application/dtmf: the key
//     goes to the conversation like an RFC 4733 event (415 otherwise).
//   - Session timers (RFC 4028, timers.go): Supported: timer; a
//     Session-Expires below our Min-SE gets 422; every 2xx to INVITE,
//     re-INVITE and UPDATE carries the negotiated interval. As refresher we
//     send UPDATE (or a re-INVITE of our SDP) at half of it; when the caller
//     refreshes and stops, we hang up shortly before expiry.
//   - A re-INVITE or UPDATE with a new Contact moves our later requests
//     (BYE, REFER, refreshes) there (target.go); sipgo does not.
//   - Bytes sipgo cannot parse are answered 400 by guard.go when the request
//     line and Via can still be recovered (513 for a stream message over the
//     maximum length); sipgo itself would drop them.
//   - What one source may hold is bounded (limits.go): un-ACKed calls (503
//     beyond the cap), OPTIONS per second (dropped beyond the rate), TCP/TLS
//     connections per source and in total, with first-message, per-message
//     and idle deadlines.
//
// Every way a call ends is listed once in termination.go with its SIP status
// or BYE Reason header (RFC 3326), metric label and log level.
//
// The package sets one sipgo global on first use: sip.UDPMTUSize is raised
// to 8192 (see NewServer) because sipgo refuses to send any UDP message over
// UDPMTUSize-200 bytes, and a 200 OK with SDP behind a carrier's long Via and
// Record-Route chain can exceed the default 1300.
package sip
