package sdp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Static payload types of the codecs the bridge speaks (RFC 3551 §6).
const (
	PTPCMU uint8 = 0
	PTPCMA uint8 = 8
	PTG722 uint8 = 9 // 16 kHz audio, but an 8000 Hz RTP clock (RFC 3551 §4.5.2)
)

// DefaultPtime is the packetization time we send and advertise (ms).
const DefaultPtime = 20

// defaultCodecs is what an empty Prefs.Codecs accepts.
var defaultCodecs = []uint8{PTPCMU, PTPCMA}

// codecNames are the encoding names of the payload types we speak.
var codecNames = map[uint8]string{PTPCMU: "PCMU", PTPCMA: "PCMA", PTG722: "G722"}

// ParseCodecs reads a codec preference list such as "G722, PCMU, PCMA"
// (names case-insensitive) into payload types, in order.
func ParseCodecs(s string) ([]uint8, error) {
	var out []uint8
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		found := false
		for pt, n := range codecNames {
			if strings.EqualFold(n, f) {
				if !slices.Contains(out, pt) {
					out = append(out, pt)
				}
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("sdp: codec %q is not one of G722, PCMU, PCMA", clip(f))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sdp: empty codec list")
	}
	return out, nil
}

// Prefs says what the bridge accepts. The zero value accepts PCMU and PCMA
// over clear RTP and negotiates telephone-event.
type Prefs struct {
	// Codecs are the static payload types we accept (PTPCMU, PTPCMA,
	// PTG722) in our order of preference; empty means PCMU, PCMA. The
	// caller's order wins among them (RFC 3264 §6.1) unless PreferOwnOrder.
	Codecs []uint8
	// PreferOwnOrder picks the first of Codecs the caller offers, whatever
	// the caller's order.
	PreferOwnOrder bool
	// NoTelephoneEvent turns RFC 4733 DTMF negotiation off.
	NoTelephoneEvent bool
	// Encryption is the media encryption policy (SDES-SRTP, RFC 4568).
	Encryption Encryption
}

func (p Prefs) codecs() []uint8 {
	if len(p.Codecs) == 0 {
		return defaultCodecs
	}
	return p.Codecs
}

func (p Prefs) accepts(pt uint8) bool {
	_, known := codecNames[pt]
	return known && slices.Contains(p.codecs(), pt)
}

func (p Prefs) codecList() string {
	names := make([]string, 0, len(p.codecs()))
	for _, pt := range p.codecs() {
		if n, ok := codecNames[pt]; ok {
			names = append(names, n)
		}
	}
	return strings.Join(names, "/")
}

// Answer is the outcome of a negotiation: what to put in the answer and how
// to run the media.
type Answer struct {
	// MediaIndex is the offer m-line we accept; every other one is rejected.
	MediaIndex int
	// Proto is echoed from the accepted m-line (RTP/AVP, RTP/AVPF, RTP/SAVP
	// or RTP/SAVPF).
	Proto string
	// Codec is PCMU (PT 0), PCMA (PT 8) or G722 (PT 9). Its Rate is the RTP
	// clock rate (8000 for all three).
	Codec Codec
	// DTMFPT is the caller's telephone-event payload type, -1 when none.
	DTMFPT int
	// DTMFRate is the telephone-event clock rate (8000, or 16000 when a
	// G.722 caller offered only telephone-event/16000); 0 when none.
	DTMFRate int
	// DTMFEvents is the a=fmtp event list we answer ("0-15").
	DTMFEvents string
	// Direction is our answer's direction (RFC 3264 §6.1).
	Direction Direction
	// Remote is where to send RTP; invalid when the offer gives no usable
	// address (c=0.0.0.0 hold, hostname). Symmetric RTP may still latch.
	Remote netip.AddrPort
	// Ptime is the packetization time we use (ms).
	Ptime int
	// SRTP is the SDES keying when the accepted line is RTP/SAVP[F]; nil
	// for clear RTP.
	SRTP *SRTP
}

// Hold reports whether the answer stops us from sending (the caller put us
// on hold with sendonly/inactive, RFC 3264 §8.4).
func (a Answer) Hold() bool { return !a.Direction.Sends() }

// RejectReason classifies why an offer cannot be answered (for metrics and
// logs; every reason is a 488).
type RejectReason string

const (
	RejectNoAudio            RejectReason = "no-audio"
	RejectNoCommonCodec      RejectReason = "no-common-codec"
	RejectSRTPNotEnabled     RejectReason = "srtp-not-enabled"    // SAVP offered, policy none
	RejectEncryptionRequired RejectReason = "encryption-required" // clear RTP offered, policy required
	RejectNoUsableCrypto     RejectReason = "no-usable-crypto"    // SAVP without a crypto line we can answer
	RejectDTLSUnsupported    RejectReason = "dtls-srtp-unsupported"
)

// NegotiationError is Negotiate's typed rejection; it wraps
// ErrNoCommonCodec, so a SIP server answers 488.
type NegotiationError struct {
	Reason RejectReason
	Detail string
}

func (e *NegotiationError) Error() string { return ErrNoCommonCodec.Error() + ": " + e.Detail }

// Unwrap makes errors.Is(err, ErrNoCommonCodec) hold.
func (e *NegotiationError) Unwrap() error { return ErrNoCommonCodec }

func reject(r RejectReason, format string, args ...any) error {
	return &NegotiationError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Negotiate answers an offer. It walks the audio m-lines in order and
// accepts the first one it can: a proto the encryption policy allows, a
// codec of p (the caller's preference order among them, RFC 3264 §6.1, or
// ours with PreferOwnOrder) and, for RTP/SAVP, an a=crypto line we can
// answer (the caller's first acceptable one, RFC 4568 §7.1.2), for which it
// draws our own key. With EncryptionOptional a secure line is preferred to
// a clear one anywhere in the offer. Errors are *NegotiationError (wrapping
// ErrNoCommonCodec).
func Negotiate(o Offer, p Prefs) (Answer, error) {
	var (
		sawAudio, sawSecure, sawClear, sawDTLS, sawCodec bool
		cryptoWhy                                        string
		fallback                                         *Answer
	)
	for i, m := range o.Media {
		if !strings.EqualFold(m.Type, "audio") || m.Port == 0 {
			continue
		}
		sawAudio = true
		proto, secure, ok := rtpProto(m.Proto)
		if !ok {
			sawDTLS = sawDTLS || m.IsDTLS()
			continue
		}
		switch {
		case secure:
			sawSecure = true
			if p.Encryption == EncryptionNone {
				continue // not supported here: reject, never downgrade
			}
		default:
			sawClear = true
			if p.Encryption == EncryptionRequired {
				continue
			}
		}
		codec, ok := pickCodec(m, p)
		if !ok {
			continue
		}
		sawCodec = true
		a := Answer{
			MediaIndex: i,
			Proto:      proto,
			Codec:      codec,
			DTMFPT:     -1,
			Direction:  answerDirection(m),
			Remote:     m.RemoteAddr(),
			Ptime:      DefaultPtime,
		}
		if secure {
			c, why := pickCrypto(m)
			if why != "" {
				cryptoWhy = why
				continue
			}
			key, err := NewKey(c.Suite)
			if err != nil {
				continue // cannot happen: pickCrypto only returns known suites
			}
			a.SRTP = &SRTP{Suite: c.Suite, Tag: c.Tag, RemoteKey: c.Key, LocalKey: key}
		}
		if !p.NoTelephoneEvent {
			a.DTMFPT, a.DTMFRate, a.DTMFEvents = pickTelephoneEvent(m, codec)
		}
		if !secure && p.Encryption == EncryptionOptional {
			if fallback == nil {
				fallback = &a // keep looking for a secure line
			}
			continue
		}
		return a, nil
	}
	if fallback != nil {
		return *fallback, nil
	}
	switch {
	case !sawAudio:
		return Answer{}, reject(RejectNoAudio, "no audio m-line with a non-zero port")
	case sawDTLS && !sawSecure && !sawClear:
		return Answer{}, reject(RejectDTLSUnsupported, "only DTLS-SRTP (UDP/TLS/RTP/SAVP) audio offered; SDES only")
	case sawSecure && !sawClear && p.Encryption == EncryptionNone:
		return Answer{}, reject(RejectSRTPNotEnabled, "only secure (SAVP) audio offered and media encryption is none")
	case sawClear && !sawSecure && p.Encryption == EncryptionRequired:
		return Answer{}, reject(RejectEncryptionRequired, "only clear RTP offered and media encryption is required")
	case sawCodec && cryptoWhy != "":
		return Answer{}, reject(RejectNoUsableCrypto, "no usable a=crypto line (%s)", cryptoWhy)
	default:
		return Answer{}, reject(RejectNoCommonCodec, "no %s on any audio m-line", p.codecList())
	}
}

// rtpProto accepts RTP over UDP: RTP/AVP (RFC 3551), RTP/AVPF (RFC 4585),
// and their SRTP forms RTP/SAVP, RTP/SAVPF (RFC 3711, RFC 5124), answered
// as offered since RFC 5124 §6 forbids changing the profile. It returns the
// canonical spelling and whether it is SRTP.
func rtpProto(p string) (proto string, secure, ok bool) {
	switch strings.ToUpper(p) {
	case "RTP/AVP":
		return "RTP/AVP", false, true
	case "RTP/AVPF":
		return "RTP/AVPF", false, true
	case "RTP/SAVP":
		return "RTP/SAVP", true, true
	case "RTP/SAVPF":
		return "RTP/SAVPF", true, true
	}
	return "", false, false
}

// pickCodec returns the codec to use on m. Only the static payload types
// qualify: the RTP stream sends PT 0/8/9.
func pickCodec(m Media, p Prefs) (Codec, bool) {
	match := func(c Codec) (Codec, bool) {
		name, ok := codecNames[c.PT]
		if !ok || !c.Is(name, 8000) || !p.accepts(c.PT) {
			return Codec{}, false
		}
		return Codec{PT: c.PT, Name: name, Rate: 8000}, true
	}
	if p.PreferOwnOrder {
		for _, pt := range p.codecs() {
			if c, ok := m.Codec(pt); ok {
				if got, ok := match(c); ok {
					return got, true
				}
			}
		}
		return Codec{}, false
	}
	for _, c := range m.Codecs {
		if got, ok := match(c); ok {
			return got, true
		}
	}
	return Codec{}, false
}

// pickCrypto returns the caller's first a=crypto line we can answer, or why
// none can be.
func pickCrypto(m Media) (Crypto, string) {
	why := "none offered"
	if m.CryptoInvalid > 0 {
		why = "malformed"
	}
	for _, c := range m.Crypto {
		w := c.usable()
		if w == "" {
			return c, ""
		}
		why = w
	}
	return Crypto{}, why
}

// pickTelephoneEvent returns the caller's telephone-event payload type,
// clock rate and the events we answer, or -1, 0, "". RFC 4733 §7.1.1 wants
// the event clock to match the audio codec's RTP clock (8000 for G.711 and
// G.722); a G.722 caller offering only telephone-event/16000 is answered
// at 16000 rather than losing DTMF.
func pickTelephoneEvent(m Media, codec Codec) (int, int, string) {
	rates := []int{codec.Rate}
	if codec.PT == PTG722 {
		rates = append(rates, 16000)
	}
	for _, rate := range rates {
		// RFC 4733 events use a dynamic payload type (RFC 3551 §3: 96-127);
		// one mapped onto a static audio type would swallow audio.
		if te, ok := m.TelephoneEventAt(rate); ok && te.PT >= 96 {
			if ev := intersectEvents(te.Fmtp); ev != "" {
				return int(te.PT), rate, ev
			}
		}
	}
	return -1, 0, ""
}

// answerDirection mirrors the offered direction (RFC 3264 §6.1). A c= of
// 0.0.0.0 is the RFC 2543 hold: the offerer does not want to receive
// (RFC 3264 §8.4), so it counts as if it had said sendonly/inactive.
func answerDirection(m Media) Direction {
	offered := m.Direction
	if m.Addr.IsValid() && m.Addr.IsUnspecified() {
		switch offered {
		case SendRecv:
			offered = SendOnly
		case RecvOnly:
			offered = Inactive
		}
	}
	switch offered {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	default:
		return SendRecv
	}
}

// intersectEvents returns the RFC 4733 events we answer: the offered list
// (default 0-15 when the offer has no fmtp, RFC 4733 §7.1.1) intersected with
// the DTMF events 0-15, as ranges ("0-15", "0-11"). "" when nothing is left.
func intersectEvents(fmtp string) string {
	var offered [16]bool
	if strings.TrimSpace(fmtp) == "" {
		for i := range offered {
			offered[i] = true
		}
	} else {
		for part := range strings.SplitSeq(fmtp, ",") {
			part = strings.TrimSpace(part)
			lo, hi, isRange := strings.Cut(part, "-")
			a, err := strconv.Atoi(strings.TrimSpace(lo))
			if err != nil {
				continue
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
					continue
				}
			}
			for e := max(a, 0); e <= min(b, 15); e++ {
				offered[e] = true
			}
		}
	}
	var sb strings.Builder
	for i := 0; i < 16; {
		if !offered[i] {
			i++
			continue
		}
		j := i
		for j+1 < 16 && offered[j+1] {
			j++
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(i))
		if j > i {
			sb.WriteByte('-')
			sb.WriteString(strconv.Itoa(j))
		}
		i = j + 1
	}
	return sb.String()
}

// audioRate is the sample rate of a codec's audio (G.722 samples at 16 kHz
// under its 8000 Hz RTP clock).
func audioRate(pt uint8) int {
	if pt == PTG722 {
		return 16000
	}
	return 8000
}

// SameAudioRate restricts p to the codecs whose audio sample rate equals
// that of pt: what a re-INVITE may switch to on a running stream, which
// keeps its sample rate for the call (PCMU ↔ PCMA, not G.711 ↔ G.722).
func (p Prefs) SameAudioRate(pt uint8) Prefs {
	var keep []uint8
	for _, c := range p.codecs() {
		if audioRate(c) == audioRate(pt) {
			keep = append(keep, c)
		}
	}
	if len(keep) == 0 {
		keep = []uint8{pt}
	}
	p.Codecs = keep
	return p
}
