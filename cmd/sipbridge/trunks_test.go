package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/configs"
	"github.com/sipbridge/sipbridge/sip"
)

func TestApplyTrunks(t *testing.T) {
	cfg, err := configs.Parse([]byte(`sip:
  listen: 127.0.0.1:5060
  auth_limit:
    failures: 3
  trunks:
    - name: carrier
      allow: [192.0.2.0/24]
    - name: pbx
      allow: [198.51.100.7]
      username: pbx
      password_env: SIPBRIDGE_PBX_PW
      algorithms: [MD5]
  tls:
    listen: 127.0.0.1:5061
    cert_file: /etc/sipbridge/cert.pem
    key_file: /etc/sipbridge/key.pem
regions:
  - name: a
    url: ws://127.0.0.1:9001/v1/realtime?model=gpt-realtime
`))
	require.NoError(t, err)

	var dst sip.Config
	require.NoError(t, applyTrunks(&dst, cfg, func(k string) string {
		if k == "SIPBRIDGE_PBX_PW" {
			return "from-env"
		}
		return ""
	}))
	require.Equal(t, []sip.Trunk{
		{Name: "carrier", Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		{Name: "pbx", Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32")}, Username: "pbx", Password: "from-env", Algorithms: []string{"MD5"}},
	}, dst.Trunks)
	require.Equal(t, sip.AuthLimit{Failures: 3, Window: time.Minute, Block: 5 * time.Minute}, dst.AuthLimit)
	require.Equal(t, []sip.Listener{{Network: "tls", Addr: "127.0.0.1:5061", CertFile: "/etc/sipbridge/cert.pem", KeyFile: "/etc/sipbridge/key.pem"}}, dst.Listen)

	err = applyTrunks(&sip.Config{}, cfg, func(string) string { return "" })
	require.ErrorContains(t, err, "sip.trunks[1].password_env")
	require.ErrorContains(t, err, "SIPBRIDGE_PBX_PW")
}
