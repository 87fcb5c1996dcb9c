package configs

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/realtime"
)

// Region is one realtime endpoint (regions[]), in priority order.
type Region struct {
	Name string `yaml:"name"`
	// URL is the full realtime WebSocket URL; the dialect follows its path.
	URL string `yaml:"url"`
	// APIKeyEnv names the environment variable holding the key (keys never live here).
	APIKeyEnv string `yaml:"api_key_env"`
	// Auth: auto (api-key for Azure hosts, bearer otherwise), api-key, bearer.
	Auth string `yaml:"auth"`
	// SessionLimit is the provider's hard session duration
	// (realtime.DefaultSessionLimit of the URL).
	SessionLimit Duration `yaml:"session_limit"`
	// DialTimeout bounds connect + handshake.
	DialTimeout Duration `yaml:"dial_timeout"`
	// WarmStandby keeps a ready session in this region for swaps.
	WarmStandby bool `yaml:"warm_standby"`
	// Voice overrides assistant.voice in this region; it must be a voice the
	// region's dialect accepts (the preview shape refuses marin and cedar).
	// Empty: assistant.voice, with a GA-only voice mapped to its documented
	// preview stand-in (realtime.ResolveVoice: marin → coral, cedar → ash).
	Voice string `yaml:"voice"`
	// Simulator runs a local simulated region on the URL's host:port.
	Simulator Simulator `yaml:"simulator"`
	// MaxSessions caps the concurrent realtime sessions this instance holds
	// in the region (calls, warm standbys, hedges, rotations); 0: no cap.
	MaxSessions int `yaml:"max_sessions"`
	// Weight is the region's share of new calls within its priority tier
	// (failover.DefaultWeight when 0).
	Weight float64 `yaml:"weight"`
	// Priority is the region's tier, lower preferred; traffic spills to the
	// next tier only when every region of the better ones is full,
	// throttled or open. Unset: its position in the list (strict order).
	Priority *int `yaml:"priority"`
	// Prices, optional, turn token usage into an estimated cost.
	Prices *RegionPrices `yaml:"prices"`
}

// CapacityRegion is the region's capacity settings for failover.
func (r Region) CapacityRegion() failover.Region {
	return failover.Region{Name: r.Name, MaxSessions: r.MaxSessions, Weight: r.Weight, Priority: r.Priority}
}

// Simulator is regions[].simulator. configs reads only enabled (a simulated
// region's URL must be local); the rest of the section is the simulator's
// own configuration, decoded with DecodeSection where the simulator is wired
// (the binary), so that configs does not depend on the simulator.
type Simulator struct {
	Enabled bool
	// Section is the whole section as written; nil when absent.
	Section *yaml.Node
}

// UnmarshalYAML keeps the section and reads enabled.
func (s *Simulator) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected a mapping (enabled: true, …)", n.Line)
	}
	s.Section = n
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "enabled" {
			if err := n.Content[i+1].Decode(&s.Enabled); err != nil {
				return fmt.Errorf("line %d: enabled must be true or false", n.Content[i+1].Line)
			}
		}
	}
	return nil
}

// DefaultAuth is regions[].auth's default: api-key for Azure hosts, bearer
// otherwise (realtime.ResolveAuth).
const DefaultAuth = "auto"

// Bounds of the region durations.
const (
	minDialTimeout   = 100 * time.Millisecond
	maxDialTimeout   = 2 * time.Minute
	minSessionLimit  = 10 * time.Second
	maxSessionLimit  = 24 * time.Hour
	regionNameFormat = "%q must be 1-63 letters, digits, '-', '_' or '.'"
)

