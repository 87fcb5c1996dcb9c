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

func (c *Config) applyWebhookDefaults() {
	for i := range c.Assistant.Tools.Webhooks {
		w := &c.Assistant.Tools.Webhooks[i]
		if w.Timeout == 0 {
			w.Timeout = Duration(webhook.DefaultTimeout)
		}
		if w.Parameters == nil {
			w.Parameters = map[string]any{"type": "object", "properties": map[string]any{}}
		}
	}
}

// validateWebhooks checks assistant.tools.webhooks.
func (c *Config) validateWebhooks(bad badFunc) {
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

// missingWebhookHeaders lists webhook header variables that are empty.
func (c *Config) missingWebhookHeaders(getenv func(string) string) []string {
	var out []string
	for _, w := range c.Assistant.Tools.Webhooks {
		for _, env := range w.HeadersEnv {
			if getenv(env) == "" {
				out = append(out, fmt.Sprintf("assistant.tools.webhooks %q: environment variable %s is not set", w.Name, env))
			}
		}
	}
	return out
}
