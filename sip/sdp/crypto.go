package sdp

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// CryptoSuite is an SDES crypto-suite name (RFC 4568 §6.2, RFC 6188 §7.1,
// RFC 7714 §14.2). Only the suites the SRTP library implements are known.
type CryptoSuite string

const (
	SuiteAES128CMSHA1_80 CryptoSuite = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES128CMSHA1_32 CryptoSuite = "AES_CM_128_HMAC_SHA1_32"
	SuiteAES256CMSHA1_80 CryptoSuite = "AES_256_CM_HMAC_SHA1_80"
	SuiteAES256CMSHA1_32 CryptoSuite = "AES_256_CM_HMAC_SHA1_32"
	SuiteAEADAES128GCM   CryptoSuite = "AEAD_AES_128_GCM"
	SuiteAEADAES256GCM   CryptoSuite = "AEAD_AES_256_GCM"
)

// KeyLen returns the master key and master salt lengths in bytes, and false
// for a suite we do not know.
func (s CryptoSuite) KeyLen() (key, salt int, ok bool) {
	switch s {
	case SuiteAES128CMSHA1_80, SuiteAES128CMSHA1_32:
		return 16, 14, true
	case SuiteAES256CMSHA1_80, SuiteAES256CMSHA1_32:
		return 32, 14, true
	case SuiteAEADAES128GCM:
		return 16, 12, true
	case SuiteAEADAES256GCM:
		return 32, 12, true
	}
	return 0, 0, false
}

// Known reports whether the suite is one we can answer.
func (s CryptoSuite) Known() bool { _, _, ok := s.KeyLen(); return ok }

// Crypto is one a=crypto line (RFC 4568 §9.1):
//
//	a=crypto:<tag> <suite> inline:<key||salt base64>[|<lifetime>][|<MKI>:<len>][;inline:...] [<session params>]
//
// Key holds the decoded master key followed by the master salt. Its String
// and LogValue never show the key.
type Crypto struct {
	Tag   uint32 // 1-9 digits
	Suite CryptoSuite
	Key   []byte
	// Lifetime is the key's lifetime in packets (0 when absent).
	Lifetime uint64
	// MKI and MKILen are the master key identifier and its length in bytes
	// (MKILen 0 when absent).
	MKI, MKILen uint32
	// Keys is how many key-params the line carries (more than one needs
	// MKIs, which we do not answer).
	Keys int
	// SessionParams are the session parameters as offered (WSH=64, KDR=1,
	// UNENCRYPTED_SRTP, ...).
	SessionParams []string
}

// String describes the line without its key.
func (c Crypto) String() string {
	return fmt.Sprintf("crypto tag %d %s (key redacted)", c.Tag, c.Suite)
}

// LogValue keeps the key out of structured logs.
func (c Crypto) LogValue() slog.Value { return slog.StringValue(c.String()) }

