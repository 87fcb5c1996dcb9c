package sip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// What sipgo does with bytes it cannot parse (v1.7.2, read in
// sip/transport_udp.go and sip/transport_tcp.go): UDP logs the whole
// datagram at Error level and drops it, so the sender retransmits into the
// void; TCP logs and closes the connection, taking every call on it down.
// A message that parses but lacks Via or CSeq gets a stateless 400 from the
// transaction layer (rejectMalformedRequest); one lacking anything else
// reaches our handlers (validate.go).
//
// The guard sits between the socket and sipgo. It parses each message with
// sipgo's own parser first: what parses is handed to sipgo untouched; what
// does not is answered 400 when its request line and Via can be recovered
// (RFC 3261 §8.2 / §16.3), and dropped otherwise (responses, ACKs: RFC 3261
// §17 never answers an ACK). Over TCP it also frames the stream itself, so a
// bad message is skipped instead of closing the connection. The cost is a
// second parse of every message, a few microseconds.

// guardAction labels what the guard did with a malformed message.
const (
	actionResponded = "responded"
	actionDropped   = "dropped"
	actionClosed    = "closed"
)

// guard holds what the wrapped sockets share.
type guard struct {
	parser *sip.Parser
	server string // Server header value
	// report is called for every malformed message (metrics and
	// rate-limited logging live in the Server).
	report func(transport, action string, src net.Addr, err error)
	// Stream connection limits (limits.go); conns nil: no limit.
	conns       *sourceCounts
	idleTimeout time.Duration // 0: idle connections are kept
	// limited counts a connection refused or closed by a limit (may be nil).
	limited func(label string, src net.Addr)
}

func (g *guard) countLimited(label string, src net.Addr) {
	if g.limited != nil {
		g.limited(label, src)
	}
}

// Reason phrases of the guard's answers: fixed text, never a parser's Go
// error (that goes to the log, rate-limited).
const (
	phraseMalformed     = "malformed message"
	phraseNoLength      = "missing Content-Length"
	phraseBadLength     = "bad Content-Length"
	statusMessageTooBig = 513 // RFC 3261 §21.5.11
)

// passThrough: keep-alives (RFC 5626 §3.5.1 CRLFs) and NUL padding, which
// sipgo skips by itself.
func passThrough(data []byte) bool {
	if len(bytes.Trim(data, "\x00")) == 0 {
		return true
	}
	return len(data) <= 4 && len(bytes.Trim(data, "\r\n")) == 0
}

// guardedPacketConn answers malformed datagrams before sipgo sees them.
type guardedPacketConn struct {
	net.PacketConn
	g *guard
}

// ReadFrom returns the next datagram that sipgo can parse.
func (c *guardedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || n == 0 {
			return n, addr, err
		}
		data := b[:n]
		if passThrough(data) {
			return n, addr, nil
		}
		_, perr := c.g.parser.ParseSIP(data)
		if perr == nil {
			return n, addr, nil
		}
		action := actionDropped
		if res, ok := badRequestFor(data, phraseMalformed, c.g.server); ok {
			if _, werr := c.PacketConn.WriteTo(res, addr); werr == nil {
				action = actionResponded
			}
		}
		c.g.report("udp", action, addr, perr)
	}
}

// guardedListener wraps every accepted stream connection (TCP today, TLS
// next: it wraps any net.Listener).
type guardedListener struct {
	net.Listener
	g         *guard
	transport string
}

// Accept returns the next connection within the connection limits; one
// over a limit is closed at once (limits.go).
func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src, ok := addrIP(c.RemoteAddr())
		if ok && l.g.conns != nil && !l.g.conns.acquire(src) {
			label := limitConnsTotal
			if l.g.conns.perSource > 0 && l.g.conns.held(src) >= l.g.conns.perSource {
				label = limitConnsPerSource
			}
			l.g.countLimited(label, c.RemoteAddr())
			_ = c.Close()
			continue
		}
		gc := &guardedConn{Conn: c, g: l.g, transport: l.transport, opened: time.Now()}
		if ok && l.g.conns != nil {
			gc.src, gc.counted = src, true
		}
		return gc, nil
	}
}

