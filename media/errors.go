package media

import "errors"

// ErrMediaTimeout: no RTP arrived from the caller for StreamConfig.MediaTimeout
// (while we were not on hold).
var ErrMediaTimeout = errors.New("media: no RTP received (media timeout)")

// ErrBadConfig: NewStream or NewPortAllocator was given an unusable
// configuration; the wrapping error says which field.
var ErrBadConfig = errors.New("media: bad configuration")

// ErrAlreadyRunning: Run was called a second time.
var ErrAlreadyRunning = errors.New("media: stream already running")

// ErrNoFreePort: every even port of the allocator's range is in use.
var ErrNoFreePort = errors.New("media: no free RTP port")
