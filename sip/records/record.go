// Package records owns the call record: one JSON line per call (answered or
// rejected) in the file named by `records.path`, the source of truth for
// what happened on a call and for `sipbridge report`.
//
// The call orchestrator (package sip) assembles a Record from what the SIP
// leg, the media stream and the conversation report, and hands it to a
// Writer when the call has ended. The Writer's one goroutine encodes and
// appends it; the call never waits for the disk.
//
// # Schema (version 1)
//
// Each line is one JSON object, a Record. "schema" is the version; a reader
// must reject lines with a higher major version than it knows and ignore
// fields it does not know (additions keep the version; renames, removals or
// changed meanings bump it). Times are RFC 3339 with nanoseconds, UTC.
// Durations are integer milliseconds in fields ending in _ms. Token counts
// and costs are per response (realtime.Usage's flat shape); cost is in the
// currency of the configured prices and absent when no price is set.
//
//	schema          int     always 1 for this layout
//	call_id         string  SIP Call-ID
//	from, to        string  SIP From/To URIs (after the redaction hook)
//	trunk           string  configured trunk name that took the INVITE
//	answered        bool    false: rejected; sip_status says how
//	sip_status      int     final status of the INVITE (200, 503, 486, …)
//	invite          time    INVITE received
//	answer          time    200 OK sent (absent when rejected)
//	end             time    call over (BYE sent/received, or the rejection)
//	end_reason      string  the termination reason label (sip.EndReason)
//	ended_by        string  caller | bridge | model | transfer | shutdown
//	codec           string  negotiated codec (PCMU, PCMA)
//	rtp             object  packets/bytes in and out, lost, late, jitter_ms
//	sessions[]      object  every realtime session: region, session_id,
//	                        purpose (call, standby, hedge, rotation), opened,
//	                        closed, close_reason, error
//	responses[]     object  every response.done: region, session_id,
//	                        response_id, purpose (answer, replay, hedge,
//	                        rotation), status, error_type/code/message,
//	                        created, done, first_audio_ms, audio_ms,
//	                        played_ms, lost_race, usage, cost, wasted_tokens
//	swaps[]         object  at, from/to region, trigger, pause_ms heard,
//	                        items_replayed, turn_lost
//	hedges[]        object  at, primary/hedge region, trigger, winner,
//	                        pause_ms heard
//	dtmf[]          object  at, digit, via (rfc4733, info)
//	transfers[]     object  at, target, result
//	transcript[]    object  at, role (caller, assistant), text — only with
//	                        `records.transcripts: true`
//	dropped_events  int     record entries not kept (list caps); 0 normally
//
// # Files
//
//	PATH                 the current file (records.path)
//	PATH.YYYYMMDDTHHMMSSZ a rotated file (size or UTC day), whole lines
//	PATH.torn-TIME       a torn tail found on open that could not be
//	                     completed, kept for inspection
//	DIR/.NAME.pending    the line being appended, used to complete a line
//	                     a crash cut (see Writer "Durability")
//
// `sipbridge report PATH*` reads the current and rotated files; a torn
// file's partial line is reported as skipped.
//
// # Redaction
//
// Config.Redact, when set, is applied by the Writer to From, To, transfer
// targets and transcript text before the line is encoded, so no caller
// number reaches the file unredacted whatever the call assembled. MaskDigits
// is a ready hook that keeps the last n digits.
package records

