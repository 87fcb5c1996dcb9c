package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Exit codes of `sipbridge health`, for the image's HEALTHCHECK and scripts.
// Docker reads 0 as healthy and 1 as unhealthy (and reserves 2).
const (
	healthOK        = 0 // the probe answered 200
	healthUnhealthy = 1 // it answered anything else, or nothing (not running, admin off, bad config)
	healthUsage     = 2 // bad flags: the command line is wrong, not the server
)

// healthAddrEnv overrides the admin address `health` probes, for an image
// whose config moved admin.listen (docker run -e SIPBRIDGE_ADMIN=…).
const healthAddrEnv = "SIPBRIDGE_ADMIN"

// health probes a running sipbridge's admin endpoint: /livez by default (is
// the process serving; what a container HEALTHCHECK wants, since a full or
// draining instance is not broken), /readyz with -ready (would it take a new
// call now).
func health(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sipbridge health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: sipbridge health [-ready] [-addr HOST:PORT | -config FILE] [-timeout D]

Probes the admin endpoint of a running sipbridge: /livez (the process
serves, draining included), or /readyz with -ready (it takes new calls).
The address is -addr, else $%s, else admin.listen of -config (or of
the embedded default: 127.0.0.1:9090).

Exit status: 0 the probe answered 200; 1 it answered otherwise or not at
all; 2 bad flags.

`, healthAddrEnv)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "config file whose admin.listen to probe; empty: the embedded default")
	addr := fs.String("addr", "", "admin address HOST:PORT (overrides -config and $"+healthAddrEnv+")")
	ready := fs.Bool("ready", false, "probe /readyz (takes new calls) instead of /livez (serving)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return healthOK
		}
		return healthUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sipbridge health: unexpected argument %q\n", fs.Arg(0))
		return healthUsage
	}
	target := *addr
	if target == "" {
		target = os.Getenv(healthAddrEnv)
	}
	if target == "" {
		cfg, err := loadConfig(*configPath)
		if err != nil {
			fmt.Fprintf(stderr, "sipbridge health: %v\n", err)
			return healthUnhealthy
		}
		if cfg.Admin.Listen == "off" {
			fmt.Fprintln(stderr, "sipbridge health: admin.listen is off: nothing to probe")
			return healthUnhealthy
		}
		target = cfg.Admin.Listen
	}
	path := pathLive
	if *ready {
		path = pathReady
	}
	url, err := probeURL(target, path)
	if err != nil {
		fmt.Fprintf(stderr, "sipbridge health: %v\n", err)
		return healthUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "sipbridge health: %v\n", err)
		return healthUsage
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "sipbridge health: %s: %v\n", url, err)
		return healthUnhealthy
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	msg := strings.TrimSpace(string(body))
	if res.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "sipbridge health: %s: %d %s\n", url, res.StatusCode, msg)
		return healthUnhealthy
	}
	fmt.Fprintf(stdout, "%s: %s\n", url, msg)
	return healthOK
}

// probeURL turns a listen address into one to connect to: a wildcard host
// (0.0.0.0, ::, empty) is probed on loopback.
func probeURL(listen, path string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("admin address %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}
