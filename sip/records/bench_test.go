package records

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// typicalRecord is a 3-minute answered call: two sessions, eight
// responses, one swap, a few DTMF keys, no transcript.
func typicalRecord() *Record {
	r := sampleRecord(1)
	r.Transcript = nil
	for i := range 7 {
		resp := r.Responses[0]
		resp.ResponseID = "resp_" + string(rune('a'+i))
		r.Responses = append(r.Responses, resp)
	}
	r.Sessions = append(r.Sessions, r.Sessions[0])
	r.Swaps = []Swap{{From: "eu", To: "us", Trigger: "response_failed", PauseMs: 900, ItemsReplayed: 6}}
	r.DTMF = []DTMF{{Digit: "1"}, {Digit: "#"}}
	return r
}

// The call's side of record writing: handing the finished record over.
// It must not allocate (and it runs once per call, at its end, never on
// the per-frame audio path).
func TestSubmitDoesNotAllocate(t *testing.T) {
	w, err := Open(Config{Path: filepath.Join(t.TempDir(), "r.jsonl"), QueueLen: 4}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := typicalRecord()
	// The queue fills after 4; both paths (queued, dropped) are measured.
	if n := testing.AllocsPerRun(100, func() { w.Submit(rec) }); n != 0 {
		t.Fatalf("Submit allocates %v times", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = w.Run(ctx)
}

// BenchmarkSubmit: most submits find the queue full here (the writer is far
// slower than this loop), so it measures both paths; neither allocates.
func BenchmarkSubmit(b *testing.B) {
	w, err := Open(Config{Path: filepath.Join(b.TempDir(), "r.jsonl")}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	rec := typicalRecord()
	b.ReportAllocs()
	for b.Loop() {
		w.Submit(rec)
	}
	b.StopTimer()
	cancel()
	<-done
}

// BenchmarkWriteRecord is the writer goroutine's cost per call: prepare,
// encode, the pending copy and the append (no fsync: SyncNone).
func BenchmarkWriteRecord(b *testing.B) {
	for _, sync := range []SyncPolicy{SyncNone, SyncBatch} {
		b.Run(string(sync), func(b *testing.B) {
			w, err := Open(Config{Path: filepath.Join(b.TempDir(), "r.jsonl"), Sync: sync, MaxBytes: -1}, prometheus.NewRegistry(), nil)
			if err != nil {
				b.Fatal(err)
			}
			rec := typicalRecord()
			b.ReportAllocs()
			for b.Loop() {
				w.write(rec)
				if sync == SyncBatch {
					w.drain() // one fsync per record: the worst case (calls ending one by one)
				}
			}
			b.StopTimer()
			w.closeFile()
			w.pending.Close()
		})
	}
}
