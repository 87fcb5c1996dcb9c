package sdp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Static payload types of the codecs the bridge speaks (RFC 3551 §6).
const (
	PTPCMU uint8 = 0
	PTPCMA uint8 = 8
)

// DefaultPtime is the packetization time we send and advertise (ms).
const DefaultPtime = 20

// Prefs says what the bridge accepts. The zero value accepts PCMU and PCMA
// and negotiates telephone-event.
type Prefs struct {
	// Codecs are the static payload types we accept (PTPCMU, PTPCMA); empty
	// means both. Our order does not matter: the caller's order wins.
	Codecs []uint8
	// NoTelephoneEvent turns RFC 4733 DTMF negotiation off.
	NoTelephoneEvent bool
}

func (p Prefs) accepts(pt uint8) bool {
	if len(p.Codecs) == 0 {
		return pt == PTPCMU || pt == PTPCMA
	}
	for _, c := range p.Codecs {
		if c == pt && (pt == PTPCMU || pt == PTPCMA) {
			return true
		}
	}
	return false
}

// Answer is the outcome of a negotiation: what to put in the answer and how
// to run the media.
type Answer struct {
	// MediaIndex is the offer m-line we accept; every other one is rejected.
	MediaIndex int
	// Proto is echoed from the accepted m-line (RTP/AVP or RTP/AVPF).
	Proto string
	// Codec is PCMU (PT 0) or PCMA (PT 8).
	Codec Codec
	// DTMFPT is the caller's telephone-event payload type, -1 when none.
	DTMFPT int
	// DTMFEvents is the a=fmtp event list we answer ("0-15").
	DTMFEvents string
	// Direction is our answer's direction (RFC 3264 §6.1).
	Direction Direction
	// Remote is where to send RTP; invalid when the offer gives no usable
	// address (c=0.0.0.0 hold, hostname). Symmetric RTP may still latch.
	Remote netip.AddrPort
	// Ptime is the packetization time we use (ms).
	Ptime int
}

// Hold reports whether the answer stops us from sending (the caller put us
// on hold with sendonly/inactive, RFC 3264 §8.4).
func (a Answer) Hold() bool { return !a.Direction.Sends() }

// Negotiate answers an offer. It accepts the first audio m-line carrying
// PCMU or PCMA over plain RTP and picks, among those two, the one the caller
// listed first (RFC 3264 §6.1). Errors wrap ErrNoCommonCodec.
func Negotiate(o Offer, p Prefs) (Answer, error) {
	var sawAudio, sawSecure, sawRTP bool
	for i, m := range o.Media {
		if !strings.EqualFold(m.Type, "audio") || m.Port == 0 {
			continue
		}
		sawAudio = true
		if m.IsSecure() {
			sawSecure = true // SRTP is not supported yet: reject, do not downgrade
			continue
		}
		proto, ok := plainRTPProto(m.Proto)
		if !ok {
			continue
		}
		sawRTP = true
		codec, ok := pickG711(m, p)
		if !ok {
			continue
		}
		a := Answer{
			MediaIndex: i,
			Proto:      proto,
			Codec:      codec,
			DTMFPT:     -1,
			Direction:  answerDirection(m),
			Remote:     m.RemoteAddr(),
			Ptime:      DefaultPtime,
		}
		if !p.NoTelephoneEvent {
			// RFC 4733 events use a dynamic payload type (RFC 3551 §3: 96-127);
			// one mapped onto a static audio type would swallow audio.
			if te, ok := m.TelephoneEvent(); ok && te.PT >= 96 {
				if ev := intersectEvents(te.Fmtp); ev != "" {
					a.DTMFPT, a.DTMFEvents = int(te.PT), ev
				}
			}
		}
		return a, nil
	}
	switch {
	case !sawAudio:
		return Answer{}, fmt.Errorf("%w: no audio m-line with a non-zero port", ErrNoCommonCodec)
	case sawSecure && !sawRTP:
		return Answer{}, fmt.Errorf("%w: only secure (SAVP) audio offered", ErrNoCommonCodec)
	default:
		return Answer{}, fmt.Errorf("%w: no PCMU/PCMA on any audio m-line", ErrNoCommonCodec)
	}
}

// plainRTPProto accepts unencrypted RTP over UDP (RTP/AVP, RFC 3551; and
// RTP/AVPF, RFC 4585, answered as offered since RFC 5124 §6 forbids changing
// the profile) and returns its canonical spelling.
func plainRTPProto(p string) (string, bool) {
	switch strings.ToUpper(p) {
	case "RTP/AVP":
		return "RTP/AVP", true
	case "RTP/AVPF":
		return "RTP/AVPF", true
	}
	return "", false
}

// pickG711 returns the first PCMU/PCMA of m in the caller's order. Only the
// static payload types qualify: the RTP stream sends PT 0/8.
func pickG711(m Media, p Prefs) (Codec, bool) {
	for _, c := range m.Codecs {
		switch {
		case c.PT == PTPCMU && c.Is("PCMU", 8000) && p.accepts(PTPCMU):
			return Codec{PT: PTPCMU, Name: "PCMU", Rate: 8000}, true
		case c.PT == PTPCMA && c.Is("PCMA", 8000) && p.accepts(PTPCMA):
			return Codec{PT: PTPCMA, Name: "PCMA", Rate: 8000}, true
		}
	}
	return Codec{}, false
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
