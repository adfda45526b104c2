package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// transactions measures the corpus's Synthea patient bundles posted as
// FHIR transactions by Config.Conns clients at once, back to back, to a
// hub with the policy off, in resources stored per second (the foundation
// issue's goal: 10 000). Each bundle is a patient with its encounters,
// conditions, observations… (~140 entries); posting it again stores it
// again under new server ids.
func (r *runner) transactions(ctx context.Context) error {
	row := Row{Key: RowTransactions, Name: "Synthea transaction bundles, policy off", Unit: "resources/s"}
	dir := filepath.Join(r.cfg.Corpus, "synthea", "smart-on-fhir-generated-sample-data-r4")
	files, _ := filepath.Glob(filepath.Join(dir, "[A-Z]*_*.json"))
	from := dir
	if len(files) == 0 && r.cfg.SyntheaFallback != "" {
		files, _ = filepath.Glob(filepath.Join(r.cfg.SyntheaFallback, "[A-Z]*_*.json"))
		from = r.cfg.SyntheaFallback + " (Synthea corpus absent from " + r.cfg.Corpus + ")"
	}
	if len(files) == 0 {
		row.Skipped = "no Synthea patient bundles in " + dir
		r.add(row)
		return nil
	}
	bodies := make([][]byte, len(files))
	entries := make([]int64, len(files))
	total := int64(0)
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("perf: %w", err)
		}
		var bundle struct {
			Type  string            `json:"type"`
			Entry []json.RawMessage `json:"entry"`
		}
		if err := json.Unmarshal(b, &bundle); err != nil || bundle.Type != "transaction" {
			return fmt.Errorf("perf: %s: not a transaction bundle (%v)", filepath.Base(f), err)
		}
		bodies[i], entries[i] = b, int64(len(bundle.Entry))
		total += entries[i]
	}
	r.logf("Synthea transactions: %d bundles (%d entries), %d clients", len(files), total, r.cfg.Conns)
	h, err := r.startHub(ctx, Setup{})
	if err != nil {
		return err
	}
	defer h.Close()
	var stored atomic.Int64
	var failure atomic.Value
	post := func(n int) error {
		i := n % len(bodies)
		resp, err := do(ctx, http.MethodPost, h.URL, h.Writer, "application/fhir+json", bodies[i])
		if err == nil && resp.status != http.StatusOK {
			err = fmt.Errorf("status %d: %s", resp.status, clip(resp.body))
		}
		if err != nil {
			failure.CompareAndSwap(nil, err.Error())
			return err
		}
		stored.Add(entries[i])
		return nil
	}
	if r.cfg.Warmup > 0 {
		measureFunc(ctx, r.cfg.Conns, 0, r.cfg.Warmup, post)
	}
	stored.Store(0)
	start := time.Now()
	_, p50, p99, calls, errs := measureFunc(ctx, r.cfg.Conns, 0, r.cfg.Duration, post)
	elapsed := time.Since(start)
	row.Rate, row.P50, row.P99, row.Requests, row.Errors = float64(stored.Load())/elapsed.Seconds(), p50, p99, calls, errs
	row.Note = fmt.Sprintf("%d bundles of %d patients of %s (mean %d entries) posted in %v by %d clients; p50/p99 per bundle",
		calls, len(files), from, total/int64(len(files)), elapsed.Round(time.Millisecond), r.cfg.Conns)
	if f, ok := failure.Load().(string); ok {
		row.Note += "; first error: " + f
	}
	r.add(row)
	return nil
}
