//go:build !linux

package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sync/errgroup"
)

// Elsewhere than Linux a stream keeps the portable receive path: a reader
// goroutine per stream blocked in the socket read, with read deadlines for
// the timed work (readDeadline). The clock shards only send. The reader
// goroutine owns the inbound state while it runs.

// maxReadWait bounds a read so hold/timeout changes are noticed.
const maxReadWait = 200 * time.Millisecond

// rxState is a stream's receive side: the reader's buffer.
type rxState struct {
	buf [readBufSize]byte
}

// batchedReceive: the reader hands the sink a chunk each time it holds the
// uplink chunk's frames.
const batchedReceive = false

func (r *rxState) init(int) {}

// recvBatch is unused: shards do not receive here.
type recvBatch struct{}

func newRecvBatch() *recvBatch { return nil }

func (s *Stream) receiveTick(*recvBatch, time.Time) {}

// runReceive runs the reader goroutine, with the stream on the shared clock
// for sending, until ctx ends or the reader fails (ErrMediaTimeout, a read
// error). When it returns neither touches the stream.
func (s *Stream) runReceive(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	// Wake the reader from its blocking read when the group ends. The reader
	// sets its own deadlines, so it re-checks gctx after each one (see
	// readLoop for why that is race-free).
	stop := context.AfterFunc(gctx, func() { _ = s.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	g.Go(func() error { return s.readLoop(gctx) })
	shard := sharedClock.register(s)
	defer shard.remove(s)
	return g.Wait()
}

func (s *Stream) closeSocket() error { return s.conn.Close() }

// readLoop is the RTP reader goroutine.
func (s *Stream) readLoop(ctx context.Context) error {
	in := &s.in
	in.lastPacket = time.Time{}
	for {
		now := time.Now()
		if err := s.checkTimeout(now); err != nil {
			return err
		}
		// The deadline is set before ctx is checked: if Run's AfterFunc runs
		// after the check, its past deadline overrides ours and the read
		// returns at once; if it ran before, the check sees ctx done.
		_ = s.conn.SetReadDeadline(s.readDeadline(now))
		if ctx.Err() != nil {
			return nil
		}
		n, from, err := s.conn.ReadFromUDPAddrPort(s.rx.buf[:])
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.idle(time.Now())
				continue
			}
			return fmt.Errorf("media: read rtp: %w", err)
		}
		s.processInbound(s.rx.buf[:n], from, time.Now())
	}
}

// readDeadline is the earliest of: releasing a stuck jitter buffer (and
// the partial uplink chunk), a DTMF event whose end never came, the media
// timeout, the next silence frame, and maxReadWait.
func (s *Stream) readDeadline(now time.Time) time.Time {
	in := &s.in
	d := now.Add(maxReadWait)
	if in.jb.Pending() > 0 || (in.chunkN > 0 && !in.quiet) {
		d = earlier(d, in.lastPacket.Add(flushAfter))
	}
	if t, ok := in.det.Deadline(); ok {
		d = earlier(d, t)
	}
	if t, ok := s.timeoutAt(); ok {
		d = earlier(d, t)
	}
	if t, ok := s.nextFill(); ok {
		d = earlier(d, t)
	}
	return d
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
