package sip

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// DefaultCodecs is the codec preference when neither the server nor a trunk
// sets one: G.722 (wideband) first, then the G.711 laws. The caller's order
// wins among them (RFC 3264 §6.1).
var DefaultCodecs = []uint8{sdp.PTG722, sdp.PTPCMU, sdp.PTPCMA}

// validCodecs checks a codec preference list (static payload types the
// media stream runs, none twice).
func validCodecs(codecs []uint8) error {
	for i, pt := range codecs {
		switch pt {
		case sdp.PTPCMU, sdp.PTPCMA, sdp.PTG722:
		default:
			return fmt.Errorf("codec payload type %d is not PCMU (0), PCMA (8) or G722 (9)", pt)
		}
		if slices.Contains(codecs[:i], pt) {
			return fmt.Errorf("codec payload type %d listed twice", pt)
		}
	}
	return nil
}

func validEncryption(e sdp.Encryption) error {
	if e > sdp.EncryptionRequired {
		return fmt.Errorf("media encryption %d is not none, optional or required", e)
	}
	return nil
}

// withMediaDefaults validates the server's media policy and fills in the
// default codec list.
func (c *Config) withMediaDefaults() error {
	if len(c.Codecs) == 0 {
		c.Codecs = DefaultCodecs
	}
	if err := validCodecs(c.Codecs); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := validEncryption(c.MediaEncryption); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil // the trunks' own policies: validTrunkMedia (trunksWithDefaults)
}

// validTrunkMedia checks a trunk's own media policy.
func validTrunkMedia(t Trunk) error {
	if err := validCodecs(t.Codecs); err != nil {
		return err
	}
	if t.MediaEncryption != nil {
		return validEncryption(*t.MediaEncryption)
	}
	return nil
}

// mediaPrefs is what a call admitted by trunk t (nil: no trunks configured)
// may negotiate: the trunk's codecs and encryption policy where it sets
// them, else the server's.
func (s *Server) mediaPrefs(t *Trunk) sdp.Prefs {
	p := sdp.Prefs{Codecs: s.cfg.Codecs, Encryption: s.cfg.MediaEncryption}
	if t != nil {
		if len(t.Codecs) > 0 {
			p.Codecs = t.Codecs
		}
		if t.MediaEncryption != nil {
			p.Encryption = *t.MediaEncryption
		}
	}
	return p
}

// sameKeys reports whether two SDES keyings are the same (no re-key).
func sameKeys(a, b *sdp.SRTP) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Suite == b.Suite && bytes.Equal(a.LocalKey, b.LocalKey) && bytes.Equal(a.RemoteKey, b.RemoteKey)
}

// srtpConfig is the media stream's view of a negotiated keying (nil: clear
// RTP).
func srtpConfig(k *sdp.SRTP) *media.SRTPConfig {
	if k == nil {
		return nil
	}
	return &media.SRTPConfig{Suite: string(k.Suite), LocalKey: k.LocalKey, RemoteKey: k.RemoteKey}
}

// codecName is the encoding name of a payload type we run.
func codecName(pt uint8) string {
	switch pt {
	case sdp.PTPCMA:
		return "PCMA"
	case sdp.PTG722:
		return "G722"
	}
	return "PCMU"
}

// codecList names payload types for logs ("G722,PCMU,PCMA").
func codecList(pts []uint8) string {
	names := make([]string, len(pts))
	for i, pt := range pts {
		names[i] = codecName(pt)
	}
	return strings.Join(names, ",")
}

// lateOfferSession is the placeholder session of a call whose INVITE had
// no offer (RFC 3261 §13.2.1). The stream's audio rate is fixed when it is
// built, before the ACK's answer, so our offer lists the codecs of one
// rate: G.711 when allowed (every peer answers it; such calls stay
// narrowband), else G.722. Under media encryption required it carries our
// SRTP key; the answer's key replaces the placeholder remote key once the
// ACK arrives (a re-key before the stream runs).
func (l *leg) lateOfferSession() sdp.Answer {
	first := sdp.PTPCMU
	if len(l.prefs.Codecs) > 0 {
		first = l.prefs.Codecs[0]
	}
	for _, pt := range l.prefs.Codecs {
		if pt == sdp.PTPCMU || pt == sdp.PTPCMA {
			first = pt
			break
		}
	}
	l.prefs = l.prefs.SameAudioRate(first)
	ans := sdp.Answer{Codec: sdp.Codec{PT: first, Name: codecName(first), Rate: 8000}, DTMFPT: -1,
		Direction: sdp.SendRecv, Ptime: sdp.DefaultPtime, Proto: "RTP/AVP"}
	if l.prefs.Encryption == sdp.EncryptionRequired {
		k := sdp.NewOfferKeying()
		placeholder, _ := sdp.NewKey(k.Suite) // never used: the stream runs after the ACK's re-key
		k.RemoteKey = placeholder
		ans.SRTP, ans.Proto = &k, "RTP/SAVP"
	}
	return ans
}
