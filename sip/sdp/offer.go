package sdp

import (
	"errors"
	"net/netip"
	"strings"
)

// Errors returned by ParseOffer and Negotiate.
var (
	// ErrInvalid: the body is not an SDP session description either parser
	// can read (no m= line, bad m= line, ...). A SIP server answers 400.
	ErrInvalid = errors.New("sdp: invalid session description")
	// ErrNoCommonCodec: nothing in the offer can be answered: no audio m-line,
	// only secure (SAVP) audio, or no PCMU/PCMA. A SIP server answers 488
	// Not Acceptable Here (RFC 3261 §21.4.26). The errors that wrap it say
	// which case it was.
	ErrNoCommonCodec = errors.New("sdp: no common codec")
)

// maxCryptoLines bounds the a=crypto lines kept per m-line.
const maxCryptoLines = 16

// Limits that keep a hostile body from costing more than a real offer.
const (
	maxBodyBytes    = 64 << 10
	maxMediaLines   = 32
	maxFormatsPerM  = 64
	maxLineBytes    = 4096
	telephoneEvName = "telephone-event"
)

// Direction is an SDP media direction attribute (RFC 4566 §6, RFC 3264 §5.1).
type Direction uint8

const (
	SendRecv Direction = iota // the default when no attribute is present
	SendOnly
	RecvOnly
	Inactive
)

// String returns the attribute name (sendrecv, sendonly, recvonly, inactive).
func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	default:
		return "sendrecv"
	}
}

// Sends reports whether the side using d sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the side using d receives media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// directionOf returns the direction attribute named by key.
func directionOf(key string) (Direction, bool) {
	switch key {
	case "sendrecv":
		return SendRecv, true
	case "sendonly":
		return SendOnly, true
	case "recvonly":
		return RecvOnly, true
	case "inactive":
		return Inactive, true
	}
	return SendRecv, false
}

// Codec is one payload type of an m-line.
type Codec struct {
	PT       uint8  // RTP payload type (0-127)
	Name     string // encoding name as offered (or from the RFC 3551 static table)
	Rate     int    // clock rate in Hz; 0 when unknown
	Channels int    // 0 when not given
	Fmtp     string // a=fmtp parameters for this PT, "" when absent
}

// Is reports whether c is the named encoding at rate (case-insensitive
// names, RFC 4855 §3).
func (c Codec) Is(name string, rate int) bool {
	return strings.EqualFold(c.Name, name) && c.Rate == rate
}

// Media is one m-line of an offer.
type Media struct {
	Type    string   // "audio", "video", "image", ...
	Port    int      // 0 = the offerer disabled the stream
	Proto   string   // "RTP/AVP", "RTP/SAVP", "udptl", ...
	Formats []string // the fmt list exactly as offered, in order
	// Codecs are the RTP payload types of Formats in the offered order
	// (empty for non-RTP protos). Static types (RFC 3551 §6) are named even
	// without an rtpmap; unknown dynamic ones have an empty Name.
	Codecs []Codec
	// Addr is the effective connection address: the media-level c= line,
	// else the session-level one (RFC 4566 §5.7). Invalid when absent or
	// not an IP literal (see AddrRaw).
	Addr    netip.Addr
	AddrRaw string
	// Direction is the effective direction: media-level attribute, else
	// session-level, else sendrecv (RFC 3264 §5.1).
	Direction Direction
	Ptime     int // a=ptime in ms, 0 when absent
	MaxPtime  int // a=maxptime in ms, 0 when absent
	// Crypto are the SDES a=crypto lines (RFC 4568) in offered order;
	// lines that do not parse are left out and counted in CryptoInvalid.
	Crypto        []Crypto
	CryptoInvalid int
}

// IsRTP reports whether the m-line carries RTP (its proto starts with RTP/).
func (m Media) IsRTP() bool { return strings.HasPrefix(strings.ToUpper(m.Proto), "RTP/") }

// IsSecure reports whether the proto asks for SRTP (RTP/SAVP, RTP/SAVPF,
// UDP/TLS/RTP/SAVP[F]; RFC 3711, RFC 5764).
func (m Media) IsSecure() bool { return strings.Contains(strings.ToUpper(m.Proto), "SAVP") }

