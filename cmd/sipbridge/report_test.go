package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip/records"
)

// syntheticRecords is two hours of four calls with known answers (see
// the expectations in TestReportArithmetic).
func syntheticRecords() []*records.Record {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 7, h, m, 0, 0, time.UTC) }
	ans := func(h, m int) *time.Time { t := at(h, m); return &t }
	usage := func(n int64) realtime.Usage {
		return realtime.Usage{Kind: realtime.UsageTokens, TotalTokens: n, InputTokens: n / 2, OutputTokens: n - n/2}
	}
	return []*records.Record{
		{CallID: "c1", Trunk: "t1", Answered: true, Invite: at(8, 5), Answer: ans(8, 5), End: at(8, 20),
			Sessions: []records.Session{
				{Region: "eu", SessionID: "sess_a", Purpose: records.SessionCall, Opened: at(8, 5), Closed: at(8, 6), CloseReason: "swap"},
				{Region: "us", SessionID: "sess_b", Purpose: records.SessionCall, Opened: at(8, 6), Closed: at(8, 20), CloseReason: "call_end"}},
			Responses: []records.Response{
				{Region: "eu", SessionID: "sess_a", ResponseID: "resp_1", Purpose: realtime.PurposeAnswer, Status: "completed",
					Done: at(8, 5), Usage: usage(100), Cost: 0.01},
				{Region: "eu", SessionID: "sess_a", ResponseID: "resp_2", Purpose: realtime.PurposeAnswer, Status: "failed",
					ErrorType: "server_error", ErrorMessage: "The server had an error", Done: at(8, 6)},
				{Region: "us", SessionID: "sess_b", ResponseID: "resp_3", Purpose: realtime.PurposeReplay, Status: "completed",
					Done: at(8, 7), Usage: usage(200), Cost: 0.02, WastedTokens: 50}},
			Swaps: []records.Swap{{At: at(8, 6), From: "eu", To: "us", Trigger: "response_failed", PauseMs: 800, ItemsReplayed: 3}}},
		{CallID: "c2", Trunk: "t2", Answered: true, Invite: at(8, 30), Answer: ans(8, 30), End: at(8, 45),
			Sessions: []records.Session{
				{Region: "eu", SessionID: "sess_c", Purpose: records.SessionCall, Opened: at(8, 30), Closed: at(8, 32)},
				{Region: "us", SessionID: "sess_d", Purpose: records.SessionCall, Opened: at(8, 32), Closed: at(8, 45), Error: "connection reset"}},
			Responses: []records.Response{
				{Region: "eu", SessionID: "sess_c", ResponseID: "resp_4", Status: "failed", ErrorType: "invalid_request_error",
					ErrorCode: "inference_rate_limit_exceeded", Done: at(8, 31)},
				{Region: "eu", SessionID: "sess_c", ResponseID: "resp_5", Status: "failed", ErrorType: "server_error", Done: at(8, 32)}},
			Swaps:  []records.Swap{{At: at(8, 32), From: "eu", To: "us", Trigger: "response_failed", PauseMs: 1500, TurnLost: true}},
			Hedges: []records.Hedge{{At: at(8, 40), Primary: "us", Hedge: "eu", Trigger: "slow_first_audio", Winner: "primary"}}},
		{CallID: "c3", Trunk: "t1", Answered: true, Invite: at(9, 10), Answer: ans(9, 10), End: at(9, 15),
			Sessions: []records.Session{{Region: "eu", SessionID: "sess_e", Opened: at(9, 10), Closed: at(9, 12)}},
			Responses: []records.Response{{Region: "eu", SessionID: "sess_e", ResponseID: "resp_6", Status: "completed",
				Done: at(9, 11), Usage: usage(50), Cost: 0.005}},
			Swaps: []records.Swap{{At: at(9, 12), From: "eu", To: "us", Trigger: "session_closed", PauseMs: 300}}},
		{CallID: "c4", Trunk: "t2", Answered: false, SIPStatus: 503, Invite: at(9, 20), End: at(9, 20), EndReason: "no_capacity"},
	}
}

