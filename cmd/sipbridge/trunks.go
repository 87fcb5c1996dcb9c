package main

import (
	"fmt"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/sip"
)

// applyTrunks puts sip.trunks (with their media policies), the sip-level
// media policy, sip.auth_limit and sip.tls into the SIP
// server config. Trunk passwords come from the environment; an unset one is
// an error (the trunk would admit nobody).
func applyTrunks(dst *sip.Config, cfg *configs.Config, getenv func(string) string) error {
	for i, t := range cfg.SIP.Trunks {
		pw, err := t.Password(getenv)
		if err != nil {
			return fmt.Errorf("sip.trunks[%d].password_env: %w", i, err)
		}
		dst.Trunks = append(dst.Trunks, sip.Trunk{
			Name:            t.Name,
			Allow:           t.Prefixes(),
			Username:        t.Username,
			Password:        pw,
			Realm:           t.Realm,
			Algorithms:      t.Algorithms,
			Codecs:          t.Media().CodecPTs(),
			MediaEncryption: t.Media().Encryption(),
		})
	}
	dst.Codecs = cfg.SIP.Media().CodecPTs() // nil: the sip package's default
	if e := cfg.SIP.Media().Encryption(); e != nil {
		dst.MediaEncryption = *e
	}
	dst.AuthLimit = sip.AuthLimit{
		Failures: cfg.SIP.AuthLimit.Failures,
		Window:   cfg.SIP.AuthLimit.Window.D(),
		Block:    cfg.SIP.AuthLimit.Block.D(),
	}
	if tl := cfg.SIP.TLS; tl != nil {
		dst.Listen = append(dst.Listen, sip.Listener{Network: "tls", Addr: tl.Listen, CertFile: tl.CertFile, KeyFile: tl.KeyFile})
	}
	return nil
}
