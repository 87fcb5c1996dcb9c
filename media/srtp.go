package media

import (
	"errors"
	"fmt"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SRTP suite names (RFC 4568 §6.2, RFC 6188, RFC 7714), as negotiated in SDP.
const (
	SuiteAES128CMSHA1_80 = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES128CMSHA1_32 = "AES_CM_128_HMAC_SHA1_32"
	SuiteAES256CMSHA1_80 = "AES_256_CM_HMAC_SHA1_80"
	SuiteAES256CMSHA1_32 = "AES_256_CM_HMAC_SHA1_32"
	SuiteAEADAES128GCM   = "AEAD_AES_128_GCM"
	SuiteAEADAES256GCM   = "AEAD_AES_256_GCM"
)

// srtpReplayWindow is the SRTP replay window in packets (RFC 3711 §3.3.2
// asks for at least 64; 128 covers seconds of reordering at 50 pps).
const srtpReplayWindow = 128

// maxSRTPOverhead is the most SRTP adds to an RTP packet: a 16-byte GCM
// tag or a 10-byte HMAC tag (no MKI).
const maxSRTPOverhead = 16

// SRTPConfig is a call's SDES keying (the sdp package's negotiated SRTP):
// we encrypt with LocalKey and decrypt with RemoteKey, each the master key
// followed by the master salt. Keys are copied by the stream; they are
// never logged.
type SRTPConfig struct {
	Suite     string
	LocalKey  []byte
	RemoteKey []byte
}

// String never shows the keys.
func (c SRTPConfig) String() string { return "SRTP " + c.Suite + " (keys redacted)" }

func srtpProfile(suite string) (srtp.ProtectionProfile, error) {
	switch suite {
	case SuiteAES128CMSHA1_80:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, nil
	case SuiteAES128CMSHA1_32:
		return srtp.ProtectionProfileAes128CmHmacSha1_32, nil
	case SuiteAES256CMSHA1_80:
		return srtp.ProtectionProfileAes256CmHmacSha1_80, nil
	case SuiteAES256CMSHA1_32:
		return srtp.ProtectionProfileAes256CmHmacSha1_32, nil
	case SuiteAEADAES128GCM:
		return srtp.ProtectionProfileAeadAes128Gcm, nil
	case SuiteAEADAES256GCM:
		return srtp.ProtectionProfileAeadAes256Gcm, nil
	}
	return 0, fmt.Errorf("media: srtp: unknown suite %q", suite)
}

// srtpKeys are the two crypto contexts built from one SRTPConfig: enc is
// used only by the pacer goroutine, dec only by the reader (pion contexts
// are not safe for concurrent use).
type srtpKeys struct {
	enc, dec *srtp.Context
}

func newSRTPKeys(c SRTPConfig) (*srtpKeys, error) {
	p, err := srtpProfile(c.Suite)
	if err != nil {
		return nil, err
	}
	kl, err := p.KeyLen()
	if err != nil {
		return nil, err
	}
	sl, err := p.SaltLen()
	if err != nil {
		return nil, err
	}
	split := func(name string, k []byte) ([]byte, []byte, error) {
		if len(k) != kl+sl {
			return nil, nil, fmt.Errorf("media: srtp: %s key is %d bytes, %s needs %d", name, len(k), c.Suite, kl+sl)
		}
		k = append([]byte(nil), k...) // the stream keeps its own copy
		return k[:kl], k[kl:], nil
	}
	lk, ls, err := split("local", c.LocalKey)
	if err != nil {
		return nil, err
	}
	rk, rs, err := split("remote", c.RemoteKey)
	if err != nil {
		return nil, err
	}
	enc, err := srtp.CreateContext(lk, ls, p)
	if err != nil {
		return nil, fmt.Errorf("media: srtp: local context: %w", err)
	}
	dec, err := srtp.CreateContext(rk, rs, p, srtp.SRTPReplayProtection(srtpReplayWindow))
	if err != nil {
		return nil, fmt.Errorf("media: srtp: remote context: %w", err)
	}
	return &srtpKeys{enc: enc, dec: dec}, nil
}

// errSRTPReplay is the library's (unexported) replay error, found once by
// replaying a packet: pion/srtp reports replays with an error type that
// only unwraps to an unexported sentinel.
var errSRTPReplay = func() error {
	key := make([]byte, 30)
	enc, err1 := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	dec, err2 := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80,
		srtp.SRTPReplayProtection(srtpReplayWindow))
	if err1 != nil || err2 != nil {
		panic("media: srtp: cannot create the probe contexts")
	}
	pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1, SequenceNumber: 1}, Payload: []byte{0}}).Marshal()
	ct, err := enc.EncryptRTP(nil, pkt, nil)
	if err == nil {
		_, err = dec.DecryptRTP(nil, ct, nil)
	}
	if err == nil {
		_, err = dec.DecryptRTP(nil, ct, nil)
	}
	if err == nil || errors.Is(err, srtp.ErrFailedToVerifyAuthTag) {
		panic("media: srtp: replayed probe packet was not refused as a replay")
	}
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}()

