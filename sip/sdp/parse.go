package sdp

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	pion "github.com/pion/sdp/v3"
)

// rawAttr is one a= line.
type rawAttr struct{ key, value string }

// rawMedia is one m= section before interpretation.
type rawMedia struct {
	media   string
	port    int
	proto   string
	formats []string
	conn    string // c= value, "" when absent
	attrs   []rawAttr
}

// rawSession is what either parser extracts; build turns it into an Offer.
type rawSession struct {
	originUser, sessionID, sessionVersion string
	conn                                  string
	attrs                                 []rawAttr
	media                                 []rawMedia
}

// ParseOffer parses an SDP offer (RFC 4566). It tries pion/sdp first and
// falls back to a lenient line-oriented parser when pion rejects the body;
// Offer.Lenient says which one succeeded. Errors wrap ErrInvalid.
func ParseOffer(body []byte) (Offer, error) {
	if len(body) > maxBodyBytes {
		return Offer{}, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrInvalid, len(body), maxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Offer{}, fmt.Errorf("%w: empty body", ErrInvalid)
	}
	var (
		raw     rawSession
		lenient bool
		pionErr error
	)
	var sd pion.SessionDescription
	if err := sd.Unmarshal(body); err == nil {
		raw = fromPion(&sd)
	} else {
		pionErr = err
		r, lerr := parseLenient(string(body))
		if lerr != nil {
			return Offer{}, fmt.Errorf("%w (pion: %v)", lerr, err)
		}
		raw, lenient = r, true
	}
	o, err := build(raw)
	if err != nil {
		return Offer{}, err
	}
	o.Lenient, o.PionErr = lenient, pionErr
	return o, nil
}

// fromPion copies what we use out of pion's model.
func fromPion(sd *pion.SessionDescription) rawSession {
	raw := rawSession{
		originUser:     sd.Origin.Username,
		sessionID:      strconv.FormatUint(sd.Origin.SessionID, 10),
		sessionVersion: strconv.FormatUint(sd.Origin.SessionVersion, 10),
		conn:           pionConn(sd.ConnectionInformation),
	}
	for _, a := range sd.Attributes {
		raw.attrs = append(raw.attrs, rawAttr{a.Key, a.Value})
	}
	for _, md := range sd.MediaDescriptions {
		if md == nil {
			continue
		}
		rm := rawMedia{
			media:   md.MediaName.Media,
			port:    md.MediaName.Port.Value,
			proto:   strings.Join(md.MediaName.Protos, "/"),
			formats: append([]string(nil), md.MediaName.Formats...),
			conn:    pionConn(md.ConnectionInformation),
		}
		for _, a := range md.Attributes {
			rm.attrs = append(rm.attrs, rawAttr{a.Key, a.Value})
		}
		raw.media = append(raw.media, rm)
	}
	return raw
}

func pionConn(c *pion.ConnectionInformation) string {
	if c == nil || c.Address == nil {
		return ""
	}
	return c.NetworkType + " " + c.AddressType + " " + c.Address.Address
}

// parseLenient reads "x=value" lines in any order, with CRLF or LF endings.
// It only understands what the bridge needs (o=, c=, m=, a=) and skips the
// rest, including lines that are not "x=..." at all. It requires at least one
// well-formed m= line.
func parseLenient(body string) (rawSession, error) {
	var (
		raw rawSession
		cur *rawMedia
	)
	for ln := range strings.SplitSeq(body, "\n") {
		ln = strings.TrimRight(ln, "\r \t")
		if len(ln) > maxLineBytes {
			return rawSession{}, fmt.Errorf("%w: line longer than %d bytes", ErrInvalid, maxLineBytes)
		}
		if len(ln) < 2 || ln[1] != '=' {
			continue
		}
		val := ln[2:]
		switch ln[0] {
		case 'o':
			f := strings.Fields(val)
			if len(f) >= 3 {
				raw.originUser, raw.sessionID, raw.sessionVersion = f[0], f[1], f[2]
			}
		case 'c':
			if cur != nil {
				cur.conn = val
			} else {
				raw.conn = val
			}
		case 'm':
			if len(raw.media) >= maxMediaLines {
				return rawSession{}, fmt.Errorf("%w: more than %d m-lines", ErrInvalid, maxMediaLines)
			}
			m, err := parseMLine(val)
			if err != nil {
				return rawSession{}, err
			}
			raw.media = append(raw.media, m)
			cur = &raw.media[len(raw.media)-1]
		case 'a':
			k, v, _ := strings.Cut(val, ":")
			if cur != nil {
				cur.attrs = append(cur.attrs, rawAttr{k, v})
			} else {
				raw.attrs = append(raw.attrs, rawAttr{k, v})
			}
		}
	}
	if len(raw.media) == 0 {
		return rawSession{}, fmt.Errorf("%w: no m= line", ErrInvalid)
	}
	return raw, nil
}

