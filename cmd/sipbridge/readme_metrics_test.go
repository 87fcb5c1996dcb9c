package main

// The "## Metrics" tables of configs/README.md against what the binary
// registers (exportedRecorder, deploy_test.go): one row per sipbridge
// metric, with its type and labels; the Go and process collectors as one
// wildcard row.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// metricShape is what the README table says of a metric besides its name
// and meaning. Kind is "" when the collector does not tell (the Go and
// process collectors, a hand-written Collector).
type metricShape struct {
	Kind   string // counter, gauge, histogram, summary
	Labels []string
}

var variableLabelsRe = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)

// shapeOf reads d's variable labels and the metric type c was built as.
func shapeOf(c prometheus.Collector, d *prometheus.Desc) metricShape {
	var s metricShape
	if m := variableLabelsRe.FindStringSubmatch(d.String()); m != nil && m[1] != "" {
		for _, l := range strings.Split(m[1], ",") {
			s.Labels = append(s.Labels, strings.TrimSpace(l))
		}
	}
	switch fmt.Sprintf("%T", c) {
	case "*prometheus.CounterVec", "*prometheus.counter":
		s.Kind = "counter"
	case "*prometheus.GaugeVec", "*prometheus.gauge":
		s.Kind = "gauge"
	case "*prometheus.HistogramVec", "*prometheus.histogram":
		s.Kind = "histogram"
	case "*prometheus.SummaryVec", "*prometheus.summary":
		s.Kind = "summary"
	case "*failover.Capacity": // sessions held, caps, throttled: all gauges
		s.Kind = "gauge"
	case "main.rtpLatenessCollector": // the shared media clock's histogram
		s.Kind = "histogram"
	case "*prometheus.valueFunc":
		// NewGaugeFunc and NewCounterFunc build the same type; only its
		// value type tells them apart (reading it calls no function of ours).
		if v := reflect.ValueOf(c).Elem().FieldByName("valType"); v.IsValid() && v.CanInt() {
			switch prometheus.ValueType(v.Int()) {
			case prometheus.CounterValue:
				s.Kind = "counter"
			case prometheus.GaugeValue:
				s.Kind = "gauge"
			}
		}
	}
	return s
}

// readmeMetricRow is one row of a metrics table.
type readmeMetricRow struct {
	Names   []string // `name` cells; a trailing * is a prefix
	Kind    string
	Labels  []string
	Meaning string
}

var backtickedRe = regexp.MustCompile("`([^`]+)`")

// readmeMetricRows are the table rows of the "## Metrics" section.
func readmeMetricRows(readme string) ([]readmeMetricRow, error) {
	_, sec, ok := strings.Cut(readme, "\n## Metrics\n")
	if !ok {
		return nil, fmt.Errorf("no \"## Metrics\" section")
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	var rows []readmeMetricRow
	for _, line := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "|"), "|"), "|")
		if len(cells) != 4 {
			return nil, fmt.Errorf("row %q: want 4 cells (metric, type, labels, meaning), have %d", line, len(cells))
		}
		var r readmeMetricRow
		for _, m := range backtickedRe.FindAllStringSubmatch(cells[0], -1) {
			r.Names = append(r.Names, m[1])
		}
		r.Kind = strings.TrimSpace(cells[1])
		for _, m := range backtickedRe.FindAllStringSubmatch(cells[2], -1) {
			r.Labels = append(r.Labels, m[1])
		}
		r.Meaning = strings.TrimSpace(cells[3])
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("the Metrics section has no table rows")
	}
	return rows, nil
}

// metricsTableProblems compares the README's rows with the exported
// metrics (names as registered, without histogram series suffixes).
func metricsTableProblems(exported map[string]metricShape, rows []readmeMetricRow) []string {
	var problems []string
	covered := map[string]bool{}
	var prefixes []string
	for _, r := range rows {
		if r.Meaning == "" {
			problems = append(problems, fmt.Sprintf("%v: no meaning given", r.Names))
		}
		for _, n := range r.Names {
			if p, ok := strings.CutSuffix(n, "*"); ok {
				prefixes = append(prefixes, p)
				if !slices.ContainsFunc(slices.Collect(maps.Keys(exported)), func(e string) bool { return strings.HasPrefix(e, p) }) {
					problems = append(problems, fmt.Sprintf("%s: the binary exports no metric starting %q", n, p))
				}
				continue
			}
			shape, ok := exported[n]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s is in the README table but the binary does not export it", n))
				continue
			}
			if covered[n] {
				problems = append(problems, fmt.Sprintf("%s has two rows", n))
			}
			covered[n] = true
			if shape.Kind != "" && r.Kind != shape.Kind {
				problems = append(problems, fmt.Sprintf("%s: the README says type %q, the binary registers a %s", n, r.Kind, shape.Kind))
			}
			if !slices.Equal(r.Labels, shape.Labels) {
				problems = append(problems, fmt.Sprintf("%s: the README gives labels %v, the binary %v", n, r.Labels, shape.Labels))
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(exported)) {
		if covered[n] || slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(n, p) }) {
			continue
		}
		problems = append(problems, fmt.Sprintf("%s is exported but has no row in configs/README.md's Metrics tables", n))
	}
	return problems
}

