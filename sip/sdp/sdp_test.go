package sdp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	pion "github.com/pion/sdp/v3"
	"github.com/stretchr/testify/require"
)

// crlf turns a readable LF test body into the CRLF form trunks send.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

// negotiated parses body and negotiates it with default Prefs, failing the
// test on either error.
func negotiated(t *testing.T, body []byte) (Offer, Answer) {
	t.Helper()
	o, err := ParseOffer(body)
	require.NoError(t, err)
	a, err := Negotiate(o, Prefs{})
	require.NoError(t, err)
	return o, a
}

const asteriskOffer = `v=0
o=- 1234 1234 IN IP4 10.0.0.5
s=Asterisk
c=IN IP4 10.0.0.5
t=0 0
m=audio 10000 RTP/AVP 0 8 3 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:3 GSM/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
`

const freeswitchOffer = `v=0
o=FreeSWITCH 1700000000 1700000001 IN IP4 192.0.2.10
s=FreeSWITCH
c=IN IP4 192.0.2.10
t=0 0
m=audio 16384 RTP/AVP 9 8 0 101 13
a=rtpmap:9 G722/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:13 CN/8000
a=ptime:20
`

const sippOffer = `v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
`

// baresip: opus first, G.722/PCMU/PCMA by static PT without rtpmap.
const baresipOffer = `v=0
o=- 3860178380 2846329178 IN IP4 192.168.1.20
s=-
c=IN IP4 192.168.1.20
t=0 0
m=audio 21450 RTP/AVP 96 9 0 8 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=rtcp-rsize
a=ssrc:1234 cname:abcd
a=ptime:20
`

// video first, and PT 96 means H264 on video but telephone-event on audio.
const videoAudioOffer = `v=0
o=- 1 1 IN IP4 198.51.100.7
s=-
c=IN IP4 198.51.100.7
t=0 0
m=video 5002 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=42e01f
m=audio 5004 RTP/AVP 8 0 96
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-15
`

const savpOffer = `v=0
o=- 1 1 IN IP4 203.0.113.1
s=-
c=IN IP4 203.0.113.1
t=0 0
m=audio 4000 RTP/SAVP 0 8
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
`

const savpAndAvpOffer = `v=0
o=- 1 1 IN IP4 203.0.113.1
s=-
c=IN IP4 203.0.113.1
t=0 0
m=audio 4000 RTP/SAVP 0 8
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
m=audio 4002 RTP/AVP 8 0
`

// c= after t= and a missing s=: pion rejects both (pion/sdp #163).
const cAfterTOffer = `v=0
o=- 77 78 IN IP4 192.0.2.99
s=-
t=0 0
c=IN IP4 192.0.2.99
m=audio 7078 RTP/AVP 8 101
a=rtpmap:101 telephone-event/8000
`

const missingSOffer = `v=0
o=- 77 78 IN IP4 192.0.2.98
c=IN IP4 192.0.2.98
t=0 0
m=audio 7080 RTP/AVP 0
`

const noCommonOffer = `v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 18 9
a=rtpmap:18 G729/8000
a=rtpmap:9 G722/8000
`

const faxOnlyOffer = `v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=image 4000 udptl t38
a=T38FaxVersion:0
`

const mediaLevelConnOffer = `v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 0
c=IN IP4 192.0.2.200
a=sendonly
`

const sessionHoldOffer = `v=0
o=- 1 2 IN IP4 0.0.0.0
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 4000 RTP/AVP 8
`

const sessionDirectionOffer = `v=0
o=- 1 2 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
a=inactive
m=audio 4000 RTP/AVP 8
`

const ipv6Offer = `v=0
o=- 1 2 IN IP6 2001:db8::1
s=-
c=IN IP6 2001:db8::1
t=0 0
m=audio 4000 RTP/AVP 0 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11
`

