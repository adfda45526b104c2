package store

import (
	"context"
	"errors"
	"testing"

	"go.etcd.io/bbolt"
)

// TestAllocsTrimmed shows that bbolt's free-page list keeps an entry per
// live page it handed out (so the map grows with what is written), that
// the committer keeps it under allocsKeep plus one transaction's pages,
// and that the file stays consistent (bbolt's own check, rollbacks in
// between, a reopen).
func TestAllocsTrimmed(t *testing.T) {
	defer func(n int) { allocsKeep = n }(allocsKeep)
	allocsKeep = 64
	path := t.TempDir() + "/allocs.db"
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := allocsOf(db.bolt); !ok {
		t.Fatal("bbolt's free-page list has not the layout trimAllocs expects (go.etcd.io/bbolt upgraded?)")
	}
	ctx := context.Background()
	val := make([]byte, 2000) // an audit record's size
	var most, appended int
	over := false
	for i := range 400 {
		if err := db.Update(ctx, func(tx *Tx) error {
			for range 20 {
				if _, err := tx.Append("trim", val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		appended += 20
		if i%50 == 0 { // a write that fails after writing is rolled back
			err := db.Update(ctx, func(tx *Tx) error {
				_, _ = tx.Append("trim", val)
				return errors.New("refused")
			})
			if err == nil {
				t.Fatal("the failing write was committed")
			}
		}
		db.bolt.View(func(*bbolt.Tx) error { return nil }) // let pages be released
		m, _ := allocsOf(db.bolt)
		most = max(most, m.Len())
		over = over || m.Len() > allocsKeep
	}
	if !over {
		t.Fatalf("the allocs map never exceeded %d entries (at most %d): nothing to trim, the test shows nothing", allocsKeep, most)
	}
	if most > allocsKeep+100 {
		t.Fatalf("the allocs map reached %d entries, want at most %d plus one transaction's pages", most, allocsKeep)
	}
	check := func(db *DB) {
		t.Helper()
		n := 0
		if err := db.View(func(tx *Tx) error {
			tx.Scan("trim", 1, func(uint64, []byte) bool { n++; return true })
			for err := range tx.btx.Check() {
				t.Errorf("bbolt check: %v", err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != appended {
			t.Errorf("%d records read back, want %d", n, appended)
		}
	}
	check(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db)
}
