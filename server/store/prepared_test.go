package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// stampIndexer indexes identifiers, and meta.lastUpdated as _lastUpdated
// (its Stamp is the same entry from the commit time alone).
func stampIndexer(typ string, res map[string]any) []IndexEntry {
	entries := identifierIndexer(typ, res)
	if meta, ok := res["meta"].(map[string]any); ok {
		if v, ok := meta["lastUpdated"].(string); ok {
			entries = append(entries, IndexEntry{Param: "_lastUpdated", Value: v})
		}
	}
	return entries
}

func stamp(_ string, now time.Time) []IndexEntry {
	return []IndexEntry{{Param: "_lastUpdated", Value: FormatInstant(now)}}
}

// TestPrepared: a create prepared before its transaction is stored as Put
// stores it: the commit time in the JSON, in the resource map and in the
// index (Options.Stamp), the other entries from the Indexer.
func TestPrepared(t *testing.T) {
	db := openTest(t, Options{Indexer: stampIndexer, Stamp: stamp})
	res := patient("a", "x")
	p := db.PrepareCreate("Patient", "a", res)
	if strings.Contains(string(p.r.JSON), "lastUpdated\":\"2") || p.at <= 0 {
		t.Fatalf("prepared JSON %s holds a time (placeholder at %d)", p.r.JSON, p.at)
	}
	var r Resource
	err := db.Update(context.Background(), func(tx *Tx) (err error) {
		r, err = tx.PutPrepared(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	stampWant := FormatInstant(r.LastUpdated)
	got, err := db.Read("Patient", "a")
	if err != nil || string(got.JSON) != string(r.JSON) || !got.LastUpdated.Equal(r.LastUpdated) {
		t.Fatalf("Read = %v, %v; want the prepared version", got, err)
	}
	if !strings.Contains(string(got.JSON), `"lastUpdated":"`+stampWant+`"`) || strings.Contains(string(got.JSON), placeholder) {
		t.Errorf("stored JSON %s lacks its commit time %s", got.JSON, stampWant)
	}
	if res["meta"].(map[string]any)["lastUpdated"] != stampWant {
		t.Errorf("resource map meta %v, want lastUpdated %s", res["meta"], stampWant)
	}
	// Put of the same content: the same index entries.
	if err := db.Update(context.Background(), func(tx *Tx) error {
		_, err := tx.Put("Patient", "b", patient("b", "y"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if ids := tx.Lookup("Patient", "identifier", "x"); len(ids) != 1 || ids[0] != "a" {
			t.Errorf("Lookup identifier=x: %v", ids)
		}
		if ids := tx.Lookup("Patient", "_lastUpdated", stampWant); len(ids) != 1 || ids[0] != "a" {
			t.Errorf("Lookup _lastUpdated=%s: %v", stampWant, ids)
		}
		a, b := tx.Entries("Patient", "a"), tx.Entries("Patient", "b")
		if len(a) != len(b) || len(a) != 2 {
			t.Errorf("entries of the prepared create %v, of a Put %v", a, b)
		}
		return nil
	})
}

// TestPreparedRetried: a transaction run again (a failing writer batched
// with it) stamps its prepared creates with its new time; times grow in
// commit order and every version holds its own.
func TestPreparedRetried(t *testing.T) {
	db := openTest(t, Options{Indexer: stampIndexer, Stamp: stamp})
	const writers = 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			id := fmt.Sprint("p", i)
			p := db.PrepareCreate("Patient", id, patient(id, id))
			err := db.Update(context.Background(), func(tx *Tx) error {
				if i%7 == 3 {
					return errors.New("this writer fails") // its batch runs again
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
	p, err := db.History(HistoryQuery{Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	if want := writers - (writers+3)/7; len(p.Versions) != want {
		t.Fatalf("%d versions, want %d", len(p.Versions), want)
	}
	for i := 1; i < len(p.Versions); i++ {
		if p.Versions[i].LastUpdated.After(p.Versions[i-1].LastUpdated) {
			t.Errorf("history out of time order: %v after %v", p.Versions[i].LastUpdated, p.Versions[i-1].LastUpdated)
		}
	}
	db.View(func(tx *Tx) error {
		for _, v := range p.Versions {
			at := FormatInstant(v.LastUpdated)
			if !strings.Contains(string(v.JSON), `"lastUpdated":"`+at+`"`) {
				t.Errorf("%s/%s: JSON %s does not hold %s", v.Type, v.ID, v.JSON, at)
			}
			if vals := tx.Values(v.Type, v.ID, "_lastUpdated"); len(vals) != 1 || vals[0] != at {
				t.Errorf("%s/%s indexed at %v, stored at %s", v.Type, v.ID, vals, at)
			}
		}
		return nil
	})
}
