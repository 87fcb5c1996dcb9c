package configs

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/sipbridge/sipbridge/sip"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// Trunk is one peer allowed to call (sip.trunks[]). With no trunk anyone
// may call; with trunks the source IP must match one, and a trunk with a
// username requires digest authentication of each new INVITE.
type Trunk struct {
	Name string `yaml:"name"`
	// Allow lists the trunk's signalling sources: CIDRs or bare IPs.
	// Optional when Username is set (digest from any source).
	Allow []string `yaml:"allow"`
	// Username for digest authentication; the password is read from the
	// environment variable PasswordEnv (never from this file).
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"password_env"`
	// Realm of the digest challenge (default: sip.advertise or the listen IP).
	Realm string `yaml:"realm"`
	// Algorithms offered in the challenge, in order of preference
	// (default [SHA-256, MD5]).
	Algorithms []string `yaml:"algorithms"`
	// Codecs and MediaEncryption override the sip-level media policy for
	// this trunk's calls (Media).
	Codecs          StringList `yaml:"codecs"`
	MediaEncryption string     `yaml:"media_encryption"`
}

// Media is the trunk's own media policy (empty keys inherit sip's).
func (t Trunk) Media() Media { return Media{Codecs: t.Codecs, MediaEncryption: t.MediaEncryption} }

// Media is a media policy: at sip level the default of every call
// (sip.codecs, sip.media_encryption), per trunk an override
// (sip.trunks[].codecs, sip.trunks[].media_encryption). Empty keys inherit.
type Media struct {
	// Codecs we accept, in our order of preference: G722, PCMU, PCMA
	// (case-insensitive); the caller's order wins among them. Default
	// (sip package): G722, PCMU, PCMA.
	Codecs StringList
	// MediaEncryption is the SDES-SRTP policy: none (clear RTP only; the
	// default), optional (SRTP when the caller offers it) or required
	// (488 to a clear offer; never clear RTP).
	MediaEncryption string
}

// CodecPTs returns the codec list as RTP payload types (nil when unset).
// Validate has checked it.
func (m Media) CodecPTs() []uint8 {
	if len(m.Codecs) == 0 {
		return nil
	}
	pts, _ := sdp.ParseCodecs(strings.Join(m.Codecs, ","))
	return pts
}

// Encryption returns the media encryption policy (nil when unset).
// Validate has checked it.
func (m Media) Encryption() *sdp.Encryption {
	if m.MediaEncryption == "" {
		return nil
	}
	e, _ := sdp.ParseEncryption(m.MediaEncryption)
	return &e
}

// validateMedia checks the media keys under key (sip or sip.trunks[i]).
func validateMedia(key string, m Media, bad badFunc) {
	if len(m.Codecs) > 0 {
		if _, err := sdp.ParseCodecs(strings.Join(m.Codecs, ",")); err != nil {
			bad(key+".codecs", "%v (want a list of G722, PCMU, PCMA)", strings.TrimPrefix(err.Error(), "sdp: "))
		}
	}
	if m.MediaEncryption != "" {
		if _, err := sdp.ParseEncryption(m.MediaEncryption); err != nil {
			bad(key+".media_encryption", "%q is not none, optional or required", m.MediaEncryption)
		}
	}
}

// TLS is the SIP over TLS listener (sip.tls); absent = no TLS.
type TLS struct {
	Listen   string `yaml:"listen"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// AuthLimit blocks a source after repeated authorisation failures
// (sip.auth_limit).
type AuthLimit struct {
	Failures int      `yaml:"failures"` // tolerated per window
	Window   Duration `yaml:"window"`
	Block    Duration `yaml:"block"`
}

var (
	trunkNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	digestValueRE = regexp.MustCompile(`^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,128}$`) // printable, no '"' or '\'
)

func (c *Config) applyTrunkDefaults() {
	l := &c.SIP.AuthLimit
	if l.Failures == 0 {
		l.Failures = sip.DefaultAuthFailures
	}
	if l.Window == 0 {
		l.Window = Duration(sip.DefaultAuthWindow)
	}
	if l.Block == 0 {
		l.Block = Duration(sip.DefaultAuthBlock)
	}
}

// Prefixes returns the trunk's allow list as prefixes (a bare IP is
// a /32 or /128). Validate has checked every entry.
func (t Trunk) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(t.Allow))
	for _, a := range t.Allow {
		if p, ok := parseAllow(a); ok {
			out = append(out, p)
		}
	}
	return out
}

func parseAllow(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(ip, ip.BitLen()), true
	}
	return netip.Prefix{}, false
}

