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
// and the region will answer 401 until the variable is exported. With
// dial, it also completes a session handshake in every region
// (checkdial.go).
func check(path string, dial bool, stdout, stderr io.Writer) int {
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
	if dial {
		failed, err := checkDial(cfg, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "sipbridge: %v\n", err)
			return 1
		}
		if failed > 0 {
			fmt.Fprintf(stderr, "sipbridge: %d region handshake(s) failed\n", failed)
			return 1
		}
	}
	fmt.Fprintf(stdout, "%s: OK (%d regions, %d assistant profiles, %d routes, SIP on %v)\n", name,
		len(cfg.Regions), len(cfg.ProfileNames()), len(cfg.Routes), []string(cfg.SIP.Listen))
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
	for _, f := range cfg.AllPromptFiles() { // failover's, then each assistant's own
		if err := fileExists(f.Key, f.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := loadPrompt(f.Path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", f.Key, f.Path, err))
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