// parseMLine parses "<media> <port>[/<n>] <proto> <fmt> ..." (RFC 4566 §5.14).
func parseMLine(val string) (rawMedia, error) {
	f := strings.Fields(val)
	if len(f) < 3 {
		return rawMedia{}, fmt.Errorf("%w: m= line %q has fewer than 3 fields", ErrInvalid, clip(val))
	}
	portStr, _, _ := strings.Cut(f[1], "/")
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return rawMedia{}, fmt.Errorf("%w: m= line port %q", ErrInvalid, clip(f[1]))
	}
	return rawMedia{media: f[0], port: port, proto: f[2], formats: f[3:]}, nil
}

// build interprets a rawSession. Both parsers end here, so an offer means
// the same thing whichever one read it.
func build(raw rawSession) (Offer, error) {
	if len(raw.media) == 0 {
		return Offer{}, fmt.Errorf("%w: no m= line", ErrInvalid)
	}
	if len(raw.media) > maxMediaLines {
		return Offer{}, fmt.Errorf("%w: more than %d m-lines", ErrInvalid, maxMediaLines)
	}
	o := Offer{
		OriginUser:     raw.originUser,
		SessionID:      raw.sessionID,
		SessionVersion: raw.sessionVersion,
		Media:          make([]Media, 0, len(raw.media)),
	}
	sessDir, _ := lastDirection(raw.attrs)
	for _, rm := range raw.media {
		if !isToken(rm.media) || !isToken(rm.proto) {
			return Offer{}, fmt.Errorf("%w: m= line media/proto not a token", ErrInvalid)
		}
		if rm.port < 0 || rm.port > 65535 {
			return Offer{}, fmt.Errorf("%w: m= line port %d", ErrInvalid, rm.port)
		}
		if len(rm.formats) > maxFormatsPerM {
			return Offer{}, fmt.Errorf("%w: more than %d formats on an m= line", ErrInvalid, maxFormatsPerM)
		}
		for _, f := range rm.formats {
			if !isToken(f) {
				return Offer{}, fmt.Errorf("%w: m= line format not a token", ErrInvalid)
			}
		}
		m := Media{
			Type:    rm.media,
			Port:    rm.port,
			Proto:   rm.proto,
			Formats: rm.formats,
		}
		conn := rm.conn
		if conn == "" {
			conn = raw.conn
		}
		m.AddrRaw, m.Addr = parseConn(conn)
		if d, ok := lastDirection(rm.attrs); ok {
			m.Direction = d
		} else {
			m.Direction = sessDir
		}
		m.Ptime = attrInt(rm.attrs, "ptime")
		if m.Ptime == 0 {
			m.Ptime = attrInt(raw.attrs, "ptime")
		}
		m.MaxPtime = attrInt(rm.attrs, "maxptime")
		if m.IsRTP() {
			m.Codecs = codecsOf(rm)
		}
		for _, a := range rm.attrs {
			if a.key != "crypto" {
				continue
			}
			c, err := ParseCrypto(a.value)
			if err != nil || len(m.Crypto) >= maxCryptoLines {
				m.CryptoInvalid++
				continue
			}
			m.Crypto = append(m.Crypto, c)
		}
		o.Media = append(o.Media, m)
	}
	return o, nil
}

