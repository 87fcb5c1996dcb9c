//go:build !linux

package phone

// pacerPolls: elsewhere a paced call keeps its own receiving goroutine.
const pacerPolls = false

type recvPoller struct{}

func (ps *pacedSender) initRecv(*Call)   {}
func (ps *pacedSender) pollRecv(c *Call) {}
func (ps *pacedSender) closeRecv()       {}
