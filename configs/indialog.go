package configs

import (
	"time"
)

// DTMF configures what the model hears of the caller's key presses (RFC 4733
// telephone-events and SIP INFO).
type DTMF struct {
	// Enabled gives the model a note per key, "The caller pressed 4."
	// (default true).
	Enabled *bool `yaml:"enabled"`
	// Respond asks the model to answer after each key (default true); off,
	// the keys wait for the caller's next turn (PIN entry).
	Respond *bool `yaml:"respond"`
}

// Session timer limits (RFC 4028).
const (
	defaultSessionExpires = 30 * time.Minute
	// RFCMinSE is RFC 4028 §5's floor for Min-SE; smaller values are
	// accepted for tests, and the binary warns about them.
	RFCMinSE = 90 * time.Second
)

// applyInDialogDefaults fills in the session timer and DTMF defaults.
func (c *Config) applyInDialogDefaults() {
	if c.SIP.MinSE == 0 {
		c.SIP.MinSE = Duration(RFCMinSE)
	}
	if c.SIP.SessionExpires == 0 {
		c.SIP.SessionExpires = Duration(max(defaultSessionExpires, c.SIP.MinSE.D()))
	}
	if c.SIP.SessionRefresher == "" {
		c.SIP.SessionRefresher = "uas"
	}
	if c.Assistant.DTMF.Enabled == nil {
		t := true
		c.Assistant.DTMF.Enabled = &t
	}
	if c.Assistant.DTMF.Respond == nil {
		t := true
		c.Assistant.DTMF.Respond = &t
	}
}

// validateInDialog checks the session timer keys.
func (c *Config) validateInDialog(bad func(key, format string, args ...any)) {
	minSE, se := c.SIP.MinSE.D(), c.SIP.SessionExpires.D()
	switch {
	case minSE < time.Second:
		bad("sip.min_se", "%s is below 1s (RFC 4028 asks for at least 90s)", minSE)
	case minSE%time.Second != 0:
		bad("sip.min_se", "%s is not a whole number of seconds (Min-SE is in seconds)", minSE)
	}
	switch {
	case se%time.Second != 0:
		bad("sip.session_expires", "%s is not a whole number of seconds (Session-Expires is in seconds)", se)
	case se < minSE:
		bad("sip.session_expires", "%s is below sip.min_se %s", se, minSE)
	}
	switch c.SIP.SessionRefresher {
	case "uas", "uac":
	default:
		bad("sip.session_refresher", "%q is not uas (we refresh) or uac (the caller does)", c.SIP.SessionRefresher)
	}
}
