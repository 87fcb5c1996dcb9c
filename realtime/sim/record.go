package sim

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// SessionRecord is everything one simulated session received and decided,
// for tests (failover replay assertions above all). Sessions() returns deep
// copies; the record of a live session keeps growing.
type SessionRecord struct {
	ID      string
	Region  string
	Dialect realtime.Dialect
	Path    string // URL path the client dialled
	Model   string // model / deployment from the URL
	Started time.Time
	Ended   time.Time // zero while live

	// CloseCode is how the session ended from the server's side: the close
	// code it sent (1001, 1011, 4000, …), -1 for a dropped connection, 0 if
	// the client went away or the session is live.
	CloseCode   int
	CloseReason string

	// SessionUpdates are the raw `session` objects of every accepted
	// session.update, in order.
	SessionUpdates []json.RawMessage
	// Events are the client events received, in order. Consecutive
	// input_audio_buffer.append events are folded into one entry.
	Events []ClientEventRecord
	// Items is the conversation as the server holds it now, in server order
	// (deleted items are gone; see Deleted).
	Items []ItemRecord
	// Turns are the user audio turns committed from the input buffer.
	Turns       []TurnRecord
	Responses   []ResponseRecord
	Truncations []TruncationRecord
	Deleted     []string
	// Errors are the error events the server sent.
	Errors []ErrorRecord
	// AppendedAudioMs is the total input audio appended in the session.
	AppendedAudioMs int
}

// ClientEventRecord is one client event (or a run of appends).
type ClientEventRecord struct {
	Type    string
	EventID string
	// Raw is the event as received; nil for appends, which are summarised.
	Raw json.RawMessage
	// Appends and AudioBytes summarise a run of input_audio_buffer.append.
	Appends    int
	AudioBytes int
	// Rejected is set when the server answered the event with an error.
	Rejected bool
}

// ItemRecord is one conversation item.
type ItemRecord struct {
	ID   string
	Type string // message | function_call | function_call_output
	Role string
	// Status as the server holds it (completed, incomplete, in_progress).
	Status string
	// ContentTypes use the session's dialect names (GA output_text, preview text…).
	ContentTypes []string
	// Text is the item's text: text parts and known transcripts joined; for
	// function calls "name(arguments)"; for outputs the output string.
	Text       string
	CallID     string
	Name       string
	Arguments  string
	Output     string
	AudioMs    int    // input audio duration, or model audio produced
	Origin     string // OriginClient, OriginCommit, OriginVAD, OriginIdle, OriginResponse
	ResponseID string
	Truncated  bool
	TruncateMs int
}

// TurnRecord is one committed user audio turn.
type TurnRecord struct {
	ItemID       string
	Origin       string // OriginVAD, OriginCommit, OriginIdle
	AudioStartMs int
	AudioEndMs   int
	AudioMs      int
	Heard        string // what the Transcriber made of it
}

// ResponseRecord is one response the server started (or refused to start
// because of a fault).
type ResponseRecord struct {
	ID        string
	Trigger   string // TriggerClient, TriggerVAD, TriggerIdle
	OutOfBand bool
	// Status is the final status (completed, cancelled, failed), in_progress
	// while it runs, or "error_event" when a fault answered with an error
	// event instead.
	Status    string
	Reason    string // status_details.reason or error code
	Text      string // the answer text chosen by the Responder
	AudioMs   int    // audio streamed
	ItemIDs   []string
	CallID    string // function call issued, if any
	Fault     string // injected fault, if any
	Truncated bool
	// InputTokens and OutputTokens are the usage response.done reported.
	InputTokens, OutputTokens int
}

// TruncationRecord is one accepted conversation.item.truncate.
type TruncationRecord struct {
	ItemID       string
	ContentIndex int
	AudioEndMs   int
}

// ErrorRecord is one error event sent to the client.
type ErrorRecord struct {
	Type, Code, Message, Param, EventID string
}

// Transcript renders the conversation one line per item, for assertions
// such as "the replayed items came in this order with these roles and texts":
// "user: hello", "assistant: This is …", "system: …",
// "function_call: get_x({…}) call_1", "function_call_output: call_1 {…}".
func (r SessionRecord) Transcript() []string {
	out := make([]string, 0, len(r.Items))
	for _, it := range r.Items {
		switch it.Type {
		case "function_call":
			out = append(out, fmt.Sprintf("function_call: %s(%s) %s", it.Name, it.Arguments, it.CallID))
		case "function_call_output":
			out = append(out, fmt.Sprintf("function_call_output: %s %s", it.CallID, it.Output))
		default:
			out = append(out, it.Role+": "+it.Text)
		}
	}
	return out
}

// EventTypes lists the types of the client events received, in order.
func (r SessionRecord) EventTypes() []string {
	out := make([]string, len(r.Events))
	for i, e := range r.Events {
		out[i] = e.Type
	}
	return out
}

// Item returns the item with id, if the conversation still holds it.
func (r SessionRecord) Item(id string) (ItemRecord, bool) {
	for _, it := range r.Items {
		if it.ID == id {
			return it, true
		}
	}
	return ItemRecord{}, false
}

func (r SessionRecord) clone() SessionRecord {
	c := r
	c.SessionUpdates = slices.Clone(r.SessionUpdates)
	c.Events = slices.Clone(r.Events)
	c.Items = make([]ItemRecord, len(r.Items))
	for i, it := range r.Items {
		it.ContentTypes = slices.Clone(it.ContentTypes)
		c.Items[i] = it
	}
	c.Turns = slices.Clone(r.Turns)
	c.Responses = make([]ResponseRecord, len(r.Responses))
	for i, rr := range r.Responses {
		rr.ItemIDs = slices.Clone(rr.ItemIDs)
		c.Responses[i] = rr
	}
	c.Truncations = slices.Clone(r.Truncations)
	c.Deleted = slices.Clone(r.Deleted)
	c.Errors = slices.Clone(r.Errors)
	return c
}
