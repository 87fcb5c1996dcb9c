package integration

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// binPath is the sipbridge binary under test, built once in TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("integration: end-to-end tests skipped in -short mode (make unit); make test runs them")
		return 0
	}
	dir, err := os.MkdirTemp("", "sipbridge-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if p := os.Getenv("SIPBRIDGE_BIN"); p != "" {
		binPath = p
	} else {
		binPath = filepath.Join(dir, "sipbridge")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "../cmd/sipbridge")
		cmd := exec.Command("go", args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building sipbridge:", err)
			return 1
		}
	}
	return m.Run()
}

// region is a simulated realtime region a test controls directly.
type region struct {
	Name   string
	Sim    *sim.Server
	URL    string // full realtime URL for the config
	KeyEnv string
	Key    string
	// Extra region keys for the bridge config, e.g. "warm_standby: true".
	Extra []string
}

// startRegion runs a simulated region on an ephemeral loopback port.
func startRegion(t testing.TB, name string, cfg sim.Config) *region {
	t.Helper()
	cfg.Region = name
	if cfg.APIKey == "" {
		cfg.APIKey = "key-" + name
	}
	s := sim.New(cfg)
	base, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	env := "SIPBRIDGE_TEST_KEY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	return &region{Name: name, Sim: s, URL: base + "/openai/v1/realtime?model=gpt-realtime", KeyEnv: env, Key: cfg.APIKey}
}

// bridge is a running sipbridge process.
type bridge struct {
	t       testing.TB
	cmd     *exec.Cmd
	SIPAddr string // host:port
	Admin   string
	logs    *logBuffer
	exited  chan struct{}
	exitErr error
}

// freePort returns a port free for both UDP and TCP on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// rtpRange hands out disjoint RTP port ranges so parallel bridges don't collide.
var (
	rtpMu   sync.Mutex
	rtpNext = 30000
)

func rtpRange() (int, int) {
	rtpMu.Lock()
	defer rtpMu.Unlock()
	lo := rtpNext
	rtpNext += 400
	if rtpNext > 60000 {
		rtpNext = 30000
	}
	return lo, lo + 398
}

// startBridge writes the config (regions appended from rs) and starts the binary.
// extra is YAML placed before the regions list (sip/rtp/assistant/failover…);
// a leading "sip:" block is merged into the sip section the harness writes.
func startBridge(t testing.TB, extra string, rs ...*region) *bridge {
	t.Helper()
	return startBridgeEnv(t, extra, nil, rs...)
}

// startBridgeEnv is startBridge with extra environment (NAME=value), e.g.
// a trunk password.
func startBridgeEnv(t testing.TB, extra string, extraEnv []string, rs ...*region) *bridge {
	t.Helper()
	sipPort := freePort(t)
	adminPort := freePort(t)
	lo, hi := rtpRange()
	var b strings.Builder
	sipExtra, extra := splitSIPSection(extra)
	fmt.Fprintf(&b, "sip:\n  listen: 127.0.0.1:%d\n%s", sipPort, sipExtra)
	switch {
	case strings.HasPrefix(extra, "rtp:\n") && !strings.Contains(extra, "port_min"):
		// A leading rtp: block without a port range gets this test's range.
		extra = fmt.Sprintf("rtp:\n  port_min: %d\n  port_max: %d\n", lo, hi) + strings.TrimPrefix(extra, "rtp:\n")
	case !strings.Contains(extra, "rtp:"):
		fmt.Fprintf(&b, "rtp:\n  port_min: %d\n  port_max: %d\n", lo, hi)
	}
	fmt.Fprintf(&b, "admin:\n  listen: 127.0.0.1:%d\n", adminPort)
	if !strings.Contains(extra, "log:") {
		b.WriteString("log:\n  level: debug\n")
	}
	b.WriteString(extra)
	if !strings.HasSuffix(extra, "\n") && extra != "" {
		b.WriteString("\n")
	}
	b.WriteString("regions:\n")
	env := append(os.Environ(), extraEnv...)
	for _, r := range rs {
		fmt.Fprintf(&b, "  - name: %s\n    url: %s\n    api_key_env: %s\n", r.Name, r.URL, r.KeyEnv)
		for _, e := range r.Extra {
			fmt.Fprintf(&b, "    %s\n", e)
		}
		env = append(env, r.KeyEnv+"="+r.Key)
	}
	path := filepath.Join(t.TempDir(), "sipbridge.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	return startBridgeFile(t, path, env, fmt.Sprintf("127.0.0.1:%d", sipPort), fmt.Sprintf("127.0.0.1:%d", adminPort))
}

// splitSIPSection takes a leading "sip:" block (its indented lines) off
// extra.
func splitSIPSection(extra string) (sipLines, rest string) {
	body, ok := strings.CutPrefix(extra, "sip:\n")
	if !ok {
		return "", extra
	}
	lines := strings.SplitAfter(body, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], " ") {
		i++
	}
	return strings.Join(lines[:i], ""), strings.Join(lines[i:], "")
}

