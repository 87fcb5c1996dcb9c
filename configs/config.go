// Package configs owns sipbridge's configuration: the YAML schema (every key
// documented in configs/README.md with its default), defaults, validation
// that names the offending key, and the embedded default config that runs the
// server against two local simulated realtime regions with no keys needed.
// The example files in this directory are complete, valid configs.
package configs

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"github.com/sipbridge/sipbridge/realtime/sim"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML is the embedded default config (local simulated regions).
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Config is the whole sipbridge configuration.
type Config struct {
	SIP       SIP       `yaml:"sip"`
	RTP       RTP       `yaml:"rtp"`
	Assistant Assistant `yaml:"assistant"`
	Regions   []Region  `yaml:"regions"`
	Failover  Failover  `yaml:"failover"`
	Admin     Admin     `yaml:"admin"`
	Log       Log       `yaml:"log"`
	// DrainTimeout bounds how long SIGTERM waits for active calls (default 5m).
	DrainTimeout Duration `yaml:"drain_timeout"`
}

// SIP is the signalling side.
type SIP struct {
	// Listen is one "host:port" or a list of them (default 127.0.0.1:5060).
	Listen StringList `yaml:"listen"`
	// Transports to serve on every listen address: udp, tcp (default both).
	Transports []string `yaml:"transports"`
	// Advertise is the host put in Contact and SDP c= (default: the listen host;
	// required when listening on 0.0.0.0 / ::).
	Advertise string `yaml:"advertise"`
	// UserAgent is the User-Agent / Server header (default "sipbridge").
	UserAgent string `yaml:"user_agent"`
	// MaxCalls caps concurrent calls; beyond it INVITEs get 503 (0 = no cap).
	MaxCalls int `yaml:"max_calls"`
	// ACKTimeout ends a call whose 200 OK is never ACKed (default 32s).
	ACKTimeout Duration `yaml:"ack_timeout"`
	// AnswerWhenReady rings (180) until the AI session is up, then answers;
	// 503 if no region can take the call (default true).
	AnswerWhenReady *bool `yaml:"answer_when_ready"`
	// AnswerTimeout bounds that ringing (default 10s).
	AnswerTimeout Duration `yaml:"answer_timeout"`
	// Trunks say who may call (trunks.go); none = anyone.
	Trunks []Trunk `yaml:"trunks"`
	// AuthLimit blocks sources that keep failing authorisation.
	AuthLimit AuthLimit `yaml:"auth_limit"`
	// TLS, when present, adds a SIP over TLS listener.
	TLS *TLS `yaml:"tls"`
	// SessionExpires is the RFC 4028 session interval we ask for when the
	// caller supports timers but offers none (default 30m; indialog.go).
	SessionExpires Duration `yaml:"session_expires"`
	// MinSE is the smallest session interval accepted; below it 422 (default 90s).
	MinSE Duration `yaml:"min_se"`
	// SessionRefresher is who refreshes when the caller leaves it open: uas (us, default) or uac.
	SessionRefresher string `yaml:"session_refresher"`
	// Register are registrars sipbridge registers with as a client (extensions.go).
	Register []Registration `yaml:"register"`
	// Media is the default codecs and media_encryption of calls (trunks.go).
	Media `yaml:",inline"`
}

// RTP is the media side.
type RTP struct {
	// IP to bind RTP sockets on (default: the first SIP listen host).
	IP string `yaml:"ip"`
	// PortMin/PortMax bound the RTP port range (default 10000-20000, even ports used).
	PortMin int `yaml:"port_min"`
	PortMax int `yaml:"port_max"`
	// Symmetric sends RTP to where the caller's RTP comes from (default true).
	Symmetric *bool `yaml:"symmetric"`
	// LatchBeforeSend (with symmetric) sends RTP only once the caller's RTP
	// has been heard, and only to its source, never to the SDP address (default false).
	LatchBeforeSend bool `yaml:"latch_before_send"`
	// MediaTimeout ends a call after this long without caller RTP (default 30s).
	MediaTimeout Duration `yaml:"media_timeout"`
	// ComfortNoiseDBov is the level of the noise sent while the AI is silent (default -65).
	ComfortNoiseDBov float64 `yaml:"comfort_noise_dbov"`
}

