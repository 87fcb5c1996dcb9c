package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime/sim"
	"github.com/sipbridge/sipbridge/sip/phone"
	"github.com/sipbridge/sipbridge/sip/records"
)

// maxOverlap is the most sessions of recs open at the same time, as the
// simulator saw them (a session still open counts until now).
func maxOverlap(recs []sim.SessionRecord) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, r := range recs {
		end := r.Ended
		if end.IsZero() {
			end = time.Now()
		}
		edges = append(edges, edge{r.Started, +1}, edge{end, -1})
	}
	// At equal times a close comes before an open: a slot freed and taken
	// in the same instant is not an overlap.
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta
		}
		return edges[i].at.Before(edges[j].at)
	})
	n, most := 0, 0
	for _, e := range edges {
		n += e.delta
		most = max(most, n)
	}
	return most
}

// readRecords parses every line of the records file, failing on any line
// that is not a whole JSON record.
func readRecords(t *testing.T, path string) []records.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	if len(data) > 0 {
		require.Equal(t, byte('\n'), data[len(data)-1], "the file ends with a whole line")
	}
	var out []records.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var rec records.Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), "line %d is valid JSON: %q", n, sc.Text())
		require.Equal(t, records.SchemaVersion, rec.Schema, "line %d", n)
		out = append(out, rec)
	}
	require.NoError(t, sc.Err())
	return out
}