import (
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// SchemaVersion is the layout version written in every line.
const SchemaVersion = 1

// Who ended a call.
const (
	EndedByCaller   = "caller"
	EndedByBridge   = "bridge"
	EndedByModel    = "model"
	EndedByTransfer = "transfer"
	EndedByShutdown = "shutdown"
)

// Session purposes (what a realtime session was opened for).
const (
	SessionCall     = "call"
	SessionStandby  = "standby"
	SessionHedge    = "hedge"
	SessionRotation = "rotation"
)

// Record is one call. See the package comment for the schema.
type Record struct {
	Schema    int        `json:"schema"`
	CallID    string     `json:"call_id"`
	From      string     `json:"from,omitempty"`
	To        string     `json:"to,omitempty"`
	Trunk     string     `json:"trunk,omitempty"`
	Answered  bool       `json:"answered"`
	SIPStatus int        `json:"sip_status,omitempty"`
	Invite    time.Time  `json:"invite"`
	Answer    *time.Time `json:"answer,omitempty"`
	End       time.Time  `json:"end"`
	EndReason string     `json:"end_reason,omitempty"`
	EndedBy   string     `json:"ended_by,omitempty"`
	Codec     string     `json:"codec,omitempty"`
	RTP       *RTPStats  `json:"rtp,omitempty"`

	Sessions   []Session    `json:"sessions,omitempty"`
	Responses  []Response   `json:"responses,omitempty"`
	Swaps      []Swap       `json:"swaps,omitempty"`
	Hedges     []Hedge      `json:"hedges,omitempty"`
	DTMF       []DTMF       `json:"dtmf,omitempty"`
	Transfers  []Transfer   `json:"transfers,omitempty"`
	Transcript []Transcript `json:"transcript,omitempty"`

	DroppedEvents int `json:"dropped_events,omitempty"`
}

// RTPStats are the media stream's counters at the end of the call.
type RTPStats struct {
	PacketsIn  uint64  `json:"packets_in"`
	PacketsOut uint64  `json:"packets_out"`
	BytesIn    uint64  `json:"bytes_in"`
	BytesOut   uint64  `json:"bytes_out"`
	Lost       uint64  `json:"lost"`
	Late       uint64  `json:"late"`
	JitterMs   float64 `json:"jitter_ms"`
}

// Session is one realtime WebSocket session the call held.
type Session struct {
	Region      string    `json:"region"`
	SessionID   string    `json:"session_id,omitempty"` // empty: never got session.created
	Purpose     string    `json:"purpose"`
	Opened      time.Time `json:"opened"`
	Closed      time.Time `json:"closed"`
	CloseReason string    `json:"close_reason,omitempty"` // call_end, swap, failed, hedge_lost, rotated, …
	Error       string    `json:"error,omitempty"`        // the failure, when it closed on one
}

// Response is one response.done (or a response that never got one: status
// "failed" with error_type "no_response_done").
type Response struct {
	Region       string           `json:"region"`
	SessionID    string           `json:"session_id,omitempty"`
	ResponseID   string           `json:"response_id,omitempty"`
	Purpose      realtime.Purpose `json:"purpose"`
	Status       string           `json:"status"`
	Reason       string           `json:"reason,omitempty"` // status_details.reason
	ErrorType    string           `json:"error_type,omitempty"`
	ErrorCode    string           `json:"error_code,omitempty"`
	ErrorMessage string           `json:"error_message,omitempty"`
	Created      time.Time        `json:"created"`
	Done         time.Time        `json:"done"`
	FirstAudioMs int64            `json:"first_audio_ms,omitempty"` // response.create → first audio delta
	AudioMs      int64            `json:"audio_ms,omitempty"`       // audio produced
	PlayedMs     int64            `json:"played_ms,omitempty"`      // of which the caller heard
	LostRace     bool             `json:"lost_race,omitempty"`      // hedged turn lost by this response
	Usage        realtime.Usage   `json:"usage"`
	Cost         float64          `json:"cost,omitempty"`
	WastedTokens int64            `json:"wasted_tokens,omitempty"`
}

// Account fills Cost and WastedTokens from Usage, the region's prices and
// how much was played. The orchestrator calls it once the response's audio
// has finished playing (or been cut).
func (r *Response) Account(p realtime.Prices) {
	r.Cost = p.Cost(r.Usage)
	r.WastedTokens = realtime.WastedTokens(r.Usage, r.Status, realtime.Played{
		AudioMs: r.AudioMs, PlayedMs: r.PlayedMs, LostRace: r.LostRace})
}

// Swap is one move of the conversation to another session.
type Swap struct {
	At            time.Time `json:"at"`
	From          string    `json:"from"` // region
	To            string    `json:"to"`   // region ("" when no region could take it)
	Trigger       string    `json:"trigger"`
	PauseMs       int64     `json:"pause_ms"` // silence/filler the caller heard
	ItemsReplayed int       `json:"items_replayed"`
	TurnLost      bool      `json:"turn_lost,omitempty"` // the in-flight caller turn got no answer
}

// Hedge is one turn answered by two sessions racing.
type Hedge struct {
	At      time.Time `json:"at"`
	Primary string    `json:"primary"` // region
	Hedge   string    `json:"hedge"`   // region
	Trigger string    `json:"trigger"`
	Winner  string    `json:"winner"` // primary | hedge | none
	PauseMs int64     `json:"pause_ms"`
}

// DTMF is one key the caller pressed.
type DTMF struct {
	At    time.Time `json:"at"`
	Digit string    `json:"digit"`
	Via   string    `json:"via,omitempty"` // rfc4733 | info
}

// Transfer is one REFER the bridge sent.
type Transfer struct {
	At     time.Time `json:"at"`
	Target string    `json:"target"`
	Result string    `json:"result"` // accepted, failed, …
}

// Transcript is one line of the conversation.
type Transcript struct {
	At   time.Time `json:"at"`
	Role string    `json:"role"` // caller | assistant
	Text string    `json:"text"`
}

// Failed reports whether the response failed (status failed).
func (r Response) Failed() bool { return r.Status == realtime.StatusFailed }
