package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sipbridge/sipbridge/configs"
)

func loadConfig(path string) (*configs.Config, error) {
	if path == "" {
		return configs.LoadDefault()
	}
	return configs.Load(path)
}

// check validates a config the way serve would load it, and says what is
// wrong by key. Unset key variables are warnings: the file itself is valid,
// and the region will answer 401 until the variable is exported.
func check(path string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "sipbridge: %v\n", err)
		return 1
	}
	for _, f := range []struct{ key, path string }{
		{"failover.filler_file", cfg.Failover.FillerFile},
		{"failover.apology_file", cfg.Failover.ApologyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := loadPrompt(f.path); err != nil {
			fmt.Fprintf(stderr, "sipbridge: %s: %v\n", f.key, err)
			return 1
		}
	}
	for _, w := range cfg.MissingKeys(os.Getenv) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	for _, w := range cfg.MissingTrunkPasswords(os.Getenv) {
		fmt.Fprintf(stderr, "warning: %s (serve refuses to start without it)\n", w)
	}
	name := path
	if name == "" {
		name = "embedded default"
	}
	fmt.Fprintf(stdout, "%s: OK (%d regions, SIP on %v)\n", name, len(cfg.Regions), []string(cfg.SIP.Listen))
	return 0
}
