package sip

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// remoteTarget is the dialog's remote target once the caller refreshed it:
// the Contact of a re-INVITE (RFC 3261 §12.2.2) or of an UPDATE (RFC 3311
// §5.2) replaces the INVITE's. sipgo's server dialog keeps sending to the
// INVITE's Contact (and, with RewriteContact, to its source address), so our
// own requests (BYE, REFER, session refreshes) take it from here.
type remoteTarget struct {
	mu  sync.Mutex
	uri *sip.Uri // nil: the INVITE's Contact
	// dest is where requests go when the dialog has no route set; "" is
	// the INVITE's source.
	dest string
}

// refreshTarget applies the Contact of a target refresh request the caller
// sent and we accepted (2xx). A Contact we could not send to (wildcard, no
// host, another scheme) is ignored: the previous target stays.
func (l *leg) refreshTarget(req *sip.Request) {
	ct := req.Contact()
	if ct == nil {
		return
	}
	u := ct.Address
	switch strings.ToLower(u.Scheme) {
	case "sip", "sips":
	default:
		return
	}
	if u.Wildcard || u.Host == "" || !headerSafe(u.String()) {
		return
	}
	dest := targetDest(u, req)
	l.target.mu.Lock()
	changed := l.target.uri == nil || l.target.uri.String() != u.String() || l.target.dest != dest
	l.target.uri, l.target.dest = u.Clone(), dest
	l.target.mu.Unlock()
	if changed {
		l.log.Info("remote target refreshed", "target", sanitizePhrase(uriForLog(u)), "dest", dest)
	}
}

// targetDest is where requests to the refreshed target u go when there is no
// route set. As for the INVITE (sipgo's RewriteContact), the source of the
// request wins over a Contact a NAT may have made unreachable; the Contact's
// own address is used over UDP when its IP is the one the request came from,
// so a phone that moved to another port is followed there. Over TCP the
// connection the request came on is reused.
func targetDest(u sip.Uri, req *sip.Request) string {
	src := req.Source()
	if !strings.EqualFold(req.Transport(), "udp") {
		return src
	}
	srcAP, err := netip.ParseAddrPort(src)
	if err != nil {
		return src
	}
	ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil || ip.Unmap() != srcAP.Addr().Unmap() {
		return src
	}
	port := u.Port
	if port <= 0 || port > 65535 {
		port = 5060 // RFC 3263 §4.2: the default port of sip over UDP
	}
	return netip.AddrPortFrom(srcAP.Addr(), uint16(port)).String()
}

// routeToTarget points one of our in-dialog requests at the remote target:
// the refreshed Contact as Request-URI, and with no route set its address
// (or the INVITE's source before any refresh). With a route set sipgo sends
// to the first Route (RFC 3261 §12.2.1.1).
func (l *leg) routeToTarget(req *sip.Request) {
	l.target.mu.Lock()
	uri, dest := l.target.uri, l.target.dest
	l.target.mu.Unlock()
	if uri != nil {
		req.Recipient = *uri.Clone()
	}
	if len(l.dlg.InviteRequest.GetHeaders("Record-Route")) > 0 {
		return
	}
	if dest == "" {
		dest = l.dlg.InviteRequest.Source()
	}
	req.SetDestination(dest)
}
