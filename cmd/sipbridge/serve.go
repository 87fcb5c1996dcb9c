package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip"
)

func newLogger(c configs.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// app is one running sipbridge: everything serve starts, for a clean stop.
type app struct {
	cfg     *configs.Config
	log     *slog.Logger
	sims    []*sim.Server
	simKeys map[string]string // region name → the key its in-process simulator expects
	pool    *failover.Pool
	fom     *failover.Metrics
	sip     *sip.Server
	filler  *prompt
	apology *prompt
	tools   failover.ToolRunner // webhook tools (webhooks.go); nil: none
	// draining is set on SIGTERM; /readyz answers 503 from then on (admin.go).
	draining atomic.Bool
}

func serve(ctx context.Context, stop shutdown, cfg *configs.Config, logw io.Writer) error {
	log := newLogger(cfg.Log, logw)
	a := &app{cfg: cfg, log: log, simKeys: map[string]string{}}

	sims, err := simulatedRegions(cfg, time.Now)
	if err != nil {
		return err
	}
	if errs := checkFiles(cfg); len(errs) > 0 { // check.go: the same checks as sipbridge check
		return errors.Join(errs...)
	}
	if cfg.Failover.FillerFile != "" {
		if a.filler, err = loadPrompt(cfg.Failover.FillerFile); err != nil {
			return fmt.Errorf("failover.filler_file: %w", err)
		}
	}
	if cfg.Failover.ApologyFile != "" {
		if a.apology, err = loadPrompt(cfg.Failover.ApologyFile); err != nil {
			return fmt.Errorf("failover.apology_file: %w", err)
		}
	}
	for _, w := range cfg.MissingKeys(os.Getenv) {
		log.Warn("realtime key missing; the region will refuse us until it is set", "detail", w)
	}

	if err := a.startSimulators(sims, log); err != nil {
		a.closeSimulators()
		return err
	}
	defer a.closeSimulators()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.fom = failover.NewMetrics(reg)
	a.pool = failover.NewPool(a.regions(), failover.HealthConfig{
		Window:       cfg.Failover.Health.Window.D(),
		MinSamples:   cfg.Failover.Health.MinSamples,
		FailureRatio: cfg.Failover.Health.FailureRatio,
		CoolDown:     cfg.Failover.Health.CoolDown.D(),
	}, a.fom, log)
	realtime.RegisterCollector(reg, a.pool.CapacityCollector())

	rtpIP, err := a.rtpIP()
	if err != nil {
		return err
	}
	ports, err := media.NewPortAllocator(rtpIP, cfg.RTP.PortMin, cfg.RTP.PortMax)
	if err != nil {
		return fmt.Errorf("rtp: %w", err)
	}
	sipCfg := sip.Config{
		AdvertiseHost:   cfg.SIP.Advertise,
		UserAgent:       cfg.SIP.UserAgent,
		MaxCalls:        cfg.SIP.MaxCalls,
		ACKTimeout:      cfg.SIP.ACKTimeout.D(),
		AnswerWhenReady: *cfg.SIP.AnswerWhenReady,
		AnswerTimeout:   cfg.SIP.AnswerTimeout.D(),
		MediaTimeout:    cfg.RTP.MediaTimeout.D(),
		SymmetricRTP:    *cfg.RTP.Symmetric,
		LatchBeforeSend: cfg.RTP.LatchBeforeSend,
		ComfortNoiseDB:  cfg.RTP.ComfortNoiseDBov,
		Records:         cfg.Records.WriterConfig(),
		Capacity:        a.pool,
	}
	for _, r := range cfg.Regions {
		if r.Prices != nil {
			if sipCfg.Prices == nil {
				sipCfg.Prices = map[string]realtime.Prices{}
			}
			sipCfg.Prices[r.Name] = r.Prices.Prices()
		}
	}
	// Session timers (RFC 4028).
	sipCfg.SessionExpires, sipCfg.MinSE = cfg.SIP.SessionExpires.D(), cfg.SIP.MinSE.D()
	sipCfg.SessionRefresher = cfg.SIP.SessionRefresher
	if sipCfg.MinSE < sip.DefaultMinSE {
		log.Warn("sip.min_se is below RFC 4028's 90 s floor: for tests only", "min_se", sipCfg.MinSE.String())
	}
	for _, l := range cfg.SIP.Listen {
		for _, t := range cfg.SIP.Transports {
			sipCfg.Listen = append(sipCfg.Listen, sip.Listener{Network: t, Addr: l})
		}
	}
	if err := applyTrunks(&sipCfg, cfg, os.Getenv); err != nil { // trunks.go
		return err
	}
	applyRegistrations(&sipCfg, cfg, os.Getenv) // register.go
	if a.tools, err = newToolRunner(cfg, os.Getenv, log, reg); err != nil {
		return err
	}
	a.sip, err = sip.NewServer(sipCfg, ports, a.newConversation, log, sip.NewMetrics(reg))
	if err != nil {
		return err
	}

	sipCtx, cancelSIP := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSIP()
	sipErr := make(chan error, 1)
	sipDone := make(chan struct{})
	go func() {
		defer close(sipDone)
		sipErr <- a.sip.Serve(sipCtx)
	}()
	// Before the process exits, Serve finishes its shutdown: calls still up
	// get their BYE and registrations their unREGISTER (bounded).
	defer func() {
		cancelSIP()
		select {
		case <-sipDone:
		case <-time.After(sipShutdownWait):
			log.Warn("sip: shutdown did not finish in time", "waited", sipShutdownWait.String())
		}
	}()
	select {
	case <-a.sip.Ready():
	case err := <-sipErr:
		return fmt.Errorf("sip: %w", err)
	}

	adminSrv, err := a.startAdmin(reg)
	if err != nil {
		return err
	}
	if adminSrv != nil {
		defer adminSrv.Close()
	}
	log.Info("sipbridge ready", "version", version, "sip", addrStrings(a.sip.Addrs()),
		"regions", regionNames(cfg), "admin", cfg.Admin.Listen)

	select {
	case err := <-sipErr:
		return fmt.Errorf("sip: %w", err)
	case <-stop.now:
		log.Info("SIGINT: hanging up all calls and stopping now", "active_calls", a.sip.ActiveCalls())
		a.hangupAll(2 * time.Second)
		return nil
	case <-stop.drain:
	}

	log.Info("SIGTERM: draining; new calls get 503", "active_calls", a.sip.ActiveCalls(), "drain_timeout", cfg.DrainTimeout.D().String())
	a.draining.Store(true)
	a.sip.Drain()
	waitCtx, cancelWait := context.WithTimeout(context.Background(), cfg.DrainTimeout.D())
	defer cancelWait()
	waitDone := make(chan error, 1)
	go func() { waitDone <- a.sip.Wait(waitCtx) }()
	select {
	case err := <-waitDone:
		if err != nil {
			log.Warn("drain timeout reached; hanging up remaining calls", "active_calls", a.sip.ActiveCalls())
			a.hangupAll(5 * time.Second)
		} else {
			log.Info("drained: no active calls")
		}
	case <-stop.now:
		log.Info("second signal: hanging up all calls now", "active_calls", a.sip.ActiveCalls())
		a.hangupAll(2 * time.Second)
	}
	return nil
}

func (a *app) hangupAll(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	a.sip.HangupAll(ctx)
}

// startSimulators runs the simulated regions in-process. A simulated region
// with no api_key_env gets a random per-process key, so the auth check of the
// simulator is exercised exactly as against a real region.
func (a *app) startSimulators(sims []simRegion, log *slog.Logger) error {
	for _, s := range sims {
		r := s.region
		key := ""
		if r.APIKeyEnv != "" {
			key = os.Getenv(r.APIKeyEnv)
		}
		if key == "" {
			key = randomKey()
		}
		a.simKeys[r.Name] = key
		sc := s.cfg
		sc.APIKey = key
		sc.Logger = log.With("component", "simulator", "region", r.Name)
		srv := sim.New(sc)
		url, err := srv.Listen(r.ListenAddr())
		if err != nil {
			return fmt.Errorf("regions %q simulator: %w", r.Name, err)
		}
		a.sims = append(a.sims, srv)
		log.Info("simulated realtime region listening", "region", r.Name, "url", url,
			"failure_rate", sc.Faults.FailureRate, "seed", sc.Faults.Seed, "random_seed", s.randomSeed)
	}
	return nil
}

func (a *app) closeSimulators() {
	for _, s := range a.sims {
		_ = s.Close()
	}
	a.sims = nil
}

func randomKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "sim-" + hex.EncodeToString(b[:])
}

func (a *app) regions() []failover.Region {
	out := make([]failover.Region, 0, len(a.cfg.Regions))
	for _, r := range a.cfg.Regions {
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

func (a *app) rtpIP() (netip.Addr, error) {
	s := a.cfg.RTP.IP
	if s == "" {
		ap, err := netip.ParseAddrPort(a.cfg.SIP.Listen[0])
		if err != nil {
			return netip.Addr{}, fmt.Errorf("rtp.ip: cannot default from sip.listen %q: %w", a.cfg.SIP.Listen[0], err)
		}
		return ap.Addr(), nil
	}
	return netip.ParseAddr(s)
}

func addrStrings(as []net.Addr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Network()+"/"+a.String())
	}
	return out
}

func regionNames(c *configs.Config) []string {
	out := make([]string, 0, len(c.Regions))
	for _, r := range c.Regions {
		out = append(out, r.Name)
	}
	return out
}
