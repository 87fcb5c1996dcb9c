package media

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// freeRange finds [lo, lo+7] (four even ports) with all ports bindable now.
func freeRange(t *testing.T) int {
	t.Helper()
	for range 50 {
		lo := 20000 + 2*rand.N(20000)
		ok := true
		for p := lo; p < lo+8 && ok; p += 2 {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(p))))
			if err != nil {
				ok = false
				continue
			}
			_ = c.Close()
		}
		if ok {
			return lo
		}
	}
	t.Fatal("no free port range")
	return 0
}

func port(c *net.UDPConn) int { return int(addrOf(c).Port()) }

func TestPortAllocator(t *testing.T) {
	lo := freeRange(t)
	a, err := NewPortAllocator(loopback, lo-1, lo+7) // odd bounds: lo … lo+6
	require.NoError(t, err)

	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	seen := map[int]bool{}
	for range 4 {
		c, err := a.Allocate()
		require.NoError(t, err)
		conns = append(conns, c)
		p := port(c)
		require.Zero(t, p%2, "RTP on even ports (RFC 3550 §11)")
		require.GreaterOrEqual(t, p, lo)
		require.LessOrEqual(t, p, lo+6)
		require.False(t, seen[p])
		seen[p] = true
	}
	// Round-robin: each allocation is the previous port + 2, wrapping.
	for i := 1; i < 4; i++ {
		want := port(conns[i-1]) + 2
		if want > lo+6 {
			want = lo
		}
		require.Equal(t, want, port(conns[i]))
	}
	_, err = a.Allocate()
	require.ErrorIs(t, err, ErrNoFreePort)

	// The cursor has wrapped: freed ports come back in range order from it.
	require.NoError(t, conns[2].Close())
	require.NoError(t, conns[1].Close())
	for _, i := range []int{1, 2} {
		want := port(conns[i])
		c, err := a.Allocate()
		require.NoError(t, err)
		conns[i] = c
		require.Equal(t, want, port(c))
	}
}

// A port just released is not handed out again while others are free (late
// packets of the old call would land in the new one).
func TestPortAllocatorDoesNotReuseAtOnce(t *testing.T) {
	lo := freeRange(t)
	a, err := NewPortAllocator(loopback, lo, lo+6)
	require.NoError(t, err)
	c, err := a.Allocate()
	require.NoError(t, err)
	first := port(c)
	require.NoError(t, c.Close())
	for range 3 {
		c, err := a.Allocate()
		require.NoError(t, err)
		require.NotEqual(t, first, port(c))
		defer c.Close()
	}
}

func TestPortAllocatorSkipsBusyPorts(t *testing.T) {
	lo := freeRange(t)
	a, err := NewPortAllocator(loopback, lo, lo+6)
	require.NoError(t, err)
	// Occupy the port the allocator would try next.
	a.mu.Lock()
	next := a.next
	a.mu.Unlock()
	busy, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(next))))
	require.NoError(t, err)
	defer busy.Close()
	c, err := a.Allocate()
	require.NoError(t, err)
	defer c.Close()
	require.NotEqual(t, next, port(c))
	require.Zero(t, port(c)%2)
}

func TestNewPortAllocatorValidates(t *testing.T) {
	tests := []struct {
		name     string
		ip       netip.Addr
		min, max int
	}{
		{"no ip", netip.Addr{}, 10000, 20000},
		{"inverted", loopback, 20000, 10000},
		{"no even port", loopback, 10001, 10001},
		{"zero", loopback, 0, 100},
		{"too high", loopback, 60000, 70000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPortAllocator(tc.ip, tc.min, tc.max)
			require.ErrorIs(t, err, ErrBadConfig)
		})
	}
}
