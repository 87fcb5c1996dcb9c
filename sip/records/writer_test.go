package records

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipbridge/sipbridge/realtime"
)

// childEnv makes the test binary a records-writing child for the SIGKILL
// test instead of running the tests.
const childEnv = "SIPBRIDGE_RECORDS_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(runChild(path))
	}
	goleak.VerifyTestMain(m)
}

func sampleRecord(i int) *Record {
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	ans := t0.Add(300 * time.Millisecond)
	return &Record{
		CallID: fmt.Sprintf("call-%06d", i), From: "sip:+4915112345678@carrier.example", To: "sip:100@bridge",
		Trunk: "carrier", Answered: true, SIPStatus: 200, Invite: t0, Answer: &ans, End: t0.Add(time.Minute),
		EndReason: "caller_bye", EndedBy: EndedByCaller, Codec: "PCMU",
		RTP:      &RTPStats{PacketsIn: 3000, PacketsOut: 2990, Lost: 2, JitterMs: 3.5},
		Sessions: []Session{{Region: "eu", SessionID: "sess_1", Purpose: SessionCall, Opened: t0, Closed: t0.Add(time.Minute), CloseReason: "call_end"}},
		Responses: []Response{{Region: "eu", SessionID: "sess_1", ResponseID: "resp_1", Purpose: realtime.PurposeAnswer,
			Status: realtime.StatusCompleted, Created: ans, Done: ans.Add(2 * time.Second), FirstAudioMs: 420,
			Usage: realtime.Usage{Kind: realtime.UsageTokens, TotalTokens: 30, InputTokens: 10, OutputTokens: 20}}},
		Transfers:  []Transfer{{At: t0, Target: "sip:+4930123456789@pbx", Result: "accepted"}},
		Transcript: []Transcript{{At: t0, Role: "caller", Text: "call me on 01511234567"}},
	}
}

func startWriter(t *testing.T, cfg Config, reg prometheus.Registerer) (*Writer, func()) {
	t.Helper()
	w, err := Open(cfg, reg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return w, func() { cancel(); require.NoError(t, <-done) }
}

func readAll(t *testing.T, path string) []*Record {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var recs []*Record
	require.NoError(t, Read(f, func(r *Record) error { recs = append(recs, r); return nil },
		func(e *LineError) { t.Errorf("bad line: %v", e) }))
	return recs
}

func TestWriterRoundTrip(t *testing.T) {
	for _, transcripts := range []bool{false, true} {
		t.Run("transcripts="+strconv.FormatBool(transcripts), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "calls.jsonl")
			reg := prometheus.NewRegistry()
			w, stop := startWriter(t, Config{Path: path, Transcripts: transcripts, Redact: MaskDigits(4)}, reg)
			for i := range 3 {
				require.True(t, w.Submit(sampleRecord(i)))
			}
			stop()
			recs := readAll(t, path)
			require.Len(t, recs, 3)
			r := recs[1]
			require.Equal(t, SchemaVersion, r.Schema)
			require.Equal(t, "call-000001", r.CallID)
			require.Equal(t, "sip:+xxxxxxxxx5678@carrier.example", r.From)
			require.Equal(t, "sip:100@bridge", r.To)
			require.Equal(t, "sip:+xxxxxxxxx6789@pbx", r.Transfers[0].Target)
			require.Equal(t, int64(30), r.Responses[0].Usage.TotalTokens)
			if transcripts {
				require.Equal(t, "call me on xxxxxxx4567", r.Transcript[0].Text)
			} else {
				require.Empty(t, r.Transcript)
			}
			require.Equal(t, 3.0, testutil.ToFloat64(w.m.written))
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NotContains(t, string(b), "12345678")
		})
	}
}

func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calls.jsonl")
	w, err := Open(Config{Path: path, QueueLen: 2}, prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	var queued int
	for i := range 5 { // Run is not started: nothing drains
		if w.Submit(sampleRecord(i)) {
			queued++
		}
	}
	require.Equal(t, 2, queued)
	require.Equal(t, 3.0, testutil.ToFloat64(w.m.dropped.WithLabelValues("queue_full")))

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run writes what is queued, then stops
	require.NoError(t, w.Run(ctx))
	require.False(t, w.Submit(sampleRecord(9)))
	require.Equal(t, 1.0, testutil.ToFloat64(w.m.dropped.WithLabelValues("closed")))
	require.Len(t, readAll(t, path), 2)
}

func TestFullDiskIsCountedNotBlocking(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	w, stop := startWriter(t, Config{Path: "/dev/full", Sync: SyncNone,
		pendingPath: filepath.Join(t.TempDir(), "pending")}, prometheus.NewRegistry())
	for i := range 50 {
		w.Submit(sampleRecord(i))
	}
	stop()
	require.Equal(t, 50.0, testutil.ToFloat64(w.m.errors.WithLabelValues("write")))
	require.Equal(t, 50.0, testutil.ToFloat64(w.m.dropped.WithLabelValues("write_error")))
	require.Zero(t, testutil.ToFloat64(w.m.written))
}

