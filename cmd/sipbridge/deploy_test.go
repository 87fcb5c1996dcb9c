package main

// Tests of the deployment files under deploy/, the Dockerfile and
// .dockerignore: what an operator applies must agree with what the binary
// does (probe paths, ports, drain timeout, metric names).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/failover/webhook"
	"github.com/sipbridge/sipbridge/sip"
	"github.com/sipbridge/sipbridge/sip/records"
)

const repoRoot = "../.."

// requireTool finds an external tool; make test (SIPBRIDGE_REQUIRE_PEERS=1)
// fails without it, a plain go test skips.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SIPBRIDGE_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s not installed (make deps installs it)", name)
		}
		t.Skipf("%s not installed; make deps installs it", name)
	}
	return p
}

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	require.NoError(t, err)
	return b
}

// unitKeys reads a systemd unit's Key=Value lines (last one wins, as for
// most keys).
func unitKeys(unit string) map[string][]string {
	keys := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			keys[k] = append(keys[k], v)
		}
	}
	return keys
}

func TestSystemdUnit(t *testing.T) {
	unit := string(readRepoFile(t, "deploy/systemd/sipbridge.service"))
	keys := unitKeys(unit)
	last := func(k string) string {
		require.NotEmpty(t, keys[k], "%s is set", k)
		return keys[k][len(keys[k])-1]
	}
	def, err := configs.LoadDefault()
	require.NoError(t, err)
	stop, err := strconv.Atoi(last("TimeoutStopSec"))
	require.NoError(t, err, "TimeoutStopSec in plain seconds")
	require.Greater(t, time.Duration(stop)*time.Second, def.DrainTimeout.D(), "systemd must not SIGKILL a drain")
	require.Equal(t, "SIGTERM", last("KillSignal"), "SIGTERM drains")
	require.Contains(t, last("ExecReload"), "-HUP $MAINPID")
	require.Contains(t, last("ExecStart"), "/usr/local/bin/sipbridge -config ")
	require.Contains(t, last("ExecStartPre"), "/usr/local/bin/sipbridge check -config ")
	require.Equal(t, "/etc/sipbridge", last("WorkingDirectory"), "relative prompt paths resolve here")
	n, err := strconv.Atoi(last("LimitNOFILE"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 65536)
	for _, k := range []string{"NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ProtectHome", "RestrictAddressFamilies", "SystemCallFilter", "CapabilityBoundingSet"} {
		require.NotEmpty(t, keys[k], "hardening: %s", k)
	}

	// systemd's own parser: unknown keys, bad values and missing
	// executables are reported (on stderr, often with exit status 0: any
	// output fails). ExecStart must point at an executable file: this test's.
	analyze := requireTool(t, "systemd-analyze")
	self, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "sipbridge.service")
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/sipbridge", self)), 0o644))
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify reports problems")
}

// kubeObjects decodes the manifests strictly into the k8s.io/api types: an
// unknown or misspelled field is an error, as with kubectl --validate=strict.
type kubeObjects struct {
	deploy appsv1.Deployment
	pdb    policyv1.PodDisruptionBudget
	cm     corev1.ConfigMap
}

func loadKube(t *testing.T) kubeObjects {
	t.Helper()
	var k kubeObjects
	for file, into := range map[string]any{
		"deployment.yaml": &k.deploy,
		"pdb.yaml":        &k.pdb,
		"configmap.yaml":  &k.cm,
	} {
		require.NoError(t, yaml.UnmarshalStrict(readRepoFile(t, "deploy/kubernetes/"+file), into), file)
	}
	return k
}