// TestCapacityWeightsRecordsAndReport: three simulated regions with small
// caps (3, 2, 1) and weights 3:2:1 in one tier. Six concurrent calls fill
// them exactly in the ratio of the weights, never more sessions at once
// than a region's cap on the simulator's side; the seventh INVITE gets 503
// with Retry-After, and OPTIONS and /readyz say so. Each call leaves
// exactly one record whose sessions, responses and usage are what the
// simulator served, and `sipbridge report -format json` counts them.
func TestCapacityWeightsRecordsAndReport(t *testing.T) {
	t.Parallel()
	caps := map[string]int{"cap-a": 3, "cap-b": 2, "cap-c": 1}
	voices := map[string]float64{"cap-a": eastHz, "cap-b": westHz, "cap-c": 550}
	var regions []*region
	for _, name := range []string{"cap-a", "cap-b", "cap-c"} {
		r := startRegion(t, name, sim.Config{VoiceHz: voices[name]})
		r.Extra = []string{fmt.Sprintf("max_sessions: %d", caps[name]), fmt.Sprintf("weight: %d", caps[name]), "priority: 0"}
		regions = append(regions, r)
	}
	path := filepath.Join(t.TempDir(), "calls.jsonl")
	br := startBridge(t, "records:\n  path: "+path+"\n", regions...)

	// Six calls, each answered once its session is ready, all kept up.
	type placed struct {
		call *phone.Call
		ctx  context.Context
	}
	var calls []placed
	for range 6 {
		call, ctx := dial(t, br, 2*time.Minute, phone.CallOptions{})
		calls = append(calls, placed{call, ctx})
	}
	held := map[string]int{}
	for _, r := range regions {
		held[r.Name] = len(r.Sim.Sessions())
		require.LessOrEqual(t, maxOverlap(r.Sim.Sessions()), caps[r.Name], "region %s over its cap", r.Name)
	}
	require.Equal(t, caps, held, "six calls split 3:2:1 like the weights, each region up to its cap")

	// Every region is full: the seventh call gets 503 with Retry-After.
	ph := newPhone(t, "udp")
	ctx7, cancel7 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel7()
	_, err := ph.Call(ctx7, phone.CallOptions{Target: br.Target()})
	var rej *phone.ErrRejected
	require.True(t, errors.As(err, &rej), "the seventh call is refused: %v", err)
	require.Equal(t, 503, rej.Code)
	ra := rej.Res.GetHeader("Retry-After")
	require.NotNil(t, ra, "503 carries Retry-After")
	secs, err := strconv.Atoi(strings.TrimSpace(ra.Value()))
	require.NoError(t, err)
	require.Positive(t, secs)

	_, portStr, err := net.SplitHostPort(br.SIPAddr)
	require.NoError(t, err)
	port, err := strconv.Atoi(portStr)
	require.NoError(t, err)
	octx, ocancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ocancel()
	res, err := newPhone(t, "udp").Client().Do(octx, sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", User: "bot", Host: "127.0.0.1", Port: port}))
	require.NoError(t, err)
	require.Equal(t, 503, res.StatusCode, "OPTIONS says no call would be taken")
	code, body := probe(t, br, "/readyz")
	require.Equal(t, 503, code)
	require.Contains(t, body, "no region has a free session")
	_, metrics := probe(t, br, "/metrics")
	require.Contains(t, metrics, `sipbridge_region_sessions{purpose="call",region="cap-a"} 3`)
	require.Contains(t, metrics, `sipbridge_region_max_sessions{region="cap-b"} 2`)

	// Each caller speaks one turn and hears its region's answer (a
	// response with usage).
	for _, c := range calls {
		c.call.Speak(callerHz, 1200*time.Millisecond, -20)
	}
	for _, c := range calls {
		waitFor(t, 45*time.Second, "the answer", func() bool {
			for _, hz := range voices {
				for _, sp := range phone.ToneSpans(c.call.Heard(), hz) {
					if sp.EndMs-sp.StartMs >= 300 {
						return true
					}
				}
			}
			return false
		})
	}
	// Hang up between answers, so what the simulator served is what the
	// bridge was told.
	waitFor(t, 30*time.Second, "no response in progress", func() bool {
		for _, r := range regions {
			for _, ss := range r.Sim.Sessions() {
				for _, resp := range ss.Responses {
					if resp.Status == "in_progress" {
						return false
					}
				}
			}
		}
		return true
	})
	// ... and until the bridge has taken every response.done (a done
	// that crosses the BYE is never acted on).
	for _, r := range regions {
		for _, ss := range r.Sim.Sessions() {
			for _, resp := range ss.Responses {
				if resp.Status != "failed" && resp.Status != "error_event" {
					br.WaitLog(20*time.Second, "failover: response done", "response_id="+resp.ID)
				}
			}
		}
	}
	for _, c := range calls {
		require.NoError(t, c.call.Hangup(c.ctx))
	}
	waitFor(t, 20*time.Second, "seven records", func() bool {
		data, _ := os.ReadFile(path)
		return bytes.Count(data, []byte("\n")) >= 7
	})
	for _, r := range regions {
		require.LessOrEqual(t, maxOverlap(r.Sim.Sessions()), caps[r.Name], "region %s over its cap", r.Name)
	}

	// One valid line per call; each answered call's sessions and responses
	// are those the simulator served, with the usage it reported.
	recs := readRecords(t, path)
	require.Len(t, recs, 7)
	byCall := map[string]records.Record{}
	for _, rec := range recs {
		_, dup := byCall[rec.CallID]
		require.False(t, dup, "one record per call: %s", rec.CallID)
		byCall[rec.CallID] = rec
	}
	simSessions := map[string]sim.SessionRecord{}
	for _, r := range regions {
		for _, s := range r.Sim.Sessions() {
			simSessions[s.ID] = s
		}
	}
	wantResponses := map[string]int{}
	for _, c := range calls {
		rec, ok := byCall[c.call.CallID()]
		require.True(t, ok, "call %s has a record", c.call.CallID())
		require.True(t, rec.Answered)
		require.Equal(t, 200, rec.SIPStatus)
		require.Equal(t, records.EndedByCaller, rec.EndedBy)
		require.Equal(t, "PCMU", rec.Codec)
		require.NotNil(t, rec.RTP)
		require.Positive(t, rec.RTP.PacketsOut)
		require.Len(t, rec.Sessions, 1, "one session per call (no swap)")
		s := rec.Sessions[0]
		ss, ok := simSessions[s.SessionID]
		require.True(t, ok, "session %s was served by a simulator", s.SessionID)
		require.Equal(t, ss.Region, s.Region)
		require.Equal(t, "call", s.Purpose)
		require.Equal(t, "call_end", s.CloseReason)

		var served []sim.ResponseRecord
		for _, r := range ss.Responses {
			if r.Status != "in_progress" && r.Status != "error_event" {
				served = append(served, r)
			}
		}
		require.NotEmpty(t, served, "the greeting was answered")
		require.Len(t, rec.Responses, len(served), "every response.done is in the record")
		for i, r := range rec.Responses {
			want := served[i]
			require.Equal(t, want.ID, r.ResponseID)
			require.Equal(t, s.SessionID, r.SessionID)
			require.Equal(t, want.Status, r.Status)
			require.Equal(t, int64(want.InputTokens), r.Usage.InputTokens, "input tokens of %s", r.ResponseID)
			require.Equal(t, int64(want.OutputTokens), r.Usage.OutputTokens, "output tokens of %s", r.ResponseID)
			require.Equal(t, int64(want.InputTokens+want.OutputTokens), r.Usage.TotalTokens)
			require.Positive(t, r.Usage.OutputAudio, "a spoken answer costs audio tokens")
		}
		wantResponses[s.Region] += len(served)
	}
	var rejected []records.Record
	for _, rec := range recs {
		if !rec.Answered {
			rejected = append(rejected, rec)
		}
	}
	require.Len(t, rejected, 1)
	require.Equal(t, 503, rejected[0].SIPStatus)
	require.Equal(t, "no_capacity", rejected[0].EndReason)
	require.Empty(t, rejected[0].Sessions)

	// The report counts them: sessions and responses per region.
	exit, out, errOut := runBinary(t, 30*time.Second, "report", "-format", "json", path)
	require.Equal(t, 0, exit, errOut)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
	gotSessions, gotResponses, gotFailed := map[string]int{}, map[string]int{}, 0
	for _, row := range rows {
		region, _ := row["region"].(string)
		if region == "" {
			continue // a per-trunk row
		}
		require.NotEmpty(t, row["hour"])
		gotSessions[region] += int(row["sessions"].(float64))
		gotResponses[region] += int(row["responses"].(float64))
		gotFailed += int(row["failed"].(float64))
	}
	require.Equal(t, caps, gotSessions)
	require.Equal(t, wantResponses, gotResponses)
	require.Zero(t, gotFailed)
}

// TestRecordsSurviveSIGKILL: the bridge is killed (SIGKILL) while calls are
// ending and their records being written: every line in the file is a
// whole, valid record.
func TestRecordsSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "kill-east", sim.Config{VoiceHz: eastHz})
	path := filepath.Join(t.TempDir(), "calls.jsonl")
	br := startBridge(t, "records:\n  path: "+path+"\n", east)
	type placed struct {
		call *phone.Call
		ctx  context.Context
	}
	var calls []placed
	for range 8 {
		call, ctx := dial(t, br, time.Minute, phone.CallOptions{})
		calls = append(calls, placed{call, ctx})
	}
	// Hang up all at once and kill the bridge as the first records land.
	for _, c := range calls {
		go func() { _ = c.call.Hangup(c.ctx) }()
	}
	waitFor(t, 20*time.Second, "the first record", func() bool {
		data, _ := os.ReadFile(path)
		return len(data) > 0
	})
	require.NoError(t, br.cmd.Process.Signal(syscall.SIGKILL))
	<-br.exited

	recs := readRecords(t, path)
	require.NotEmpty(t, recs)
	ids := make([]string, 0, len(calls))
	for _, c := range calls {
		ids = append(ids, c.call.CallID())
	}
	for _, rec := range recs {
		require.True(t, slices.Contains(ids, rec.CallID), "a record of one of the calls: %s", rec.CallID)
	}
}

