package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

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
// received audio) that heard no answer.
func (t *turnTrace) unanswered(c *phone.Call, spoke time.Time, heardMs int, why error) {
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
	fmt.Fprintf(t.w, "time=%s call_id=%s heard_ms=%d call_ended=%s why=%q\n",
		spoke.UTC().Format("2006-01-02T15:04:05.000Z"), c.CallID(), heardMs, ended, why.Error())
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
			if s, perr := strconv.Atoi(strings.TrimSpace(h.Value())); perr == nil && s > 0 {
				return time.Duration(min(s, 30)) * time.Second
			}
		}
	}
	return time.Second
}