// Rekey applies new SDES keys from a re-INVITE (RFC 4568 §7.1.4). The
// reader and the pacer pick them up at their next packet, each carrying
// its rollover counter over (our SSRC; the caller's last SSRC), so a call
// longer than 65536 packets keeps its SRTP index; the reader still accepts
// the caller's packets under the old keys until the first one that
// decrypts under the new keys. A stream that started without SRTP cannot
// turn it on (nor off): ErrBadConfig says so, and that needs a new stream.
func (s *Stream) Rekey(c SRTPConfig) error {
	if s.srtpKeys.Load() == nil {
		return fmt.Errorf("media: rekey: stream runs clear RTP: %w", ErrBadConfig)
	}
	k, err := newSRTPKeys(c)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	s.srtpKeys.Store(k)
	return nil
}

// unprotect decrypts and authenticates one SRTP datagram into dst (reader
// goroutine). Failures are counted and the packet is dropped: it is never
// played. Without SRTP it returns b unchanged.
func (s *Stream) unprotect(dst, b []byte, h *rtp.Header) ([]byte, bool) {
	in := &s.in
	if latest := s.srtpKeys.Load(); latest != in.keys {
		if latest == nil {
			return b, true
		}
		if in.keys != nil && in.ssrcKnown {
			if roc, ok := in.keys.dec.ROC(in.lastSSRC); ok {
				latest.dec.SetROC(in.lastSSRC, roc)
			}
		}
		in.prevKeys, in.keys = in.keys, latest
	}
	if in.keys == nil {
		return b, true
	}
	out, err := in.keys.dec.DecryptRTP(dst, b, h)
	if err == nil {
		in.prevKeys = nil // the caller uses the new keys
		in.lastSSRC, in.ssrcKnown = h.SSRC, true
		return out, true
	}
	replay := errors.Is(err, errSRTPReplay)
	if in.prevKeys != nil && !replay {
		if out, perr := in.prevKeys.dec.DecryptRTP(dst, b, h); perr == nil {
			return out, true
		}
	}
	if replay {
		s.stats.srtpReplayed.Add(1)
	} else { // authentication failed, or too short to be SRTP
		s.stats.srtpAuthFailed.Add(1)
	}
	if s.cfg.OnSRTPFailure != nil {
		s.cfg.OnSRTPFailure(replay)
	}
	return nil, false
}

// protect encrypts one RTP packet into dst (pacer goroutine). Without SRTP
// it returns pkt unchanged. On failure it returns false and the packet is
// not sent: a call with SRTP never sends clear RTP.
func (s *Stream) protect(dst, pkt []byte) ([]byte, bool) {
	o := &s.out
	if latest := s.srtpKeys.Load(); latest != o.keys {
		if latest == nil {
			return pkt, true
		}
		if o.keys != nil {
			if roc, ok := o.keys.enc.ROC(o.hdr.SSRC); ok {
				latest.enc.SetROC(o.hdr.SSRC, roc)
			}
		}
		o.keys = latest
	}
	if o.keys == nil {
		return pkt, true
	}
	out, err := o.keys.enc.EncryptRTP(dst, pkt, &o.sealHdr)
	if err != nil {
		s.stats.srtpProtectFailed.Add(1)
		return nil, false
	}
	return out, true
}
