package configs

import (
	"fmt"
	"github.com/sipbridge/sipbridge/realtime"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Assistant profiles (assistants), routes (routes), the caller context
// (caller_headers) and what the logs keep private (privacy).
//
// A profile is written like the assistant section and inherits every key it
// does not write from it (mappings merge key by key, lists and scalars are
// replaced). Routes are tried in order and the first whose every match key
// matches picks the profile; a call no route matches uses assistant.
//
// The instructions and greeting of every assistant may use caller
// variables, written {{caller.NAME}}: from, from_user, from_name, to,
// to_user, trunk, and header.NAME for a header listed in caller_headers.
// A name that is not one of these is an error naming the key.

// Profiles is the assistants section as written: one mapping per profile,
// resolved against assistant by Parse into Config.Assistants.
type Profiles struct {
	names []string
	nodes map[string]*yaml.Node
}

var profileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// UnmarshalYAML keeps each profile's mapping in file order.
func (p *Profiles) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected a mapping of profile names to assistant settings", n.Line)
	}
	p.nodes = map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !profileNameRE.MatchString(k.Value) {
			return fmt.Errorf("line %d: profile name %q must be 1-63 letters, digits, '_' or '-'", k.Line, k.Value)
		}
		if k.Value == "assistant" { // what logs call the assistant section
			return fmt.Errorf("line %d: profile name %q is reserved for the assistant section", k.Line, k.Value)
		}
		if v.Kind != yaml.MappingNode && !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			return fmt.Errorf("line %d: profile %q: expected a mapping of assistant keys", v.Line, k.Value)
		}
		if _, dup := p.nodes[k.Value]; dup {
			return fmt.Errorf("line %d: profile %q is defined twice", k.Line, k.Value)
		}
		p.names = append(p.names, k.Value)
		p.nodes[k.Value] = v
	}
	return nil
}

// Route sends the calls it matches to an assistant profile (routes[]).
type Route struct {
	Match RouteMatch `yaml:"match"`
	// Assistant names a profile of assistants.
	Assistant string `yaml:"assistant"`
}

// RouteMatch: every key written must match (an empty match is refused).
// A value ending in '*' matches by prefix ("+1555*"); otherwise exactly.
type RouteMatch struct {
	ToUser   string `yaml:"to_user"`
	FromUser string `yaml:"from_user"`
	// Trunk is the name of the sip.trunks entry that admitted the call.
	Trunk string `yaml:"trunk"`
	// Header: each named header (case-insensitive name) has this value.
	Header map[string]string `yaml:"header"`
}

// Caller is what the bridge knows about who called and how: the source of
// routing, of the {{caller.…}} variables and of what webhooks receive.
type Caller struct {
	From     string // sip:user@host
	FromUser string
	FromName string // display name, "" when none
	To       string
	ToUser   string
	Trunk    string // sip.trunks name; "" with no trunks
	// Headers of the INVITE by lower-case name (first value).
	Headers map[string]string
}

// Privacy values: what logs must not show.
const (
	PrivateFrom     = "from"      // caller URI and number
	PrivateFromName = "from_name" // caller display name
	PrivateTo       = "to"        // dialled URI and number
	PrivateHeaders  = "headers"   // values of caller_headers
)

// Redacted replaces a private value in logs.
const Redacted = "[private]"

var privacyValues = []string{PrivateFrom, PrivateFromName, PrivateTo, PrivateHeaders}

// callerVarRE finds {{ … }} in instructions and greetings.
var callerVarRE = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)

// callerFields are the caller variables besides header.NAME.
var callerFields = []string{"from", "from_user", "from_name", "to", "to_user", "trunk"}

// maxCallerValue bounds one variable's value: it comes from the caller.
const maxCallerValue = 128

// ProfileNames lists the profiles in file order.
func (c *Config) ProfileNames() []string { return c.Profiles.names }

// resolveProfiles builds Config.Assistants: each profile's mapping merged
// over the assistant section's, decoded strictly with its own key path.
func (c *Config) resolveProfiles(root *yaml.Node) error {
	c.Assistants = map[string]*Assistant{}
	if len(c.Profiles.names) == 0 {
		return nil
	}
	base := mappingValue(root, "assistant")
	for _, name := range c.Profiles.names {
		merged := mergeMappings(base, c.Profiles.nodes[name])
		var a Assistant
		if merged != nil {
			if err := DecodeSection(merged, "assistants."+name, &a); err != nil {
				return err
			}
		}
		c.Assistants[name] = &a
	}
	return nil
}

func (c *Config) applyProfileDefaults() {
	for _, a := range c.Assistants {
		applyAssistantDefaultsTo(a)
	}
}

