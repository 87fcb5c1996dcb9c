package failover

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

// blockingTools is a ToolRunner whose calls wait until released (or their
// context ends), so tests control exactly when a result comes back.
type blockingTools struct {
	mu        sync.Mutex
	calls     []ToolCall
	release   map[string]chan string // function call id → output
	cancelled []string               // calls whose ctx ended before release
}

func newBlockingTools() *blockingTools {
	return &blockingTools{release: map[string]chan string{}}
}

func (b *blockingTools) Has(name string) bool { return name == "lookup_order" }

func (b *blockingTools) ch(callID string) chan string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.release[callID]
	if !ok {
		c = make(chan string, 1)
		b.release[callID] = c
	}
	return c
}

func (b *blockingTools) Run(ctx context.Context, call ToolCall) string {
	b.mu.Lock()
	b.calls = append(b.calls, call)
	b.mu.Unlock()
	select {
	case out := <-b.ch(call.CallID):
		return out
	case <-ctx.Done():
		b.mu.Lock()
		b.cancelled = append(b.cancelled, call.CallID)
		b.mu.Unlock()
		return `{"ok":false,"error":"cancelled"}`
	}
}

func (b *blockingTools) cancels() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.cancelled...)
}

func fnCall(respID, callID, name, args string) realtime.ServerEvent {
	return realtime.ServerEvent{Type: realtime.EvFunctionCallArgumentsDone, ResponseID: respID,
		ItemID: "fc_" + callID, CallID: callID, Name: name, Arguments: args}
}

// TestCustomToolRunsOffTheActor: while a custom tool runs the conversation
// keeps serving the call; its output then goes to the model as the
// function_call_output, followed by a response.create.
func TestCustomToolRunsOffTheActor(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	tools := newBlockingTools()
	h.conv.fn.tools.runner = tools
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"), fnCall("r1", "call_o", "lookup_order", `{"order_id":"A-17"}`), done("r1", realtime.StatusCompleted, nil))
	require.Equal(t, []ToolCall{{SIPCallID: "call-1", CallID: "call_o", Name: "lookup_order", Arguments: `{"order_id":"A-17"}`}}, h.tools)

	// The actor is free: caller audio and events are handled meanwhile.
	h.userTurn(s1, "u2", 2, 5)
	require.Empty(t, s1.items(), "no output before the tool answers")
	require.Empty(t, s1.responses())

	tools.ch("call_o") <- `{"status":"shipped"}`
	h.toolResult()
	require.Len(t, s1.responses(), 1)
	require.Len(t, s1.items(), 1)
	require.Equal(t, "call_o", s1.items()[0].CallID)
	require.Equal(t, "function_call_output", s1.items()[0].Type)
	require.Equal(t, `{"status":"shipped"}`, s1.items()[0].Output)
	h.actor(func(c *Conversation) { require.Empty(t, c.fn.tools.inFlight) })
	require.NoError(t, h.stop())
}

// TestCustomToolCancelledWithTheCall: a tool still running when the call
// ends sees its context cancelled, and Run returns without waiting for it
// to answer (goleak checks nothing is left).
func TestCustomToolCancelledWithTheCall(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	tools := newBlockingTools()
	h.conv.fn.tools.runner = tools
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"), fnCall("r1", "call_x", "lookup_order", `{}`), done("r1", realtime.StatusCompleted, nil))
	require.Len(t, h.tools, 1)
	require.NoError(t, h.stop())
	require.Equal(t, []string{"call_x"}, tools.cancels())
}

// TestCustomToolConcurrencyBound: beyond maxToolsInFlight the model gets an
// error output at once; unknown functions still get theirs.
func TestCustomToolConcurrencyBound(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	tools := newBlockingTools()
	h.conv.fn.tools.runner = tools
	h.start()
	s1 := h.session(1)
	h.waitActive(s1)
	h.userTurn(s1, "u1", 1, 5)
	evs := []realtime.ServerEvent{created("r1")}
	for i := range maxToolsInFlight + 1 {
		evs = append(evs, fnCall("r1", fmt.Sprintf("call_%d", i), "lookup_order", `{}`))
	}
	evs = append(evs, fnCall("r1", "call_u", "no_such_tool", `{}`), done("r1", realtime.StatusCompleted, nil))
	h.push(s1, evs...)
	require.Len(t, h.tools, maxToolsInFlight)
	require.Len(t, s1.items(), 2)
	require.Equal(t, fmt.Sprintf("call_%d", maxToolsInFlight), s1.items()[0].CallID)
	require.Contains(t, s1.items()[0].Output, "too many tool calls")
	require.Equal(t, "call_u", s1.items()[1].CallID)
	require.Contains(t, s1.items()[1].Output, `unknown function \"no_such_tool\"`)
	for i := range maxToolsInFlight {
		tools.ch(fmt.Sprintf("call_%d", i)) <- `{"ok":true}`
	}
	for range maxToolsInFlight {
		h.toolResult()
	}
	require.Len(t, s1.items(), 2+maxToolsInFlight)
	require.NoError(t, h.stop())
}