// Assistant is the AI's session configuration, sent identically to every region.
type Assistant struct {
	// Instructions is the system prompt (default: a short phone-agent prompt).
	Instructions string `yaml:"instructions"`
	// Voice is the model voice (default "marin").
	Voice string `yaml:"voice"`
	// Greeting, if set, makes the assistant speak first with these instructions.
	Greeting string `yaml:"greeting"`
	// AudioFormat toward the model: pcm24 (PCM16 24 kHz, default) or g711 (passthrough).
	AudioFormat string `yaml:"audio_format"`
	// TurnDetection configures server VAD; type "none" turns it off.
	TurnDetection TurnDetection `yaml:"turn_detection"`
	// Transcription of the caller's audio (default on, gpt-4o-transcribe).
	Transcription Transcription `yaml:"transcription"`
	// NoiseReduction: "", near_field or far_field (default off).
	NoiseReduction string `yaml:"noise_reduction"`
	// Model is sent as session.model in GA (optional; the URL's model wins).
	Model string `yaml:"model"`
	// Tools the model may call.
	Tools Tools `yaml:"tools"`
	// DTMF passes the caller's key presses to the model (indialog.go).
	DTMF DTMF `yaml:"dtmf"`
}

// TurnDetection mirrors the realtime turn_detection object.
type TurnDetection struct {
	Type              string   `yaml:"type"` // server_vad (default), semantic_vad, none
	Threshold         *float64 `yaml:"threshold"`
	PrefixPaddingMs   *int     `yaml:"prefix_padding_ms"`
	SilenceDurationMs *int     `yaml:"silence_duration_ms"`
	CreateResponse    *bool    `yaml:"create_response"`
	InterruptResponse *bool    `yaml:"interrupt_response"`
	IdleTimeoutMs     int      `yaml:"idle_timeout_ms"`
	Eagerness         string   `yaml:"eagerness"`
}

// Transcription toggles input transcription.
type Transcription struct {
	Enabled  *bool  `yaml:"enabled"`
	Model    string `yaml:"model"`
	Language string `yaml:"language"`
}

// Tools configures the built-in call-control tools.
type Tools struct {
	// EndCall lets the model hang up after its goodbye (default true).
	EndCall *bool `yaml:"end_call"`
	// TransferTargets are SIP URIs the model may transfer to; empty disables transfer_call.
	TransferTargets []string `yaml:"transfer_targets"`
	// Webhooks are custom tools served over HTTP (extensions.go).
	Webhooks []Webhook `yaml:"webhooks"`
}

// Region is one realtime endpoint, in priority order.
type Region struct {
	Name string `yaml:"name"`
	// URL is the full realtime WebSocket URL; the dialect follows its path.
	URL string `yaml:"url"`
	// APIKeyEnv names the environment variable holding the key (keys never live here).
	APIKeyEnv string `yaml:"api_key_env"`
	// Auth: auto (default: api-key for Azure hosts, bearer otherwise), api-key, bearer.
	Auth string `yaml:"auth"`
	// SessionLimit is the provider's hard session duration (default 30m Azure, 60m otherwise).
	SessionLimit Duration `yaml:"session_limit"`
	// DialTimeout bounds connect + handshake (default 5s).
	DialTimeout Duration `yaml:"dial_timeout"`
	// WarmStandby keeps a ready session in this region for swaps (default false).
	WarmStandby bool `yaml:"warm_standby"`
	// Simulator runs a local simulated region on the URL's host:port.
	Simulator Simulator `yaml:"simulator"`
}