// Stream framing limits.
const (
	// streamMessageDeadline bounds how long one message may take to arrive
	// once its first byte has (slowloris), and how long a new connection
	// may stay silent before its first message. Between messages a
	// connection may be idle for EdgeLimits.StreamIdleTimeout, since trunks
	// keep TCP connections open between calls.
	streamMessageDeadline = 30 * time.Second
	// streamWriteTimeout bounds one write to a peer that stopped reading.
	streamWriteTimeout = 10 * time.Second
	// After a message the stream cannot carry on from (too large, no
	// usable length) the error response goes out, our side is shut for
	// writing and what the peer still sends is read and discarded for up to
	// streamLinger, so the response is not destroyed by a reset.
	streamLinger    = 2 * time.Second
	streamReadChunk = 16 << 10
)

var (
	errStreamTooLarge = errors.New("sip: stream message exceeds the maximum message length")
	errStreamFraming  = errors.New("sip: stream message has an unreadable Content-Length")
)

// guardedConn frames a SIP stream (RFC 3261 §18.3: header section, then
// Content-Length bytes) and only hands sipgo complete messages that parse.
// sipgo reads it from one goroutine; Write and the rest pass through.
type guardedConn struct {
	net.Conn
	g         *guard
	transport string

	buf      []byte    // received, not yet framed
	out      []byte    // framed and valid, not yet read by sipgo
	err      error     // sticky read error, returned once out is drained
	msgStart time.Time // when the partial message in buf began
	opened   time.Time // when the connection was accepted
	spoke    bool      // a whole message (or keep-alive) has arrived
	tmp      [streamReadChunk]byte

	// The connection's unit in guard.conns, given back once on Close.
	src       netip.Addr
	counted   bool
	closeOnce sync.Once
}

// Close closes the connection and gives back its connection-limit unit.
func (c *guardedConn) Close() error {
	c.closeOnce.Do(func() {
		if c.counted {
			c.g.conns.release(c.src)
		}
	})
	return c.Conn.Close()
}

// Write is bounded by streamWriteTimeout: a peer that stopped reading
// cannot hold the writer (sipgo's transaction goroutines) forever.
func (c *guardedConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	return c.Conn.Write(p)
}

func (c *guardedConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.frame() {
			continue
		}
		if c.err != nil {
			return 0, c.err
		}
		c.fill()
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// fill reads more bytes, with a deadline: streamMessageDeadline while a
// message is incomplete or before the first one, the idle timeout between
// messages. Every read error reaches sipgo as io.EOF: a reset or a timeout
// is routine on the Internet and sipgo would log each at Error level,
// unlimited; the guard counts and reports them itself.
func (c *guardedConn) fill() {
	switch {
	case len(c.buf) > 0:
		if c.msgStart.IsZero() {
			c.msgStart = time.Now()
		}
		_ = c.Conn.SetReadDeadline(c.msgStart.Add(streamMessageDeadline))
	case !c.spoke:
		c.msgStart = time.Time{}
		_ = c.Conn.SetReadDeadline(c.opened.Add(streamMessageDeadline))
	case c.g.idleTimeout > 0:
		c.msgStart = time.Time{}
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.g.idleTimeout))
	default:
		c.msgStart = time.Time{}
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
	n, err := c.Conn.Read(c.tmp[:])
	c.buf = append(c.buf, c.tmp[:n]...)
	if err == nil {
		return
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout() && (len(c.buf) > 0 || !c.spoke):
		c.g.countLimited(limitStreamSlow, c.Conn.RemoteAddr())
		c.g.report(c.transport, actionClosed, c.Conn.RemoteAddr(), fmt.Errorf("sip: no complete message within %s: %w", streamMessageDeadline, err))
	case errors.As(err, &ne) && ne.Timeout():
		c.g.countLimited(limitStreamIdle, c.Conn.RemoteAddr())
	}
	c.err = io.EOF
}