// TestREADMEMetricsTable: every metric the binary exports has a row in
// configs/README.md's Metrics tables with its type and labels, and every
// row names an exported metric.
func TestREADMEMetricsTable(t *testing.T) {
	rec := exportedRecorder(t)
	require.Contains(t, rec.shapes, "sipbridge_failover_replay_refused_total")
	require.Equal(t, metricShape{Kind: "counter", Labels: []string{"region", "action"}}, rec.shapes["sipbridge_failover_replay_refused_total"])
	require.Equal(t, metricShape{Kind: "gauge"}, rec.shapes["sipbridge_ready"], "a GaugeFunc reads as a gauge")
	require.Equal(t, metricShape{Kind: "histogram", Labels: []string{"region"}}, rec.shapes["sipbridge_realtime_connect_seconds"])
	for n, s := range rec.shapes {
		if strings.HasPrefix(n, "sipbridge_") {
			require.NotEmpty(t, s.Kind, "%s: the test cannot tell its type; teach shapeOf its collector", n)
		}
	}
	rows, err := readmeMetricRows(string(readRepoFile(t, "configs/README.md")))
	require.NoError(t, err)
	require.Empty(t, metricsTableProblems(rec.shapes, rows))
}

// TestMetricsTableProblems: the check notices a missing row, a row for a
// metric that does not exist, wrong labels and a wrong type.
func TestMetricsTableProblems(t *testing.T) {
	exported := map[string]metricShape{
		"sipbridge_a_total": {Kind: "counter", Labels: []string{"region"}},
		"sipbridge_b":       {Kind: "gauge"},
		"go_goroutines":     {},
	}
	table := func(rows ...string) []readmeMetricRow {
		r, err := readmeMetricRows("x\n## Metrics\n\n| Metric | Type | Labels | Meaning |\n|---|---|---|---|\n" +
			strings.Join(rows, "\n") + "\n\n## Next\n| `sipbridge_elsewhere` | gauge | | not in the section |\n")
		require.NoError(t, err)
		return r
	}
	a := "| `sipbridge_a_total` | counter | `region` | A. |"
	b := "| `sipbridge_b` | gauge | | B. |"
	goRow := "| `go_*` | | | Go. |"
	require.Empty(t, metricsTableProblems(exported, table(a, b, goRow)))
	for _, tc := range []struct {
		rows []string
		want string
	}{
		{[]string{a, goRow}, "sipbridge_b is exported but has no row"},
		{[]string{a, b}, "go_goroutines is exported but has no row"},
		{[]string{a, b, goRow, "| `sipbridge_gone_total` | counter | | Gone. |"}, "sipbridge_gone_total is in the README table but the binary does not export it"},
		{[]string{"| `sipbridge_a_total` | counter | `region`, `kind` | A. |", b, goRow}, "sipbridge_a_total: the README gives labels [region kind]"},
		{[]string{"| `sipbridge_a_total` | gauge | `region` | A. |", b, goRow}, `sipbridge_a_total: the README says type "gauge"`},
		{[]string{a, b, b, goRow}, "sipbridge_b has two rows"},
		{[]string{a, "| `sipbridge_b` | gauge | | |", goRow}, "no meaning given"},
		{[]string{a, b, goRow, "| `process_*` | | | Process. |"}, `the binary exports no metric starting "process_"`},
	} {
		problems := metricsTableProblems(exported, table(tc.rows...))
		require.NotEmpty(t, problems, "%q", tc.rows)
		require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }),
			"want a problem containing %q, have %q", tc.want, problems)
	}
	_, err := readmeMetricRows("# no metrics here\n")
	require.Error(t, err)
}

// TestServeExportsWhatTheRecorderLists: the names exportedRecorder lists
// are a copy of serve's registrations, so check the copy against serve
// itself: every family a running serve puts on /metrics is listed there,
// with the same type (series appear once they have a value, so this cannot
// prove the converse; TestREADMEMetricsTable covers the list).
func TestServeExportsWhatTheRecorderLists(t *testing.T) {
	free := func(network string) string {
		t.Helper()
		if network == "udp" {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			require.NoError(t, err)
			defer c.Close()
			return c.LocalAddr().String()
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		return l.Addr().String()
	}
	admin, simAddr := free("tcp"), free("tcp")
	yml := fmt.Sprintf("sip:\n  listen: %s\n  transports: [udp]\nrtp:\n  port_min: 41000\n  port_max: 41099\n"+
		"admin:\n  listen: %s\nlog:\n  level: error\nregions:\n  - name: sim\n    url: ws://%s/openai/v1/realtime?model=gpt-realtime\n    simulator:\n      enabled: true\n",
		free("udp"), admin, simAddr)
	path := filepath.Join(t.TempDir(), "sipbridge.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yml), 0o600))
	cfg, err := loadConfig(path)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, shutdown{drain: make(chan struct{}), now: now, reload: make(chan struct{}), cancel: cancel}, path, cfg, io.Discard)
	}()
	defer func() {
		close(now)
		require.NoError(t, <-done)
	}()

	var body string
	require.Eventually(t, func() bool {
		res, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		body = string(b)
		return err == nil && res.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "serve's /metrics")

	shapes := exportedRecorder(t).shapes
	families := 0
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		families++
		name, kind := f[2], f[3]
		s, ok := shapes[name]
		require.True(t, ok, "serve exports %s, which exportedRecorder (deploy_test.go) does not register: add it there and to configs/README.md", name)
		if s.Kind != "" {
			require.Equal(t, s.Kind, kind, "%s", name)
		}
	}
	require.Greater(t, families, 20, "a scrape of serve:\n%s", body)
	require.Contains(t, body, "sipbridge_ready 1")
}
