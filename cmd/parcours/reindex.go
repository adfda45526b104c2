package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/server"
	"github.com/parcours-sante/parcours/server/store"
)

// runReindex runs `parcours reindex --data DIR`: it recomputes the index
// entries (search parameters and access metadata) of every current resource
// of a stopped hub, after an upgrade that changed what is indexed.
func runReindex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var data, baseURL string
	fs := newFlags("reindex --data DIR [--base-url URL]",
		"Rebuild the search and access indexes of every current resource, offline (stop the hub\n"+
			"first). Run it after an upgrade that changes the indexed search parameters; it is safe\n"+
			"to interrupt and to run again (unchanged entries are not rewritten).", stderr)
	fs.StringVar(&data, "data", "./data", "data directory of the hub (holds parcours.db)")
	fs.StringVar(&baseURL, "base-url", "", "the hub's public FHIR base URL (as given to serve): absolute references to it are indexed as relative ones")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	path := filepath.Join(data, "parcours.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no hub data in %s: %w", data, err)
	}
	db, err := store.Open(path, store.Options{Indexer: server.Indexer(baseURL)})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout") {
			return fmt.Errorf("open %s: %w (is the hub running? stop it first)", path, err)
		}
		return err
	}
	start := time.Now()
	n, err := db.Reindex(ctx, nil)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reindex %s: %w (after %d resources; run it again to finish)", path, err, n)
	}
	elapsed := time.Since(start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(n) / elapsed.Seconds()
	}
	fmt.Fprintf(stdout, "reindexed %d resources in %s (%.0f resources/s)\n", n, elapsed.Round(time.Millisecond), rate)
	return nil
}
