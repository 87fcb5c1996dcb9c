package sip

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"
)

func TestEdgeLimitsDefaults(t *testing.T) {
	d := EdgeLimits{}.WithDefaults()
	require.Equal(t, EdgeLimits{MaxUnconfirmedPerSource: DefaultMaxUnconfirmedPerSource, OptionsRate: DefaultOptionsRate,
		MaxConnections: DefaultMaxConnections, MaxConnectionsPerSource: DefaultMaxConnectionsPerSource,
		StreamIdleTimeout: DefaultStreamIdleTimeout}, d)
	off := EdgeLimits{MaxUnconfirmedPerSource: -1, OptionsRate: -1, MaxConnections: -1, MaxConnectionsPerSource: -1, StreamIdleTimeout: -1}.WithDefaults()
	require.Equal(t, EdgeLimits{}, off, "negative turns a limit off")
	set := EdgeLimits{MaxUnconfirmedPerSource: 3, StreamIdleTimeout: time.Minute}.WithDefaults()
	require.Equal(t, 3, set.MaxUnconfirmedPerSource)
	require.Equal(t, time.Minute, set.StreamIdleTimeout)
}

// TestSourceCounts: per-source and total caps, as a table of operations.
func TestSourceCounts(t *testing.T) {
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	type op struct {
		acquire bool // else release
		src     netip.Addr
		ok      bool // for acquire
	}
	for _, tc := range []struct {
		name             string
		perSource, total int
		ops              []op
	}{
		{"per source", 2, 0, []op{{true, a, true}, {true, a, true}, {true, a, false}, {true, b, true},
			{false, a, false}, {true, a, true}, {true, a, false}}},
		{"total", 0, 2, []op{{true, a, true}, {true, b, true}, {true, c, false}, {false, b, false}, {true, c, true}}},
		{"both", 2, 3, []op{{true, a, true}, {true, a, true}, {true, a, false}, {true, b, true}, {true, c, false}}},
		{"no cap", 0, 0, []op{{true, a, true}, {true, a, true}, {true, a, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := newSourceCounts(tc.perSource, tc.total)
			for i, o := range tc.ops {
				if o.acquire {
					require.Equal(t, o.ok, sc.acquire(o.src), "op %d", i)
				} else {
					sc.release(o.src)
				}
			}
		})
	}
	sc := newSourceCounts(1, 0)
	require.True(t, sc.acquire(a))
	sc.release(a)
	require.Zero(t, sc.held(a))
	require.Empty(t, sc.n, "a source holding nothing is forgotten")
}

// TestSourceRate: a burst of twice the rate, then the rate, per source.
func TestSourceRate(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	now := time.Unix(1000, 0)
	r := newSourceRate(5)
	r.now = func() time.Time { return now }
	for i := range 10 {
		require.True(t, r.allow(a), "burst %d", i)
	}
	require.False(t, r.allow(a), "burst spent")
	require.True(t, r.allow(b), "another source has its own bucket")
	now = now.Add(200 * time.Millisecond) // one token at 5/s
	require.True(t, r.allow(a))
	require.False(t, r.allow(a))
	now = now.Add(time.Hour)
	for range 10 {
		require.True(t, r.allow(a), "refilled to the burst, no more")
	}
	require.False(t, r.allow(a))
	require.True(t, newSourceRate(0).allow(a), "rate 0: no limit")

	// The table stays bounded: full buckets are swept.
	r = newSourceRate(1)
	r.now = func() time.Time { return now }
	for i := range maxTrackedRateSources {
		r.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	require.Len(t, r.m, maxTrackedRateSources)
	now = now.Add(time.Minute)
	require.True(t, r.allow(a))
	require.Len(t, r.m, 1, "refilled buckets were swept to make room")
}

// pipeListener hands out the server ends of net.Pipe pairs as accepted
// connections from a given remote address.
type pipeListener struct {
	conns chan net.Conn
}

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

func (l *pipeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l *pipeListener) Close() error   { return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060} }

// TestGuardedListenerLimits: a connection over the per-source limit is
// closed at once and never reaches sipgo; closing one frees its unit.
func TestGuardedListenerLimits(t *testing.T) {
	var limited []string
	g := &guard{parser: sip.NewParser(), report: func(string, string, net.Addr, error) {},
		conns:   newSourceCounts(2, 0),
		limited: func(label string, _ net.Addr) { limited = append(limited, label) }}
	pl := &pipeListener{conns: make(chan net.Conn, 8)}
	l := &guardedListener{Listener: pl, g: g, transport: "tcp"}
	from := func(ip string) (net.Conn, net.Conn) {
		c, s := net.Pipe()
		return c, addrConn{Conn: s, remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
	}
	var clients []net.Conn
	var accepted []net.Conn
	for _, ip := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.2"} {
		c, s := from(ip)
		clients = append(clients, c)
		pl.conns <- s
	}
	for range 3 {
		c, err := l.Accept()
		require.NoError(t, err)
		accepted = append(accepted, c)
	}
	require.Equal(t, []string{limitConnsPerSource}, limited)
	// The third connection from 192.0.2.1 was closed: its client reads EOF.
	_, err := clients[2].Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, "192.0.2.2:40000", accepted[2].RemoteAddr().String())
	require.NoError(t, accepted[0].Close())
	require.NoError(t, accepted[0].Close(), "a second close does not release twice")
	require.Equal(t, 1, g.conns.held(netip.MustParseAddr("192.0.2.1")))
	for _, c := range clients {
		_ = c.Close()
	}
	for _, c := range accepted {
		_ = c.Close()
	}
}

