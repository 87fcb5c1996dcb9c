package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// PortAllocator hands out RTP sockets on even ports of a range: RFC 3550
// §11 puts RTP on an even port and RTCP on the next odd one, and some
// peers still assume it. Ports are taken round-robin, so a port just
// released is not handed out again at once (late packets of the previous
// call would land in the new one). It is safe for concurrent use.
type PortAllocator struct {
	ip       netip.Addr
	min, max int // even bounds, inclusive

	mu   sync.Mutex
	next int // next port to try
}

// NewPortAllocator binds on ip within [min, max] (min rounded up and max
// down to even ports).
func NewPortAllocator(ip netip.Addr, min, max int) (*PortAllocator, error) {
	lo, hi := min+min%2, max-max%2
	if !ip.IsValid() || min < 1 || max > 65535 || lo > hi {
		return nil, fmt.Errorf("media: port allocator %v [%d, %d]: %w", ip, min, max, ErrBadConfig)
	}
	a := &PortAllocator{ip: ip.Unmap(), min: lo, max: hi}
	// Start at a random even port so a restarted server does not hand out
	// the ports of its previous life first.
	a.next = lo + 2*rand.N((hi-lo)/2+1)
	return a, nil
}

// Allocate binds the next free even port, skipping ports in use.
func (a *PortAllocator) Allocate() (*net.UDPConn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := (a.max-a.min)/2 + 1
	var lastErr error
	for range n {
		p := a.next
		a.next += 2
		if a.next > a.max {
			a.next = a.min
		}
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.ip, uint16(p))))
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			lastErr = err
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("media: allocate rtp port in [%d, %d]: %w: %w", a.min, a.max, ErrNoFreePort, lastErr)
	}
	return nil, fmt.Errorf("media: allocate rtp port in [%d, %d]: %w", a.min, a.max, ErrNoFreePort)
}
