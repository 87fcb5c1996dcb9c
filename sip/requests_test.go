package sip

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"
)

// rawReq is a request built line by line, so tests can break any line.
type rawReq struct {
	lines []string
	body  string
	noCL  bool
}

func newRawReq(method, target string, localPort int, id string) *rawReq {
	p := strconv.Itoa(localPort)
	return &rawReq{lines: []string{
		method + " sip:ai@" + target + " SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.1:" + p + ";branch=z9hG4bK-" + id,
		"Max-Forwards: 70",
		"From: <sip:caller@127.0.0.1>;tag=from-" + id,
		"To: <sip:ai@" + target + ">",
		"Call-ID: " + id,
		"CSeq: 1 " + method,
		"Contact: <sip:caller@127.0.0.1:" + p + ">",
	}}
}

// set replaces the line starting with prefix (drops it when line is "").
func (r *rawReq) set(prefix, line string) *rawReq {
	for i, l := range r.lines {
		if strings.HasPrefix(l, prefix) {
			if line == "" {
				r.lines = append(r.lines[:i], r.lines[i+1:]...)
			} else {
				r.lines[i] = line
			}
			return r
		}
	}
	if line != "" {
		r.lines = append(r.lines, line)
	}
	return r
}

func (r *rawReq) withSDP(body string) *rawReq {
	r.body = body
	return r.set("Content-Type:", "Content-Type: application/sdp")
}

func (r *rawReq) String() string {
	s := strings.Join(r.lines, "\r\n") + "\r\n"
	if !r.noCL {
		s += fmt.Sprintf("Content-Length: %d\r\n", len(r.body))
	}
	return s + "\r\n" + r.body
}

// statusOf parses a raw response's status code.
func statusOf(t *testing.T, raw string) int {
	t.Helper()
	require.NotEmpty(t, raw, "no response")
	f := strings.SplitN(raw, " ", 3)
	require.Len(t, f, 3, raw)
	code, err := strconv.Atoi(f[1])
	require.NoError(t, err, raw)
	return code
}