func writeRecords(t *testing.T, recs []*records.Record, extra string) string {
	t.Helper()
	var b bytes.Buffer
	for _, r := range recs {
		r.Schema = records.SchemaVersion
		line, err := json.Marshal(r)
		require.NoError(t, err)
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteString(extra)
	path := filepath.Join(t.TempDir(), "calls.jsonl")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	return path
}

func TestReportArithmetic(t *testing.T) {
	regions, trunks := newReportTable(false), newReportTable(true)
	for _, r := range syntheticRecords() {
		regions.add(r)
		trunks.add(r)
	}
	strip := func(rows []*reportRow) []reportRow {
		out := make([]reportRow, len(rows))
		for i, r := range rows {
			out[i] = *r
			out[i].hour, out[i].pauses, out[i].Failures = time.Time{}, nil, nil
		}
		return out
	}
	rows := regions.finish()
	require.Equal(t, []reportRow{
		{Hour: "2026-12-07T08:00:00Z", Region: "eu", Sessions: 2, Responses: 4, Failed: 3,
			FailedByType: map[string]int{"server_error": 2, "invalid_request_error": 1}, FailurePct: 75,
			SwapsAway: 2, PauseP50Ms: 800, PauseP95Ms: 1500, TurnsLost: 1, Tokens: 100, Cost: 0.01},
		{Hour: "2026-12-07T08:00:00Z", Region: "us", Sessions: 2, SessionErrors: 1, Responses: 1, Hedges: 1,
			Tokens: 200, Cost: 0.02, WastedTokens: 50},
		{Hour: "2026-12-07T09:00:00Z", Region: "eu", Sessions: 1, Responses: 1, SwapsAway: 1,
			PauseP50Ms: 300, PauseP95Ms: 300, Tokens: 50, Cost: 0.005},
	}, strip(rows))

	worst := worstRow(rows)
	require.Equal(t, "eu", worst.Region)
	var ids []string
	for _, f := range worst.Failures {
		ids = append(ids, f.SessionID+"/"+f.ResponseID)
	}
	require.Equal(t, []string{"sess_a/resp_2", "sess_c/resp_4", "sess_c/resp_5"}, ids)

	require.Equal(t, []reportRow{
		{Hour: "2026-12-07T08:00:00Z", Trunk: "t1", Calls: 1, Sessions: 2, Responses: 3, Failed: 1,
			FailedByType: map[string]int{"server_error": 1}, FailurePct: 33.3, SwapsAway: 1, PauseP50Ms: 800,
			PauseP95Ms: 800, Tokens: 300, Cost: 0.03, WastedTokens: 50},
		{Hour: "2026-12-07T08:00:00Z", Trunk: "t2", Calls: 1, Sessions: 2, SessionErrors: 1, Responses: 2, Failed: 2,
			FailedByType: map[string]int{"server_error": 1, "invalid_request_error": 1}, FailurePct: 100,
			SwapsAway: 1, Hedges: 1, PauseP50Ms: 1500, PauseP95Ms: 1500, TurnsLost: 1},
		{Hour: "2026-12-07T09:00:00Z", Trunk: "t1", Calls: 1, Sessions: 1, Responses: 1, SwapsAway: 1,
			PauseP50Ms: 300, PauseP95Ms: 300, Tokens: 50, Cost: 0.005},
		{Hour: "2026-12-07T09:00:00Z", Trunk: "t2", Calls: 1, Rejected: 1},
	}, strip(trunks.finish()))
}

func TestPercentile(t *testing.T) {
	for _, tt := range []struct {
		in   []int64
		p    float64
		want int64
	}{
		{nil, 50, 0},
		{[]int64{7}, 95, 7},
		{[]int64{100, 200, 300, 400}, 50, 200},
		{[]int64{100, 200, 300, 400}, 95, 400},
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 95, 19},
	} {
		require.Equal(t, tt.want, percentile(tt.in, tt.p), "%v p%v", tt.in, tt.p)
	}
}

