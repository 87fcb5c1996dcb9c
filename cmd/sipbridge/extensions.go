package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/failover"
	"github.com/sipbridge/sipbridge/failover/webhook"
	"github.com/sipbridge/sipbridge/sip"
)

// applyRegistrations copies sip.register into the SIP config, with each
// password read from its environment variable (a registration whose
// variable is unset registers without credentials and fails the challenge:
// logged at start by MissingKeys, and visible in /status).
func applyRegistrations(dst *sip.Config, cfg *configs.Config, getenv func(string) string) {
	for _, r := range cfg.SIP.Register {
		pw := ""
		if r.PasswordEnv != "" {
			pw = getenv(r.PasswordEnv)
		}
		dst.Registrations = append(dst.Registrations, sip.Registration{
			Name:        r.Name,
			Registrar:   r.Registrar,
			AOR:         r.AOR,
			Username:    r.Username,
			Password:    pw,
			Expires:     r.Expires.D(),
			ContactUser: r.ContactUser,
			Transport:   r.Transport,
		})
	}
}

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

// sipShutdownWait bounds how long serve waits, on its way out, for the SIP
// server's own shutdown: hanging up calls (5 s) and removing registrations
// (4 s) run side by side.
const sipShutdownWait = 12 * time.Second