// validateProfiles checks every profile, the routes, caller_headers and
// privacy. A rule a profile inherits is not reported again under the
// profile when the assistant section already broke it (baseBad).
func (c *Config) validateProfiles(bad badFunc, baseBad bool) {
	seen := map[string]bool{}
	for i, h := range c.CallerHeaders {
		key := fmt.Sprintf("caller_headers[%d]", i)
		switch {
		case !headerNameRE.MatchString(h):
			bad(key, "%q is not a header name", h)
		case isSecretHeader(h):
			bad(key, "%q carries credentials and is never exposed", h)
		case seen[strings.ToLower(h)]:
			bad(key, "%q is listed twice", h)
		}
		seen[strings.ToLower(h)] = true
	}
	for i, p := range c.Privacy {
		if !slices.Contains(privacyValues, p) {
			bad(fmt.Sprintf("privacy[%d]", i), "%q is not one of %s", p, strings.Join(privacyValues, ", "))
		}
	}
	if !baseBad {
		for _, name := range c.Profiles.names {
			c.validateAssistantAt(c.Assistants[name], "assistants."+name, bad)
			c.validateProfileVoice(name, bad)
		}
	}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if _, ok := c.Assistants[r.Assistant]; !ok {
			if r.Assistant == "" {
				bad(key+".assistant", "required: the name of a profile in assistants")
			} else {
				bad(key+".assistant", "%q is not a profile in assistants (%s)", r.Assistant, strings.Join(c.Profiles.names, ", "))
			}
		}
		m := r.Match
		if m.ToUser == "" && m.FromUser == "" && m.Trunk == "" && len(m.Header) == 0 {
			bad(key+".match", "empty: give to_user, from_user, trunk or header (calls no route matches use assistant)")
		}
		if m.Trunk != "" && !slices.ContainsFunc(c.SIP.Trunks, func(t Trunk) bool { return t.Name == m.Trunk }) {
			bad(key+".match.trunk", "%q is not the name of a sip.trunks entry", m.Trunk)
		}
		for h := range m.Header {
			if !headerNameRE.MatchString(h) {
				bad(key+".match.header", "%q is not a header name", h)
			}
		}
	}
}

// validateTemplate checks the caller variables of one instructions or
// greeting text.
func (c *Config) validateTemplate(key, text string, bad badFunc) {
	for _, m := range callerVarRE.FindAllStringSubmatch(text, -1) {
		if !c.knownCallerVar(m[1]) {
			bad(key, "{{%s}} is not a caller variable (caller.%s, or caller.header.NAME for a header in caller_headers)",
				m[1], strings.Join(callerFields, ", caller."))
		}
	}
	if rest := callerVarRE.ReplaceAllString(text, ""); strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		bad(key, "unbalanced {{ or }} (caller variables are written {{caller.from_user}})")
	}
}

func (c *Config) knownCallerVar(v string) bool {
	name, ok := strings.CutPrefix(v, "caller.")
	if !ok {
		return false
	}
	if h, ok := strings.CutPrefix(name, "header."); ok {
		return slices.ContainsFunc(c.CallerHeaders, func(x string) bool { return strings.EqualFold(x, h) })
	}
	return slices.Contains(callerFields, name)
}

// isSecretHeader: headers never exposed to the model or webhooks.
func isSecretHeader(h string) bool {
	switch strings.ToLower(h) {
	case "authorization", "proxy-authorization":
		return true
	}
	return false
}

// Route picks the assistant of a call: the profile of the first route that
// matches, or the assistant section (name "").
func (c *Config) Route(caller Caller) (name string, a *Assistant) {
	for _, r := range c.Routes {
		if r.Match.matches(caller) {
			if p, ok := c.Assistants[r.Assistant]; ok {
				return r.Assistant, p
			}
		}
	}
	return "", &c.Assistant
}

func (m RouteMatch) matches(c Caller) bool {
	if m.ToUser != "" && !matchValue(m.ToUser, c.ToUser) {
		return false
	}
	if m.FromUser != "" && !matchValue(m.FromUser, c.FromUser) {
		return false
	}
	if m.Trunk != "" && m.Trunk != c.Trunk {
		return false
	}
	for h, want := range m.Header {
		got, ok := c.Headers[strings.ToLower(h)]
		if !ok || !matchValue(want, got) {
			return false
		}
	}
	return true
}

// matchValue: exact, or by prefix when pattern ends in '*'.
func matchValue(pattern, v string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(v, p)
	}
	return pattern == v
}

// CallerVars are the caller variables of a call, by name without the
// "caller." prefix (from_user, header.X-Account): what the instructions'
// {{caller.…}} become and what webhooks receive. Values are the caller's
// own strings, so they are cut to one line of at most 128 bytes.
func (c *Config) CallerVars(caller Caller) map[string]string {
	vars := map[string]string{
		"from": caller.From, "from_user": caller.FromUser, "from_name": caller.FromName,
		"to": caller.To, "to_user": caller.ToUser, "trunk": caller.Trunk,
	}
	for _, h := range c.CallerHeaders {
		vars["header."+h] = caller.Headers[strings.ToLower(h)]
	}
	for k, v := range vars {
		vars[k] = cleanCallerValue(v)
	}
	return vars
}

func cleanCallerValue(v string) string {
	v = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, v)
	v = strings.TrimSpace(v)
	if len(v) > maxCallerValue {
		v = strings.ToValidUTF8(v[:maxCallerValue], "")
	}
	return v
}

