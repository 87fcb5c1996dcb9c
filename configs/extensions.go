package configs

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sipbridge/sipbridge/realtime"
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
	// Expires is the binding lifetime asked for (default 300s).
	Expires Duration `yaml:"expires"`
	// ContactUser is the user part of our Contact (default: the AOR's user).
	ContactUser string `yaml:"contact_user"`
	// Transport: udp or tcp (default: the registrar URI's transport, else udp).
	Transport string `yaml:"transport"`
}

// Webhook is a custom tool the model may call (assistant.tools.webhooks[]):
// the bridge POSTs the call to URL and the response body is the result.
type Webhook struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Parameters is the JSON schema of the arguments, written as YAML.
	Parameters map[string]any `yaml:"parameters"`
	URL        string         `yaml:"url"`
	// Timeout bounds the HTTP exchange (default 5s).
	Timeout Duration `yaml:"timeout"`
	// HeadersEnv maps a header name to the environment variable holding its
	// value (e.g. Authorization: ORDERS_API_AUTH); values never live here.
	HeadersEnv map[string]string `yaml:"headers_env"`
}

// Defaults and limits of these sections.
const (
	DefaultRegisterExpires = 300 * time.Second
	DefaultWebhookTimeout  = 5 * time.Second
	maxWebhookTimeout      = 60 * time.Second
)

var (
	// Function names the realtime API accepts.
	toolNameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
	// A SIP URI user part we put in Contact (RFC 3261 §25.1 unreserved and
	// user-unreserved characters).
	contactUserRE = regexp.MustCompile(`^[A-Za-z0-9\-_.!~*'()&=+$,;?/]{1,64}$`)
)

func init() {
	sectionOf["Registration"] = "sip.register[]"
	sectionOf["Webhook"] = "assistant.tools.webhooks[]"
}

func (c *Config) extensionDefaults() {
	for i := range c.SIP.Register {
		if c.SIP.Register[i].Expires == 0 {
			c.SIP.Register[i].Expires = Duration(DefaultRegisterExpires)
		}
	}
	for i := range c.Assistant.Tools.Webhooks {
		w := &c.Assistant.Tools.Webhooks[i]
		if w.Timeout == 0 {
			w.Timeout = Duration(DefaultWebhookTimeout)
		}
		if w.Parameters == nil {
			w.Parameters = map[string]any{"type": "object", "properties": map[string]any{}}
		}
	}
}

// validateExtensions checks sip.register and assistant.tools.webhooks.
func (c *Config) validateExtensions(bad func(key, format string, args ...any)) {
	names := map[string]bool{}
	for i, r := range c.SIP.Register {
		key := fmt.Sprintf("sip.register[%d]", i)
		if r.Name != "" {
			if !regionNameRE.MatchString(r.Name) {
				bad(key+".name", "%q must be 1-63 letters, digits, '-', '_' or '.'", r.Name)
			}
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

	seen := map[string]bool{ToolEndCall: true, ToolTransferCall: true}
	for i, w := range c.Assistant.Tools.Webhooks {
		key := fmt.Sprintf("assistant.tools.webhooks[%d]", i)
		switch {
		case !toolNameRE.MatchString(w.Name):
			bad(key+".name", "%q must be 1-64 letters, digits, '_' or '-'", w.Name)
		case seen[w.Name]:
			bad(key+".name", "%q is already a tool (end_call and transfer_call are built in)", w.Name)
		}
		seen[w.Name] = true
		if strings.TrimSpace(w.Description) == "" {
			bad(key+".description", "required: the model decides when to call the tool from it")
		}
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(key+".url", "%q is not an http:// or https:// URL", w.URL)
		} else if u.User != nil {
			bad(key+".url", "must not carry credentials; use headers_env")
		}
		if w.Timeout.D() > maxWebhookTimeout {
			bad(key+".timeout", "%v is over %v (the caller is waiting)", w.Timeout.D(), maxWebhookTimeout)
		}
		if t, _ := w.Parameters["type"].(string); t != "object" {
			bad(key+".parameters", "must be a JSON schema with type: object")
		} else if _, err := json.Marshal(w.Parameters); err != nil {
			bad(key+".parameters", "cannot be encoded as JSON: %v", err)
		}
		for h, env := range w.HeadersEnv {
			if !headerNameRE.MatchString(h) {
				bad(key+".headers_env", "%q is not a header name", h)
			}
			if !envNameRE.MatchString(env) {
				bad(key+".headers_env", "%q (for %s) is not an environment variable name", env, h)
			}
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

// webhookTools renders the webhooks as session tools.
func (c *Config) webhookTools() []realtime.Tool {
	var out []realtime.Tool
	for _, w := range c.Assistant.Tools.Webhooks {
		params, err := json.Marshal(w.Parameters)
		if err != nil {
			continue // Validate refused it
		}
		out = append(out, realtime.Tool{Name: w.Name, Description: w.Description, Parameters: json.RawMessage(params)})
	}
	return out
}

// missingExtensionKeys lists environment variables the registrations and
// webhooks name that are empty.
func (c *Config) missingExtensionKeys(getenv func(string) string) []string {
	var out []string
	for i, r := range c.SIP.Register {
		if r.PasswordEnv != "" && getenv(r.PasswordEnv) == "" {
			out = append(out, fmt.Sprintf("sip.register[%d]: environment variable %s is not set", i, r.PasswordEnv))
		}
	}
	for _, w := range c.Assistant.Tools.Webhooks {
		for _, env := range w.HeadersEnv {
			if getenv(env) == "" {
				out = append(out, fmt.Sprintf("assistant.tools.webhooks %q: environment variable %s is not set", w.Name, env))
			}
		}
	}
	return out
}