// TestGuardedConnDeadlines: a connection that never sends its first
// message, or goes idle after one, ends as a plain EOF for sipgo, counted.
func TestGuardedConnDeadlines(t *testing.T) {
	var limited []string
	g := &guard{parser: sip.NewParser(), report: func(string, string, net.Addr, error) {}, idleTimeout: 50 * time.Millisecond,
		limited: func(label string, _ net.Addr) { limited = append(limited, label) }}

	// Idle after a keep-alive: closed after idleTimeout.
	client, server := net.Pipe()
	defer client.Close()
	gc := &guardedConn{Conn: server, g: g, transport: "tcp", opened: time.Now()}
	go func() { _, _ = client.Write([]byte("\r\n\r\n")) }()
	buf := make([]byte, 64)
	n, err := gc.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "\r\n\r\n", string(buf[:n]))
	_, err = gc.Read(buf)
	require.ErrorIs(t, err, io.EOF, "sipgo sees EOF, not a timeout it would log at Error")
	require.Equal(t, []string{limitStreamIdle}, limited)

	// Silent from the start: closed at the first-message deadline, which a
	// connection opened long ago has passed already.
	limited = nil
	client2, server2 := net.Pipe()
	defer client2.Close()
	gc = &guardedConn{Conn: server2, g: g, transport: "tcp", opened: time.Now().Add(-streamMessageDeadline)}
	_, err = gc.Read(buf)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, []string{limitStreamSlow}, limited)
}

// TestGuardedConnTooLarge: a message past the maximum length without an
// end of headers gets 513 with the recoverable headers, then EOF.
func TestGuardedConnTooLarge(t *testing.T) {
	g := &guard{parser: sip.NewParser(), server: "srv", report: func(string, string, net.Addr, error) {}}
	client, server := net.Pipe()
	gc := &guardedConn{Conn: server, g: g, transport: "tcp", opened: time.Now()}
	head := "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-big\r\nCall-ID: big\r\nCSeq: 1 INVITE\r\n"
	go func() {
		_, _ = client.Write([]byte(head))
		pad := []byte("X-Pad: " + strings.Repeat("a", 500) + "\r\n")
		for range 2 * sip.ParseMaxMessageLength / len(pad) {
			if _, err := client.Write(pad); err != nil {
				return
			}
		}
	}()
	var res bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := client.Read(buf)
			res.Write(buf[:n])
			if err != nil || bytes.Contains(res.Bytes(), []byte("\r\n\r\n")) {
				return
			}
		}
	}()
	_, err := gc.Read(make([]byte, 64))
	require.ErrorIs(t, err, io.EOF)
	_ = client.Close()
	<-done
	require.True(t, strings.HasPrefix(res.String(), "SIP/2.0 513 Message Too Large\r\n"), res.String())
	require.Contains(t, res.String(), "Call-ID: big\r\n")
}