// codecsOf lists the payload types of an RTP m-line in offered order, named
// by this m-line's rtpmap (never another m-line's) or the static table.
func codecsOf(rm rawMedia) []Codec {
	rtpmap := map[uint8]Codec{}
	fmtp := map[uint8]string{}
	for _, a := range rm.attrs {
		switch a.key {
		case "rtpmap":
			pt, rest, ok := ptPrefix(a.value)
			if !ok {
				continue
			}
			if _, dup := rtpmap[pt]; dup {
				continue // RFC 4566: one rtpmap per format; keep the first
			}
			if c, ok := parseRtpmap(rest); ok {
				c.PT = pt
				rtpmap[pt] = c
			}
		case "fmtp":
			pt, rest, ok := ptPrefix(a.value)
			if !ok {
				continue
			}
			if _, dup := fmtp[pt]; !dup {
				fmtp[pt] = strings.TrimSpace(rest)
			}
		}
	}
	out := make([]Codec, 0, len(rm.formats))
	seen := map[uint8]bool{}
	for _, f := range rm.formats {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil || n > 127 {
			continue // not an RTP payload type (RFC 3550 §5.1: 7 bits)
		}
		pt := uint8(n)
		if seen[pt] {
			continue
		}
		seen[pt] = true
		c, ok := rtpmap[pt]
		if !ok {
			c = staticPT[pt] // zero Codec (empty name) for unknown dynamic types
			c.PT = pt
		}
		c.Fmtp = fmtp[pt]
		out = append(out, c)
	}
	return out
}

// ptPrefix splits "<pt> <rest>" of an rtpmap/fmtp value.
func ptPrefix(v string) (uint8, string, bool) {
	v = strings.TrimLeft(v, " \t")
	ptStr, rest, _ := strings.Cut(v, " ")
	n, err := strconv.ParseUint(ptStr, 10, 8)
	if err != nil || n > 127 {
		return 0, "", false
	}
	return uint8(n), rest, true
}

// parseRtpmap parses "<name>/<rate>[/<channels>]" (RFC 4566 §6).
func parseRtpmap(s string) (Codec, bool) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) < 2 || parts[0] == "" || !isToken(parts[0]) {
		return Codec{}, false
	}
	rate, err := strconv.Atoi(parts[1])
	if err != nil || rate <= 0 {
		return Codec{}, false
	}
	c := Codec{Name: parts[0], Rate: rate}
	if len(parts) >= 3 {
		if ch, err := strconv.Atoi(parts[2]); err == nil && ch > 0 {
			c.Channels = ch
		}
	}
	return c, true
}

// parseConn extracts the address of "IN IP4 <addr>[/ttl[/n]]" (RFC 4566 §5.7).
func parseConn(v string) (string, netip.Addr) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return "", netip.Addr{}
	}
	addr, _, _ := strings.Cut(f[2], "/")
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr, netip.Addr{}
	}
	return addr, ip.Unmap()
}

// lastDirection returns the last direction attribute in attrs.
func lastDirection(attrs []rawAttr) (Direction, bool) {
	var (
		d     Direction
		found bool
	)
	for _, a := range attrs {
		if a.value != "" {
			continue
		}
		if dd, ok := directionOf(a.key); ok {
			d, found = dd, true
		}
	}
	return d, found
}

// attrInt reads an integer attribute such as ptime ("20", "20.0", " 30").
func attrInt(attrs []rawAttr, key string) int {
	for _, a := range attrs {
		if a.key != key {
			continue
		}
		v := strings.TrimSpace(a.value)
		if i := strings.IndexByte(v, '.'); i >= 0 {
			v = v[:i]
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 10000 {
			return 0
		}
		return n
	}
	return 0
}

// isToken reports whether s is a non-empty run of visible ASCII with no
// spaces: what may be echoed back in an answer without changing its lines.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// clip shortens s for an error message and drops control characters.
func clip(s string) string {
	const maxLen = 40
	if len(s) > maxLen {
		s = s[:maxLen]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