func runReport(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"report"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestReportJSONShape(t *testing.T) {
	path := writeRecords(t, syntheticRecords(), "")
	code, out, stderr := runReport(t, "-format", "json", path, path) // named twice: counted once
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "4 duplicate records")
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 3)
	for _, r := range rows {
		for _, key := range []string{"hour", "region", "sessions", "responses", "failed"} {
			require.Contains(t, r, key)
		}
	}
	require.Equal(t, "2026-12-07T08:00:00Z", rows[0]["hour"])
	require.Equal(t, "eu", rows[0]["region"])
	require.Equal(t, 2.0, rows[0]["sessions"])
	require.Equal(t, 4.0, rows[0]["responses"])
	require.Equal(t, 3.0, rows[0]["failed"])

	code, out, _ = runReport(t, "-format", "json", "-by", "trunk", path)
	require.Equal(t, 0, code)
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 4)
	require.Equal(t, "t2", rows[3]["trunk"])
	require.Equal(t, 1.0, rows[3]["rejected"])
}

func TestReportCSVShape(t *testing.T) {
	path := writeRecords(t, syntheticRecords(), "")
	code, out, stderr := runReport(t, "-format", "csv", path)
	require.Equal(t, 0, code, stderr)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, reportCSVHeader, rows[0])
	require.Len(t, rows, 4)
	require.Equal(t, []string{"2026-12-07T08:00:00Z", "eu", "2", "0", "4", "3", "invalid_request_error=1;server_error=2",
		"75.0", "2", "0", "800", "1500", "1", "100", "0.01", "0"}, rows[1])

	code, out, _ = runReport(t, "-format", "csv", "-by", "trunk", path)
	require.Equal(t, 0, code)
	rows, err = csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"hour", "trunk", "calls", "rejected", "sessions"}, rows[0][:5])
	require.Len(t, rows[0], len(reportCSVHeader)+2)
	require.Equal(t, []string{"2026-12-07T09:00:00Z", "t2", "1", "1", "0"}, rows[4][:5])
}

func TestReportTextAndPNG(t *testing.T) {
	// Two files; the second has a torn line and a line from a newer schema.
	recs := syntheticRecords()
	a := writeRecords(t, recs[:2], "")
	b := writeRecords(t, recs[2:], `{"schema":99,"call_id":"x"}`+"\n"+`{"schema":1,"call_`)
	pngPath := filepath.Join(t.TempDir(), "report.png")
	code, out, stderr := runReport(t, "-png", pngPath, a, b)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "line 3: schema 99")
	require.Contains(t, stderr, "line 4:")
	require.Contains(t, out, "Worst hour: 2026-12-07T08:00:00Z, region eu: 3 of 4 responses failed")
	require.Contains(t, out, "session_id=sess_c  response_id=resp_4  error=invalid_request_error  code=inference_rate_limit_exceeded")
	require.Contains(t, out, "Per hour and trunk")
	require.Regexp(t, `2026-12-07 08h\s+eu\s+2\s+4\s+3\s+75.0`, out)

	f, err := os.Open(pngPath)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Equal(t, 1200, img.Bounds().Dx())
	require.Equal(t, 900, img.Bounds().Dy())
	colours := map[[3]uint32]bool{}
	for y := 0; y < 900; y += 3 {
		for x := 0; x < 1200; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 12, g >> 12, b >> 12}] = true
		}
	}
	require.Greater(t, len(colours), 5, "the picture is blank")
}

func TestReportErrors(t *testing.T) {
	code, _, stderr := runReport(t)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "no records file")
	code, _, stderr = runReport(t, "-format", "xml", "x")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `-format "xml"`)
	code, _, stderr = runReport(t, "-by", "day", "x")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `-by "day"`)
	code, _, stderr = runReport(t, filepath.Join(t.TempDir(), "missing.jsonl"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "missing.jsonl")
	empty := writeRecords(t, nil, "")
	code, out, _ := runReport(t, empty)
	require.Equal(t, 0, code)
	require.Contains(t, out, "No failures.")
	code, out, _ = runReport(t, "-format", "json", empty)
	require.Equal(t, 0, code)
	require.Equal(t, "[]\n", out, "an empty report is still a list")
}
