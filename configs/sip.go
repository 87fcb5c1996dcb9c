package configs

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/sipbridge/sipbridge/sip"
)

// SIP is the signalling side (sip).
type SIP struct {
	// Listen is one "host:port" or a list of them.
	Listen StringList `yaml:"listen"`
	// Transports to serve on every listen address: udp, tcp.
	Transports []string `yaml:"transports"`
	// Advertise is the host put in Contact and SDP c= (default: the listen host;
	// required when listening on 0.0.0.0 / ::).
	Advertise string `yaml:"advertise"`
	// UserAgent is the User-Agent / Server header.
	UserAgent string `yaml:"user_agent"`
	// MaxCalls caps concurrent calls; beyond it INVITEs get 503 (0 = no cap).
	MaxCalls int `yaml:"max_calls"`
	// ACKTimeout ends a call whose 200 OK is never ACKed.
	ACKTimeout Duration `yaml:"ack_timeout"`
	// AnswerWhenReady rings (180) until the AI session is up, then answers;
	// 503 if no region can take the call.
	AnswerWhenReady *bool `yaml:"answer_when_ready"`
	// AnswerTimeout bounds that ringing.
	AnswerTimeout Duration `yaml:"answer_timeout"`
	// Trunks say who may call (trunks.go); none = anyone.
	Trunks []Trunk `yaml:"trunks"`
	// AuthLimit blocks sources that keep failing authorisation (trunks.go).
	AuthLimit AuthLimit `yaml:"auth_limit"`
	// TLS, when present, adds a SIP over TLS listener (trunks.go).
	TLS *TLS `yaml:"tls"`
	// SessionExpires is the RFC 4028 session interval we ask for when the
	// caller supports timers but offers none.
	SessionExpires Duration `yaml:"session_expires"`
	// MinSE is the smallest session interval accepted; below it 422.
	MinSE Duration `yaml:"min_se"`
	// SessionRefresher is who refreshes when the caller leaves it open: uas (us) or uac.
	SessionRefresher string `yaml:"session_refresher"`
	// Register are registrars sipbridge registers with as a client (register.go).
	Register []Registration `yaml:"register"`
	// Limits bound what one source may hold (hostile traffic).
	Limits SIPLimits `yaml:"limits"`
}

// SIPLimits are sip.limits: the edge's per-source and total bounds
// (sip.EdgeLimits owns the defaults; a negative number turns one off).
type SIPLimits struct {
	// MaxUnconfirmedPerSource: calls from one IP answered or ringing and
	// not ACKed; one more gets 503.
	MaxUnconfirmedPerSource int `yaml:"max_unconfirmed_per_source"`
	// OptionsPerSecond: OPTIONS from one IP per second (burst twice that);
	// the rest are dropped.
	OptionsPerSecond int `yaml:"options_per_second"`
	// MaxConnections and MaxConnectionsPerSource: open TCP/TLS connections.
	MaxConnections          int `yaml:"max_connections"`
	MaxConnectionsPerSource int `yaml:"max_connections_per_source"`
	// TCPIdleTimeout closes a TCP/TLS connection silent for this long.
	TCPIdleTimeout Duration `yaml:"tcp_idle_timeout"`
}

// Defaults of the sip keys the SIP server has no default for (it needs
// explicit listeners; answering when ready is the binary's choice).
const (
	DefaultSIPListen        = "127.0.0.1:5060"
	DefaultAnswerWhenReady  = true
	DefaultSessionRefresher = "uas"
)

// DefaultTransports are the transports served when sip.transports is empty.
func DefaultTransports() []string { return []string{"udp", "tcp"} }

func (c *Config) applySIPDefaults() {
	s := &c.SIP
	if len(s.Listen) == 0 {
		s.Listen = StringList{DefaultSIPListen}
	}
	if len(s.Transports) == 0 {
		s.Transports = DefaultTransports()
	}
	if s.UserAgent == "" {
		s.UserAgent = sip.DefaultUserAgent
	}
	if s.ACKTimeout == 0 {
		s.ACKTimeout = Duration(sip.DefaultACKTimeout)
	}
	if s.AnswerWhenReady == nil {
		t := DefaultAnswerWhenReady
		s.AnswerWhenReady = &t
	}
	if s.AnswerTimeout == 0 {
		s.AnswerTimeout = Duration(sip.DefaultAnswerTimeout)
	}
	if s.MinSE == 0 {
		s.MinSE = Duration(sip.DefaultMinSE)
	}
	if s.SessionExpires == 0 {
		s.SessionExpires = Duration(max(sip.DefaultSessionExpires, s.MinSE.D()))
	}
	if s.SessionRefresher == "" {
		s.SessionRefresher = DefaultSessionRefresher
	}
	// sip.limits: the defaults are sip.EdgeLimits'.
	l := &s.Limits
	def := sip.EdgeLimits{MaxUnconfirmedPerSource: l.MaxUnconfirmedPerSource, OptionsRate: l.OptionsPerSecond,
		MaxConnections: l.MaxConnections, MaxConnectionsPerSource: l.MaxConnectionsPerSource,
		StreamIdleTimeout: l.TCPIdleTimeout.D()}.WithDefaults()
	fill := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	fill(&l.MaxUnconfirmedPerSource, def.MaxUnconfirmedPerSource)
	fill(&l.OptionsPerSecond, def.OptionsRate)
	fill(&l.MaxConnections, def.MaxConnections)
	fill(&l.MaxConnectionsPerSource, def.MaxConnectionsPerSource)
	if l.TCPIdleTimeout == 0 {
		l.TCPIdleTimeout = Duration(def.StreamIdleTimeout)
	}
	c.applyTrunkDefaults()    // trunks.go
	c.applyRegisterDefaults() // register.go
}

