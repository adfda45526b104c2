package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/parcours-sante/parcours/mappings/gen"
)

func runGen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg gen.Config
	var out, asOf string
	fs := newFlags("gen --out DIR [flags]",
		"Generate the four native files of a synthetic population (hospital-stays.csv, city-activity.csv,\n"+
			"prevention-programme.ndjson, liability-claims.csv) and expected.json: the rows, patients and\n"+
			"resources an ingest must give, and the rupture counts (R1, R2, R3, R5, R7) at --as-of.\n"+
			"The same flags give the same bytes. With --source and --rows, write that many rows of one\n"+
			"source only (large files for performance tests, in bounded memory).", stderr)
	fs.StringVar(&out, "out", "", "output directory (created if needed; required)")
	fs.IntVar(&cfg.Patients, "patients", gen.DefaultPatients, "number of patients")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.StringVar(&asOf, "as-of", gen.DefaultAsOf.Format(time.DateOnly), "evaluation date (YYYY-MM-DD): every event lies in the 3 years before it")
	fs.StringVar(&cfg.Source, "source", "", "large-file mode: the one source to write ("+fmt.Sprint(gen.Sources)+")")
	fs.IntVar(&cfg.Rows, "rows", 0, "large-file mode: number of rows of --source")
	fs.IntVar(&cfg.BadRows, "bad-rows", 0, "add that many deliberately bad rows (listed in expected.json with line and column)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if out == "" || fs.NArg() != 0 || (cfg.Source == "") != (cfg.Rows == 0) || cfg.Patients < 1 || cfg.Rows < 0 || cfg.BadRows < 0 {
		fs.Usage()
		return exitError(2)
	}
	if !slices.Contains(gen.Sources, cfg.Source) && cfg.Source != "" {
		fmt.Fprintf(stderr, "unknown source %q: use one of %v\n", cfg.Source, gen.Sources)
		return exitError(2)
	}
	t, err := time.Parse(time.DateOnly, asOf)
	if err != nil {
		fmt.Fprintf(stderr, "--as-of %q is not a date (YYYY-MM-DD)\n", asOf)
		return exitError(2)
	}
	cfg.AsOf = t
	start := time.Now()
	exp, err := gen.GenerateDir(cfg, out)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	rows := 0
	for _, src := range gen.Sources {
		name := gen.FileName(src)
		fc, ok := exp.Files[name]
		if !ok {
			continue
		}
		rows += fc.Rows
		size := int64(0)
		if info, err := os.Stat(filepath.Join(out, name)); err == nil {
			size = info.Size()
		}
		fmt.Fprintf(stdout, "  %-28s %8d rows %10d bytes  %5d unlinked  %3d bad\n", name, fc.Rows, size, fc.UnlinkedRows, fc.BadRows)
	}
	fmt.Fprintf(stdout, "  %-28s %d patients (%d linked by INS-NIR, %d unlinked)\n", gen.ExpectedFile, exp.Patients.Total, exp.Patients.Linked, exp.Patients.Unlinked)
	for _, rule := range []string{"R1", "R2", "R3-breast", "R3-colorectal", "R5", "R7"} {
		if c, ok := exp.Rules[rule]; ok {
			fmt.Fprintf(stdout, "  %-14s %-29s %4d ruptures / %4d (index %d, censored %d, excluded %d)\n", rule, c.Code, c.Ruptures, c.Denominator, c.IndexEvents, c.Censored, c.Excluded)
		}
	}
	rate := float64(rows) / elapsed.Seconds()
	fmt.Fprintf(stdout, "%d rows in %v (%.0f rows/s) into %s\n", rows, elapsed.Round(time.Millisecond), rate, out)
	return nil
}
