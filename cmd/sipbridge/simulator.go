package main

import (
	"errors"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/realtime/sim"
)

// simulatorSection is regions[].simulator: decoded here, where the
// simulator is wired, so that configs does not depend on it. The defaults
// are the simulator's own (sim.DefaultVoiceHz, …); faults are the
// simulator's Faults, whose yaml tags are the keys.
type simulatorSection struct {
	Enabled       bool             `yaml:"enabled"`
	VoiceHz       float64          `yaml:"voice_hz"`
	ResponseDelay configs.Duration `yaml:"response_delay"`
	Speedup       float64          `yaml:"speedup"`
	Faults        sim.Faults       `yaml:"faults"`
}

// simRegion is one simulated region to start.
type simRegion struct {
	region configs.Region
	cfg    sim.Config // without APIKey and Logger
	// randomSeed: the config set no faults.seed, so the seed was drawn from
	// the clock and the failures differ on every start.
	randomSeed bool
}

// simulatedRegions decodes and validates every regions[].simulator section
// (enabled or not, so a typo never hides) and returns the enabled ones.
// Without faults.seed, the random failures are seeded from now, so the demo
// fails different responses on each start at the configured rate.
func simulatedRegions(cfg *configs.Config, now func() time.Time) ([]simRegion, error) {
	var out []simRegion
	var errs []error
	for i, r := range cfg.Regions {
		key := fmt.Sprintf("regions[%d].simulator", i)
		var s simulatorSection
		if err := configs.DecodeSection(r.Simulator.Section, key, &s); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.Faults.Validate(); err != nil { // the simulator's own rules
			var fe *sim.FaultError
			if errors.As(err, &fe) {
				err = fmt.Errorf("%s.faults.%s: %s", key, fe.Key, fe.Reason)
			}
			errs = append(errs, err)
		}
		if s.VoiceHz < 0 || s.VoiceHz > 3400 {
			errs = append(errs, fmt.Errorf("%s.voice_hz: %v is outside the telephone band 0..3400 Hz", key, s.VoiceHz))
		}
		if s.Speedup < 0 || s.Speedup > 100 {
			errs = append(errs, fmt.Errorf("%s.speedup: %v is outside 0..100", key, s.Speedup))
		}
		if !s.Enabled {
			continue
		}
		random := !hasKey(r.Simulator.Section, "faults", "seed")
		if random {
			s.Faults.Seed = now().UnixNano()
		}
		out = append(out, simRegion{region: r, randomSeed: random, cfg: sim.Config{
			Region:        r.Name,
			VoiceHz:       s.VoiceHz,
			ResponseDelay: s.ResponseDelay.D(),
			Speedup:       s.Speedup,
			SessionLimit:  r.SessionLimit.D(),
			Faults:        s.Faults,
		}})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("configs: %w", errors.Join(errs...))
	}
	return out, nil
}

// hasKey reports whether the mapping n has the nested key path.
func hasKey(n *yaml.Node, path ...string) bool {
	for _, k := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n != nil
}
