package sip

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip/records"
)

// fakeGate is a CapacityGate the test fills and empties.
type fakeGate struct{ full atomic.Bool }

func (g *fakeGate) Full() bool                { return g.full.Load() }
func (g *fakeGate) RetryAfter() time.Duration { return 2500 * time.Millisecond }

// readLines returns the records in path once there are n of them.
func readLines(t *testing.T, path string, n int) []records.Record {
	t.Helper()
	var out []records.Record
	deadline := time.Now().Add(wait)
	for {
		out = out[:0]
		data, _ := os.ReadFile(path)
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var r records.Record
			require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
			out = append(out, r)
		}
		if len(out) >= n || time.Now().After(deadline) {
			require.Len(t, out, n)
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With no region free, an INVITE gets 503 with the gate's Retry-After
// (rounded up) and OPTIONS 503; the rejected INVITE leaves a record. Once
// a session is free again, calls are taken, and the answered call's record
// carries what the conversation observed, priced per region.
func TestNoCapacityRejectsAndRecords(t *testing.T) {
	gate := &fakeGate{}
	gate.full.Store(true)
	path := filepath.Join(t.TempDir(), "calls.jsonl")
	prices := map[string]realtime.Prices{"east": {OutputAudio: 64, InputText: 4}}
	h := newHarness(t, func(c *Config, _ *harness) {
		c.Capacity, c.Records, c.Prices = gate, records.Config{Path: path}, prices
	})
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	res, err := u.client.Do(ctx, sip.NewRequest(sip.OPTIONS, u.uri("ai")))
	require.NoError(t, err)
	require.Equal(t, sip.StatusServiceUnavailable, res.StatusCode)
	require.Equal(t, "3", res.GetHeader("Retry-After").Value())

	tc, err := u.invite(ctx, offer(4000, "0"))
	var er *sipgo.ErrDialogResponse
	require.True(t, errors.As(err, &er), "%v", err)
	require.Equal(t, sip.StatusServiceUnavailable, er.Res.StatusCode)
	require.Equal(t, "3", er.Res.GetHeader("Retry-After").Value())
	_ = tc
	rejected := readLines(t, path, 1)[0]
	require.False(t, rejected.Answered)
	require.Equal(t, 503, rejected.SIPStatus)
	require.Equal(t, "no_capacity", rejected.EndReason)
	require.Equal(t, records.EndedByBridge, rejected.EndedBy)

	gate.full.Store(false)
	call := u.answeredCall(offer(4000, "0"))
	fc := h.conv()
	obs := fc.info.Observer
	require.NotNil(t, obs, "the conversation gets the call's observer")
	opened := time.Now()
	obs.ResponseDone(failover.ResponseEntry{Region: "east", SessionID: "sess_1", Purpose: realtime.PurposeAnswer,
		Event: realtime.ServerEvent{Type: realtime.EvResponseDone, Response: &realtime.ResponseInfo{ID: "resp_1", Status: realtime.StatusCompleted,
			Usage: realtime.Usage{Kind: realtime.UsageTokens, InputTokens: 100, InputText: 100, OutputTokens: 50, OutputAudio: 50, TotalTokens: 150}}},
		Created: opened, Done: opened.Add(time.Second), FirstAudioMs: 300, AudioMs: 2000, PlayedMs: 1000})
	obs.Swapped(failover.SwapEntry{At: opened, From: "east", To: "west", Trigger: "response_failed", PauseMs: 700, ItemsReplayed: 3, Outcome: "answered"})
	obs.Hedged(failover.HedgeEntry{At: opened, Primary: "east", Hedge: "west", Trigger: "slow_first_audio", Winner: "hedge", PauseMs: 900})
	obs.SessionClosed(failover.SessionEntry{Region: "east", SessionID: "sess_1", Purpose: failover.SessionCall, Opened: opened, Closed: opened.Add(time.Second), CloseReason: "failed"})
	call.bye()
	h.waitIdle()

	recs := readLines(t, path, 2)
	rec := recs[1]
	require.True(t, rec.Answered)
	require.Equal(t, 200, rec.SIPStatus)
	require.NotNil(t, rec.Answer)
	require.Equal(t, records.EndedByCaller, rec.EndedBy)
	require.Equal(t, "PCMU", rec.Codec)
	require.Len(t, rec.Sessions, 1)
	require.Equal(t, "failed", rec.Sessions[0].CloseReason)
	require.Len(t, rec.Responses, 1)
	r := rec.Responses[0]
	require.Equal(t, "resp_1", r.ResponseID)
	require.Equal(t, int64(150), r.Usage.TotalTokens)
	require.InDelta(t, (100*4+50*64)/1e6, r.Cost, 1e-9, "priced at east's prices")
	require.Equal(t, int64(25), r.WastedTokens, "half the audio was never heard")
	require.Len(t, rec.Swaps, 1)
	require.Equal(t, int64(700), rec.Swaps[0].PauseMs)
	require.Equal(t, []records.Hedge{{At: opened.UTC(), Primary: "east", Hedge: "west", Trigger: "slow_first_audio", Winner: "hedge", PauseMs: 900}}, rec.Hedges)

	m := h.srv.metrics
	require.Equal(t, 50.0, testutil.ToFloat64(m.tokens.WithLabelValues("east", "completed", "answer", "output")))
	require.Equal(t, 100.0, testutil.ToFloat64(m.tokens.WithLabelValues("east", "completed", "answer", "input")))
	require.Equal(t, 25.0, testutil.ToFloat64(m.wastedTokens.WithLabelValues("east", "answer")))
	require.InDelta(t, r.Cost, testutil.ToFloat64(m.cost.WithLabelValues("east")), 1e-12)
}