// TestRecordOfASwappedCall: east fails the first answer (server_error
// before audio) and west answers it after the swap. The call's one record
// holds both sessions (east closed on the failure, west at the call's
// end), both responses as the simulators served them (east's failed with
// its error type, west's answer re-asked as a replay), and the swap with
// the pause the caller heard; the report counts east's failure.
func TestRecordOfASwappedCall(t *testing.T) {
	t.Parallel()
	east := startRegion(t, "rec-east", sim.Config{VoiceHz: eastHz})
	west := startRegion(t, "rec-west", sim.Config{VoiceHz: westHz})
	east.Sim.SetFaults(sim.Faults{FailBeforeAudio: 1})
	path := filepath.Join(t.TempDir(), "calls.jsonl")
	br := startBridge(t, "records:\n  path: "+path+"\n  transcripts: true\n", east, west)

	call, ctx := dial(t, br, 90*time.Second, phone.CallOptions{})
	call.Speak(callerHz, 1200*time.Millisecond, -20)
	_, err := call.WaitTone(ctx, westHz, 900, 500*time.Millisecond, 30*time.Second)
	require.NoError(t, err, "west answers the failed turn")
	waitFor(t, 20*time.Second, "west's answer done", func() bool {
		rec, ok := lastSession(west)
		return ok && completedResponses(rec) >= 1
	})
	westDone, _ := lastSession(west)
	for _, resp := range westDone.Responses {
		br.WaitLog(20*time.Second, "failover: response done", "response_id="+resp.ID)
	}
	require.NoError(t, call.Hangup(ctx))
	waitFor(t, 20*time.Second, "the record", func() bool {
		data, _ := os.ReadFile(path)
		return bytes.Count(data, []byte("\n")) >= 1
	})

	recs := readRecords(t, path)
	require.Len(t, recs, 1)
	rec := recs[0]
	require.Equal(t, call.CallID(), rec.CallID)
	require.Len(t, rec.Sessions, 2)
	eastSess, _ := lastSession(east)
	westSess, _ := lastSession(west)
	require.Equal(t, eastSess.ID, rec.Sessions[0].SessionID)
	require.Equal(t, "failed", rec.Sessions[0].CloseReason)
	require.Contains(t, rec.Sessions[0].Error, "response_failed")
	require.Equal(t, westSess.ID, rec.Sessions[1].SessionID)
	require.Equal(t, "call_end", rec.Sessions[1].CloseReason)

	require.Len(t, rec.Responses, 2)
	failed, answer := rec.Responses[0], rec.Responses[1]
	require.Equal(t, eastSess.Responses[0].ID, failed.ResponseID)
	require.Equal(t, "failed", failed.Status)
	require.Equal(t, "server_error", failed.ErrorType)
	require.Equal(t, "answer", string(failed.Purpose))
	require.Zero(t, failed.Usage.OutputTokens, "a response failed before audio produced nothing")
	require.Equal(t, westSess.Responses[0].ID, answer.ResponseID)
	require.Equal(t, "completed", answer.Status)
	require.Equal(t, "replay", string(answer.Purpose), "the failed turn re-asked in the new session")
	require.Equal(t, int64(westSess.Responses[0].OutputTokens), answer.Usage.OutputTokens)
	require.Positive(t, answer.PlayedMs)

	require.Len(t, rec.Swaps, 1)
	sw := rec.Swaps[0]
	require.Equal(t, "rec-east", sw.From)
	require.Equal(t, "rec-west", sw.To)
	require.Equal(t, "response_failed", sw.Trigger)
	require.Positive(t, sw.PauseMs)
	require.Positive(t, sw.ItemsReplayed)
	require.False(t, sw.TurnLost)
	require.NotEmpty(t, rec.Transcript, "records.transcripts keeps the conversation")

	exit, out, errOut := runBinary(t, 30*time.Second, "report", "-format", "json", path)
	require.Equal(t, 0, exit, errOut)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
	failedBy := map[string]int{}
	for _, row := range rows {
		if region, _ := row["region"].(string); region != "" {
			failedBy[region] += int(row["failed"].(float64))
		}
	}
	require.Equal(t, map[string]int{"rec-east": 1, "rec-west": 0}, failedBy)
}
