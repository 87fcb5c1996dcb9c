package sip

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// transferTimeout bounds a whole transfer: REFER answered and a final
// NOTIFY received (the target may ring for a while).
const transferTimeout = 60 * time.Second

// notifyStatus is one NOTIFY of our REFER subscription (RFC 3515 §2.4.5).
type notifyStatus struct {
	code       int // sipfrag status; 0 when the NOTIFY had no sipfrag
	phrase     string
	terminated bool // Subscription-State: terminated
}

// transfer sends a blind transfer (REFER, RFC 3515) to target and follows
// its NOTIFY progress until a final status. It reports whether the caller
// reached the target and a detail for the conversation.
func (l *leg) transfer(target string) (bool, string) {
	uri, err := parseReferTarget(target)
	if err != nil {
		l.s.metrics.transfers.WithLabelValues("invalid_target").Inc()
		l.log.Warn("transfer target rejected", "error", err)
		return false, "invalid transfer target"
	}
	if !l.waitConfirmed(l.s.cfg.ACKTimeout) {
		l.s.metrics.transfers.WithLabelValues("not_established").Inc()
		return false, "the call is not established yet"
	}
	ctx, cancel := context.WithTimeout(l.ctx, transferTimeout)
	defer cancel()

	l.mu.Lock()
	l.referSent = true
	for len(l.notifies) > 0 { // stale progress of an earlier transfer
		<-l.notifies
	}
	l.mu.Unlock()

	refer := l.newRequest(sip.REFER)
	refer.AppendHeader(sip.NewHeader("Refer-To", "<"+uri+">"))
	// RFC 3892: who asked for the transfer, the identity the caller dialled.
	refer.AppendHeader(sip.NewHeader("Referred-By", "<"+uriForLog(l.req.To().Address)+">"))
	l.log.Info("transfer: sending REFER", "target", uri)
	res, err := l.dlg.Do(ctx, refer)
	if err != nil {
		l.s.metrics.transfers.WithLabelValues("refer_failed").Inc()
		l.log.Warn("transfer: REFER failed", "error", err)
		return false, "REFER failed: " + sanitizePhrase(err.Error())
	}
	if res.StatusCode >= 300 {
		l.s.metrics.transfers.WithLabelValues("refer_rejected").Inc()
		detail := fmt.Sprintf("REFER rejected: %d %s", res.StatusCode, sanitizePhrase(res.Reason))
		l.log.Warn("transfer: "+detail, "target", uri)
		return false, detail
	}
	l.log.Info("transfer: REFER accepted", "status", res.StatusCode)
	for {
		select {
		case n := <-l.notifies:
			switch {
			case n.code >= 300:
				l.s.metrics.transfers.WithLabelValues("target_failed").Inc()
				detail := fmt.Sprintf("transfer failed: %d %s", n.code, n.phrase)
				l.log.Warn("transfer: "+detail, "target", uri)
				return false, detail
			case n.code >= 200:
				l.s.metrics.transfers.WithLabelValues("success").Inc()
				l.log.Info("transfer: target answered", "status", n.code)
				return true, fmt.Sprintf("%d %s", n.code, n.phrase)
			case n.terminated:
				l.s.metrics.transfers.WithLabelValues("target_failed").Inc()
				return false, "transfer subscription ended without a final status"
			default:
				l.log.Debug("transfer: progress", "status", n.code)
			}
		case <-ctx.Done():
			if l.ctx.Err() != nil {
				return false, "the call ended during the transfer"
			}
			l.s.metrics.transfers.WithLabelValues("timeout").Inc()
			return false, "transfer timed out waiting for the target"
		}
	}
}

