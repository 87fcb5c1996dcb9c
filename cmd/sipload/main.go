// Command sipload measures sipbridge under concurrent calls on loopback: it
// starts simulated realtime regions in its own process (so their CPU is not
// counted), runs the sipbridge binary against them, places N calls with the
// test phone, has every caller talk in turns, and reports the bridge
// process's CPU per call, memory per call, RTP pacing (the bridge's own
// send-lateness histogram and the callers' longest RTP gaps) and how many
// callers heard their answers. Bounded in calls and time; loopback only.
//
//	go build -o /tmp/sipbridge ./cmd/sipbridge
//	go run ./cmd/sipload -bin /tmp/sipbridge -calls 100 -duration 30s
//
// With -soak the regions fail the way real ones do (failed responses,
// mid-answer failures, dropped sockets, latency spikes, text-only answers,
// refusals, throttling), calls are hung up and placed again every
// -call-length, and -plot draws the bridge's goroutines, RSS and CPU over
// time (make soak).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
)

type options struct {
	bin        string
	calls      int
	dur        time.Duration
	ramp       time.Duration
	turnEvery  time.Duration
	failRate   float64
	logPath    string
	listen     string // the bridge's SIP address: loopback only
	soak       bool
	callLength time.Duration // 0: every call lasts the whole run
	sample     time.Duration
	plotPath   string
	profileDir string
	env        []string // extra environment for the bridge (GOMEMLIMIT, GOGC)
	selfProf   string   // CPU profile of sipload itself over the window
	pin        bool     // bridge on the last CPU, sipload on the others
	nice       int      // sipload's own niceness once the bridge runs
	format     string   // assistant.audio_format: auto, pcm24 or g711
	chunk      string   // rtp.uplink_chunk; empty: the bridge's default
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "sipbridge binary (required)")
	flag.IntVar(&o.calls, "calls", 100, "concurrent calls (at most 500)")
	flag.DurationVar(&o.dur, "duration", 30*time.Second, "steady-state measurement window (at most 5m; 2h with -soak)")
	flag.DurationVar(&o.ramp, "ramp", 10*time.Second, "time to place all calls")
	flag.DurationVar(&o.turnEvery, "turn", 6*time.Second, "each caller speaks for 1 s this often")
	flag.Float64Var(&o.failRate, "failure-rate", 0, "simulated failed-response rate in each region")
	flag.StringVar(&o.logPath, "log", "", "keep the bridge's log in this file (info level)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1", "the bridge's SIP address (a loopback address; anything else is refused)")
	flag.BoolVar(&o.soak, "soak", false, "regions fail in a realistic mix; calls are replaced every -call-length")
	flag.DurationVar(&o.callLength, "call-length", 0, "hang up and place a new call after this long (0: calls last the run; -soak default 2m)")
	flag.DurationVar(&o.sample, "sample", 5*time.Second, "how often the bridge's goroutines, RSS and CPU are sampled")
	flag.StringVar(&o.plotPath, "plot", "", "write goroutines, RSS, CPU and calls over time to this PNG")
	flag.StringVar(&o.profileDir, "profile", "", "take CPU (20 s), heap profiles and a 2 s execution trace of the bridge in the window into this directory (turns admin.pprof on)")
	flag.StringVar(&o.format, "audio-format", "auto", "assistant.audio_format of the bridge: auto (the test phones' G.711 to the model), pcm24 or g711")
	flag.StringVar(&o.chunk, "uplink-chunk", "", "rtp.uplink_chunk of the bridge (e.g. 100ms); empty: its default")
	flag.StringVar(&o.selfProf, "self-cpuprofile", "", "write a CPU profile of sipload itself (phones and simulators) over the window to this file")
	flag.BoolVar(&o.pin, "cpu-affinity", false, "pin the bridge to the last CPU and sipload to the others (taskset), so the load generator cannot take the bridge's core")
	flag.IntVar(&o.nice, "nice", 0, "lower sipload's own priority by this much (0-19) once the bridge has started, so that when the two contend for a CPU the bridge wins (the bridge keeps the priority sipload started with)")
	gomem := flag.String("gomemlimit", "", "GOMEMLIMIT for the bridge (e.g. 200MiB); empty: unset")
	gogc := flag.String("gogc", "", "GOGC for the bridge; empty: unset")
	flag.Parse()
	maxDur := 5 * time.Minute
	if o.soak {
		maxDur = 2 * time.Hour
		if o.callLength == 0 {
			o.callLength = 2 * time.Minute
		}
	}
	if o.format != "auto" && o.format != "pcm24" && o.format != "g711" {
		fmt.Fprintln(os.Stderr, "sipload: -audio-format is auto, pcm24 or g711")
		os.Exit(2)
	}
	if o.bin == "" || o.calls < 1 || o.calls > 500 || o.dur > maxDur || o.sample <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := checkLoopback(o.listen); err != nil {
		fmt.Fprintln(os.Stderr, "sipload:", err)
		os.Exit(2)
	}
	if o.nice < 0 || o.nice > 19 {
		fmt.Fprintln(os.Stderr, "sipload: -nice is 0-19 (sipload only ever lowers its own priority)")
		os.Exit(2)
	}
	if err := checkFileLimit(o.calls); err != nil {
		fmt.Fprintln(os.Stderr, "sipload:", err)
		os.Exit(2)
	}
	if *gomem != "" {
		o.env = append(o.env, "GOMEMLIMIT="+*gomem)
	}
	if *gogc != "" {
		o.env = append(o.env, "GOGC="+*gogc)
	}
	// sipload's own memory is not measured; collecting less often leaves
	// more of the machine to the bridge.
	debug.SetGCPercent(400)
	// The phones' SIP library logs every stray retransmission through the
	// default logger; a load run would print thousands of lines.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	log.SetOutput(io.Discard)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "sipload:", err)
		os.Exit(1)
	}
}

