package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/parcours-sante/parcours/server"
	"github.com/parcours-sante/parcours/server/auth"
)

type serveConfig struct {
	Addr     string
	Data     string
	Dev      bool
	BaseURL  string
	MaxBody  int64
	JWKS     string
	Issuer   string
	Audience string
	// insecure turns authentication and policy off (tests only: no flag).
	insecure bool
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address (host:port; port 0 picks a free one)")
	fs.StringVar(&c.Data, "data", "./data", "data directory (the bbolt file parcours.db lives there)")
	fs.StringVar(&c.BaseURL, "base-url", "", "public FHIR base URL for links (default: derived from the request Host)")
	fs.Int64Var(&c.MaxBody, "max-body", 64<<20, "maximum request body in bytes (larger bodies answer 413)")
	fs.StringVar(&c.JWKS, "jwks", "", "JWKS file with the RS256/ES256 public keys of accepted tokens")
	fs.StringVar(&c.Issuer, "issuer", "", "required token issuer (default in --dev: "+auth.DevIssuer+")")
	fs.StringVar(&c.Audience, "audience", "", "required token audience (default in --dev: "+auth.DevAudience+")")
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	fs := newFlags("serve [flags]", "Run the Parcours FHIR R4 hub.", stderr)
	cfg.flags(fs)
	fs.BoolVar(&cfg.Dev, "dev", false, "developer mode (local conveniences; never in production)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serve(ctx, cfg, stdout, stderr, nil)
}

// serve runs the hub until ctx ends. ready, if set, receives the bound
// address once the listener accepts connections (tests use :0).
func serve(ctx context.Context, cfg serveConfig, stdout, stderr io.Writer, ready chan<- string) error {
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	s, err := server.New(server.Config{
		DataDir: cfg.Data, BaseURL: cfg.BaseURL, MaxBody: cfg.MaxBody,
		Dev: cfg.Dev, Version: version, Logger: logger,
		JWKSFile: cfg.JWKS, Issuer: cfg.Issuer, Audience: cfg.Audience,
		Insecure: cfg.insecure,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	if cfg.Dev {
		if err := writeDevTokens(cfg.Data, stdout); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	addr := ln.Addr().String()
	fmt.Fprintf(stdout, "Parcours listening on http://%s/fhir (data: %s)\n", addr, cfg.Data)
	if ready != nil {
		ready <- addr
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// writeDevTokens writes dev-tokens.json (one token per actor type, valid
// 24 hours) and says where.
func writeDevTokens(dataDir string, stdout io.Writer) error {
	secret, err := auth.DevSecret(dataDir, false)
	if err != nil {
		return err
	}
	if _, err := auth.WriteDevTokens(dataDir, secret, 24*time.Hour, ""); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Developer mode: one token per actor type in %s (valid 24 h)\n", filepath.Join(dataDir, auth.DevTokensFile))
	return nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	var demoDir string
	fs := newFlags("demo [flags]", "Run a developer hub on a fresh data directory loaded with the demo data (testdata/native).", stderr)
	cfg.flags(fs)
	fs.StringVar(&demoDir, "demo-data", "testdata/native", "directory of the four native demo files")
	fs.Lookup("data").DefValue = "a new temporary directory"
	cfg.Data = ""
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Data == "" {
		dir, err := os.MkdirTemp("", "parcours-demo-")
		if err != nil {
			return err
		}
		cfg.Data = dir
	}
	cfg.Dev = true
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, cfg, stdout, stderr, ready) }()
	select {
	case err := <-errc:
		return err
	case addr := <-ready:
		if err := loadDemo(ctx, "http://"+addr+"/fhir", cfg.Data, demoDir, stdout); err != nil {
			fmt.Fprintf(stderr, "demo data not loaded: %v\n", err)
		}
		printTry(stdout, addr, cfg.Data)
	}
	return <-errc
}

// demoFiles are the native demo files, who sends each and for what.
var demoFiles = []struct{ source, actor, purpose, contentType, file string }{
	{"hospital-stays", "hospital-it", "HOPERAT", "text/csv", "hospital-stays.csv"},
	{"city-activity", "gp", "TREAT", "text/csv", "city-activity.csv"},
	{"prevention-programme", "programme-operator", "prevention-programme-delivery", "application/x-ndjson", "prevention-programme.ndjson"},
	{"liability-claims", "liability-risk-manager", "liability-claim-handling", "text/csv", "liability-claims.csv"},
}

// loadDemo uploads the four native demo files through $ingest, each with
// the dev token of the actor that sends it.
func loadDemo(ctx context.Context, base, dataDir, demoDir string, stdout io.Writer) error {
	b, err := os.ReadFile(filepath.Join(dataDir, auth.DevTokensFile))
	if err != nil {
		return err
	}
	var tokens map[string]string
	if err := json.Unmarshal(b, &tokens); err != nil {
		return err
	}
	for _, f := range demoFiles {
		body, err := os.ReadFile(filepath.Join(demoDir, f.file))
		if err != nil {
			return fmt.Errorf("%w (run the demo from the repository root, or pass --demo-data)", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/$ingest?source="+f.source, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tokens[f.actor])
		req.Header.Set("X-Purpose-Of-Use", f.purpose)
		req.Header.Set("Content-Type", f.contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var oo struct {
			Issue []struct{ Diagnostics string } `json:"issue"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&oo)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(oo.Issue) == 0 {
			return fmt.Errorf("$ingest %s: status %d", f.source, resp.StatusCode)
		}
		fmt.Fprintf(stdout, "  loaded %-21s as %-22s %s\n", f.file, f.actor, oo.Issue[0].Diagnostics)
	}
	return nil
}

func printTry(stdout io.Writer, addr, dataDir string) {
	fmt.Fprintf(stdout, `
Try it (tokens in %[2]s/%[3]s, one per actor type):
  B=http://%[1]s/fhir
  tok() { python3 -c "import json,sys; print(json.load(open('%[2]s/%[3]s'))[sys.argv[1]])" "$1"; }
  # the hospital's clinician sees the patients the hospital recorded (TREAT)
  curl -s "$B/Patient?_count=3" -H "Authorization: Bearer $(tok hospital-clinician)" -H 'X-Purpose-Of-Use: TREAT'
  # a mutual asking for per-patient data, or for pricing, is refused (and alerted)
  curl -s "$B/Patient" -H "Authorization: Bearer $(tok mutual-claims)" -H 'X-Purpose-Of-Use: underwriting-pricing'
  # a researcher gets pseudonymised data
  curl -s "$B/Patient?_count=1" -H "Authorization: Bearer $(tok researcher)" -H 'X-Purpose-Of-Use: HRESCH'
  # the shared vocabulary
  curl -s "$B/ConceptMap/\$translate?system=https://smt.esante.gouv.fr/terminologie-cim-10&code=I50.9" -H "Authorization: Bearer $(tok gp)" -H 'X-Purpose-Of-Use: TREAT'
  curl -s http://%[1]s/metrics | grep parcours_policy
`, addr, dataDir, auth.DevTokensFile)
}
