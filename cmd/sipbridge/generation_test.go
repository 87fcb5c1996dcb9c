package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipbridge/sipbridge/configs"
)

func TestConfigChanges(t *testing.T) {
	const base = `sip:
  listen: 127.0.0.1:5060
assistant:
  instructions: one
assistants:
  sales: {voice: ash}
regions:
  - name: east
    url: ws://127.0.0.1:8091/v1/realtime?model=gpt-realtime
    simulator: {enabled: true}
`
	parse := func(s string) *configs.Config {
		c, err := configs.Parse([]byte(s))
		require.NoError(t, err)
		return c
	}
	old := parse(base)
	for _, tc := range []struct {
		name          string
		yaml          string
		applied, rest []string
	}{
		{"same file, lines moved", "# a comment\n\n" + base, nil, nil},
		{"instructions", replace(base, "instructions: one", "instructions: two"), []string{"assistant", "assistants"}, nil},
		{"profile only", replace(base, "voice: ash", "voice: sage"), []string{"assistants"}, nil},
		{"listener", replace(base, "127.0.0.1:5060", "127.0.0.1:5070"), nil, []string{"sip.listen"}},
		{"trunks and rtp", base + "rtp:\n  port_min: 20000\n  port_max: 20100\n" +
			"privacy: [from]\n", []string{"privacy"}, []string{"rtp.port_min", "rtp.port_max"}},
		{"region", replace(base, "8091", "8092"), []string{"regions"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			applied, rest := configChanges(old, parse(tc.yaml))
			require.Equal(t, tc.applied, applied)
			require.Equal(t, tc.rest, rest)
		})
	}
}

func replace(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("no " + old)
	}
	return strings.Replace(s, old, new, 1)
}

func TestSimulatorChangesNeedARestart(t *testing.T) {
	const file = `regions:
  - name: east
    url: ws://127.0.0.1:8091/v1/realtime?model=gpt-realtime
    simulator: {enabled: true, faults: {failure_rate: 0.1}}
`
	parse := func(s string) *configs.Config {
		c, err := configs.Parse([]byte(s))
		require.NoError(t, err)
		return c
	}
	a := &app{cfg: parse(file)}
	require.Empty(t, a.simulatorChanges(parse("# moved\n"+file)))
	require.Equal(t, []string{`regions "east" simulator`}, a.simulatorChanges(parse(replace(file, "failure_rate: 0.1", "failure_rate: 0.2"))))
}
