package main

import (
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sipbridge/sipbridge/media/resample"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// defaultQuestion is prompts/question.wav (a test keeps the two identical):
// what `sipbridge call` says when no -wav is given.
//
//go:embed question.wav
var defaultQuestion []byte

// Exit codes of `sipbridge call`.
const (
	callOK       = 0 // answered, and an answer was heard after the question
	callNoAnswer = 1 // rejected, unreachable, or answered but nothing heard back
	callUsage    = 2 // bad flags or an unreadable -wav
)

// Detection of "an answer was heard", on 20 ms blocks of what came back.
const (
	voiceLevelDBov = -40.0                   // a block this loud is speech (comfort noise sits far below)
	minAnswer      = 300 * time.Millisecond  // this much speech after the question is an answer
	answerDoneGap  = 1500 * time.Millisecond // this much silence after it ends the turn
	greetingQuiet  = 700 * time.Millisecond  // silence that ends a greeting before we speak
	blockMs        = 20
)

// callOpts are the flags of `sipbridge call`.
type callOpts struct {
	target, wav, rec, admin, transport, localIP string
	wait, greetingWait                          time.Duration
}

// callCmd is `sipbridge call SIP-URI`: a test caller. It places a call,
// waits out the greeting, says the question, listens for the answer, hangs
// up and reports what happened.
func callCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sipbridge call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: sipbridge call [flags] SIP-URI

Places a test call (e.g. sip:bot@127.0.0.1), waits for the greeting to end,
says a question (the bundled prompts/question.wav unless -wav), listens for
the answer, hangs up and prints what happened: answer latency, the region
that answered and any swaps (read from the server's /metrics, see -admin).

Exit status: 0 the call was answered and an answer was heard; 1 it was not
(rejected, unreachable, or silence); 2 bad flags or an unreadable -wav.

`)
		fs.PrintDefaults()
	}
	var o callOpts
	fs.StringVar(&o.wav, "wav", "", "what to say: a mono WAV (PCM16 8/24 kHz or G.711); empty: the bundled question")
	fs.StringVar(&o.rec, "rec", "", "write everything heard to this WAV (8 kHz mono 16-bit)")
	fs.StringVar(&o.admin, "admin", "", `the bridge's admin HOST:PORT, to report the region and swaps from /metrics; empty: 127.0.0.1:9090 when the target is on this host; "off": do not ask`)
	fs.StringVar(&o.transport, "transport", "udp", "SIP transport: udp or tcp")
	fs.StringVar(&o.localIP, "local-ip", "", "address to call from (SIP and RTP); empty: the one that routes to the target")
	fs.DurationVar(&o.wait, "wait", 30*time.Second, "give up waiting for an answer after this long")
	fs.DurationVar(&o.greetingWait, "greeting-wait", 15*time.Second, "longest greeting to wait out before speaking")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return callOK
		}
		return callUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return callUsage
	}
	o.target = fs.Arg(0)
	if !strings.HasPrefix(o.target, "sip:") {
		o.target = "sip:" + o.target
	}
	var uri sipmsg.Uri
	if err := sipmsg.ParseUri(o.target, &uri); err != nil {
		fmt.Fprintf(stderr, "sipbridge call: %q: %v\n", o.target, err)
		return callUsage
	}
	if o.transport != "udp" && o.transport != "tcp" {
		fmt.Fprintf(stderr, "sipbridge call: -transport %q: want udp or tcp\n", o.transport)
		return callUsage
	}
	question, err := questionAudio(o.wav)
	if err != nil {
		fmt.Fprintf(stderr, "sipbridge call: -wav: %v\n", err)
		return callUsage
	}
	port := uri.Port
	if port == 0 {
		port = 5060
	}
	if o.localIP == "" {
		if o.localIP, err = localIPFor(uri.Host, port); err != nil {
			fmt.Fprintf(stderr, "sipbridge call: %v\n", err)
			return callNoAnswer
		}
	}
	if o.admin == "" && isLoopback(uri.Host) {
		o.admin = "127.0.0.1:9090"
	}

	// The SIP stack logs through slog's default; a test call's output is the
	// report, so only errors of its own get through.
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return placeCall(ctx, o, question, stdout, stderr)
}

