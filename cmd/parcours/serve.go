package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/parcours-sante/parcours/server"
	"github.com/parcours-sante/parcours/server/auth"
)

type serveConfig struct {
	Addr    string
	Data    string
	Dev     bool
	BaseURL string
	MaxBody int64
	// MaxIngest bounds native files to $ingest (spooled to disk).
	MaxIngest int64
	JWKS      string
	Issuer    string
	Audience  string
	// insecure turns authentication and policy off (tests only: no flag).
	insecure bool
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address (host:port; port 0 picks a free one)")
	fs.StringVar(&c.Data, "data", "./data", "data directory (the bbolt file parcours.db lives there)")
	fs.StringVar(&c.BaseURL, "base-url", "", "public FHIR base URL for links (default: derived from the request Host)")
	fs.Int64Var(&c.MaxBody, "max-body", 64<<20, "maximum request body in bytes, native files to $ingest excepted (larger bodies answer 413)")
	fs.Int64Var(&c.MaxIngest, "max-ingest", server.DefaultMaxIngest, "maximum native file to $ingest in bytes (spooled to the data directory, streamed; larger files answer 413)")
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
		DataDir: cfg.Data, BaseURL: cfg.BaseURL, MaxBody: cfg.MaxBody, MaxIngest: cfg.MaxIngest,
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
