package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImportGraphIsLayered: cmd → configs → sip → failover → realtime, and
// sip → media; media and realtime import neither each other nor anything
// above them, failover imports neither sip nor media, and only the binary
// (cmd/…) imports the simulator — never configs.
func TestImportGraphIsLayered(t *testing.T) {
	const module = "github.com/sipbridge/sipbridge/"
	rank := map[string]int{"realtime": 0, "media": 1, "failover": 2, "sip": 3, "configs": 4, "integration": 5, "cmd": 6}
	forbidden := map[[2]string]bool{{"failover", "media"}: true, {"media", "realtime"}: true}
	root := "../.."
	seen := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		from := filepath.ToSlash(filepath.Dir(rel))
		fromTop, _, _ := strings.Cut(from, "/")
		if _, ok := rank[fromTop]; !ok {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module) {
				continue
			}
			seen++
			to := strings.TrimPrefix(p, module)
			toTop, _, _ := strings.Cut(to, "/")
			if to == "realtime/sim" {
				require.True(t, fromTop == "cmd" || from == "realtime/sim" || fromTop == "integration", "%s imports the simulator (only the binary may)", rel)
				continue
			}
			if fromTop == toTop {
				continue
			}
			require.Greater(t, rank[fromTop], rank[toTop], "%s imports %s: upward in the layering", rel, to)
			require.False(t, forbidden[[2]string{fromTop, toTop}], "%s imports %s", rel, to)
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, seen, 20, "the walk found the module's imports")
}
