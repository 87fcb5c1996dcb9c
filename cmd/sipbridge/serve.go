package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"github.com/sipbridge/sipbridge/failover/webhook"
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
	// cfg is the configuration the process started with: its listeners,
	// RTP, logging and SIP settings hold until a restart. What a reload
	// changes lives in gen.
	cfg     *configs.Config
	path    string // the config file SIGHUP reloads; "": the embedded default
	log     *slog.Logger
	sims    []*sim.Server
	simKeys map[string]string // region name → the key its in-process simulator expects
	pool    *failover.Pool
	fom     *failover.Metrics
	sip     *sip.Server
	// gen is the current generation (generation.go): read once per call
	// at its INVITE, replaced whole by reload.
	gen         atomic.Pointer[generation]
	toolMetrics *webhook.Metrics
	reloadM     *reloadMetrics
	// draining is set on SIGTERM; /readyz answers 503 from then on (admin.go).
	draining atomic.Bool
}

func serve(ctx context.Context, stop shutdown, path string, cfg *configs.Config, logw io.Writer) error {
	log := newLogger(cfg.Log, logw)
	a := &app{cfg: cfg, path: path, log: log, simKeys: map[string]string{}}

	sims, err := simulatedRegions(cfg, time.Now)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.toolMetrics = webhook.NewMetrics(reg)
	a.reloadM = newReloadMetrics(reg)
	first, err := a.buildGeneration(cfg, 1) // generation.go
	if err != nil {
		return err
	}
	a.gen.Store(first)
	a.reloadM.generation.Set(1)
	for _, w := range cfg.MissingKeys(os.Getenv) {
		log.Warn("realtime key missing; the region will refuse us until it is set", "detail", w)
	}

	if err := a.startSimulators(sims, log); err != nil {
		a.closeSimulators()
		return err
	}
	defer a.closeSimulators()

	a.fom = failover.NewMetrics(reg)
	a.pool = failover.NewPool(a.regionsOf(cfg), healthConfig(cfg), a.fom, log)
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
		UplinkChunk:     cfg.RTP.UplinkChunk.D(),
		Limits: sip.EdgeLimits{
			MaxUnconfirmedPerSource: cfg.SIP.Limits.MaxUnconfirmedPerSource,
			OptionsRate:             cfg.SIP.Limits.OptionsPerSecond,
			MaxConnections:          cfg.SIP.Limits.MaxConnections,
			MaxConnectionsPerSource: cfg.SIP.Limits.MaxConnectionsPerSource,
			StreamIdleTimeout:       cfg.SIP.Limits.TCPIdleTimeout.D(),
		},
		Records:  cfg.Records.WriterConfig(),
		Capacity: a.pool,
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
	a.sip, err = sip.NewServer(sipCfg, ports, a.newConversation, log, sip.NewMetrics(reg))
	if err != nil {
		return err
	}
	a.sip.SetPrivacy(sipPrivacy(cfg))

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
		"regions", regionNames(cfg), "admin", cfg.Admin.Listen, "config_generation", 1)
	reloadCtx, stopReloads := context.WithCancel(ctx)
	defer stopReloads()
	go a.reloadOnSignal(reloadCtx, stop.reload) // reload.go

	select {
	case err := <-sipErr:
		return fmt.Errorf("sip: %w", err)
	case <-stop.now:
		log.Info("SIGINT: hanging up all calls and stopping now", "active_calls", a.sip.ActiveCalls())
		a.hangupAll(2 * time.Second)
		return nil
	case <-stop.drain:
	}

	drainTimeout := a.gen.Load().cfg.DrainTimeout.D()
	log.Info("SIGTERM: draining; new calls get 503", "active_calls", a.sip.ActiveCalls(), "drain_timeout", drainTimeout.String())
	a.draining.Store(true)
	a.sip.Drain()
	waitCtx, cancelWait := context.WithTimeout(context.Background(), drainTimeout)
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
