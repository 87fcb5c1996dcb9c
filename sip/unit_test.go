package sip

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"
)

func TestTerminationTaxonomy(t *testing.T) {
	reasonHdr := regexp.MustCompile(`^(SIP|Q\.850);cause=\d+;text="[^"\r\n]+"$`)
	labels := map[string]EndReason{}
	for r := EndReason(0); r < endReasonCount; r++ {
		term := r.Termination()
		t.Run(term.Label, func(t *testing.T) {
			require.NotEmpty(t, term.Label)
			require.Regexp(t, `^[a-z_]+$`, term.Label, "metric label")
			prev, dup := labels[term.Label]
			require.False(t, dup, "label %q used by %d and %d", term.Label, prev, r)
			labels[term.Label] = r
			require.Equal(t, term.Label, r.String())
			require.GreaterOrEqual(t, term.Status, 400, "a final failure status")
			require.Less(t, term.Status, 700)
			require.NotEmpty(t, term.Phrase)
			if term.RetryAfter {
				require.Equal(t, sip.StatusServiceUnavailable, term.Status, "Retry-After goes with 503 here")
			}
			if term.Hangup {
				require.Regexp(t, reasonHdr, term.Reason, "RFC 3326 Reason")
				require.False(t, r.IsRejection(), "a rejected INVITE has no dialog to hang up")
			} else {
				require.Empty(t, term.Reason)
			}
			require.Contains(t, []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelError}, term.Level)
		})
	}
	// The mapping, row by row, for the reasons the issue names.
	tests := []struct {
		r      EndReason
		status int
		hangup bool
		reason string
		level  slog.Level
	}{
		{EndCallerBye, 487, false, "", slog.LevelInfo},
		{EndCancelled, 487, false, "", slog.LevelInfo},
		{EndNoACK, 408, true, `SIP;cause=408;text="ACK timeout"`, slog.LevelWarn},
		{EndMediaTimeout, 408, true, `Q.850;cause=102;text="RTP timeout"`, slog.LevelWarn},
		{EndModelHangup, 480, true, `Q.850;cause=16;text="model ended call"`, slog.LevelInfo},
		{EndTransferred, 480, true, `Q.850;cause=16;text="transferred"`, slog.LevelInfo},
		{EndAIFailed, 503, true, `Q.850;cause=41;text="AI unavailable"`, slog.LevelError},
		{EndShutdown, 503, true, `Q.850;cause=41;text="server shutting down"`, slog.LevelInfo},
		{EndRejectNoCommonCodec, 488, false, "", slog.LevelInfo},
		{EndRejectMaxCalls, 503, false, "", slog.LevelWarn},
		{EndRejectDraining, 503, false, "", slog.LevelInfo},
		{EndRejectBadRequest, 400, false, "", slog.LevelWarn},
		{EndRejectTooManyHops, 483, false, "", slog.LevelWarn},
		{EndRejectUnsupportedMediaType, 415, false, "", slog.LevelWarn},
		{EndRejectNoRTPPort, 503, false, "", slog.LevelError},
		{EndRejectAIUnavailable, 503, false, "", slog.LevelError},
	}
	for _, tc := range tests {
		term := tc.r.Termination()
		require.Equal(t, tc.status, term.Status, tc.r.String())
		require.Equal(t, tc.hangup, term.Hangup, tc.r.String())
		require.Equal(t, tc.reason, term.Reason, tc.r.String())
		require.Equal(t, tc.level, term.Level, tc.r.String())
	}
	require.Equal(t, "internal_error", EndReason(250).String())

	// An endCause survives wrapping and carries its error.
	base := errors.New("boom")
	cause := error(&endCause{reason: EndMediaError, err: base})
	ec, ok := reasonOf(errors.Join(errors.New("x"), cause))
	require.True(t, ok)
	require.Equal(t, EndMediaError, ec.reason)
	require.ErrorIs(t, cause, base)
}

