package sip

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/media"
	"github.com/sipbridge/sipbridge/sip/sdp"
)

// savpOffer is an RTP/SAVP offer of formats with one SDES line for key.
func savpOffer(rtpPort int, formats string, key []byte) string {
	return strings.Replace(offer(rtpPort, formats,
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+base64.StdEncoding.EncodeToString(key)), "RTP/AVP", "RTP/SAVP", 1)
}

func newSDESKey(t *testing.T) []byte {
	k := make([]byte, 30)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

var answerKeyRE = regexp.MustCompile(`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/=]+)`)

// answerKey is our key in an SDP answer.
func answerKey(t *testing.T, body []byte) []byte {
	t.Helper()
	m := answerKeyRE.FindSubmatch(body)
	require.NotNil(t, m, "answer has our a=crypto line:\n%s", body)
	k, err := base64.StdEncoding.DecodeString(string(m[1]))
	require.NoError(t, err)
	return k
}

func (h *harness) sdpRejections(reason sdp.RejectReason) float64 {
	return metricValue(h.srv.metrics.sdpRejects.WithLabelValues(string(reason)))
}

// TestTrunkSRTPRequired: a trunk with media_encryption required (and its
// own codec list) answers an SDES offer with RTP/SAVP and our own key, runs
// the stream with both keys, refuses clear RTP with 488 (counted by
// reason), refuses a re-INVITE that would drop SRTP, keeps the keys on a
// refresh that keeps the caller's, and re-keys the stream when the caller's
// key changes.
func TestTrunkSRTPRequired(t *testing.T) {
	required := sdp.EncryptionRequired
	h := newHarness(t, func(c *Config, _ *harness) {
		c.Trunks = []Trunk{{Name: "carrier", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			Codecs: []uint8{sdp.PTPCMA, sdp.PTPCMU}, MediaEncryption: &required}}
	})
	u := newUAC(t, h.addr)

	// Clear RTP: 488, counted.
	ctx := t.Context()
	_, err := u.invite(ctx, offer(4000, "0 8"))
	var de *sipgo.ErrDialogResponse
	require.ErrorAs(t, err, &de)
	require.Equal(t, 488, de.Res.StatusCode)
	require.Equal(t, 1.0, h.sdpRejections(sdp.RejectEncryptionRequired))
	h.waitEnd(EndRejectNoCommonCodec, 1)

	key := newSDESKey(t)
	tc := u.answeredCall(savpOffer(4002, "0 8 101", key) + "a=rtpmap:101 telephone-event/8000\r\n")
	require.Contains(t, string(tc.answer), "m=audio ")
	require.Contains(t, string(tc.answer), " RTP/SAVP 0 101", "the caller's order among the trunk's codecs")
	ours := answerKey(t, tc.answer)
	require.NotEqual(t, key, ours, "we answer with our own key")
	conv := h.conv()
	require.True(t, conv.info.SRTP)
	st := h.media.stream(0)
	require.NotNil(t, st.cfg.SRTP, "the stream runs SRTP")
	require.Equal(t, media.SRTPConfig{Suite: "AES_CM_128_HMAC_SHA1_80", LocalKey: ours, RemoteKey: key}, *st.cfg.SRTP)
	require.NotNil(t, st.cfg.OnSRTPFailure, "SRTP drops are counted")

	// A re-INVITE that drops SRTP: 488, the call goes on.
	res := tc.inDialog(t, sip.INVITE, offer(4002, "0"))
	require.Equal(t, 488, res.StatusCode)
	require.Equal(t, 2.0, h.sdpRejections(sdp.RejectEncryptionRequired))

	// Same key (a refresh): same answer key, no re-key.
	res = tc.inDialog(t, sip.INVITE, savpOffer(4002, "0", key))
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, ours, answerKey(t, res.Body()), "our key is kept when the caller keeps its own")
	require.Zero(t, st.rekeyCount())

	// A new caller key: a new key of ours and the stream re-keyed.
	key2 := newSDESKey(t)
	res = tc.inDialog(t, sip.INVITE, savpOffer(4002, "0", key2))
	require.Equal(t, 200, res.StatusCode)
	ours2 := answerKey(t, res.Body())
	require.False(t, bytes.Equal(ours, ours2))
	require.Eventually(t, func() bool { return st.rekeyCount() == 1 }, wait, 10*time.Millisecond)
	st.mu.Lock()
	require.Equal(t, media.SRTPConfig{Suite: "AES_CM_128_HMAC_SHA1_80", LocalKey: ours2, RemoteKey: key2}, st.rekeys[0])
	st.mu.Unlock()
	tc.bye()
	h.waitEnd(EndCallerBye, 1)
}

