package resample

import "errors"

// ErrShortBuffer is returned when dst cannot hold the output of src; nothing
// is consumed and the converter's state is unchanged.
var ErrShortBuffer = errors.New("resample: destination buffer too short")
