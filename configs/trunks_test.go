package configs

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/sip/sdp"
)

func TestTrunksTLSAndAuthLimit(t *testing.T) {
	c, err := Parse([]byte(`sip:
  listen: 127.0.0.1:5060
  trunks:
    - name: carrier
      allow: [192.0.2.0/24, "2001:db8::1"]
    - name: pbx
      allow: [198.51.100.7]
      username: pbx-user
      password_env: SIPBRIDGE_PBX_PASSWORD
      realm: bridge.example
  tls:
    listen: 127.0.0.1:5061
    cert_file: /etc/sipbridge/cert.pem
    key_file: /etc/sipbridge/key.pem
regions:
  - name: a
    url: ws://127.0.0.1:9001/v1/realtime?model=gpt-realtime
`))
	require.NoError(t, err)
	require.Len(t, c.SIP.Trunks, 2)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128")}, c.SIP.Trunks[0].Prefixes())
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32")}, c.SIP.Trunks[1].Prefixes())
	require.Equal(t, AuthLimit{Failures: 10, Window: Duration(time.Minute), Block: Duration(5 * time.Minute)}, c.SIP.AuthLimit)
	require.Equal(t, "127.0.0.1:5061", c.SIP.TLS.Listen)

	env := map[string]string{"SIPBRIDGE_PBX_PASSWORD": "pw"}
	p, err := c.SIP.Trunks[1].Password(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, "pw", p)
	p, err = c.SIP.Trunks[0].Password(func(string) string { return "" })
	require.NoError(t, err, "an IP-only trunk has no password")
	require.Empty(t, p)
	_, err = c.SIP.Trunks[1].Password(func(string) string { return "" })
	require.ErrorContains(t, err, "SIPBRIDGE_PBX_PASSWORD")
	require.Equal(t, []string{`sip.trunks[1].password_env: environment variable SIPBRIDGE_PBX_PASSWORD (password of trunk "pbx") is not set`},
		c.MissingTrunkPasswords(func(string) string { return "" }))
}

func TestNoTrunksByDefault(t *testing.T) {
	c, err := LoadDefault()
	require.NoError(t, err)
	require.Empty(t, c.SIP.Trunks, "the local demo admits anyone")
	require.Nil(t, c.SIP.TLS)
}

// TestMediaPolicyKeys: sip.codecs / sip.media_encryption and their per-trunk
// overrides are read, and a bad value names its key.
func TestMediaPolicyKeys(t *testing.T) {
	const base = `sip:
  listen: 127.0.0.1:5060
%s
regions:
  - name: a
    url: ws://127.0.0.1:9001/v1/realtime?model=gpt-realtime
`
	c, err := Parse(fmt.Appendf(nil, base, `  codecs: [PCMU, PCMA]
  media_encryption: optional
  trunks:
    - name: tls-carrier
      allow: [192.0.2.0/24]
      codecs: [g722, PCMU]
      media_encryption: required
    - name: pbx
      allow: [198.51.100.7]`))
	require.NoError(t, err)
	require.Equal(t, []uint8{sdp.PTPCMU, sdp.PTPCMA}, c.SIP.Media().CodecPTs())
	require.Equal(t, sdp.EncryptionOptional, *c.SIP.Media().Encryption())
	require.Equal(t, []uint8{sdp.PTG722, sdp.PTPCMU}, c.SIP.Trunks[0].Media().CodecPTs())
	require.Equal(t, sdp.EncryptionRequired, *c.SIP.Trunks[0].Media().Encryption())
	require.Nil(t, c.SIP.Trunks[1].Media().CodecPTs(), "unset: the sip-level list applies")
	require.Nil(t, c.SIP.Trunks[1].Media().Encryption())

	for _, tc := range []struct{ yaml, key string }{
		{"  codecs: [G722, OPUS]", "sip.codecs"},
		{"  media_encryption: mandatory", "sip.media_encryption"},
		{"  trunks:\n    - name: x\n      allow: [192.0.2.1]\n      codecs: [G729]", "sip.trunks[0].codecs"},
		{"  trunks:\n    - name: x\n      allow: [192.0.2.1]\n      media_encryption: srtp", "sip.trunks[0].media_encryption"},
	} {
		_, err := Parse(fmt.Appendf(nil, base, tc.yaml))
		require.ErrorContains(t, err, tc.key, tc.yaml)
	}
}
