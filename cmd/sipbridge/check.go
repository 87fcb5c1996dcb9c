package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sipbridge/sipbridge/configs"
)

func loadConfig(path string) (*configs.Config, error) {
	if path == "" {
		return configs.LoadDefault()
	}
	return configs.Load(path)
}

// check validates a config the way serve would load it, and says what is
// wrong by key: the YAML (configs), the simulator sections, and the files
// the config names (TLS certificate and key, prompt WAVs), which must exist
// and be usable. Unset key variables are warnings: the file itself is valid,
// and the region will answer 401 until the variable is exported.
func check(path string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "sipbridge: %v\n", err)
		return 1
	}
	problems := 0
	if _, err := simulatedRegions(cfg, time.Now); err != nil {
		fmt.Fprintf(stderr, "sipbridge: %v\n", err)
		problems++
	}
	for _, err := range checkFiles(cfg) {
		fmt.Fprintf(stderr, "sipbridge: %v\n", err)
		problems++
	}
	if problems > 0 {
		return 1
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

// checkFiles checks that every file the config names exists and is usable,
// each error naming its key.
func checkFiles(cfg *configs.Config) []error {
	var errs []error
	if tl := cfg.SIP.TLS; tl != nil {
		certErr := fileExists("sip.tls.cert_file", tl.CertFile)
		keyErr := fileExists("sip.tls.key_file", tl.KeyFile)
		errs = appendErr(appendErr(errs, certErr), keyErr)
		if certErr == nil && keyErr == nil {
			if _, err := tls.LoadX509KeyPair(tl.CertFile, tl.KeyFile); err != nil {
				errs = append(errs, fmt.Errorf("sip.tls.cert_file, sip.tls.key_file: not a usable PEM certificate and key pair: %w", err))
			}
		}
	}
	for _, f := range []struct{ key, path string }{
		{"failover.filler_file", cfg.Failover.FillerFile},
		{"failover.apology_file", cfg.Failover.ApologyFile},
	} {
		if f.path == "" {
			continue
		}
		if err := fileExists(f.key, f.path); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := loadPrompt(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", f.key, f.path, err))
		}
	}
	return errs
}

// fileExists says, naming key, when path is not a readable regular file.
// Relative paths are relative to the working directory, as serve opens them.
func fileExists(key, path string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		where := ""
		if !filepath.IsAbs(path) {
			if wd, err := os.Getwd(); err == nil {
				where = fmt.Sprintf(" (relative to the working directory %s)", wd)
			}
		}
		return fmt.Errorf("%s: file %q does not exist%s", key, path, where)
	case err != nil:
		return fmt.Errorf("%s: %w", key, err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s: %q is not a regular file", key, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	_ = f.Close()
	return nil
}

func appendErr(errs []error, err error) []error {
	if err != nil {
		return append(errs, err)
	}
	return errs
}
