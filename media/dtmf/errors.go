package dtmf

import "errors"

// ErrShortPayload: a telephone-event payload is 4 bytes (RFC 4733 §2.3).
var ErrShortPayload = errors.New("dtmf: telephone-event payload shorter than 4 bytes")

// ErrShortBuffer: Encode needs 4 bytes of room.
var ErrShortBuffer = errors.New("dtmf: buffer shorter than 4 bytes")
