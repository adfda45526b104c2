package store

import (
	"context"
	"testing"
)

// TestSnapshot: read transactions without a commit between them share
// their Snapshot, a commit makes it grow, and a write transaction has none.
func TestSnapshot(t *testing.T) {
	db := openTest(t, Options{})
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
	if got := snapshot(); got <= first {
		t.Errorf("after a commit: snapshot %d, want more than %d", got, first)
	}
}
