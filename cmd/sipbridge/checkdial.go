package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/realtime"
)

// checkDial is check -dial: it opens a session in every region and
// completes the handshake a call would (session.created, the assistant's
// session.update, session.updated) without sending audio, then closes it.
// A profile whose voice or model differs from the assistant's is tried
// too (in the regions it may use), since a region may take one and refuse
// the other. Simulated
// regions are started in-process for the check, as serve would. It
// prints one line per attempt, naming the region and, on failure, the
// provider's error; it returns the number of failures.
func checkDial(cfg *configs.Config, stdout io.Writer) (int, error) {
	a := &app{cfg: cfg, log: slog.New(slog.DiscardHandler), simKeys: map[string]string{}}
	sims, err := simulatedRegions(cfg, time.Now)
	if err != nil {
		return 0, err
	}
	if err := a.startSimulators(sims, a.log); err != nil {
		a.closeSimulators()
		return 0, err
	}
	defer a.closeSimulators()

	type attempt struct {
		what string
		as   *configs.Assistant
	}
	attempts := []attempt{{"assistant", &cfg.Assistant}}
	for _, name := range cfg.ProfileNames() {
		p := cfg.Assistants[name]
		if p.Voice != cfg.Assistant.Voice || p.Model != cfg.Assistant.Model {
			attempts = append(attempts, attempt{"assistants." + name, p})
		}
	}
	failed := 0
	for _, r := range a.regionsOf(cfg) {
		for _, at := range attempts {
			if len(at.as.Regions) > 0 && !slices.Contains(at.as.Regions, r.Name) {
				continue // its calls never go there
			}
			sc := at.as.SessionConfig(realtime.FormatPCM24)
			sc.Instructions = configs.RenderCaller(sc.Instructions, nil) // caller variables are empty here
			start := time.Now()
			s, err := realtime.Dial(context.Background(), r.Dial, sc, nil)
			if err != nil {
				failed++
				fmt.Fprintf(stdout, "regions %q (%s): FAILED: %v\n", r.Name, at.what, err)
				continue
			}
			id := s.ID()
			_ = s.Close()
			fmt.Fprintf(stdout, "regions %q (%s): OK: session %s configured in %v\n", r.Name, at.what, id,
				time.Since(start).Round(time.Millisecond))
		}
	}
	return failed, nil
}
