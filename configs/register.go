package configs

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sipbridge/sipbridge/sip"
)

// Registration is one REGISTER binding sipbridge keeps at a registrar as a
// client (sip.register[]): for a PBX or carrier that routes calls to a
// registered contact.
type Registration struct {
	// Name labels the registration in logs, /status and the
	// sipbridge_sip_registration_up metric (default: the registrar's host[:port]).
	Name string `yaml:"name"`
	// Registrar is the registrar's SIP URI (REGISTER Request-URI).
	Registrar string `yaml:"registrar"`
	// AOR is the address-of-record registered (To/From), sip:user@domain.
	AOR string `yaml:"aor"`
	// Username for digest authentication (default: the AOR's user).
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string `yaml:"password_env"`
	// Expires is the binding lifetime asked for (default sip.DefaultRegisterExpires).
	Expires Duration `yaml:"expires"`
	// ContactUser is the user part of our Contact (default: the AOR's user).
	ContactUser string `yaml:"contact_user"`
	// Transport: udp or tcp (default: the registrar URI's transport, else udp).
	Transport string `yaml:"transport"`
}

// contactUserRE is a SIP URI user part we put in Contact (RFC 3261 §25.1
// unreserved and user-unreserved characters).
var contactUserRE = regexp.MustCompile(`^[A-Za-z0-9\-_.!~*'()&=+$,;?/]{1,64}$`)

func (c *Config) applyRegisterDefaults() {
	for i := range c.SIP.Register {
		if c.SIP.Register[i].Expires == 0 {
			c.SIP.Register[i].Expires = Duration(sip.DefaultRegisterExpires)
		}
	}
}

// validateRegister checks sip.register.
func (c *Config) validateRegister(bad badFunc) {
	names := map[string]bool{}
	for i, r := range c.SIP.Register {
		key := fmt.Sprintf("sip.register[%d]", i)
		if r.Name != "" && !regionNameRE.MatchString(r.Name) {
			bad(key+".name", regionNameFormat, r.Name)
		}
		name := r.Name
		reg, regErr := parseSIPURI(r.Registrar)
		switch {
		case regErr != nil:
			bad(key+".registrar", "%v", regErr)
		case reg.User != nil:
			bad(key+".registrar", "%q: the registrar URI has no user part (RFC 3261 §10.2); put the user in aor", r.Registrar)
		case name == "":
			name = reg.Host
		}
		if name != "" {
			if names[name] {
				bad(key+".name", "%q is used by another registration (set distinct names)", name)
			}
			names[name] = true
		}
		if a, err := parseSIPURI(r.AOR); err != nil {
			bad(key+".aor", "%v", err)
		} else if a.User == nil || a.User.Username() == "" {
			bad(key+".aor", "%q must be sip:user@domain", r.AOR)
		}
		if strings.ContainsAny(r.Username, "\r\n\x00\"") {
			bad(key+".username", "must not contain CR, LF, NUL or '\"'")
		}
		if r.PasswordEnv != "" && !envNameRE.MatchString(r.PasswordEnv) {
			bad(key+".password_env", "%q is not an environment variable name (the password itself never goes in the file)", r.PasswordEnv)
		}
		if r.ContactUser != "" && !contactUserRE.MatchString(r.ContactUser) {
			bad(key+".contact_user", "%q has characters not allowed in a SIP URI user part", r.ContactUser)
		}
		if r.Expires.D() < 10*time.Second || r.Expires.D() > 24*time.Hour {
			bad(key+".expires", "%v is outside 10s..24h", r.Expires.D())
		}
		switch r.Transport {
		case "":
		case "udp", "tcp":
			if !slices.Contains(c.SIP.Transports, r.Transport) {
				bad(key+".transport", "%q is not in sip.transports: the Contact must point at a listener we serve", r.Transport)
			}
		default:
			bad(key+".transport", "%q is not udp or tcp", r.Transport)
		}
	}
}

// parseSIPURI accepts sip:[user@]host[:port][;params] without injection
// characters.
func parseSIPURI(s string) (*url.URL, error) {
	if strings.ContainsAny(s, "\r\n\x00<> \"") {
		return nil, fmt.Errorf("%q contains characters not allowed in a URI", s)
	}
	if !strings.HasPrefix(strings.ToLower(s), "sip:") {
		return nil, fmt.Errorf("%q is not a sip: URI", s)
	}
	rest := s[4:]
	rest, _, _ = strings.Cut(rest, ";")
	u, err := url.Parse("sip://" + rest)
	if err != nil || u.Hostname() == "" || u.Path != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("%q is not sip:[user@]host[:port]", s)
	}
	return u, nil
}

// missingRegisterPasswords lists registrations whose password variable is
// empty.
func (c *Config) missingRegisterPasswords(getenv func(string) string) []string {
	var out []string
	for i, r := range c.SIP.Register {
		if r.PasswordEnv != "" && getenv(r.PasswordEnv) == "" {
			out = append(out, fmt.Sprintf("sip.register[%d]: environment variable %s is not set", i, r.PasswordEnv))
		}
	}
	return out
}
