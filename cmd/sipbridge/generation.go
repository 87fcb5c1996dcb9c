package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/failover/webhook"
	"github.com/sipbridge/sipbridge/sip"
)

// generation is one loaded configuration and what was built from it: the
// assistant and its profiles, routes, caller context rules, failover
// tuning and prompts, webhook tools. It is never changed once published;
// SIGHUP builds the next one and swaps it in (a.gen), so a call reads the
// generation current at its INVITE and keeps it to the end, and a call
// that starts later gets the new one. Listeners, RTP and logging are the
// process's and are not part of it (they need a restart: reloadable).
type generation struct {
	id  int64
	cfg *configs.Config
	// prompts are the filler and apology WAVs by path (failover's and the
	// assistants' own: configs.PromptFiles).
	prompts map[string]*prompt
	// tools of each assistant by profile name ("" = the assistant
	// section); absent when it has no webhooks.
	tools map[string]*webhook.Webhooks
}

// buildGeneration checks and loads everything cfg names. Nothing running
// is touched, so an error leaves the current generation in place.
func (a *app) buildGeneration(cfg *configs.Config, id int64) (*generation, error) {
	if errs := checkFiles(cfg); len(errs) > 0 { // check.go: the same checks as sipbridge check
		return nil, errors.Join(errs...)
	}
	g := &generation{id: id, cfg: cfg, prompts: map[string]*prompt{}, tools: map[string]*webhook.Webhooks{}}
	for _, f := range cfg.AllPromptFiles() {
		p, err := loadPrompt(f.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Key, err)
		}
		g.prompts[f.Path] = p
	}
	add := func(name, section string, as *configs.Assistant) error {
		w, err := newToolRunner(as, section, os.Getenv, a.log, a.toolMetrics) // webhooks.go
		if w != nil {
			g.tools[name] = w
		}
		return err
	}
	if err := add("", "assistant", &cfg.Assistant); err != nil {
		return nil, err
	}
	for _, name := range cfg.ProfileNames() {
		if err := add(name, "assistants."+name, cfg.Assistants[name]); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// regionsOf is cfg's regions as the pool takes them; a simulated region
// dials the in-process simulator started for its name with that
// simulator's key.
func (a *app) regionsOf(cfg *configs.Config) []failover.Region {
	out := make([]failover.Region, 0, len(cfg.Regions))
	for _, r := range cfg.Regions {
		dc := r.DialConfig(os.Getenv)
		if r.Simulator.Enabled {
			dc.APIKey = a.simKeys[r.Name]
		}
		fr := r.CapacityRegion() // max_sessions, weight, priority
		fr.Dial, fr.SessionLimit, fr.WarmStandby = dc, r.SessionLimit.D(), r.WarmStandby
		out = append(out, fr)
	}
	return out
}

func healthConfig(cfg *configs.Config) failover.HealthConfig {
	return failover.HealthConfig{
		Window:       cfg.Failover.Health.Window.D(),
		MinSamples:   cfg.Failover.Health.MinSamples,
		FailureRatio: cfg.Failover.Health.FailureRatio,
		CoolDown:     cfg.Failover.Health.CoolDown.D(),
		TTFAWindow:   cfg.Failover.Hedge.Window.D(),
		HedgeShare:   cfg.Failover.Hedge.ProcessShare,
	}
}

func sipPrivacy(cfg *configs.Config) sip.Privacy {
	return sip.Privacy{From: cfg.Private(configs.PrivateFrom), To: cfg.Private(configs.PrivateTo)}
}

// reloadMetrics are the reload series.
type reloadMetrics struct {
	reloads    *prometheus.CounterVec // sipbridge_config_reloads_total{result}
	generation prometheus.Gauge       // sipbridge_config_generation
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_config_reloads_total",
			Help: "Configuration reloads (SIGHUP), by result (ok, failed: the file was refused and the running configuration kept).",
		}, []string{"result"}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sipbridge_config_generation",
			Help: "Generation of the configuration new calls use: 1 at start, +1 per successful reload.",
		}),
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	reg.MustRegister(m.reloads, m.generation)
	return m
}

// reloadable are the keys a reload applies (top-level sections, or
// section.key). Every other key is the process's: a changed value is
// reported as needing a restart and the running one is kept.
var reloadable = []string{
	"assistant", "assistants", "routes", "caller_headers", "privacy",
	"regions", "failover", "sip.trunks", "sip.auth_limit", "drain_timeout",
}

// configChanges lists the keys whose values differ between old and new,
// one level into sections (sip.listen), split into those a reload applies
// and those that need a restart. Keys are the YAML keys.
func configChanges(old, new *configs.Config) (applied, needsRestart []string) {
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	t := ov.Type()
	for i := 0; i < t.NumField(); i++ {
		key := yamlKey(t.Field(i))
		if key == "" {
			continue
		}
		of, nf := ov.Field(i), nv.Field(i)
		if key == "assistants" { // as resolved: a change to assistant shows in its profiles too
			of, nf = reflect.ValueOf(old.Assistants), reflect.ValueOf(new.Assistants)
		}
		if sameValue(of, nf) {
			continue
		}
		if slices.Contains(reloadable, key) {
			applied = append(applied, key)
			continue
		}
		if of.Kind() != reflect.Struct {
			needsRestart = append(needsRestart, key)
			continue
		}
		for j := 0; j < of.NumField(); j++ {
			sub := yamlKey(of.Type().Field(j))
			if sub == "" || sameValue(of.Field(j), nf.Field(j)) {
				continue
			}
			k := key + "." + sub
			if slices.Contains(reloadable, k) {
				applied = append(applied, k)
			} else {
				needsRestart = append(needsRestart, k)
			}
		}
	}
	return applied, needsRestart
}

// sameValue compares two config values as YAML: what was written, not
// where (the nodes kept for later decoding carry line numbers).
func sameValue(a, b reflect.Value) bool {
	ab, errA := yaml.Marshal(a.Interface())
	bb, errB := yaml.Marshal(b.Interface())
	if errA != nil || errB != nil {
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
	return bytes.Equal(ab, bb)
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if !f.IsExported() || name == "-" {
		return ""
	}
	return name
}