// RenderCaller fills the {{caller.…}} variables of text from vars
// (CallerVars); a variable with no value becomes "".
func RenderCaller(text string, vars map[string]string) string {
	if !strings.Contains(text, "{{") {
		return text
	}
	return callerVarRE.ReplaceAllStringFunc(text, func(m string) string {
		name := strings.TrimPrefix(callerVarRE.FindStringSubmatch(m)[1], "caller.")
		if h, ok := strings.CutPrefix(name, "header."); ok {
			for k, v := range vars {
				if kh, ok := strings.CutPrefix(k, "header."); ok && strings.EqualFold(kh, h) {
					return v
				}
			}
			return ""
		}
		return vars[name]
	})
}

// Private reports whether privacy lists what.
func (c *Config) Private(what string) bool { return slices.Contains(c.Privacy, what) }

// LogVars is vars as logs may show them: what privacy lists is replaced
// by Redacted.
func (c *Config) LogVars(vars map[string]string) map[string]string {
	out := make(map[string]string, len(vars))
	for k, v := range vars {
		switch {
		case v == "":
		case (k == "from" || k == "from_user") && c.Private(PrivateFrom),
			k == "from_name" && c.Private(PrivateFromName),
			(k == "to" || k == "to_user") && c.Private(PrivateTo),
			strings.HasPrefix(k, "header.") && c.Private(PrivateHeaders):
			v = Redacted
		}
		out[k] = v
	}
	return out
}

// mappingValue is the value of key in the mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// mergeMappings returns over merged onto base without changing either:
// keys of over win; where both values are mappings they merge in turn.
func mergeMappings(base, over *yaml.Node) *yaml.Node {
	if over == nil || over.Kind != yaml.MappingNode {
		if base == nil || base.Kind != yaml.MappingNode {
			return over
		}
		return base
	}
	if base == nil || base.Kind != yaml.MappingNode {
		return over
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: over.Line, Column: over.Column}
	for i := 0; i+1 < len(base.Content); i += 2 {
		k, v := base.Content[i], base.Content[i+1]
		if ov := mappingValue(over, k.Value); ov != nil {
			if ov.Kind == yaml.MappingNode && v.Kind == yaml.MappingNode {
				v = mergeMappings(v, ov)
			} else {
				v = ov
			}
		}
		out.Content = append(out.Content, k, v)
	}
	for i := 0; i+1 < len(over.Content); i += 2 {
		if mappingValue(base, over.Content[i].Value) == nil {
			out.Content = append(out.Content, over.Content[i], over.Content[i+1])
		}
	}
	return out
}

// PromptFiles are the filler and apology WAVs of a's calls: its own
// prompts, else failover's ("" when none).
func (c *Config) PromptFiles(a *Assistant) (filler, apology string) {
	filler, apology = a.Prompts.FillerFile, a.Prompts.ApologyFile
	if filler == "" {
		filler = c.Failover.FillerFile
	}
	if apology == "" {
		apology = c.Failover.ApologyFile
	}
	return filler, apology
}

// PromptFile is a WAV the config names, with the first key naming it.
type PromptFile struct{ Key, Path string }

// AllPromptFiles lists every distinct prompt WAV the config names, each
// with the first key that names it (failover, then assistant, then the
// profiles): what check verifies and serve loads.
func (c *Config) AllPromptFiles() []PromptFile {
	var out []PromptFile
	seen := map[string]bool{}
	add := func(key, path string) {
		if path != "" && !seen[path] {
			seen[path] = true
			out = append(out, PromptFile{key, path})
		}
	}
	add("failover.filler_file", c.Failover.FillerFile)
	add("failover.apology_file", c.Failover.ApologyFile)
	add("assistant.prompts.filler_file", c.Assistant.Prompts.FillerFile)
	add("assistant.prompts.apology_file", c.Assistant.Prompts.ApologyFile)
	for _, name := range c.Profiles.names {
		a := c.Assistants[name]
		add("assistants."+name+".prompts.filler_file", a.Prompts.FillerFile)
		add("assistants."+name+".prompts.apology_file", a.Prompts.ApologyFile)
	}
	return out
}

// validateProfileVoice checks a profile's own voice in each region its calls
// may use, as validateRegions does for assistant.voice: a region whose
// dialect refuses it (and has no regions[].voice of its own) could never
// take the profile's calls.
func (c *Config) validateProfileVoice(name string, bad badFunc) {
	a := c.Assistants[name]
	if a == nil || a.Voice == c.Assistant.Voice {
		return // the same voice: validateRegions has checked it
	}
	for i, r := range c.Regions {
		if len(a.Regions) > 0 && !slices.Contains(a.Regions, r.Name) {
			continue
		}
		d, err := realtime.DialectForURL(r.URL)
		if err != nil {
			continue // reported on regions[i].url
		}
		if _, err := realtime.ResolveVoice(d, a.Voice, r.Voice); err != nil && r.Voice == "" {
			bad("assistants."+name+".voice", "%v (region %s; set regions[%d].voice to a voice it accepts)", err, r.Name, i)
		}
	}
}
