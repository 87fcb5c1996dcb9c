package failover

// functionState is the model's function calls: the ones handled (each
// once, though it may arrive twice), transfers waiting for their result,
// custom tools running, and the end of the call the model asked for.
type functionState struct {
	handled   map[string]bool
	transfers map[string]string // function call id → transfer target
	tools     toolState
	ending    *endState
}
