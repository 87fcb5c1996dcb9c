package failover

import (
	"context"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// Player is the call's playout side (implemented by *media.Stream).
type Player interface {
	// Play queues model audio (session output format) tagged with its item id.
	// Non-blocking; the audio is copied.
	Play(itemID string, audio []byte)
	// Flush drops everything queued, at once (barge-in, swap).
	Flush()
	// PlayedMs is how many ms of itemID have actually been sent as RTP.
	PlayedMs(itemID string) int
}

// Region is one realtime endpoint in priority order.
type Region struct {
	Name string
	Dial realtime.DialConfig
	// SessionLimit is the provider's hard session duration (Azure 30 min,
	// OpenAI 60 min); calls rotate to a fresh session before it.
	SessionLimit time.Duration
	// WarmStandby keeps a configured session ready in this region for swaps.
	WarmStandby bool
	// MaxSessions, Weight and Priority are the region's capacity limits
	// (regions[].max_sessions, weight, priority; see Capacity). Priority
	// nil keeps the configured order as the tier order.
	MaxSessions int
	Weight      float64
	Priority    *int
}

// Dialer opens a configured realtime session in a region. The production
// dialer is realtime.Dial; tests use fakes.
type Dialer interface {
	Dial(ctx context.Context, region Region, cfg realtime.SessionConfig) (realtime.Session, error)
}

// ControlKind says what the conversation asks of the call.
type ControlKind uint8

const (
	// ControlEndCall: the model ended the call (end_call tool) and its goodbye
	// has finished playing: send BYE.
	ControlEndCall ControlKind = iota + 1
	// ControlTransfer: transfer the caller to Target (SIP REFER). Report the
	// outcome with Conversation.TransferResult.
	ControlTransfer
	// ControlGiveUp: every region failed and the apology (if any) has
	// played (or its playout deadline passed): transfer to Target if set,
	// else hang up.
	ControlGiveUp
	// ControlSwapStarted / ControlSwapFinished bracket a session swap (for logs
	// and metrics at the call level; masking is done by the conversation).
	ControlSwapStarted
	ControlSwapFinished
)

// Control is a request from the conversation to the call.
type Control struct {
	Kind   ControlKind
	Target string // transfer URI
	Reason string
	CallID string // the model's function call id for a transfer
}