func TestRotation(t *testing.T) {
	t.Run("by size", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "calls.jsonl")
		w, stop := startWriter(t, Config{Path: path, MaxBytes: 4000}, prometheus.NewRegistry())
		for i := range 20 {
			require.True(t, w.Submit(sampleRecord(i)))
		}
		stop()
		files, err := filepath.Glob(path + "*")
		require.NoError(t, err)
		require.Greater(t, len(files), 2)
		total := 0
		for _, f := range files {
			st, err := os.Stat(f)
			require.NoError(t, err)
			require.LessOrEqual(t, st.Size(), int64(4000), f)
			total += len(readAll(t, f))
		}
		require.Equal(t, 20, total)
		require.Equal(t, float64(len(files)-1), testutil.ToFloat64(w.m.rotations))
	})
	t.Run("by day", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "calls.jsonl")
		var mu sync.Mutex
		now := time.Date(2026, 12, 7, 23, 59, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		w, err := Open(Config{Path: path, Daily: true, MaxBytes: -1, now: clock}, prometheus.NewRegistry(), nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		require.True(t, w.Submit(sampleRecord(1)))
		require.Eventually(t, func() bool { return testutil.ToFloat64(w.m.written) == 1 }, 30*time.Second, time.Millisecond)
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
		require.True(t, w.Submit(sampleRecord(2)))
		cancel()
		require.NoError(t, <-done)
		rotated := path + ".20261208T000100Z"
		require.Len(t, readAll(t, rotated), 1)
		require.Equal(t, "call-000002", readAll(t, path)[0].CallID)
	})
}

func TestRepairTail(t *testing.T) {
	whole := `{"schema":1,"call_id":"a"}` + "\n"
	tests := []struct {
		name, content, want, action, quarantined string
	}{
		{name: "empty", content: "", want: ""},
		{name: "whole lines", content: whole + whole, want: whole + whole},
		{name: "torn JSON", content: whole + `{"schema":1,"call_id":"b","sess`, want: whole,
			action: "quarantined", quarantined: `{"schema":1,"call_id":"b","sess`},
		{name: "only a torn line", content: `{"sch`, want: "", action: "quarantined", quarantined: `{"sch`},
		{name: "whole object without newline", content: whole + `{"schema":1,"call_id":"c"}`,
			want: whole + `{"schema":1,"call_id":"c"}` + "\n", action: "newline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "calls.jsonl")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			reg := prometheus.NewRegistry()
			w, stop := startWriter(t, Config{Path: path}, reg)
			stop()
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
			q, _ := filepath.Glob(path + quarantineSuffix + "*")
			if tt.quarantined == "" {
				require.Empty(t, q)
			} else {
				require.Len(t, q, 1)
				b, err := os.ReadFile(q[0])
				require.NoError(t, err)
				require.Equal(t, tt.quarantined, string(b))
			}
			if tt.action != "" {
				require.Equal(t, 1.0, testutil.ToFloat64(w.m.repaired.WithLabelValues(tt.action)))
			}
		})
	}
	t.Run("no file", func(t *testing.T) {
		action, err := repairTail(filepath.Join(t.TempDir(), "none"), "", time.Now())
		require.NoError(t, err)
		require.Empty(t, action)
	})
	t.Run("torn line completed from pending", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "calls.jsonl")
		line := `{"schema":1,"call_id":"b","x":"` + strings.Repeat("y", 9000) + `"}` + "\n"
		require.NoError(t, os.WriteFile(path, []byte(whole+line[:8192-len(whole)]), 0o600))
		// The pending file may hold a stale remainder after the line (a
		// kill between its overwrite and its truncation): ignored.
		require.NoError(t, os.WriteFile(pendingPathFor(path), []byte(line+`er line","x":"zzz"}`+"\n"), 0o600))
		action, err := repairTail(path, pendingPathFor(path), time.Now())
		require.NoError(t, err)
		require.Equal(t, "completed", action)
		got, _ := os.ReadFile(path)
		require.Equal(t, whole+line, string(got))
	})
	t.Run("stale pending is not used", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "calls.jsonl")
		require.NoError(t, os.WriteFile(path, []byte(whole+`{"schema":1,"call_id":"c`), 0o600))
		require.NoError(t, os.WriteFile(pendingPathFor(path), []byte(`{"schema":1,"call_id":"b"}`+"\n"), 0o600))
		action, err := repairTail(path, pendingPathFor(path), time.Now())
		require.NoError(t, err)
		require.Equal(t, "quarantined", action)
		got, _ := os.ReadFile(path)
		require.Equal(t, whole, string(got))
	})
	t.Run("torn line longer than a read block", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "calls.jsonl")
		require.NoError(t, os.WriteFile(path, []byte(whole+`{"x":"`+strings.Repeat("a", 200<<10)), 0o600))
		action, err := repairTail(path, pendingPathFor(path), time.Now())
		require.NoError(t, err)
		require.Equal(t, "quarantined", action)
		got, _ := os.ReadFile(path)
		require.Equal(t, whole, string(got))
	})
}