func TestParseReferTarget(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"sip:agent@example.com", "sip:agent@example.com", true},
		{"<sip:agent@example.com:5060;transport=tcp>", "sip:agent@example.com:5060;transport=tcp", true},
		{"sips:queue@pbx.example.com", "sips:queue@pbx.example.com", true},
		{"tel:+1-555-123-4567", "tel:+1-555-123-4567", true},
		{"tel:+15551234567;phone-context=example.com", "tel:+15551234567;phone-context=example.com", true},
		{" sip:a@b ", "sip:a@b", true},
		{"", "", false},
		{"agent", "", false},
		{"http://example.com", "", false},
		{"tel:", "", false},
		{"tel:abc", "", false},
		{"sip:@", "", false},
		{"sip:agent@example.com\r\nX-Evil: 1", "", false},
		{"sip:agent@example.com\nX-Evil: 1", "", false},
		{"sip:agent@exa\x00mple.com", "", false},
		{"sip:agent@example.com> ;x=<y", "", false},
		{`sip:"quoted"@example.com`, "", false},
		{"sip:" + strings.Repeat("a", 600) + "@example.com", "", false},
	}
	for _, tc := range tests {
		got, err := parseReferTarget(tc.in)
		if !tc.ok {
			require.ErrorIs(t, err, ErrInvalidTarget, "%q", tc.in)
			continue
		}
		require.NoError(t, err, "%q", tc.in)
		require.Equal(t, tc.want, got)
	}
}

func TestParseSipfrag(t *testing.T) {
	tests := []struct {
		in     string
		code   int
		phrase string
		ok     bool
	}{
		{"SIP/2.0 200 OK\r\n", 200, "OK", true},
		{"SIP/2.0 100 Trying", 100, "Trying", true},
		{"\r\nSIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n", 486, "Busy Here", true},
		{"sip/2.0 603 Declined\n", 603, "Declined", true},
		{"SIP/2.0 180", 180, "", true},
		{"SIP/2.0 99 Low", 0, "", false},
		{"SIP/2.0 700 High", 0, "", false},
		{"HTTP/1.1 200 OK", 0, "", false},
		{"SIP/2.0 2000 OK", 0, "", false},
		{"", 0, "", false},
	}
	for _, tc := range tests {
		code, phrase, err := parseSipfrag([]byte(tc.in))
		if !tc.ok {
			require.Error(t, err, "%q", tc.in)
			continue
		}
		require.NoError(t, err, "%q", tc.in)
		require.Equal(t, tc.code, code)
		require.Equal(t, tc.phrase, phrase)
	}
}

const multipartSIPI = "--unique-boundary-1\r\n" +
	"Content-Type: application/isup;version=itu-t92+\r\nContent-Disposition: signal;handling=optional\r\n\r\n" +
	"\x01\x00\x49\x00\x00\x03\x02\x00\x07\r\n" +
	"--unique-boundary-1\r\n" +
	"Content-Type: application/sdp\r\n\r\n" +
	"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n" +
	"\r\n--unique-boundary-1--\r\n"

