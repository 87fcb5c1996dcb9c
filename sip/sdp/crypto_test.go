package sdp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	pion "github.com/pion/sdp/v3"
	"github.com/stretchr/testify/require"
)

// key30 is 30 bytes (AES-128 key 16 + salt 14) in base64.
var key30 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xA5}, 30))

func TestParseCrypto(t *testing.T) {
	k28 := base64.StdEncoding.EncodeToString(make([]byte, 28))
	k46 := base64.StdEncoding.EncodeToString(make([]byte, 46))
	tests := []struct {
		name, in string
		wantErr  bool
		tag      uint32
		suite    CryptoSuite
		keyLen   int
		lifetime uint64
		mkiLen   uint32
		keys     int
		params   int
		usable   string // "" = usable
	}{
		{name: "plain 80", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, tag: 1, suite: SuiteAES128CMSHA1_80, keyLen: 30, keys: 1},
		{name: "32 with lifetime", in: "2 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^31", tag: 2, suite: SuiteAES128CMSHA1_32, keyLen: 30, lifetime: 1 << 31, keys: 1},
		{name: "lifetime and MKI", in: "3 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4", tag: 3, suite: SuiteAES128CMSHA1_80, keyLen: 30, lifetime: 1 << 20, mkiLen: 4, keys: 1, usable: "MKI"},
		{name: "MKI only", in: "3 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:1", tag: 3, suite: SuiteAES128CMSHA1_80, keyLen: 30, mkiLen: 1, keys: 1, usable: "MKI"},
		{name: "short decimal lifetime", in: "4 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1000", tag: 4, suite: SuiteAES128CMSHA1_80, keyLen: 30, lifetime: 1000, keys: 1, usable: "short lifetime"},
		{name: "two keys", in: "5 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4;inline:" + key30 + "|2^20|2:4", tag: 5, suite: SuiteAES128CMSHA1_80, keyLen: 30, lifetime: 1 << 20, mkiLen: 4, keys: 2, usable: "several keys"},
		{name: "WSH accepted", in: "6 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " WSH=128", tag: 6, suite: SuiteAES128CMSHA1_80, keyLen: 30, keys: 1, params: 1},
		{name: "KDR refused", in: "7 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " KDR=23", tag: 7, suite: SuiteAES128CMSHA1_80, keyLen: 30, keys: 1, params: 1, usable: "session parameter KDR=23"},
		{name: "UNENCRYPTED_SRTP refused", in: "8 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " UNENCRYPTED_SRTP", tag: 8, suite: SuiteAES128CMSHA1_80, keyLen: 30, keys: 1, params: 1, usable: "session parameter UNENCRYPTED_SRTP"},
		{name: "GCM 128", in: "9 AEAD_AES_128_GCM inline:" + k28, tag: 9, suite: SuiteAEADAES128GCM, keyLen: 28, keys: 1},
		{name: "GCM 256", in: "10 AEAD_AES_256_GCM inline:" + base64.StdEncoding.EncodeToString(make([]byte, 44)), tag: 10, suite: SuiteAEADAES256GCM, keyLen: 44, keys: 1},
		{name: "AES 256 CM", in: "11 AES_256_CM_HMAC_SHA1_80 inline:" + k46, tag: 11, suite: SuiteAES256CMSHA1_80, keyLen: 46, keys: 1},
		{name: "unknown suite", in: "12 F8_128_HMAC_SHA1_80 inline:" + key30, tag: 12, suite: "F8_128_HMAC_SHA1_80", keyLen: 30, keys: 1, usable: "unknown suite"},
		{name: "wrong key length", in: "13 AES_CM_128_HMAC_SHA1_80 inline:" + k28, tag: 13, suite: SuiteAES128CMSHA1_80, keyLen: 28, keys: 1, usable: "wrong key length"},
		{name: "unpadded base64", in: "14 AES_CM_128_HMAC_SHA1_80 inline:" + strings.TrimRight(base64.StdEncoding.EncodeToString(make([]byte, 29))+"", "="), tag: 14, suite: SuiteAES128CMSHA1_80, keyLen: 29, keys: 1, usable: "wrong key length"},
		{name: "too few fields", in: "1 AES_CM_128_HMAC_SHA1_80", wantErr: true},
		{name: "bad tag", in: "x AES_CM_128_HMAC_SHA1_80 inline:" + key30, wantErr: true},
		{name: "tag too long", in: "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + key30, wantErr: true},
		{name: "not inline", in: "1 AES_CM_128_HMAC_SHA1_80 uri:http://x", wantErr: true},
		{name: "bad base64", in: "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", wantErr: true},
		{name: "bad lifetime", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^99", wantErr: true},
		{name: "bad MKI", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:0", wantErr: true},
		{name: "too many parts", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4|x", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCrypto(tc.in)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.tag, c.Tag)
			require.Equal(t, tc.suite, c.Suite)
			require.Len(t, c.Key, tc.keyLen)
			require.Equal(t, tc.lifetime, c.Lifetime)
			require.Equal(t, tc.mkiLen, c.MKILen)
			require.Equal(t, tc.keys, c.Keys)
			require.Len(t, c.SessionParams, tc.params)
			require.Equal(t, tc.usable, c.usable())
		})
	}
}

// srtpOffer builds an offer with the given m-lines appended.
func srtpOffer(mlines string) []byte {
	return crlf("v=0\no=- 1 1 IN IP4 203.0.113.1\ns=-\nc=IN IP4 203.0.113.1\nt=0 0\n" + mlines)
}

func TestNegotiateEncryption(t *testing.T) {
	savp := "m=audio 4000 RTP/SAVP 0 101\na=rtpmap:101 telephone-event/8000\n" +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\n" +
		"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "\n"
	avp := "m=audio 4002 RTP/AVP 8\n"
	savpOnly32 := "m=audio 4000 RTP/SAVP 8\na=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "\n"
	savpBad := "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:4\n" +
		"a=crypto:2 F8_128_HMAC_SHA1_80 inline:" + key30 + "\n"
	savpNoCrypto := "m=audio 4000 RTP/SAVP 0\n"
	savpf := "m=audio 4000 RTP/SAVPF 0\na=crypto:3 AEAD_AES_128_GCM inline:" + base64.StdEncoding.EncodeToString(make([]byte, 28)) + "\n"
	dtls := "m=audio 4000 UDP/TLS/RTP/SAVP 0\na=fingerprint:sha-256 AB:CD\n"
	tests := []struct {
		name   string
		body   string
		enc    Encryption
		reason RejectReason // "" = accepted
		idx    int
		proto  string
		suite  CryptoSuite
		tag    uint32
		pt     uint8
	}{
		{name: "none: avp", body: avp, enc: EncryptionNone, proto: "RTP/AVP", pt: 8},
		{name: "none: savp only → 488", body: savp, enc: EncryptionNone, reason: RejectSRTPNotEnabled},
		{name: "none: savp then avp → avp", body: savp + avp, enc: EncryptionNone, idx: 1, proto: "RTP/AVP", pt: 8},
		{name: "optional: savp first tag", body: savp, enc: EncryptionOptional, proto: "RTP/SAVP", suite: SuiteAES128CMSHA1_80, tag: 1, pt: 0},
		{name: "optional: avp then savp → savp", body: avp + savp, enc: EncryptionOptional, idx: 1, proto: "RTP/SAVP", suite: SuiteAES128CMSHA1_80, tag: 1, pt: 0},
		{name: "optional: avp only", body: avp, enc: EncryptionOptional, proto: "RTP/AVP", pt: 8},
		{name: "optional: unusable savp falls back to avp", body: savpBad + avp, enc: EncryptionOptional, idx: 1, proto: "RTP/AVP", pt: 8},
		{name: "required: avp only → 488", body: avp, enc: EncryptionRequired, reason: RejectEncryptionRequired},
		{name: "required: avp then savp → savp", body: avp + savp, enc: EncryptionRequired, idx: 1, proto: "RTP/SAVP", suite: SuiteAES128CMSHA1_80, tag: 1, pt: 0},
		{name: "required: _32", body: savpOnly32, enc: EncryptionRequired, proto: "RTP/SAVP", suite: SuiteAES128CMSHA1_32, tag: 7, pt: 8},
		{name: "required: GCM over SAVPF", body: savpf, enc: EncryptionRequired, proto: "RTP/SAVPF", suite: SuiteAEADAES128GCM, tag: 3, pt: 0},
		{name: "required: no usable crypto → 488", body: savpBad, enc: EncryptionRequired, reason: RejectNoUsableCrypto},
		{name: "required: no crypto line → 488", body: savpNoCrypto, enc: EncryptionRequired, reason: RejectNoUsableCrypto},
		{name: "required: DTLS only → 488", body: dtls, enc: EncryptionRequired, reason: RejectDTLSUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOffer(srtpOffer(tc.body))
			require.NoError(t, err)
			a, err := Negotiate(o, Prefs{Encryption: tc.enc})
			if tc.reason != "" {
				var ne *NegotiationError
				require.ErrorAs(t, err, &ne)
				require.ErrorIs(t, err, ErrNoCommonCodec)
				require.Equal(t, tc.reason, ne.Reason, err.Error())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.idx, a.MediaIndex)
			require.Equal(t, tc.proto, a.Proto)
			require.Equal(t, tc.pt, a.Codec.PT)
			if tc.suite == "" {
				require.Nil(t, a.SRTP)
				return
			}
			require.NotNil(t, a.SRTP)
			require.Equal(t, tc.suite, a.SRTP.Suite)
			require.Equal(t, tc.tag, a.SRTP.Tag)
			kl, sl, _ := tc.suite.KeyLen()
			require.Len(t, a.SRTP.LocalKey, kl+sl)
			require.Len(t, a.SRTP.RemoteKey, kl+sl)
			require.NotEqual(t, a.SRTP.RemoteKey, a.SRTP.LocalKey, "our key is our own")

			out, err := BuildAnswer(o, a, Local{Host: "192.0.2.1", Port: 40000, SessionID: 1, SessionVersion: 1})
			require.NoError(t, err)
			var sd pion.SessionDescription
			require.NoError(t, sd.Unmarshal(out), "%s", out)
			back, err := ParseOffer(out)
			require.NoError(t, err)
			m := back.Media[a.MediaIndex]
			require.Equal(t, tc.proto, m.Proto)
			require.Len(t, m.Crypto, 1, "%s", out)
			require.Equal(t, tc.tag, m.Crypto[0].Tag)
			require.Equal(t, tc.suite, m.Crypto[0].Suite)
			require.Equal(t, a.SRTP.LocalKey, m.Crypto[0].Key)
			require.Empty(t, m.Crypto[0].usable())
		})
	}
}

// Every negotiation draws a fresh key from the CSPRNG.
func TestNegotiateFreshKeys(t *testing.T) {
	o, err := ParseOffer(srtpOffer("m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\n"))
	require.NoError(t, err)
	seen := map[string]bool{}
	for range 100 {
		a, err := Negotiate(o, Prefs{Encryption: EncryptionRequired})
		require.NoError(t, err)
		k := string(a.SRTP.LocalKey)
		require.False(t, seen[k])
		seen[k] = true
	}
	_, err = NewKey("NOPE")
	require.Error(t, err)
}

// Keys never reach logs or %v.
func TestKeysRedacted(t *testing.T) {
	o, err := ParseOffer(srtpOffer("m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\n"))
	require.NoError(t, err)
	a, err := Negotiate(o, Prefs{Encryption: EncryptionOptional})
	require.NoError(t, err)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("answer", "srtp", *a.SRTP, "crypto", o.Media[0].Crypto[0])
	text := buf.String() + fmt.Sprintf("%v %s %v", *a.SRTP, a.SRTP, o.Media[0].Crypto[0])
	for _, k := range [][]byte{a.SRTP.LocalKey, a.SRTP.RemoteKey} {
		require.NotContains(t, text, base64.StdEncoding.EncodeToString(k))
		require.NotContains(t, text, fmt.Sprintf("%v", k))
	}
	require.Contains(t, text, "redacted")
}

func TestNegotiateG722AndOrder(t *testing.T) {
	fs := freeswitchOffer // 9 8 0 101, telephone-event/8000
	o, err := ParseOffer(crlf(fs))
	require.NoError(t, err)
	all := []uint8{PTG722, PTPCMU, PTPCMA}

	a, err := Negotiate(o, Prefs{Codecs: all})
	require.NoError(t, err)
	require.Equal(t, "G722", a.Codec.Name)
	require.Equal(t, 8000, a.Codec.Rate, "G.722's RTP clock is 8000")
	require.Equal(t, 101, a.DTMFPT)
	require.Equal(t, 8000, a.DTMFRate)

	// The caller's order wins by default; ours with PreferOwnOrder.
	a, err = Negotiate(o, Prefs{Codecs: []uint8{PTPCMU, PTG722}})
	require.NoError(t, err)
	require.Equal(t, "G722", a.Codec.Name)
	a, err = Negotiate(o, Prefs{Codecs: []uint8{PTPCMU, PTG722}, PreferOwnOrder: true})
	require.NoError(t, err)
	require.Equal(t, "PCMU", a.Codec.Name)

	// Default prefs stay G.711.
	a, err = Negotiate(o, Prefs{})
	require.NoError(t, err)
	require.Equal(t, "PCMA", a.Codec.Name)

	// telephone-event/16000 only: answered at 16000 with G.722, not with G.711.
	te16 := strings.Replace(fs, "telephone-event/8000", "telephone-event/16000", 1)
	o, err = ParseOffer(crlf(te16))
	require.NoError(t, err)
	a, err = Negotiate(o, Prefs{Codecs: all})
	require.NoError(t, err)
	require.Equal(t, 101, a.DTMFPT)
	require.Equal(t, 16000, a.DTMFRate)
	out, err := BuildAnswer(o, a, Local{Host: "192.0.2.1", Port: 40000})
	require.NoError(t, err)
	require.Contains(t, string(out), "a=rtpmap:9 G722/8000\r\n")
	require.Contains(t, string(out), "a=rtpmap:101 telephone-event/16000\r\n")
	a, err = Negotiate(o, Prefs{Codecs: []uint8{PTPCMA}})
	require.NoError(t, err)
	require.Equal(t, -1, a.DTMFPT)

	// Both rates offered: the one matching the codec clock wins.
	both := strings.Replace(fs, "m=audio 16384 RTP/AVP 9 8 0 101 13", "m=audio 16384 RTP/AVP 9 8 0 102 101 13", 1) +
		"a=rtpmap:102 telephone-event/16000\n"
	o, err = ParseOffer(crlf(both))
	require.NoError(t, err)
	a, err = Negotiate(o, Prefs{Codecs: all})
	require.NoError(t, err)
	require.Equal(t, 101, a.DTMFPT)
	require.Equal(t, 8000, a.DTMFRate)
}

func TestParseCodecsAndEncryption(t *testing.T) {
	got, err := ParseCodecs("G722, pcmu,PCMA, g722")
	require.NoError(t, err)
	require.Equal(t, []uint8{PTG722, PTPCMU, PTPCMA}, got)
	_, err = ParseCodecs("opus")
	require.Error(t, err)
	_, err = ParseCodecs(" , ")
	require.Error(t, err)
	for in, want := range map[string]Encryption{"none": EncryptionNone, "": EncryptionNone, "Optional": EncryptionOptional, "required": EncryptionRequired} {
		e, err := ParseEncryption(in)
		require.NoError(t, err)
		require.Equal(t, want, e)
		require.Equal(t, want, must(ParseEncryption(e.String())))
	}
	_, err = ParseEncryption("sometimes")
	require.Error(t, err)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// BuildAnswer refuses an SRTP proto without keys and keys on clear RTP.
func TestBuildAnswerSRTPConsistency(t *testing.T) {
	o, err := ParseOffer(srtpOffer("m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\n"))
	require.NoError(t, err)
	a, err := Negotiate(o, Prefs{Encryption: EncryptionRequired})
	require.NoError(t, err)
	l := Local{Host: "192.0.2.1", Port: 40000}
	noKeys := a
	noKeys.SRTP = nil
	_, err = BuildAnswer(o, noKeys, l)
	require.Error(t, err)
	clear := a
	clear.Proto = "RTP/AVP"
	_, err = BuildAnswer(o, clear, l)
	require.Error(t, err)
}

// FuzzParseCrypto: any attribute value either parses or wraps ErrInvalid,
// and what parses is re-encodable when usable.
func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30)
	f.Add("2 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^31|1:4 WSH=64")
	f.Add("3 AEAD_AES_256_GCM inline:" + key30 + ";inline:" + key30)
	f.Add("0 X inline:|")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := ParseCrypto(v)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if c.usable() != "" {
			return
		}
		s := SRTP{Suite: c.Suite, Tag: c.Tag, LocalKey: c.Key}
		back, err := ParseCrypto(s.answerLine())
		if err != nil || back.Tag != c.Tag || back.Suite != c.Suite || !bytes.Equal(back.Key, c.Key) {
			t.Fatalf("answer line %q does not parse back: %v", s.answerLine(), err)
		}
	})
}

// Our own SRTP offer, answered by a peer, gives the keys both ways.
func TestOfferAnswerSRTP(t *testing.T) {
	ours := NewOfferKeying()
	out, err := BuildOffer(Local{Host: "192.0.2.5", Port: 30002, SRTP: &ours}, Prefs{Codecs: []uint8{PTG722, PTPCMU}, Encryption: EncryptionRequired})
	require.NoError(t, err)
	require.Contains(t, string(out), "m=audio 30002 RTP/SAVP 9 0 101\r\n")
	offer, err := ParseOffer(out)
	require.NoError(t, err)
	require.Len(t, offer.Media[0].Crypto, 1)

	// The peer answers with its own key for our tag.
	peer, err := Negotiate(offer, Prefs{Codecs: []uint8{PTPCMU, PTG722}, Encryption: EncryptionRequired})
	require.NoError(t, err)
	require.Equal(t, "G722", peer.Codec.Name, "our order, as the offerer's")
	ansBody, err := BuildAnswer(offer, peer, Local{Host: "198.51.100.1", Port: 5000})
	require.NoError(t, err)
	ans, err := ParseOffer(ansBody)
	require.NoError(t, err)
	a, err := Negotiate(ans, Prefs{Codecs: []uint8{PTG722, PTPCMU}, Encryption: EncryptionRequired})
	require.NoError(t, err)
	require.NoError(t, a.UseOfferedKey(ours))
	require.Equal(t, ours.LocalKey, a.SRTP.LocalKey)
	require.Equal(t, peer.SRTP.LocalKey, a.SRTP.RemoteKey)
	require.Equal(t, peer.SRTP.RemoteKey, ours.LocalKey)

	wrong := ours
	wrong.Tag = 2
	require.Error(t, a.UseOfferedKey(wrong))
	_, err = BuildOffer(Local{Host: "192.0.2.5", Port: 30002}, Prefs{Encryption: EncryptionRequired})
	require.Error(t, err)
	bad := SRTP{Suite: SuiteAES128CMSHA1_80, Tag: 1, LocalKey: []byte{1}}
	_, err = BuildOffer(Local{Host: "192.0.2.5", Port: 30002, SRTP: &bad}, Prefs{})
	require.Error(t, err)
}

func TestSameAudioRate(t *testing.T) {
	p := Prefs{Codecs: []uint8{PTG722, PTPCMU, PTPCMA}, Encryption: EncryptionRequired}
	require.Equal(t, []uint8{PTPCMU, PTPCMA}, p.SameAudioRate(PTPCMA).Codecs)
	require.Equal(t, []uint8{PTG722}, p.SameAudioRate(PTG722).Codecs)
	require.Equal(t, EncryptionRequired, p.SameAudioRate(PTG722).Encryption)
	require.Equal(t, []uint8{PTG722}, Prefs{}.SameAudioRate(PTG722).Codecs)
	require.Equal(t, []uint8{PTPCMU, PTPCMA}, Prefs{}.SameAudioRate(PTPCMU).Codecs)
}

// A re-INVITE that keeps the caller's key keeps ours; a new caller key
// gets a new one of ours.
func TestKeepLocalKey(t *testing.T) {
	o, err := ParseOffer(srtpOffer("m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\n"))
	require.NoError(t, err)
	p := Prefs{Encryption: EncryptionRequired}
	first, err := Negotiate(o, p)
	require.NoError(t, err)
	again, err := Negotiate(o, p)
	require.NoError(t, err)
	require.NotEqual(t, first.SRTP.LocalKey, again.SRTP.LocalKey)
	require.True(t, again.KeepLocalKey(first.SRTP))
	require.Equal(t, first.SRTP.LocalKey, again.SRTP.LocalKey)

	other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5A}, 30))
	o2, err := ParseOffer(srtpOffer("m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + other + "\n"))
	require.NoError(t, err)
	rekeyed, err := Negotiate(o2, p)
	require.NoError(t, err)
	require.False(t, rekeyed.KeepLocalKey(first.SRTP))
	require.NotEqual(t, first.SRTP.LocalKey, rekeyed.SRTP.LocalKey)
	clear := Answer{}
	require.False(t, clear.KeepLocalKey(first.SRTP))
}
