package phone

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/pion/srtp/v3"
)

// srtpSuite is the SDES suite the phone offers (RFC 4568 §6.2).
const srtpSuite = "AES_CM_128_HMAC_SHA1_80"

// srtpState is the phone's SDES-SRTP for one call: our key (offered), the
// far end's (from its answer), and how many of the next packets to tamper
// with after protecting them.
type srtpState struct {
	local  []byte
	enc    *srtp.Context // sendLoop only
	dec    *srtp.Context // recvLoop only
	tamper atomic.Int32
	// authFailed counts received packets that failed SRTP authentication.
	authFailed atomic.Int64
}

// cryptoLine is our a=crypto attribute.
func (s *srtpState) cryptoLine() string {
	return "a=crypto:1 " + srtpSuite + " inline:" + base64.StdEncoding.EncodeToString(s.local)
}

// keyFromAnswer builds both contexts once the answer's a=crypto is known.
func (s *srtpState) keyFromAnswer(body string) error {
	var remote []byte
	for _, line := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		v, ok := strings.CutPrefix(line, "a=crypto:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 3 || f[0] != "1" || f[1] != srtpSuite || !strings.HasPrefix(f[2], "inline:") {
			return fmt.Errorf("phone: unexpected a=crypto answer %q", line)
		}
		k, err := base64.StdEncoding.DecodeString(strings.SplitN(strings.TrimPrefix(f[2], "inline:"), "|", 2)[0])
		if err != nil {
			return fmt.Errorf("phone: a=crypto key: %w", err)
		}
		remote = k
	}
	if len(remote) != 30 {
		return errors.New("phone: the answer to our SRTP offer has no usable a=crypto line")
	}
	var err error
	if s.enc, err = srtp.CreateContext(s.local[:16], s.local[16:], srtp.ProtectionProfileAes128CmHmacSha1_80); err != nil {
		return err
	}
	s.dec, err = srtp.CreateContext(remote[:16], remote[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	return err
}

// protect encrypts an RTP packet for sending; a packet to tamper with gets
// one bit of its ciphertext flipped after protection (its auth tag then
// fails).
func (s *srtpState) protect(pkt []byte) []byte {
	out, err := s.enc.EncryptRTP(nil, pkt, nil)
	if err != nil {
		return nil
	}
	if s.tamper.Load() > 0 && s.tamper.Add(-1) >= 0 {
		out[len(out)-11] ^= 0x01 // last payload byte (the 10-byte tag follows)
	}
	return out
}

// unprotect decrypts a received SRTP packet; nil when it fails.
func (s *srtpState) unprotect(pkt []byte) []byte {
	out, err := s.dec.DecryptRTP(nil, pkt, nil)
	if err != nil {
		s.authFailed.Add(1)
		return nil
	}
	return out
}

// TamperNext flips a bit in each of the next n SRTP packets the call
// sends (after protection), so the far end must drop them.
func (c *Call) TamperNext(n int) {
	if c.srtp != nil {
		c.srtp.tamper.Add(int32(n))
	}
}

// SRTPAuthFailures is how many received packets failed SRTP authentication.
func (c *Call) SRTPAuthFailures() int64 {
	if c.srtp == nil {
		return 0
	}
	return c.srtp.authFailed.Load()
}
