package media

import (
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSharedClockDrivesAllStreams: many running streams share the clock's
// shards (no pacer goroutine per call), every one of them sends, packets
// are counted in the lateness histogram, and the shards end with the last
// stream (goleak in TestMain checks they do not outlive it).
func TestSharedClockDrivesAllStreams(t *testing.T) {
	const n = 24
	peer := listen(t)
	defer peer.Close()
	before := SendLateness().Count
	g0 := runtime.NumGoroutine()
	var rs []*running
	for range n {
		rs = append(rs, start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, Remote: addrOf(peer)})))
	}
	for _, r := range rs {
		require.Eventually(t, func() bool { return r.Stats().PacketsOut >= 3 }, wait, 5*time.Millisecond)
	}
	// Each stream adds its Run and reader goroutines; the pacing adds at most
	// one goroutine per shard, not one per stream.
	require.LessOrEqual(t, runtime.NumGoroutine()-g0, 2*n+len(sharedClock.shards))
	require.GreaterOrEqual(t, SendLateness().Count-before, uint64(3*n))
	for _, r := range rs {
		require.NoError(t, r.stop(t))
	}
	for _, sh := range sharedClock.shards {
		sh.mu.Lock()
		require.Empty(t, sh.streams)
		require.Nil(t, sh.stop, "an idle shard's goroutine has ended")
		sh.mu.Unlock()
	}
	// A stream started after the shards went idle restarts them.
	r := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, Remote: addrOf(peer)}))
	require.Eventually(t, func() bool { return r.Stats().PacketsOut >= 2 }, wait, 5*time.Millisecond)
	require.NoError(t, r.stop(t))
}

// TestClockNeverSendsAhead: a stream on the shared clock never sends more
// than one packet per elapsed 20 ms slot, plus the catch-up of a shard
// that was behind when the interval began. Only this upper bound is
// checked: it holds however loaded the machine is (the shard never sends
// for a slot in the future), where any lower bound would flake.
func TestClockNeverSendsAhead(t *testing.T) {
	peer := listen(t)
	defer peer.Close()
	r := start(t, newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1, Remote: addrOf(peer)}))
	require.Eventually(t, func() bool { return r.Stats().PacketsOut >= 1 }, wait, time.Millisecond)
	t0, p0 := time.Now(), r.Stats().PacketsOut
	time.Sleep(300 * time.Millisecond)
	p1 := r.Stats().PacketsOut
	frames := uint64(time.Since(t0) / frameDur)
	require.LessOrEqual(t, p1-p0, frames+1+maxCatchUp)
	require.Eventually(t, func() bool { return r.Stats().PacketsOut > p1 }, wait, time.Millisecond)
}

// TestSendToWrongFamilyFailsFast: the non-blocking send reports an IPv6
// peer on an IPv4 socket as an error, counted, never a block.
func TestSendToWrongFamilyFailsFast(t *testing.T) {
	s := newStream(t, StreamConfig{Codec: CodecPCMU, DTMFPayloadType: -1,
		Remote: netip.MustParseAddrPort("[2001:db8::1]:4000")})
	defer s.conn.Close()
	require.True(t, s.sendFrame(time.Now()))
	require.Equal(t, uint64(1), s.Stats().WriteErrors)
}

// TestSendToDualStackSocketReachesIPv4Peer: on an AF_INET6 socket an IPv4
// peer is sent to as a v4-mapped address.
func TestSendToDualStackSocketReachesIPv4Peer(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Skip("no IPv6 socket:", err)
	}
	peer := listen(t)
	defer peer.Close()
	s := newStream(t, StreamConfig{Conn: c, Codec: CodecPCMU, DTMFPayloadType: -1, Remote: addrOf(peer)})
	defer s.conn.Close()
	require.True(t, s.sendFrame(time.Now()))
	require.Zero(t, s.Stats().WriteErrors)
	_ = peer.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	n, _, err := peer.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	require.Equal(t, rtpHeaderLen+frameSamples, n)
}

func TestLatenessQuantile(t *testing.T) {
	mk := func(counts ...uint64) Lateness {
		l := Lateness{Counts: make([]uint64, len(LatenessBuckets)+1)}
		copy(l.Counts, counts)
		return l
	}
	for _, tc := range []struct {
		name string
		l    Lateness
		q    float64
		want time.Duration
	}{
		{"empty", mk(), 0.99, 0},
		{"all in the first bucket", mk(100), 0.99, 250 * time.Microsecond},
		{"p99 in 2 ms", mk(90, 5, 3, 2), 0.99, 2 * time.Millisecond},
		{"p50 in 500 µs", mk(40, 20, 40), 0.5, 500 * time.Microsecond},
		{"beyond every bound", mk(1, 0, 0, 0, 0, 0, 0, 0, 0, 99), 0.99, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, tc.l.Quantile(tc.q)) })
	}
	var h latencyHist
	h.observe(100 * time.Microsecond)
	h.observe(3 * time.Millisecond)
	h.observe(time.Second)
	require.Equal(t, uint64(1), h.counts[0].Load())
	require.Equal(t, uint64(1), h.counts[4].Load())
	require.Equal(t, uint64(1), h.counts[len(LatenessBuckets)].Load())
}
