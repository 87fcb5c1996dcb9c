package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip/phone"
)

// turnTrace writes one line per unanswered caller turn (with -log: next to
// the bridge's log, as LOG.turns), carrying the SIP Call-ID, which is the
// bridge's call_id, so that each can be matched with the bridge's log.
type turnTrace struct {
	mu sync.Mutex
	w  io.WriteCloser // nil: no trace
}

func newTurnTrace(path string) (*turnTrace, error) {
	if path == "" {
		return &turnTrace{}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &turnTrace{w: f}, nil
}

// unanswered records a turn spoken at spoke (heardMs into the call's
// received audio) that heard no answer in its wait.
func (t *turnTrace) unanswered(c *phone.Call, spoke time.Time, heardMs int, kind unansweredKindT, why error) {
	if t.w == nil {
		return
	}
	ended := "no"
	select {
	case <-c.Ended():
		ended = "yes"
	default:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "time=%s call_id=%s kind=%s heard_ms=%d call_ended=%s why=%q\n",
		spoke.UTC().Format("2006-01-02T15:04:05.000Z"), c.CallID(), unansweredNames[kind], heardMs, ended, why.Error())
}

func (t *turnTrace) Close() error {
	if t.w == nil {
		return nil
	}
	return t.w.Close()
}

// redialAfter is how long a caller whose call was refused waits before
// calling again: the 503's Retry-After, else a second.
func redialAfter(err error) time.Duration {
	var rej *phone.ErrRejected
	if errors.As(err, &rej) && rej.Res != nil {
		if h := rej.Res.GetHeader("Retry-After"); h != nil {
			if d, ok := realtime.ParseRetryAfter(h.Value(), time.Now()); ok && d > 0 {
				return min(d, 30*time.Second)
			}
		}
	}
	return time.Second
}

// unansweredKindT sorts the turns whose answer the caller did not hear
// within its wait (the next turn is due): a turn is only unanswered for
// the bridge if it sent no answer at all.
type unansweredKindT int

const (
	// unansweredNone: no answer in the audio the bridge sent for a whole
	// turn interval after the end of speech (the bridge's failure).
	unansweredNone unansweredKindT = iota
	// unansweredLate: the answer is there within a turn interval of the
	// call's received audio, but that audio reached the caller after the
	// wait ran out: RTP arrived late (seen only while the machine, the
	// load generator included, was starved of CPU).
	unansweredLate
	// unansweredDropped: the bridge ended the call during the wait (a
	// dropped call, counted as such too).
	unansweredDropped
	numUnanswered
)

var unansweredNames = [numUnanswered]string{"no_answer", "late_delivery", "call_dropped"}

// unansweredKind tells why a turn whose speech ended at endMs (position in
// the received audio) heard no answer in its wait: it waits (at most a few
// seconds of wall time) until a turn interval of audio after endMs has been
// received and looks for an answer tone of 300 ms in it.
func unansweredKind(ctx context.Context, c *phone.Call, endMs int, interval time.Duration) unansweredKindT {
	select {
	case <-c.Ended():
		return unansweredDropped
	default:
	}
	span := int(interval / time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for c.HeardMs() < endMs+span && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return unansweredNone
		case <-c.Ended():
			return unansweredDropped
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The calls track their answer tones rather than record (Heard is
	// empty): WaitTone with no timeout looks once at what was tracked.
	for _, hz := range []float64{440, 660} {
		if at, err := c.WaitTone(ctx, hz, endMs, 300*time.Millisecond, 0); err == nil && at < endMs+span {
			return unansweredLate
		}
	}
	return unansweredNone
}

func unansweredSummary(n [numUnanswered]int64) string {
	return fmt.Sprintf("no answer sent %d, answer sent but delivered after the wait %d, call dropped meanwhile %d",
		n[unansweredNone], n[unansweredLate], n[unansweredDropped])
}
