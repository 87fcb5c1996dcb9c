// Package integration holds the end-to-end tests: the real sipbridge binary,
// simulated realtime regions the test controls, and real SIP peers (an
// in-process sipgo phone with RTP, SIPp, baresip) placing calls through it.
// Run with `make test` (which installs the peers) or `go test ./integration`.
package integration