// checkLoopback refuses any SIP target that is not a loopback address: the
// tool places hundreds of calls and must never be pointed at a real trunk
// or someone else's server.
func checkLoopback(host string) error {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("-listen %q is not an IP address", host)
	}
	if !a.IsLoopback() {
		return fmt.Errorf("-listen %s is not a loopback address: sipload only loads a bridge on this machine", host)
	}
	return nil
}

// pinCPUs splits the CPUs this process may use: the last for the bridge,
// the others for sipload. It needs taskset (util-linux) and two CPUs.
func pinCPUs() (bridge, self string, err error) {
	if _, err := exec.LookPath("taskset"); err != nil {
		return "", "", errors.New("-cpu-affinity needs taskset (util-linux)")
	}
	n := runtime.NumCPU()
	if n < 2 {
		return "", "", errors.New("-cpu-affinity needs at least two CPUs")
	}
	var others []string
	for i := range n - 1 {
		others = append(others, strconv.Itoa(i))
	}
	return strconv.Itoa(n - 1), strings.Join(others, ","), nil
}

// checkFileLimit makes sure this process and the bridge may open the files
// the calls need: here a SIP and an RTP socket per caller and a WebSocket
// or two per call in the simulators; in the bridge an RTP socket and a
// WebSocket or two per call. Go programs raise their soft limit to the hard
// one when they start, so the hard limit is what counts.
func checkFileLimit(calls int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // not knowable here: let the run show it
	}
	need := uint64(6*calls + 200)
	if lim.Max < need {
		return fmt.Errorf("%d calls need about %d open files; the hard limit (ulimit -Hn) is %d", calls, need, lim.Max)
	}
	return nil
}

// niceSelf lowers the priority of every thread of this process by n (on
// Linux a priority belongs to a thread; threads started later inherit it).
// The bridge, already started, keeps its own.
func niceSelf(n int) error {
	tids, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("-nice: %w", err)
	}
	for _, t := range tids {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
		if err != nil {
			continue // the thread has exited
		}
		// The raw syscall returns 20-nice.
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, min(19, 20-prio+n)); err != nil {
			return fmt.Errorf("-nice: thread %d: %w", tid, err)
		}
	}
	return nil
}

