package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckLoopback(t *testing.T) {
	for host, ok := range map[string]bool{
		"127.0.0.1": true, "127.0.0.2": true, "::1": true,
		"10.0.0.1": false, "192.168.1.20": false, "0.0.0.0": false, "8.8.8.8": false,
		"sip.example.com": false, "": false,
	} {
		err := checkLoopback(host)
		if ok {
			require.NoError(t, err, host)
		} else {
			require.Error(t, err, host)
		}
	}
}

func TestLatenessSummary(t *testing.T) {
	const b = "sipbridge_rtp_send_lateness_seconds_bucket"
	m0 := map[string]float64{b + `{le="0.001"}`: 10, b + `{le="0.002"}`: 10, b + `{le="+Inf"}`: 10}
	m1 := map[string]float64{b + `{le="0.001"}`: 980, b + `{le="0.002"}`: 1005, b + `{le="+Inf"}`: 1010}
	require.Equal(t, "1000 packets, p50 ≤ 1ms, p99 ≤ 2ms, 99.50% within 2 ms", latenessSummary(m0, m1))
	require.Contains(t, latenessSummary(nil, nil), "no data")
}

func TestPct(t *testing.T) {
	x := []time.Duration{5, 1, 4, 2, 3}
	require.Equal(t, time.Duration(3), pct(x, 0.5))
	require.Equal(t, time.Duration(5), pct(x, 1))
	require.Zero(t, pct(nil, 0.99))
}

func TestPlotSamples(t *testing.T) {
	path := filepath.Join(t.TempDir(), "soak.png")
	s := []sample{{at: 0, goroutines: 10, rssKB: 1024, cpuPct: 1, calls: 0},
		{at: 30 * time.Second, goroutines: math.NaN(), rssKB: 80000, cpuPct: 30, calls: 90},
		{at: time.Minute, goroutines: 400, rssKB: 90000, cpuPct: 30, calls: 100}}
	require.NoError(t, plotSamples(path, s))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "\x89PNG", string(b[:4]))
	require.Error(t, plotSamples(path, nil))
}

func TestPinCPUs(t *testing.T) {
	bridge, self, err := pinCPUs()
	if err != nil {
		t.Skip(err) // no taskset or one CPU
	}
	n := runtime.NumCPU()
	require.Equal(t, strconv.Itoa(n-1), bridge)
	require.Len(t, strings.Split(self, ","), n-1)
	require.NotContains(t, strings.Split(self, ","), bridge)
}

func TestCPUTicksOfSelf(t *testing.T) {
	start := cpuTicks(os.Getpid())
	for deadline := time.Now().Add(30 * time.Second); cpuTicks(os.Getpid()) == start && time.Now().Before(deadline); {
		for i := 0; i < 1e6; i++ {
			_ = strconv.Itoa(i)
		}
	}
	require.Greater(t, cpuTicks(os.Getpid()), start, "CPU time of this process from /proc")
	require.Zero(t, cpuTicks(-1))
}

func TestCheckFileLimit(t *testing.T) {
	require.NoError(t, checkFileLimit(1))
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Max < 1<<40 {
		require.Error(t, checkFileLimit(1<<40), "more files than the hard limit")
	}
}

// TestNiceSelf runs in a child process: a niceness cannot be taken back
// without privileges.
func TestNiceSelf(t *testing.T) {
	if os.Getenv("SIPLOAD_NICE_CHILD") == "1" {
		nice := func() int {
			b, err := os.ReadFile("/proc/self/stat")
			require.NoError(t, err)
			f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
			n, err := strconv.Atoi(f[16]) // the nice field
			require.NoError(t, err)
			return n
		}
		before := nice()
		require.NoError(t, niceSelf(3))
		require.Equal(t, min(19, before+3), nice())
		return
	}
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNiceSelf$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SIPLOAD_NICE_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
}
