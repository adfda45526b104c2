package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/parcours-sante/parcours/conformance/load"
)

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg load.Config
	fs := newFlags("load --url URL [flags]", "Load-test a FHIR R4 server and report req/s, p50, p99.", stderr)
	fs.StringVar(&cfg.URL, "url", "", "FHIR base URL, e.g. http://127.0.0.1:8080/fhir (required)")
	fs.StringVar(&cfg.Token, "token", "", "bearer token, if the server needs one")
	fs.StringVar(&cfg.Purpose, "purpose", "", "X-Purpose-Of-Use header value, if the server needs one")
	fs.IntVar(&cfg.Conns, "conns", 16, "concurrent connections")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration")
	fs.StringVar(&cfg.Scenario, "scenario", "read", "read | search | create | update | mixed (70% read, 20% search, 5% create, 5% update)")
	fs.IntVar(&cfg.Seed, "seed", 200, "Patients created before measuring")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.URL == "" {
		fs.Usage()
		return exitError(2)
	}
	rep, err := load.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.String())
	return nil
}
