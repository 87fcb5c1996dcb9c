package phone

import (
	"syscall"
	"time"
	"unsafe"
)

// pacerPolls: on Linux the pacer also receives its calls' RTP, polling
// each call's socket without blocking right after sending its frame, so
// hundreds of calls cost no goroutine wake-up per packet. Each packet's
// arrival time is the kernel's receive timestamp (SO_TIMESTAMPNS), so the
// gaps a call measures are the far end's, not the poll's 20 ms cadence.
const pacerPolls = true

// recvPoller is one paced call's receiving side (pacer goroutine only).
type recvPoller struct {
	state recvState
	buf   [1500]byte
	oob   [64]byte
	iov   syscall.Iovec
	msg   syscall.Msghdr
	n     int   // bytes of the last datagram
	ts    int64 // its kernel receive time, ns since the epoch (0: none)
	more  bool
	read  func(fd uintptr) bool
}

// initRecv also takes the call's socket out of the Go runtime's poller: it
// works on a duplicate of the descriptor (raw becomes an fdConn) and closes
// the net.UDPConn. A socket left in the poller's epoll set costs, for every
// datagram the far end sends, a wake-up of a thread sleeping in the
// runtime's epoll_wait although no goroutine waits for it, and on loopback
// the sender pays for that wake-up in its sendto: the load generator would
// charge the bridge a cost no real phone puts on it.
func (ps *pacedSender) initRecv(c *Call) {
	r := &ps.recv
	nfd := -1
	_ = ps.raw.Control(func(fd uintptr) {
		if d, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0); e == 0 {
			nfd = int(d)
		}
	})
	if nfd >= 0 {
		_ = c.conn.Close()
		ps.raw = fdConn(nfd)
	}
	_ = ps.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	})
	r.iov.Base = &r.buf[0]
	r.iov.SetLen(len(r.buf))
	r.msg.Iov = &r.iov
	r.msg.Iovlen = 1
	r.msg.Control = &r.oob[0]
	r.read = func(fd uintptr) bool {
		r.msg.SetControllen(len(r.oob))
		r.msg.Flags = 0
		n, _, errno := syscall.Syscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), syscall.MSG_DONTWAIT)
		r.more = errno == 0
		if !r.more {
			return true // EAGAIN (nothing waiting) or a closed socket
		}
		r.n = int(n)
		r.ts = 0
		if h := (*syscall.Cmsghdr)(unsafe.Pointer(&r.oob[0])); int(r.msg.Controllen) >= syscall.CmsgLen(int(unsafe.Sizeof(syscall.Timespec{}))) &&
			h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS {
			t := (*syscall.Timespec)(unsafe.Pointer(&r.oob[syscall.CmsgLen(0)]))
			r.ts = t.Nano()
		}
		return true
	}
}

// pollRecv takes every datagram waiting on c's socket.
func (ps *pacedSender) pollRecv(c *Call) {
	r := &ps.recv
	for {
		if err := ps.raw.Read(r.read); err != nil || !r.more {
			return
		}
		now := time.Now()
		if r.ts != 0 {
			now = time.Unix(0, r.ts)
		}
		c.receive(r.buf[:r.n], now, &r.state)
	}
}

// fdConn is a non-blocking socket descriptor outside the Go runtime's
// poller, used as a syscall.RawConn by the pacer goroutine (its callbacks
// never wait: each is called once).
type fdConn int

func (f fdConn) Control(fn func(fd uintptr)) error           { fn(uintptr(f)); return nil }
func (f fdConn) Read(fn func(fd uintptr) (done bool)) error  { fn(uintptr(f)); return nil }
func (f fdConn) Write(fn func(fd uintptr) (done bool)) error { fn(uintptr(f)); return nil }

// closeRecv closes the duplicate descriptor (Pacer.remove, or add when the
// call had stopped).
func (ps *pacedSender) closeRecv() {
	if f, ok := ps.raw.(fdConn); ok {
		_ = syscall.Close(int(f))
		ps.raw = nil
	}
}
