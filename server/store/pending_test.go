package store

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	berrors "go.etcd.io/bbolt/errors"
)

// TestPendingIndexReads: index writes are applied later (sorted), but a
// transaction reads its own index writes as if they were applied at once.
func TestPendingIndexReads(t *testing.T) {
	db := openTest(t, Options{Indexer: identifierIndexer})
	put(t, db, "Patient", "old", patient("old", "x"))
	type seen struct{ X, Y []string }
	look := func(tx *Tx) seen {
		var s seen
		s.X = tx.Lookup("Patient", "identifier", "x")
		if tx.Has("Patient", "identifier", "y") {
			tx.IndexScan("Patient", "identifier", "y", func(_, id string) bool { s.Y = append(s.Y, id); return true })
		}
		return s
	}
	var got []seen
	err := db.Update(context.Background(), func(tx *Tx) error {
		got = got[:0]
		got = append(got, look(tx))
		if _, err := tx.Put("Patient", "a", patient("a", "x")); err != nil {
			return err
		}
		got = append(got, look(tx))
		if _, err := tx.Put("Patient", "a", patient("a", "y")); err != nil {
			return err
		}
		if _, err := tx.Put("Patient", "old", patient("old", "y")); err != nil {
			return err
		}
		got = append(got, look(tx))
		if _, err := tx.Delete("Patient", "old"); err != nil {
			return err
		}
		got = append(got, look(tx))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error { got = append(got, look(tx)); return nil })
	want := []seen{
		{X: []string{"old"}},
		{X: []string{"a", "old"}},
		{Y: []string{"a", "old"}},
		{Y: []string{"a"}},
		{Y: []string{"a"}}, // committed
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lookups (-want +got):\n%s", diff)
	}
}

// TestIndexKeyTooLarge: an index entry bbolt cannot hold fails its own
// write only, even when its writes are applied after it returned; a
// create prepared on its own goroutine (PrepareCreate) as well.
func TestIndexKeyTooLarge(t *testing.T) {
	t.Run("Put", func(t *testing.T) {
		testIndexKeyTooLarge(t, func(db *DB, tx *Tx, id string, res map[string]any) error {
			_, err := tx.Put("Patient", id, res)
			return err
		})
	})
	t.Run("PutPrepared", func(t *testing.T) {
		testIndexKeyTooLarge(t, func(db *DB, tx *Tx, id string, res map[string]any) error {
			_, err := tx.PutPrepared(db.PrepareCreate("Patient", id, res))
			return err
		})
	})
}

func testIndexKeyTooLarge(t *testing.T, put func(db *DB, tx *Tx, id string, res map[string]any) error) {
	db := openTest(t, Options{Indexer: identifierIndexer})
	release := gate(t, db)
	errs := make(chan error, 2)
	for i, value := range []string{strings.Repeat("v", 40000), "fine"} {
		go func() {
			errs <- db.Update(context.Background(), func(tx *Tx) error {
				return put(db, tx, fmt.Sprint("p", i), patient("p", value))
			})
		}()
	}
	waitQueued(db, 2)
	release()
	var tooLarge, ok int
	for range 2 {
		switch err := <-errs; err {
		case nil:
			ok++
		case berrors.ErrKeyTooLarge:
			tooLarge++
		default:
			t.Errorf("write: %v", err)
		}
	}
	if tooLarge != 1 || ok != 1 {
		t.Errorf("%d writes failed with ErrKeyTooLarge and %d succeeded, want 1 and 1", tooLarge, ok)
	}
	if _, err := db.Read("Patient", "p1"); err != nil {
		t.Errorf("the other write of the batch: %v", err)
	}
	if _, err := db.Read("Patient", "p0"); err == nil {
		t.Error("the write with the oversized key was stored")
	}
}
