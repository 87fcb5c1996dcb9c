package sim

import (
	"fmt"
	"strconv"

	"github.com/sipbridge/sipbridge/realtime"
)

// What started a response.
const (
	TriggerClient = "response.create"
	TriggerVAD    = "server_vad"
	TriggerIdle   = "idle_timeout"
)

// TurnContext is what the "model" knows when it answers: the response's
// context items and what it last heard. The default Responder turns it into
// a deterministic sentence, so a test can tell from the answer which region
// answered and how much replayed context the session holds.
type TurnContext struct {
	Region     string
	SessionID  string
	Dialect    realtime.Dialect
	ResponseID string
	Trigger    string // TriggerClient, TriggerVAD, TriggerIdle
	// Turn is the number of user message items in the context.
	Turn int
	// Items is the response's context: the conversation, or response.input
	// when the client gave one.
	Items []ItemRecord
	// Heard is what the model made of the last user or tool input: user text,
	// the audio's transcript (Transcriber), or a function output. "" if none.
	Heard string
	// Instructions are the effective instructions (response override first).
	Instructions string
	Tools        []string // declared function tool names
	Metadata     map[string]string
}

// Reply is the model's answer to one response.
type Reply struct {
	// Text is spoken (audio + transcript) or written (text-only sessions).
	// Empty with a FunctionCall: the response carries only the call.
	Text string
	// FunctionCall asks the client to run a tool: a function_call output item
	// is emitted after the message (if any).
	FunctionCall *FunctionCall
}

// FunctionCall is a tool call the model makes.
type FunctionCall struct {
	Name      string
	Arguments string // JSON text
	CallID    string // "" = generated (call_…)
}

// Utterance is one committed user audio turn, decoded to PCM at the input
// format's sample rate, for Config.Transcriber.
type Utterance struct {
	SessionID  string
	ItemID     string
	DurationMs int
	SampleRate int
	PCM        []int16
}

// DefaultTranscriber is deterministic: "caller spoke for 1.4 seconds".
func DefaultTranscriber(u Utterance) string {
	return fmt.Sprintf("caller spoke for %.1f seconds", float64(u.DurationMs)/1000)
}

// DefaultResponder answers "This is <region>. You are turn <n>; I heard
// <what>. I remember <k> items." — region identifies the answering region,
// n counts user turns and k all items in context, so replayed history shows
// in the answer.
func DefaultResponder(tc TurnContext) Reply {
	heard := "nothing yet"
	if tc.Heard != "" {
		heard = strconv.Quote(tc.Heard)
	}
	return Reply{Text: fmt.Sprintf("This is %s. You are turn %d; I heard %s. I remember %d items.",
		tc.Region, tc.Turn, heard, len(tc.Items))}
}
