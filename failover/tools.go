package failover

import (
	"context"
	"log/slog"

	"github.com/sipbridge/sipbridge/realtime"
)

// ToolRunner runs the functions the model may call that the bridge does not
// implement itself (end_call and transfer_call are built in): custom tools
// such as HTTP webhooks. Run is called on a goroutine of its own, never on
// the conversation's actor loop, so a slow tool holds up nothing but its
// own answer.
type ToolRunner interface {
	// Has reports whether name is one of the runner's tools.
	Has(name string) bool
	// Run executes one call and returns the function_call_output string
	// for the model: the tool's result, or a JSON error object the model
	// can explain to the caller. ctx ends when the call does. Run must
	// return promptly once ctx is done.
	Run(ctx context.Context, call ToolCall) string
}

// ToolCall is one function call by the model.
type ToolCall struct {
	// SIPCallID is the phone call's Call-ID (for the tool's own logs).
	SIPCallID string
	// CallID is the model's function call id: unique per call, so a tool
	// can use it as an idempotency key.
	CallID    string
	Name      string
	Arguments string // JSON text, as the model produced it
}

// maxToolsInFlight bounds the custom tool calls one conversation runs at
// once; beyond it the model gets an error output at once.
const maxToolsInFlight = 4

// toolState is the actor's view of custom tool calls.
type toolState struct {
	runner   ToolRunner
	inFlight map[string]string // function call id → tool name
}

// startTool runs a custom tool call off the actor loop; its output comes
// back as a msgTool message (onToolResult), like a transfer's outcome.
func (c *Conversation) startTool(log *slog.Logger, it realtime.Item) {
	if len(c.fn.tools.inFlight) >= maxToolsInFlight {
		log.Warn("failover: too many tool calls in flight; refused", "in_flight", len(c.fn.tools.inFlight))
		c.sendFunctionOutput(it.CallID, jsonString(map[string]any{"ok": false, "error": "too many tool calls at once; try again"}))
		c.enqueue(&createReq{plain: true})
		return
	}
	if c.fn.tools.inFlight == nil {
		c.fn.tools.inFlight = map[string]string{}
	}
	c.fn.tools.inFlight[it.CallID] = it.Name
	log.Info("failover: running tool")
	call := ToolCall{SIPCallID: c.callID, CallID: it.CallID, Name: it.Name, Arguments: it.Arguments}
	c.do(fxRunTool{Call: call})
}

// onToolResult hands a tool's output to the model and asks it to go on
// (its answer, e.g. reading out the order status, follows).
func (c *Conversation) onToolResult(callID, output string) {
	name, ok := c.fn.tools.inFlight[callID]
	if !ok {
		c.log.Warn("failover: tool result for an unknown call", "fn_call_id", callID)
		return
	}
	delete(c.fn.tools.inFlight, callID)
	c.log.Info("failover: tool result", "fn_call_id", callID, "function", name, "output_bytes", len(output))
	c.sendFunctionOutput(callID, output)
	c.enqueue(&createReq{plain: true})
}