// onNotify takes the NOTIFYs of our REFER subscription (RFC 3515 §2.4.4:
// Event: refer, body message/sipfrag with the target's status line).
func (l *leg) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	ev := req.GetHeader("Event")
	if ev == nil {
		_ = l.s.respond(req, tx, sip.StatusBadRequest, "Bad Request: missing Event", nil)
		return
	}
	pkg, _, _ := strings.Cut(ev.Value(), ";")
	if !strings.EqualFold(strings.TrimSpace(pkg), "refer") {
		// RFC 6665 §8.2.1: an event package we do not know.
		_ = l.s.respond(req, tx, 489, "Bad Event", nil, sip.NewHeader("Allow-Events", "refer"))
		return
	}
	l.mu.Lock()
	sent := l.referSent
	l.mu.Unlock()
	if !sent {
		// RFC 6665 §4.1.3: a NOTIFY matching no subscription.
		_ = l.s.respond(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil)
		return
	}
	if err := l.dlg.ReadRequest(req, tx); err != nil {
		// RFC 3261 §12.2.2: lower CSeq than the last one: out of order.
		_ = l.s.respond(req, tx, sip.StatusInternalServerError, "Server Internal Error: CSeq out of order", nil)
		return
	}
	var st notifyStatus
	if ss := req.GetHeader("Subscription-State"); ss != nil {
		state, _, _ := strings.Cut(ss.Value(), ";")
		st.terminated = strings.EqualFold(strings.TrimSpace(state), "terminated")
	}
	if body := req.Body(); len(body) > 0 {
		if ct := req.ContentType(); ct != nil {
			if mt, _, err := mime.ParseMediaType(ct.Value()); err != nil || mt != "message/sipfrag" {
				_ = l.s.respond(req, tx, sip.StatusUnsupportedMediaType, "Unsupported Media Type", nil,
					sip.NewHeader("Accept", "message/sipfrag"))
				return
			}
		}
		code, phrase, err := parseSipfrag(body)
		if err != nil {
			_ = l.s.respond(req, tx, sip.StatusBadRequest, "Bad Request: invalid sipfrag", nil)
			return
		}
		st.code, st.phrase = code, phrase
	}
	_ = l.s.respond(req, tx, sip.StatusOK, "OK", nil)
	select {
	case l.notifies <- st:
	default:
		l.log.Warn("transfer: NOTIFY dropped, progress queue full", "status", st.code)
	}
}

var errSipfrag = errors.New("sip: invalid sipfrag")

// parseSipfrag reads the status line a message/sipfrag body starts with
// (RFC 3420; RFC 3515 §2.4.5: "SIP/2.0 200 OK").
func parseSipfrag(body []byte) (int, string, error) {
	s := strings.TrimLeft(string(body), " \t\r\n")
	line, _, _ := strings.Cut(s, "\n")
	line = strings.TrimRight(line, "\r \t")
	version, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.EqualFold(version, "SIP/2.0") {
		return 0, "", errSipfrag
	}
	codeStr, phrase, _ := strings.Cut(rest, " ")
	if len(codeStr) != 3 {
		return 0, "", errSipfrag
	}
	code, err := strconv.Atoi(codeStr)
	if err != nil || code < 100 || code > 699 {
		return 0, "", errSipfrag
	}
	return code, sanitizePhrase(phrase), nil
}

// parseReferTarget validates a transfer target from the AI side and returns
// the URI to put in Refer-To: a sip:/sips: URI with a host, or a tel: URI
// (RFC 3966) with digits. Nothing that could break the header (CR, LF, NUL,
// angle brackets, quotes, spaces) passes.
func parseReferTarget(target string) (string, error) {
	t := strings.TrimSpace(target)
	t = strings.TrimSuffix(strings.TrimPrefix(t, "<"), ">")
	if t == "" || len(t) > 512 {
		return "", fmt.Errorf("%w: empty or too long", ErrInvalidTarget)
	}
	for i := 0; i < len(t); i++ {
		if ch := t[i]; ch <= ' ' || ch >= 0x7f || ch == '<' || ch == '>' || ch == '"' {
			return "", fmt.Errorf("%w: character %q", ErrInvalidTarget, ch)
		}
	}
	scheme, rest, ok := strings.Cut(t, ":")
	if !ok {
		return "", fmt.Errorf("%w: no scheme", ErrInvalidTarget)
	}
	switch strings.ToLower(scheme) {
	case "sip", "sips":
		var u sip.Uri
		if err := sip.ParseUri(t, &u); err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalidTarget, err)
		}
		if u.Host == "" || u.Wildcard {
			return "", fmt.Errorf("%w: no host", ErrInvalidTarget)
		}
		return t, nil
	case "tel":
		num, _, _ := strings.Cut(rest, ";")
		digits := 0
		for i := 0; i < len(num); i++ {
			ch := num[i]
			switch {
			case ch >= '0' && ch <= '9':
				digits++
			case ch == '+' && i == 0, ch == '-', ch == '.', ch == '(', ch == ')',
				ch == '*', ch == '#', ch >= 'A' && ch <= 'D', ch >= 'a' && ch <= 'd':
			default:
				return "", fmt.Errorf("%w: tel number character %q", ErrInvalidTarget, ch)
			}
		}
		if digits == 0 {
			return "", fmt.Errorf("%w: tel URI without digits", ErrInvalidTarget)
		}
		return "tel:" + rest, nil
	default:
		return "", fmt.Errorf("%w: scheme %q", ErrInvalidTarget, sanitizePhrase(scheme))
	}
}