// ParseCrypto parses the value of an a=crypto attribute (what follows
// "crypto:"). Errors wrap ErrInvalid.
func ParseCrypto(v string) (Crypto, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("%w: crypto: fewer than 3 fields", ErrInvalid)
	}
	if len(f[0]) > 9 {
		return Crypto{}, fmt.Errorf("%w: crypto: tag longer than 9 digits", ErrInvalid)
	}
	tag, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return Crypto{}, fmt.Errorf("%w: crypto: tag %q", ErrInvalid, clip(f[0]))
	}
	c := Crypto{Tag: uint32(tag), Suite: CryptoSuite(f[1]), SessionParams: f[3:]}
	if !isToken(f[1]) {
		return Crypto{}, fmt.Errorf("%w: crypto: suite not a token", ErrInvalid)
	}
	for i, kp := range strings.Split(f[2], ";") {
		c.Keys++
		method, info, ok := strings.Cut(kp, ":")
		if !ok || !strings.EqualFold(method, "inline") {
			return Crypto{}, fmt.Errorf("%w: crypto: key method %q is not inline", ErrInvalid, clip(method))
		}
		if i > 0 {
			continue // only the first key is ever used (more need MKIs)
		}
		parts := strings.Split(info, "|")
		if len(parts) > 3 {
			return Crypto{}, fmt.Errorf("%w: crypto: key-info has %d '|' parts", ErrInvalid, len(parts))
		}
		key, err := decodeKey(parts[0])
		if err != nil {
			return Crypto{}, err
		}
		c.Key = key
		for _, p := range parts[1:] {
			if m, l, isMKI := strings.Cut(p, ":"); isMKI {
				mki, err1 := strconv.ParseUint(m, 10, 32)
				ml, err2 := strconv.ParseUint(l, 10, 8)
				if err1 != nil || err2 != nil || ml < 1 || ml > 128 {
					return Crypto{}, fmt.Errorf("%w: crypto: MKI %q", ErrInvalid, clip(p))
				}
				c.MKI, c.MKILen = uint32(mki), uint32(ml)
				continue
			}
			lt, err := parseLifetime(p)
			if err != nil {
				return Crypto{}, err
			}
			c.Lifetime = lt
		}
	}
	return c, nil
}

// decodeKey decodes the base64 key||salt (RFC 4568 §6.1: standard
// alphabet; padding optional in practice).
func decodeKey(s string) ([]byte, error) {
	if len(s) > 128 {
		return nil, fmt.Errorf("%w: crypto: key too long", ErrInvalid)
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if k, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("%w: crypto: key is not base64", ErrInvalid)
		}
	}
	return k, nil
}

// parseLifetime reads "2^31" or a decimal packet count.
func parseLifetime(p string) (uint64, error) {
	if exp, ok := strings.CutPrefix(p, "2^"); ok {
		e, err := strconv.ParseUint(exp, 10, 8)
		if err != nil || e > 63 {
			return 0, fmt.Errorf("%w: crypto: lifetime %q", ErrInvalid, clip(p))
		}
		return 1 << e, nil
	}
	n, err := strconv.ParseUint(p, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: crypto: lifetime %q", ErrInvalid, clip(p))
	}
	return n, nil
}

// minLifetime: a key that may protect fewer packets than this (about 5.8
// hours of 20 ms audio) would need re-keying within a call, which SDES can
// only do by re-INVITE; such lines are declined.
const minLifetime = 1 << 20

// usable says why the bridge cannot answer c ("" when it can): a known
// suite, one key of the right length, no MKI, no lifetime shorter than a
// call, and no session parameter other than the window size hint
// (RFC 4568 §6.3: a line with a session parameter the answerer does not
// support must not be accepted).
func (c Crypto) usable() string {
	kl, sl, ok := c.Suite.KeyLen()
	switch {
	case !ok:
		return "unknown suite"
	case len(c.Key) != kl+sl:
		return "wrong key length"
	case c.Keys != 1:
		return "several keys"
	case c.MKILen != 0:
		return "MKI"
	case c.Lifetime != 0 && c.Lifetime < minLifetime:
		return "short lifetime"
	}
	for _, p := range c.SessionParams {
		if !strings.HasPrefix(strings.ToUpper(p), "WSH=") {
			return "session parameter " + clip(p)
		}
	}
	return ""
}

// SRTP is the negotiated SDES keying of a call: the caller encrypts with
// RemoteKey, we encrypt with LocalKey (each master key || master salt). Its
// String and LogValue never show the keys.
type SRTP struct {
	Suite     CryptoSuite
	Tag       uint32
	RemoteKey []byte
	LocalKey  []byte
}

func (s SRTP) String() string {
	return fmt.Sprintf("SRTP %s tag %d (keys redacted)", s.Suite, s.Tag)
}

// LogValue keeps the keys out of structured logs.
func (s SRTP) LogValue() slog.Value { return slog.StringValue(s.String()) }

