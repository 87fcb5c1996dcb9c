package records_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip/records"
)

// The server opens one Writer at start, runs it beside the SIP server, and
// each call submits its record in its teardown. Cancel the writer's context
// only after the calls have ended.
func Example() {
	dir, _ := os.MkdirTemp("", "records")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "calls.jsonl")

	w, err := records.Open(records.Config{Path: path, Redact: records.MaskDigits(4)},
		prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	// In the call (sip/call.go finish): assemble and hand over.
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	resp := records.Response{Region: "eu", SessionID: "sess_1", ResponseID: "resp_1",
		Purpose: realtime.PurposeAnswer, Status: realtime.StatusCompleted, AudioMs: 2000, PlayedMs: 2000,
		Usage: realtime.Usage{Kind: realtime.UsageTokens, TotalTokens: 300, InputTokens: 100, OutputTokens: 200, OutputAudio: 200}}
	resp.Account(realtime.Prices{OutputAudio: 64})
	w.Submit(&records.Record{CallID: "abc@carrier", From: "sip:+4915112345678@carrier", Trunk: "carrier",
		Answered: true, SIPStatus: 200, Invite: t0, End: t0.Add(time.Minute), EndReason: "caller_bye",
		EndedBy: records.EndedByCaller, Responses: []records.Response{resp}})

	stop() // at shutdown, after the calls
	<-done

	f, _ := os.Open(path)
	defer f.Close()
	_ = records.Read(f, func(r *records.Record) error {
		fmt.Println(r.CallID, r.From, r.Responses[0].Usage.TotalTokens, r.Responses[0].Cost)
		return nil
	}, nil)
	// Output: abc@carrier sip:+xxxxxxxxx5678@carrier 300 0.0128
}
