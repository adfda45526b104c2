package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestUpdatePrepared: prepare runs once, before fn, with the time fn's
// transaction has; what it prepared is stored as is.
func TestUpdatePrepared(t *testing.T) {
	db := openTest(t, Options{Indexer: identifierIndexer})
	var calls atomic.Int32
	var p *Prepared
	var prepNow time.Time
	var r Resource
	err := db.UpdatePrepared(context.Background(), func(now time.Time) {
		calls.Add(1)
		prepNow = now
		p = db.PrepareCreate("Patient", "a", patient("a", "x"), now)
	}, func(tx *Tx) (err error) {
		if p == nil || !prepNow.Equal(tx.Now()) {
			return fmt.Errorf("fn runs at %v, prepared at %v (%v)", tx.Now(), prepNow, p != nil)
		}
		r, err = tx.PutPrepared(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("prepare ran %d times", n)
	}
	got, err := db.Read("Patient", "a")
	if err != nil || !got.LastUpdated.Equal(r.LastUpdated) || string(got.JSON) != string(r.JSON) {
		t.Errorf("Read = %v, %v; want the prepared version", got, err)
	}
	db.View(func(tx *Tx) error {
		if ids := tx.Lookup("Patient", "identifier", "x"); len(ids) != 1 || ids[0] != "a" {
			t.Errorf("Lookup identifier=x: %v", ids)
		}
		return nil
	})
}

// TestUpdatePreparedOverlap: the writes queued while a batch commits are
// prepared meanwhile, each for its own batch's time; times still grow in
// commit (log) order, and whatever a write prepared for another time than
// its transaction's is noticed by fn.
func TestUpdatePreparedOverlap(t *testing.T) {
	db := openTest(t, Options{Indexer: identifierIndexer})
	const writers = 40
	var mismatched atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			id := fmt.Sprint("p", i)
			var p *Prepared
			var prepNow time.Time
			err := db.UpdatePrepared(context.Background(), func(now time.Time) {
				time.Sleep(time.Duration(i%3) * time.Millisecond) // preparations of uneven length
				p, prepNow = db.PrepareCreate("Patient", id, patient(id, id), now), now
			}, func(tx *Tx) error {
				if i%7 == 3 {
					return errors.New("this writer fails") // its batch runs again
				}
				if !prepNow.Equal(tx.Now()) {
					mismatched.Add(1)
					p = db.PrepareCreate("Patient", id, patient(id, id), tx.Now())
				}
				_, err := tx.PutPrepared(p)
				return err
			})
			if (err != nil) != (i%7 == 3) {
				errs <- fmt.Errorf("writer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The system history lists versions newest first: times must not grow
	// along it, and each version must be stored at its own time.
	p, err := db.History(HistoryQuery{Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := writers - (writers+3)/7
	if len(p.Versions) != want {
		t.Fatalf("%d versions, want %d", len(p.Versions), want)
	}
	for i := 1; i < len(p.Versions); i++ {
		if p.Versions[i].LastUpdated.After(p.Versions[i-1].LastUpdated) {
			t.Errorf("history out of time order: %v after %v", p.Versions[i].LastUpdated, p.Versions[i-1].LastUpdated)
		}
	}
	for _, v := range p.Versions {
		if want := `"lastUpdated":"` + FormatInstant(v.LastUpdated) + `"`; !strings.Contains(string(v.JSON), want) {
			t.Errorf("%s/%s: JSON %s does not hold %s", v.Type, v.ID, v.JSON, want)
		}
	}
	t.Logf("%d writes, %d prepared for another time than their transaction's", writers, mismatched.Load())
}

// TestUpdatePreparedBarrier: a Barrier called once prepare has run (a hook
// such as the Indexer notes, in prepare, what to read again) returns only
// after the write committed.
func TestUpdatePreparedBarrier(t *testing.T) {
	db := openTest(t, Options{Indexer: identifierIndexer})
	release := gate(t, db) // the write below is prepared while the gate commits
	prepared := make(chan struct{})
	hold := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.UpdatePrepared(context.Background(), func(time.Time) { close(prepared) }, func(tx *Tx) error {
			<-hold
			_, err := tx.Put("Patient", "a", patient("a"))
			return err
		})
	}()
	waitQueued(db, 1)
	release()
	<-prepared
	barrier := make(chan error, 1)
	go func() { barrier <- db.Barrier(context.Background()) }()
	select {
	case err := <-barrier:
		t.Fatalf("Barrier returned (%v) before the prepared write committed", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-barrier; err != nil {
		t.Fatal(err)
	}
	if _, err := db.Read("Patient", "a"); err != nil {
		t.Errorf("after the Barrier: %v", err)
	}
}

// TestUpdatePreparedPanic: a prepare that panics leaves its work undone;
// fn still runs.
func TestUpdatePreparedPanic(t *testing.T) {
	db := openTest(t, Options{})
	ran := false
	err := db.UpdatePrepared(context.Background(), func(time.Time) { panic("boom") }, func(tx *Tx) error {
		ran = true
		_, err := tx.Put("Patient", "a", patient("a"))
		return err
	})
	if err != nil || !ran {
		t.Fatalf("UpdatePrepared = %v, fn ran %v", err, ran)
	}
}
