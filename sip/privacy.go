package sip

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Privacy says which of the caller's identities the server's logs leave
// out (the operator's privacy list); the AI side still gets them in
// CallInfo. Safe to change while serving (SetPrivacy): calls set up after
// the change log accordingly.
type Privacy struct {
	From bool // the From URI (the caller's number)
	To   bool // the To URI (the dialled number)
}

// redacted stands in for a private value in logs.
const redacted = "[private]"

// SetPrivacy changes what the logs of new calls and rejected requests
// leave out.
func (s *Server) SetPrivacy(p Privacy) { s.privacy.Store(&p) }

func (s *Server) logFrom(uri string) string {
	if p := s.privacy.Load(); p != nil && p.From && uri != "" {
		return redacted
	}
	return uri
}

func (s *Server) logTo(uri string) string {
	if p := s.privacy.Load(); p != nil && p.To && uri != "" {
		return redacted
	}
	return uri
}

// Bounds of CallInfo.Headers: the INVITE comes from outside.
const (
	maxCallerHeaders     = 64
	maxCallerHeaderValue = 1024
)

// callerHeaders copies the INVITE's headers for CallInfo.Headers: first
// value per lower-case name, credentials left out, bounded.
func callerHeaders(req *sip.Request) map[string]string {
	out := map[string]string{}
	for _, h := range req.Headers() {
		name := strings.ToLower(h.Name())
		if name == "authorization" || name == "proxy-authorization" {
			continue
		}
		if _, ok := out[name]; ok {
			continue
		}
		if len(out) == maxCallerHeaders {
			break
		}
		v := h.Value()
		if len(v) > maxCallerHeaderValue {
			v = v[:maxCallerHeaderValue]
		}
		out[name] = v
	}
	return out
}
