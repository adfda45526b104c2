package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server"
	"github.com/parcours-sante/parcours/server/store"
)

// TestReindex writes resources with an old indexer (the foundation's:
// identifiers only), then rebuilds the indexes with the command: the search
// entries appear, the stale ones go, a deleted resource stays unindexed, and
// a second run finds the same entries.
func TestReindex(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "parcours.db")
	old := func(typ string, res map[string]any) []store.IndexEntry {
		return []store.IndexEntry{{Param: "identifier:value", Value: "stale"}}
	}
	db, err := store.Open(path, store.Options{Indexer: old})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *store.Tx) error {
		for id, family := range map[string]string{"p1": "Lefèvre", "p2": "Martin", "gone": "Durand"} {
			if _, err := tx.Put("Patient", id, map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": family}}}); err != nil {
				return err
			}
		}
		if _, err := tx.Put("Observation", "o1", map[string]any{"resourceType": "Observation", "status": "final",
			"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "4548-4"}}}, "subject": map[string]any{"reference": "Patient/p1"}}); err != nil {
			return err
		}
		_, err := tx.Delete("Patient", "gone")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for run := 1; run <= 2; run++ {
		var out, errs bytes.Buffer
		if err := runReindexArgs(t, []string{"reindex", "--data", dir}, &out, &errs); err != nil {
			t.Fatalf("run %d: %v: %s", run, err, errs.String())
		}
		if !strings.HasPrefix(out.String(), "reindexed 3 resources") {
			t.Errorf("run %d: output %q, want 3 resources reindexed", run, out.String())
		}
	}

	db, err = store.Open(path, store.Options{Indexer: server.Indexer("")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *store.Tx) error {
		for _, tt := range []struct {
			typ, param, value string
			want              []string
		}{
			{"Patient", "family", "lefevre", []string{"p1"}},
			{"Patient", "family", "durand", nil},
			{"Observation", "code", "4548-4|http://loinc.org", []string{"o1"}},
			{"Observation", "subject", "Patient/p1", []string{"o1"}},
			{"Observation", "_patient", "Patient/p1", []string{"o1"}}, // access metadata
			{"Patient", "identifier:value", "stale", nil},
		} {
			if diff := cmp.Diff(tt.want, tx.Lookup(tt.typ, tt.param, tt.value)); diff != "" {
				t.Errorf("%s %s=%s (-want +got):\n%s", tt.typ, tt.param, tt.value, diff)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestReindexUsage(t *testing.T) {
	var out, errs bytes.Buffer
	if err := runReindexArgs(t, []string{"reindex", "--data", t.TempDir()}, &out, &errs); err == nil || !strings.Contains(err.Error(), "no hub data") {
		t.Errorf("reindex of an empty directory: %v, want no hub data", err)
	}
	if err := runReindexArgs(t, []string{"reindex", "extra"}, &out, &errs); err == nil {
		t.Error("reindex with an argument: no error")
	}
}

func runReindexArgs(t *testing.T, args []string, out, errs *bytes.Buffer) error {
	t.Helper()
	return runReindex(context.Background(), args[1:], out, errs)
}