// IsDTLS reports whether the proto asks for DTLS-SRTP (UDP/TLS/RTP/SAVP[F],
// RFC 5764), which is keyed in the media path rather than by SDES.
func (m Media) IsDTLS() bool { return strings.HasPrefix(strings.ToUpper(m.Proto), "UDP/TLS/") }

// Codec returns the codec with payload type pt.
func (m Media) Codec(pt uint8) (Codec, bool) {
	for _, c := range m.Codecs {
		if c.PT == pt {
			return c, true
		}
	}
	return Codec{}, false
}

// TelephoneEvent returns the telephone-event payload type at 8000 Hz
// (RFC 4733 §7.1.1: its clock rate must match the audio codec's).
func (m Media) TelephoneEvent() (Codec, bool) { return m.TelephoneEventAt(8000) }

// TelephoneEventAt returns the telephone-event payload type at clock rate.
func (m Media) TelephoneEventAt(rate int) (Codec, bool) {
	for _, c := range m.Codecs {
		if c.Is(telephoneEvName, rate) {
			return c, true
		}
	}
	return Codec{}, false
}

// RemoteAddr is where RTP for this m-line goes (Addr:Port). It is invalid
// when the address is absent, not an IP, unspecified (0.0.0.0 hold) or the
// port is 0.
func (m Media) RemoteAddr() netip.AddrPort {
	if !m.Addr.IsValid() || m.Addr.IsUnspecified() || m.Port <= 0 || m.Port > 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(m.Addr, uint16(m.Port))
}

// Offer is a parsed SDP offer.
type Offer struct {
	// Origin o= fields; an unchanged SessionVersion in a re-INVITE means the
	// session did not change (RFC 3264 §8).
	OriginUser     string
	SessionID      string
	SessionVersion string
	// Media are the m-lines in order.
	Media []Media
	// Lenient is set when pion rejected the body and the fallback parser read it.
	Lenient bool
	// PionErr is pion's error when Lenient is set (for logging).
	PionErr error
}

// FirstAudio returns the index of the first audio m-line with a non-zero
// port, or -1.
func (o Offer) FirstAudio() int {
	for i, m := range o.Media {
		if strings.EqualFold(m.Type, "audio") && m.Port != 0 {
			return i
		}
	}
	return -1
}

// staticPT is the RFC 3551 §6 table of static payload types (audio and video).
var staticPT = map[uint8]Codec{
	0:  {Name: "PCMU", Rate: 8000, Channels: 1},
	3:  {Name: "GSM", Rate: 8000, Channels: 1},
	4:  {Name: "G723", Rate: 8000, Channels: 1},
	5:  {Name: "DVI4", Rate: 8000, Channels: 1},
	6:  {Name: "DVI4", Rate: 16000, Channels: 1},
	7:  {Name: "LPC", Rate: 8000, Channels: 1},
	8:  {Name: "PCMA", Rate: 8000, Channels: 1},
	9:  {Name: "G722", Rate: 8000, Channels: 1},
	10: {Name: "L16", Rate: 44100, Channels: 2},
	11: {Name: "L16", Rate: 44100, Channels: 1},
	12: {Name: "QCELP", Rate: 8000, Channels: 1},
	13: {Name: "CN", Rate: 8000, Channels: 1},
	14: {Name: "MPA", Rate: 90000},
	15: {Name: "G728", Rate: 8000, Channels: 1},
	16: {Name: "DVI4", Rate: 11025, Channels: 1},
	17: {Name: "DVI4", Rate: 22050, Channels: 1},
	18: {Name: "G729", Rate: 8000, Channels: 1},
	25: {Name: "CelB", Rate: 90000},
	26: {Name: "JPEG", Rate: 90000},
	28: {Name: "nv", Rate: 90000},
	31: {Name: "H261", Rate: 90000},
	32: {Name: "MPV", Rate: 90000},
	33: {Name: "MP2T", Rate: 90000},
	34: {Name: "H263", Rate: 90000},
}
