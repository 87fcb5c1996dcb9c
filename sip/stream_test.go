package sip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/sipbridge/sipbridge/media"
)

// testBackend is a media backend for tests: real RTP sockets on 127.0.0.1
// and testStream, a small G.711 passthrough stream (ModelPCMU/PCMA: RTP
// payloads go to the sink as they are; Play'd bytes go out as 20 ms RTP
// packets). It stands in for media.Stream, whose owner builds it in
// parallel; the SIP side only needs its contract.
type testBackend struct {
	mu      sync.Mutex
	conns   []*net.UDPConn
	streams []*testStream
	// Set before the server starts (the race detector does not see UDP
	// packets as synchronisation).
	failAlloc  bool
	failStream bool
	allocGate  chan struct{} // when set, allocation waits for it to close
}

func (b *testBackend) backend() mediaBackend {
	return mediaBackend{
		allocate: func() (*net.UDPConn, error) {
			if b.allocGate != nil {
				<-b.allocGate
			}
			if b.failAlloc {
				return nil, errors.New("test: port range exhausted")
			}
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return nil, err
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			return c, nil
		},
		newStream: func(cfg media.StreamConfig) (mediaStream, error) {
			if b.failStream {
				return nil, errors.New("test: stream failed")
			}
			s := newTestStream(cfg)
			b.mu.Lock()
			b.streams = append(b.streams, s)
			b.mu.Unlock()
			return s, nil
		},
	}
}

// allClosed reports whether every RTP socket handed out was closed.
func (b *testBackend) allClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		if err := c.SetReadDeadline(time.Time{}); !errors.Is(err, net.ErrClosed) {
			return false
		}
	}
	return true
}

func (b *testBackend) allocated() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *testBackend) stream(i int) *testStream {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i >= len(b.streams) {
		return nil
	}
	return b.streams[i]
}

type playItem struct {
	id    string
	audio []byte
	sent  int
}

type testStream struct {
	cfg    media.StreamConfig
	events chan media.Event

	mu      sync.Mutex
	remote  netip.AddrPort
	sending bool
	queue   []*playItem
	played  map[string]int
	in, out atomic.Uint64
	running atomic.Bool
	codec   atomic.Int32 // changed by SetRemote
	dtmfPT  atomic.Int32
	rekeys  []media.SRTPConfig // guarded by mu
	// timeoutNow makes Run return ErrMediaTimeout at once (test knob).
	timeoutNow chan struct{}
}

func newTestStream(cfg media.StreamConfig) *testStream {
	s := &testStream{
		cfg:        cfg,
		events:     make(chan media.Event, 64),
		remote:     cfg.Remote,
		sending:    true,
		played:     map[string]int{},
		timeoutNow: make(chan struct{}),
	}
	s.codec.Store(int32(cfg.Codec))
	s.dtmfPT.Store(int32(cfg.DTMFPayloadType))
	return s
}

func (s *testStream) Run(ctx context.Context) error {
	s.running.Store(true)
	defer s.cfg.Conn.Close()
	readErr := make(chan error, 1)
	go func() { readErr <- s.read() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	for {
		select {
		case <-ctx.Done():
			_ = s.cfg.Conn.Close()
			<-readErr
			return nil
		case err := <-readErr:
			return err
		case <-s.timeoutNow:
			_ = s.cfg.Conn.Close()
			<-readErr
			return media.ErrMediaTimeout
		case <-tick.C:
			frame, dst, done := s.next()
			if done != nil {
				select {
				case s.events <- *done:
				default:
				}
			}
			if frame == nil || !dst.IsValid() {
				continue
			}
			seq++
			ts += 160
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: uint8(s.codec.Load()), SequenceNumber: seq, Timestamp: ts, SSRC: 0x5eed}, Payload: frame}
			b, err := pkt.Marshal()
			if err != nil {
				continue
			}
			if _, err := s.cfg.Conn.WriteToUDPAddrPort(b, dst); err == nil {
				s.out.Add(1)
			}
		}
	}
}

// next pops one 20 ms frame to send, if sending.
func (s *testStream) next() ([]byte, netip.AddrPort, *media.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sending || len(s.queue) == 0 {
		return nil, s.remote, nil
	}
	it := s.queue[0]
	n := min(160, len(it.audio)-it.sent)
	frame := it.audio[it.sent : it.sent+n]
	it.sent += n
	s.played[it.id] += n / 8
	var done *media.Event
	if it.sent >= len(it.audio) {
		s.queue = s.queue[1:]
		done = &media.Event{Kind: media.EventPlayoutDone, ItemID: it.id, PlayedMs: s.played[it.id]}
	}
	return frame, s.remote, done
}

func (s *testStream) read() error {
	buf := make([]byte, 1500)
	var lastDTMF uint32
	for {
		if s.cfg.MediaTimeout > 0 {
			_ = s.cfg.Conn.SetReadDeadline(time.Now().Add(s.cfg.MediaTimeout))
		}
		n, from, err := s.cfg.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return media.ErrMediaTimeout
			}
			return nil
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		s.in.Add(1)
		if s.cfg.SymmetricRTP {
			s.mu.Lock()
			s.remote = from
			s.mu.Unlock()
		}
		switch {
		case int32(p.PayloadType) == s.dtmfPT.Load() && len(p.Payload) >= 4:
			// RFC 4733: report once per event (keyed by timestamp) at its end.
			if p.Payload[1]&0x80 != 0 && p.Timestamp != lastDTMF {
				lastDTMF = p.Timestamp
				s.events <- media.Event{Kind: media.EventDTMF, Digit: rune("0123456789*#ABCD"[p.Payload[0]&15])}
			}
		case int32(p.PayloadType) == s.codec.Load():
			s.cfg.Sink.WriteCallerAudio(append([]byte(nil), p.Payload...))
		}
	}
}

func (s *testStream) Play(itemID string, audio []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, &playItem{id: itemID, audio: append([]byte(nil), audio...)})
}

func (s *testStream) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = nil
}

func (s *testStream) PlayedMs(itemID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.played[itemID]
}

func (s *testStream) Events() <-chan media.Event { return s.events }

func (s *testStream) SetRemote(remote netip.AddrPort, codec media.Codec, dtmfPT int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remote = remote
	s.codec.Store(int32(codec))
	s.dtmfPT.Store(int32(dtmfPT))
}

func (s *testStream) Rekey(keys media.SRTPConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.SRTP == nil {
		return errors.New("test stream: re-key of a clear stream")
	}
	s.rekeys = append(s.rekeys, keys)
	return nil
}

func (s *testStream) rekeyCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rekeys)
}

func (s *testStream) SetSending(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sending = on
}

func (s *testStream) isSending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sending
}

func (s *testStream) Stats() media.Stats {
	return media.Stats{PacketsIn: s.in.Load(), PacketsOut: s.out.Load()}
}