// soakBase is what every soak region does all the time.
func soakBase(seed int64) sim.Faults {
	return sim.Faults{
		Seed:                seed,
		FailureRate:         0.03,
		LatencySpikeRate:    0.03,
		LatencySpike:        2 * time.Second,
		TextAfterReplayRate: 0.3,
		RateLimitRate:       0.01,
	}
}

// soakEvents are the bursts a soak region goes through now and then, on top
// of soakBase: each applies for a few seconds, then the base returns.
var soakEvents = []struct {
	name string
	add  func(*sim.Faults)
}{
	{"mid-answer failures", func(f *sim.Faults) { f.FailAfterAudioMs, f.FailAfterAudioCount = 400, 3 }},
	{"socket closed mid-answer (1011)", func(f *sim.Faults) { f.CloseAfterAudioMs = 300 }},
	{"sockets dropped mid-answer", func(f *sim.Faults) { f.DropAfterAudioMs = 300 }},
	{"upgrades refused (503)", func(f *sim.Faults) { f.RefuseStatus, f.RefuseCount = 503, 3 }},
	{"throttled responses", func(f *sim.Faults) { f.RateLimitResponses = 3 }},
	{"failed responses", func(f *sim.Faults) { f.FailBeforeAudio = 3 }},
}

// sample is one reading of the bridge process.
type sample struct {
	at         time.Duration // since the bridge started
	goroutines float64
	rssKB      int64
	cpuPct     float64 // of one core, since the previous sample
	calls      int64
}

