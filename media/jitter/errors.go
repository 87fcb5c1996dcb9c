package jitter

import "errors"

// ErrBadConfig is returned by New for a depth or payload size out of range.
var ErrBadConfig = errors.New("jitter: bad configuration")
