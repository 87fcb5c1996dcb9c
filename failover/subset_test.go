package failover

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAllowedRegions(t *testing.T) {
	all := []Region{{Name: "east"}, {Name: "west"}, {Name: "north"}}
	for _, tc := range []struct {
		name    string
		allowed []string
		want    []string
	}{
		{"no subset: every region", nil, []string{"east", "west", "north"}},
		{"subset keeps the pool's order", []string{"north", "east"}, []string{"east", "north"}},
		{"a name the pool no longer has", []string{"gone"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Conversation{cfg: Config{Regions: tc.allowed}}
			require.Equal(t, tc.want, candidateNames(c.allowedRegions(all)))
		})
	}
}
