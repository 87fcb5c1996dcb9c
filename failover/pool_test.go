package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

func newTestPool(clock *fakeClock, reg *prometheus.Registry) *Pool {
	return NewPool([]Region{{Name: "east"}, {Name: "west"}, {Name: "eu"}},
		HealthConfig{Window: time.Minute, MinSamples: 4, FailureRatio: 0.5, CoolDown: 30 * time.Second, Now: clock.Now},
		NewMetrics(reg), nil)
}

func gauge(t *testing.T, reg *prometheus.Registry, region string) float64 {
	t.Helper()
	h := &harness{t: t, reg: reg}
	return h.metric("sipbridge_failover_breaker_state", "region", region)
}

func TestPoolBreaker(t *testing.T) {
	type step struct {
		advance time.Duration
		region  string
		outcome Outcome
		probe   string // beginProbe(region) instead of a report
	}
	tests := []struct {
		name      string
		steps     []step
		wantState BreakerState
		wantCands []string
	}{
		{name: "too few samples keep it closed",
			steps:     []step{{region: "east", outcome: OutcomeResponseFailed}, {region: "east", outcome: OutcomeStall}, {region: "east", outcome: OutcomeSessionLost}},
			wantState: BreakerClosed, wantCands: []string{"west", "eu", "east"}}, // degraded: ranked last
		{name: "ratio reached with min samples opens",
			steps: []step{{region: "east", outcome: OutcomeResponseOK}, {region: "east", outcome: OutcomeResponseOK},
				{region: "east", outcome: OutcomeResponseFailed}, {region: "east", outcome: OutcomeConnectError}},
			wantState: BreakerOpen, wantCands: []string{"west", "eu"}},
		{name: "normal failure rate stays closed and healthy",
			steps: []step{{region: "east", outcome: OutcomeResponseOK}, {region: "east", outcome: OutcomeResponseOK},
				{region: "east", outcome: OutcomeResponseOK}, {region: "east", outcome: OutcomeResponseOK},
				{region: "east", outcome: OutcomeResponseOK}, {region: "east", outcome: OutcomeResponseFailed}},
			wantState: BreakerClosed, wantCands: []string{"east", "west", "eu"}},
		{name: "auth error opens at once",
			steps:     []step{{region: "east", outcome: OutcomeAuthError}},
			wantState: BreakerOpen, wantCands: []string{"west", "eu"}},
		{name: "old failures leave the window",
			steps: []step{{region: "east", outcome: OutcomeResponseFailed}, {region: "east", outcome: OutcomeResponseFailed},
				{region: "east", outcome: OutcomeResponseFailed}, {advance: 61 * time.Second},
				{region: "east", outcome: OutcomeResponseFailed}},
			wantState: BreakerClosed, wantCands: []string{"east", "west", "eu"}},
		{name: "half-open after cool down, last in order",
			steps:     []step{{region: "east", outcome: OutcomeAuthError}, {advance: 30 * time.Second}},
			wantState: BreakerHalfOpen, wantCands: []string{"west", "eu", "east"}},
		{name: "half-open allows one probe",
			steps:     []step{{region: "east", outcome: OutcomeAuthError}, {advance: 30 * time.Second}, {probe: "east"}},
			wantState: BreakerHalfOpen, wantCands: []string{"west", "eu"}},
		{name: "an unanswered probe frees itself after another cool down",
			steps:     []step{{region: "east", outcome: OutcomeAuthError}, {advance: 30 * time.Second}, {probe: "east"}, {advance: 30 * time.Second}},
			wantState: BreakerHalfOpen, wantCands: []string{"west", "eu", "east"}},
		{name: "probe success closes",
			steps: []step{{region: "east", outcome: OutcomeAuthError}, {advance: 30 * time.Second}, {probe: "east"},
				{region: "east", outcome: OutcomeResponseOK}},
			wantState: BreakerClosed, wantCands: []string{"east", "west", "eu"}},
		{name: "probe failure reopens",
			steps: []step{{region: "east", outcome: OutcomeAuthError}, {advance: 30 * time.Second}, {probe: "east"},
				{region: "east", outcome: OutcomeStall}},
			wantState: BreakerOpen, wantCands: []string{"west", "eu"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			reg := prometheus.NewRegistry()
			p := newTestPool(clock, reg)
			for _, s := range tc.steps {
				clock.Advance(s.advance)
				switch {
				case s.probe != "":
					p.beginProbe(s.probe)
				case s.region != "":
					p.Report(s.region, s.outcome)
				}
			}
			st := p.Status()
			require.Equal(t, "east", st[0].Name)
			require.Equal(t, tc.wantState, st[0].State)
			require.Equal(t, tc.wantCands, names(p.Candidates()))
			require.Equal(t, float64(tc.wantState), gauge(t, reg, "east"))
		})
	}
}