// placeCall runs one test call; split from callCmd for the flags' sake.
func placeCall(ctx context.Context, o callOpts, question []int16, stdout, stderr io.Writer) int {
	before, beforeErr := scrapeCallMetrics(ctx, o.admin)

	ph, err := phone.New(ctx, phone.Config{LocalIP: o.localIP, Transport: o.transport})
	if err != nil {
		fmt.Fprintf(stderr, "sipbridge call: %v\n", err)
		return callNoAnswer
	}
	defer ph.Close()
	fmt.Fprintf(stdout, "calling %s from %s (%s)\n", o.target, ph.Addr(), o.transport)

	start := time.Now()
	// Force-cancel: with no provisional response yet, sipgo would otherwise
	// sit out Timer B (32 s) before a CANCEL may be sent (RFC 3261 §9.1).
	setupCtx, cancelSetup := context.WithTimeoutCause(ctx, o.wait, sipgo.WaitAnswerForceCancelErr)
	c, err := ph.Call(setupCtx, phone.CallOptions{Target: o.target})
	cancelSetup()
	if err != nil {
		var rej *phone.ErrRejected
		if errors.As(err, &rej) {
			fmt.Fprintf(stdout, "rejected: %d %s after %s\n", rej.Code, rej.Reason, ms(time.Since(start)))
		} else if errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintf(stdout, "not answered: no final response within %s (-wait)\n", o.wait)
		} else {
			fmt.Fprintf(stdout, "not answered: %v\n", err)
		}
		return callNoAnswer
	}
	codec := "PCMU"
	if c.PayloadType() == 8 {
		codec = "PCMA"
	}
	var provisional []int
	for _, code := range c.Provisional() { // every response before the ACK, 200 included
		if code < 200 {
			provisional = append(provisional, code)
		}
	}
	fmt.Fprintf(stdout, "answered: 200 in %s (provisional %v), codec %s, Call-ID %s\n",
		ms(time.Since(start)), provisional, codec, c.CallID())

	ended := false
	hangup := func() {
		if ended {
			return
		}
		ended = true
		select {
		case <-c.Ended():
			fmt.Fprintf(stdout, "the far end hung up\n")
		default:
			byeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = c.Hangup(byeCtx)
			cancel()
		}
	}
	defer hangup()

	// Let a greeting finish: speaking over it would barge in.
	greetEnd := waitGreeting(ctx, c, o.greetingWait)
	if g := voicedMs(c.Heard(), 0, greetEnd); g > 0 {
		fmt.Fprintf(stdout, "greeting: %s of speech heard\n", ms(time.Duration(g)*time.Millisecond))
	}

	askedAt := c.HeardMs()
	c.SendPCM(question)
	fmt.Fprintf(stdout, "saying: %s (%s)\n", questionName(o.wav), ms(samplesDur(len(question))))
	res := waitAnswer(ctx, c, askedAt, samplesDur(len(question)), o.wait)
	hangup()

	heard := c.Heard()
	code := callNoAnswer
	if res.heardMs >= int(minAnswer/time.Millisecond) {
		fmt.Fprintf(stdout, "answer: began %s after the question ended, %s of speech\n",
			ms(time.Duration(res.startMs-askedAt)*time.Millisecond-samplesDur(len(question))), ms(time.Duration(res.heardMs)*time.Millisecond))
		code = callOK
	} else {
		fmt.Fprintf(stdout, "answer: none heard within %s (%s of speech)\n", o.wait, ms(time.Duration(res.heardMs)*time.Millisecond))
	}
	st := c.Stats()
	fmt.Fprintf(stdout, "rtp: %d packets in, %d out, %d sequence gaps\n", st.PacketsIn, st.PacketsOut, st.SeqErrors)

	switch after, err := scrapeCallMetrics(context.Background(), o.admin); {
	case o.admin == "" || o.admin == "off":
		fmt.Fprintf(stdout, "region: unknown (pass -admin HOST:PORT to read it from the bridge's /metrics)\n")
	case beforeErr != nil || err != nil:
		fmt.Fprintf(stdout, "region: unknown (%v)\n", errors.Join(beforeErr, err))
	default:
		d := after.since(before)
		fmt.Fprintf(stdout, "region: %s; swaps: %s (from %s/metrics: exact when no other call was up)\n",
			d.regionsText(), d.swapsText(), o.admin)
	}

	if o.rec != "" {
		if err := writeWAV8k(o.rec, heard); err != nil {
			fmt.Fprintf(stderr, "sipbridge call: -rec: %v\n", err)
			return callNoAnswer
		}
		fmt.Fprintf(stdout, "recorded: %s (%s heard)\n", o.rec, ms(samplesDur(len(heard))))
	}
	if code == callOK {
		fmt.Fprintln(stdout, "result: OK, an answer was heard")
	} else {
		fmt.Fprintln(stdout, "result: FAILED, no answer heard")
	}
	return code
}

