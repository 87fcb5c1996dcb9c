package phone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// refreshHook decides how the phone answers the bridge's session refreshes
// (re-INVITE and UPDATE): 200 unless told otherwise.
type refreshHook struct {
	mu   sync.Mutex
	code int // 0 = 200
}

func (h *refreshHook) status() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.code == 0 {
		return 200
	}
	return h.code
}

// SetRefreshStatus makes the phone answer the bridge's re-INVITEs and UPDATEs
// with code (e.g. 481 to fail a session refresh); 200 restores the default.
func (p *Phone) SetRefreshStatus(code int) {
	p.refresh.mu.Lock()
	p.refresh.code = code
	p.refresh.mu.Unlock()
}

// onUpdate answers an UPDATE from the far end (a session refresh, RFC 4028
// §7.4) and records it.
func (p *Phone) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	p.requests = append(p.requests, req)
	c := p.calls[req.CallID().Value()]
	p.mu.Unlock()
	code := p.refresh.status()
	if c == nil {
		code = 481
	}
	res := sip.NewResponseFromRequest(req, code, "Scripted", nil)
	if code == 200 {
		ct := p.contact()
		res.AppendHeader(&ct)
	}
	_ = tx.Respond(res)
}

// ReInviteOptions shape one re-INVITE from the phone.
type ReInviteOptions struct {
	// Direction is the offer's a= direction: sendrecv (default), sendonly
	// (hold), recvonly or inactive.
	Direction string
	// NewRTPSocket moves the call's RTP to a new socket (a new port in the
	// offer) once the re-INVITE is answered.
	NewRTPSocket bool
	// ContactOf puts another phone's Contact in the re-INVITE: a target
	// refresh moving the dialog's later requests there.
	ContactOf *Phone
	// NoSDP sends an offerless re-INVITE (the ACK then carries no answer).
	NoSDP bool
	// Headers are extra headers (Session-Expires, Supported…).
	Headers []sip.Header
}

// ReInvite sends a re-INVITE in the call's dialog with an offer for the
// same codecs, ACKs a 2xx and returns the final response. The RTP loops keep
// running unless NewRTPSocket moves them to a new socket.
func (c *Call) ReInvite(ctx context.Context, opt ReInviteOptions) (*sip.Response, error) {
	dir := opt.Direction
	if dir == "" {
		dir = "sendrecv"
	}
	switch dir {
	case "sendrecv", "sendonly", "recvonly", "inactive":
	default:
		return nil, fmt.Errorf("phone: direction %q", dir)
	}
	port := c.LocalRTP().Port()
	var newConn *net.UDPConn
	if opt.NewRTPSocket {
		var err error
		newConn, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(c.phone.cfg.LocalIP)})
		if err != nil {
			return nil, err
		}
		port = uint16(newConn.LocalAddr().(*net.UDPAddr).Port)
	}
	closeNew := func() {
		if newConn != nil {
			_ = newConn.Close()
		}
	}
	codecs := []string{"PCMU"}
	if c.pt == 8 {
		codecs = []string{"PCMA"}
	}
	offer := buildOffer(c.phone.cfg.LocalIP, int(port), codecs, c.tePT)
	offer = strings.Replace(offer, "a=sendrecv", "a="+dir, 1)

	target := c.dialog.InviteResponse.Contact().Address
	req := sip.NewRequest(sip.INVITE, target)
	for _, h := range opt.Headers {
		req.AppendHeader(h)
	}
	if opt.ContactOf != nil {
		ct := opt.ContactOf.contact()
		req.AppendHeader(&ct)
	}
	if !opt.NoSDP {
		req.SetBody([]byte(offer))
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	res, err := c.dialog.Do(ctx, req)
	if err != nil {
		closeNew()
		return nil, err
	}
	if !res.IsSuccess() {
		closeNew()
		return res, nil
	}
	// RFC 3261 §13.2.2.4: the UAC core ACKs a 2xx; the dialog's CSeq is the
	// re-INVITE's.
	if err := c.dialog.WriteRequest(sip.NewRequest(sip.ACK, target)); err != nil {
		closeNew()
		return res, fmt.Errorf("phone: ACK of re-INVITE: %w", err)
	}
	if newConn != nil {
		if err := c.moveRTP(newConn, res.Body(), []byte(offer)); err != nil {
			return res, err
		}
	}
	return res, nil
}

// moveRTP stops the RTP loops, swaps in conn, points them at the answer's
// address and restarts them. What was heard is kept.
func (c *Call) moveRTP(conn *net.UDPConn, answer, offer []byte) error {
	select {
	case <-c.ended:
		_ = conn.Close()
		return errors.New("phone: call ended")
	default:
	}
	c.stopMedia() // queued speech and digits stay queued for the new socket
	c.conn = conn
	c.offer = offer
	c.stop = make(chan struct{})
	c.stopOnce = sync.Once{}
	if err := c.applyAnswer(answer); err != nil {
		return err
	}
	c.startMedia()
	return nil
}
