package media

// PLACEHOLDER: the media owner replaces this file with the real Stream.

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// ErrMediaTimeout: no RTP arrived from the caller for StreamConfig.MediaTimeout.
var ErrMediaTimeout = errors.New("media: no RTP received (media timeout)")

// Stats are a stream's counters.
type Stats struct {
	PacketsIn, PacketsOut, Lost, Late, Duplicates, Concealed uint64
	CallerFramesDropped                                      uint64
}

// Stream is one call's RTP session.
type Stream struct{ cfg StreamConfig }

// NewStream prepares a stream; Run starts it.
func NewStream(cfg StreamConfig) (*Stream, error) {
	return &Stream{cfg: cfg}, errors.New("media: not built yet")
}

// Run reads and paces RTP until ctx ends or the media times out.
func (s *Stream) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Play queues model audio for itemID.
func (s *Stream) Play(itemID string, audio []byte) {}

// Flush drops all queued playout now.
func (s *Stream) Flush() {}

// PlayedMs is how much of itemID was sent as RTP.
func (s *Stream) PlayedMs(itemID string) int { return 0 }

// QueuedMs is how much audio is waiting to be played.
func (s *Stream) QueuedMs() int { return 0 }

// Events reports DTMF, playout completion and latching.
func (s *Stream) Events() <-chan Event { return nil }

// LocalAddr is the RTP socket's address.
func (s *Stream) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// SetRemote applies a re-INVITE's new address / codec.
func (s *Stream) SetRemote(remote netip.AddrPort, codec Codec, dtmfPT int) {}

// SetSending stops (hold) or resumes sending RTP.
func (s *Stream) SetSending(on bool) {}

// Stats returns the counters.
func (s *Stream) Stats() Stats { return Stats{} }

// PortAllocator hands out RTP sockets on even ports from a range.
type PortAllocator struct{}

// NewPortAllocator binds on ip within [min, max].
func NewPortAllocator(ip netip.Addr, min, max int) (*PortAllocator, error) {
	return &PortAllocator{}, nil
}

// Allocate binds the next free even port.
func (a *PortAllocator) Allocate() (*net.UDPConn, error) {
	return nil, errors.New("media: not built yet")
}
