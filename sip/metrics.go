package sip

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// Metrics are the SIP server's Prometheus series. Every label is a bounded
// enum (method, status class, reason); never a Call-ID or an address.
type Metrics struct {
	reg          prometheus.Registerer  // for the records writer's metrics (nil: none)
	requests     *prometheus.CounterVec // sipbridge_sip_requests_total{method}
	responses    *prometheus.CounterVec // sipbridge_sip_responses_total{method,code}
	malformed    *prometheus.CounterVec // sipbridge_sip_malformed_total{transport,action}
	callsActive  prometheus.Gauge       // sipbridge_calls_active
	callEnds     *prometheus.CounterVec // sipbridge_call_end_total{reason}
	callDuration prometheus.Histogram   // sipbridge_call_duration_seconds
	answerDelay  prometheus.Histogram   // sipbridge_sip_answer_seconds
	transfers    *prometheus.CounterVec // sipbridge_sip_transfers_total{result}
	reinvites    *prometheus.CounterVec // sipbridge_sip_reinvites_total{result}
	// Client registrations (register.go); the registrar label is the
	// configured registration name, so it is bounded by the config.
	registrationUp *prometheus.GaugeVec   // sipbridge_sip_registration_up{registrar}
	registers      *prometheus.CounterVec // sipbridge_sip_register_total{registrar,result}
	// Trunk access control (acl.go, auth.go).
	auth *authMetrics
	// Media negotiation and SRTP (mediapolicy.go).
	sdpRejects *prometheus.CounterVec // sipbridge_sip_sdp_rejections_total{reason}
	srtpDrops  *prometheus.CounterVec // sipbridge_media_srtp_dropped_total{reason}
	// Its two series, resolved once: srtpDropped runs per dropped packet.
	srtpAuthDrops, srtpReplayDrops prometheus.Counter
	// Token accounting (record.go): every response.done's usage.
	tokens       *prometheus.CounterVec // sipbridge_realtime_tokens_total{region,status,purpose,kind}
	wastedTokens *prometheus.CounterVec // sipbridge_realtime_wasted_tokens_total{region,purpose}
	cost         *prometheus.CounterVec // sipbridge_realtime_cost_total{region}
	// Edge limits (limits.go).
	limited *prometheus.CounterVec // sipbridge_sip_limited_total{limit}
}

// Edge limit labels (sipbridge_sip_limited_total{limit}).
const (
	limitUnconfirmed    = "unconfirmed_per_source"
	limitOptionsRate    = "options_rate"
	limitConnsPerSource = "connections_per_source"
	limitConnsTotal     = "connections_total"
	limitStreamIdle     = "stream_idle"
	limitStreamSlow     = "stream_slow"
)

var limitLabels = []string{limitUnconfirmed, limitOptionsRate, limitConnsPerSource, limitConnsTotal, limitStreamIdle, limitStreamSlow}

