// Command parcours runs the Parcours FHIR hub and its tools.
//
// It is a thin main: it parses flags into a Config, wires the packages, runs
// and closes. See `parcours --help`.
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

	"github.com/parcours-sante/parcours/server"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

const usage = `parcours — FHIR R4 hub for care pathways

Usage:
  parcours serve [--addr 127.0.0.1:8080] [--data ./data] [--dev]   run the hub
  parcours demo  [--addr 127.0.0.1:8080] [--data DIR]                run a dev hub with demo data
  parcours ingest --url URL --token T --source NAME FILE [--mode partial]  upload a native file
  parcours gen   --out DIR [--patients 1000] [--seed 1] [--as-of DATE]  generate native demo files and expected counts
  parcours reindex --data DIR                                         rebuild the search and access indexes (hub stopped)
  parcours audit verify|export|replay --data DIR …                   check, export, replay the decision log
  parcours token --data DIR --actor TYPE --sub ID --purposes P1,P2  mint a developer token
  parcours load  --url URL [--conns 16] [--duration 10s] …           load-test a FHIR server
  parcours perf  [--out FILE] [--skip-node] [--skip-opa] | --soak 60s  performance report next to peers, or the soak
  parcours conformance --url URL [--token T] [--purpose P]           run the REST conformance suite
  parcours help                                                      this text

Run 'parcours <command> --help' for the flags of a command.
`

func main() {
	server.TuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "parcours:", err)
		}
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(1)
	}
}

// exitError is a deliberate exit status.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError(2)
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "load":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "perf":
		return runPerf(ctx, args[1:], stdout, stderr)
	case "conformance":
		return runConformance(ctx, args[1:], stdout, stderr)
	case "reindex":
		return runReindex(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "ingest":
		return runIngest(ctx, args[1:], stdout, stderr)
	case "gen":
		return runGen(ctx, args[1:], stdout, stderr)
	case "token":
		return runToken(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return exitError(2)
	}
}

// newFlags returns a FlagSet whose --help prints the command's usage to out.
// parseInterspersed parses flags given before and after the positional
// arguments (parcours ingest … FILE --mode partial), which flag.Parse
// alone stops at, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		rest := fs.Args()
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func newFlags(name, synopsis string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: parcours %s\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}