func TestExtractSDP(t *testing.T) {
	sdpText := "v=0\r\nm=audio 4000 RTP/AVP 0\r\n"
	tests := []struct {
		name, ct, body string
		want           string
		ok             bool
	}{
		{"plain", "application/sdp", sdpText, sdpText, true},
		{"plain with params", "application/SDP; charset=utf-8", sdpText, sdpText, true},
		{"SIP-I multipart", "multipart/mixed;boundary=unique-boundary-1", multipartSIPI, "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n", true},
		{"multipart without sdp", "multipart/mixed;boundary=b", "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n", "", false},
		{"multipart without boundary", "multipart/mixed", multipartSIPI, "", false},
		{"text", "text/plain", sdpText, "", false},
		{"garbage type", ";;;", sdpText, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := extractSDP(tc.ct, []byte(tc.body))
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}
}

func TestValidateRequest(t *testing.T) {
	base := func() *sip.Request {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "ai", Host: "192.0.2.1"})
		via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "192.0.2.2", Port: 5060, Params: sip.NewParams()}
		via.Params.Add("branch", "z9hG4bK-1")
		req.AppendHeader(via)
		from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "caller", Host: "192.0.2.2"}, Params: sip.NewParams()}
		from.Params.Add("tag", "abc")
		req.AppendHeader(from)
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "ai", Host: "192.0.2.1"}})
		cid := sip.CallIDHeader("call-1")
		req.AppendHeader(&cid)
		req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
		mf := sip.MaxForwardsHeader(70)
		req.AppendHeader(&mf)
		req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "192.0.2.2", Port: 5060}})
		return req
	}
	tests := []struct {
		name   string
		mutate func(r *sip.Request)
		want   EndReason
		ok     bool
	}{
		{"valid", func(*sip.Request) {}, 0, true},
		{"no Call-ID", func(r *sip.Request) { r.RemoveHeader("Call-ID") }, EndRejectBadRequest, false},
		{"empty Call-ID", func(r *sip.Request) { r.ReplaceHeader(ptr(sip.CallIDHeader(" "))) }, EndRejectBadRequest, false},
		{"no From", func(r *sip.Request) { r.RemoveHeader("From") }, EndRejectBadRequest, false},
		{"no To", func(r *sip.Request) { r.RemoveHeader("To") }, EndRejectBadRequest, false},
		{"no CSeq", func(r *sip.Request) { r.RemoveHeader("CSeq") }, EndRejectBadRequest, false},
		{"no Via", func(r *sip.Request) { r.RemoveHeader("Via") }, EndRejectBadRequest, false},
		{"CSeq method", func(r *sip.Request) { r.CSeq().MethodName = sip.BYE }, EndRejectBadRequest, false},
		{"Max-Forwards 0", func(r *sip.Request) { r.ReplaceHeader(ptr(sip.MaxForwardsHeader(0))) }, EndRejectTooManyHops, false},
		{"LF in header", func(r *sip.Request) { r.AppendHeader(sip.NewHeader("Subject", "a\nb: c")) }, EndRejectBadRequest, false},
		{"CR in header", func(r *sip.Request) { r.AppendHeader(sip.NewHeader("Subject", "a\rb")) }, EndRejectBadRequest, false},
		{"NUL in header", func(r *sip.Request) { r.AppendHeader(sip.NewHeader("Subject", "a\x00b")) }, EndRejectBadRequest, false},
		{"scheme", func(r *sip.Request) { r.Recipient = sip.Uri{Scheme: "mailto", Host: "x"} }, EndRejectUnsupportedURIScheme, false},
		{"tel scheme ok", func(r *sip.Request) { r.Recipient = sip.Uri{Scheme: "tel", Host: "+1555"} }, 0, true},
		{"empty sip URI", func(r *sip.Request) { r.Recipient = sip.Uri{Scheme: "sip"} }, EndRejectBadRequest, false},
		{"sip:@", func(r *sip.Request) { r.Recipient = parseURI(t, "sip:@") }, EndRejectBadRequest, false},
		{"empty tel URI", func(r *sip.Request) { r.Recipient = parseURI(t, "tel:") }, EndRejectBadRequest, false},
		{"parsed tel URI ok", func(r *sip.Request) { r.Recipient = parseURI(t, "tel:+4930123;phone-context=x") }, 0, true},
		{"port 99999", func(r *sip.Request) { r.Recipient = parseURI(t, "sip:ai@127.0.0.1:99999") }, EndRejectBadRequest, false},
		{"CSeq 2**31", func(r *sip.Request) { r.CSeq().SeqNo = 1 << 31 }, EndRejectBadRequest, false},
		{"CSeq 0 ok (RFC 3261 §8.1.1.5)", func(r *sip.Request) { r.CSeq().SeqNo = 0 }, 0, true},
		{"version", func(r *sip.Request) { r.SipVersion = "SIP/3.0" }, EndRejectVersion, false},
		{"no From tag", func(r *sip.Request) { r.From().Params.Remove("tag") }, EndRejectBadRequest, false},
		{"no Contact", func(r *sip.Request) { r.RemoveHeader("Contact") }, EndRejectBadRequest, false},
		{"Require", func(r *sip.Request) { r.AppendHeader(sip.NewHeader("Require", "100rel, timer")) }, EndRejectBadExtension, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := base()
			tc.mutate(req)
			r := validateInvite(req)
			if tc.ok {
				require.Nil(t, r)
				return
			}
			require.NotNil(t, r)
			require.Equal(t, tc.want, r.reason)
		})
	}
	// OPTIONS with Max-Forwards 0 may be answered by its final recipient.
	opt := base()
	opt.Method = sip.OPTIONS
	opt.CSeq().MethodName = sip.OPTIONS
	opt.ReplaceHeader(ptr(sip.MaxForwardsHeader(0)))
	require.Nil(t, validateRequest(opt))
}

func ptr[T any](v T) *T { return &v }

func TestSanitizeResponse(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", Host: "h"})
	req.AppendHeader(sip.NewHeader("Via", "SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK-x"))
	cid := sip.CallIDHeader("abc\ndef: injected")
	req.AppendHeader(&cid)
	res := sanitizeResponse(sip.NewResponseFromRequest(req, 400, "Bad\r\nRequest", nil))
	out := res.String()
	require.NotContains(t, strings.ReplaceAll(out, "\r\n", ""), "\n")
	require.NotContains(t, out, "\r\ndef: injected")
	require.Contains(t, out, "Call-ID: abc def: injected\r\n")
	require.True(t, strings.HasPrefix(out, "SIP/2.0 400 Bad\r\n") || strings.HasPrefix(out, "SIP/2.0 400 BadRequest\r\n"), out)
}

func parseURI(t *testing.T, s string) sip.Uri {
	t.Helper()
	var u sip.Uri
	require.NoError(t, sip.ParseUri(s, &u))
	return u
}

