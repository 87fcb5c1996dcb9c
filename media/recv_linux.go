//go:build linux

package media

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// On Linux a stream has no receive goroutine: the clock shard that paces
// its outbound RTP also receives its inbound RTP (receiveTick), with one
// non-blocking recvmmsg per stream per receive. A goroutine parked in a read
// per call socket cost a netpoll wake-up, a goroutine switch and a
// SetReadDeadline per packet, for every call; a receive costs one system
// call per call for up to maxReadsPerTick datagrams.
//
// A stream is received once per uplink chunk (rtp.uplink_chunk, 100 ms by
// default), not every 20 ms tick: the caller's audio goes to the model a
// chunk at a time anyway, so the packets may as well wait in the socket as
// in the chunk buffer, and each receive takes the chunk's five packets in
// one system call instead of five. Everything a receive got goes to the
// model at its end as one chunk (flushChunk), so the model hears a packet
// at most one chunk after it arrived, as before, and the chunk boundaries
// cannot drift against the caller's packets. A receive that fills its
// batch (a backlog, a flood) is followed by another on the next tick. The
// streams of a shard are spread over the ticks of a chunk, so each tick
// receives a share of them.
//
// The socket is taken out of the Go runtime's poller (openReceive): the
// stream works on a duplicate of its descriptor and closes the net.UDPConn,
// which removes the original from the runtime's epoll set. Otherwise every
// datagram would still wake a thread blocked in the runtime's epoll_wait,
// although no goroutine waits for it.
//
// One owner: from Run's registration until the shard's remove returns, the
// shard goroutine alone touches the stream's inbound state (s.in, s.rx);
// before and after, Run's goroutine does.

// maxReadsPerTick bounds the datagrams taken from one stream's socket per
// 20 ms tick (20 ms ptime sends one, 10 ms two): an RTP flood at one call
// costs the shard at most this many reads of it a tick (tens of
// microseconds), so it cannot starve the other calls. The rest wait in the
// socket buffer for the next ticks, or are dropped by the kernel when it is
// full.
const maxReadsPerTick = 32

// rtpReadBuffer is the receive buffer asked for on each RTP socket (the
// kernel caps it at net.core.rmem_max): about two thousand small datagrams
// of a burst wait for the ticks that drain them instead of being dropped
// at once. It is a bound, not memory taken: a call's socket holds what has
// not been read yet, normally nothing between ticks.
const rtpReadBuffer = 1 << 20

// rxState is a stream's receive side on Linux.
type rxState struct {
	fd   int           // the duplicated socket descriptor; -1 until Run opens it
	done chan struct{} // closed by the shard when receiving ended with err
	err  error         // ErrMediaTimeout or a read error; written before done is closed
	end  bool          // done is closed: the shard no longer receives for the stream
	// every is the receive period in ticks (the uplink chunk's frames);
	// wait counts the ticks to the next receive.
	every, wait int
}

// batchedReceive: the shard receives each stream once per uplink chunk and
// hands the sink one chunk per receive (flushChunk at its end), so the
// chunk buffer has room for two chunks' frames, a receive that got more
// than a chunk's worth (a packet on the boundary, a late batch).
const batchedReceive = true

func (r *rxState) init(every int) { r.fd, r.every = -1, max(every, 1) }

// rxPhase spreads the streams' receive ticks (rxState.wait) over a chunk.
var rxPhase atomic.Uint32

// mmsghdr is struct mmsghdr of recvmmsg(2). Go pads the struct to the
// alignment of Msghdr, as C does, on 32- and 64-bit platforms.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
}

// recvBatch is a clock shard's receive scratch, used for one stream at a
// time by the shard goroutine: processInbound consumes each datagram before
// the next stream's are read.
type recvBatch struct {
	msgs  [maxReadsPerTick]mmsghdr
	iov   [maxReadsPerTick]syscall.Iovec
	names [maxReadsPerTick]syscall.RawSockaddrAny
	oob   [maxReadsPerTick][timestampOOB]byte // SCM_TIMESTAMPNS
	bufs  [maxReadsPerTick][readBufSize]byte
}

// timestampOOB is room for one SCM_TIMESTAMPNS control message
// (syscall.CmsgSpace of a Timespec is 32 bytes on 64-bit Linux, 20 on
// 32-bit; CmsgSpace is not a constant expression).
const timestampOOB = 64

func newRecvBatch() *recvBatch {
	b := new(recvBatch)
	for i := range b.msgs {
		b.iov[i].Base = &b.bufs[i][0]
		b.iov[i].SetLen(readBufSize)
		b.msgs[i].hdr.Iov = &b.iov[i]
		b.msgs[i].hdr.Iovlen = 1
		b.msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.msgs[i].hdr.Control = &b.oob[i][0]
	}
	return b
}

// recv reads up to maxReadsPerTick datagrams from fd without waiting. It
// returns how many it read (0 when none is queued). It does not allocate.
func (b *recvBatch) recv(fd int) (int, error) {
	for i := range b.msgs {
		b.msgs[i].hdr.Namelen = syscall.SizeofSockaddrAny
		b.msgs[i].hdr.SetControllen(timestampOOB)
		b.msgs[i].hdr.Flags = 0
		b.msgs[i].len = 0
	}
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.msgs[0])),
			maxReadsPerTick, syscall.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, nil
		default:
			return 0, e
		}
	}
}

