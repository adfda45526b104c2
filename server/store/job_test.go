package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// snapshot is what a store shows of itself: current versions, the system
// history and the index, to compare a store before and after a job.
type snapshot struct {
	Current map[string]uint64 // Type/id → version
	History int
	Index   map[string][]string // identifier → ids
}

func snap(t *testing.T, db *DB) snapshot {
	t.Helper()
	s := snapshot{Current: map[string]uint64{}, Index: map[string][]string{}}
	if err := db.View(func(tx *Tx) error {
		for _, typ := range []string{"Patient", "Observation"} {
			for _, id := range tx.IDs(typ) {
				r, _ := tx.Get(typ, id)
				s.Current[typ+"/"+id] = r.Version
			}
		}
		for _, v := range []string{"keep", "a0", "a1", "b0", "b1", "c0"} {
			if ids := tx.Lookup("Patient", "identifier", v); ids != nil {
				s.Index[v] = ids
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	p, err := db.History(HistoryQuery{Count: 1000})
	if err != nil {
		t.Fatal(err)
	}
	s.History = p.Total
	return s
}

// jobWrite creates Patients under job in one commit.
func jobWrite(db *DB, job string, ids ...string) error {
	return db.Update(context.Background(), func(tx *Tx) error {
		if err := tx.SetJob(job); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.Put("Patient", id, patient(id, id)); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestJobRollback(t *testing.T) {
	db := openTest(t, Options{Indexer: identifierIndexer})
	put(t, db, "Patient", "keep", patient("keep", "keep"))
	before := snap(t, db)

	for _, ids := range [][]string{{"a0", "a1"}, {"b0", "b1"}} {
		if err := jobWrite(db, "job-1", ids...); err != nil {
			t.Fatal(err)
		}
	}
	// Another writer, sharing commits with the job, is not part of it.
	put(t, db, "Patient", "other", patient("other"))
	// Another client changes a resource of the job meanwhile.
	put(t, db, "Patient", "a0", patient("a0 changed", "a0"))
	if s := snap(t, db); len(s.Current) != 6 || len(s.Index) != 5 {
		t.Fatalf("during the job: %+v", s)
	}
	var open []string
	db.View(func(tx *Tx) error { open = tx.Jobs(); return nil })
	if diff := cmp.Diff([]string{"job-1"}, open); diff != "" {
		t.Errorf("open jobs (-want +got):\n%s", diff)
	}

	n, err := db.RollbackJob(context.Background(), "job-1")
	if err != nil || n != 4 {
		t.Fatalf("RollbackJob = %d, %v; want 4 purged", n, err)
	}
	after := snap(t, db)
	// What is left is the store before the job, plus the other writer's
	// resource and the version log of a0's change (its resource is gone).
	want := before
	want.Current = map[string]uint64{"Patient/keep": 1, "Patient/other": 1}
	want.History = before.History + 2
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("after the rollback (-want +got):\n%s", diff)
	}
	db.View(func(tx *Tx) error {
		if tx.JobOpen("job-1") || len(tx.Jobs()) != 0 {
			t.Error("the job is still open")
		}
		return nil
	})
	if n, err := db.RollbackJob(context.Background(), "job-1"); n != 0 || err != nil {
		t.Errorf("second RollbackJob = %d, %v", n, err)
	}
}

func TestJobEnd(t *testing.T) {
	db := openTest(t, Options{Indexer: identifierIndexer})
	if err := jobWrite(db, "j", "a0"); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), func(tx *Tx) error {
		if err := tx.SetJob("j"); err != nil {
			return err
		}
		if _, err := tx.Put("Patient", "a1", patient("a1", "a1")); err != nil {
			return err
		}
		return tx.EndJob("j")
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.RollbackJob(context.Background(), "j"); n != 0 || err != nil {
		t.Errorf("RollbackJob of an ended job = %d, %v", n, err)
	}
	if s := snap(t, db); len(s.Current) != 2 {
		t.Errorf("an ended job's resources: %+v", s.Current)
	}
}

// TestJobOnlyCreates: updates and deletes under a job fail (a purge could
// not undo them), and fail only their own write.
func TestJobOnlyCreates(t *testing.T) {
	db := openTest(t, Options{Indexer: identifierIndexer})
	put(t, db, "Patient", "p", patient("p"))
	for name, fn := range map[string]func(tx *Tx) error{
		"update": func(tx *Tx) error { _, err := tx.Put("Patient", "p", patient("p2")); return err },
		"delete": func(tx *Tx) error { _, err := tx.Delete("Patient", "p"); return err },
	} {
		err := db.Update(context.Background(), func(tx *Tx) error {
			if err := tx.SetJob("j"); err != nil {
				return err
			}
			return fn(tx)
		})
		if !errors.Is(err, ErrJobWrite) {
			t.Errorf("%s under a job: %v, want ErrJobWrite", name, err)
		}
	}
	if r, err := db.Read("Patient", "p"); err != nil || r.Version != 1 {
		t.Errorf("Patient/p: version %d, %v", r.Version, err)
	}
}

// TestJobRecovered: a job left open (a crash between its commits) is rolled
// back when the store opens again, a rollback batch per commit.
func TestJobRecovered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parcours.db")
	db, err := Open(path, Options{Indexer: identifierIndexer})
	if err != nil {
		t.Fatal(err)
	}
	put(t, db, "Patient", "keep", patient("keep", "keep"))
	before := snap(t, db)
	var ids []string
	for i := range rollbackBatch + 10 {
		ids = append(ids, fmt.Sprintf("c%d", i))
	}
	if err := jobWrite(db, "crashed", ids...); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	db, err = Open(path, Options{Indexer: identifierIndexer})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t.Logf("%d resources rolled back at open in %v", len(ids), time.Since(start))
	after := snap(t, db)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("after reopening (-before the job +after):\n%s", diff)
	}
	if c := db.Stats().Commits; c != 2 {
		t.Errorf("%d commits at open, want 2 (%d resources, %d per commit)", c, len(ids), rollbackBatch)
	}
}

// TestRemovedHook: Options.Removed hears of every resource a delete or a
// job's rollback removes, with the index entries it had.
func TestRemovedHook(t *testing.T) {
	type heard struct {
		Ref     string
		Entries []IndexEntry
	}
	var got []heard
	db := openTest(t, Options{Indexer: identifierIndexer, Removed: func(typ, id string, entries []IndexEntry) {
		got = append(got, heard{typ + "/" + id, entries})
	}})
	if err := jobWrite(db, "job-1", "a0", "a1"); err != nil {
		t.Fatal(err)
	}
	put(t, db, "Patient", "keep", patient("keep", "keep"))
	if _, err := db.RollbackJob(context.Background(), "job-1"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // deleting a deleted resource removes nothing
		if err := db.Update(context.Background(), func(tx *Tx) error { _, err := tx.Delete("Patient", "keep"); return err }); err != nil {
			t.Fatal(err)
		}
	}
	want := []heard{
		{"Patient/a0", []IndexEntry{{Param: "identifier", Value: "a0"}}},
		{"Patient/a1", []IndexEntry{{Param: "identifier", Value: "a1"}}},
		{"Patient/keep", []IndexEntry{{Param: "identifier", Value: "keep"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
}

// TestBarrier: once Barrier returns, a write function that was running
// when it was called has committed, and a View sees it.
func TestBarrier(t *testing.T) {
	db := openTest(t, Options{Indexer: identifierIndexer})
	running, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Update(context.Background(), func(tx *Tx) error {
			select {
			case <-running:
			default:
				close(running)
			}
			<-release
			_, err := tx.Put("Patient", "p1", patient("p1", "p1"))
			return err
		})
	}()
	<-running
	barrier := make(chan error, 1)
	go func() { barrier <- db.Barrier(context.Background()) }()
	select {
	case err := <-barrier:
		t.Fatalf("Barrier returned (%v) while a write function was still running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-barrier; err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if _, err := tx.Get("Patient", "p1"); err != nil {
			t.Errorf("after the barrier, the write is not visible: %v", err)
		}
		return nil
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