// Password reads the trunk's password from its environment variable; a
// trunk with a username and an unset variable is an error (it would admit
// nobody, or worse, an empty password).
func (t Trunk) Password(getenv func(string) string) (string, error) {
	if t.Username == "" {
		return "", nil
	}
	p := getenv(t.PasswordEnv)
	if p == "" {
		return "", fmt.Errorf("environment variable %s (password of trunk %q) is not set", t.PasswordEnv, t.Name)
	}
	return p, nil
}

// validateTrunks checks sip.trunks, sip.auth_limit, sip.tls and the media
// policy keys (sip.codecs, sip.media_encryption).
func (c *Config) validateTrunks(bad badFunc) {
	seen := map[string]bool{}
	for i, t := range c.SIP.Trunks {
		key := fmt.Sprintf("sip.trunks[%d]", i)
		if !trunkNameRE.MatchString(t.Name) {
			bad(key+".name", "%q must be 1-63 letters, digits, '-', '_' or '.'", t.Name)
		} else if seen[t.Name] {
			bad(key+".name", "%q is used by another trunk", t.Name)
		}
		seen[t.Name] = true
		for j, a := range t.Allow {
			if _, ok := parseAllow(a); !ok {
				bad(fmt.Sprintf("%s.allow[%d]", key, j), "%q is not a CIDR (e.g. 203.0.113.0/24) or an IP address", a)
			}
		}
		if len(t.Allow) == 0 && t.Username == "" {
			bad(key+".allow", "required unless username is set (a trunk with neither would admit anyone; to admit anyone, configure no trunks)")
		}
		if t.Username != "" && !digestValueRE.MatchString(t.Username) {
			bad(key+".username", "must be 1-128 printable characters without '\"' or '\\'")
		}
		switch {
		case t.Username != "" && t.PasswordEnv == "":
			bad(key+".password_env", "required with username (the password itself never goes in the file)")
		case t.Username == "" && t.PasswordEnv != "":
			bad(key+".username", "required with password_env")
		case t.PasswordEnv != "" && !envNameRE.MatchString(t.PasswordEnv):
			bad(key+".password_env", "%q is not an environment variable name (the password itself never goes in the file)", t.PasswordEnv)
		}
		if t.Realm != "" && !digestValueRE.MatchString(t.Realm) {
			bad(key+".realm", "must be 1-128 printable characters without '\"' or '\\'")
		}
		algSeen := map[string]bool{}
		for j, a := range t.Algorithms {
			if a != "SHA-256" && a != "MD5" {
				bad(fmt.Sprintf("%s.algorithms[%d]", key, j), "%q is not SHA-256 or MD5", a)
			} else if algSeen[a] {
				bad(fmt.Sprintf("%s.algorithms[%d]", key, j), "%s is listed twice", a)
			}
			algSeen[a] = true
		}
		if len(t.Algorithms) > 0 && t.Username == "" {
			bad(key+".algorithms", "only applies with username")
		}
		validateMedia(key, t.Media(), bad)
	}
	validateMedia("sip", c.SIP.Media(), bad)
	if c.SIP.AuthLimit.Failures < 1 {
		bad("sip.auth_limit.failures", "must be ≥ 1")
	}
	if tl := c.SIP.TLS; tl != nil {
		ap, err := netip.ParseAddrPort(tl.Listen)
		if err != nil {
			bad("sip.tls.listen", "%q is not IP:port (e.g. 0.0.0.0:5061)", tl.Listen)
		} else {
			for _, l := range c.SIP.Listen {
				lap, err := netip.ParseAddrPort(l)
				if err == nil && lap.Port() == ap.Port() && hasTCP(c.SIP.Transports) &&
					(lap.Addr() == ap.Addr() || lap.Addr().IsUnspecified() || ap.Addr().IsUnspecified()) {
					bad("sip.tls.listen", "%s collides with the TCP listener on %s", tl.Listen, l)
				}
			}
			if ap.Addr().IsUnspecified() && c.SIP.Advertise == "" {
				bad("sip.advertise", "required when sip.tls.listen is %s", tl.Listen)
			}
		}
		if tl.CertFile == "" {
			bad("sip.tls.cert_file", "required (PEM certificate chain)")
		}
		if tl.KeyFile == "" {
			bad("sip.tls.key_file", "required (PEM private key)")
		}
	}
}

func hasTCP(transports []string) bool {
	for _, t := range transports {
		if t == "tcp" {
			return true
		}
	}
	return false
}

// MissingTrunkPasswords lists trunks whose password variable is unset
// (serve refuses to start; check warns).
func (c *Config) MissingTrunkPasswords(getenv func(string) string) []string {
	var out []string
	for i, t := range c.SIP.Trunks {
		if _, err := t.Password(getenv); err != nil {
			out = append(out, fmt.Sprintf("sip.trunks[%d].password_env: %v", i, err))
		}
	}
	return out
}
