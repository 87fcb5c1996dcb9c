package sip

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// rejection is a final response for a request we will not process.
type rejection struct {
	reason EndReason // status and phrase come from its Termination
	detail string    // appended to the phrase ("Bad Request: missing Call-ID")
	hdrs   []sip.Header
}

func reject(r EndReason, format string, args ...any) *rejection {
	return &rejection{reason: r, detail: fmt.Sprintf(format, args...)}
}

// phrase is the reason phrase: the standard one plus the detail.
func (r *rejection) phrase() string {
	p := r.reason.Termination().Phrase
	if r.detail != "" {
		p += ": " + sanitizePhrase(r.detail)
	}
	return p
}

// headerSafe reports whether s can go into a header value: no CR, LF or NUL
// (a bare LF survives sipgo's parser, which splits lines on CR, and other
// stacks end a line on it: header injection, GHSA-chcx-pf5f-wxc7).
func headerSafe(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00")
}

// sanitizePhrase keeps a reason phrase to printable ASCII (RFC 3261 §25.1
// allows UTF-8, but this text is built from what peers sent).
func sanitizePhrase(s string) string {
	const maxLen = 80
	b := make([]byte, 0, min(len(s), maxLen))
	for i := 0; i < len(s) && len(b) < maxLen; i++ {
		if c := s[i]; c >= ' ' && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

// validateRequest checks what every request we handle needs (RFC 3261 §8.1.1
// mandatory headers, §8.2.2 UAS checks). sipgo has already refused messages
// without Via or CSeq (stateless 400) and messages it cannot parse at all
// (guard.go answers those), so this is about missing or wrong values.
func validateRequest(req *sip.Request) *rejection {
	if req.SipVersion != "SIP/2.0" {
		return reject(EndRejectVersion, "")
	}
	if req.Via() == nil {
		return reject(EndRejectBadRequest, "missing Via")
	}
	cid := req.CallID()
	if cid == nil || strings.TrimSpace(cid.Value()) == "" {
		return reject(EndRejectBadRequest, "missing Call-ID")
	}
	if req.From() == nil {
		return reject(EndRejectBadRequest, "missing From")
	}
	if req.To() == nil {
		return reject(EndRejectBadRequest, "missing To")
	}
	cseq := req.CSeq()
	if cseq == nil {
		return reject(EndRejectBadRequest, "missing CSeq")
	}
	// RFC 3261 §8.1.1.7: the CSeq method matches the request method.
	if cseq.MethodName != req.Method {
		return reject(EndRejectBadRequest, "CSeq method does not match")
	}
	if !headerSafe(req.Recipient.String()) {
		return reject(EndRejectBadRequest, "invalid characters in Request-URI")
	}
	for _, h := range req.Headers() {
		if !headerSafe(h.Value()) || !headerSafe(h.Name()) {
			return reject(EndRejectBadRequest, "invalid characters in %s", sanitizePhrase(h.Name()))
		}
	}
	// RFC 3261 §8.2.2.1: we only know sip, sips and tel Request-URIs.
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips", "tel":
	default:
		return reject(EndRejectUnsupportedURIScheme, "")
	}
	if !requestURIUsable(req.Recipient) {
		return reject(EndRejectBadRequest, "invalid Request-URI")
	}
	// RFC 3261 §8.1.1.5: the sequence number is below 2**31. (0 is valid.)
	if cseq.SeqNo > 1<<31-1 {
		return reject(EndRejectBadRequest, "CSeq out of range")
	}
	// Max-Forwards 0: a loop or a misconfigured proxy chain (RFC 3261
	// §16.3 step 3). OPTIONS may still be answered by the final recipient.
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 && req.Method != sip.OPTIONS {
		return reject(EndRejectTooManyHops, "")
	}
	return nil
}

// requestURIUsable: a sip/sips URI names a host and a port that exists
// (RFC 3261 §19.1.1, what scanners send: "sip:", "sip:@", port 99999); a
// tel URI carries a number (RFC 3966 §3).
func requestURIUsable(u sip.Uri) bool {
	if u.Port < 0 || u.Port > 65535 {
		return false
	}
	if strings.EqualFold(u.Scheme, "tel") {
		num, _, _ := strings.Cut(u.Raw(), ";")
		return strings.Trim(num, "+-.()") != "" || u.Host != "" || u.User != ""
	}
	return u.Host != ""
}

// validateInvite adds the INVITE checks: a From tag (RFC 3261 §8.1.1.3; we
// key dialogs on it), a Contact (§8.1.1.8), no Require we lack (§8.2.2.3).
func validateInvite(req *sip.Request) *rejection {
	if r := validateRequest(req); r != nil {
		return r
	}
	if tag, ok := req.From().Params.Get("tag"); !ok || tag == "" {
		return reject(EndRejectBadRequest, "missing From tag")
	}
	if req.Contact() == nil {
		return reject(EndRejectBadRequest, "missing Contact")
	}
	var unsupported []string
	for _, tag := range listValues(req, "Require") { // timers.go
		// timer is the one extension we support (RFC 4028, timers.go).
		if !strings.EqualFold(tag, "timer") {
			unsupported = append(unsupported, tag)
		}
	}
	if len(unsupported) > 0 {
		r := reject(EndRejectBadExtension, "")
		r.hdrs = append(r.hdrs, sip.NewHeader("Unsupported", strings.Join(unsupported, ", ")))
		return r
	}
	return nil
}

// Limits of the multipart reader.
const (
	maxBodyParts   = 8
	maxSDPBodySize = 64 << 10
)

// sdpBody returns the SDP of a request body: the body itself for
// application/sdp, or the application/sdp part of a multipart/mixed or
// multipart/alternative body (SIP-I trunks put ISUP beside the SDP, RFC 3204).
// An empty body returns nil and no rejection.
func sdpBody(req *sip.Request) ([]byte, *rejection) {
	body := req.Body()
	if len(body) == 0 {
		return nil, nil
	}
	ct := req.ContentType()
	if ct == nil {
		// RFC 3261 §20.15: a non-empty body MUST have a Content-Type.
		return nil, reject(EndRejectBadRequest, "body without Content-Type")
	}
	out, err := extractSDP(ct.Value(), body)
	if err != nil {
		r := reject(EndRejectUnsupportedMediaType, "")
		r.hdrs = append(r.hdrs, sip.NewHeader("Accept", "application/sdp"))
		return nil, r
	}
	return out, nil
}

// extractSDP finds the application/sdp payload for a Content-Type.
func extractSDP(contentType string, body []byte) ([]byte, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("sip: content type %q: %w", sanitizePhrase(contentType), err)
	}
	switch mt {
	case "application/sdp":
		return body, nil
	case "multipart/mixed", "multipart/alternative", "multipart/related":
	default:
		return nil, fmt.Errorf("sip: content type %q is not application/sdp", sanitizePhrase(mt))
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, fmt.Errorf("sip: multipart body without boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for range maxBodyParts {
		p, err := mr.NextRawPart()
		if err != nil {
			return nil, fmt.Errorf("sip: multipart body has no application/sdp part: %w", err)
		}
		pmt, _, err := mime.ParseMediaType(textproto.MIMEHeader(p.Header).Get("Content-Type"))
		if err != nil || pmt != "application/sdp" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, maxSDPBodySize+1))
		if err != nil {
			return nil, fmt.Errorf("sip: multipart sdp part: %w", err)
		}
		if len(b) > maxSDPBodySize {
			return nil, fmt.Errorf("sip: multipart sdp part larger than %d bytes", maxSDPBodySize)
		}
		return b, nil
	}
	return nil, fmt.Errorf("sip: multipart body has no application/sdp part in its first %d parts", maxBodyParts)
}
