package sip

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip/records"
)

// CapacityGate says whether any region can take a new call (a
// *failover.Pool): a new INVITE gets 503 with Retry-After, and OPTIONS
// says so, while it is Full.
type CapacityGate interface {
	Full() bool
	RetryAfter() time.Duration
}

// maxRecordEntries bounds the DTMF, transfer and swap lists of one record
// (a stuck key must not grow a record without bound); beyond it entries
// are counted in dropped_events.
const maxRecordEntries = 500

// callRecorder gathers what a call's record needs from the conversation
// (a failover.Observer, called on the conversation's goroutine) and from
// the call's loop (DTMF, transfers). The mutex is held only to append.
type callRecorder struct {
	prices map[string]realtime.Prices
	m      *Metrics

	mu  sync.Mutex
	rec records.Record
}

func newCallRecorder(prices map[string]realtime.Prices, m *Metrics) *callRecorder {
	return &callRecorder{prices: prices, m: m}
}

var _ failover.Observer = (*callRecorder)(nil)

// SessionClosed implements failover.Observer.
func (r *callRecorder) SessionClosed(e failover.SessionEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Sessions = append(r.rec.Sessions, records.Session{Region: e.Region, SessionID: e.SessionID,
		Purpose: e.Purpose.String(), Opened: e.Opened.UTC(), Closed: e.Closed.UTC(), CloseReason: e.CloseReason, Error: e.Error})
}

// ResponseDone implements failover.Observer.
func (r *callRecorder) ResponseDone(e failover.ResponseEntry) {
	var usage realtime.Usage
	if e.Event.Response != nil {
		usage = e.Event.Response.Usage
	}
	resp := records.ResponseFromDone(e.Region, e.SessionID, e.Purpose, e.Event, usage, e.Done.UTC())
	if !e.Created.IsZero() {
		resp.Created = e.Created.UTC()
	}
	resp.FirstAudioMs, resp.AudioMs, resp.PlayedMs, resp.LostRace = e.FirstAudioMs, e.AudioMs, e.PlayedMs, e.LostRace
	resp.Account(r.prices[e.Region])
	if r.m != nil {
		status, purpose := resp.Status, string(resp.Purpose)
		r.m.tokens.WithLabelValues(resp.Region, status, purpose, "input").Add(float64(usage.InputTokens - usage.InputCached))
		r.m.tokens.WithLabelValues(resp.Region, status, purpose, "cached_input").Add(float64(usage.InputCached))
		r.m.tokens.WithLabelValues(resp.Region, status, purpose, "output").Add(float64(usage.OutputTokens))
		r.m.wastedTokens.WithLabelValues(resp.Region, purpose).Add(float64(resp.WastedTokens))
		r.m.cost.WithLabelValues(resp.Region).Add(resp.Cost)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Responses = append(r.rec.Responses, resp)
}

// Swapped implements failover.Observer.
func (r *callRecorder) Swapped(e failover.SwapEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rec.Swaps) >= maxRecordEntries {
		r.rec.DroppedEvents++
		return
	}
	r.rec.Swaps = append(r.rec.Swaps, records.Swap{At: e.At.UTC(), From: e.From, To: e.To, Trigger: e.Trigger,
		PauseMs: e.PauseMs, ItemsReplayed: e.ItemsReplayed, TurnLost: e.TurnLost})
}

// Hedged implements failover.Observer.
func (r *callRecorder) Hedged(e failover.HedgeEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rec.Hedges) >= maxRecordEntries {
		r.rec.DroppedEvents++
		return
	}
	r.rec.Hedges = append(r.rec.Hedges, records.Hedge{At: e.At.UTC(), Primary: e.Primary, Hedge: e.Hedge, Trigger: e.Trigger,
		Winner: e.Winner, PauseMs: e.PauseMs})
}

// Transcript implements failover.Observer.
func (r *callRecorder) Transcript(lines []failover.TranscriptLine) {
	now := time.Now().UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range lines {
		r.rec.Transcript = append(r.rec.Transcript, records.Transcript{At: now, Role: l.Role, Text: l.Text})
	}
}

func (r *callRecorder) dtmf(digit rune, via string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rec.DTMF) >= maxRecordEntries {
		r.rec.DroppedEvents++
		return
	}
	r.rec.DTMF = append(r.rec.DTMF, records.DTMF{At: time.Now().UTC(), Digit: string(digit), Via: via})
}

