package sdp

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	pion "github.com/pion/sdp/v3"
)

// Local describes our side of the session.
type Local struct {
	// Host is the advertised media address written to o= and c= (an IP
	// literal; a hostname is written as IN IP4 <host>).
	Host string
	// Port is our RTP port.
	Port int
	// SessionID and SessionVersion go into o= (RFC 4566 §5.2). Both are
	// masked to 63 bits: peers that parse them as signed 64-bit integers
	// reject larger values (diago fcf0ff5). The version must grow each time
	// the SDP changes within a dialog (RFC 3264 §8).
	SessionID      uint64
	SessionVersion uint64
	// Username for o=; "-" when empty.
	Username string
	// SRTP is our SDES keying for our own offers (Suite, Tag, LocalKey; see
	// NewOfferKeying); nil offers clear RTP. Answers ignore it.
	SRTP *SRTP
}

// NewSessionID returns a random o= session id that fits in an int64.
func NewSessionID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return binary.BigEndian.Uint64(b[:]) & (1<<62 - 1)
}

const int63Mask = 1<<63 - 1

// BuildAnswer writes the SDP answer for offer o negotiated as a. It keeps the
// number and order of the offer's m-lines and rejects every one except
// a.MediaIndex with port 0 (RFC 3264 §6). The accepted line carries the
// chosen codec, telephone-event with the caller's payload type, a=ptime and
// the direction.
func BuildAnswer(o Offer, a Answer, l Local) ([]byte, error) {
	if a.MediaIndex < 0 || a.MediaIndex >= len(o.Media) {
		return nil, fmt.Errorf("sdp: answer: media index %d out of range (%d m-lines)", a.MediaIndex, len(o.Media))
	}
	if _, secure, _ := rtpProto(a.Proto); secure != (a.SRTP != nil) {
		return nil, fmt.Errorf("sdp: answer: proto %q with SRTP keys %v", clip(a.Proto), a.SRTP != nil)
	}
	sd, err := session(l)
	if err != nil {
		return nil, err
	}
	for i, m := range o.Media {
		if i == a.MediaIndex {
			sd.MediaDescriptions = append(sd.MediaDescriptions, acceptedMedia(m, a, l.Port))
			continue
		}
		formats := m.Formats
		if len(formats) == 0 {
			formats = []string{"0"} // the fmt list may not be empty (RFC 4566 §5.14)
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions, &pion.MediaDescription{
			MediaName: pion.MediaName{
				Media:   m.Type,
				Port:    pion.RangedPort{Value: 0},
				Protos:  strings.Split(m.Proto, "/"),
				Formats: formats,
			},
		})
	}
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("sdp: answer: marshal: %w", err)
	}
	return out, nil
}

// session is the session-level part of our SDP (v=, o=, s=, c=, t=).
func session(l Local) (pion.SessionDescription, error) {
	if l.Port <= 0 || l.Port > 65535 {
		return pion.SessionDescription{}, fmt.Errorf("sdp: invalid local port %d", l.Port)
	}
	if !isToken(l.Host) {
		return pion.SessionDescription{}, fmt.Errorf("sdp: invalid local host %q", clip(l.Host))
	}
	user := l.Username
	if user == "" {
		user = "-"
	}
	if !isToken(user) {
		return pion.SessionDescription{}, fmt.Errorf("sdp: invalid username %q", clip(user))
	}
	addrType := "IP4"
	if ip, err := netip.ParseAddr(l.Host); err == nil && ip.Is6() && !ip.Is4In6() {
		addrType = "IP6"
	}
	sd := pion.SessionDescription{
		Version: 0,
		Origin: pion.Origin{
			Username:       user,
			SessionID:      l.SessionID & int63Mask,
			SessionVersion: l.SessionVersion & int63Mask,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: l.Host,
		},
		SessionName: "sipbridge",
		ConnectionInformation: &pion.ConnectionInformation{
			NetworkType: "IN",
			AddressType: addrType,
			Address:     &pion.Address{Address: l.Host},
		},
		TimeDescriptions: []pion.TimeDescription{{Timing: pion.Timing{StartTime: 0, StopTime: 0}}},
	}
	return sd, nil
}

// OfferTelephoneEventPT is the payload type of telephone-event in our own
// offers (the common choice; any of 96-127 would do).
const OfferTelephoneEventPT = 101