// linger shuts our side for writing and discards what the peer still
// sends, for up to streamLinger, so that the error response just written
// reaches it instead of being destroyed by the reset a close with unread
// data causes (RFC 3261 §18.3 gives no way to resynchronise the stream).
func (c *guardedConn) linger() {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(streamLinger))
	for {
		if _, err := c.Conn.Read(c.tmp[:]); err != nil {
			return
		}
	}
}

// frame moves one keep-alive or one message from buf to out (or drops a bad
// one) and reports whether it made progress. It sets c.err when the stream
// cannot be framed any more.
func (c *guardedConn) frame() bool {
	if len(c.buf) == 0 {
		return false
	}
	// RFC 5626 §3.5.1 keep-alives between messages: handed over on their
	// own so sipgo recognises them (and answers a double CRLF ping).
	if k := leadingCRLF(c.buf); k > 0 {
		k = min(k, 4)
		c.out = append(c.out, c.buf[:k]...)
		c.consume(k)
		c.spoke = true
		return true
	}
	if c.buf[0] == '\r' && len(c.buf) == 1 {
		return false
	}
	end := bytes.Index(c.buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(c.buf) > sip.ParseMaxMessageLength {
			c.rejectStreamWith(c.buf, statusMessageTooBig, "Message Too Large", errStreamTooLarge)
			c.buf, c.err = nil, io.EOF
			c.linger()
		}
		return false
	}
	head := c.buf[:end+4]
	cl, hasCL, err := streamContentLength(head)
	if err != nil {
		// Without a length there is no next message to find: answer if we
		// can and close, as sipgo would have.
		c.rejectStreamWith(head, sip.StatusBadRequest, "Bad Request: "+phraseBadLength, err)
		c.buf, c.err = nil, io.EOF
		c.linger()
		return false
	}
	total := end + 4 + cl
	if total > sip.ParseMaxMessageLength {
		c.rejectStreamWith(head, statusMessageTooBig, "Message Too Large", errStreamTooLarge)
		c.buf, c.err = nil, io.EOF
		c.linger()
		return false
	}
	if len(c.buf) < total {
		return false
	}
	msg := c.buf[:total]
	if !hasCL {
		// RFC 3261 §18.3: Content-Length is mandatory on streams. Assume
		// no body, answer 400 and carry on with the next message.
		c.rejectStreamWith(msg, sip.StatusBadRequest, "Bad Request: "+phraseNoLength, errors.New("missing Content-Length"))
	} else if _, n, perr := c.g.parser.Parse(msg, true); perr != nil || n != len(msg) {
		// Parsed the way sipgo's stream parser will parse it.
		if perr == nil {
			perr = errStreamFraming
		}
		c.rejectStreamWith(msg, sip.StatusBadRequest, "Bad Request: "+phraseMalformed, perr)
	} else {
		c.out = append(c.out, msg...)
	}
	c.spoke = true
	c.consume(total)
	return true
}

func (c *guardedConn) consume(n int) {
	c.buf = append(c.buf[:0], c.buf[n:]...)
	c.msgStart = time.Time{}
}

// rejectStreamWith answers a malformed message on the connection with a
// fixed status and phrase if it can; cause goes to the report only.
func (c *guardedConn) rejectStreamWith(msg []byte, status int, phrase string, cause error) {
	action := actionDropped
	if res, ok := errorResponseFor(msg, status, phrase, c.g.server); ok {
		if _, err := c.Write(res); err == nil {
			action = actionResponded
		}
	}
	c.g.report(c.transport, action, c.Conn.RemoteAddr(), cause)
}

func leadingCRLF(b []byte) int {
	n := 0
	for n+1 < len(b) && b[n] == '\r' && b[n+1] == '\n' {
		n += 2
	}
	return n
}

// streamContentLength reads Content-Length (or its compact form "l") from a
// header section as sipgo will: the start line and folded continuation lines
// (starting with a space or tab) are not headers. found is false when there
// is none; two different values or a bad number are an error.
func streamContentLength(head []byte) (n int, found bool, err error) {
	lines := bytes.Split(head, []byte("\r\n"))
	for _, ln := range lines[1:] {
		if len(ln) == 0 || ln[0] == ' ' || ln[0] == '\t' {
			continue
		}
		name, v, ok := bytes.Cut(ln, []byte(":"))
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(string(name))) {
		case "content-length", "l":
		default:
			continue
		}
		x, err := strconv.Atoi(strings.TrimSpace(string(v)))
		if err != nil || x < 0 {
			return 0, false, errStreamFraming
		}
		if found && x != n {
			return 0, false, errStreamFraming
		}
		n, found = x, true
	}
	return n, found, nil
}

