package store

import (
	"context"
	"path/filepath"
	"testing"
)

// TestSnapshot: read transactions without a commit between them share
// their Snapshot, a commit that writes a resource makes it grow, one that
// only appends to a log or stores a blob (the audit log) keeps it, and a
// write transaction has none.
func TestSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parcours.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	snapshot := func() (s uint64) {
		t.Helper()
		if err := db.View(func(tx *Tx) error { s = tx.Snapshot(); return nil }); err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := snapshot()
	if first == 0 || snapshot() != first {
		t.Fatalf("snapshots %d, %d without a commit: want the same, not 0", first, snapshot())
	}
	var inWrite uint64 = 1
	if err := db.Update(ctx, func(tx *Tx) error {
		inWrite = tx.Snapshot()
		_, err := tx.Put("Patient", "a", map[string]any{"resourceType": "Patient"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inWrite != 0 {
		t.Errorf("write transaction: snapshot %d, want 0", inWrite)
	}
	second := snapshot()
	if second <= first {
		t.Errorf("after a commit: snapshot %d, want more than %d", second, first)
	}
	if err := db.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Append("decisions", []byte("a record")); err != nil {
			return err
		}
		return tx.PutBlob("decisions-head", "head", []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(); got != second {
		t.Errorf("after a log-only commit: snapshot %d, want %d kept", got, second)
	}
	for name, write := range map[string]func(tx *Tx) error{
		"update": func(tx *Tx) error {
			_, err := tx.Put("Patient", "a", map[string]any{"resourceType": "Patient", "active": true})
			return err
		},
		"delete": func(tx *Tx) error { _, err := tx.Delete("Patient", "a"); return err },
	} {
		before := snapshot()
		if err := db.Update(ctx, write); err != nil {
			t.Fatal(err)
		}
		if got := snapshot(); got <= before {
			t.Errorf("after %s: snapshot %d, want more than %d", name, got, before)
		}
	}
	last := snapshot()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	var again uint64
	if err := reopened.View(func(tx *Tx) error { again = tx.Snapshot(); return nil }); err != nil {
		t.Fatal(err)
	}
	if again != last {
		t.Errorf("after reopening: snapshot %d, want %d", again, last)
	}
}
