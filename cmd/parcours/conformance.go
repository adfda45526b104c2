package main

import (
	"context"
	"fmt"
	"io"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/conformance/suite"
)

func runConformance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg suite.Config
	var noValidate bool
	fs := newFlags("conformance --url URL [flags]",
		"Run the REST conformance suite against a FHIR R4 server and print a pass/fail table;\n"+
			"exit status 1 when a check fails. The suite writes test resources (deleted at the\n"+
			"end, kept in history): never point it at a server holding real health data.", stderr)
	fs.StringVar(&cfg.URL, "url", "", "FHIR base URL, e.g. http://127.0.0.1:8080/fhir (required)")
	fs.StringVar(&cfg.Token, "token", "", "bearer token, if the server needs one")
	fs.StringVar(&cfg.Purpose, "purpose", "", "X-Purpose-Of-Use header value, if the server needs one")
	fs.BoolVar(&noValidate, "no-validate", false, "do not check the returned resources against the R4 JSON schema")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.URL == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	if !noValidate {
		v, err := conformance.NewValidator()
		if err != nil {
			return err
		}
		cfg.Validate = v.Validate
	}
	rep, err := suite.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Table())
	if rep.Failed > 0 {
		return exitError(1)
	}
	return nil
}
