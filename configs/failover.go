package configs

import (
	"fmt"
	"strings"
	"time"

	"github.com/sipbridge/sipbridge/failover"
)

// Failover tunes failure detection and session swaps (failover).
type Failover struct {
	StallNoResponse Duration `yaml:"stall_no_response"`
	StallFirstAudio Duration `yaml:"stall_first_audio"`
	StallMidAudio   Duration `yaml:"stall_mid_audio"`
	MaxSwapsInRow   int      `yaml:"max_swaps_in_row"`
	GiveUpAfter     Duration `yaml:"give_up_after"` // how long an outage may last before MaxSwapsInRow failures give up
	RotateMargin    Duration `yaml:"rotate_margin"`
	FillerAfter     Duration `yaml:"filler_after"`     // 0: no filler
	FillerFile      string   `yaml:"filler_file"`      // WAV played once if a swap gap passes filler_after
	ApologyFile     string   `yaml:"apology_file"`     // WAV played when every region failed
	GiveUpTransfer  string   `yaml:"give_up_transfer"` // SIP URI to REFER the caller to when giving up
	Health          Health   `yaml:"health"`
	Hedge           Hedge    `yaml:"hedge"`
}

// Hedge tunes hedged answers (failover.hedge): a turn whose first audio is
// late is asked again in another region and the first answer wins.
type Hedge struct {
	Enabled      *bool    `yaml:"enabled"`
	Multiple     float64  `yaml:"multiple"`      // deadline = multiple × the region's median time to first audio
	Floor        Duration `yaml:"floor"`         // lower bound of the deadline
	Ceiling      Duration `yaml:"ceiling"`       // upper bound, and the deadline before the window has samples
	Window       Duration `yaml:"window"`        // sliding window of times to first audio and of the process budget
	CallShare    float64  `yaml:"call_share"`    // at most this share of a call's turns hedged, plus one
	ProcessShare float64  `yaml:"process_share"` // at most this share of the process's turns in the window, plus one
}

// Health configures per-region circuit breakers (failover.health).
type Health struct {
	Window       Duration `yaml:"window"`
	MinSamples   int      `yaml:"min_samples"`
	FailureRatio float64  `yaml:"failure_ratio"`
	CoolDown     Duration `yaml:"cool_down"`
}

// minStall is the shortest stall timer accepted: below it a normal answer
// would count as a stall.
const minStall = 100 * time.Millisecond

func (c *Config) applyFailoverDefaults() {
	f := &c.Failover
	zeroDefault(&f.StallNoResponse, Duration(failover.DefaultStallNoResponse))
	zeroDefault(&f.StallFirstAudio, Duration(failover.DefaultStallFirstAudio))
	zeroDefault(&f.StallMidAudio, Duration(failover.DefaultStallMidAudio))
	zeroDefault(&f.MaxSwapsInRow, failover.DefaultMaxSwapsInRow)
	zeroDefault(&f.GiveUpAfter, Duration(failover.DefaultGiveUpAfter))
	zeroDefault(&f.RotateMargin, Duration(failover.DefaultRotateMargin))
	h := &f.Health
	zeroDefault(&h.Window, Duration(failover.DefaultHealthWindow))
	zeroDefault(&h.MinSamples, failover.DefaultMinSamples)
	zeroDefault(&h.FailureRatio, failover.DefaultFailureRatio)
	zeroDefault(&h.CoolDown, Duration(failover.DefaultCoolDown))
	hg := &f.Hedge
	orDefault(&hg.Enabled, failover.DefaultHedgeEnabled)
	zeroDefault(&hg.Multiple, failover.DefaultHedgeMultiple)
	zeroDefault(&hg.Floor, Duration(failover.DefaultHedgeFloor))
	zeroDefault(&hg.Ceiling, Duration(failover.DefaultHedgeCeiling))
	zeroDefault(&hg.Window, Duration(failover.DefaultTTFAWindow))
	zeroDefault(&hg.CallShare, failover.DefaultHedgeCallShare)
	zeroDefault(&hg.ProcessShare, failover.DefaultHedgeShare)
}

