package store

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"
)

// TestSegments: an index that grows by creates while older resources are
// updated (their entries removed from every level) and deleted, with an
// overlay flushed every ~30 writes, so that segments are written and
// merged, the file reopened without a clean close along the way, and at
// one point turned into a file of the earlier layout (every entry in the
// index bucket, no segment): after every commit a reader sees exactly the
// entries of the current resources, Lookup and IndexScan agree with them,
// and a reader that began before keeps its snapshot across flushes.
func TestSegments(t *testing.T) {
	t.Run("segMax=default", testSegments)
	t.Run("segMax=150", func(t *testing.T) {
		defer func(m int) { segMax = m }(segMax)
		segMax = 150
		testSegments(t)
	})
}

func testSegments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parcours.db")
	opt := Options{Indexer: codeIndexer, IndexOverlay: 30}
	db, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[string][]string{}
	next := 0
	check := func(step string) {
		t.Helper()
		db.View(func(tx *Tx) error {
			if diff := cmp.Diff(listed(tx), visible(tx)); diff != "" {
				t.Fatalf("%s: index (-indexof lists +visible):\n%s", step, diff)
			}
			byCode := map[string][]string{}
			for id, codes := range want {
				for _, c := range codes {
					byCode[c] = append(byCode[c], id)
				}
			}
			for c, ids := range byCode {
				got := tx.Lookup("Observation", "code", c)
				slices.Sort(got)
				slices.Sort(ids)
				if !slices.Equal(got, ids) {
					t.Fatalf("%s: Lookup code=%s = %v, want %v", step, c, got, ids)
				}
			}
			// A code removed everywhere: nothing, through every level.
			if got := tx.Lookup("Observation", "code", "c-none"); len(got) != 0 {
				t.Fatalf("%s: Lookup of an absent code = %v", step, got)
			}
			n := 0
			tx.IndexScan("Observation", "code", "d", func(value, id string) bool {
				if !slices.Contains(want[id], value) {
					t.Fatalf("%s: IndexScan d: %s %s not current", step, value, id)
				}
				n++
				return true
			})
			for _, codes := range want {
				if len(codes) > 1 {
					n--
				}
			}
			if n != 0 {
				t.Fatalf("%s: IndexScan d off by %d", step, n)
			}
			return nil
		})
	}
	reopen := func() { t.Helper(); db = reopenUnclean(t, db, path, opt) }
	var maxSegs, merges, flushes int
	for round := range 400 {
		var before []string
		db.View(func(tx *Tx) error { before = visible(tx); return nil })
		hold, release, held := make(chan struct{}), make(chan struct{}), make(chan []string)
		go db.View(func(tx *Tx) error {
			close(hold)
			<-release
			held <- visible(tx)
			return nil
		})
		<-hold
		segsBefore := len(db.segs)
		err := db.Update(context.Background(), func(tx *Tx) error {
			for range 4 {
				id := fmt.Sprint("o", next)
				if len(want) > 0 && rng.IntN(3) == 0 {
					id = fmt.Sprint("o", rng.IntN(next))
					if _, ok := want[id]; ok && rng.IntN(3) == 0 {
						if _, err := tx.Delete("Observation", id); err != nil {
							return err
						}
						delete(want, id)
						continue
					}
				} else {
					next++
				}
				codes := []string{fmt.Sprint("c", rng.IntN(50)), fmt.Sprint("d", rng.IntN(1000))}
				if _, err := tx.Upsert("Observation", id, map[string]any{"resourceType": "Observation", "codes": []any{codes[0], codes[1]}}); err != nil {
					return err
				}
				want[id] = codes
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		close(release)
		if got := <-held; !slices.Equal(got, before) {
			t.Fatalf("round %d: a reader's snapshot changed under it (%d keys, then %d)", round, len(before), len(got))
		}
		if db.ix.ops == 0 { // flushed: one segment more, unless segments merged
			flushes++
			if len(db.segs) <= segsBefore {
				merges++
			}
		}
		maxSegs = max(maxSegs, len(db.segs))
		for _, s := range db.segs[:max(len(db.segs)-1, 0)] { // the newest is a flush, not a merge
			if s.n > segMax {
				t.Fatalf("round %d: a segment of %d entries, over segMax %d", round, s.n, segMax)
			}
		}
		check(fmt.Sprint("round ", round))
		switch {
		case round == 150:
			toEarlierLayout(t, db)
			reopen()
			if len(db.segs) != 0 {
				t.Fatalf("%d segments after the move to the earlier layout", len(db.segs))
			}
			check("in the earlier layout")
		case round%50 == 49:
			reopen()
			check(fmt.Sprint("reopened after round ", round))
		}
	}
	if maxSegs < 3 || merges < 10 {
		t.Errorf("segments not exercised: at most %d segments, %d flushes merging segments", maxSegs, merges)
	}
	t.Logf("%d flushes, %d with merges, at most %d segments", flushes, merges, maxSegs)
}

// toEarlierLayout rewrites the index as the versions before segments left
// it: every visible key in the index bucket, no segment, no overlay.
func toEarlierLayout(t *testing.T, db *DB) {
	t.Helper()
	var keys []string
	db.View(func(tx *Tx) error { keys = visible(tx); return nil })
	err := db.bolt.Update(func(btx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketSST, bucketIndexLog, bucketIndex} {
			if err := btx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := btx.CreateBucket(bucketIndexLog); err != nil {
			return err
		}
		ib, err := btx.CreateBucket(bucketIndex)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := ib.Put([]byte(k), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSSTBlocks: a segment of many blocks (long shared prefixes, removals
// among them) reads back entry by entry, and a seek lands right from any
// key: before the first, on every key, between keys, after the last.
func TestSSTBlocks(t *testing.T) {
	db := openTest(t, Options{})
	var keys [][]byte
	for i := range 20000 {
		keys = append(keys, fmt.Appendf(nil, "Observation\x00code\x00http://loinc.org|%05d\x00id-%d", i*2, i))
	}
	err := db.bolt.Update(func(btx *bbolt.Tx) error {
		root := btx.Bucket(bucketSST)
		run := &ixRun{keys: keys}
		for i := range keys {
			run.put = append(run.put, i%7 != 0)
		}
		s, err := writeSegment(root, newIxIter([]*ixRun{run}, nil, nil), nil)
		if err != nil {
			return err
		}
		if s.n != len(keys) {
			t.Errorf("segment of %d entries, want %d", s.n, len(keys))
		}
		b := root.Bucket(s.name)
		blocks := 0
		b.ForEach(func(k, v []byte) error {
			if blockKey(k, v) {
				blocks++
			}
			return nil
		})
		if blocks < 10 {
			t.Errorf("%d blocks: too few to test seeks across blocks", blocks)
		}
		it := newSSTIter(b)
		n := 0
		for k, put := it.seek(nil); k != nil; k, put = it.next() {
			if !bytes.Equal(k, keys[n]) || put != (n%7 != 0) {
				t.Fatalf("entry %d: %q %v, want %q %v", n, k, put, keys[n], n%7 != 0)
			}
			n++
		}
		if n != len(keys) {
			t.Fatalf("read %d entries, want %d", n, len(keys))
		}
		for i, k := range keys {
			if got, _ := it.seek(k); !bytes.Equal(got, k) {
				t.Fatalf("seek %q = %q", k, got)
			}
			between := append(bytes.Clone(k[:len(k)-len(fmt.Sprint(i))]), 0) // below "id-<i>"... but after the previous key
			if got, _ := it.seek(between); !bytes.Equal(got, k) {
				t.Fatalf("seek between, before %q = %q", k, got)
			}
		}
		if got, _ := it.seek([]byte("A")); !bytes.Equal(got, keys[0]) {
			t.Fatalf("seek before the first = %q", got)
		}
		if got, _ := it.seek([]byte("Z")); got != nil {
			t.Fatalf("seek after the last = %q", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadersUnderCommits: readers that start while many small commits
// publish views (only keptViews of them are kept: a reader that misses
// its view begins again) each see a consistent index: every resource
// their snapshot holds, found by its code, and nothing more.
func TestReadersUnderCommits(t *testing.T) {
	db := openTest(t, Options{Indexer: codeIndexer, IndexOverlay: 50})
	const writes = 400
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(done)
		for i := range writes {
			if err := db.Update(context.Background(), func(tx *Tx) error {
				_, err := tx.Put("Observation", fmt.Sprint("o", i), map[string]any{"resourceType": "Observation", "codes": []any{"all"}})
				return err
			}); err != nil {
				errs <- err
				return
			}
		}
	}()
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		err := db.View(func(tx *Tx) error {
			found := len(tx.Lookup("Observation", "code", "all"))
			n := 0
			c := tx.btx.Bucket(bucketCurrent).Cursor()
			for k, _ := c.Seek([]byte("Observation\x00")); k != nil && bytes.HasPrefix(k, []byte("Observation\x00")); k, _ = c.Next() {
				n++
			}
			if found != n {
				return fmt.Errorf("snapshot of %d resources, index finds %d", n, found)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("%d reads during %d commits", reads, writes)
}

// TestSegmentsUnderChurn: a fixed set of resources updated over and over
// (each update removes two entries and writes two), with segments capped
// small: segments that no longer merge drain into the index bucket, so
// that what the segments hold stays bounded while the index stays right.
// (Found by review: before the drain, 3 000 rounds left 250 segments
// holding 30 000 entries for 180 live ones.)
func TestSegmentsUnderChurn(t *testing.T) {
	defer func(m int) { segMax = m }(segMax)
	segMax = 200
	db := openTest(t, Options{Indexer: codeIndexer, IndexOverlay: 30})
	most := 0
	for round := range 3000 {
		err := db.Update(context.Background(), func(tx *Tx) error {
			for i := range 5 {
				_, err := tx.Upsert("Observation", fmt.Sprint("o", (round*5+i)%90), map[string]any{"resourceType": "Observation", "codes": []any{fmt.Sprint("c", round), "d"}})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, s := range db.segs {
			total += s.n
		}
		most = max(most, total)
		if len(db.segs) > 10 || total > 2000 {
			t.Fatalf("round %d: %d segments holding %d entries (180 live)", round, len(db.segs), total)
		}
		if round%250 == 249 {
			db.View(func(tx *Tx) error {
				if diff := cmp.Diff(listed(tx), visible(tx)); diff != "" {
					t.Fatalf("round %d: index (-indexof lists +visible):\n%s", round, diff)
				}
				return nil
			})
		}
	}
	t.Logf("at most %d entries in segments", most)
}