var (
	regionNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func (c *Config) applyRegionDefaults() {
	for i := range c.Regions {
		r := &c.Regions[i]
		if r.Auth == "" {
			r.Auth = DefaultAuth
		}
		if r.DialTimeout == 0 {
			r.DialTimeout = Duration(realtime.DefaultDialTimeout)
		}
		if r.SessionLimit == 0 {
			r.SessionLimit = Duration(realtime.DefaultSessionLimit(r.URL))
		}
	}
}

func (c *Config) validateRegions(bad badFunc) {
	if len(c.Regions) == 0 {
		bad("regions", "at least one region is required")
	}
	seen := map[string]bool{}
	for i, r := range c.Regions {
		key := fmt.Sprintf("regions[%d]", i)
		if !regionNameRE.MatchString(r.Name) {
			bad(key+".name", regionNameFormat, r.Name)
		} else if seen[r.Name] {
			bad(key+".name", "%q is used by another region", r.Name)
		}
		seen[r.Name] = true
		if err := validateRealtimeURL(r.URL); err != nil {
			bad(key+".url", "%v", err)
		} else if d, err := realtime.DialectForURL(r.URL); err != nil {
			bad(key+".url", "%v", err)
		} else if _, err := realtime.ResolveVoice(d, c.Assistant.Voice, r.Voice); err != nil {
			// The session would be refused in this region: say so now, on
			// the key that chose the voice.
			if r.Voice != "" {
				bad(key+".voice", "%v", err)
			} else {
				bad("assistant.voice", "%v (set %s.voice to a voice it accepts)", err, key)
			}
		}
		if r.APIKeyEnv != "" && !envNameRE.MatchString(r.APIKeyEnv) {
			bad(key+".api_key_env", "%q is not an environment variable name (the key itself never goes in the file)", r.APIKeyEnv)
		}
		switch r.Auth {
		case "auto", "api-key", "bearer":
		default:
			bad(key+".auth", "%q is not auto, api-key or bearer", r.Auth)
		}
		if d := r.DialTimeout.D(); d < minDialTimeout || d > maxDialTimeout {
			bad(key+".dial_timeout", "%v is outside %v..%v", d, minDialTimeout, maxDialTimeout)
		}
		r.Prices.validate(key, bad)
		switch d := r.SessionLimit.D(); {
		case d < minSessionLimit || d > maxSessionLimit:
			bad(key+".session_limit", "%v is outside %v..%v", d, minSessionLimit, maxSessionLimit)
		case d <= c.Failover.RotateMargin.D():
			bad(key+".session_limit", "%v is not longer than failover.rotate_margin %v: every session would rotate at once", d, c.Failover.RotateMargin.D())
		}
		if r.Simulator.Enabled {
			u, err := url.Parse(r.URL)
			if err == nil && u.Scheme != "ws" {
				bad(key+".simulator.enabled", "a simulated region needs a ws:// URL on a local address")
			} else if err == nil {
				if ip, err := netip.ParseAddr(u.Hostname()); err != nil || !ip.IsLoopback() {
					bad(key+".simulator.enabled", "a simulated region must listen on a loopback address, not %q", u.Hostname())
				}
			}
		}
	} // max_sessions, weight: validated once, by the failover package's rule.
	caps := make([]failover.Region, 0, len(c.Regions))
	for _, r := range c.Regions {
		caps = append(caps, r.CapacityRegion())
	}
	if err := failover.ValidateCapacity(caps); err != nil {
		// Names are checked above; the capacity keys are reported here.
		if key, msg, ok := strings.Cut(err.Error(), ": "); ok && (strings.HasSuffix(key, ".max_sessions") || strings.HasSuffix(key, ".weight")) {
			bad(key, "%s", msg)
		}
	}
}

func validateRealtimeURL(raw string) error {
	if raw == "" {
		return errors.New("required (the full realtime WebSocket URL)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("%q must start with wss:// (or ws:// for a local server)", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		return errors.New("must not carry credentials; use api_key_env")
	}
	q := u.Query()
	if q.Has("api-key") {
		return errors.New("must not carry api-key in the query; use api_key_env")
	}
	if strings.HasSuffix(u.Path, "/openai/v1/realtime") && q.Has("api-version") {
		return errors.New("the GA path /openai/v1/realtime takes no api-version (Azure answers 401); drop it, or use /openai/realtime?api-version=… for the preview dialect")
	}
	if strings.HasSuffix(u.Path, "/openai/realtime") && !q.Has("api-version") {
		return errors.New("the preview path /openai/realtime needs ?api-version=…&deployment=…")
	}
	return nil
}

// DialConfig is how to reach a region; the key comes from the environment.
func (r Region) DialConfig(getenv func(string) string) realtime.DialConfig {
	dc := realtime.DialConfig{Region: r.Name, URL: r.URL, DialTimeout: r.DialTimeout.D(), Voice: r.Voice}
	if r.APIKeyEnv != "" {
		dc.APIKey = getenv(r.APIKeyEnv)
	}
	switch r.Auth {
	case "api-key":
		dc.Auth = realtime.AuthAPIKey
	case "bearer":
		dc.Auth = realtime.AuthBearer
	}
	return dc
}

// ListenAddr is the host:port a simulated region listens on (from its URL).
func (r Region) ListenAddr() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return ""
	}
	return u.Host
}