// questionAudio loads what to say as 8 kHz samples.
func questionAudio(path string) ([]int16, error) {
	var (
		p   *prompt
		err error
	)
	if path == "" {
		p, err = parseWAV(defaultQuestion)
	} else {
		p, err = loadPrompt(path)
	}
	if err != nil {
		return nil, err
	}
	if p.rate == 8000 {
		return p.samples, nil
	}
	var d resample.Down3
	out := make([]int16, d.OutLen(len(p.samples)))
	n, _ := d.Process(out, p.samples)
	return out[:n], nil
}

func questionName(path string) string {
	if path == "" {
		return "the bundled question (prompts/question.wav)"
	}
	return path
}

// waitGreeting returns the heard position (ms) at which to speak: once a
// greeting has been followed by greetingQuiet of silence, or after 2 s of
// nothing, or at the limit.
func waitGreeting(ctx context.Context, c *phone.Call, limit time.Duration) int {
	deadline := time.Now().Add(limit)
	began := time.Now()
	for {
		heard := c.Heard()
		last := lastVoicedMs(heard)
		now := len(heard) / 8
		switch {
		case last < 0 && time.Since(began) >= 2*time.Second:
			return now // no greeting
		case last >= 0 && now-last >= int(greetingQuiet/time.Millisecond):
			return now
		case time.Now().After(deadline):
			return now
		}
		select {
		case <-ctx.Done():
			return now
		case <-c.Ended():
			return now
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type answerResult struct {
	startMs int // heard position of the answer's first speech; -1 none
	heardMs int // speech heard after the question began
}

// waitAnswer listens from heard position fromMs (when the question began) until
// an answer has been heard and gone quiet for answerDoneGap, the far end hangs
// up, or wait has passed since the question ended.
func waitAnswer(ctx context.Context, c *phone.Call, fromMs int, speaking, wait time.Duration) answerResult {
	deadline := time.Now().Add(speaking + wait)
	for {
		heard := c.Heard()
		res := answerResult{startMs: firstVoicedMs(heard, fromMs), heardMs: voicedMs(heard, fromMs, len(heard)/8)}
		done := res.heardMs >= int(minAnswer/time.Millisecond) && len(heard)/8-lastVoicedMs(heard) >= int(answerDoneGap/time.Millisecond)
		if done || time.Now().After(deadline) {
			return res
		}
		select {
		case <-ctx.Done():
			return res
		case <-c.Ended():
			heard = c.Heard()
			return answerResult{startMs: firstVoicedMs(heard, fromMs), heardMs: voicedMs(heard, fromMs, len(heard)/8)}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// voiced reports whether the 20 ms block at sample i is speech.
func voiced(s []int16, i int) bool {
	return phone.LevelDBov(s[i:i+8*blockMs]) > voiceLevelDBov
}

// voicedMs is how much speech lies between heard positions fromMs and toMs.
func voicedMs(s []int16, fromMs, toMs int) int {
	n := 0
	for i := fromMs * 8; i+8*blockMs <= len(s) && i < toMs*8; i += 8 * blockMs {
		if voiced(s, i) {
			n += blockMs
		}
	}
	return n
}

func firstVoicedMs(s []int16, fromMs int) int {
	for i := fromMs * 8; i+8*blockMs <= len(s); i += 8 * blockMs {
		if voiced(s, i) {
			return i / 8
		}
	}
	return -1
}

// lastVoicedMs is the end of the last speech block, or -1.
func lastVoicedMs(s []int16) int {
	for i := (len(s)/(8*blockMs) - 1) * 8 * blockMs; i >= 0; i -= 8 * blockMs {
		if voiced(s, i) {
			return i/8 + blockMs
		}
	}
	return -1
}

func samplesDur(n int) time.Duration { return time.Duration(n) * time.Second / 8000 }

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// writeWAV8k writes mono 16-bit PCM at 8 kHz.
func writeWAV8k(path string, s []int16) error {
	data := make([]byte, 44+2*len(s))
	copy(data[0:], "RIFF")
	binary.LittleEndian.PutUint32(data[4:], uint32(36+2*len(s)))
	copy(data[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(data[16:], 16)
	binary.LittleEndian.PutUint16(data[20:], wavFormatPCM)
	binary.LittleEndian.PutUint16(data[22:], 1)      // mono
	binary.LittleEndian.PutUint32(data[24:], 8000)   // rate
	binary.LittleEndian.PutUint32(data[28:], 8000*2) // bytes per second
	binary.LittleEndian.PutUint16(data[32:], 2)      // block align
	binary.LittleEndian.PutUint16(data[34:], 16)     // bits
	copy(data[36:], "data")
	binary.LittleEndian.PutUint32(data[40:], uint32(2*len(s)))
	for i, v := range s {
		binary.LittleEndian.PutUint16(data[44+2*i:], uint16(v))
	}
	return os.WriteFile(path, data, 0o644)
}

// localIPFor is the local address the kernel would use to reach host:port.
func localIPFor(host string, port int) (string, error) {
	conn, err := net.Dial("udp", net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		return "", fmt.Errorf("no route to %s: %w", host, err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// callMetrics is what the bridge's /metrics says about where calls went.
type callMetrics struct {
	responses map[string]float64 // region → realtime responses
	swaps     map[string]float64 // "from→to (trigger)" → swaps
}

func (m callMetrics) since(before callMetrics) callMetrics {
	d := callMetrics{responses: map[string]float64{}, swaps: map[string]float64{}}
	for k, v := range m.responses {
		if n := v - before.responses[k]; n > 0 {
			d.responses[k] = n
		}
	}
	for k, v := range m.swaps {
		if n := v - before.swaps[k]; n > 0 {
			d.swaps[k] = n
		}
	}
	return d
}

func (m callMetrics) regionsText() string {
	if len(m.responses) == 0 {
		return "none answered"
	}
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(m.responses)) {
		parts = append(parts, fmt.Sprintf("%s (%.0f responses)", r, m.responses[r]))
	}
	return strings.Join(parts, ", ")
}

func (m callMetrics) swapsText() string {
	if len(m.swaps) == 0 {
		return "0"
	}
	var total float64
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m.swaps)) {
		total += m.swaps[k]
		parts = append(parts, fmt.Sprintf("%.0f× %s", m.swaps[k], k))
	}
	return fmt.Sprintf("%.0f: %s", total, strings.Join(parts, ", "))
}

// scrapeCallMetrics reads the response and swap counters from admin's
// /metrics.
func scrapeCallMetrics(ctx context.Context, admin string) (callMetrics, error) {
	m := callMetrics{responses: map[string]float64{}, swaps: map[string]float64{}}
	if admin == "" || admin == "off" {
		return m, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url, err := probeURL(admin, "/metrics")
	if err != nil {
		return m, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return m, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return m, fmt.Errorf("%s: %s", url, res.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		return m, fmt.Errorf("%s: %w", url, err)
	}
	label := func(mt *dto.Metric, name string) string {
		for _, l := range mt.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, mt := range fams["sipbridge_realtime_responses_total"].GetMetric() {
		m.responses[label(mt, "region")] += mt.GetCounter().GetValue()
	}
	for _, mt := range fams["sipbridge_failover_swaps_total"].GetMetric() {
		k := fmt.Sprintf("%s→%s (%s)", label(mt, "from"), label(mt, "to"), label(mt, "trigger"))
		m.swaps[k] += mt.GetCounter().GetValue()
	}
	return m, nil
}