func TestKubernetesManifests(t *testing.T) {
	k := loadKube(t)
	d, pdb, cm := k.deploy, k.pdb, k.cm
	require.Equal(t, "apps/v1", d.APIVersion)
	require.Equal(t, "Deployment", d.Kind)
	require.Equal(t, "policy/v1", pdb.APIVersion)
	require.Equal(t, "PodDisruptionBudget", pdb.Kind)
	require.Equal(t, "v1", cm.APIVersion)
	require.Equal(t, "ConfigMap", cm.Kind)

	// Selectors: the Deployment's pods and the PDB's.
	require.Equal(t, d.Spec.Selector.MatchLabels, pdb.Spec.Selector.MatchLabels)
	for k, v := range d.Spec.Selector.MatchLabels {
		require.Equal(t, v, d.Spec.Template.Labels[k], "the template carries the selector's labels")
	}
	require.NotNil(t, pdb.Spec.MaxUnavailable)
	require.Equal(t, 1, pdb.Spec.MaxUnavailable.IntValue())

	pod := d.Spec.Template.Spec
	require.True(t, pod.HostNetwork, "RTP on the host network (README.md)")
	require.Equal(t, corev1.DNSClusterFirstWithHostNet, pod.DNSPolicy)
	require.Zero(t, d.Spec.Strategy.RollingUpdate.MaxSurge.IntValue(), "host ports: no surge pod")

	// The config the pod runs: the ConfigMap's template with a node IP.
	tmpl := cm.Data["sipbridge.yaml"]
	require.Contains(t, tmpl, "__NODE_IP__")
	cfgPath := filepath.Join(t.TempDir(), "sipbridge.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(strings.ReplaceAll(tmpl, "__NODE_IP__", "10.1.2.3")), 0o600))
	cfg, err := configs.Load(cfgPath)
	require.NoError(t, err)
	t.Run("config passes check", func(t *testing.T) {
		t.Chdir(repoRoot) // the image's working directory holds prompts/ as the repository root does
		var out, errOut bytes.Buffer
		require.Equal(t, 0, run([]string{"check", "-config", cfgPath}, &out, &errOut), "%s%s", out.String(), errOut.String())
	})

	require.NotNil(t, pod.TerminationGracePeriodSeconds)
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	require.Greater(t, grace, cfg.DrainTimeout.D(), "the kubelet must not SIGKILL a drain")

	// The render step and where the container reads the result.
	require.Len(t, pod.InitContainers, 1)
	require.Contains(t, strings.Join(pod.InitContainers[0].Command, " "), "__NODE_IP__")
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	require.NotNil(t, volumes["template"].ConfigMap)
	require.Equal(t, cm.Name, volumes["template"].ConfigMap.Name)

	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	args := strings.Join(c.Args, " ")
	var mounted bool
	for _, m := range c.VolumeMounts {
		if m.Name == "config" && strings.Contains(args, m.MountPath+"/sipbridge.yaml") {
			mounted = true
		}
		require.NotEqual(t, "/etc/sipbridge", m.MountPath, "a mount there would hide the image's prompts")
	}
	require.True(t, mounted, "-config names the rendered file: %s", args)

	// Ports and probes agree with the config.
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	_, adminPort, err := net.SplitHostPort(cfg.Admin.Listen)
	require.NoError(t, err)
	require.Equal(t, adminPort, strconv.Itoa(int(ports["admin"].ContainerPort)))
	_, sipPort, err := net.SplitHostPort(cfg.SIP.Listen[0])
	require.NoError(t, err)
	require.Equal(t, sipPort, strconv.Itoa(int(ports["sip-udp"].ContainerPort)))
	require.Equal(t, corev1.ProtocolUDP, ports["sip-udp"].Protocol)
	for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: pathLive, c.ReadinessProbe: pathReady, c.StartupProbe: pathLive} {
		require.NotNil(t, probe)
		require.NotNil(t, probe.HTTPGet)
		require.Equal(t, path, probe.HTTPGet.Path)
		require.Equal(t, "admin", probe.HTTPGet.Port.String())
	}
	var healthAddr bool
	for _, e := range c.Env {
		if e.Name == healthAddrEnv {
			healthAddr = strings.HasSuffix(e.Value, ":"+adminPort)
		}
	}
	require.True(t, healthAddr, "%s points `sipbridge health` at the admin port", healthAddrEnv)

	// kustomization.yaml lists exactly the manifests.
	var kz struct {
		Resources []string `json:"resources"`
	}
	require.NoError(t, yaml.Unmarshal(readRepoFile(t, "deploy/kubernetes/kustomization.yaml"), &kz))
	require.ElementsMatch(t, []string{"configmap.yaml", "deployment.yaml", "pdb.yaml"}, kz.Resources)
}

