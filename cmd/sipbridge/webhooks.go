package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/failover/webhook"
)

// newToolRunner builds the webhook tools of assistant.tools.webhooks, with
// header values read from the environment; nil when there are none.
func newToolRunner(cfg *configs.Config, getenv func(string) string, log *slog.Logger, reg prometheus.Registerer) (failover.ToolRunner, error) {
	hooks := cfg.Assistant.Tools.Webhooks
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
	w, err := webhook.NewWebhooks(defs, log.With("component", "tools"), webhook.NewMetrics(reg))
	if err != nil {
		return nil, fmt.Errorf("assistant.tools.webhooks: %w", err)
	}
	return w, nil
}
