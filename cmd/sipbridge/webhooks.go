package main

import (
	"fmt"
	"log/slog"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/failover/webhook"
)

// newToolRunner builds the webhook tools of one assistant (section is
// where it is written: assistant or assistants.NAME), with header values
// read from the environment; nil when it has none.
func newToolRunner(a *configs.Assistant, section string, getenv func(string) string, log *slog.Logger, m *webhook.Metrics) (*webhook.Webhooks, error) {
	hooks := a.Tools.Webhooks
	if len(hooks) == 0 {
		return nil, nil
	}
	defs := make([]webhook.Webhook, 0, len(hooks))
	for _, h := range hooks {
		hdrs := map[string]string{}
		for name, env := range h.HeadersEnv {
			if v := getenv(env); v != "" {
				hdrs[name] = v
			}
		}
		defs = append(defs, webhook.Webhook{Name: h.Name, URL: h.URL, Timeout: h.Timeout.D(), Headers: hdrs})
	}
	w, err := webhook.NewWebhooks(defs, log.With("component", "tools"), m)
	if err != nil {
		return nil, fmt.Errorf("%s.tools.webhooks: %w", section, err)
	}
	return w, nil
}
