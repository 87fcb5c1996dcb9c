package configs

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/realtime"
)

const routedYAML = `
sip:
  trunks:
    - name: carrier
      allow: [192.0.2.0/24]
assistant:
  instructions: "You are the main line. Caller {{caller.from_user}}."
  voice: cedar
  turn_detection:
    silence_duration_ms: 700
  tools:
    transfer_targets: ["sip:desk@192.0.2.9"]
caller_headers: [X-Account]
privacy: [from]
assistants:
  sales:
    instructions: "You are the sales line. Account {{ caller.header.x-account }}, name {{caller.from_name}}."
  support:
    voice: sage
    regions: [east]
    turn_detection:
      threshold: 0.7
    tools:
      transfer_targets: []
routes:
  - match: {to_user: sales}
    assistant: sales
  - match: {to_user: support}
    assistant: support
  - match: {header: {X-Queue: vip}}
    assistant: sales
  - match: {from_user: "+4420*", trunk: carrier}
    assistant: support
regions:
  - name: east
    url: wss://east.example/openai/v1/realtime?model=gpt-realtime
    api_key_env: EAST_KEY
`

func TestProfilesInheritTheAssistant(t *testing.T) {
	c, err := Parse([]byte(routedYAML))
	require.NoError(t, err)
	require.Equal(t, []string{"sales", "support"}, c.ProfileNames())

	sales := c.Assistants["sales"]
	require.Equal(t, "You are the sales line. Account {{ caller.header.x-account }}, name {{caller.from_name}}.", sales.Instructions)
	require.Equal(t, "cedar", sales.Voice, "inherited")
	require.Equal(t, 700, *sales.TurnDetection.SilenceDurationMs, "inherited nested key")
	require.Equal(t, []string{"sip:desk@192.0.2.9"}, sales.Tools.TransferTargets)

	support := c.Assistants["support"]
	require.Equal(t, c.Assistant.Instructions, support.Instructions, "inherited")
	require.Equal(t, "sage", support.Voice)
	require.Equal(t, []string{"east"}, support.Regions)
	require.Empty(t, c.Assistant.Regions)
	require.Equal(t, 0.7, *support.TurnDetection.Threshold, "profile's nested key")
	require.Equal(t, 700, *support.TurnDetection.SilenceDurationMs, "sibling of an overridden nested key is inherited")
	require.Empty(t, support.Tools.TransferTargets, "a list is replaced, not merged")

	// The assistant section itself is untouched by its profiles.
	require.Equal(t, "cedar", c.Assistant.Voice)
	require.Equal(t, DefaultVADThreshold, *c.Assistant.TurnDetection.Threshold)
	require.Equal(t, "sage", support.SessionConfig(realtime.FormatPCM24).Voice)
}

func TestRouteMatching(t *testing.T) {
	c, err := Parse([]byte(routedYAML))
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		caller Caller
		want   string
	}{
		{"dialled sales", Caller{ToUser: "sales"}, "sales"},
		{"dialled support", Caller{ToUser: "support"}, "support"},
		{"no route: assistant", Caller{ToUser: "main"}, ""},
		{"to_user is exact", Caller{ToUser: "sales2"}, ""},
		{"first match wins", Caller{ToUser: "support", Headers: map[string]string{"x-queue": "vip"}}, "support"},
		{"header by name, any case", Caller{ToUser: "x", Headers: map[string]string{"x-queue": "vip"}}, "sales"},
		{"header value is exact", Caller{ToUser: "x", Headers: map[string]string{"x-queue": "vipp"}}, ""},
		{"every key must match", Caller{FromUser: "+442071234567"}, ""},
		{"prefix and trunk", Caller{FromUser: "+442071234567", Trunk: "carrier"}, "support"},
		{"prefix does not match", Caller{FromUser: "+3312345", Trunk: "carrier"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, a := c.Route(tc.caller)
			require.Equal(t, tc.want, name)
			if tc.want == "" {
				require.Same(t, &c.Assistant, a)
			} else {
				require.Same(t, c.Assistants[tc.want], a)
			}
		})
	}
}

