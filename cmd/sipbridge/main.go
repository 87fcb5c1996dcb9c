// Command sipbridge is a SIP trunk endpoint that answers calls with a
// speech-to-speech AI (OpenAI / Azure OpenAI gpt-realtime) and keeps the
// caller connected when a realtime region fails.
//
//	sipbridge [serve] [-config FILE]  run the server (no -config: the embedded
//	                                  default with two local simulated regions)
//	sipbridge check [-config FILE] [-dial]
//	                                  validate a config and the files it names, and exit;
//	                                  -dial also completes a handshake in every region
//	sipbridge health [-ready]         probe a running server's /livez or /readyz
//	sipbridge call SIP-URI            place a test call, say a question, hear the answer
//	sipbridge report [-format text|csv|json] [-png FILE] RECORDS...
//	                                  tables from call records (report.go)
//	sipbridge version                 print the version
//	sipbridge help                    list the subcommands and flags
//
// SIGTERM drains (new INVITEs and OPTIONS get 503, active calls finish, then
// exit); SIGINT hangs up every call and exits now; SIGHUP reloads the config
// file (new calls use it, calls in progress keep theirs; a bad file is
// refused and the running one kept).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usage lists the subcommands; -h, -help and help print it.
const usage = `Usage:
  sipbridge [serve] [-config FILE]  run the server; without -config, the embedded
                                    default: SIP on 127.0.0.1:5060 and two local
                                    simulated realtime regions (no keys needed)
  sipbridge check [-config FILE] [-dial]
                                    validate a config (keys, values, the files it
                                    names) and exit: 0 valid, 1 not; -dial also
                                    opens a session in every region and completes
                                    the handshake (no audio), naming each failure
  sipbridge health [-ready] [-addr HOST:PORT]
                                    probe a running server's /livez (or /readyz):
                                    exit 0 healthy, 1 not (the image's HEALTHCHECK)
  sipbridge call SIP-URI [-wav FILE] [-rec FILE]
                                    place a test call, say a question, print what
                                    happened and save what was heard; exit 0 when
                                    an answer was heard
  sipbridge report [-format text|csv|json] [-png FILE] RECORDS...
                                    per hour and region (or -by trunk): sessions,
                                    responses, failures, swaps, pauses, tokens,
                                    cost, and the worst hour's ids for the provider
  sipbridge version                 print the version
  sipbridge help                    print this help

SIGTERM drains (new calls get 503, active calls finish); SIGINT hangs up and exits;
SIGHUP reloads the config file (calls in progress keep theirs).
Config reference: configs/README.md.

Flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "health" { // health.go: its own flags
		return health(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "call" { // call.go: its own flags
		return callCmd(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "report" { // report.go: its own flags
		return report(args[1:], stdout, stderr)
	}
	cmd := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "check", "version", "serve":
			cmd, args = args[0], args[1:]
		case "help":
			args = []string{"-h"}
		}
	}
	fs := flag.NewFlagSet("sipbridge "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (YAML); empty runs the embedded local default")
	dial := fs.Bool("dial", false, "check only: also open a session in every region and complete the handshake (no audio)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout) // asked for: help is output, not an error
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sipbridge: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "sipbridge", version)
		return 0
	case "check":
		return check(*configPath, *dial, stdout, stderr)
	}
	if *dial {
		fmt.Fprintln(stderr, "sipbridge: -dial goes with check")
		return 2
	}

	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "sipbridge: %v\n", err)
		return 1
	}
	ctx, stop := signalContexts()
	defer stop.cancel()
	if err := serve(ctx, stop, *configPath, cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "sipbridge: %v\n", err)
		return 1
	}
	return 0
}

// shutdown carries the two ways the process is asked to stop, and the
// request to reload the configuration.
type shutdown struct {
	drain  <-chan struct{} // SIGTERM: stop taking calls, let active ones finish
	now    <-chan struct{} // SIGINT (or a second SIGTERM): hang up and exit
	reload <-chan struct{} // SIGHUP: reload the config file (reload.go)
	cancel func()
}

func signalContexts() (context.Context, shutdown) {
	ctx, cancel := context.WithCancel(context.Background())
	drain := make(chan struct{})
	now := make(chan struct{})
	reload := make(chan struct{}, 1)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		defer signal.Stop(sigs)
		draining := false
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				if s == syscall.SIGHUP {
					select { // several HUPs while one reload runs: one more reload
					case reload <- struct{}{}:
					default:
					}
					continue
				}
				if s == syscall.SIGTERM && !draining {
					draining = true
					close(drain)
					continue
				}
				close(now)
				return
			}
		}
	}()
	return ctx, shutdown{drain: drain, now: now, reload: reload, cancel: cancel}
}