func run(o options) error {
	quiet := slog.New(slog.DiscardHandler)
	var (
		regions []string
		sims    []*sim.Server
	)
	env := append(os.Environ(), o.env...)
	for i, hz := range []float64{440, 660} {
		name := fmt.Sprintf("load-%d", i)
		faults := sim.Faults{FailureRate: o.failRate, Seed: int64(i + 1)}
		if o.soak {
			faults = soakBase(int64(i + 1))
		}
		s := sim.New(sim.Config{Region: name, APIKey: "k" + name, VoiceHz: hz, Faults: faults, Logger: quiet})
		base, err := s.Listen("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer s.Close()
		sims = append(sims, s)
		envName := "SIPLOAD_KEY_" + strconv.Itoa(i)
		env = append(env, envName+"=k"+name)
		regions = append(regions, fmt.Sprintf("  - name: %s\n    url: %s/openai/v1/realtime?model=gpt-realtime\n    api_key_env: %s\n", name, base, envName))
	}
	sipPort, err := freePort()
	if err != nil {
		return err
	}
	adminPort, err := freePort()
	if err != nil {
		return err
	}
	level := "warn"
	if o.logPath != "" {
		level = "info"
	}
	// Even ports only, and the range is shared with the kernel's ephemeral
	// ports: room for every call several times over.
	portMax := 40000 + max(2000, 8*o.calls)
	chunk := ""
	if o.chunk != "" {
		// The bridge validates it (check names rtp.uplink_chunk).
		chunk = "\n  uplink_chunk: " + strconv.Quote(o.chunk)
	}
	cfg := fmt.Sprintf("sip:\n  listen: %s:%d\n  max_calls: %d\nrtp:\n  port_min: 40000\n  port_max: %d%s\nadmin:\n  listen: 127.0.0.1:%d\n  pprof: %v\nlog:\n  level: %s\nassistant:\n  audio_format: %s\nregions:\n%s",
		o.listen, sipPort, o.calls+10, portMax, chunk, adminPort, o.profileDir != "", level, o.format, strings.Join(regions, ""))
	dir, err := os.MkdirTemp("", "sipload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sipbridge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(o.bin, "-config", path)
	if o.pin {
		bridgeCPUs, selfCPUs, err := pinCPUs()
		if err != nil {
			return err
		}
		// taskset execs the bridge in place: the child's pid is the bridge's.
		cmd = exec.Command("taskset", "-c", bridgeCPUs, o.bin, "-config", path)
		if out, err := exec.Command("taskset", "-a", "-p", "-c", selfCPUs, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			return fmt.Errorf("pinning sipload to CPUs %s: %v: %s", selfCPUs, err, out)
		}
		runtime.GOMAXPROCS(runtime.NumCPU() - 1) // pinCPUs gives sipload all CPUs but the last
		fmt.Printf("cpu affinity: sipbridge on CPU %s, sipload on CPU %s\n", bridgeCPUs, selfCPUs)
	}
	cmd.Env = env
	logPath := o.logPath
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
	started := time.Now()
	pid := cmd.Process.Pid
	if o.nice > 0 {
		if err := niceSelf(o.nice); err != nil {
			return err
		}
		fmt.Printf("sipload runs at nice +%d, the bridge at its own priority\n", o.nice)
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
	target := fmt.Sprintf("sip:bot@%s:%d", o.listen, sipPort)
	if err := waitSIP(target, 30*time.Second); err != nil {
		return err
	}
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	baseRSS := rssKB(pid)
	baseMetrics := scrape(admin)

	ctx, cancel := context.WithTimeout(context.Background(), o.ramp+o.dur+2*time.Minute)
	defer cancel()

	// Samples of the bridge over the whole run (for the plot and flatness).
	var (
		samples []sample
		smu     sync.Mutex
		active  atomic.Int64
	)
	stopSampling := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(o.sample)
		defer t.Stop()
		lastCPU, lastT := cpuTicks(pid), time.Now()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
			c, now := cpuTicks(pid), time.Now()
			m := scrape(admin)
			g, ok := m["go_goroutines"]
			if !ok {
				g = math.NaN() // the scrape failed (timed out under load): no point
			}
			smu.Lock()
			samples = append(samples, sample{
				at: now.Sub(started), goroutines: g, rssKB: rssKB(pid),
				cpuPct: 100 * float64(c-lastCPU) / float64(clockTicks()) / now.Sub(lastT).Seconds(),
				calls:  active.Load(),
			})
			smu.Unlock()
			lastCPU, lastT = c, now
		}
	}()

	// The soak regions' failure bursts: every 15 s one region gets one.
	if o.soak {
		go func() {
			rng := rand.New(rand.NewPCG(7, 11))
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(15 * time.Second):
				}
				r := rng.IntN(len(sims))
				ev := soakEvents[i%len(soakEvents)]
				f := soakBase(int64(r + 1 + i))
				ev.add(&f)
				sims[r].SetFaults(f)
				select {
				case <-ctx.Done():
					return
				case <-time.After(5 * time.Second):
				}
				sims[r].SetFaults(soakBase(int64(r + 100 + i)))
			}
		}()
	}

	tracePath := ""
	if o.logPath != "" {
		tracePath = o.logPath + ".turns"
	}
	trace, err := newTurnTrace(tracePath)
	if err != nil {
		return err
	}
	defer trace.Close()
	var (
		wg                      sync.WaitGroup
		placed, failed, dropped atomic.Int64
		completed               atomic.Int64
		turns, heard            atomic.Int64
		unanswered              [numUnanswered]atomic.Int64 // by kind (soak.go)
		mu                      sync.Mutex
		waits                   []time.Duration // turn waits: end of speech → answer heard
		liveCalls               = map[*phone.Call]bool{}
		inWindow                atomic.Bool
	)
	// One clock sends every caller's RTP, and the callers keep no
	// recording, only where the regions' voices were heard: sipload's own
	// CPU and memory then stay small beside the bridge's.
	pacer := phone.NewPacer()
	defer pacer.Close()
	stopTalking := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stopTalking:
			return true
		default:
			return false
		}
	}
	// oneCall places a call and talks until stopTalking or its length has
	// passed; it reports whether the caller should place another.
	oneCall := func(length time.Duration) bool {
		ph, err := phone.New(ctx, phone.Config{})
		if err != nil {
			failed.Add(1)
			return false
		}
		defer ph.Close()
		placed.Add(1)
		c, err := ph.Call(ctx, phone.CallOptions{Target: target, Pacer: pacer, TrackTones: []float64{440, 660}})
		if err != nil {
			failed.Add(1)
			// A caller turned away calls again later, not in a tight
			// loop (which made thousands of 503s of a one-second throttle).
			select {
			case <-stopTalking:
			case <-time.After(redialAfter(err)):
			}
			return !stopped()
		}
		active.Add(1)
		defer active.Add(-1)
		mu.Lock()
		liveCalls[c] = true
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(liveCalls, c)
			mu.Unlock()
		}()
		var end <-chan time.Time
		if length > 0 {
			tm := time.NewTimer(length)
			defer tm.Stop()
			end = tm.C
		}
		t := time.NewTicker(o.turnEvery)
		defer t.Stop()
		hangup := func() {
			hctx, hc := context.WithTimeout(context.Background(), 5*time.Second)
			_ = c.Hangup(hctx)
			hc()
			completed.Add(1)
		}
		for {
			select {
			case <-stopTalking:
				hangup()
				return false
			case <-end:
				hangup()
				return true
			case <-c.Ended():
				dropped.Add(1) // the bridge ended a call the caller had not
				return !stopped()
			case <-t.C:
				from := c.HeardMs()
				spoke := time.Now()
				c.Speak(300, time.Second, -20)
				// A turn counts once its wait is over, heard or not, so
				// turns still in flight at the snapshot are not "missed".
				pos, err := c.WaitTone(ctx, 440, from+1000, 300*time.Millisecond, o.turnEvery-time.Second)
				if err != nil {
					var err2 error
					pos, err2 = c.WaitTone(ctx, 660, from+1000, 300*time.Millisecond, time.Second)
					if err2 != nil {
						err = fmt.Errorf("%w; %w", err, err2)
					} else {
						err = nil
					}
				}
				if err == nil {
					heard.Add(1)
					mu.Lock()
					waits = append(waits, time.Duration(pos-from-1000)*time.Millisecond)
					mu.Unlock()
				} else {
					kind := unansweredKind(ctx, c, from+1000, o.turnEvery)
					unanswered[kind].Add(1)
					trace.unanswered(c, spoke, from, kind, err)
				}
				turns.Add(1)
			}
		}
	}
	for i := 0; i < o.calls; i++ {
		time.Sleep(o.ramp / time.Duration(o.calls))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Spread the first hang-ups over one call length.
			length := o.callLength
			if length > 0 {
				length = length/2 + time.Duration(rand.Int64N(int64(length/2)+1))
			}
			for oneCall(length) {
				length = o.callLength
			}
		}(i)
	}
	time.Sleep(2 * time.Second) // let the last calls settle
	// resetGaps starts every call's gap measurement afresh and returns
	// the RTP packets the callers have sent so far.
	resetGaps := func() (sent int) {
		mu.Lock()
		defer mu.Unlock()
		for c := range liveCalls {
			c.MaxGap()
			sent += c.Stats().PacketsOut
		}
		return sent
	}
	callerSent0 := resetGaps()
	load0 := loadAvg()
	inWindow.Store(true)
	m0 := scrape(admin)
	cpu0, t0 := cpuTicks(pid), time.Now()
	self0 := cpuTicks(os.Getpid())
	if o.selfProf != "" {
		f, err := os.Create(o.selfProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	activeAtStart := active.Load()
	var profErr error
	if o.profileDir != "" {
		profErr = takeProfiles(admin, o.profileDir, min(20*time.Second, o.dur/2))
		if rest := o.dur - time.Since(t0); rest > 0 {
			time.Sleep(rest)
		}
	} else {
		time.Sleep(o.dur)
	}
	cpu1, t1 := cpuTicks(pid), time.Now()
	self1 := cpuTicks(os.Getpid())
	if o.selfProf != "" {
		pprof.StopCPUProfile()
	}
	m1 := scrape(admin)
	rss := rssKB(pid)
	activeAtEnd := active.Load()
	var gaps []time.Duration
	callerSent1 := 0
	mu.Lock()
	for c := range liveCalls {
		gaps = append(gaps, c.MaxGap())
		callerSent1 += c.Stats().PacketsOut
	}
	waitsAtEnd := slices.Clone(waits)
	mu.Unlock()
	turnsAtEnd, heardAtEnd := turns.Load(), heard.Load()
	var unansweredAtEnd [numUnanswered]int64
	for k := range unanswered {
		unansweredAtEnd[k] = unanswered[k].Load()
	}
	close(stopTalking)
	wg.Wait()
	close(stopSampling)
	<-samplerDone

	cpuSec := float64(cpu1-cpu0) / float64(clockTicks())
	wall := t1.Sub(t0).Seconds()
	avgCalls := float64(activeAtStart+activeAtEnd) / 2
	perCall := max(avgCalls, 1)
	fmt.Printf("calls placed %d, failed to set up %d, completed %d, dropped by the bridge %d; in the window %d→%d active\n",
		placed.Load(), failed.Load(), completed.Load(), dropped.Load(), activeAtStart, activeAtEnd)
	fmt.Printf("window %.1fs: sipbridge CPU %.2fs = %.1f%% of one core; %.3f%% of one core per call\n",
		wall, cpuSec, 100*cpuSec/wall, 100*cpuSec/wall/perCall)
	selfSec := float64(self1-self0) / float64(clockTicks())
	fmt.Printf("sipload itself (phones and simulators) CPU %.2fs = %.1f%% of one core; %.3f%% per call\n",
		selfSec, 100*selfSec/wall, 100*selfSec/wall/perCall)
	fmt.Printf("RSS %d KiB (idle %d KiB): %.0f KiB per call\n", rss, baseRSS, float64(rss-baseRSS)/perCall)
	if a0, a1 := m0["go_memstats_alloc_bytes_total"], m1["go_memstats_alloc_bytes_total"]; a1 > a0 {
		fmt.Printf("heap in use %.1f MiB at the end; allocation rate %.1f KiB/s per call (go_memstats_alloc_bytes_total over the window)\n",
			m1["go_memstats_heap_inuse_bytes"]/(1<<20), (a1-a0)/1024/wall/perCall)
	}
	fmt.Printf("caller turns %d, answers heard %d (%.1f%%), unanswered %d (%s)\n", turnsAtEnd, heardAtEnd,
		100*float64(heardAtEnd)/float64(max(turnsAtEnd, 1)), turnsAtEnd-heardAtEnd, unansweredSummary(unansweredAtEnd))
	fmt.Printf("turn wait (end of speech → answer heard) p50 %v p90 %v p99 %v max %v\n",
		pct(waitsAtEnd, 0.5), pct(waitsAtEnd, 0.9), pct(waitsAtEnd, 0.99), pct(waitsAtEnd, 1))
	fmt.Printf("RTP send lateness (bridge, in the window): %s\n", latenessSummary(m0, m1))
	// A starved machine shows as fewer packets than the calls' 50 a
	// second: then every figure above measures the machine, not the bridge.
	full := perCall * wall * 50
	bridgeSent := m1["sipbridge_rtp_send_lateness_seconds_count"] - m0["sipbridge_rtp_send_lateness_seconds_count"]
	// The callers' count covers the calls live at both ends of the window:
	// when calls are replaced during it (-call-length, -soak) it is not a
	// share of anything, and only the bridge's is reported.
	callerShare, callersShort := "n/a (calls replaced in the window)", false
	if o.callLength == 0 {
		callerShare = fmt.Sprintf("%.1f%%", 100*float64(callerSent1-callerSent0)/full)
		callersShort = float64(callerSent1-callerSent0) < 0.95*full
	}
	fmt.Printf("RTP packets in the window, of 50/s per call: bridge sent %.1f%%, callers sent %s; load average %s → %s\n",
		100*bridgeSent/full, callerShare, load0, loadAvg())
	if bridgeSent < 0.95*full || callersShort {
		fmt.Println("WARNING: under 95% of the packets were sent: the machine was short of CPU, so the figures above measure the machine, not the bridge")
	}
	fmt.Printf("caller-side longest RTP gap per call: p50 %v p99 %v max %v\n", pct(gaps, 0.5), pct(gaps, 0.99), pct(gaps, 1))
	over := func(name string) float64 { return sumPrefix(m1, name) - sumPrefix(baseMetrics, name) }
	fmt.Printf("swaps %.0f, hedges %.0f, give-ups %.0f, caller frames dropped %.0f (over the run)\n",
		over("sipbridge_failover_swaps_total"), over("sipbridge_failover_hedges_total"),
		over("sipbridge_failover_giveups_total"), over("sipbridge_failover_caller_frames_dropped_total"))
	smu.Lock()
	defer smu.Unlock()
	if len(samples) > 0 {
		fmt.Printf("goroutines %s; RSS MiB %s; CPU %% %s (first → middle → last sample)\n",
			trend(samples, func(s sample) float64 { return s.goroutines }),
			trend(samples, func(s sample) float64 { return float64(s.rssKB) / 1024 }),
			trend(samples, func(s sample) float64 { return s.cpuPct }))
	}
	if o.plotPath != "" {
		if err := plotSamples(o.plotPath, samples); err != nil {
			return err
		}
		fmt.Printf("plot: %s\n", o.plotPath)
	}
	if profErr != nil {
		return profErr
	}
	return nil
}

// takeProfiles saves a CPU profile of d, then heap and allocation profiles
// and a 2 s execution trace.
func takeProfiles(admin, dir string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	get := func(path, file string) error {
		resp, err := (&http.Client{Timeout: d + 30*time.Second}).Get(admin + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return errors.Join(
		get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), "cpu.pprof"),
		get("/debug/pprof/heap?gc=1", "heap.pprof"),
		get("/debug/pprof/allocs", "allocs.pprof"),
		// 2 s of the runtime's execution trace: when each goroutine was
		// ready and when it ran (`go tool trace`; the scheduler latency of
		// the clock shards is the RTP lateness).
		get("/debug/pprof/trace?seconds=2", "trace.out"),
	)
}

// scrape reads the bridge's /metrics as name{labels} → value.
func scrape(admin string) map[string]float64 {
	out := map[string]float64{}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(admin + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func sumPrefix(m map[string]float64, prefix string) float64 {
	var s float64
	for k, v := range m {
		if k == prefix || strings.HasPrefix(k, prefix+"{") {
			s += v
		}
	}
	return s
}

// latenessSummary is the p50/p99 of the bridge's send-lateness histogram
// between two scrapes, as bucket upper bounds.
func latenessSummary(m0, m1 map[string]float64) string {
	const name = "sipbridge_rtp_send_lateness_seconds"
	type bucket struct {
		le  float64
		cum float64
	}
	var bs []bucket
	for k, v := range m1 {
		if !strings.HasPrefix(k, name+"_bucket{le=\"") {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(k, name+"_bucket{le=\""), "\"}"), 64)
		if err != nil {
			le = 1e9 // +Inf
		}
		bs = append(bs, bucket{le, v - m0[k]})
	}
	slices.SortFunc(bs, func(a, b bucket) int {
		switch {
		case a.le < b.le:
			return -1
		case a.le > b.le:
			return 1
		}
		return 0
	})
	if len(bs) == 0 || bs[len(bs)-1].cum == 0 {
		return "no data (admin metrics unavailable)"
	}
	total := bs[len(bs)-1].cum
	q := func(p float64) string {
		for _, b := range bs {
			if b.cum >= p*total {
				if b.le >= 1e9 {
					return "> 100ms"
				}
				return "≤ " + time.Duration(b.le*float64(time.Second)).String()
			}
		}
		return "?"
	}
	var within2ms float64
	for _, b := range bs {
		if b.le == 0.002 {
			within2ms = b.cum
		}
	}
	return fmt.Sprintf("%.0f packets, p50 %s, p99 %s, %.2f%% within 2 ms", total, q(0.5), q(0.99), 100*within2ms/total)
}

func pct(x []time.Duration, p float64) time.Duration {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func trend(s []sample, f func(sample) float64) string {
	return fmt.Sprintf("%.0f → %.0f → %.0f", f(s[0]), f(s[len(s)/2]), f(s[len(s)-1]))
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

// loadAvg is the 1-minute load average from /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
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