// TestG722ByDefault: with no codec configured G.722 is accepted (in the
// caller's order), the stream runs it, and a re-INVITE may not move the
// call to G.711 (the stream's audio rate is fixed).
func TestG722ByDefault(t *testing.T) {
	h := newHarness(t)
	u := newUAC(t, h.addr)
	tc := u.answeredCall(offer(4000, "9 0 8"))
	require.Contains(t, string(tc.answer), "RTP/AVP 9")
	conv := h.conv()
	require.Equal(t, media.CodecG722, conv.info.Codec)
	require.False(t, conv.info.SRTP)
	st := h.media.stream(0)
	require.Equal(t, media.CodecG722, st.cfg.Codec)
	require.Nil(t, st.cfg.SRTP)

	res := tc.inDialog(t, sip.INVITE, offer(4000, "0 8"))
	require.Equal(t, 488, res.StatusCode, "G.722 → G.711 is not possible on a running stream")
	require.Equal(t, 1.0, h.sdpRejections(sdp.RejectNoCommonCodec))
	res = tc.inDialog(t, sip.INVITE, offer(4004, "0 9"))
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, string(res.Body()), "RTP/AVP 9")

	// A caller that prefers PCMU gets PCMU.
	tc2 := u.answeredCall(offer(4010, "0 9"))
	require.Contains(t, string(tc2.answer), "RTP/AVP 0")
	tc.bye()
	tc2.bye()
	h.waitEnd(EndCallerBye, 2)
}

// TestLateOfferSRTPRequired: an INVITE without SDP to a server requiring
// SRTP gets our RTP/SAVP offer with our key; the stream starts with that
// key and is re-keyed with the caller's key from the ACK's answer (we keep
// encrypting with the key we offered). Under G.722-first preferences the
// offer stays G.711 (the stream's rate is fixed before the answer).
func TestLateOfferSRTPRequired(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *harness) { c.MediaEncryption = sdp.EncryptionRequired })
	u := newUAC(t, h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tc, err := u.invite(ctx, "")
	require.NoError(t, err)
	o, err := sdp.ParseOffer(tc.answer)
	require.NoError(t, err)
	require.Equal(t, "RTP/SAVP", o.Media[0].Proto)
	require.Equal(t, []string{"0", "8", "101"}, o.Media[0].Formats, "G.711 only: the late offer's stream is narrowband")
	ours := answerKey(t, tc.answer)
	st := h.media.stream(0)
	require.NotNil(t, st.cfg.SRTP)
	require.Equal(t, ours, st.cfg.SRTP.LocalKey)

	key := newSDESKey(t)
	ack := sip.NewRequest(sip.ACK, tc.dlg.InviteResponse.Contact().Address)
	ack.SetBody([]byte(savpOffer(4000, "8", key)))
	ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	require.NoError(t, tc.dlg.WriteAck(ctx, ack))
	h.conv()
	require.Eventually(t, func() bool { return st.rekeyCount() == 1 }, wait, 10*time.Millisecond)
	st.mu.Lock()
	require.Equal(t, media.SRTPConfig{Suite: "AES_CM_128_HMAC_SHA1_80", LocalKey: ours, RemoteKey: key}, st.rekeys[0])
	st.mu.Unlock()
	require.Equal(t, int32(media.CodecPCMA), st.codec.Load())
	tc.bye()
	h.waitEnd(EndCallerBye, 1)
	h.waitIdle()
}

// TestOptionalSRTPCannotBeDroppedMidCall: under optional, a call that
// started on SRTP refuses a re-INVITE of clear RTP (srtp-change) and one
// that started clear refuses SRTP; both calls go on.
func TestOptionalSRTPCannotBeDroppedMidCall(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *harness) { c.MediaEncryption = sdp.EncryptionOptional })
	u := newUAC(t, h.addr)
	key := newSDESKey(t)
	secure := u.answeredCall(savpOffer(4000, "0", key))
	require.Contains(t, string(secure.answer), "RTP/SAVP 0")
	clear := u.answeredCall(offer(4002, "0"))
	require.Contains(t, string(clear.answer), "RTP/AVP 0")

	require.Equal(t, 488, secure.inDialog(t, sip.INVITE, offer(4000, "0")).StatusCode)
	require.Equal(t, 488, clear.inDialog(t, sip.INVITE, savpOffer(4002, "0", key)).StatusCode)
	require.Equal(t, 2.0, h.sdpRejections(rejectSRTPChange))
	require.Equal(t, 200, secure.inDialog(t, sip.INVITE, savpOffer(4000, "0", key)).StatusCode)
	secure.bye()
	clear.bye()
	h.waitEnd(EndCallerBye, 2)
}
