// Command sipload measures sipbridge under concurrent calls on loopback: it
// starts simulated realtime regions in its own process (so their CPU is not
// counted), runs the sipbridge binary against them, places N calls with the
// test phone, has every caller talk in turns, and reports the bridge
// process's CPU per call, memory per call, and how many callers heard their
// answers. Bounded in calls and time; loopback only.
//
//	go build -o /tmp/sipbridge ./cmd/sipbridge
//	go run ./cmd/sipload -bin /tmp/sipbridge -calls 100 -duration 30s
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

func main() {
	bin := flag.String("bin", "", "sipbridge binary (required)")
	calls := flag.Int("calls", 100, "concurrent calls (at most 500)")
	dur := flag.Duration("duration", 30*time.Second, "steady-state measurement window (at most 5m)")
	ramp := flag.Duration("ramp", 10*time.Second, "time to place all calls")
	turnEvery := flag.Duration("turn", 6*time.Second, "each caller speaks for 1 s this often")
	failRate := flag.Float64("failure-rate", 0, "simulated failed-response rate in each region")
	logPath := flag.String("log", "", "keep the bridge's log in this file (info level)")
	flag.Parse()
	if *bin == "" || *calls < 1 || *calls > 500 || *dur > 5*time.Minute {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*bin, *calls, *dur, *ramp, *turnEvery, *failRate, *logPath); err != nil {
		fmt.Fprintln(os.Stderr, "sipload:", err)
		os.Exit(1)
	}
}

func run(bin string, n int, dur, ramp, turnEvery time.Duration, failRate float64, logPath string) error {
	quiet := slog.New(slog.DiscardHandler)
	var regions []string
	env := os.Environ()
	for i, hz := range []float64{440, 660} {
		name := fmt.Sprintf("load-%d", i)
		s := sim.New(sim.Config{Region: name, APIKey: "k" + name, VoiceHz: hz, Faults: sim.Faults{FailureRate: failRate, Seed: int64(i + 1)}, Logger: quiet})
		base, err := s.Listen("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer s.Close()
		envName := "SIPLOAD_KEY_" + strconv.Itoa(i)
		env = append(env, envName+"=k"+name)
		regions = append(regions, fmt.Sprintf("  - name: %s\n    url: %s/openai/v1/realtime?model=gpt-realtime\n    api_key_env: %s\n", name, base, envName))
	}
	sipPort, err := freePort()
	if err != nil {
		return err
	}
	level := "warn"
	if logPath != "" {
		level = "info"
	}
	cfg := fmt.Sprintf("sip:\n  listen: 127.0.0.1:%d\n  max_calls: %d\nrtp:\n  port_min: 40000\n  port_max: 42000\nadmin:\n  listen: \"off\"\nlog:\n  level: %s\nregions:\n%s",
		sipPort, n+10, level, strings.Join(regions, ""))
	dir, err := os.MkdirTemp("", "sipload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sipbridge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-config", path)
	cmd.Env = env
	if logPath == "" {
		logPath = filepath.Join(dir, "bridge.log")
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	target := fmt.Sprintf("sip:bot@127.0.0.1:%d", sipPort)
	if err := waitSIP(target, 30*time.Second); err != nil {
		return err
	}
	baseRSS := rssKB(cmd.Process.Pid)

	ctx, cancel := context.WithTimeout(context.Background(), ramp+dur+2*time.Minute)
	defer cancel()
	var (
		wg               sync.WaitGroup
		answered, failed atomic.Int64
		turns, heard     atomic.Int64
		phones           []*phone.Phone
		mu               sync.Mutex
	)
	stopTalking := make(chan struct{})
	for i := 0; i < n; i++ {
		time.Sleep(ramp / time.Duration(n))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ph, err := phone.New(ctx, phone.Config{})
			if err != nil {
				failed.Add(1)
				return
			}
			mu.Lock()
			phones = append(phones, ph)
			mu.Unlock()
			c, err := ph.Call(ctx, phone.CallOptions{Target: target})
			if err != nil {
				failed.Add(1)
				return
			}
			answered.Add(1)
			t := time.NewTicker(turnEvery)
			defer t.Stop()
			for {
				select {
				case <-stopTalking:
					hctx, hc := context.WithTimeout(context.Background(), 5*time.Second)
					_ = c.Hangup(hctx)
					hc()
					return
				case <-t.C:
					from := c.HeardMs()
					c.Speak(300, time.Second, -20)
					// A turn counts once its wait is over, heard or not, so
					// turns still in flight at the snapshot are not "missed".
					ok := false
					if _, err := c.WaitTone(ctx, 440, from+1000, 300*time.Millisecond, turnEvery-time.Second); err == nil {
						ok = true
					} else if _, err := c.WaitTone(ctx, 660, from+1000, 300*time.Millisecond, time.Second); err == nil {
						ok = true
					}
					if ok {
						heard.Add(1)
					}
					turns.Add(1)
				}
			}
		}(i)
	}
	time.Sleep(2 * time.Second) // let the last calls settle
	cpu0, t0 := cpuTicks(cmd.Process.Pid), time.Now()
	time.Sleep(dur)
	cpu1, t1 := cpuTicks(cmd.Process.Pid), time.Now()
	rss := rssKB(cmd.Process.Pid)
	turnsAtEnd, heardAtEnd := turns.Load(), heard.Load()
	close(stopTalking)
	wg.Wait()
	for _, p := range phones {
		p.Close()
	}

	tck := float64(clockTicks())
	cpuSec := float64(cpu1-cpu0) / tck
	wall := t1.Sub(t0).Seconds()
	active := answered.Load()
	fmt.Printf("calls placed %d, answered %d, failed %d\n", n, active, failed.Load())
	fmt.Printf("window %.1fs: sipbridge CPU %.2fs = %.1f%% of one core; %.3f%% of one core per call\n",
		wall, cpuSec, 100*cpuSec/wall, 100*cpuSec/wall/float64(max(active, 1)))
	fmt.Printf("RSS %d KiB (idle %d KiB): %.0f KiB per call\n", rss, baseRSS, float64(rss-baseRSS)/float64(max(active, 1)))
	fmt.Printf("caller turns %d, answers heard %d (%.1f%%)\n", turnsAtEnd, heardAtEnd, 100*float64(heardAtEnd)/float64(max(turnsAtEnd, 1)))
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitSIP sends OPTIONS until the bridge answers.
func waitSIP(target string, timeout time.Duration) error {
	addr := strings.TrimPrefix(target, "sip:bot@")
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.Dial("udp", addr)
		if err == nil {
			msg := fmt.Sprintf("OPTIONS %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-load%d;rport\r\nFrom: <sip:load@127.0.0.1>;tag=l\r\nTo: <%s>\r\nCall-ID: load-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
				target, c.LocalAddr(), time.Now().UnixNano(), target, time.Now().UnixNano())
			_, _ = c.Write([]byte(msg))
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			buf := make([]byte, 2048)
			if n, err := c.Read(buf); err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
				c.Close()
				return nil
			}
			c.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("sipbridge did not answer OPTIONS at %s", addr)
}

// cpuTicks is utime+stime of a process from /proc/PID/stat.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

func clockTicks() int64 { return 100 } // USER_HZ on Linux

func rssKB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(sc.Text())[1], 10, 64)
			return v
		}
	}
	return 0
}
