// Package configs owns sipbridge's configuration file: the YAML schema
// (every key documented in configs/README.md with its default), the one
// translation from YAML to the packages' own config types, validation that
// names the offending key, and the embedded default config that runs the
// server against two local simulated realtime regions with no keys needed.
//
// Each knob's default is a constant exported by the package that uses it
// (sip, media, failover, realtime); configs refers to those constants, and a
// test keeps them and README.md in agreement. One file per YAML section:
// sip.go (with trunks.go and register.go), rtp.go, assistant.go (with
// webhooks.go), regions.go, failover.go; admin, log and drain_timeout are
// here. The simulator's own section (regions[].simulator) is decoded where
// the simulator is wired, with DecodeSection, so configs does not import it.
// The example files in this directory are complete, valid configs.
package configs

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// Config is the whole sipbridge configuration.
type Config struct {
	SIP       SIP       `yaml:"sip"`
	RTP       RTP       `yaml:"rtp"`
	Assistant Assistant `yaml:"assistant"`
	// Profiles is the assistants section as written; Assistants holds each
	// profile resolved against Assistant (profiles.go).
	Profiles   Profiles              `yaml:"assistants"`
	Assistants map[string]*Assistant `yaml:"-"`
	// Routes pick a profile per call; the first match wins.
	Routes []Route `yaml:"routes"`
	// CallerHeaders are the INVITE headers exposed as caller.header.NAME
	// to the instructions and to webhooks.
	CallerHeaders []string `yaml:"caller_headers"`
	// Privacy lists what logs must not show: from, from_name, to, headers.
	Privacy  []string `yaml:"privacy"`
	Regions  []Region `yaml:"regions"`
	Failover Failover `yaml:"failover"`
	Admin    Admin    `yaml:"admin"`
	Log      Log      `yaml:"log"`
	Records  Records  `yaml:"records"`
	// DrainTimeout bounds how long SIGTERM waits for active calls.
	DrainTimeout Duration `yaml:"drain_timeout"`
}

// Admin is the operator HTTP endpoint (/metrics, /healthz, /status).
type Admin struct {
	// Listen address; "off" disables.
	Listen string `yaml:"listen"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin port
	// (off by default: profiles expose internals and cost CPU while taken).
	Pprof bool `yaml:"pprof"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Defaults of the binary-level keys (no package below owns them).
const (
	DefaultAdminListen  = "127.0.0.1:9090"
	DefaultLogLevel     = "info"
	DefaultLogFormat    = "text"
	DefaultDrainTimeout = 5 * time.Minute
)

// Duration is a time.Duration written as "5s", "30m". Negative values are
// refused; a written 0 is refused too except where README.md gives 0 a
// meaning (zeroDurationAllowed), since elsewhere 0 would silently mean the
// default.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts Go duration strings.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration like \"5s\"", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q (use e.g. \"500ms\", \"5s\", \"30m\")", n.Line, n.Value)
	}
	if v < 0 {
		return fmt.Errorf("line %d: duration %q must not be negative", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// StringList accepts a single string or a list of strings.
type StringList []string

// UnmarshalYAML accepts "a" or ["a", "b"].
func (s *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*s = StringList{n.Value}
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*s = l
		return nil
	}
	return fmt.Errorf("line %d: expected a string or a list of strings", n.Line)
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// LoadDefault returns the embedded default config.
func LoadDefault() (*Config, error) { return Parse(defaultYAML) }

// Parse decodes YAML strictly (unknown keys are errors, named with their
// path), applies defaults and validates.
func Parse(b []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("configs: %s", trimYAMLPrefix(err.Error()))
	}
	var c Config
	if len(root.Content) > 0 {
		if err := DecodeSection(root.Content[0], "", &c); err != nil {
			return nil, fmt.Errorf("configs: %w", err)
		}
		if err := c.resolveProfiles(root.Content[0]); err != nil { // profiles.go
			return nil, fmt.Errorf("configs: %w", err)
		}
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	c.applySIPDefaults()       // sip.go, trunks.go, register.go
	c.applyRTPDefaults()       // rtp.go
	c.applyAssistantDefaults() // assistant.go, webhooks.go
	c.applyRegionDefaults()    // regions.go
	c.applyFailoverDefaults()  // failover.go
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = Duration(DefaultDrainTimeout)
	}
}

// badFunc records one invalid key.
type badFunc func(key, format string, args ...any)

// Validate checks every key and names each bad one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	c.validateSIP(bad)       // sip.go, trunks.go, register.go
	c.validateRTP(bad)       // rtp.go
	c.validateAssistant(bad) // assistant.go, webhooks.go
	c.validateRegions(bad)   // regions.go
	c.validateFailover(bad)  // failover.go
	c.validateRecords(bad)   // records.go
	if c.Admin.Listen != "off" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			bad("admin.listen", "%q is not host:port or \"off\"", c.Admin.Listen)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	if c.DrainTimeout.D() < time.Second {
		bad("drain_timeout", "%v is below 1s", c.DrainTimeout.D())
	}
	if len(errs) > 0 {
		return fmt.Errorf("configs: %w", errors.Join(errs...))
	}
	return nil
}

// MissingKeys lists secrets the config names by environment variable that
// are unset: region keys, registration passwords, webhook headers.
func (c *Config) MissingKeys(getenv func(string) string) []string {
	var out []string
	for _, r := range c.Regions {
		if r.APIKeyEnv != "" && getenv(r.APIKeyEnv) == "" && !r.Simulator.Enabled {
			out = append(out, fmt.Sprintf("regions %q: environment variable %s is not set", r.Name, r.APIKeyEnv))
		}
	}
	out = append(out, c.missingRegisterPasswords(getenv)...) // register.go
	return append(out, c.missingWebhookHeaders(getenv)...)   // webhooks.go
}