// A manifest with a misspelled field fails the strict decoding above.
func TestKubernetesStrictDecodingCatchesTypos(t *testing.T) {
	b := readRepoFile(t, "deploy/kubernetes/deployment.yaml")
	bad := bytes.Replace(b, []byte("livenessProbe:"), []byte("livenesProbe:"), 1)
	require.NotEqual(t, b, bad)
	var d appsv1.Deployment
	require.ErrorContains(t, yaml.UnmarshalStrict(bad, &d), "livenesProbe")
}

// exposed parses the Dockerfile's EXPOSE lines into "proto" → port ranges.
func exposed(t *testing.T, dockerfile string) map[string][][2]int {
	t.Helper()
	out := map[string][][2]int{}
	for _, line := range strings.Split(dockerfile, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "EXPOSE" {
			continue
		}
		for _, spec := range f[1:] {
			ports, proto, _ := strings.Cut(spec, "/")
			if proto == "" {
				proto = "tcp"
			}
			lo, hi, isRange := strings.Cut(ports, "-")
			if !isRange {
				hi = lo
			}
			a, err := strconv.Atoi(lo)
			require.NoError(t, err, spec)
			b, err := strconv.Atoi(hi)
			require.NoError(t, err, spec)
			out[proto] = append(out[proto], [2]int{a, b})
		}
	}
	return out
}

func TestDockerfileMatchesConfigs(t *testing.T) {
	df := string(readRepoFile(t, "Dockerfile"))
	exp := exposed(t, df)
	covers := func(proto string, lo, hi int) bool {
		for _, r := range exp[proto] {
			if lo >= r[0] && hi <= r[1] {
				return true
			}
		}
		return false
	}
	files, err := filepath.Glob(filepath.Join(repoRoot, "configs", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		cfg, err := configs.Load(f)
		require.NoError(t, err, f)
		name := filepath.Base(f)
		for _, l := range cfg.SIP.Listen {
			_, p, err := net.SplitHostPort(l)
			require.NoError(t, err)
			port, _ := strconv.Atoi(p)
			for _, tr := range cfg.SIP.Transports {
				require.True(t, covers(tr, port, port), "%s: sip.listen %s/%s is not EXPOSEd", name, l, tr)
			}
		}
		require.True(t, covers("udp", cfg.RTP.PortMin, cfg.RTP.PortMax), "%s: rtp %d-%d is not EXPOSEd", name, cfg.RTP.PortMin, cfg.RTP.PortMax)
		if cfg.Admin.Listen != "off" {
			_, p, err := net.SplitHostPort(cfg.Admin.Listen)
			require.NoError(t, err)
			port, _ := strconv.Atoi(p)
			require.True(t, covers("tcp", port, port), "%s: admin.listen %s is not EXPOSEd", name, cfg.Admin.Listen)
		}
	}
	require.Contains(t, df, `HEALTHCHECK `)
	require.Contains(t, df, `CMD ["/usr/local/bin/sipbridge", "health"]`)
	require.Contains(t, df, "COPY prompts/*.wav /etc/sipbridge/prompts/")
	require.Contains(t, df, "WORKDIR /etc/sipbridge")
}

func TestDockerignore(t *testing.T) {
	lines := strings.Split(string(readRepoFile(t, ".dockerignore")), "\n")
	for _, want := range []string{".git", "bin/", "integration/", "deploy/"} {
		require.Contains(t, lines, want)
	}
	// What the image build needs must not be excluded.
	for _, line := range lines {
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, needed := range []string{"prompts", "configs", "cmd", "go.mod", "go.sum", "*.wav", "*.yaml"} {
			require.NotContains(t, line, needed, ".dockerignore excludes %s", needed)
		}
	}
}

func TestPrometheusRules(t *testing.T) {
	promtool := requireTool(t, "promtool")
	dir := filepath.Join(repoRoot, "deploy", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "sipbridge-rules.yaml"},
		{"test", "rules", "sipbridge-rules.test.yaml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %v:\n%s", args, out)
	}
}

// descRecorder is a Registerer that keeps the names of what is registered:
// a CounterVec with no series yet is absent from a scrape but present here.
// shapes holds each name's type and variable labels (readme_metrics_test.go).
type descRecorder struct {
	names  map[string]bool
	shapes map[string]metricShape
}