// headerOf returns a raw response's header value.
func headerOf(raw, name string) string {
	for _, l := range strings.Split(raw, "\r\n") {
		if n, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(n), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// requireNoInjection checks every line of a raw message ends with CRLF and
// that no header line starts with what an attacker tried to inject.
func requireNoInjection(t *testing.T, raw, injected string) {
	t.Helper()
	require.NotContains(t, strings.ReplaceAll(raw, "\r\n", ""), "\n", "bare LF in response")
	require.NotContains(t, strings.ReplaceAll(raw, "\r\n", ""), "\r", "bare CR in response")
	require.NotContains(t, raw, "\x00")
	for _, l := range strings.Split(raw, "\r\n") {
		require.False(t, strings.HasPrefix(l, injected), "injected header line %q", l)
	}
}

func TestRawInviteOrderAndDialog(t *testing.T) {
	h := newHarness(t)
	r := newRawUDP(t, h.addr)
	inv := newRawReq("INVITE", h.addr, r.localPort(), "raw-order").withSDP(offer(4000, "0 8"))
	r.send(inv.String())
	first := r.recv(wait)
	require.Equal(t, sip.StatusTrying, statusOf(t, first), "the first response is 100 Trying")
	ok := r.recvFinal(wait)
	require.Equal(t, sip.StatusOK, statusOf(t, ok))
	require.Contains(t, ok, "m=audio ")
	require.Contains(t, ok, " RTP/AVP 0\r\n", "PCMU: first in the caller's order")
	to := headerOf(ok, "To")
	require.Contains(t, to, ";tag=")

	ack := newRawReq("ACK", h.addr, r.localPort(), "raw-order").set("To:", "To: "+to).set("CSeq:", "CSeq: 1 ACK").set("Via:", "Via: SIP/2.0/UDP 127.0.0.1:"+strconv.Itoa(r.localPort())+";branch=z9hG4bK-ack")
	r.send(ack.String())
	h.conv()
	bye := newRawReq("BYE", h.addr, r.localPort(), "raw-order").set("To:", "To: "+to).set("CSeq:", "CSeq: 2 BYE").set("Via:", "Via: SIP/2.0/UDP 127.0.0.1:"+strconv.Itoa(r.localPort())+";branch=z9hG4bK-bye")
	r.send(bye.String())
	require.Equal(t, sip.StatusOK, statusOf(t, r.recvFinal(wait)))
	h.waitEnd(EndCallerBye, 1)
	h.waitIdle()

	// The same BYE again: the dialog is gone.
	r.send(newRawReq("BYE", h.addr, r.localPort(), "raw-order").set("To:", "To: "+to).set("CSeq:", "CSeq: 3 BYE").
		set("Via:", "Via: SIP/2.0/UDP 127.0.0.1:"+strconv.Itoa(r.localPort())+";branch=z9hG4bK-bye2").String())
	require.Equal(t, sip.StatusCallTransactionDoesNotExists, statusOf(t, r.recvFinal(wait)))
}

func TestMalformedRequests(t *testing.T) {
	h := newHarness(t)
	sdpBody := offer(4000, "0")
	tests := []struct {
		name   string
		build  func(r *rawReq) *rawReq
		raw    string // used instead of build when set
		status int    // 0: no response at all
		phrase string // substring of the status line
		header [2]string
		inject string
	}{
		{name: "unparsable CSeq (sipgo drops it; guard answers)", build: func(r *rawReq) *rawReq { return r.set("CSeq:", "CSeq: abc INVITE") }, status: 400},
		{name: "unparsable From", build: func(r *rawReq) *rawReq { return r.set("From:", "From: <sip:caller@127.0.0.1;tag=x") }, status: 400},
		{name: "header without colon", build: func(r *rawReq) *rawReq { return r.set("X-Junk", "X-Junk no colon here") }, status: 400},
		{name: "missing Call-ID", build: func(r *rawReq) *rawReq { return r.set("Call-ID:", "") }, status: 400, phrase: "missing Call-ID"},
		{name: "missing From", build: func(r *rawReq) *rawReq { return r.set("From:", "") }, status: 400, phrase: "missing From"},
		{name: "missing To", build: func(r *rawReq) *rawReq { return r.set("To:", "") }, status: 400, phrase: "missing To"},
		{name: "missing From tag", build: func(r *rawReq) *rawReq { return r.set("From:", "From: <sip:caller@127.0.0.1>") }, status: 400, phrase: "From tag"},
		{name: "missing Contact", build: func(r *rawReq) *rawReq { return r.set("Contact:", "") }, status: 400, phrase: "Contact"},
		{name: "CSeq method mismatch", build: func(r *rawReq) *rawReq { return r.set("CSeq:", "CSeq: 1 BYE") }, status: 400, phrase: "CSeq"},
		{name: "missing CSeq (sipgo stateless 400)", build: func(r *rawReq) *rawReq { return r.set("CSeq:", "") }, status: 400},
		{name: "Max-Forwards 0", build: func(r *rawReq) *rawReq { return r.set("Max-Forwards:", "Max-Forwards: 0") }, status: 483},
		{name: "text/plain body", build: func(r *rawReq) *rawReq { return r.set("Content-Type:", "Content-Type: text/plain") }, status: 415, header: [2]string{"Accept", "application/sdp"}},
		{name: "body without Content-Type", build: func(r *rawReq) *rawReq { return r.set("Content-Type:", "") }, status: 400, phrase: "Content-Type"},
		{name: "unsupported URI scheme", build: func(r *rawReq) *rawReq { return r.set("INVITE ", "INVITE mailto:ai@example.com SIP/2.0") }, status: 416},
		{name: "SIP/3.0", build: func(r *rawReq) *rawReq { return r.set("INVITE ", "INVITE sip:ai@"+h.addr+" SIP/3.0") }, status: 505},
		{name: "NUL in Call-ID", build: func(r *rawReq) *rawReq { return r.set("Call-ID:", "Call-ID: abc\x00def") }, status: 400, inject: "def"},
		{name: "bare LF injection in a header", build: func(r *rawReq) *rawReq {
			return r.set("Subject:", "Subject: hi\nX-Injected: yes")
		}, status: 400, inject: "X-Injected"},
		{name: "bare LF injection in To", build: func(r *rawReq) *rawReq {
			return r.set("To:", "To: <sip:ai@127.0.0.1>\nX-Injected: yes")
		}, status: 400, inject: "X-Injected"},
		{name: "garbage", raw: "hello there\r\n\r\n", status: 0},
		{name: "malformed ACK gets nothing", raw: "ACK sip:ai@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK-a\r\nCSeq: x\r\n\r\n", status: 0},
		{name: "malformed response gets nothing", raw: "SIP/2.0 200 OK\r\nVia: x\r\nCSeq: nope\r\n\r\n", status: 0},
		{name: "no Via: nothing to route to", raw: "OPTIONS sip:ai@127.0.0.1 SIP/2.0\r\nCSeq: abc OPTIONS\r\nCall-ID: x\r\n\r\n", status: 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRawUDP(t, h.addr)
			msg := tc.raw
			if msg == "" {
				msg = tc.build(newRawReq("INVITE", h.addr, r.localPort(), "bad-"+strconv.Itoa(i)).withSDP(sdpBody)).String()
			}
			r.send(msg)
			if tc.status == 0 {
				require.Empty(t, r.recv(300*time.Millisecond))
			} else {
				res := r.recvFinal(wait)
				require.Equal(t, tc.status, statusOf(t, res), res)
				first, _, _ := strings.Cut(res, "\r\n")
				require.Contains(t, first, tc.phrase)
				if tc.header[0] != "" {
					require.Equal(t, tc.header[1], headerOf(res, tc.header[0]))
				}
				require.NotEmpty(t, headerOf(res, "Via"))
				if strings.Contains(msg, "\r\nTo:") {
					require.Contains(t, headerOf(res, "To"), "tag=")
				}
				if tc.inject != "" {
					requireNoInjection(t, res, tc.inject)
				}
			}
		})
	}
	// The server still works and nothing was left behind.
	res, err := newUAC(t, h.addr).client.Do(context.Background(), sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", User: "ai", Host: "127.0.0.1", Port: h.srv.Addrs()[0].(*net.UDPAddr).Port}))
	require.NoError(t, err)
	require.Equal(t, sip.StatusOK, res.StatusCode)
	require.Zero(t, h.srv.ActiveCalls())
	require.Empty(t, h.convs)
	require.Positive(t, metricValue(h.srv.metrics.malformed.WithLabelValues("udp", actionResponded)))
	require.Positive(t, metricValue(h.srv.metrics.malformed.WithLabelValues("udp", actionDropped)))
	require.Positive(t, h.endCount(EndRejectBadRequest))
}

func TestOptionsAndMethodNotAllowed(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	res, err := u.client.Do(ctx, sip.NewRequest(sip.OPTIONS, u.uri("ai")))
	require.NoError(t, err)
	require.Equal(t, sip.StatusOK, res.StatusCode)
	allow := res.GetHeader("Allow").Value()
	for _, m := range []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "NOTIFY", "UPDATE", "INFO"} {
		require.Contains(t, allow, m)
	}
	require.Equal(t, "application/sdp, application/dtmf-relay, application/dtmf", res.GetHeader("Accept").Value())
	require.Equal(t, "timer", res.GetHeader("Supported").Value(), "RFC 4028 §7.1")
	require.Equal(t, "sipbridge-test", res.GetHeader("Server").Value())

	for _, m := range []sip.RequestMethod{sip.SUBSCRIBE, sip.MESSAGE, sip.REGISTER} {
		res, err := u.client.Do(ctx, sip.NewRequest(m, u.uri("ai")))
		require.NoError(t, err)
		require.Equal(t, sip.StatusMethodNotAllowed, res.StatusCode, m)
		require.Equal(t, allowedMethods, res.GetHeader("Allow").Value())
	}
}

func TestUnknownDialogRequests(t *testing.T) {
	h := newHarness(t)
	for i, m := range []string{"BYE", "INVITE", "NOTIFY", "CANCEL", "UPDATE", "INFO"} {
		r := newRawUDP(t, h.addr) // the 481 to an INVITE is retransmitted until ACKed
		req := newRawReq(m, h.addr, r.localPort(), "nodlg-"+strconv.Itoa(i)).set("To:", "To: <sip:ai@127.0.0.1>;tag=nope")
		if m == "NOTIFY" {
			req.set("Event:", "Event: refer")
		}
		if m == "CANCEL" {
			req.set("To:", "To: <sip:ai@127.0.0.1>")
		}
		if m == "INVITE" {
			req.withSDP(offer(4000, "0"))
		}
		r.send(req.String())
		require.Equal(t, sip.StatusCallTransactionDoesNotExists, statusOf(t, r.recvFinal(wait)), m)
	}
	// A stray ACK gets no response at all.
	r := newRawUDP(t, h.addr)
	r.send(newRawReq("ACK", h.addr, r.localPort(), "stray").set("To:", "To: <sip:ai@127.0.0.1>;tag=nope").String())
	require.Empty(t, r.recv(300*time.Millisecond))
}

func TestTCPGuardKeepsConnection(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *harness) {
		c.Listen = append(c.Listen, Listener{Network: "tcp", Addr: "127.0.0.1:0"})
	})
	tcpAddr := h.srv.Addrs()[1]
	require.Equal(t, "tcp", tcpAddr.Network())
	conn, err := net.Dial("tcp", tcpAddr.String())
	require.NoError(t, err)
	defer conn.Close()
	port := conn.LocalAddr().(*net.TCPAddr).Port
	opts := func(id string) *rawReq {
		r := newRawReq("OPTIONS", tcpAddr.String(), port, id)
		r.set("Via:", "Via: SIP/2.0/TCP 127.0.0.1:"+strconv.Itoa(port)+";branch=z9hG4bK-"+id)
		return r
	}
	read := func() string {
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 65535)
		n, err := conn.Read(buf)
		require.NoError(t, err)
		return string(buf[:n])
	}
	// A malformed message, a keep-alive, a message without Content-Length
	// and a good one, written in pieces: each bad one gets its 400 and the
	// connection survives to answer the good one.
	bad := opts("tcp-bad").set("CSeq:", "CSeq: zz OPTIONS").String()
	noCL := opts("tcp-nocl")
	noCL.noCL = true
	good := opts("tcp-good").String()
	stream := bad + "\r\n\r\n" + noCL.String() + good
	for i := 0; i < len(stream); i += 7 {
		_, err := conn.Write([]byte(stream[i:min(i+7, len(stream))]))
		require.NoError(t, err)
	}
	var got []string
	for len(got) < 3 {
		for _, m := range strings.SplitAfter(read(), "\r\n\r\n") {
			m = strings.TrimLeft(m, "\r\n") // the pong to our double-CRLF ping (RFC 5626 §4.4.1)
			if strings.HasPrefix(m, "SIP/2.0 ") {
				got = append(got, m)
			}
		}
	}
	require.Equal(t, 400, statusOf(t, got[0]))
	require.Contains(t, got[0], "tcp-bad")
	require.Equal(t, 400, statusOf(t, got[1]))
	require.Contains(t, got[1], "tcp-nocl")
	require.Equal(t, 200, statusOf(t, got[2]))
	require.Contains(t, got[2], "tcp-good")
	require.Equal(t, float64(2), metricValue(h.srv.metrics.malformed.WithLabelValues("tcp", actionResponded)))
}
