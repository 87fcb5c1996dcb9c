package sip

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/sipbridge/sipbridge/sip/records"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// Listener is one socket the server answers on.
type Listener struct {
	// Network is "udp", "tcp" or "tls" ("udp4", "udp6", "tcp4", "tcp6",
	// "tls4", "tls6" also work). The guard that answers malformed input
	// wraps TLS listeners too (tls.go).
	Network string
	// Addr is host:port; port 0 picks a free port (see Server.Addrs).
	Addr string
	// CertFile and KeyFile are the PEM certificate chain and key of a TLS
	// listener (reloaded when the files change), unless TLSConfig is set.
	CertFile, KeyFile string
	// TLSConfig, for a TLS listener, replaces CertFile/KeyFile (TLS 1.2 at
	// least is enforced).
	TLSConfig *tls.Config
}

// Config configures a Server. Zero values get the defaults noted per field.
type Config struct {
	// Listen are the sockets to serve; at least one.
	Listen []Listener
	// AdvertiseHost is the host or IP written into our Contact and the SDP
	// c= line: the public address when behind NAT. Default: the first
	// listener's IP, or this host's first global unicast address when that
	// IP is unspecified (0.0.0.0 / ::).
	AdvertiseHost string
	// UserAgent goes into Server (responses) and User-Agent (requests).
	// Default "sipbridge".
	UserAgent string
	// MaxCalls caps concurrent calls (setup included); beyond it INVITEs get
	// 503 with Retry-After. 0 = unlimited.
	MaxCalls int
	// ACKTimeout is how long to wait for the ACK of our 200 OK before
	// ending the call with BYE (RFC 3261 §13.3.1.4). Default 32 s (64·T1).
	ACKTimeout time.Duration
	// MediaTimeout ends a call after this long without RTP from the caller.
	// Default 30 s; negative disables it.
	MediaTimeout time.Duration
	// AnswerWhenReady sends 180 Ringing and answers (200) only once the
	// conversation's first realtime session is up, so the caller never talks
	// into an AI that is not listening; if no region can take the call it is
	// refused with 503 instead of answered into dead air. A CANCEL while
	// ringing gets 487 and closes the session being opened.
	AnswerWhenReady bool
	// AnswerTimeout bounds the wait for the AI when AnswerWhenReady (default
	// 10 s); past it the call gets 503.
	AnswerTimeout time.Duration
	// SymmetricRTP sends RTP to where the caller's RTP comes from instead
	// of the SDP address (NATed callers).
	SymmetricRTP bool
	// LatchBeforeSend (with SymmetricRTP): send RTP only once the caller's
	// RTP has been heard, and only to its source, never to the SDP address.
	LatchBeforeSend bool
	// ComfortNoiseDB is the level of the noise sent when nothing plays
	// (dBov, e.g. -65); 0 = the media default.
	ComfortNoiseDB float64
	// UplinkChunk is how much caller audio the media stream hands the
	// conversation at once (media.StreamConfig.UplinkChunk); 0 = every 20 ms
	// frame on its own.
	UplinkChunk time.Duration
	// SessionExpires is the session interval (RFC 4028) we ask for when the
	// caller supports session timers but offers none. Default 30 min;
	// negative: never impose one (a caller's Session-Expires is still
	// honoured).
	SessionExpires time.Duration
	// MinSE is the smallest session interval we accept: a smaller
	// Session-Expires gets 422 with this Min-SE (RFC 4028 §5, §9). Default
	// 90 s, the RFC's floor; smaller values are for tests.
	MinSE time.Duration
	// SessionRefresher is who refreshes when the caller leaves it to us:
	// "uas" (we do, the default) or "uac" (the caller).
	SessionRefresher string
	// Trunks say who may call (acl.go, auth.go): none = anyone; otherwise
	// the source IP must match a trunk, and trunks with credentials
	// require digest authentication of each new INVITE.
	Trunks []Trunk
	// AuthLimit blocks a source after repeated authorisation failures.
	AuthLimit AuthLimit
	// Limits bound what one source may hold: un-ACKed calls, OPTIONS rate,
	// TCP/TLS connections (limits.go). Zero values get the defaults.
	Limits EdgeLimits
	// Registrations are bindings kept at registrars as a client (RFC 3261
	// §10, register.go): for PBXs and carriers that route calls to a
	// registered contact rather than to a fixed address.
	Registrations []Registration
	// Codecs are the static payload types calls may use (sdp.PTG722,
	// sdp.PTPCMU, sdp.PTPCMA) in our order of preference; the caller's
	// order wins among them. Default DefaultCodecs (G722, PCMU, PCMA).
	// A trunk's Codecs replace them for its calls (mediapolicy.go).
	Codecs []uint8
	// MediaEncryption is the SDES-SRTP policy (none, optional, required)
	// of calls whose trunk sets none. Default none.
	MediaEncryption sdp.Encryption
	// Records writes one JSON line per call (records.path); Path empty: off.
	// The server opens the file when it starts serving and closes it
	// after the calls have drained.
	Records records.Config
	// Prices per region turn each response's usage into a cost in the
	// record (regions[].prices); a region not listed is not priced.
	Prices map[string]realtime.Prices
	// Capacity, when set, refuses new calls with 503 + Retry-After (and
	// answers OPTIONS 503) while no region can take one.
	Capacity CapacityGate
}