func (r *callRecorder) transfer(target string, ok bool, detail string) {
	if r == nil {
		return
	}
	result := "accepted"
	if !ok {
		result = "failed"
		if detail != "" {
			result += ": " + detail
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rec.Transfers) >= maxRecordEntries {
		r.rec.DroppedEvents++
		return
	}
	r.rec.Transfers = append(r.rec.Transfers, records.Transfer{At: time.Now().UTC(), Target: target, Result: result})
}

// take hands over what was gathered (the conversation has returned).
func (r *callRecorder) take() records.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.rec
	r.rec = records.Record{}
	return rec
}

// endedBy says who ended a call, from its end reason.
func endedBy(r EndReason) string {
	switch r {
	case EndCallerBye, EndCancelled:
		return records.EndedByCaller
	case EndModelHangup:
		return records.EndedByModel
	case EndTransferred:
		return records.EndedByTransfer
	case EndShutdown:
		return records.EndedByShutdown
	}
	return records.EndedByBridge
}

// record writes the call's record (after teardown).
func (c *call) record(ec *endCause, term Termination, answered bool, end time.Time) {
	if c.s.records == nil {
		return
	}
	var rec records.Record
	if c.recorder != nil {
		rec = c.recorder.take()
	}
	rec.Schema = records.SchemaVersion
	rec.CallID, rec.From, rec.To, rec.Trunk = c.info.CallID, c.info.From, c.info.To, c.info.Trunk
	rec.Answered = answered
	rec.Invite, rec.End = c.start.UTC(), end.UTC()
	if answered {
		rec.SIPStatus = sip.StatusOK
		if !c.answeredAt.IsZero() {
			at := c.answeredAt.UTC()
			rec.Answer = &at
		}
	} else if ec.reason != EndCancelled {
		rec.SIPStatus = term.Status
	} else {
		rec.SIPStatus = sip.StatusRequestTerminated
	}
	rec.EndReason, rec.EndedBy = term.Label, endedBy(ec.reason)
	if c.stream != nil {
		ans, _ := c.leg.current()
		rec.Codec = ans.Codec.Name
		st := c.stream.Stats()
		rec.RTP = &records.RTPStats{PacketsIn: st.PacketsIn, PacketsOut: st.PacketsOut, Lost: st.Lost, Late: st.Late}
	}
	if !c.s.records.Submit(&rec) {
		c.log.Debug("sip: call record not queued")
	}
}

// recordRejected writes the record of an INVITE refused before it became
// a call (admission: draining, max_calls, no capacity; validation).
func (s *Server) recordRejected(req *sip.Request, r *rejection) {
	if s.records == nil {
		return
	}
	now := time.Now().UTC()
	rec := records.Record{Schema: records.SchemaVersion, CallID: headerValue(req.CallID()), Trunk: s.trunkName(req),
		SIPStatus: r.reason.Termination().Status, Invite: now, End: now, EndReason: r.reason.String(), EndedBy: records.EndedByBridge}
	if h := req.From(); h != nil {
		rec.From = uriForLog(h.Address)
	}
	if h := req.To(); h != nil {
		rec.To = uriForLog(h.Address)
	}
	s.records.Submit(&rec)
}

// trunkName is the configured trunk the INVITE's source matches ("" with
// no trunks configured).
func (s *Server) trunkName(req *sip.Request) string {
	if len(s.cfg.Trunks) == 0 || req == nil {
		return ""
	}
	src, ok := sourceAddr(req)
	if !ok {
		return ""
	}
	m := matchSource(s.cfg.Trunks, src)
	switch {
	case m.ipTrunk != nil:
		return m.ipTrunk.Name
	case len(m.digest) > 0:
		return m.digest[0].Name
	}
	return ""
}

// runRecords runs the records writer until the calls have drained (ctx is
// cancelled after HangupAll), then lets it write what is queued.
func (s *Server) runRecords(ctx context.Context) error {
	if s.records == nil {
		return nil
	}
	if err := s.records.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// noCapacity is the rejection of a new call while every region is full or
// throttled (Config.Capacity), with the pool's Retry-After; nil otherwise.
func (s *Server) noCapacity() *rejection {
	if s.cfg.Capacity == nil || !s.cfg.Capacity.Full() {
		return nil
	}
	secs := int(math.Ceil(s.cfg.Capacity.RetryAfter().Seconds()))
	r := reject(EndRejectNoCapacity, "no region has a free session")
	r.hdrs = append(r.hdrs, sip.NewHeader("Retry-After", strconv.Itoa(max(secs, 1))))
	return r
}