func TestReadSkipsBadLines(t *testing.T) {
	in := `{"schema":1,"call_id":"a"}` + "\n\nnot json\n" + `{"schema":2,"call_id":"b"}` + "\n" +
		`{"schema":1}` + "\n" + `{"schema":1,"call_id":"c"}`
	var ids []string
	var bad []int
	require.NoError(t, Read(strings.NewReader(in), func(r *Record) error { ids = append(ids, r.CallID); return nil },
		func(e *LineError) { bad = append(bad, e.Line) }))
	require.Equal(t, []string{"a", "c"}, ids)
	require.Equal(t, []int{3, 4, 5}, bad)
}

func TestMaskDigits(t *testing.T) {
	m := MaskDigits(4)
	for in, want := range map[string]string{
		"sip:+4915112345678@carrier:5060": "sip:+xxxxxxxxx5678@carrier:5060",
		"sip:100@pbx":                     "sip:100@pbx",
		"tel:0301234":                     "tel:xxx1234",
		"":                                "",
		"ünïcode 1234567 ok":              "ünïcode xxx4567 ok",
	} {
		require.Equal(t, want, m(in), in)
	}
}

func TestConfigValidate(t *testing.T) {
	require.ErrorContains(t, Config{}.Validate(), "records.path")
	require.ErrorContains(t, Config{Path: "x", Sync: "always"}.Validate(), "records.sync")
	require.ErrorContains(t, Config{Path: "x", QueueLen: -1}.Validate(), "records.queue_len")
	require.NoError(t, Config{Path: "x", Sync: SyncNone}.Validate())
}

// runChild writes records as fast as it can until it is killed. Each
// record's call_id carries its sequence number; the padding varies the line
// length up to 64 KiB, many pages, so the kill often lands inside a
// write(2): Linux stops a multi-page write between pages for a fatal signal.
func runChild(path string) int {
	w, err := Open(Config{Path: path, Transcripts: true, QueueLen: 64}, prometheus.NewRegistry(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go w.Run(context.Background()) //nolint:errcheck // runs until the process is killed
	for i := 0; ; i++ {
		rec := sampleRecord(i)
		rec.Transcript = []Transcript{{Role: "assistant", Text: strings.Repeat("x", (i*7919)%(64<<10))}}
		for !w.Submit(rec) { // wait for room so the sequence has no gaps
			time.Sleep(time.Millisecond)
		}
	}
}

func TestSIGKILLLeavesWholeLines(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "calls.jsonl")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	// Wait for progress (not for a time): a few hundred lines' worth.
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if st, err := os.Stat(path); err == nil && st.Size() >= 8<<20 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal("child wrote too little")
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	require.Error(t, cmd.Wait())

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	torn := b[len(b)-1] != '\n'
	t.Logf("killed after %d bytes; last line torn: %v", len(b), torn)
	// Every whole line is a valid record, in order, none missing.
	whole := b[:bytes.LastIndexByte(b, '\n')]
	lines := bytes.Split(whole, []byte("\n"))
	require.Greater(t, len(lines), 50)
	for i, line := range lines {
		var r Record
		require.NoError(t, json.Unmarshal(line, &r), "line %d", i+1)
		require.Equal(t, fmt.Sprintf("call-%06d", i), r.CallID, "a line is missing or out of order")
	}
	// Opening the file again completes a torn last line from the pending
	// copy: the record being written when the process died is not lost.
	w, stop := startWriter(t, Config{Path: path}, prometheus.NewRegistry())
	stop()
	recs := readAll(t, path)
	want := len(lines)
	if torn {
		want++
		require.Equal(t, 1.0, testutil.ToFloat64(w.m.repaired.WithLabelValues("completed")))
	}
	require.Len(t, recs, want)
	for i, r := range recs {
		require.Equal(t, fmt.Sprintf("call-%06d", i), r.CallID)
	}
	q, _ := filepath.Glob(path + quarantineSuffix + "*")
	require.Empty(t, q)
}

// FuzzRead: a records file may be damaged or hand-edited; Read never
// panics, and every record it passes on has a call_id and a known schema.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"schema":1,"call_id":"a","responses":[{"usage":{"total_tokens":3}}]}` + "\n" + `{"sch`))
	f.Add([]byte("\n\n{}\n[]\nnull\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Read(bytes.NewReader(data), func(r *Record) error {
			if r.CallID == "" || r.Schema > SchemaVersion {
				t.Fatalf("passed on %+v", r)
			}
			return nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
	})
}
