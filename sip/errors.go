package sip

import "errors"

// Errors returned by the Server.
var (
	// ErrConfig: the Config is invalid; the wrapping error says why.
	ErrConfig = errors.New("sip: invalid config")
	// ErrAlreadyServing: Serve was called twice.
	ErrAlreadyServing = errors.New("sip: server already serving")
	// ErrListenerStopped: a listener stopped before the server context ended.
	ErrListenerStopped = errors.New("sip: listener stopped")
	// ErrInvalidTarget: a transfer target is not a sip:, sips: or tel: URI,
	// or contains characters that cannot go into a header.
	ErrInvalidTarget = errors.New("sip: invalid transfer target")
	// ErrRegister: a REGISTER was refused or could not be completed; the
	// wrapping error says how.
	ErrRegister = errors.New("sip: register failed")
)
