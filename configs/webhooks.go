package configs

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sipbridge/sipbridge/failover/webhook"
	"github.com/sipbridge/sipbridge/realtime"
)

// Webhook is a custom tool the model may call (assistant.tools.webhooks[]):
// the bridge POSTs the call to URL and the response body is the result.
type Webhook struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Parameters is the JSON schema of the arguments, written as YAML.
	Parameters map[string]any `yaml:"parameters"`
	URL        string         `yaml:"url"`
	// Timeout bounds the HTTP exchange (default webhook.DefaultTimeout).
	Timeout Duration `yaml:"timeout"`
	// HeadersEnv maps a header name to the environment variable holding its
	// value (e.g. Authorization: ORDERS_API_AUTH); values never live here.
	HeadersEnv map[string]string `yaml:"headers_env"`
}

// maxWebhookTimeout bounds assistant.tools.webhooks[].timeout: the caller
// is waiting.
const maxWebhookTimeout = 60 * time.Second

var (
	// Function names the realtime API accepts.
	toolNameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
)

func applyWebhookDefaults(a *Assistant) {
	for i := range a.Tools.Webhooks {
		w := &a.Tools.Webhooks[i]
		if w.Timeout == 0 {
			w.Timeout = Duration(webhook.DefaultTimeout)
		}
		if w.Parameters == nil {
			w.Parameters = map[string]any{"type": "object", "properties": map[string]any{}}
		}
	}
}

// validateWebhooks checks the tools.webhooks of the assistant written at
// section ("assistant" or "assistants.NAME").
func validateWebhooks(a *Assistant, section string, bad badFunc) {
	seen := map[string]bool{ToolEndCall: true, ToolTransferCall: true}
	for i, w := range a.Tools.Webhooks {
		key := fmt.Sprintf("%s.tools.webhooks[%d]", section, i)
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

// webhookTools renders the webhooks as session tools.
func (a *Assistant) webhookTools() []realtime.Tool {
	var out []realtime.Tool
	for _, w := range a.Tools.Webhooks {
		params, err := json.Marshal(w.Parameters)
		if err != nil {
			continue // Validate refused it
		}
		out = append(out, realtime.Tool{Name: w.Name, Description: w.Description, Parameters: json.RawMessage(params)})
	}
	return out
}

// missingWebhookHeaders lists webhook header variables that are empty, in
// the assistant section and every profile (once per variable and tool).
func (c *Config) missingWebhookHeaders(getenv func(string) string) []string {
	var out []string
	seen := map[string]bool{}
	check := func(section string, a *Assistant) {
		for _, w := range a.Tools.Webhooks {
			for _, env := range w.HeadersEnv {
				if getenv(env) == "" && !seen[w.Name+"\x00"+env] {
					seen[w.Name+"\x00"+env] = true
					out = append(out, fmt.Sprintf("%s.tools.webhooks %q: environment variable %s is not set", section, w.Name, env))
				}
			}
		}
	}
	check("assistant", &c.Assistant)
	for _, name := range c.ProfileNames() {
		check("assistants."+name, c.Assistants[name])
	}
	return out
}