func TestParseOffer(t *testing.T) {
	tests := []struct {
		name     string
		body     []byte
		lenient  bool
		media    int
		audioIdx int
		addr     string
		port     int
		proto    string
		pts      []uint8
		names    []string
		dir      Direction
		ptime    int
		teOK     bool
		tePT     uint8
	}{
		{name: "asterisk", body: crlf(asteriskOffer), media: 1, audioIdx: 0, addr: "10.0.0.5", port: 10000, proto: "RTP/AVP",
			pts: []uint8{0, 8, 3, 101}, names: []string{"PCMU", "PCMA", "GSM", "telephone-event"}, dir: SendRecv, ptime: 20, teOK: true, tePT: 101},
		{name: "freeswitch", body: crlf(freeswitchOffer), media: 1, addr: "192.0.2.10", port: 16384, proto: "RTP/AVP",
			pts: []uint8{9, 8, 0, 101, 13}, names: []string{"G722", "PCMA", "PCMU", "telephone-event", "CN"}, ptime: 20, teOK: true, tePT: 101},
		{name: "sipp LF only", body: []byte(sippOffer), media: 1, addr: "127.0.0.1", port: 6000, proto: "RTP/AVP",
			pts: []uint8{0}, names: []string{"PCMU"}},
		{name: "baresip static PTs without rtpmap", body: crlf(baresipOffer), media: 1, addr: "192.168.1.20", port: 21450, proto: "RTP/AVP",
			pts: []uint8{96, 9, 0, 8, 101}, names: []string{"opus", "G722", "PCMU", "PCMA", "telephone-event"}, ptime: 20, teOK: true, tePT: 101},
		{name: "video then audio, per m-line rtpmap", body: crlf(videoAudioOffer), media: 2, audioIdx: 1, addr: "198.51.100.7", port: 5004, proto: "RTP/AVP",
			pts: []uint8{8, 0, 96}, names: []string{"PCMA", "PCMU", "telephone-event"}, teOK: true, tePT: 96},
		{name: "c= after t= (lenient)", body: crlf(cAfterTOffer), lenient: true, media: 1, addr: "192.0.2.99", port: 7078, proto: "RTP/AVP",
			pts: []uint8{8, 101}, names: []string{"PCMA", "telephone-event"}, teOK: true, tePT: 101},
		{name: "missing s= (lenient, LF)", body: []byte(missingSOffer), lenient: true, media: 1, addr: "192.0.2.98", port: 7080, proto: "RTP/AVP",
			pts: []uint8{0}, names: []string{"PCMU"}},
		{name: "media-level c= wins", body: crlf(mediaLevelConnOffer), media: 1, addr: "192.0.2.200", port: 4000, proto: "RTP/AVP",
			pts: []uint8{0}, names: []string{"PCMU"}, dir: SendOnly},
		{name: "session-level direction", body: crlf(sessionDirectionOffer), media: 1, addr: "192.0.2.1", port: 4000, proto: "RTP/AVP",
			pts: []uint8{8}, names: []string{"PCMA"}, dir: Inactive},
		{name: "savp", body: crlf(savpOffer), media: 1, addr: "203.0.113.1", port: 4000, proto: "RTP/SAVP",
			pts: []uint8{0, 8}, names: []string{"PCMU", "PCMA"}},
		{name: "ipv6", body: crlf(ipv6Offer), media: 1, addr: "2001:db8::1", port: 4000, proto: "RTP/AVP",
			pts: []uint8{0, 101}, names: []string{"PCMU", "telephone-event"}, teOK: true, tePT: 101},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOffer(tc.body)
			require.NoError(t, err)
			require.Equal(t, tc.lenient, o.Lenient, "pion error: %v", o.PionErr)
			require.Len(t, o.Media, tc.media)
			require.Equal(t, tc.audioIdx, o.FirstAudio())
			m := o.Media[tc.audioIdx]
			require.Equal(t, tc.addr, m.Addr.String())
			require.Equal(t, tc.port, m.Port)
			require.Equal(t, tc.proto, m.Proto)
			var pts []uint8
			var names []string
			for _, c := range m.Codecs {
				pts = append(pts, c.PT)
				names = append(names, c.Name)
			}
			require.Equal(t, tc.pts, pts)
			require.Equal(t, tc.names, names)
			require.Equal(t, tc.dir, m.Direction)
			require.Equal(t, tc.ptime, m.Ptime)
			te, ok := m.TelephoneEvent()
			require.Equal(t, tc.teOK, ok)
			if ok {
				require.Equal(t, tc.tePT, te.PT)
			}
		})
	}
}