// Simulator configures an in-process simulated region (demo and tests).
type Simulator struct {
	Enabled       bool     `yaml:"enabled"`
	VoiceHz       float64  `yaml:"voice_hz"`       // answer tone (default 440)
	ResponseDelay Duration `yaml:"response_delay"` // simulated model latency (default 150ms)
	Speedup       float64  `yaml:"speedup"`        // audio streamed this many times real time (default 4)
	Faults        Faults   `yaml:"faults"`
}

// Faults injects failures into a simulated region: the simulator's own
// fault set, whose yaml tags are the config keys.
type Faults = sim.Faults

// Failover tunes failure detection and session swaps.
type Failover struct {
	StallNoResponse Duration `yaml:"stall_no_response"` // default 5s
	StallFirstAudio Duration `yaml:"stall_first_audio"` // default 5s
	StallMidAudio   Duration `yaml:"stall_mid_audio"`   // default 4s
	MaxSwapsInRow   int      `yaml:"max_swaps_in_row"`  // default 3
	RotateMargin    Duration `yaml:"rotate_margin"`     // default 2m
	FillerAfter     Duration `yaml:"filler_after"`      // default 0 (no filler)
	FillerFile      string   `yaml:"filler_file"`       // WAV played once if a swap gap passes filler_after
	ApologyFile     string   `yaml:"apology_file"`      // WAV played when every region failed
	GiveUpTransfer  string   `yaml:"give_up_transfer"`  // SIP URI to REFER the caller to when giving up
	Health          Health   `yaml:"health"`
}

// Health configures per-region circuit breakers.
type Health struct {
	Window       Duration `yaml:"window"`        // default 2m
	MinSamples   int      `yaml:"min_samples"`   // default 5
	FailureRatio float64  `yaml:"failure_ratio"` // default 0.5
	CoolDown     Duration `yaml:"cool_down"`     // default 30s
}