func TestPoolCandidatesExcludeAndLastResort(t *testing.T) {
	clock := newFakeClock()
	p := newTestPool(clock, prometheus.NewRegistry())
	require.Equal(t, []string{"west", "eu"}, names(p.Candidates("east")))
	require.Equal(t, []string{"eu"}, names(p.Candidates("east", "west")))
	p.Report("west", OutcomeAuthError)
	for i := 0; i < 4; i++ {
		p.Report("east", OutcomeConnectError)
		p.Report("eu", OutcomeConnectError)
	}
	require.Empty(t, p.Candidates())
	require.Equal(t, []string{"east", "eu"}, names(p.lastResort()), "auth-failed regions are no last resort")
	require.False(t, p.usable("east"))
	st := p.Status()
	require.True(t, st[1].AuthFailed)
	require.Equal(t, "connect_error", st[0].LastOutcome)
	p.Report("nowhere", OutcomeResponseFailed) // unknown regions are ignored
	require.Len(t, p.Status(), 3)
}

func TestPoolDegradedRanking(t *testing.T) {
	clock := newFakeClock()
	p := newTestPool(clock, prometheus.NewRegistry())
	// east fails 1 of 3 (≥ half the opening ratio): still closed, but new
	// calls go to west first.
	p.Report("east", OutcomeResponseOK)
	p.Report("east", OutcomeResponseOK)
	p.Report("east", OutcomeResponseFailed)
	st := p.Status()
	require.Equal(t, BreakerClosed, st[0].State)
	require.True(t, st[0].Degraded)
	require.InDelta(t, 1.0/3, st[0].FailureRatio, 1e-9)
	require.Equal(t, []string{"west", "eu", "east"}, names(p.Candidates()))
}

func TestMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	m1 := NewMetrics(reg)
	m2 := NewMetrics(reg)
	m1.GiveUps.Inc()
	m2.GiveUps.Inc()
	h := &harness{t: t, reg: reg}
	require.Equal(t, 2.0, h.metric("sipbridge_failover_giveups_total"), "a second NewMetrics shares the series")
	m1.Pause.Observe(0.3)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	require.Contains(t, got, "sipbridge_failover_pause_seconds")
	unreg := NewMetrics(nil)
	require.NotNil(t, unreg, "unregistered metrics work")
	unreg.GiveUps.Inc()
	var pb dto.Metric
	require.NoError(t, unreg.GiveUps.Write(&pb))
	require.Equal(t, 1.0, pb.GetCounter().GetValue(), "unregistered metrics work")
	require.Equal(t, 2.0, h.metric("sipbridge_failover_giveups_total"), "unregistered metrics stay off the registry")
}

func TestClassifyFailedResponse(t *testing.T) {
	tests := []struct {
		err  *realtime.ErrorDetail
		want Trigger
	}{
		{&realtime.ErrorDetail{Type: "server_error", Message: "The server had an error"}, TriggerResponseFailed},
		{nil, TriggerResponseFailed},
		{&realtime.ErrorDetail{Type: "invalid_request_error", Code: "inference_rate_limit_exceeded"}, TriggerRateLimited},
		{&realtime.ErrorDetail{Type: "invalid_request_error", Code: "rate_limit_exceeded"}, TriggerRateLimited},
		{&realtime.ErrorDetail{Type: "insufficient_quota", Code: "insufficient_quota"}, TriggerAuth},
		{&realtime.ErrorDetail{Type: "invalid_request_error", Code: "invalid_api_key"}, TriggerAuth},
		{&realtime.ErrorDetail{Type: "authentication_error"}, TriggerAuth},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			r := &realtime.ResponseInfo{Status: realtime.StatusFailed}
			if tc.err != nil {
				r.StatusDetails = &realtime.StatusDetails{Type: "failed", Error: tc.err}
			}
			require.Equal(t, tc.want, classifyFailedResponse(r))
		})
	}
}