func TestParseOfferRejectsGarbage(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"whitespace", " \r\n\r\n"},
		{"not sdp", "hello world"},
		{"no m-line", "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"},
		{"bad port", "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\n"},
		{"short m-line", "v=0\r\nm=audio 4000\r\n"},
		{"too big", "v=0\r\n" + strings.Repeat("a=x\r\n", 20000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseOffer([]byte(tc.body))
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		prefs   Prefs
		wantErr string // substring of an ErrNoCommonCodec error
		idx     int
		pt      uint8
		codec   string
		dtmfPT  int
		events  string
		dir     Direction
		remote  string
		hold    bool
	}{
		{name: "asterisk PCMU first", body: asteriskOffer, pt: 0, codec: "PCMU", dtmfPT: 101, events: "0-15", dir: SendRecv, remote: "10.0.0.5:10000"},
		{name: "freeswitch PCMA first after G722", body: freeswitchOffer, pt: 8, codec: "PCMA", dtmfPT: 101, events: "0-15", dir: SendRecv, remote: "192.0.2.10:16384"},
		{name: "sipp PCMU only, no DTMF", body: sippOffer, pt: 0, codec: "PCMU", dtmfPT: -1, dir: SendRecv, remote: "127.0.0.1:6000"},
		{name: "baresip static PCMU", body: baresipOffer, pt: 0, codec: "PCMU", dtmfPT: 101, events: "0-15", dir: SendRecv, remote: "192.168.1.20:21450"},
		{name: "telephone-event PT 96 on audio", body: videoAudioOffer, idx: 1, pt: 8, codec: "PCMA", dtmfPT: 96, events: "0-15", dir: SendRecv, remote: "198.51.100.7:5004"},
		{name: "prefs exclude PCMU", body: asteriskOffer, prefs: Prefs{Codecs: []uint8{PTPCMA}}, pt: 8, codec: "PCMA", dtmfPT: 101, events: "0-15", dir: SendRecv, remote: "10.0.0.5:10000"},
		{name: "prefs no telephone-event", body: asteriskOffer, prefs: Prefs{NoTelephoneEvent: true}, pt: 0, codec: "PCMU", dtmfPT: -1, dir: SendRecv, remote: "10.0.0.5:10000"},
		{name: "events subset", body: ipv6Offer, pt: 0, codec: "PCMU", dtmfPT: 101, events: "0-11", dir: SendRecv, remote: "[2001:db8::1]:4000"},
		{name: "sendonly offer -> recvonly (hold)", body: mediaLevelConnOffer, pt: 0, codec: "PCMU", dtmfPT: -1, dir: RecvOnly, remote: "192.0.2.200:4000", hold: true},
		{name: "inactive -> inactive", body: sessionDirectionOffer, pt: 8, codec: "PCMA", dtmfPT: -1, dir: Inactive, remote: "192.0.2.1:4000", hold: true},
		{name: "c=0.0.0.0 hold", body: sessionHoldOffer, pt: 8, codec: "PCMA", dtmfPT: -1, dir: RecvOnly, remote: "invalid AddrPort", hold: true},
		{name: "savp and avp: take the avp line", body: savpAndAvpOffer, idx: 1, pt: 8, codec: "PCMA", dtmfPT: -1, dir: SendRecv, remote: "203.0.113.1:4002"},
		{name: "lenient c= after t=", body: cAfterTOffer, pt: 8, codec: "PCMA", dtmfPT: 101, events: "0-15", dir: SendRecv, remote: "192.0.2.99:7078"},
		{name: "telephone-event on a static PT is ignored", body: strings.Replace(sippOffer, "m=audio 6000 RTP/AVP 0\n", "m=audio 6000 RTP/AVP 0 8\na=rtpmap:8 telephone-event/8000\n", 1),
			pt: 0, codec: "PCMU", dtmfPT: -1, dir: SendRecv, remote: "127.0.0.1:6000"},
		{name: "no common codec", body: noCommonOffer, wantErr: "no PCMU/PCMA"},
		{name: "savp only", body: savpOffer, wantErr: "secure"},
		{name: "no audio", body: faxOnlyOffer, wantErr: "no audio"},
		{name: "prefs exclude the only codec", body: sippOffer, prefs: Prefs{Codecs: []uint8{PTPCMA}}, wantErr: "no PCMA on any audio m-line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOffer(crlf(tc.body))
			require.NoError(t, err)
			a, err := Negotiate(o, tc.prefs)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrNoCommonCodec)
				require.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.idx, a.MediaIndex)
			require.Equal(t, tc.pt, a.Codec.PT)
			require.Equal(t, tc.codec, a.Codec.Name)
			require.Equal(t, tc.dtmfPT, a.DTMFPT)
			require.Equal(t, tc.events, a.DTMFEvents)
			require.Equal(t, tc.dir, a.Direction)
			require.Equal(t, tc.remote, a.Remote.String())
			require.Equal(t, tc.hold, a.Hold())
		})
	}
}

