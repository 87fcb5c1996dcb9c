package main

import (
	"time"

	"github.com/sipbridge/sipbridge/configs"
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

// sipShutdownWait bounds how long serve waits, on its way out, for the SIP
// server's own shutdown: hanging up calls (5 s) and removing registrations
// (4 s) run side by side.
const sipShutdownWait = 12 * time.Second