// TestUnconfirmedPerSource: a source holding MaxUnconfirmedPerSource
// answered, un-ACKed calls gets 503 for the next one; the ACK frees its
// unit at once.
func TestUnconfirmedPerSource(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *harness) { c.Limits.MaxUnconfirmedPerSource = 1 })
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	src := netip.MustParseAddr("127.0.0.1")

	first, err := u.invite(ctx, offer(4000, "0")) // answered, not ACKed yet
	require.NoError(t, err)
	require.Equal(t, 1, h.srv.unconfirmed.held(src))
	_, err = u.invite(ctx, offer(4002, "0"))
	var de *sipgo.ErrDialogResponse
	require.ErrorAs(t, err, &de)
	require.Equal(t, sip.StatusServiceUnavailable, de.Res.StatusCode)
	require.NotNil(t, de.Res.GetHeader("Retry-After"))
	h.waitEnd(EndRejectUnconfirmed, 1)
	require.Equal(t, 1.0, metricValue(h.srv.metrics.limited.WithLabelValues(limitUnconfirmed)))

	require.NoError(t, first.dlg.Ack(ctx))
	require.Eventually(t, func() bool { return h.srv.unconfirmed.held(src) == 0 }, wait, 5*time.Millisecond, "the ACK frees the unit")
	second := u.answeredCall(offer(4004, "0"))
	require.Eventually(t, func() bool { return h.srv.unconfirmed.held(src) == 0 }, wait, 5*time.Millisecond)
	first.bye()
	second.bye()
	h.waitIdle()
	require.Zero(t, h.srv.unconfirmed.held(src))
}

// FuzzValidateRequest: whatever parses, validateRequest never panics, and
// what it accepts has a Request-URI naming something reachable and a CSeq
// in range. The seeds are the scanner findings of issue 10.
func FuzzValidateRequest(f *testing.F) {
	req := func(line, cseq string) []byte {
		return []byte(line + "\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: " +
			cseq + "\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
	}
	f.Add(req("OPTIONS sip: SIP/2.0", "1 OPTIONS"))
	f.Add(req("OPTIONS sip:@ SIP/2.0", "1 OPTIONS"))
	f.Add(req("OPTIONS tel: SIP/2.0", "1 OPTIONS"))
	f.Add(req("OPTIONS sip:a@b:99999 SIP/2.0", "1 OPTIONS"))
	f.Add(req("OPTIONS sip:a@b SIP/2.0", "0 OPTIONS"))
	f.Add(req("OPTIONS sip:a@b SIP/2.0", "4294967295 OPTIONS"))
	f.Add(req("OPTIONS sip:a@b SIP/7.0", "1 OPTIONS"))
	f.Add(req("OPTIONS tel:+15551234;phone-context=x SIP/2.0", "1 OPTIONS"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		r, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		if validateRequest(r) != nil {
			return
		}
		if r.Recipient.Port < 0 || r.Recipient.Port > 65535 {
			t.Fatalf("accepted port %d", r.Recipient.Port)
		}
		if !strings.EqualFold(r.Recipient.Scheme, "tel") && r.Recipient.Host == "" {
			t.Fatalf("accepted a Request-URI without a host: %q", r.Recipient.String())
		}
		if r.CSeq().SeqNo > 1<<31-1 {
			t.Fatalf("accepted CSeq %d", r.CSeq().SeqNo)
		}
	})
}