// BuildOffer writes our offer, for an INVITE that came without one
// (RFC 3261 §13.2.1: the offer goes in our 200, the answer comes in the ACK)
// and for offerless re-INVITEs: the codecs of p in our order,
// telephone-event, a=ptime:20, sendrecv. With l.SRTP set (needed when p
// requires encryption) it offers RTP/SAVP with our a=crypto line; the
// answer is then negotiated with Negotiate and completed with
// Answer.UseOfferedKey.
func BuildOffer(l Local, p Prefs) ([]byte, error) {
	sd, err := session(l)
	if err != nil {
		return nil, err
	}
	md := &pion.MediaDescription{
		MediaName: pion.MediaName{Media: "audio", Port: pion.RangedPort{Value: l.Port}, Protos: []string{"RTP", "AVP"}},
	}
	for _, c := range p.codecs() { // our order of preference
		name, ok := codecNames[c]
		if !ok {
			continue
		}
		pt := strconv.Itoa(int(c))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes, pion.NewAttribute("rtpmap", pt+" "+name+"/8000"))
	}
	if len(md.MediaName.Formats) == 0 {
		return nil, fmt.Errorf("sdp: offer: no codec allowed by %v", p.Codecs)
	}
	if !p.NoTelephoneEvent {
		te := strconv.Itoa(OfferTelephoneEventPT)
		md.MediaName.Formats = append(md.MediaName.Formats, te)
		md.Attributes = append(md.Attributes,
			pion.NewAttribute("rtpmap", te+" "+telephoneEvName+"/8000"),
			pion.NewAttribute("fmtp", te+" 0-15"))
	}
	switch {
	case l.SRTP != nil:
		if !l.SRTP.Suite.Known() || len(l.SRTP.LocalKey) != keyLen(l.SRTP.Suite) {
			return nil, fmt.Errorf("sdp: offer: unusable SRTP keying %v", *l.SRTP)
		}
		md.MediaName.Protos = []string{"RTP", "SAVP"}
		md.Attributes = append(md.Attributes, pion.NewAttribute("crypto", l.SRTP.answerLine()))
	case p.Encryption == EncryptionRequired:
		return nil, fmt.Errorf("sdp: offer: media encryption is required but no SRTP key was given")
	}
	md.Attributes = append(md.Attributes,
		pion.NewAttribute("ptime", strconv.Itoa(DefaultPtime)),
		pion.NewPropertyAttribute(SendRecv.String()))
	sd.MediaDescriptions = []*pion.MediaDescription{md}
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("sdp: offer: marshal: %w", err)
	}
	return out, nil
}

func acceptedMedia(m Media, a Answer, port int) *pion.MediaDescription {
	proto := a.Proto
	if proto == "" {
		proto = m.Proto
	}
	ptime := a.Ptime
	if ptime <= 0 {
		ptime = DefaultPtime
	}
	pt := strconv.Itoa(int(a.Codec.PT))
	rate := a.Codec.Rate
	if rate <= 0 {
		rate = 8000
	}
	md := &pion.MediaDescription{
		MediaName: pion.MediaName{
			Media:   "audio", // Negotiate only accepts audio; lower case per the IANA registry
			Port:    pion.RangedPort{Value: port},
			Protos:  strings.Split(proto, "/"),
			Formats: []string{pt},
		},
		Attributes: []pion.Attribute{
			pion.NewAttribute("rtpmap", pt+" "+a.Codec.Name+"/"+strconv.Itoa(rate)),
		},
	}
	if a.DTMFPT >= 0 {
		te := strconv.Itoa(a.DTMFPT)
		events := a.DTMFEvents
		if events == "" {
			events = "0-15"
		}
		teRate := a.DTMFRate
		if teRate <= 0 {
			teRate = 8000
		}
		md.MediaName.Formats = append(md.MediaName.Formats, te)
		md.Attributes = append(md.Attributes,
			pion.NewAttribute("rtpmap", te+" "+telephoneEvName+"/"+strconv.Itoa(teRate)),
			pion.NewAttribute("fmtp", te+" "+events),
		)
	}
	if a.SRTP != nil {
		md.Attributes = append(md.Attributes, pion.NewAttribute("crypto", a.SRTP.answerLine()))
	}
	md.Attributes = append(md.Attributes,
		pion.NewAttribute("ptime", strconv.Itoa(ptime)),
		pion.NewPropertyAttribute(a.Direction.String()),
	)
	return md
}
