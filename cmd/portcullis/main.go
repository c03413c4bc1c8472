// Command portcullis is the Portcullis identity proxy. This package only
// parses the command line, loads config, builds the logger, wires the
// packages together and runs the servers; the logic lives in the packages.
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

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Portcullis: SAML single sign-on and SCIM in front of any web app.

Usage:
  portcullis serve --config FILE          run the proxy
  portcullis check-config --config FILE   load and validate everything, then exit
  portcullis metadata --config FILE       print the SP metadata XML
  portcullis keys --out DIR               write sp.key, sp.crt and session.keys
  portcullis demo [--listen ADDR]         run a self-contained demo on 127.0.0.1:8080 (IdP, app, SCIM)
  portcullis sessions revoke --user USER --config FILE
                                          end every session of USER on every replica
  portcullis version                      print the version

Common flags:
  --log-format json|console   (default json)
  --log-level debug|info|warn|error   (default info)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	if cmd == "demo" { // own flags (--listen); see demo.go
		return runDemoCommand(rest, stdout, stderr)
	}
	if cmd == "sessions" { // a subcommand with its own flags; see sessions.go
		return runSessionsCommand(rest, stdout, stderr)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath = fs.String("config", "", "config file")
		outDir     = fs.String("out", "", "output directory (keys)")
		logFormat  = fs.String("log-format", "json", "json or console")
		logLevel   = fs.String("log-level", "info", "debug, info, warn or error")
		orgID      = fs.String("organization", "", "organization id (metadata; default: the default organization)")
	)
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portcullis %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	needConfig := func() bool {
		if *configPath == "" {
			fmt.Fprintf(stderr, "portcullis %s: --config is required\n", cmd)
			return false
		}
		return true
	}
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "portcullis %s\n", version)
		return 0
	case "keys":
		if *outDir == "" {
			fmt.Fprintln(stderr, "portcullis keys: --out is required")
			return 2
		}
		if err := writeKeys(*outDir, stdout); err != nil {
			fmt.Fprintf(stderr, "portcullis keys: %v\n", err)
			return 1
		}
		return 0
	case "check-config", "metadata", "serve":
		if !needConfig() {
			return 2
		}
	default:
		fmt.Fprintf(stderr, "portcullis: unknown command %q\n\n%s", cmd, usage)
		return 2
	}

	log, stopLog, err := newProcessLogger(*logFormat, *logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis: %v\n", err)
		return 2
	}
	defer stopLog() // after serve has drained: flushes the buffered access log

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "check-config":
		if err := checkConfig(ctx, *configPath, log, stdout); err != nil {
			fmt.Fprintf(stderr, "portcullis check-config: %s\n", errorText(err))
			return 1
		}
		return 0
	case "metadata":
		if err := printMetadata(ctx, *configPath, *orgID, log, stdout); err != nil {
			fmt.Fprintf(stderr, "portcullis metadata: %s\n", errorText(err))
			return 1
		}
		return 0
	default: // serve
		if err := serve(ctx, *configPath, log); err != nil {
			fmt.Fprintf(stderr, "portcullis serve: %s\n", errorText(err))
			return 1
		}
		return 0
	}
}

// errorText renders a multi-problem error on its own lines.
func errorText(err error) string {
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		s := ""
		for _, e := range multi.Unwrap() {
			s += "\n  " + e.Error()
		}
		if s != "" {
			return "config has problems:" + s
		}
	}
	return err.Error()
}