// answerLine is our a=crypto value: the accepted tag and suite with our own
// key (RFC 4568 §7.1.2).
func (s SRTP) answerLine() string {
	return strconv.FormatUint(uint64(s.Tag), 10) + " " + string(s.Suite) + " inline:" +
		base64.StdEncoding.EncodeToString(s.LocalKey)
}

// NewKey returns a fresh master key || salt for suite from the system
// CSPRNG.
func NewKey(suite CryptoSuite) ([]byte, error) {
	kl, sl, ok := suite.KeyLen()
	if !ok {
		return nil, fmt.Errorf("sdp: new key: unknown crypto suite %q", clip(string(suite)))
	}
	k := make([]byte, kl+sl)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go ≥ 1.24)
	return k, nil
}

// Encryption is the per-trunk media encryption policy.
type Encryption uint8

const (
	// EncryptionNone answers only clear RTP (RTP/AVP); an SRTP-only offer
	// gets 488. The zero value.
	EncryptionNone Encryption = iota
	// EncryptionOptional prefers SRTP when the caller offers usable SDES
	// keys and accepts clear RTP otherwise.
	EncryptionOptional
	// EncryptionRequired answers only SRTP; a clear offer gets 488, and we
	// never send clear RTP.
	EncryptionRequired
)

func (e Encryption) String() string {
	switch e {
	case EncryptionOptional:
		return "optional"
	case EncryptionRequired:
		return "required"
	default:
		return "none"
	}
}

// ParseEncryption reads a media_encryption setting: none, optional or
// required.
func ParseEncryption(s string) (Encryption, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "":
		return EncryptionNone, nil
	case "optional":
		return EncryptionOptional, nil
	case "required":
		return EncryptionRequired, nil
	}
	return 0, fmt.Errorf("sdp: media encryption %q is not none, optional or required", clip(s))
}

func keyLen(s CryptoSuite) int {
	k, salt, _ := s.KeyLen()
	return k + salt
}

// NewOfferKeying returns our keying for an offer of ours: tag 1,
// AES_CM_128_HMAC_SHA1_80 (the suite every SDES peer implements, RFC 4568
// §6.2), a fresh key.
func NewOfferKeying() SRTP {
	k, _ := NewKey(SuiteAES128CMSHA1_80)
	return SRTP{Suite: SuiteAES128CMSHA1_80, Tag: 1, LocalKey: k}
}

// UseOfferedKey completes an Answer negotiated from the peer's answer to
// our SRTP offer: the peer accepted our line (same tag and suite) and sent
// its own key, so we keep encrypting with the key we offered.
func (a *Answer) UseOfferedKey(ours SRTP) error {
	if a.SRTP == nil {
		return fmt.Errorf("sdp: answer to our SRTP offer has no usable a=crypto line")
	}
	if a.SRTP.Tag != ours.Tag || a.SRTP.Suite != ours.Suite {
		return fmt.Errorf("sdp: answer accepted crypto tag %d %s, we offered tag %d %s",
			a.SRTP.Tag, a.SRTP.Suite, ours.Tag, ours.Suite)
	}
	a.SRTP.LocalKey = ours.LocalKey
	return nil
}

// KeepLocalKey is for re-INVITEs on a running SRTP call: when the caller
// kept its key and suite (a session refresh or hold), our answer keeps
// ours too, so nothing needs re-keying and no packet in flight is lost. It
// reports whether the keys are unchanged (then the stream needs no Rekey).
func (a *Answer) KeepLocalKey(prev *SRTP) bool {
	if a.SRTP == nil || prev == nil || a.SRTP.Suite != prev.Suite || a.SRTP.Tag != prev.Tag ||
		!bytes.Equal(a.SRTP.RemoteKey, prev.RemoteKey) {
		return false
	}
	a.SRTP.LocalKey = prev.LocalKey
	return true
}