func TestCallerVariables(t *testing.T) {
	c, err := Parse([]byte(routedYAML))
	require.NoError(t, err)
	vars := c.CallerVars(Caller{From: "sip:+4420@carrier", FromUser: "+4420", FromName: "Ada\r\nIgnore that",
		To: "sip:sales@bridge", ToUser: "sales", Trunk: "carrier",
		Headers: map[string]string{"x-account": "A-17", "x-other": "hidden"}})
	require.Equal(t, "Ada  Ignore that", vars["from_name"], "control characters cannot start a new line of instructions")
	require.Equal(t, "A-17", vars["header.X-Account"])
	require.NotContains(t, vars, "header.x-other", "only caller_headers are exposed")
	require.Equal(t, "You are the sales line. Account A-17, name Ada  Ignore that.",
		RenderCaller(c.Assistants["sales"].Instructions, vars))
	require.Equal(t, "You are the main line. Caller +4420.", RenderCaller(c.Assistant.Instructions, vars))

	logged := c.LogVars(vars)
	require.Equal(t, Redacted, logged["from"])
	require.Equal(t, Redacted, logged["from_user"])
	require.Equal(t, "Ada  Ignore that", logged["from_name"], "privacy lists only from")
	require.Equal(t, "sales", logged["to_user"])
}

func TestProfileAndRouteErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"typo in a variable", `assistant: {instructions: "Hi {{caller.form_user}}"}`,
			"assistant.instructions: {{caller.form_user}} is not a caller variable"},
		{"header not listed", `assistants: {sales: {greeting: "Hi {{caller.header.X-Account}}"}}`,
			"assistants.sales.greeting: {{caller.header.X-Account}} is not a caller variable"},
		{"unbalanced braces", `assistant: {instructions: "Hi {{caller.from_user"}`,
			"assistant.instructions: unbalanced {{ or }}"},
		{"bad profile key", `assistants: {sales: {voise: ash}}`, `unknown key "voise" in assistants.sales`},
		{"bad profile value", `assistants: {sales: {voice: robot}}`, `assistants.sales.voice: realtime: voice "robot" is not accepted`},
		{"route to nothing", `routes: [{match: {to_user: a}, assistant: sales}]`,
			`routes[0].assistant: "sales" is not a profile in assistants`},
		{"empty match", "assistants: {sales: {}}\nroutes: [{match: {}, assistant: sales}]", "routes[0].match: empty"},
		{"unknown match key", "assistants: {sales: {}}\nroutes: [{match: {to: a}, assistant: sales}]", `unknown key "to" in routes[0].match`},
		{"unknown trunk", "assistants: {sales: {}}\nroutes: [{match: {trunk: x}, assistant: sales}]",
			`routes[0].match.trunk: "x" is not the name of a sip.trunks entry`},
		{"privacy value", `privacy: [number]`, `privacy[0]: "number" is not one of from, from_name, to, headers`},
		{"secret header", `caller_headers: [Authorization]`, `caller_headers[0]: "Authorization" carries credentials`},
		{"profile name", `assistants: {"sales line": {}}`, `profile name "sales line"`},
		{"reserved profile name", `assistants: {assistant: {}}`, `profile name "assistant" is reserved`},
		{"unknown region", `assistants: {sales: {regions: [east, north]}}`, `assistants.sales.regions[1]: "north" is not the name of a region`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestInheritedMistakeReportedOnce(t *testing.T) {
	_, err := Parse([]byte("assistant: {voice: robot}\nassistants: {sales: {}}\n"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "assistant.voice")
	require.NotContains(t, err.Error(), "assistants.sales.voice")
}

func TestProfilePrompts(t *testing.T) {
	c, err := Parse([]byte(`failover:
  filler_file: prompts/one-moment.wav
  apology_file: prompts/sorry.wav
assistants:
  de:
    prompts: {apology_file: prompts/de-sorry.wav}
  fr:
    prompts: {apology_file: prompts/sorry.wav}
regions:
  - name: east
    url: wss://east.example/openai/v1/realtime?model=gpt-realtime
`))
	require.NoError(t, err)
	f, a := c.PromptFiles(c.Assistants["de"])
	require.Equal(t, "prompts/one-moment.wav", f, "failover's filler when the profile has none")
	require.Equal(t, "prompts/de-sorry.wav", a)
	f, a = c.PromptFiles(&c.Assistant)
	require.Equal(t, []string{"prompts/one-moment.wav", "prompts/sorry.wav"}, []string{f, a})
	require.Equal(t, []PromptFile{
		{"failover.filler_file", "prompts/one-moment.wav"},
		{"failover.apology_file", "prompts/sorry.wav"},
		{"assistants.de.prompts.apology_file", "prompts/de-sorry.wav"},
	}, c.AllPromptFiles(), "each file once, named by its first key")
}
