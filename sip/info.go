package sip

import (
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// DTMF in SIP INFO: the legacy usage RFC 6086 §2 keeps working (no
// Info-Package), with the bodies PBXs and SBCs send:
//
//	application/dtmf-relay   Signal=5\r\nDuration=160   (Cisco, Asterisk, FreeSWITCH)
//	application/dtmf         5
//
// The key goes to the conversation as an RFC 4733 event does.

// Content types of DTMF INFO bodies.
const (
	ctDTMFRelay = "application/dtmf-relay"
	ctDTMF      = "application/dtmf"
	// maxDTMFBody bounds the bodies we read (a real one is ~25 bytes).
	maxDTMFBody = 1024
)

var errDTMFBody = errors.New("sip: invalid DTMF body")

// onInfo takes INFO in a dialog (routed by Server.inDialog: 481
// outside one).
func (l *leg) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	if !l.readInDialog(req, tx) { // update.go
		return
	}
	body := req.Body()
	if len(body) == 0 {
		// An empty INFO carries nothing (some peers use it as a keep-alive).
		_ = l.s.respond(req, tx, sip.StatusOK, "OK", nil)
		return
	}
	ct := req.ContentType()
	if ct == nil {
		// RFC 3261 §20.15: a non-empty body MUST have a Content-Type.
		l.s.rejectRequest(req, tx, reject(EndRejectBadRequest, "body without Content-Type"))
		return
	}
	mt, _, err := mime.ParseMediaType(ct.Value())
	var digit rune
	var durMs int
	switch {
	case err != nil:
		err = fmt.Errorf("%w: content type: %w", errDTMFBody, err)
	case mt == ctDTMFRelay:
		digit, durMs, err = parseDTMFRelay(body)
	case mt == ctDTMF:
		digit, err = parseDTMFPlain(body)
	default:
		// RFC 3261 §21.4.13 (RFC 6086 §4.2.2: an INFO whose body we do
		// not understand): 415 with what we accept.
		_ = l.s.respond(req, tx, sip.StatusUnsupportedMediaType, "Unsupported Media Type", nil,
			sip.NewHeader("Accept", ctDTMFRelay+", "+ctDTMF))
		return
	}
	if err != nil {
		l.s.rejectRequest(req, tx, reject(EndRejectBadRequest, "invalid DTMF body"))
		return
	}
	_ = l.s.respond(req, tx, sip.StatusOK, "OK", nil)
	l.deliverDTMF(digit, durMs, "info")
}

// deliverDTMF passes a key to the conversation (RFC 4733 events come
// through the media events, INFO through here). Keys before the call is
// answered are dropped: there is no conversation listening yet.
func (l *leg) deliverDTMF(digit rune, durMs int, source string) {
	// answered is set after the conversation is (an atomic publishes it).
	if !l.answered.Load() {
		l.log.Debug("dtmf before answer dropped", "digit", string(digit), "source", source)
		return
	}
	l.report(legEvent{kind: legDTMF, digit: digit, durMs: durMs})
}

// parseDTMFRelay reads an application/dtmf-relay body: "Signal=<key>"
// and an optional "Duration=<ms>" lines (CRLF or LF; names and spacing
// lenient). Other lines are ignored.
func parseDTMFRelay(body []byte) (rune, int, error) {
	if len(body) > maxDTMFBody {
		return 0, 0, fmt.Errorf("%w: %d bytes", errDTMFBody, len(body))
	}
	var (
		digit rune
		dur   int
		found bool
	)
	for line := range strings.SplitSeq(string(body), "\n") {
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		switch {
		case strings.EqualFold(name, "Signal"):
			d, err := dtmfKey(val)
			if err != nil {
				return 0, 0, err
			}
			digit, found = d, true
		case strings.EqualFold(name, "Duration"):
			v, err := strconv.Atoi(val)
			if err != nil || v < 0 || v > 60000 {
				return 0, 0, fmt.Errorf("%w: duration %q", errDTMFBody, sanitizePhrase(val))
			}
			dur = v
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("%w: no Signal", errDTMFBody)
	}
	return digit, dur, nil
}

// parseDTMFPlain reads an application/dtmf body: the key alone.
func parseDTMFPlain(body []byte) (rune, error) {
	if len(body) > maxDTMFBody {
		return 0, fmt.Errorf("%w: %d bytes", errDTMFBody, len(body))
	}
	return dtmfKey(strings.TrimSpace(string(body)))
}

// dtmfKey maps a signal to its key: 0-9, *, #, A-D (either case), and the
// RFC 4733 event codes 10-15 some gateways send for * # A B C D.
func dtmfKey(s string) (rune, error) {
	if len(s) == 1 {
		switch ch := s[0]; {
		case ch >= '0' && ch <= '9', ch == '*', ch == '#', ch >= 'A' && ch <= 'D':
			return rune(ch), nil
		case ch >= 'a' && ch <= 'd':
			return rune(ch - 'a' + 'A'), nil
		}
	}
	if len(s) == 2 && s[0] == '1' && s[1] >= '0' && s[1] <= '5' {
		return rune("*#ABCD"[s[1]-'0']), nil
	}
	return 0, fmt.Errorf("%w: signal %q", errDTMFBody, sanitizePhrase(s))
}
