package failover

import (
	"context"
	"log/slog"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
)

// Config is one call's conversation behaviour.
type Config struct {
	// Session is sent byte-identically to every session of the call.
	Session realtime.SessionConfig
	// Greeting, if set: a response.create with these instructions once the
	// first session is up. response.create instructions replace the
	// session's for that response (protocol doc §2.6), so they are sent
	// after the session instructions, not instead of them.
	Greeting string
	// GreetAfterConfirm holds the greeting until CallConfirmed (the SIP
	// ACK): with answer-when-ready the session is up before the 200 OK, and
	// a caller that never acknowledges it must not cost a response.
	GreetAfterConfirm bool
	// StallNoResponse: no response.created this long after the caller's turn
	// ended (speech_stopped/committed) or after our response.create → stall
	// (default 5 s).
	StallNoResponse time.Duration
	// StallFirstAudio: no first output delta this long after
	// response.created → stall (default 5 s).
	StallFirstAudio time.Duration
	// StallMidAudio: audio deltas stop this long mid-answer with no
	// response.done → stall (default 4 s).
	StallMidAudio time.Duration
	// MaxSwapsInRow: give up after this many consecutive failed swap
	// attempts (default 3), once every region the call may use has failed
	// two attempts in an outage that has lasted minOutageToGiveUp, or the
	// outage has lasted GiveUpAfter.
	MaxSwapsInRow int
	// GiveUpAfter bounds an outage (the failed attempts since the call last
	// had a working session): past it, MaxSwapsInRow failed attempts give
	// up even if a region has not failed an attempt yet, and a swap stops
	// waiting for a throttled region (default 20 s).
	GiveUpAfter time.Duration
	// RotateMargin: rotate at a turn boundary when the session is within this
	// of its limit/expires_at (default 2 min).
	RotateMargin time.Duration
	// FillerAfter: during a swap, if the gap passes this, play FillerAudio
	// once (0 = never).
	FillerAfter time.Duration
	// FillerAudio is in the session output format.
	FillerAudio []byte
	// ApologyAudio is played when giving up (session output format).
	ApologyAudio []byte
	// AnsweredBeforeReady: the call is answered before its first session is
	// up (sip.answer_when_ready off), so a caller can hear an apology even
	// when no session ever came up; otherwise a call that never had one is
	// still ringing and gets its 503 at once.
	AnsweredBeforeReady bool
	// GiveUpTransfer is the SIP URI to transfer to when giving up ("" = hang up).
	GiveUpTransfer string
	// TransferTargets are the allowed transfer_call targets; the first is
	// the default.
	TransferTargets []string
	// Regions, when set, are the only pool regions this call may use, by
	// name (an assistant profile's subset); empty: every region.
	Regions []string
	// KeepAudioTurns: the most recent user turns whose audio may be kept
	// for replay (default 4): the last one always, earlier ones only until
	// their transcript arrives (realtime.RecordConfig).
	KeepAudioTurns int
	// DTMFDisabled drops the caller's key presses (RFC 4733 events, SIP
	// INFO): the model never hears of them.
	DTMFDisabled bool
	// DTMFSilent gives the model its note for each key ("The caller pressed
	// 4.") without asking it to respond: the digits wait for the caller's
	// next turn (PIN entry, where the model answers once after the last key).
	DTMFSilent bool
	// Hedge tunes hedged answers (hedge.go); on by default.
	Hedge HedgeConfig
}

// HedgeConfig tunes hedged answers: when a turn's first audio is late, the
// same turn is asked in a session in another region and the first answer
// heard wins. Zero values take the defaults. The per-region time-to-first-
// audio window and the per-process share live with the pool (HealthConfig).
type HedgeConfig struct {
	// Disabled turns hedging off (the stall watchdogs still apply).
	Disabled bool
	// Multiple: the deadline is this multiple of the region's median time
	// to first audio over its recent window (default 3).
	Multiple float64
	// Floor and Ceiling bound the deadline (defaults 500 ms and 1 s). A
	// region with too few recent samples gets the ceiling.
	Floor   time.Duration
	Ceiling time.Duration
	// CallShare: at most this share of a call's turns are hedged, plus
	// one (default 0.25), so one call cannot double its load.
	CallShare float64
}

// Defaults.
const (
	DefaultStallNoResponse = 5 * time.Second
	DefaultStallFirstAudio = 5 * time.Second
	DefaultStallMidAudio   = 4 * time.Second
	DefaultMaxSwapsInRow   = 3
	DefaultGiveUpAfter     = 20 * time.Second
	DefaultRotateMargin    = 2 * time.Minute

	DefaultHedgeEnabled   = true
	DefaultHedgeMultiple  = 3.0
	DefaultHedgeFloor     = 500 * time.Millisecond
	DefaultHedgeCeiling   = time.Second
	DefaultHedgeCallShare = 0.25
)

func (c Config) withDefaults() Config {
	if c.StallNoResponse <= 0 {
		c.StallNoResponse = DefaultStallNoResponse
	}
	if c.StallFirstAudio <= 0 {
		c.StallFirstAudio = DefaultStallFirstAudio
	}
	if c.StallMidAudio <= 0 {
		c.StallMidAudio = DefaultStallMidAudio
	}
	if c.MaxSwapsInRow <= 0 {
		c.MaxSwapsInRow = DefaultMaxSwapsInRow
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = DefaultGiveUpAfter
	}
	if c.RotateMargin <= 0 {
		c.RotateMargin = DefaultRotateMargin
	}
	if c.Hedge.Multiple <= 0 {
		c.Hedge.Multiple = DefaultHedgeMultiple
	}
	if c.Hedge.Floor <= 0 {
		c.Hedge.Floor = DefaultHedgeFloor
	}
	if c.Hedge.Ceiling <= 0 {
		c.Hedge.Ceiling = DefaultHedgeCeiling
	}
	c.Hedge.Ceiling = max(c.Hedge.Ceiling, c.Hedge.Floor)
	if c.Hedge.CallShare <= 0 {
		c.Hedge.CallShare = DefaultHedgeCallShare
	}
	if c.KeepAudioTurns <= 0 {
		c.KeepAudioTurns = realtime.DefaultKeepAudioTurns
	}
	return c
}

// inputFormat and outputFormat are the session's audio formats; unset means
// the server default, PCM 24 kHz (§3.1). Session itself is left as given so
// that every session gets exactly the caller's config.
func (c Config) inputFormat() realtime.AudioFormat {
	if c.Session.InputFormat == "" {
		return realtime.FormatPCM24
	}
	return c.Session.InputFormat
}

func (c Config) outputFormat() realtime.AudioFormat {
	if c.Session.OutputFormat == "" {
		return realtime.FormatPCM24
	}
	return c.Session.OutputFormat
}

// RealtimeDialer is the production Dialer: realtime.Dial with the region's
// DialConfig.
type RealtimeDialer struct {
	Logger *slog.Logger
}

// Dial opens a configured session in region.
func (d RealtimeDialer) Dial(ctx context.Context, region Region, cfg realtime.SessionConfig) (realtime.Session, error) {
	dc := region.Dial
	if dc.Region == "" {
		dc.Region = region.Name
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// realtime logs region and session_id on every line itself.
	return realtime.Dial(ctx, dc, cfg, log)
}