// NewMetrics creates the series and registers them on reg (nil: not
// registered). Registering twice on one registry reuses the existing series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		requests: counterVec(reg, "sip", "requests_total",
			"SIP requests received, by method.", "method"),
		responses: counterVec(reg, "sip", "responses_total",
			"Final and provisional SIP responses sent by handlers, by request method and status code.", "method", "code"),
		malformed: counterVec(reg, "sip", "malformed_total",
			"SIP messages that could not be parsed, by transport and what was done (responded 400, dropped, closed).", "transport", "action"),
		callsActive: realtime.RegisterCollector(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "sipbridge", Name: "calls_active",
			Help: "Calls admitted and not yet ended (setup included).",
		})),
		callEnds: counterVec(reg, "", "call_end_total",
			"Calls and rejected INVITEs by end reason.", "reason"),
		callDuration: realtime.RegisterCollector(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "sipbridge", Name: "call_duration_seconds",
			Help:    "Duration of answered calls, from INVITE to teardown.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200},
		})),
		answerDelay: realtime.RegisterCollector(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "sipbridge", Subsystem: "sip", Name: "answer_seconds",
			Help:    "Time from INVITE received to 200 OK sent.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		})),
		transfers: counterVec(reg, "sip", "transfers_total",
			"REFER transfers by result.", "result"),
		reinvites: counterVec(reg, "sip", "reinvites_total",
			"re-INVITEs by result (hold, resume, update, rejected).", "result"),
		registrationUp: realtime.RegisterCollector(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sipbridge", Subsystem: "sip", Name: "registration_up",
			Help: "1 while the registration (by configured name) holds a binding at its registrar, else 0.",
		}, []string{"registrar"})),
		registers: counterVec(reg, "sip", "register_total",
			"REGISTER attempts by registration name and result (ok, auth_rejected, rejected, error, unregistered).", "registrar", "result"),
		auth: newAuthMetrics(reg),
		sdpRejects: counterVec(reg, "sip", "sdp_rejections_total",
			"SDP offers and answers refused (488 for offers), by reason (no-common-codec, encryption-required, srtp-not-enabled, no-usable-crypto, dtls-srtp-unsupported, srtp-change, no-audio, other).", "reason"),
		srtpDrops: counterVec(reg, "media", "srtp_dropped_total",
			"Received RTP packets dropped on SRTP calls, by reason: auth (authentication failed, including clear RTP) or replay.", "reason"),
		tokens: counterVec(reg, "realtime", "tokens_total",
			"Tokens reported by response.done, by region, status (completed, failed, cancelled, incomplete), purpose (answer, replay, hedge, rotation) and kind (input, cached_input, output).",
			"region", "status", "purpose", "kind"),
		wastedTokens: counterVec(reg, "realtime", "wasted_tokens_total",
			"Tokens spent on answers the caller never heard (failed, cancelled, truncated beyond what played, lost hedges), by region and purpose.",
			"region", "purpose"),
		cost: counterVec(reg, "realtime", "cost_total",
			"Estimated cost of the responses, in the currency of regions[].prices (unpriced regions add nothing).", "region"),
		limited: counterVec(reg, "sip", "limited_total",
			"Requests and connections refused or closed by an edge limit, by limit (unconfirmed_per_source, options_rate, connections_per_source, connections_total, stream_idle, stream_slow).", "limit"),
	}
	for _, l := range limitLabels {
		m.limited.WithLabelValues(l)
	}
	for _, r := range []sdp.RejectReason{sdp.RejectNoAudio, sdp.RejectNoCommonCodec, sdp.RejectSRTPNotEnabled,
		sdp.RejectEncryptionRequired, sdp.RejectNoUsableCrypto, sdp.RejectDTLSUnsupported, rejectSRTPChange} {
		m.sdpRejects.WithLabelValues(string(r))
	}
	m.srtpAuthDrops = m.srtpDrops.WithLabelValues("auth")
	m.srtpReplayDrops = m.srtpDrops.WithLabelValues("replay")
	for r := EndReason(0); r < endReasonCount; r++ {
		m.callEnds.WithLabelValues(r.String())
	}
	return m
}

// counterVec creates the counter sipbridge_<subsystem>_<name>{labels} and
// registers it on reg (realtime.RegisterCollector).
func counterVec(reg prometheus.Registerer, subsystem, name, help string, labels ...string) *prometheus.CounterVec {
	return realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipbridge", Subsystem: subsystem, Name: name, Help: help,
	}, labels))
}

// knownMethods bounds the method label.
var knownMethods = map[string]bool{
	"INVITE": true, "ACK": true, "BYE": true, "CANCEL": true, "OPTIONS": true, "REGISTER": true,
	"PRACK": true, "SUBSCRIBE": true, "NOTIFY": true, "PUBLISH": true, "INFO": true, "REFER": true,
	"MESSAGE": true, "UPDATE": true,
}

func methodLabel(m string) string {
	if knownMethods[m] {
		return m
	}
	return "other"
}

// codeLabel bounds the code label to real SIP status codes.
func codeLabel(code int) string {
	if code < 100 || code > 699 {
		return "other"
	}
	return strconv.Itoa(code)
}

// countNegotiationError counts a refused SDP offer or answer by its reason.
func (m *Metrics) countNegotiationError(err error) {
	reason := "other"
	if ne, ok := errors.AsType[*sdp.NegotiationError](err); ok {
		reason = string(ne.Reason)
	}
	m.sdpRejects.WithLabelValues(reason).Inc()
}

// srtpDropped counts one received packet an SRTP stream dropped (the
// stream's OnSRTPFailure; reader goroutine, must not block).
func (m *Metrics) srtpDropped(replay bool) {
	if replay {
		m.srtpReplayDrops.Inc()
		return
	}
	m.srtpAuthDrops.Inc()
}
