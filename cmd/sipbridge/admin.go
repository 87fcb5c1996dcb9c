package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/realtime"
)

// The admin endpoint's probes. Orchestrators need two different answers:
//
//	/livez   200 while the process serves, draining included: a liveness
//	         probe must not restart a pod that is finishing its calls.
//	/readyz  200 only while new calls are taken: 503 while draining, at
//	         sip.max_calls, when every region's breaker is open, or when
//	         no region has a free session (regions[].max_sessions).
//	/healthz an alias of /readyz (what it answered before the split:
//	         503 while draining), kept for existing load-balancer checks.
const (
	pathLive    = "/livez"
	pathReady   = "/readyz"
	pathHealthz = "/healthz"
)

// readiness is what decides /readyz, gathered at request time.
type readiness struct {
	draining bool
	active   int // calls admitted, setup included
	maxCalls int // 0 = unlimited
	regions  []failover.RegionStatus
	full     bool // every region is at max_sessions or throttled
}

// notReady says why no new call would be taken now, or "" when one would.
func (r readiness) notReady() string {
	if r.draining {
		return "draining"
	}
	if r.maxCalls > 0 && r.active >= r.maxCalls {
		return fmt.Sprintf("at max_calls (%d of %d active)", r.active, r.maxCalls)
	}
	open := true
	for _, s := range r.regions {
		if s.State != failover.BreakerOpen {
			open = false
		}
	}
	if open {
		return "no usable region (every breaker is open)"
	}
	if r.full {
		return "no region has a free session (every region at max_sessions or throttled)"
	}
	return ""
}

func (a *app) readiness() readiness {
	return readiness{
		draining: a.draining.Load(),
		active:   a.sip.ActiveCalls(),
		maxCalls: a.cfg.SIP.MaxCalls,
		regions:  a.pool.Status(),
		full:     a.pool.Full(),
	}
}

// registerAdminMetrics exports what the alerts and the dashboard need that
// no package owns: the configured call cap (to alert before it is reached)
// and the readiness /readyz reports.
func registerAdminMetrics(reg prometheus.Registerer, a *app) {
	realtime.RegisterCollector(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sipbridge_max_calls",
		Help: "sip.max_calls: the concurrent call cap (0 = none).",
	}, func() float64 { return float64(a.cfg.SIP.MaxCalls) }))
	realtime.RegisterCollector(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sipbridge_ready",
		Help: "1 while new calls are taken (/readyz answers 200), else 0.",
	}, func() float64 {
		if a.readiness().notReady() == "" {
			return 1
		}
		return 0
	}))
	realtime.RegisterCollector(reg, rtpLatenessCollector{})
}

// rtpLatenessCollector exports media.SendLateness: how late each RTP
// packet left against its 20 ms slot on the shared media clock.
type rtpLatenessCollector struct{}

var rtpLatenessDesc = prometheus.NewDesc("sipbridge_rtp_send_lateness_seconds",
	"Time from each outbound RTP packet's 20 ms slot to the return of its send, on the shared media clock.",
	nil, nil)

func (rtpLatenessCollector) Describe(ch chan<- *prometheus.Desc) { ch <- rtpLatenessDesc }

func (rtpLatenessCollector) Collect(ch chan<- prometheus.Metric) {
	l := media.SendLateness()
	buckets := make(map[float64]uint64, len(media.LatenessBuckets))
	var cum uint64
	for i, b := range media.LatenessBuckets {
		cum += l.Counts[i]
		buckets[b.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(rtpLatenessDesc, l.Count, l.Sum.Seconds(), buckets)
}

// adminHandler serves /metrics, the probes and /status.
func (a *app) adminHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if a.cfg.Admin.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc(pathLive, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	ready := func(w http.ResponseWriter, r *http.Request) {
		if why := a.readiness().notReady(); why != "" {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	}
	mux.HandleFunc(pathReady, ready)
	mux.HandleFunc(pathHealthz, ready)
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		rd := a.readiness()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"version":       version,
			"active_calls":  rd.active,
			"draining":      rd.draining,
			"ready":         rd.notReady() == "",
			"not_ready":     rd.notReady(),
			"regions":       rd.regions,
			"capacity":      a.pool.Load(),
			"registrations": a.sip.Registrations(),
		})
	})
	return mux
}

func (a *app) startAdmin(reg *prometheus.Registry) (*http.Server, error) {
	if a.cfg.Admin.Listen == "off" {
		return nil, nil
	}
	registerAdminMetrics(reg, a)
	ln, err := net.Listen("tcp", a.cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}
	srv := &http.Server{Handler: a.adminHandler(reg), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server stopped", "err", err)
		}
	}()
	return srv, nil
}
