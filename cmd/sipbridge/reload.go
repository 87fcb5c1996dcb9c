package main

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/sip"
)

// reloadOnSignal reloads the configuration on each SIGHUP until ctx ends.
func (a *app) reloadOnSignal(ctx context.Context, hup <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			a.reload()
		}
	}
}

// reload reads the config file again and, if all of it is valid and every
// file, key and simulator it needs is there, makes it the generation of
// new calls: assistant, profiles, routes, caller context, privacy,
// regions (health kept by name), failover tuning and prompts, trunks.
// Calls in progress keep the generation they started with. Anything
// wrong leaves everything as it was, with the reason logged by key.
// Listeners, RTP, logging and the other SIP settings are the process's:
// a change to them is logged as needing a restart and not applied.
func (a *app) reload() {
	cur := a.gen.Load()
	start := time.Now()
	fail := func(err error) {
		a.reloadM.reloads.WithLabelValues("failed").Inc()
		a.log.Error("config reload refused; the running configuration is kept",
			"config", a.pathName(), "config_generation", cur.id, "error", err)
	}
	cfg, err := loadConfig(a.path)
	if err != nil {
		fail(err)
		return
	}
	if err := a.checkSimulators(cfg); err != nil {
		fail(err)
		return
	}
	var trunks sip.Config
	if err := applyTrunks(&trunks, cfg, os.Getenv); err != nil { // trunks.go: passwords from the environment
		fail(err)
		return
	}
	next, err := a.buildGeneration(cfg, cur.id+1)
	if err != nil {
		fail(err)
		return
	}
	// The trunks are validated by the SIP server itself; the first step
	// that changes anything, so a refusal here changes nothing.
	if err := a.sip.SetTrunks(trunks.Trunks, trunks.AuthLimit); err != nil {
		fail(fmt.Errorf("sip.trunks: %w", err))
		return
	}
	added, removed := a.pool.Reconfigure(a.regionsOf(cfg), healthConfig(cfg))
	a.sip.SetPrivacy(sipPrivacy(cfg))
	a.gen.Store(next)
	a.reloadM.reloads.WithLabelValues("ok").Inc()
	a.reloadM.generation.Set(float64(next.id))

	changed, _ := configChanges(cur.cfg, cfg)
	// Compared with what runs: the process's settings are the first
	// generation's, whatever later files said.
	_, restart := configChanges(a.cfg, cfg)
	restart = append(restart, a.simulatorChanges(cfg)...)
	attrs := []any{"config", a.pathName(), "config_generation", next.id, "changed", changed,
		"took", time.Since(start).Round(time.Microsecond).String()}
	if len(added) > 0 {
		attrs = append(attrs, "regions_added", added)
	}
	if len(removed) > 0 {
		attrs = append(attrs, "regions_removed", removed)
	}
	if len(changed) == 0 {
		attrs = append(attrs, "note", "no change")
	}
	a.log.Info("config reloaded: new calls use it, calls in progress keep theirs", attrs...)
	for _, w := range cfg.MissingKeys(os.Getenv) {
		a.log.Warn("realtime key missing; the region will refuse us until it is set", "detail", w)
	}
	if len(restart) > 0 {
		a.log.Warn("config reload: these keys changed but only take effect after a restart; the running values are kept",
			"needs_restart", restart)
	}
}

// checkSimulators refuses a file whose simulated regions differ from the
// ones running: the simulators are started with the process.
func (a *app) checkSimulators(cfg *configs.Config) error {
	sims, err := simulatedRegions(cfg, time.Now)
	if err != nil {
		return err
	}
	for _, s := range sims {
		if _, ok := a.simKeys[s.region.Name]; !ok {
			return fmt.Errorf("regions %q: a simulated region cannot be added by a reload; restart to start its simulator", s.region.Name)
		}
	}
	return nil
}

// simulatorChanges names the simulated regions whose simulator section
// differs from the one running (its simulator keeps the settings it
// started with).
func (a *app) simulatorChanges(cfg *configs.Config) []string {
	running := map[string]configs.Region{}
	for _, r := range a.cfg.Regions {
		running[r.Name] = r
	}
	var out []string
	for _, r := range cfg.Regions {
		old, ok := running[r.Name]
		if ok && old.Simulator.Enabled && !sameValue(reflect.ValueOf(old.Simulator.Section), reflect.ValueOf(r.Simulator.Section)) {
			out = append(out, fmt.Sprintf("regions %q simulator", r.Name))
		}
	}
	return out
}

func (a *app) pathName() string {
	if a.path == "" {
		return "embedded default"
	}
	return a.path
}