func TestClassifyErrorEvent(t *testing.T) {
	tests := []struct {
		d    realtime.ErrorDetail
		want Trigger
	}{
		{realtime.ErrorDetail{Type: "server_error"}, TriggerServerError},
		{realtime.ErrorDetail{Type: "invalid_request_error", Code: "session_expired"}, TriggerExpiry},
		{realtime.ErrorDetail{Type: "invalid_request_error", Code: "invalid_api_key"}, TriggerAuth},
		{realtime.ErrorDetail{Type: "invalid_request_error", Code: "conversation_already_has_active_response"}, 0},
		{realtime.ErrorDetail{Type: "invalid_request_error", Code: "response_cancel_not_active"}, 0},
		{realtime.ErrorDetail{Type: "invalid_request_error", Code: "input_audio_buffer_commit_empty"}, 0},
		{realtime.ErrorDetail{Type: "invalid_request_error", Message: "Audio content of 9250ms is already shorter than 57340ms"}, 0},
		{realtime.ErrorDetail{Type: "invalid_request_error", Code: "invalid_event"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.d.Type+"/"+tc.d.Code, func(t *testing.T) {
			require.Equal(t, tc.want, classifyErrorEvent(&tc.d))
		})
	}
	require.True(t, recoverableExpected(&realtime.ErrorDetail{Code: "conversation_already_has_active_response"}))
	require.True(t, recoverableExpected(&realtime.ErrorDetail{Message: "Only model output audio messages can be truncated"}))
	require.False(t, recoverableExpected(&realtime.ErrorDetail{Code: "invalid_event"}))
}

func TestClassifySessionEnd(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		pastExpiry bool
		want       Trigger
	}{
		{"close 1001", &realtime.CloseError{Code: 1001}, false, TriggerExpiry},
		{"close 1011", &realtime.CloseError{Code: 1011}, false, TriggerClosed},
		{"close 4000", &realtime.CloseError{Code: 4000}, false, TriggerClosed},
		{"dropped", &realtime.CloseError{Code: -1, Err: io.ErrUnexpectedEOF}, false, TriggerDropped},
		{"wrapped drop", fmt.Errorf("reader: %w", &realtime.CloseError{Code: -1}), false, TriggerDropped},
		{"session_expired", &realtime.ProtocolError{Detail: realtime.ErrorDetail{Code: "session_expired"}}, false, TriggerExpiry},
		{"beta disabled", &realtime.ProtocolError{Detail: realtime.ErrorDetail{Code: "beta_api_shape_disabled"}}, false, TriggerClosed},
		{"no reason", nil, false, TriggerDropped},
		{"anything past expires_at", &realtime.CloseError{Code: 1011}, true, TriggerExpiry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, classifySessionEnd(tc.err, tc.pastExpiry))
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestDialErrorKind(t *testing.T) {
	var _ net.Error = timeoutErr{}
	tests := []struct {
		err      error
		kind     string
		wantAuth bool
	}{
		{&realtime.DialError{StatusCode: 401}, "auth", true},
		{&realtime.DialError{StatusCode: 403}, "auth", true},
		{&realtime.DialError{StatusCode: 429}, "rate_limited", false},
		{&realtime.DialError{StatusCode: 503}, "http_5xx", false},
		{&realtime.DialError{StatusCode: 400}, "http_4xx", false},
		{&realtime.DialError{Err: syscall.ECONNREFUSED}, "refused", false},
		{&realtime.DialError{Err: context.DeadlineExceeded}, "timeout", false},
		{&realtime.DialError{Err: timeoutErr{}}, "timeout", false},
		{&realtime.DialError{Err: io.EOF}, "network", false},
		{errors.New("boom"), "other", false},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			kind, auth := dialErrorKind(tc.err)
			require.Equal(t, tc.kind, kind)
			require.Equal(t, tc.wantAuth, auth)
		})
	}
}

