package failover

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipbridge/sipbridge/realtime"
)

// Metrics are the failover layer's Prometheus series. Labels are bounded:
// region names come from config, triggers and statuses from fixed lists;
// never a call id.
type Metrics struct {
	Swaps               *prometheus.CounterVec   // sipbridge_failover_swaps_total{trigger,from,to}
	Pause               prometheus.Histogram     // sipbridge_failover_pause_seconds
	Responses           *prometheus.CounterVec   // sipbridge_realtime_responses_total{region,status}
	BreakerState        *prometheus.GaugeVec     // sipbridge_failover_breaker_state{region}
	ConnectSeconds      *prometheus.HistogramVec // sipbridge_realtime_connect_seconds{region}
	ConnectErrors       *prometheus.CounterVec   // sipbridge_realtime_connect_errors_total{region,kind}
	GiveUps             prometheus.Counter       // sipbridge_failover_giveups_total
	Rotations           *prometheus.CounterVec   // sipbridge_failover_rotations_total{region}
	CallerFramesDropped prometheus.Counter       // sipbridge_failover_caller_frames_dropped_total
	Hedges              *prometheus.CounterVec   // sipbridge_failover_hedges_total{region,to}
	HedgeResults        *prometheus.CounterVec   // sipbridge_failover_hedge_results_total{result}
	HedgesSkipped       *prometheus.CounterVec   // sipbridge_failover_hedges_skipped_total{reason}
	HedgeCancelledTok   prometheus.Counter       // sipbridge_failover_hedge_cancelled_tokens_total

	quiet quietMetrics // throttle.go
}

// NewMetrics creates the series and registers them on reg (never the global
// registry). A nil reg gives working but unregistered metrics, which is what
// tests and callers without Prometheus get. A series already registered on
// reg (a second NewMetrics on the same registry) is shared, not duplicated.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Swaps: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_failover_swaps_total",
			Help: "Realtime session swaps by trigger and from/to region.",
		}, []string{"trigger", "from", "to"})),
		Pause: realtime.RegisterCollector(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sipbridge_failover_pause_seconds",
			Help: "Silence the caller heard across a swap: last audio handed to playout (or end of the caller's turn) to the first audio of the new answer.",
			// 10 ms … 10 s.
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10},
		})),
		Responses: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_realtime_responses_total",
			Help: "Realtime responses by region and final status (completed, cancelled, failed, incomplete).",
		}, []string{"region", "status"})),
		BreakerState: realtime.RegisterCollector(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sipbridge_failover_breaker_state",
			Help: "Region circuit breaker: 0 closed, 1 half-open, 2 open.",
		}, []string{"region"})),
		ConnectSeconds: realtime.RegisterCollector(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sipbridge_realtime_connect_seconds",
			Help:    "Time to open a configured realtime session (upgrade + session.update).",
			Buckets: []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10},
		}, []string{"region"})),
		ConnectErrors: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_realtime_connect_errors_total",
			Help: "Failed realtime session opens by region and kind (refused, timeout, rate_limited, http_5xx, http_4xx, auth, network, other).",
		}, []string{"region", "kind"})),
		GiveUps: realtime.RegisterCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sipbridge_failover_giveups_total",
			Help: "Calls on which every swap attempt failed (apology played, transferred or hung up).",
		})),
		Rotations: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_failover_rotations_total",
			Help: "Proactive session rotations before the session limit, by the region rotated from.",
		}, []string{"region"})),
		CallerFramesDropped: realtime.RegisterCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sipbridge_failover_caller_frames_dropped_total",
			Help: "Caller audio frames dropped because the conversation could not keep up.",
		})),
		Hedges: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_failover_hedges_total",
			Help: "Hedges started: a turn's first audio was late in region, the same turn was asked in region to.",
		}, []string{"region", "to"})),
		HedgeResults: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_failover_hedge_results_total",
			Help: "How hedges ended: primary (its answer came first), hedge (the hedge's came first), primary_failed (the hedge took over a failed primary), hedge_failed, abandoned (the caller spoke, hold, call ended).",
		}, []string{"result"})),
		HedgesSkipped: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_failover_hedges_skipped_total",
			Help: "Hedge deadlines passed without a hedge: call_budget, process_budget, no_region, no_capacity (every slot of the hedge region taken).",
		}, []string{"reason"})),
		HedgeCancelledTok: realtime.RegisterCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sipbridge_failover_hedge_cancelled_tokens_total",
			Help: "Estimated tokens of the responses a hedge cancelled: the replayed context the loser was given plus the output it produced (text at 4 characters a token, audio at 20 tokens a second).",
		})),
	}
	m.quiet = newQuietMetrics(reg)
	return m
}

// quietMetrics are the series of the throttling and silent-answer paths.
type quietMetrics struct {
	// sipbridge_failover_throttled_total{region,source}
	Throttled *prometheus.CounterVec
	// sipbridge_realtime_rate_limit_remaining{region,limit}: the last
	// rate_limits.updated of any session in the region.
	RateLimitRemaining *prometheus.GaugeVec
	// sipbridge_failover_silent_answers_total{region,kind}
	SilentAnswers *prometheus.CounterVec
	// sipbridge_failover_replay_refused_total{region,action}
	ReplayRefused *prometheus.CounterVec
}

func newQuietMetrics(reg prometheus.Registerer) quietMetrics {
	return quietMetrics{
		Throttled: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_failover_throttled_total",
			Help: "Regions set aside for rate limiting, by region and source (http_429, error_event, response_failed).",
		}, []string{"region", "source"})),
		RateLimitRemaining: realtime.RegisterCollector(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sipbridge_realtime_rate_limit_remaining",
			Help: "Remaining requests/tokens in the region's last rate_limits.updated.",
		}, []string{"region", "limit"})),
		SilentAnswers: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_failover_silent_answers_total",
			Help: "Answers the caller could not hear, by region and kind (text: text instead of audio; empty: completed with no audio and no function call).",
		}, []string{"region", "kind"})),
		ReplayRefused: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipbridge_failover_replay_refused_total",
			Help: "Replayed items the new session refused, by region and what was done (repaired, moved_on, dropped).",
		}, []string{"region", "action"})),
	}
}