func TestBuildAnswer(t *testing.T) {
	local := Local{Host: "203.0.113.50", Port: 30000, SessionID: 1<<64 - 1, SessionVersion: 7, Username: "sipbridge"}
	tests := []struct {
		name string
		body string
		want string
	}{
		{
			name: "asterisk",
			body: asteriskOffer,
			want: "v=0\r\no=sipbridge 9223372036854775807 7 IN IP4 203.0.113.50\r\ns=sipbridge\r\nc=IN IP4 203.0.113.50\r\nt=0 0\r\n" +
				"m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
		},
		{
			name: "video rejected with port 0, same order",
			body: videoAudioOffer,
			want: "v=0\r\no=sipbridge 9223372036854775807 7 IN IP4 203.0.113.50\r\ns=sipbridge\r\nc=IN IP4 203.0.113.50\r\nt=0 0\r\n" +
				"m=video 0 RTP/AVP 96\r\n" +
				"m=audio 30000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
		},
		{
			name: "hold answered recvonly, savp line rejected",
			body: strings.Replace(savpAndAvpOffer, "m=audio 4002 RTP/AVP 8 0\n", "m=audio 4002 RTP/AVP 8 0\na=sendonly\n", 1),
			want: "v=0\r\no=sipbridge 9223372036854775807 7 IN IP4 203.0.113.50\r\ns=sipbridge\r\nc=IN IP4 203.0.113.50\r\nt=0 0\r\n" +
				"m=audio 0 RTP/SAVP 0 8\r\n" +
				"m=audio 30000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\na=recvonly\r\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, a := negotiated(t, crlf(tc.body))
			out, err := BuildAnswer(o, a, local)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(out))

			// The answer must itself be strict RFC 4566 (pion reads it).
			var sd pion.SessionDescription
			require.NoError(t, sd.Unmarshal(out))
			require.Len(t, sd.MediaDescriptions, len(o.Media))
		})
	}
}

func TestBuildAnswerIPv6AndErrors(t *testing.T) {
	o, a := negotiated(t, crlf(ipv6Offer))
	out, err := BuildAnswer(o, a, Local{Host: "2001:db8::50", Port: 4002, SessionID: NewSessionID(), SessionVersion: 1})
	require.NoError(t, err)
	require.Contains(t, string(out), "c=IN IP6 2001:db8::50\r\n")
	require.Contains(t, string(out), "a=fmtp:101 0-11\r\n")

	_, err = BuildAnswer(o, a, Local{Host: "2001:db8::50", Port: 0})
	require.Error(t, err)
	_, err = BuildAnswer(o, a, Local{Host: "bad host\r\nx=y", Port: 4000})
	require.Error(t, err)
	a.MediaIndex = 3
	_, err = BuildAnswer(o, a, Local{Host: "192.0.2.1", Port: 4000})
	require.Error(t, err)
}

func TestNewSessionIDFitsInt64(t *testing.T) {
	for range 1000 {
		require.Less(t, NewSessionID(), uint64(1<<62))
	}
}

func TestIntersectEvents(t *testing.T) {
	tests := map[string]string{
		"":            "0-15",
		"0-15":        "0-15",
		"0-16":        "0-15",
		"0-11,16":     "0-11",
		"0-9, 11 ,15": "0-9,11,15",
		"16-20":       "",
		"x-y,3":       "3",
		"-5-3":        "",
	}
	for in, want := range tests {
		require.Equal(t, want, intersectEvents(in), "fmtp %q", in)
	}
}

func TestDirectionString(t *testing.T) {
	for _, d := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
		got, ok := directionOf(d.String())
		require.True(t, ok)
		require.Equal(t, d, got)
	}
	require.True(t, SendRecv.Sends() && SendRecv.Receives())
	require.True(t, SendOnly.Sends() && !SendOnly.Receives())
	require.True(t, !RecvOnly.Sends() && RecvOnly.Receives())
	require.True(t, !Inactive.Sends() && !Inactive.Receives())
}

func TestRemoteAddrInvalidCases(t *testing.T) {
	m := Media{Addr: netip.MustParseAddr("0.0.0.0"), Port: 4000}
	require.False(t, m.RemoteAddr().IsValid())
	m = Media{Addr: netip.MustParseAddr("192.0.2.1"), Port: 0}
	require.False(t, m.RemoteAddr().IsValid())
	m = Media{Port: 4000, AddrRaw: "media.example.com"}
	require.False(t, m.RemoteAddr().IsValid())
}