// badRequestFor builds a 400 for a request sipgo could not parse, copying
// Via, From, To, Call-ID and CSeq as they came (RFC 3261 §8.2.6.2). It
// returns false when no response may or can be sent: not a request, an ACK,
// no Via, or a Via with control characters (the response could not be
// routed, or would carry them). Only whole lines are copied, so nothing the
// peer sent can start a new header in our response.
func badRequestFor(data []byte, detail, server string) ([]byte, bool) {
	phrase := "Bad Request"
	if d := sanitizePhrase(detail); d != "" {
		phrase += ": " + d
	}
	return errorResponseFor(data, sip.StatusBadRequest, phrase, server)
}

// errorResponseFor is badRequestFor with any status and phrase (513 for a
// message too large).
func errorResponseFor(data []byte, status int, phrase, server string) ([]byte, bool) {
	head := data
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i]
	}
	lines := strings.Split(string(head), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	method, rest, ok := strings.Cut(lines[0], " ")
	if !ok || !isToken(method) || method == "ACK" {
		return nil, false
	}
	uri, version, ok := strings.Cut(rest, " ")
	if !ok || uri == "" || !isVisible(uri) || !strings.EqualFold(version, "SIP/2.0") {
		return nil, false
	}
	var vias []string
	var from, to, callID, cseq string
	for _, ln := range lines[1:] {
		if ln == "" {
			break
		}
		if ln[0] == ' ' || ln[0] == '\t' {
			continue // folded continuation: not copied
		}
		name, val, ok := strings.Cut(ln, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		// Copy only what a strict parser reads back: a header sipgo could
		// not parse would make our 400 as unreadable as the request.
		safe := isFieldValue(val) && headerParses(name, val)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v":
			if !safe || val == "" {
				return nil, false
			}
			vias = append(vias, val)
		case "from", "f":
			if safe && from == "" {
				from = val
			}
		case "to", "t":
			if safe && to == "" {
				to = val
			}
		case "call-id", "i":
			if safe && callID == "" {
				callID = val
			}
		case "cseq":
			if safe && cseq == "" {
				cseq = val
			}
		}
	}
	if len(vias) == 0 {
		return nil, false
	}
	var b strings.Builder
	b.WriteString("SIP/2.0 " + strconv.Itoa(status) + " " + sanitizePhrase(phrase) + "\r\n")
	for _, v := range vias {
		b.WriteString("Via: " + v + "\r\n")
	}
	if from != "" {
		b.WriteString("From: " + from + "\r\n")
	}
	if to != "" {
		// RFC 3261 §8.2.6.2: a UAS adds a To tag to its responses.
		if !strings.Contains(strings.ToLower(to), ";tag=") {
			to += ";tag=" + sip.GenerateTagN(16)
		}
		b.WriteString("To: " + to + "\r\n")
	}
	if callID != "" {
		b.WriteString("Call-ID: " + callID + "\r\n")
	}
	if cseq != "" {
		b.WriteString("CSeq: " + cseq + "\r\n")
	}
	if server != "" {
		b.WriteString("Server: " + server + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String()), true
}

var headerParser = sip.DefaultHeadersParser()

// headerParses reports whether sipgo's parser accepts the header line.
func headerParses(name, val string) bool {
	_, err := sip.HeadersParser(headerParser).ParseHeader(nil, []byte(strings.TrimSpace(name)+": "+val))
	return err == nil
}

// isToken: RFC 3261 §25.1 token characters.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("-.!%*_+`'~", rune(c)) {
			return false
		}
	}
	return true
}

// isVisible: no spaces or control characters.
func isVisible(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// isFieldValue: printable text (UTF-8 allowed), spaces and tabs, nothing
// that ends a line.
func isFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