func TestBadRequestFor(t *testing.T) {
	msg := "INVITE sip:ai@h SIP/2.0\r\nv: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK-1\r\nVia: SIP/2.0/UDP 5.6.7.8;branch=z9hG4bK-2\r\n" +
		"f: <sip:a@b>;tag=1\r\nt: <sip:ai@h>\r\ni: call-x\r\nCSeq: nope\r\nX-Junk\r\n\r\nbody"
	res, ok := badRequestFor([]byte(msg), "bad CSeq\r\nX: y", "srv")
	require.True(t, ok)
	out := string(res)
	require.True(t, strings.HasPrefix(out, "SIP/2.0 400 Bad Request: bad CSeqX: y\r\n"), out)
	require.Contains(t, out, "Via: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK-1\r\nVia: SIP/2.0/UDP 5.6.7.8;branch=z9hG4bK-2\r\n")
	require.Contains(t, out, "From: <sip:a@b>;tag=1\r\n")
	require.Regexp(t, `To: <sip:ai@h>;tag=\w+\r\n`, out)
	require.Contains(t, out, "Call-ID: call-x\r\nServer: srv\r\nContent-Length: 0\r\n\r\n", "the unparsable CSeq is not copied")
	m, err := sip.ParseMessage(res)
	require.NoError(t, err, "our 400 must itself parse")
	require.Equal(t, 400, m.(*sip.Response).StatusCode)

	for _, bad := range []string{
		"ACK sip:ai@h SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK-1\r\n\r\n",
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK-1\r\n\r\n",
		"INVITE sip:ai@h SIP/2.0\r\nCall-ID: x\r\n\r\n",
		"INVITE sip:ai@h SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\x01;branch=z9hG4bK-1\r\n\r\n",
		"INVITE sip:ai@h SIP/2.0\r\nVia: garbage\r\n\r\n",
		"INVITE sip:ai@h HTTP/1.1\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK-1\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"",
	} {
		_, ok := badRequestFor([]byte(bad), "x", "srv")
		require.False(t, ok, "%q", bad)
	}
}

func TestConfigDefaults(t *testing.T) {
	listen := []Listener{{Network: "UDP", Addr: "127.0.0.1:5060"}}
	c, err := Config{Listen: listen}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, "udp", c.Listen[0].Network)
	require.Equal(t, "UDP", listen[0].Network, "the caller's slice is not modified")
	require.Equal(t, "127.0.0.1", c.AdvertiseHost)
	require.Equal(t, DefaultUserAgent, c.UserAgent)
	require.Equal(t, DefaultACKTimeout, c.ACKTimeout)
	require.Equal(t, DefaultMediaTimeout, c.MediaTimeout)

	c, err = Config{Listen: listen, MediaTimeout: -1, AdvertiseHost: "sip.example.com"}.withDefaults()
	require.NoError(t, err)
	require.Zero(t, c.MediaTimeout)
	require.Equal(t, "sip.example.com", c.AdvertiseHost)

	for name, bad := range map[string]Config{
		"no listener": {},
		"network":     {Listen: []Listener{{Network: "sctp", Addr: "127.0.0.1:5060"}}},
		"addr":        {Listen: []Listener{{Network: "udp", Addr: "nope"}}},
		"advertise":   {Listen: listen, AdvertiseHost: "a b\r\n"},
		"user agent":  {Listen: listen, UserAgent: "x\r\nEvil: 1"},
		"max calls":   {Listen: listen, MaxCalls: -1},
	} {
		_, err := bad.withDefaults()
		require.ErrorIs(t, err, ErrConfig, name)
	}
	_, err = NewServer(Config{Listen: listen}, nil, nil, nil, nil)
	require.ErrorIs(t, err, ErrConfig)
	_, err = newServer(Config{Listen: listen}, (&testBackend{}).backend(), nil, nil, nil)
	require.ErrorIs(t, err, ErrConfig)
}

func TestServeTwiceAndBindFailure(t *testing.T) {
	h := newHarness(t)
	require.ErrorIs(t, h.srv.Serve(t.Context()), ErrAlreadyServing)

	// A second server on the same port fails to bind and says so.
	s2, err := newServer(Config{Listen: []Listener{{Network: "udp", Addr: h.addr}}}, (&testBackend{}).backend(),
		func(context.Context, CallInfo, *slog.Logger) (Conversation, error) {
			return nil, errors.New("x")
		}, nil, nil)
	require.NoError(t, err)
	require.Error(t, s2.Serve(t.Context()))
}