// Defaults.
const (
	DefaultUserAgent    = "sipbridge"
	DefaultACKTimeout   = 32 * time.Second
	DefaultMediaTimeout = 30 * time.Second
	// defaultAnswerTimeout bounds ringing while the AI connects.
	defaultAnswerTimeout = 10 * time.Second
	// DefaultAnswerTimeout is that bound for callers (the binary's
	// sip.answer_timeout).
	DefaultAnswerTimeout = defaultAnswerTimeout
)

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if len(c.Listen) == 0 {
		return c, fmt.Errorf("%w: no listener", ErrConfig)
	}
	if c.Records.Path != "" {
		if err := c.Records.Validate(); err != nil {
			return c, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	c.Listen = append([]Listener(nil), c.Listen...) // do not write to the caller's slice
	for i, l := range c.Listen {
		switch strings.ToLower(l.Network) {
		case "udp", "udp4", "udp6", "tcp", "tcp4", "tcp6":
		case "tls", "tls4", "tls6":
			if err := tlsListenerDefaults(&c.Listen[i]); err != nil { // tls.go
				return c, err
			}
		default:
			return c, fmt.Errorf("%w: listener %d: network %q (want udp, tcp or tls)", ErrConfig, i, l.Network)
		}
		if _, _, err := net.SplitHostPort(l.Addr); err != nil {
			return c, fmt.Errorf("%w: listener %d: addr %q: %w", ErrConfig, i, l.Addr, err)
		}
		c.Listen[i].Network = strings.ToLower(l.Network)
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if err := ValidateUserAgent(c.UserAgent); err != nil {
		return c, fmt.Errorf("%w: user agent: %w", ErrConfig, err)
	}
	if c.ACKTimeout <= 0 {
		c.ACKTimeout = DefaultACKTimeout
	}
	switch {
	case c.MediaTimeout == 0:
		c.MediaTimeout = DefaultMediaTimeout
	case c.MediaTimeout < 0:
		c.MediaTimeout = 0 // media: 0 = never
	}
	if err := ValidateMaxCalls(c.MaxCalls); err != nil {
		return c, fmt.Errorf("%w: max calls: %w", ErrConfig, err)
	}
	c.Limits = c.Limits.WithDefaults()
	if c.AdvertiseHost == "" {
		h, err := defaultAdvertiseHost(c.Listen[0].Addr)
		if err != nil {
			return c, err
		}
		c.AdvertiseHost = h
	}
	if err := ValidateAdvertiseHost(c.AdvertiseHost); err != nil {
		return c, fmt.Errorf("%w: advertise host: %w", ErrConfig, err)
	}
	var terr error
	if c, terr = c.withTimerDefaults(); terr != nil { // timers.go
		return c, terr
	}
	if err := c.withTrunkDefaults(); err != nil { // acl.go
		return c, err
	}
	if err := c.withMediaDefaults(); err != nil { // mediapolicy.go
		return c, err
	}
	regs, err := registrationsWithDefaults(c.Registrations, c.Listen)
	if err != nil {
		return c, err
	}
	c.Registrations = regs
	return c, nil
}

// defaultAdvertiseHost is the listen IP, or a global unicast address of this
// host when the listener binds every interface.
func defaultAdvertiseHost(addr string) (string, error) {
	host, _, _ := net.SplitHostPort(addr)
	ip, err := netip.ParseAddr(host)
	if err == nil && !ip.IsUnspecified() {
		return ip.String(), nil
	}
	if err != nil && host != "" {
		return host, nil // a hostname
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("%w: no advertise host and interfaces unreadable: %w", ErrConfig, err)
	}
	var fallback string
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		if ip.Is4() && ip.IsGlobalUnicast() {
			return ip.String(), nil
		}
		if fallback == "" && ip.IsGlobalUnicast() {
			fallback = ip.String()
		}
	}
	if fallback != "" {
		return fallback, nil
	}
	return "", fmt.Errorf("%w: set AdvertiseHost: listener %q binds every interface and none has a global address", ErrConfig, addr)
}

// The rules of single Config fields, exported so that the binary's config
// (configs) applies the same rule under its own key instead of a copy.

// ValidateUserAgent: the User-Agent/Server value must not break the header.
func ValidateUserAgent(ua string) error {
	if !headerSafe(ua) {
		return errors.New("must not contain CR, LF or NUL")
	}
	return nil
}

// ValidateMaxCalls: 0 is no cap; negative is an error.
func ValidateMaxCalls(n int) error {
	if n < 0 {
		return fmt.Errorf("%d is negative (0 = no cap)", n)
	}
	return nil
}

// ValidateAdvertiseHost: the host put in Contact and SDP c= must be an IP
// literal or a DNS name.
func ValidateAdvertiseHost(h string) error {
	if !isHostToken(h) {
		return fmt.Errorf("%q is not an IP address or a DNS name", h)
	}
	return nil
}

// isHostToken accepts an IP literal or a DNS name.
func isHostToken(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