// Admin is the operator HTTP endpoint (/metrics, /healthz, /status).
type Admin struct {
	// Listen address; "off" disables (default 127.0.0.1:9090).
	Listen string `yaml:"listen"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// Duration is a time.Duration written as "5s", "30m".
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

var yamlFieldNotFound = regexp.MustCompile(`line (\d+): field (\S+) not found in type (?:configs|sim)\.(\w+)`)

// Parse decodes YAML strictly (unknown keys are errors), applies defaults and validates.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, friendlyYAMLError(err)
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// sectionOf maps the Go type yaml names in errors to the YAML key path.
var sectionOf = map[string]string{
	"Config": "top level", "SIP": "sip", "RTP": "rtp", "Assistant": "assistant",
	"TurnDetection": "assistant.turn_detection", "Transcription": "assistant.transcription",
	"Tools": "assistant.tools", "Region": "regions[]", "Simulator": "regions[].simulator",
	"Faults": "regions[].simulator.faults", "Failover": "failover", "Health": "failover.health",
	"Admin": "admin", "Log": "log",
	"Trunk": "sip.trunks[]", "TLS": "sip.tls", "AuthLimit": "sip.auth_limit",
	"DTMF": "assistant.dtmf",
}

func friendlyYAMLError(err error) error {
	msg := err.Error()
	if m := yamlFieldNotFound.FindAllStringSubmatch(msg, -1); len(m) > 0 {
		var parts []string
		for _, x := range m {
			sec := sectionOf[x[3]]
			if sec == "" {
				sec = x[3]
			}
			parts = append(parts, fmt.Sprintf("line %s: unknown key %q in %s", x[1], x[2], sec))
		}
		return fmt.Errorf("configs: %s", strings.Join(parts, "; "))
	}
	return fmt.Errorf("configs: %s", strings.TrimPrefix(msg, "yaml: "))
}

func (c *Config) applyDefaults() {
	if len(c.SIP.Listen) == 0 {
		c.SIP.Listen = StringList{"127.0.0.1:5060"}
	}
	if len(c.SIP.Transports) == 0 {
		c.SIP.Transports = []string{"udp", "tcp"}
	}
	if c.SIP.UserAgent == "" {
		c.SIP.UserAgent = "sipbridge"
	}
	if c.SIP.ACKTimeout == 0 {
		c.SIP.ACKTimeout = Duration(32 * time.Second)
	}
	if c.SIP.AnswerWhenReady == nil {
		t := true
		c.SIP.AnswerWhenReady = &t
	}
	if c.SIP.AnswerTimeout == 0 {
		c.SIP.AnswerTimeout = Duration(10 * time.Second)
	}
	c.applyTrunkDefaults() // trunks.go
	c.extensionDefaults()  // extensions.go: sip.register, assistant.tools.webhooks
	if c.RTP.PortMin == 0 && c.RTP.PortMax == 0 {
		c.RTP.PortMin, c.RTP.PortMax = 10000, 20000
	}
	if c.RTP.Symmetric == nil {
		t := true
		c.RTP.Symmetric = &t
	}
	if c.RTP.MediaTimeout == 0 {
		c.RTP.MediaTimeout = Duration(30 * time.Second)
	}
	if c.RTP.ComfortNoiseDBov == 0 {
		c.RTP.ComfortNoiseDBov = -65
	}
	a := &c.Assistant
	if a.Instructions == "" {
		a.Instructions = DefaultInstructions
	}
	if a.Voice == "" {
		a.Voice = "marin"
	}
	if a.AudioFormat == "" {
		a.AudioFormat = "pcm24"
	}
	td := &a.TurnDetection
	if td.Type == "" {
		td.Type = "server_vad"
	}
	if td.Type == "server_vad" {
		if td.Threshold == nil {
			v := 0.5
			td.Threshold = &v
		}
		if td.PrefixPaddingMs == nil {
			v := 300
			td.PrefixPaddingMs = &v
		}
		if td.SilenceDurationMs == nil {
			v := 500
			td.SilenceDurationMs = &v
		}
	}
	if td.CreateResponse == nil {
		t := true
		td.CreateResponse = &t
	}
	if td.InterruptResponse == nil {
		t := true
		td.InterruptResponse = &t
	}
	if a.Transcription.Enabled == nil {
		t := true
		a.Transcription.Enabled = &t
	}
	if a.Transcription.Model == "" {
		a.Transcription.Model = "gpt-4o-transcribe"
	}
	if a.Tools.EndCall == nil {
		t := true
		a.Tools.EndCall = &t
	}
	for i := range c.Regions {
		r := &c.Regions[i]
		if r.Auth == "" {
			r.Auth = "auto"
		}
		if r.DialTimeout == 0 {
			r.DialTimeout = Duration(5 * time.Second)
		}
		if r.SessionLimit == 0 {
			r.SessionLimit = Duration(60 * time.Minute)
			if u, err := url.Parse(r.URL); err == nil && isAzureHost(u.Hostname()) {
				r.SessionLimit = Duration(30 * time.Minute)
			}
		}
		s := &r.Simulator
		if s.VoiceHz == 0 {
			s.VoiceHz = 440
		}
		if s.ResponseDelay == 0 {
			s.ResponseDelay = Duration(150 * time.Millisecond)
		}
		if s.Speedup == 0 {
			s.Speedup = 4
		}
	}
	f := &c.Failover
	if f.StallNoResponse == 0 {
		f.StallNoResponse = Duration(5 * time.Second)
	}
	if f.StallFirstAudio == 0 {
		f.StallFirstAudio = Duration(5 * time.Second)
	}
	if f.StallMidAudio == 0 {
		f.StallMidAudio = Duration(4 * time.Second)
	}
	if f.MaxSwapsInRow == 0 {
		f.MaxSwapsInRow = 3
	}
	if f.RotateMargin == 0 {
		f.RotateMargin = Duration(2 * time.Minute)
	}
	h := &f.Health
	if h.Window == 0 {
		h.Window = Duration(2 * time.Minute)
	}
	if h.MinSamples == 0 {
		h.MinSamples = 5
	}
	if h.FailureRatio == 0 {
		h.FailureRatio = 0.5
	}
	if h.CoolDown == 0 {
		h.CoolDown = Duration(30 * time.Second)
	}
	c.applyInDialogDefaults() // indialog.go
	if c.Admin.Listen == "" {
		c.Admin.Listen = "127.0.0.1:9090"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = Duration(5 * time.Minute)
	}
}

// DefaultInstructions is the assistant prompt when none is configured.
const DefaultInstructions = "You are a friendly call-center assistant speaking with a caller on the phone. " +
	"Keep answers short and clear. If the caller asks for a human, transfer the call. " +
	"When the caller says goodbye, say goodbye and end the call."

func isAzureHost(h string) bool {
	h = strings.ToLower(h)
	for _, s := range []string{".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com"} {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

var (
	regionNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	voices       = map[string]bool{"alloy": true, "ash": true, "ballad": true, "coral": true, "echo": true,
		"sage": true, "shimmer": true, "verse": true, "marin": true, "cedar": true}
)

// Validate checks every key and names the first bad one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
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
	if c.SIP.MaxCalls < 0 {
		bad("sip.max_calls", "must be ≥ 0")
	}
	if c.SIP.Advertise == "" {
		for _, l := range c.SIP.Listen {
			if ap, err := netip.ParseAddrPort(l); err == nil && ap.Addr().IsUnspecified() {
				bad("sip.advertise", "required when sip.listen is %s (an unspecified address cannot go into Contact/SDP)", l)
				break
			}
		}
	} else if strings.ContainsAny(c.SIP.Advertise, "\r\n\x00 <>;") {
		bad("sip.advertise", "%q is not a host", c.SIP.Advertise)
	}
	if strings.ContainsAny(c.SIP.UserAgent, "\r\n\x00") {
		bad("sip.user_agent", "must not contain CR, LF or NUL")
	}
	c.validateTrunks(bad)     // trunks.go: sip.trunks, sip.auth_limit, sip.tls
	c.validateExtensions(bad) // extensions.go: sip.register, assistant.tools.webhooks
	if c.RTP.IP != "" {
		if _, err := netip.ParseAddr(c.RTP.IP); err != nil {
			bad("rtp.ip", "%q is not an IP address", c.RTP.IP)
		}
	}
	if c.RTP.PortMin < 1024 || c.RTP.PortMax > 65534 || c.RTP.PortMin > c.RTP.PortMax || c.RTP.PortMax-c.RTP.PortMin < 2 {
		bad("rtp.port_min", "port range %d-%d must lie within 1024-65534 and hold at least two even ports", c.RTP.PortMin, c.RTP.PortMax)
	}
	if c.RTP.ComfortNoiseDBov > -20 || c.RTP.ComfortNoiseDBov < -96 {
		bad("rtp.comfort_noise_dbov", "%v is outside -96..-20", c.RTP.ComfortNoiseDBov)
	}
	a := c.Assistant
	if !voices[a.Voice] {
		bad("assistant.voice", "%q is not a realtime voice (alloy ash ballad coral echo sage shimmer verse marin cedar)", a.Voice)
	}
	if a.AudioFormat != "pcm24" && a.AudioFormat != "g711" {
		bad("assistant.audio_format", "%q is not pcm24 or g711", a.AudioFormat)
	}
	switch a.TurnDetection.Type {
	case "server_vad", "semantic_vad", "none":
	default:
		bad("assistant.turn_detection.type", "%q is not server_vad, semantic_vad or none", a.TurnDetection.Type)
	}
	if t := a.TurnDetection.Threshold; t != nil && (*t < 0 || *t > 1) {
		bad("assistant.turn_detection.threshold", "%v is outside 0..1", *t)
	}
	if v := a.TurnDetection.IdleTimeoutMs; v != 0 && (v < 5000 || v > 30000) {
		bad("assistant.turn_detection.idle_timeout_ms", "%d is outside 5000..30000", v)
	}
	switch a.TurnDetection.Eagerness {
	case "", "low", "medium", "high", "auto":
	default:
		bad("assistant.turn_detection.eagerness", "%q is not low, medium, high or auto", a.TurnDetection.Eagerness)
	}
	switch a.NoiseReduction {
	case "", "near_field", "far_field":
	default:
		bad("assistant.noise_reduction", "%q is not near_field or far_field", a.NoiseReduction)
	}
	for i, t := range a.Tools.TransferTargets {
		if err := ValidateSIPURI(t); err != nil {
			bad(fmt.Sprintf("assistant.tools.transfer_targets[%d]", i), "%v", err)
		}
	}
	if len(c.Regions) == 0 {
		bad("regions", "at least one region is required")
	}
	seen := map[string]bool{}
	for i, r := range c.Regions {
		key := fmt.Sprintf("regions[%d]", i)
		if !regionNameRE.MatchString(r.Name) {
			bad(key+".name", "%q must be 1-63 letters, digits, '-', '_' or '.'", r.Name)
		} else if seen[r.Name] {
			bad(key+".name", "%q is used by another region", r.Name)
		}
		seen[r.Name] = true
		if err := validateRealtimeURL(r.URL); err != nil {
			bad(key+".url", "%v", err)
		}
		if r.APIKeyEnv != "" && !envNameRE.MatchString(r.APIKeyEnv) {
			bad(key+".api_key_env", "%q is not an environment variable name (the key itself never goes in the file)", r.APIKeyEnv)
		}
		switch r.Auth {
		case "auto", "api-key", "bearer":
		default:
			bad(key+".auth", "%q is not auto, api-key or bearer", r.Auth)
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
			if f := r.Simulator.Faults.FailureRate; f < 0 || f > 1 {
				bad(key+".simulator.faults.failure_rate", "%v is outside 0..1", f)
			}
			if f := r.Simulator.Faults; f.ExpireAfter < 0 || f.HandshakeDelay < 0 {
				bad(key+".simulator.faults", "durations must not be negative")
			}
			if s := r.Simulator.Faults.RefuseStatus; s != 0 && (s < 400 || s > 599) {
				bad(key+".simulator.faults.refuse_status", "%d is not an HTTP error status", s)
			}
		}
	}
	f := c.Failover
	if f.MaxSwapsInRow < 1 {
		bad("failover.max_swaps_in_row", "must be ≥ 1")
	}
	if f.GiveUpTransfer != "" {
		if err := ValidateSIPURI(f.GiveUpTransfer); err != nil {
			bad("failover.give_up_transfer", "%v", err)
		}
	}
	if r := f.Health.FailureRatio; r <= 0 || r > 1 {
		bad("failover.health.failure_ratio", "%v is outside (0, 1]", r)
	}
	c.validateInDialog(bad) // indialog.go
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
	if len(errs) > 0 {
		return fmt.Errorf("configs: %w", errors.Join(errs...))
	}
	return nil
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

// ValidateSIPURI accepts sip:, sips: and tel: URIs without header-injection characters.
func ValidateSIPURI(s string) error {
	if strings.ContainsAny(s, "\r\n\x00<> ") {
		return fmt.Errorf("%q contains characters not allowed in a URI", s)
	}
	l := strings.ToLower(s)
	if !strings.HasPrefix(l, "sip:") && !strings.HasPrefix(l, "sips:") && !strings.HasPrefix(l, "tel:") {
		return fmt.Errorf("%q is not a sip:, sips: or tel: URI", s)
	}
	if len(s) <= 4 {
		return fmt.Errorf("%q is empty after the scheme", s)
	}
	return nil
}

// MissingKeys lists regions whose api_key_env is set but empty in the environment.
func (c *Config) MissingKeys(getenv func(string) string) []string {
	var out []string
	for _, r := range c.Regions {
		if r.APIKeyEnv != "" && getenv(r.APIKeyEnv) == "" && !r.Simulator.Enabled {
			out = append(out, fmt.Sprintf("regions %q: environment variable %s is not set", r.Name, r.APIKeyEnv))
		}
	}
	return append(out, c.missingExtensionKeys(getenv)...)
}