// FuzzBadRequestFor: whatever arrives, our 400 is either not sent or a
// well-formed message with nothing injected.
func FuzzBadRequestFor(f *testing.F) {
	f.Add([]byte("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK-1\r\nCSeq: x\r\n\r\n"), "detail")
	f.Add([]byte("OPTIONS sip:a@b SIP/2.0\nv: x\nt: <sip:a@b>\ni: 1\n\n"), "d\r\netail")
	f.Add([]byte("BYE sip:a@b SIP/2.0\r\nVia: a\r\n b\r\nTo: \"\xff\" <sip:x>\r\n\r\n"), "")
	f.Fuzz(func(t *testing.T, data []byte, detail string) {
		res, ok := badRequestFor(data, detail, "srv")
		if !ok {
			return
		}
		s := string(res)
		if !strings.HasPrefix(s, "SIP/2.0 400 Bad Request") || !strings.HasSuffix(s, "Content-Length: 0\r\n\r\n") {
			t.Fatalf("malformed 400: %q", s)
		}
		body := strings.TrimSuffix(s, "\r\n\r\n")
		for _, line := range strings.Split(body, "\r\n") {
			if strings.ContainsAny(line, "\r\n\x00") {
				t.Fatalf("line with a control character: %q", line)
			}
		}
		if _, err := sip.ParseMessage(res); err != nil {
			t.Fatalf("our 400 does not parse: %v\n%q", err, s)
		}
	})
}

// FuzzParseSipfrag: no panic; a success is a real status line.
func FuzzParseSipfrag(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\n"))
	f.Add([]byte("SIP/2.0 100 Trying"))
	f.Add([]byte("\n\nSIP/2.0 487 Request Terminated\r\nX: y"))
	f.Fuzz(func(t *testing.T, b []byte) {
		code, phrase, err := parseSipfrag(b)
		if err != nil {
			return
		}
		if code < 100 || code > 699 || strings.ContainsAny(phrase, "\r\n\x00") {
			t.Fatalf("bad result %d %q", code, phrase)
		}
	})
}

// FuzzExtractSDP: no panic and bounded output for any content type and body.
func FuzzExtractSDP(f *testing.F) {
	f.Add("application/sdp", []byte("v=0\r\n"))
	f.Add("multipart/mixed;boundary=unique-boundary-1", []byte(multipartSIPI))
	f.Add("multipart/alternative; boundary=\"b\"", []byte("--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b--"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		out, err := extractSDP(ct, body)
		if err == nil && len(out) > max(len(body), maxSDPBodySize) {
			t.Fatalf("extracted %d bytes from %d", len(out), len(body))
		}
	})
}

// FuzzGuardedConnFraming: any byte stream, cut anywhere, yields only
// messages sipgo can parse, and never hangs or panics.
func FuzzGuardedConnFraming(f *testing.F) {
	good := "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 1.2.3.4;branch=z9hG4bK-1\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	f.Add([]byte(good+"\r\n\r\n"+good), uint8(7))
	f.Add([]byte("INVITE sip:a@b SIP/2.0\r\nl: 3\r\nCSeq: x\r\n\r\nabc"+good), uint8(1))
	f.Add([]byte("X\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n"), uint8(3))
	// Issue 10 findings: an oversized message without an end of headers
	// (513, then the stream ends), a stream cut mid-message.
	f.Add([]byte("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 1.2.3.4;branch=z9hG4bK-2\r\n"+strings.Repeat("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 1600)), uint8(31))
	f.Add([]byte(good[:40]), uint8(5))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		client, server := net.Pipe()
		g := &guard{parser: sip.NewParser(), server: "srv", report: func(string, string, net.Addr, error) {}}
		gc := &guardedConn{Conn: server, g: g, transport: "tcp"}
		var wg sync.WaitGroup
		wg.Go(func() {
			step := int(chunk%32) + 1
			for i := 0; i < len(stream); i += step {
				if _, err := client.Write(stream[i:min(i+step, len(stream))]); err != nil {
					return
				}
			}
			_ = client.Close()
		})
		wg.Go(func() { _, _ = io.Copy(io.Discard, client) }) // our 400s
		var out bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := gc.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				break
			}
		}
		_ = server.Close()
		wg.Wait()
		rest := out.Bytes()
		for len(rest) > 0 {
			if k := leadingCRLF(rest); k > 0 {
				rest = rest[k:]
				continue
			}
			_, n, err := sip.NewParser().Parse(rest, true)
			if err != nil {
				t.Fatalf("guard passed an unparsable message: %v\n%q", err, rest)
			}
			rest = rest[n:]
		}
	})
}
