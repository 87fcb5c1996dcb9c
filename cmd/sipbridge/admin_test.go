package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/failover"
)

func TestReadiness(t *testing.T) {
	closed := failover.RegionStatus{Name: "a", State: failover.BreakerClosed}
	half := failover.RegionStatus{Name: "b", State: failover.BreakerHalfOpen}
	open := failover.RegionStatus{Name: "c", State: failover.BreakerOpen}
	cases := []struct {
		name string
		r    readiness
		want string // "" = ready
	}{
		{"idle", readiness{regions: []failover.RegionStatus{closed}}, ""},
		{"unlimited calls", readiness{active: 1000, regions: []failover.RegionStatus{closed}}, ""},
		{"below max_calls", readiness{active: 9, maxCalls: 10, regions: []failover.RegionStatus{closed}}, ""},
		{"at max_calls", readiness{active: 10, maxCalls: 10, regions: []failover.RegionStatus{closed}}, "at max_calls (10 of 10 active)"},
		{"draining", readiness{draining: true, regions: []failover.RegionStatus{closed}}, "draining"},
		{"draining wins over full", readiness{draining: true, active: 10, maxCalls: 10}, "draining"},
		{"one open one closed", readiness{regions: []failover.RegionStatus{open, closed}}, ""},
		{"half-open still usable", readiness{regions: []failover.RegionStatus{open, half}}, ""},
		{"every breaker open", readiness{regions: []failover.RegionStatus{open, open}}, "no usable region (every breaker is open)"},
		{"every region full", readiness{regions: []failover.RegionStatus{closed}, full: true}, "no region has a free session (every region at max_sessions or throttled)"},
		{"at max_calls wins over full", readiness{active: 10, maxCalls: 10, regions: []failover.RegionStatus{closed}, full: true}, "at max_calls (10 of 10 active)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.r.notReady())
		})
	}
}

func TestHealthCommand(t *testing.T) {
	var ready bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == pathLive:
			_, _ = w.Write([]byte("ok\n"))
		case r.URL.Path == pathReady && ready:
			_, _ = w.Write([]byte("ok\n"))
		case r.URL.Path == pathReady:
			http.Error(w, "draining", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	// A port nothing listens on: the closed server's.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()
	adminOff := filepath.Join(t.TempDir(), "off.yaml")
	require.NoError(t, os.WriteFile(adminOff, []byte("admin:\n  listen: \"off\"\nregions:\n  - name: a\n    url: ws://127.0.0.1:1/v1/realtime\n"), 0o600))

	cases := []struct {
		name        string
		args        []string
		env         string
		ready       bool
		code        int
		out, errOut string
	}{
		{"live", []string{"health", "-addr", addr}, "", false, healthOK, "/livez: ok", ""},
		{"ready", []string{"health", "-ready", "-addr", addr}, "", true, healthOK, "/readyz: ok", ""},
		{"not ready", []string{"health", "-ready", "-addr", addr}, "", false, healthUnhealthy, "", "503 draining"},
		{"address from env", []string{"health", "-ready"}, addr, true, healthOK, "/readyz: ok", ""},
		{"nothing listening", []string{"health", "-addr", deadAddr}, "", true, healthUnhealthy, "", "connection refused"},
		{"admin off", []string{"health", "-config", adminOff}, "", true, healthUnhealthy, "", "admin.listen is off"},
		{"bad config", []string{"health", "-config", filepath.Join(t.TempDir(), "none.yaml")}, "", true, healthUnhealthy, "", "no such file"},
		{"bad flag", []string{"health", "-nope"}, "", true, healthUsage, "", "flag provided but not defined"},
		{"bad address", []string{"health", "-addr", "nocolon"}, "", true, healthUsage, "", "admin address"},
		{"extra argument", []string{"health", "x"}, "", true, healthUsage, "", "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ready = tc.ready
			t.Setenv(healthAddrEnv, tc.env)
			var out, errOut bytes.Buffer
			code := run(tc.args, &out, &errOut)
			require.Equal(t, tc.code, code, "stdout %q stderr %q", out.String(), errOut.String())
			require.Contains(t, out.String(), tc.out)
			require.Contains(t, errOut.String(), tc.errOut)
		})
	}
}

func TestProbeURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9090": "http://127.0.0.1:9090/livez",
		"0.0.0.0:9090":   "http://127.0.0.1:9090/livez",
		":9090":          "http://127.0.0.1:9090/livez",
		"[::]:9090":      "http://[::1]:9090/livez",
		"10.0.0.5:8080":  "http://10.0.0.5:8080/livez",
	} {
		got, err := probeURL(in, pathLive)
		require.NoError(t, err)
		require.Equal(t, want, got, in)
	}
}

// TestAdminPprofOffByDefault: /debug/pprof/ is served only with
// admin.pprof: true; the RTP lateness histogram is always on /metrics.
func TestAdminPprofOffByDefault(t *testing.T) {
	for _, on := range []bool{false, true} {
		a := &app{cfg: &configs.Config{}}
		a.cfg.Admin.Pprof = on
		reg := prometheus.NewRegistry()
		reg.MustRegister(rtpLatenessCollector{})
		srv := httptest.NewServer(a.adminHandler(reg))
		resp, err := http.Get(srv.URL + "/debug/pprof/")
		require.NoError(t, err)
		_ = resp.Body.Close()
		if on {
			require.Equal(t, http.StatusOK, resp.StatusCode)
		} else {
			require.Equal(t, http.StatusNotFound, resp.StatusCode)
		}
		resp, err = http.Get(srv.URL + "/metrics")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Contains(t, string(body), `sipbridge_rtp_send_lateness_seconds_bucket{le="0.002"}`)
		srv.Close()
	}
}