func startBridgeFile(t testing.TB, path string, env []string, sipAddr, admin string) *bridge {
	t.Helper()
	args := []string{}
	if path != "" {
		args = append(args, "-config", path)
	}
	cmd := exec.Command(binPath, args...)
	cmd.Env = env
	logs := &logBuffer{}
	cmd.Stdout = logs
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	br := &bridge{t: t, cmd: cmd, SIPAddr: sipAddr, Admin: admin, logs: logs, exited: make(chan struct{})}
	go func() {
		br.exitErr = cmd.Wait()
		close(br.exited)
	}()
	t.Cleanup(func() {
		br.stop(syscall.SIGINT, 10*time.Second)
		if t.Failed() {
			t.Logf("sipbridge log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), "sipbridge ready") {
		select {
		case <-br.exited:
			t.Fatalf("sipbridge exited early: %v\n%s", br.exitErr, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipbridge not ready:\n%s", logs.String())
		}
	}
	return br
}

// stop signals the process and waits for it to exit.
func (b *bridge) stop(sig syscall.Signal, wait time.Duration) error {
	select {
	case <-b.exited:
		return b.exitErr
	default:
	}
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.exited:
		return b.exitErr
	case <-time.After(wait):
		_ = b.cmd.Process.Kill()
		<-b.exited
		return fmt.Errorf("sipbridge did not exit within %v after %v", wait, sig)
	}
}

// Logs returns everything the bridge has logged so far.
func (b *bridge) Logs() string { return b.logs.String() }

// LogLines returns log lines containing all of the substrings.
func (b *bridge) LogLines(subs ...string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(b.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		ok := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// WaitLog waits for a log line containing all substrings.
func (b *bridge) WaitLog(timeout time.Duration, subs ...string) string {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if l := b.LogLines(subs...); len(l) > 0 {
			return l[0]
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no log line with %q within %v", subs, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Target is the Request-URI to dial the bridge.
func (b *bridge) Target() string { return "sip:bot@" + b.SIPAddr }

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newPhone starts a test phone for one test.
func newPhone(t testing.TB, transport string) *phone.Phone {
	t.Helper()
	p, err := phone.New(context.Background(), phone.Config{Transport: transport})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// requirePeer finds a SIP peer binary; when SIPBRIDGE_REQUIRE_PEERS=1 (make
// test, CI) a missing peer fails the test instead of skipping it.
func requirePeer(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SIPBRIDGE_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s not installed (make deps installs it)", name)
		}
		t.Skipf("%s not installed; run make deps", name)
	}
	return p
}

// dial places a call to the bridge from a new phone and returns it with a
// context bounded by timeout (cancelled at test end).
func dial(t testing.TB, br *bridge, timeout time.Duration, opt phone.CallOptions) (*phone.Call, context.Context) {
	t.Helper()
	ph := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	if opt.Target == "" {
		opt.Target = br.Target()
	}
	call, err := ph.Call(ctx, opt)
	require.NoError(t, err)
	return call, ctx
}

// waitAnswer waits until the caller hears, after position fromMs, at least
// minMs of an answer in one of the voices; it returns where the answer began
// and whose voice it was.
func waitAnswer(t testing.TB, call *phone.Call, fromMs, minMs int, timeout time.Duration, voices ...float64) (int, float64) {
	t.Helper()
	var at int
	var hz float64
	waitFor(t, timeout, fmt.Sprintf("an answer after %d ms in %v Hz", fromMs, voices), func() bool {
		heard := call.Heard()
		for _, v := range voices {
			for _, sp := range phone.ToneSpans(heard, v) {
				if sp.StartMs >= fromMs && sp.EndMs-sp.StartMs >= minMs {
					at, hz = sp.StartMs, v
					return true
				}
			}
		}
		return false
	})
	return at, hz
}