// FuzzParseOffer checks that no body crashes the parsers and that every
// offer we can answer yields an answer that is strict RFC 4566, keeps the
// offer's m-line count and parses back to what was negotiated.
func FuzzParseOffer(f *testing.F) {
	for _, s := range []string{asteriskOffer, freeswitchOffer, sippOffer, baresipOffer, videoAudioOffer, savpOffer,
		savpAndAvpOffer, cAfterTOffer, missingSOffer, noCommonOffer, faxOnlyOffer, mediaLevelConnOffer, sessionHoldOffer,
		sessionDirectionOffer, ipv6Offer} {
		f.Add([]byte(s))
		f.Add(crlf(s))
	}
	f.Add([]byte("m=audio 1 RTP/AVP 0\na=rtpmap:0 PCMU/8000/1/2\na=fmtp:0\na=ptime:x"))
	f.Add([]byte("v=0\r\nm=audio 0/2 RTP/AVP 0 8 127 128 -1\r\nc=IN IP4 1.1.1.1/127/3\r\n"))
	f.Add(srtpOffer("m=audio 4000 RTP/SAVP 9 0 101\na=rtpmap:101 telephone-event/16000\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^31 WSH=64\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := ParseOffer(body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("parse error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		for _, prefs := range []Prefs{{}, {Codecs: []uint8{PTG722, PTPCMU, PTPCMA}, Encryption: EncryptionOptional}} {
			a, err := Negotiate(o, prefs)
			if err != nil {
				if !errors.Is(err, ErrNoCommonCodec) {
					t.Fatalf("negotiate error does not wrap ErrNoCommonCodec: %v", err)
				}
				continue
			}
			out, err := BuildAnswer(o, a, Local{Host: "192.0.2.1", Port: 40000, SessionID: 1, SessionVersion: 1})
			if err != nil {
				t.Fatalf("answer to a negotiable offer failed: %v", err)
			}
			// pion knows only some media types and protos (no image/udptl):
			// when it read the offer, it must read the answer too.
			if !o.Lenient {
				var sd pion.SessionDescription
				if err := sd.Unmarshal(out); err != nil {
					t.Fatalf("answer is not strict SDP: %v\n%s", err, out)
				}
			}
			back, err := ParseOffer(out)
			if err != nil {
				t.Fatalf("answer does not parse back: %v\n%s", err, out)
			}
			if (back.Lenient && !o.Lenient) || len(back.Media) != len(o.Media) {
				t.Fatalf("answer m-lines %d (lenient %v), offer %d\n%s", len(back.Media), back.Lenient, len(o.Media), out)
			}
			for i, m := range back.Media {
				if (i == a.MediaIndex) != (m.Port != 0) {
					t.Fatalf("m-line %d port %d, accepted index %d\n%s", i, m.Port, a.MediaIndex, out)
				}
			}
			c, ok := back.Media[a.MediaIndex].Codec(a.Codec.PT)
			if !ok || !c.Is(a.Codec.Name, 8000) {
				t.Fatalf("accepted codec %v missing from answer\n%s", a.Codec, out)
			}
			if (a.SRTP != nil) != (len(back.Media[a.MediaIndex].Crypto) == 1) {
				t.Fatalf("SRTP %v but answer crypto lines %d\n%s", a.SRTP != nil, len(back.Media[a.MediaIndex].Crypto), out)
			}
		}
	})
}

func TestBuildOffer(t *testing.T) {
	out, err := BuildOffer(Local{Host: "192.0.2.5", Port: 30002, SessionID: 5, SessionVersion: 1, Username: "sipbridge"}, Prefs{})
	require.NoError(t, err)
	require.Equal(t, "v=0\r\no=sipbridge 5 1 IN IP4 192.0.2.5\r\ns=sipbridge\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n"+
		"m=audio 30002 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"+
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n", string(out))
	// Our offer negotiates against itself (an answerer echoing it).
	_, a := negotiated(t, out)
	require.Equal(t, "PCMU", a.Codec.Name)
	require.Equal(t, 101, a.DTMFPT)

	out, err = BuildOffer(Local{Host: "192.0.2.5", Port: 30002}, Prefs{Codecs: []uint8{PTPCMA}, NoTelephoneEvent: true})
	require.NoError(t, err)
	require.Contains(t, string(out), "m=audio 30002 RTP/AVP 8\r\n")
	_, err = BuildOffer(Local{Host: "192.0.2.5", Port: 30002}, Prefs{Codecs: []uint8{18}})
	require.Error(t, err)
}
