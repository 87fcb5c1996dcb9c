package media

import (
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Codec is the negotiated G.711 law, by its static RTP payload type.
type Codec uint8

const (
	CodecPCMU Codec = 0 // RFC 3551 PT 0
	CodecPCMA Codec = 8 // RFC 3551 PT 8
)

// ModelFormat is the audio format exchanged with the AI side.
type ModelFormat uint8

const (
	ModelPCM24 ModelFormat = iota // PCM16 LE mono 24 kHz: 960 bytes per 20 ms
	ModelPCMU                     // G.711 μ-law 8 kHz: 160 bytes per 20 ms
	ModelPCMA                     // G.711 A-law 8 kHz: 160 bytes per 20 ms
)

// FrameBytes is the size of one 20 ms frame in this format.
func (f ModelFormat) FrameBytes() int {
	if f == ModelPCM24 {
		return 960
	}
	return 160
}

// BytesPerMs is how many bytes one millisecond takes in this format.
func (f ModelFormat) BytesPerMs() int { return f.FrameBytes() / 20 }

// AudioSink receives the caller's audio, one 20 ms frame in the model format
// per call, on the RTP reader goroutine. It must copy the frame and must not
// block.
type AudioSink interface {
	WriteCallerAudio(frame []byte)
}

// EventKind says what a stream Event reports.
type EventKind uint8

const (
	// EventDTMF: the caller pressed Digit (RFC 4733), reported once per key press.
	EventDTMF EventKind = iota + 1
	// EventPlayoutDone: everything queued for ItemID has been sent as RTP
	// (PlayedMs of it). Sent when the queue drains or moves to another item.
	EventPlayoutDone
	// EventRemoteLatched: symmetric RTP moved the send address to Addr.
	EventRemoteLatched
)

// Event is something the stream reports to its owner.
type Event struct {
	Kind       EventKind
	Digit      rune // '0'-'9', '*', '#', 'A'-'D'
	DurationMs int
	ItemID     string
	PlayedMs   int
	Addr       netip.AddrPort
}

// StreamConfig configures one call's RTP stream.
type StreamConfig struct {
	Conn            *net.UDPConn   // bound RTP socket (see PortAllocator); the stream closes it
	Remote          netip.AddrPort // from the SDP offer; replaced by latching when SymmetricRTP
	Codec           Codec
	DTMFPayloadType int // negotiated telephone-event PT; <0 when none
	ModelFormat     ModelFormat
	SymmetricRTP    bool // send to where the caller's RTP comes from
	// LatchBeforeSend (with SymmetricRTP) sends nothing until the caller's
	// RTP has been heard, then only to where it came from: the SDP address
	// is never used (strict latching, as SBCs do for callers whose SDP
	// carries an address that is not theirs on this network).
	LatchBeforeSend bool
	MediaTimeout    time.Duration // Run returns ErrMediaTimeout after this long without RTP; 0 = never
	ComfortNoiseDB  float64       // level (dBov, e.g. -65) of the noise sent when nothing is queued; 0 = default -65
	JitterDepth     int           // reorder window in packets; 0 = default 3
	Sink            AudioSink
	Logger          *slog.Logger
}