func TestTriggerLabels(t *testing.T) {
	seen := map[string]bool{}
	for tr := TriggerResponseFailed; tr <= TriggerConnect; tr++ {
		l := tr.String()
		require.NotEqual(t, "unknown", l)
		require.False(t, seen[l], "duplicate label %s", l)
		seen[l] = true
	}
	require.Equal(t, Outcome(0), TriggerExpiry.outcome(), "expiry is not a region fault")
	require.Equal(t, Outcome(0), TriggerRotation.outcome())
	require.Equal(t, OutcomeAuthError, TriggerAuth.outcome())
}

func TestRegionStatusJSON(t *testing.T) {
	b, err := json.Marshal(RegionStatus{Name: "east", State: BreakerHalfOpen, Samples: 3})
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"east","priority":0,"state":"half_open","samples":3,"failures":0,"failure_ratio":0,"degraded":false,"probe_in_flight":false,"auth_failed":false}`, string(b))
}

func TestReconfigureKeepsHealthByName(t *testing.T) {
	now := time.Unix(1000, 0)
	hc := HealthConfig{MinSamples: 2, FailureRatio: 0.5, CoolDown: time.Minute, Now: func() time.Time { return now }}
	p := NewPool([]Region{{Name: "east"}, {Name: "west"}, {Name: "north"}}, hc, nil, nil)
	for range 3 {
		p.Report("east", OutcomeConnectError)
	}
	require.Equal(t, []string{"west", "north"}, candidateNames(p.Candidates()))

	added, removed := p.Reconfigure([]Region{{Name: "south"}, {Name: "east", SessionLimit: time.Hour}, {Name: "west"}}, hc)
	require.Equal(t, []string{"south"}, added)
	require.Equal(t, []string{"north"}, removed)
	require.Equal(t, []string{"south", "west"}, candidateNames(p.Candidates()), "east's breaker stays open; north is gone")
	r, ok := p.Region("east")
	require.True(t, ok)
	require.Equal(t, time.Hour, r.SessionLimit, "the region's new settings are used")
	p.Report("north", OutcomeConnectError) // a session still open there: ignored
	_, ok = p.Region("north")
	require.False(t, ok)
}

func candidateNames(rs []Region) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// TestReconfigureCarriesCapacity: a region added by a reload can take
// sessions; a kept region's held sessions still count against its new cap;
// a removed region's lease releases harmlessly.
func TestReconfigureCarriesCapacity(t *testing.T) {
	hc := HealthConfig{}
	p := NewPool([]Region{{Name: "east", MaxSessions: 2}, {Name: "north"}}, hc, nil, nil)
	r, eastLease, err := p.Lease(SessionCall, []Region{{Name: "east"}})
	require.NoError(t, err)
	require.Equal(t, "east", r.Name)
	_, northLease, err := p.Lease(SessionCall, []Region{{Name: "north"}})
	require.NoError(t, err)

	p.Reconfigure([]Region{{Name: "east", MaxSessions: 1}, {Name: "south"}}, hc)
	_, _, err = p.Lease(SessionCall, []Region{{Name: "east"}})
	require.ErrorIs(t, err, ErrNoCapacity, "east still holds its session, now at its new cap of 1")
	r, l, err := p.Lease(SessionCall, []Region{{Name: "south"}})
	require.NoError(t, err, "a region added by the reload takes sessions")
	require.Equal(t, "south", r.Name)
	l.Release()
	northLease.Release() // a session in a removed region closes later
	eastLease.Release()
	_, l, err = p.Lease(SessionCall, []Region{{Name: "east"}})
	require.NoError(t, err)
	l.Release()
}