// datagram is the i-th datagram of the last recv (truncated to readBufSize,
// like a read into a buffer of that size).
func (b *recvBatch) datagram(i int) []byte {
	return b.bufs[i][:min(int(b.msgs[i].len), readBufSize)]
}

// from is the source of the i-th datagram, parsed without allocating (an
// IPv4 source on an IPv6 socket is v4-mapped, as with the net package; the
// latch rule unmaps it).
func (b *recvBatch) from(i int) netip.AddrPort {
	sa := &b.names[i]
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), netPort(&p.Port))
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr), netPort(&p.Port))
	}
	return netip.AddrPort{}
}

// arrival is the kernel's receive time of the i-th datagram, or the zero
// time when the socket gave none.
func (b *recvBatch) arrival(i int) time.Time {
	h := &b.msgs[i].hdr
	if int(h.Controllen) < syscall.CmsgLen(int(unsafe.Sizeof(syscall.Timespec{}))) {
		return time.Time{}
	}
	c := (*syscall.Cmsghdr)(unsafe.Pointer(&b.oob[i][0]))
	if c.Level != syscall.SOL_SOCKET || c.Type != syscall.SCM_TIMESTAMPNS {
		return time.Time{}
	}
	ts := (*syscall.Timespec)(unsafe.Pointer(&b.oob[i][syscall.CmsgLen(0)]))
	return time.Unix(int64(ts.Sec), int64(ts.Nsec))
}

// netPort reads a port stored in network byte order.
func netPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// openReceive moves the socket out of the Go runtime's poller: it
// duplicates the descriptor (close-on-exec, non-blocking like the
// original), closes the net.UDPConn and sends on the duplicate from now on.
func (s *Stream) openReceive() error {
	if err := s.conn.SetReadBuffer(rtpReadBuffer); err != nil {
		s.log.Debug("media: rtp socket receive buffer", "error", err)
	}
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return err
	}
	nfd, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = e
			return
		}
		nfd = int(r)
	}); err != nil {
		return err
	}
	if derr != nil {
		return fmt.Errorf("dup: %w", derr)
	}
	if err := s.conn.Close(); err != nil {
		_ = syscall.Close(nfd)
		return err
	}
	// Arrival times for the latch rule (inbound.arrival); without them it
	// falls back to the tick's time.
	if err := syscall.SetsockoptInt(nfd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
		s.log.Debug("media: rtp socket timestamps", "error", err)
	}
	s.rx.fd = nfd
	s.out.snd.useFD(nfd)
	return nil
}

// useFD sends on fd, a descriptor the stream owns outside the Go runtime's
// poller (recv_linux.go), instead of through the net.UDPConn.
func (o *rawSender) useFD(fd int) { o.fd, o.direct = fd, true }

// runReceive has the shared clock receive and send for the stream until
// ctx ends (nil) or receiving ends (ErrMediaTimeout, a read error). When it
// returns the shard no longer touches the stream.
func (s *Stream) runReceive(ctx context.Context) error {
	if err := s.openReceive(); err != nil {
		return fmt.Errorf("media: rtp socket: %w", err)
	}
	s.rx.done = make(chan struct{})
	s.rx.wait = int(rxPhase.Add(1)) % s.rx.every
	s.in.lastPacket = time.Time{}
	// Registration hands the inbound state to the shard (under its lock).
	shard := sharedClock.register(s)
	select {
	case <-ctx.Done():
	case <-s.rx.done:
	}
	shard.remove(s) // the shard's lock orders its last write of rx.err before this read
	return s.rx.err
}

// closeSocket closes the stream's socket (Run, at the end).
func (s *Stream) closeSocket() error {
	if s.rx.fd < 0 {
		return s.conn.Close()
	}
	fd := s.rx.fd
	s.rx.fd = -1
	return syscall.Close(fd)
}

// receiveTick is the shard's receive work for s on one tick, every
// rx.every ticks: the queued datagrams (at most maxReadsPerTick) through
// processInbound and what they made of the uplink chunk to the sink, then
// what a quiet socket needs: the media timeout, the jitter flush, a lost
// DTMF end and silence fill (idle). Shard goroutine only.
func (s *Stream) receiveTick(b *recvBatch, now time.Time) {
	if s.rx.fd < 0 || s.rx.end {
		return // not started by Run (a benchmark driving the clock), or ended
	}
	if s.rx.wait > 0 {
		s.rx.wait--
		return
	}
	n, err := b.recv(s.rx.fd)
	if err != nil {
		s.endReceive(fmt.Errorf("media: read rtp: %w", err))
		return
	}
	s.rx.wait = s.rx.every - 1
	if n == maxReadsPerTick {
		s.rx.wait = 0 // more may be queued: drain it on the next tick
	}
	for i := range n {
		s.in.arrival = b.arrival(i)
		s.processInbound(b.datagram(i), b.from(i), now)
	}
	s.in.arrival = time.Time{}
	if err := s.endBatch(now); err != nil {
		s.endReceive(err)
	}
}

// endBatch is a receive's work after its datagrams: the media timeout, the
// timed work of a quiet socket (idle), and what the receive added to the
// uplink chunk to the sink.
func (s *Stream) endBatch(now time.Time) error {
	if err := s.checkTimeout(now); err != nil {
		return err
	}
	s.idle(now)
	s.flushChunk()
	return nil
}

func (s *Stream) endReceive(err error) {
	s.rx.end, s.rx.err = true, err
	close(s.rx.done)
}
