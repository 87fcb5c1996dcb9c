// Package media owns a call's audio between RTP and PCM frames: the RTP
// socket and symmetric-RTP latching, SRTP (SDES keys, via pion/srtp), a
// small reorder/dedupe jitter buffer with loss concealment, G.711 (via
// zaf/g711) and G.722 (media/g722), band-limited 8 kHz ↔ 24 kHz and
// 16 kHz ↔ 24 kHz resampling, the 20 ms playout pacer with continuous
// timestamps, comfort noise, and RFC 4733 DTMF.
//
// A stream runs one codec rate for its life: G.711 at 8 kHz or G.722 at
// 16 kHz (both with an 8000 Hz RTP clock and 160-byte 20 ms payloads). The
// playout queue, concealment and silence fill work at that rate; the model
// side is always 24 kHz PCM16 or G.711 (a G.722 call with a G.711 model
// converts 16 → 24 → 8 kHz and back through the same tested filters).
//
// With StreamConfig.SRTP every datagram is authenticated and decrypted
// before it is parsed; failures (forged, clear, replayed) are counted and
// dropped, never played, and never move latching. Every packet sent is
// encrypted; if that fails nothing is sent. Rekey applies a re-INVITE's
// new keys. No RTCP is sent, so there is no SRTCP. It knows nothing of SIP or of the AI: audio goes
// out through an AudioSink and comes in through Play, tagged with an item id
// so the caller of Play can ask how much of each item was actually sent.
//
// A Stream has no goroutine of its own on Linux: the shared media clock
// (clock.go) both paces its outbound RTP and receives its inbound RTP
// (recv_linux.go). Elsewhere a reader goroutine per stream receives
// (recv_other.go).
//
//   - receiving: datagram → pion/rtp parse (into a reused Packet) →
//     payload-type filter (RFC 3550 §5.1; the negotiated G.711 type and
//     telephone-event) → symmetric-RTP latching → jitter.Buffer → G.711
//     decode, or dtmf.Detector → 20 ms frames in the model format (Up3 to
//     24 kHz PCM16, or G.711 in the model's law) → uplink chunks of
//     StreamConfig.UplinkChunk → AudioSink. Lost packets are concealed so
//     the model's audio clock stays continuous. It also enforces the media
//     timeout (suspended while on hold). On Linux the socket is taken out of
//     the runtime's poller, and on each 20 ms tick the stream's shard reads
//     what is queued (one non-blocking recvmmsg, at most 32 datagrams) and
//     then does the timed work a quiet socket needs (jitter release, lost
//     DTMF ends, the partial chunk, silence fill, the timeout).
//   - the pacer: a shard of the process-wide media clock (ten goroutines,
//     or one per GOMAXPROCS if more, phases spread over the 20 ms frame, running only while
//     it has streams) wakes every 20 ms on absolute monotonic deadlines and
//     sends exactly one packet for each of its streams to the current
//     remote: queued audio, or comfort noise when nothing is queued. The RTP
//     header is kept by hand (RFC 3550 §5.1, RFC 3551 §4.1 marker rules)
//     and marshalled into a reused buffer; the send is one non-blocking
//     sendto, so a dead peer cannot hold up the other calls of the shard.
//     How late each packet left its slot is kept in a histogram
//     (SendLateness; the binary exports it as
//     sipbridge_rtp_send_lateness_seconds).
//
// Play/Flush/PlayedMs/QueuedMs may be called from any goroutine; the queue
// they share with the pacer is behind a mutex held for microseconds. The
// per-frame paths (processInbound, the shard's receive tick,
// nextOutboundPacket, Play) do not allocate in steady state; hotpath_test.go
// and recv_linux_test.go prove it.
//
// Subpackages: g711, g722, resample, jitter, dtmf (pure, allocation-free
// codecs).
package media
