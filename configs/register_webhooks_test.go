package configs

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

const extBase = "regions:\n  - name: a\n    url: ws://127.0.0.1:9001/v1/realtime?model=gpt-realtime\n"

func TestRegisterAndWebhooksParse(t *testing.T) {
	c, err := Parse([]byte(`sip:
  register:
    - registrar: "sip:pbx.example:5080"
      aor: "sip:bot@example"
      password_env: PBX_PASSWORD
    - name: carrier
      registrar: "sip:reg.carrier.example"
      aor: "sip:+15551230000@carrier.example"
      username: "acct-77"
      expires: 600s
      contact_user: "+15551230000"
      transport: tcp
assistant:
  tools:
    webhooks:
      - name: lookup_order
        description: Look up an order's status by its number.
        url: https://orders.example/api/lookup
        parameters:
          type: object
          properties:
            order_id: {type: string, description: "The order number"}
          required: [order_id]
        headers_env:
          Authorization: ORDERS_AUTH
      - name: ping
        description: Check the service.
        url: http://127.0.0.1:8080/ping
        timeout: 2s
` + extBase))
	require.NoError(t, err)
	r := c.SIP.Register
	require.Len(t, r, 2)
	require.Equal(t, 300*time.Second, r[0].Expires.D(), "default expires")
	require.Equal(t, 600*time.Second, r[1].Expires.D())
	require.Equal(t, "tcp", r[1].Transport)

	w := c.Assistant.Tools.Webhooks
	require.Len(t, w, 2)
	require.Equal(t, 5*time.Second, w[0].Timeout.D(), "default timeout")
	require.Equal(t, 2*time.Second, w[1].Timeout.D())

	sc := c.SessionConfig(realtime.FormatPCM24)
	require.Len(t, sc.Tools, 3, "end_call + two webhooks")
	require.Equal(t, "lookup_order", sc.Tools[1].Name)
	require.Equal(t, "Look up an order's status by its number.", sc.Tools[1].Description)
	require.JSONEq(t, `{"type":"object","properties":{"order_id":{"type":"string","description":"The order number"}},"required":["order_id"]}`,
		string(sc.Tools[1].Parameters))
	require.JSONEq(t, `{"type":"object","properties":{}}`, string(sc.Tools[2].Parameters), "no parameters: an empty object schema")
	// The session config is sent byte-identically to every region.
	a, _ := json.Marshal(c.SessionConfig(realtime.FormatPCM24))
	b, _ := json.Marshal(c.SessionConfig(realtime.FormatPCM24))
	require.Equal(t, string(a), string(b))

	missing := c.MissingKeys(func(string) string { return "" })
	require.Contains(t, missing, "sip.register[0]: environment variable PBX_PASSWORD is not set")
	require.Contains(t, missing, `assistant.tools.webhooks "lookup_order": environment variable ORDERS_AUTH is not set`)
}

func TestRegisterAndWebhooksBadKeys(t *testing.T) {
	reg := func(body string) string { return "sip:\n  register:\n    - " + body + "\n" + extBase }
	hook := func(body string) string {
		return "assistant:\n  tools:\n    webhooks:\n      - " + body + "\n" + extBase
	}
	const okHook = "name: x\n        description: d\n        url: http://h/x"
	cases := []struct {
		name, yaml, wantKey string
	}{
		{"unknown register key", reg("registrar: sip:r\n      aor: sip:a@b\n      password: pw"), `unknown key "password" in sip.register[0]`},
		{"registrar not sip", reg("registrar: http://r\n      aor: sip:a@b"), "sip.register[0].registrar"},
		{"registrar with user", reg("registrar: sip:u@r\n      aor: sip:a@b"), "sip.register[0].registrar"},
		{"registrar crlf", reg("registrar: \"sip:r\\r\\nX: y\"\n      aor: sip:a@b"), "sip.register[0].registrar"},
		{"aor without user", reg("registrar: sip:r\n      aor: sip:example.com"), "sip.register[0].aor"},
		{"password in password_env", reg("registrar: sip:r\n      aor: sip:a@b\n      password_env: hunter2!"), "sip.register[0].password_env"},
		{"short expires", reg("registrar: sip:r\n      aor: sip:a@b\n      expires: 5s"), "sip.register[0].expires"},
		{"bad transport", reg("registrar: sip:r\n      aor: sip:a@b\n      transport: tls"), "sip.register[0].transport"},
		{"transport not served", "sip:\n  transports: [udp]\n  register:\n    - registrar: sip:r\n      aor: sip:a@b\n      transport: tcp\n" + extBase, "sip.register[0].transport"},
		{"bad contact user", reg("registrar: sip:r\n      aor: sip:a@b\n      contact_user: \"a b\""), "sip.register[0].contact_user"},
		{"duplicate name", "sip:\n  register:\n    - registrar: sip:r\n      aor: sip:a@b\n    - registrar: sip:r\n      aor: sip:c@b\n" + extBase, "sip.register[1].name"},
		{"unknown webhook key", hook(okHook + "\n        method: GET"), `unknown key "method" in assistant.tools.webhooks[0]`},
		{"bad tool name", hook("name: look up\n        description: d\n        url: http://h/x"), "assistant.tools.webhooks[0].name"},
		{"builtin name", hook("name: end_call\n        description: d\n        url: http://h/x"), "assistant.tools.webhooks[0].name"},
		{"no description", hook("name: x\n        url: http://h/x"), "assistant.tools.webhooks[0].description"},
		{"bad url", hook("name: x\n        description: d\n        url: ftp://h/x"), "assistant.tools.webhooks[0].url"},
		{"credentials in url", hook("name: x\n        description: d\n        url: https://u:p@h/x"), "assistant.tools.webhooks[0].url"},
		{"long timeout", hook(okHook + "\n        timeout: 2m"), "assistant.tools.webhooks[0].timeout"},
		{"schema not object", hook(okHook + "\n        parameters: {type: string}"), "assistant.tools.webhooks[0].parameters"},
		{"bad header", hook(okHook + "\n        headers_env: {\"Bad Header\": X}"), "assistant.tools.webhooks[0].headers_env"},
		{"secret in headers_env", hook(okHook + "\n        headers_env: {Authorization: \"Bearer abc\"}"), "assistant.tools.webhooks[0].headers_env"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantKey)
		})
	}
}
