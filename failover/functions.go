package failover

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// Function names the bridge implements.
const (
	fnEndCall      = "end_call"
	fnTransferCall = "transfer_call"
)

// functionState is the model's function calls: the ones handled (each
// once, though it may arrive twice), transfers waiting for their result,
// custom tools running, and the end of the call the model asked for.
type functionState struct {
	handled   map[string]bool
	transfers map[string]string // function call id → transfer target
	tools     toolState
	ending    *endState
}

func (c *Conversation) onDTMF(digit rune) {
	if c.fn.ending != nil || c.state == stGaveUp || c.cfg.DTMFDisabled {
		return
	}
	c.addSystemNote(fmt.Sprintf("The caller pressed %c.", digit))
	if !c.cfg.DTMFSilent {
		c.enqueue(&createReq{plain: true})
	}
}

// addSystemNote records a system message and sends it to the active session
// (during a swap the replay carries it).
func (c *Conversation) addSystemNote(text string) {
	id := c.newItemID()
	c.rec.AddSystemNote(id, text)
	if c.state != stActive {
		return
	}
	ctx, cancel := c.sendCtx()
	defer cancel()
	item := realtime.Item{ID: id, Type: "message", Role: "system", Content: []realtime.ContentPart{{Type: "input_text", Text: text}}}
	if err := c.active.s.CreateItem(ctx, item, ""); err != nil {
		c.sessionLog().Warn("failover: sending system note failed", "err", err)
	}
}

func (c *Conversation) onFunctionCall(it realtime.Item) {
	if it.CallID == "" || c.fn.handled[it.CallID] {
		return
	}
	c.fn.handled[it.CallID] = true
	if c.active != nil {
		c.active.calls[it.CallID] = true
	}
	log := c.sessionLog().With("response_id", c.turns.activeResp, "function", it.Name, "fn_call_id", it.CallID)
	switch it.Name {
	case fnEndCall:
		log.Info("failover: model ended the call")
		c.sendFunctionOutput(it.CallID, `{"ok":true}`)
		// The goodbye (the rest of this response's audio) plays out first.
		c.fn.ending = &endState{respID: c.turns.activeResp}
		c.turns.queue = nil
	case fnTransferCall:
		var args struct {
			Target string `json:"target"`
		}
		if it.Arguments != "" {
			if err := json.Unmarshal([]byte(it.Arguments), &args); err != nil {
				log.Warn("failover: transfer_call arguments are not JSON", "err", err)
			}
		}
		target, err := c.transferTarget(args.Target)
		if err != nil {
			log.Warn("failover: transfer refused", "target", args.Target, "err", err)
			c.sendFunctionOutput(it.CallID, jsonString(map[string]any{"ok": false, "error": err.Error()}))
			c.enqueue(&createReq{plain: true})
			return
		}
		log.Info("failover: model asked for a transfer", "target", target)
		c.fn.transfers[it.CallID] = target
		c.emit(Control{Kind: ControlTransfer, Target: target, CallID: it.CallID})
	default:
		if c.fn.tools.runner != nil && c.fn.tools.runner.Has(it.Name) {
			c.startTool(log, it)
			return
		}
		log.Warn("failover: model called an unknown function")
		c.sendFunctionOutput(it.CallID, jsonString(map[string]any{"ok": false, "error": fmt.Sprintf("unknown function %q", it.Name)}))
		c.enqueue(&createReq{plain: true})
	}
}

func (c *Conversation) transferTarget(asked string) (string, error) {
	if len(c.cfg.TransferTargets) == 0 {
		return "", errors.New("transfers are not available on this line")
	}
	if asked == "" {
		return c.cfg.TransferTargets[0], nil
	}
	if slices.Contains(c.cfg.TransferTargets, asked) {
		return asked, nil
	}
	return "", fmt.Errorf("target %q is not allowed", asked)
}

func (c *Conversation) onTransferResult(callID string, ok bool, detail string) {
	target, known := c.fn.transfers[callID]
	if !known {
		c.log.Warn("failover: transfer result for an unknown call", "fn_call_id", callID)
		return
	}
	delete(c.fn.transfers, callID)
	c.log.Info("failover: transfer result", "fn_call_id", callID, "target", target, "ok", ok, "detail", detail)
	out := map[string]any{"ok": ok}
	if ok {
		out["detail"] = detail
	} else {
		out["error"] = detail
	}
	c.sendFunctionOutput(callID, jsonString(out))
	c.enqueue(&createReq{plain: true})
}

// sendFunctionOutput records a function_call_output and sends it to the
// active session, first re-creating the call if this session does not have
// it (the transfer started before a swap). During a swap the replay carries
// both.
func (c *Conversation) sendFunctionOutput(callID, output string) {
	id := c.newItemID()
	c.rec.AddFunctionOutput(id, callID, output)
	if c.state != stActive {
		return
	}
	ctx, cancel := c.sendCtx()
	defer cancel()
	if !c.active.calls[callID] {
		if fc, ok := c.rec.FunctionCall(callID); ok {
			if err := c.active.s.CreateItem(ctx, fc, ""); err != nil {
				c.sessionLog().Warn("failover: re-creating function call failed", "fn_call_id", callID, "err", err)
			}
			c.active.calls[callID] = true
		}
	}
	item := realtime.Item{ID: id, Type: "function_call_output", CallID: callID, Output: output}
	if err := c.active.s.CreateItem(ctx, item, ""); err != nil {
		c.sessionLog().Warn("failover: sending function output failed", "fn_call_id", callID, "err", err)
	}
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return `{"ok":false}`
	}
	return string(b)
}

// checkEnd emits ControlEndCall once the end_call response is done and its
// goodbye has played (or could have, by the deadline).
func (c *Conversation) checkEnd(now time.Time) {
	e := c.fn.ending
	if e == nil || !e.respDone || e.sent {
		return
	}
	if c.isPlaying() && now.Before(e.deadline) {
		return
	}
	e.sent = true
	c.log.Info("failover: goodbye played, ending the call")
	c.emit(Control{Kind: ControlEndCall, Reason: "model ended the call"})
}