func (c *Config) validateSIP(bad badFunc) {
	for i, l := range c.SIP.Listen {
		if _, err := netip.ParseAddrPort(l); err != nil {
			if h, p, err2 := net.SplitHostPort(l); err2 != nil || h == "" || p == "" {
				bad(fmt.Sprintf("sip.listen[%d]", i), "%q is not host:port (e.g. 127.0.0.1:5060)", l)
			} else if _, err := strconv.ParseUint(p, 10, 16); err != nil {
				bad(fmt.Sprintf("sip.listen[%d]", i), "%q has an invalid port", l)
			} else if _, err := netip.ParseAddr(h); err != nil {
				bad(fmt.Sprintf("sip.listen[%d]", i), "%q: host must be an IP address", l)
			}
		}
	}
	for i, t := range c.SIP.Transports {
		if t != "udp" && t != "tcp" {
			bad(fmt.Sprintf("sip.transports[%d]", i), "%q is not one of udp, tcp", t)
		}
	}
	if err := sip.ValidateMaxCalls(c.SIP.MaxCalls); err != nil {
		bad("sip.max_calls", "%v", err)
	}
	if c.SIP.Advertise == "" {
		for _, l := range c.SIP.Listen {
			if ap, err := netip.ParseAddrPort(l); err == nil && ap.Addr().IsUnspecified() {
				bad("sip.advertise", "required when sip.listen is %s (an unspecified address cannot go into Contact/SDP)", l)
				break
			}
		}
	} else if err := sip.ValidateAdvertiseHost(c.SIP.Advertise); err != nil {
		bad("sip.advertise", "%v", err)
	}
	if err := sip.ValidateUserAgent(c.SIP.UserAgent); err != nil {
		bad("sip.user_agent", "%v", err)
	}
	if d := c.SIP.ACKTimeout.D(); d < time.Second {
		bad("sip.ack_timeout", "%v is below 1s", d)
	}
	if d := c.SIP.AnswerTimeout.D(); d < time.Second {
		bad("sip.answer_timeout", "%v is below 1s (the AI cannot connect that fast)", d)
	}
	if d := c.SIP.Limits.TCPIdleTimeout.D(); d > 0 && d < 10*time.Second {
		bad("sip.limits.tcp_idle_timeout", "%v is below 10s (a trunk's keep-alives come every 30 s or more; negative = never)", d)
	}
	c.validateSessionTimers(bad)
	c.validateTrunks(bad)   // trunks.go: sip.trunks, sip.auth_limit, sip.tls
	c.validateRegister(bad) // register.go
}

// validateSessionTimers checks sip.min_se, sip.session_expires and
// sip.session_refresher (RFC 4028).
func (c *Config) validateSessionTimers(bad badFunc) {
	minSE, se := c.SIP.MinSE.D(), c.SIP.SessionExpires.D()
	switch {
	case minSE < time.Second:
		bad("sip.min_se", "%s is below 1s (RFC 4028 asks for at least 90s)", minSE)
	case minSE%time.Second != 0:
		bad("sip.min_se", "%s is not a whole number of seconds (Min-SE is in seconds)", minSE)
	}
	switch {
	case se%time.Second != 0:
		bad("sip.session_expires", "%s is not a whole number of seconds (Session-Expires is in seconds)", se)
	case se < minSE:
		bad("sip.session_expires", "%s is below sip.min_se %s", se, minSE)
	}
	switch c.SIP.SessionRefresher {
	case "uas", "uac":
	default:
		bad("sip.session_refresher", "%q is not uas (we refresh) or uac (the caller does)", c.SIP.SessionRefresher)
	}
}
