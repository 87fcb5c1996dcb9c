//go:build unix

package media

import (
	"errors"
	"net/netip"
	"syscall"
)

// rawSender sends RTP on the stream's socket with one non-blocking sendto:
// the Go runtime's UDP write would park the shared clock's goroutine on a
// full socket buffer (EAGAIN) until writable, delaying every other call
// driven by the same shard. Its fields are the clock goroutine's scratch.
type rawSender struct {
	rc     syscall.RawConn
	fd     int // with direct: the descriptor to send on (see useFD)
	direct bool
	inet6  bool // the socket is AF_INET6 (IPv4 peers go as v4-mapped)
	fn     func(fd uintptr) bool
	buf    []byte
	sa4    syscall.SockaddrInet4
	sa6    syscall.SockaddrInet6
	to     syscall.Sockaddr
	err    error
}

var errFamily = errors.New("media: IPv6 peer on an IPv4 RTP socket")

func (s *Stream) initSender() error {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return err
	}
	o := &s.out.snd
	o.rc = rc
	var family int
	cerr := rc.Control(func(fd uintptr) {
		sa, gerr := syscall.Getsockname(int(fd))
		if gerr != nil {
			err = gerr
			return
		}
		if _, ok := sa.(*syscall.SockaddrInet6); ok {
			family = syscall.AF_INET6
		}
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	o.inet6 = family == syscall.AF_INET6
	o.fn = o.send // bound once: a method value made per send would allocate
	return nil
}

func (o *rawSender) send(fd uintptr) bool {
	for {
		o.err = syscall.Sendto(int(fd), o.buf, 0, o.to)
		if o.err != syscall.EINTR {
			return true // done, sent or failed: never wait for writability
		}
	}
}

// sendTo sends pkt to remote without blocking (clock goroutine only).
func (s *Stream) sendTo(pkt []byte, remote netip.AddrPort) error {
	o := &s.out.snd
	a := remote.Addr()
	switch {
	case a.Is4() && !o.inet6:
		o.sa4.Addr, o.sa4.Port = a.As4(), int(remote.Port())
		o.to = &o.sa4
	case o.inet6:
		o.sa6.Addr, o.sa6.Port = a.As16(), int(remote.Port()) // As16 maps IPv4
		o.to = &o.sa6
	default:
		return errFamily
	}
	o.buf = pkt
	if o.direct {
		o.send(uintptr(o.fd))
	} else if err := o.rc.Write(o.fn); err != nil {
		return err
	}
	err := o.err
	o.buf, o.err = nil, nil
	return err
}