var fqNameRe = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := fqNameRe.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
			if r.shapes != nil {
				r.shapes[m[1]] = shapeOf(c, d)
			}
		}
	}
	return nil
}

func (r *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRecorder) Unregister(prometheus.Collector) bool { return false }

// exportedMetrics are the metric names serve registers (serve.go builds the
// same collectors on its registry), with the series suffixes of histograms
// and summaries.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	rec := exportedRecorder(t)
	out := map[string]bool{}
	for n := range rec.names {
		out[n] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			out[n+s] = true
		}
	}
	return out
}

// exportedRecorder registers what serve registers on a descRecorder.
func exportedRecorder(t *testing.T) *descRecorder {
	t.Helper()
	rec := &descRecorder{names: map[string]bool{}, shapes: map[string]metricShape{}}
	rec.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	failover.NewMetrics(rec)
	sip.NewMetrics(rec)
	webhook.NewMetrics(rec)
	registerAdminMetrics(rec, &app{cfg: &configs.Config{}})
	newReloadMetrics(rec)
	// What serve registers beside the packages' metric sets: the pool's
	// capacity collector, and the records writer's series when records.path
	// is set.
	rec.MustRegister(failover.NewPool([]failover.Region{{Name: "r"}}, failover.HealthConfig{}, nil, nil).CapacityCollector())
	w, err := records.Open(records.Config{Path: filepath.Join(t.TempDir(), "records.jsonl")}, rec, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, w.Run(ctx))
	return rec
}

var metricRefRe = regexp.MustCompile(`\b(?:sipbridge|go|process)_[a-zA-Z0-9_]+`)

// TestDashboardAndRulesUseExportedMetrics: every metric a panel, the
// dashboard's variables or an alert rule names is one the binary exports,
// and each covers what an operator needs.
func TestDashboardAndRulesUseExportedMetrics(t *testing.T) {
	known := exportedMetrics(t)
	require.True(t, known["sipbridge_failover_swaps_total"])
	require.True(t, known["sipbridge_failover_pause_seconds_bucket"])
	require.True(t, known["sipbridge_max_calls"])

	check := func(where, expr string) []string {
		refs := metricRefRe.FindAllString(expr, -1)
		require.NotEmpty(t, refs, "%s: %q names no sipbridge metric", where, expr)
		for _, r := range refs {
			require.True(t, known[r], "%s: %q is not a metric sipbridge exports (in %q)", where, r, expr)
		}
		return refs
	}

	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(readRepoFile(t, "deploy/grafana/sipbridge-dashboard.json"), &dash))
	var dashRefs []string
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			dashRefs = append(dashRefs, check("dashboard panel "+p.Title, tg.Expr)...)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			check("dashboard variable "+v.Name, v.Definition)
		}
	}
	for _, want := range []string{
		"sipbridge_calls_active", "sipbridge_failover_swaps_total", "sipbridge_failover_breaker_state",
		"sipbridge_failover_pause_seconds_bucket", "sipbridge_sip_answer_seconds_bucket",
		"sipbridge_failover_giveups_total", "sipbridge_sip_registration_up", "sipbridge_realtime_responses_total",
	} {
		require.Contains(t, dashRefs, want, "the dashboard shows %s", want)
	}

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	// Not strict: promtool check rules (TestPrometheusRules) validates the rest.
	require.NoError(t, yaml.Unmarshal(readRepoFile(t, "deploy/prometheus/sipbridge-rules.yaml"), &rules))
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			check("alert "+r.Alert, r.Expr)
			alerts = append(alerts, r.Alert)
		}
	}
	for _, want := range []string{
		"SipbridgeRegionFailureRate", "SipbridgeBreakerOpen", "SipbridgeGiveUps", "SipbridgeSwapPauseHigh",
		"SipbridgeNoUsableRegion", "SipbridgeNearCapacity", "SipbridgeRegistrationDown",
	} {
		require.True(t, slices.Contains(alerts, want), "alert %s is defined", want)
	}
	// And the rules' tests exercise every alert.
	tests := string(readRepoFile(t, "deploy/prometheus/sipbridge-rules.test.yaml"))
	for _, a := range alerts {
		require.Contains(t, tests, fmt.Sprintf("alertname: %s\n", a), "alert %s has a promtool test", a)
	}
}
