package configs

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
