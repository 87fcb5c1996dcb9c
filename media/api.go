package media

import (
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Codec is the negotiated audio codec, by its static RTP payload type.
type Codec uint8

const (
	CodecPCMU Codec = 0 // RFC 3551 PT 0: G.711 μ-law, 8 kHz
	CodecPCMA Codec = 8 // RFC 3551 PT 8: G.711 A-law, 8 kHz
	// CodecG722 is RFC 3551 PT 9: G.722 at 64 kbit/s, 16 kHz audio but an
	// 8000 Hz RTP clock (RFC 3551 §4.5.2), 160 bytes per 20 ms like G.711.
	CodecG722 Codec = 9
)

// Valid reports whether the stream can run c.
func (c Codec) Valid() bool { return c == CodecPCMU || c == CodecPCMA || c == CodecG722 }

// SampleRate is the PCM rate of c's audio (not its RTP clock, which is
// 8000 for all three).
func (c Codec) SampleRate() int {
	if c == CodecG722 {
		return 16000
	}
	return 8000
}

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

// AudioSink receives the caller's audio in the model format, one uplink
// chunk per call (StreamConfig.UplinkChunk: a whole number of 20 ms frames;
// a shorter one when the caller goes quiet, on hold, and when the stream
// ends), on the goroutine receiving the stream's RTP. It must copy the
// chunk and must not block.
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
	Conn   *net.UDPConn   // bound RTP socket (see PortAllocator); the stream closes it
	Remote netip.AddrPort // from the SDP offer; replaced by latching when SymmetricRTP
	// Codec is fixed in its sample rate for the stream's life: a re-INVITE
	// may switch PCMU ↔ PCMA (SetRemote), not G.711 ↔ G.722.
	Codec           Codec
	DTMFPayloadType int // negotiated telephone-event PT; <0 when none
	// DTMFClockRate is the telephone-event clock (8000, or 16000 when a
	// G.722 caller negotiated telephone-event/16000); 0 means 8000.
	DTMFClockRate int
	// SRTP, when set, protects the stream (SDES keys from the SDP
	// negotiation): every packet sent is encrypted and authenticated, and
	// received packets that fail authentication or replay checks are
	// dropped and counted. Nil runs clear RTP.
	SRTP *SRTPConfig
	// OnSRTPFailure, when set, is called on the receiving goroutine for every
	// dropped SRTP packet (replay true for a replayed one, false for an
	// authentication failure) to feed a metric; it must not block.
	OnSRTPFailure func(replay bool)
	ModelFormat   ModelFormat
	SymmetricRTP  bool // send to where the caller's RTP comes from
	// LatchBeforeSend (with SymmetricRTP) sends nothing until the caller's
	// RTP has been heard, then only to where it came from: the SDP address
	// is never used (strict latching, as SBCs do for callers whose SDP
	// carries an address that is not theirs on this network).
	LatchBeforeSend bool
	MediaTimeout    time.Duration // Run returns ErrMediaTimeout after this long without RTP; 0 = never
	ComfortNoiseDB  float64       // level (dBov, e.g. -65) of the noise sent when nothing is queued; 0 = default -65
	JitterDepth     int           // reorder window in packets; 0 = default 3
	// UplinkChunk is how much caller audio goes to the Sink at once: 20 ms to
	// 200 ms in steps of 20 ms (CheckUplinkChunk; the binary's default is
	// DefaultUplinkChunk). 0 delivers every 20 ms frame on its own.
	UplinkChunk time.Duration
	Sink        AudioSink
	Logger      *slog.Logger
}
