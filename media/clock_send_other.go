//go:build !unix

package media

import (
	"net/netip"
	"time"
)

// rawSender is empty where there is no sendto: the runtime's write with a
// short deadline bounds how long a full socket buffer can hold the clock.
type rawSender struct{}

func (s *Stream) initSender() error { return nil }

func (s *Stream) sendTo(pkt []byte, remote netip.AddrPort) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(time.Millisecond))
	_, err := s.conn.WriteToUDPAddrPort(pkt, remote)
	return err
}