func (c *Config) validateFailover(bad badFunc) {
	f := c.Failover
	for _, s := range []struct {
		key string
		d   Duration
	}{{"failover.stall_no_response", f.StallNoResponse}, {"failover.stall_first_audio", f.StallFirstAudio}, {"failover.stall_mid_audio", f.StallMidAudio}} {
		if s.d.D() < minStall {
			bad(s.key, "%v is below %v (a normal answer would count as a stall)", s.d.D(), minStall)
		}
	}
	if f.MaxSwapsInRow < 1 {
		bad("failover.max_swaps_in_row", "must be ≥ 1")
	}
	if d := f.GiveUpAfter.D(); d < time.Second {
		bad("failover.give_up_after", "%v is below 1s (a caller would be apologised to before a second region could answer)", d)
	}
	if f.GiveUpTransfer != "" {
		if err := ValidateSIPURI(f.GiveUpTransfer); err != nil {
			bad("failover.give_up_transfer", "%v", err)
		}
	}
	if f.FillerAfter != 0 && f.FillerFile == "" && !c.anyFiller() {
		bad("failover.filler_after", "set, but failover.filler_file is empty (nothing to play)")
	}
	if f.Health.MinSamples < 1 {
		bad("failover.health.min_samples", "%d is below 1", f.Health.MinSamples)
	}
	if r := f.Health.FailureRatio; r <= 0 || r > 1 {
		bad("failover.health.failure_ratio", "%v is outside (0, 1]", r)
	}
	if d := f.Health.Window.D(); d < time.Second {
		bad("failover.health.window", "%v is below 1s", d)
	}
	if d := f.Health.CoolDown.D(); d < time.Second {
		bad("failover.health.cool_down", "%v is below 1s", d)
	}
	hg := f.Hedge
	if hg.Multiple < 1 {
		bad("failover.hedge.multiple", "%v is below 1 (half the turns would be hedged)", hg.Multiple)
	}
	if d := hg.Floor.D(); d < minStall {
		bad("failover.hedge.floor", "%v is below %v", d, minStall)
	}
	if hg.Ceiling.D() < hg.Floor.D() {
		bad("failover.hedge.ceiling", "%v is below failover.hedge.floor (%v)", hg.Ceiling.D(), hg.Floor.D())
	}
	if d := hg.Window.D(); d < time.Second {
		bad("failover.hedge.window", "%v is below 1s", d)
	}
	for _, s := range []struct {
		key string
		v   float64
	}{{"failover.hedge.call_share", hg.CallShare}, {"failover.hedge.process_share", hg.ProcessShare}} {
		if s.v <= 0 || s.v > 1 {
			bad(s.key, "%v is outside (0, 1]", s.v)
		}
	}
}

// ValidateSIPURI accepts sip:, sips: and tel: URIs without header-injection
// characters.
func ValidateSIPURI(s string) error {
	if strings.ContainsAny(s, "\r\n\x00<> ") {
		return fmt.Errorf("%q contains characters not allowed in a URI", s)
	}
	l := strings.ToLower(s)
	if !strings.HasPrefix(l, "sip:") && !strings.HasPrefix(l, "sips:") && !strings.HasPrefix(l, "tel:") {
		return fmt.Errorf("%q is not a sip:, sips: or tel: URI", s)
	}
	if len(s) <= 4 {
		return fmt.Errorf("%q is empty after the scheme", s)
	}
	return nil
}

// anyFiller: an assistant or profile has its own prompts.filler_file.
func (c *Config) anyFiller() bool {
	if c.Assistant.Prompts.FillerFile != "" {
		return true
	}
	for _, a := range c.Assistants {
		if a.Prompts.FillerFile != "" {
			return true
		}
	}
	return false
}

// zeroDefault sets *p to v when it was left unset (zero).
func zeroDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}
