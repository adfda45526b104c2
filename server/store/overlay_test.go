package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"
)

// codeIndexer indexes every string of the resource's "codes" under "code".
func codeIndexer(_ string, res map[string]any) []IndexEntry {
	var out []IndexEntry
	codes, _ := res["codes"].([]any)
	for _, c := range codes {
		out = append(out, IndexEntry{Param: "code", Value: c.(string)})
	}
	return out
}

// visible is every index key a reader sees (bucket and overlay merged).
func visible(tx *Tx) []string {
	var keys []string
	it := tx.indexIter()
	for k := it.Seek(nil); k != nil; k = it.Next() {
		keys = append(keys, string(k))
	}
	return keys
}

// listed is every key of the indexof lists: what the index must hold.
func listed(tx *Tx) []string {
	var keys []string
	tx.btx.Bucket(bucketIndexOf).ForEach(func(k, list []byte) error {
		typ, id, _ := strings.Cut(string(k), "\x00")
		listBodies(typ, id, list, func(b []byte) { keys = append(keys, string(bodyKey(typ, id, b))) })
		return nil
	})
	slices.Sort(keys)
	return keys
}

// TestOverlay: creates, updates that change entries, deletes and a job
// rolled back, in many commits, with an overlay merged into the bucket
// every ~40 writes, and the file reopened (the overlay rebuilt from
// indexlog) along the way: a reader sees exactly the entries of the
// current resources, and Lookup finds each by its codes.
func TestOverlay(t *testing.T) {
	for _, overlay := range []int{40, 1 << 20} {
		t.Run(fmt.Sprint("overlay=", overlay), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "parcours.db")
			opt := Options{Indexer: codeIndexer, IndexOverlay: overlay}
			db, err := Open(path, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { db.Close() }()
			rng := rand.New(rand.NewPCG(1, 2))
			want := map[string][]string{} // id -> codes of the current version
			check := func(step string) {
				t.Helper()
				db.View(func(tx *Tx) error {
					if diff := cmp.Diff(listed(tx), visible(tx)); diff != "" {
						t.Fatalf("%s: index (-indexof lists +visible):\n%s", step, diff)
					}
					for id, codes := range want {
						for _, c := range codes {
							if !slices.Contains(tx.Lookup("Observation", "code", c), id) {
								t.Fatalf("%s: Lookup code=%s lacks %s", step, c, id)
							}
						}
					}
					return nil
				})
			}
			for round := range 30 {
				err := db.Update(context.Background(), func(tx *Tx) error {
					for range 5 {
						id := fmt.Sprint("o", rng.IntN(40))
						if _, ok := want[id]; ok && rng.IntN(4) == 0 {
							if _, err := tx.Delete("Observation", id); err != nil {
								return err
							}
							delete(want, id)
							continue
						}
						var codes []string
						for range 1 + rng.IntN(3) {
							codes = append(codes, fmt.Sprint("c", rng.IntN(20)))
						}
						slices.Sort(codes)
						codes = slices.Compact(codes)
						list := make([]any, len(codes))
						for i, c := range codes {
							list[i] = c
						}
						if _, err := tx.Upsert("Observation", id, map[string]any{"resourceType": "Observation", "codes": list}); err != nil {
							return err
						}
						want[id] = codes
						// Read back inside the write: the pending writes count.
						if !slices.Contains(tx.Lookup("Observation", "code", codes[0]), id) {
							return fmt.Errorf("Lookup in the write misses %s", id)
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if round%3 == 0 {
					// A job whose creates are rolled back: their entries go.
					job := fmt.Sprint("job", round)
					err := db.Update(context.Background(), func(tx *Tx) error {
						if err := tx.SetJob(job); err != nil {
							return err
						}
						_, err := tx.Put("Observation", fmt.Sprint("job", round), map[string]any{"resourceType": "Observation", "codes": []any{"c1", "job"}})
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
					if _, err := db.RollbackJob(context.Background(), job); err != nil {
						t.Fatal(err)
					}
				}
				check(fmt.Sprint("round ", round))
				if round%10 == 9 {
					db = reopenUnclean(t, db, path, opt)
					check(fmt.Sprint("reopened after round ", round))
				}
			}
		})
	}
}

// reopenUnclean closes db as a crash would leave its file (no clean Close:
// the committer stopped, bbolt closed) and opens it again.
func reopenUnclean(t *testing.T, db *DB, path string, opt Options) *DB {
	t.Helper()
	if err := db.bolt.Close(); err != nil {
		t.Fatal(err)
	}
	db.mu.Lock()
	db.closed = true
	close(db.queue)
	db.mu.Unlock()
	<-db.done
	db, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestOverlaySnapshot: a reader keeps the index of its snapshot, the
// overlay's writes of later commits and a later flush into a segment
// included.
func TestOverlaySnapshot(t *testing.T) {
	db := openTest(t, Options{Indexer: codeIndexer, IndexOverlay: 3})
	put := func(id string, codes ...any) {
		t.Helper()
		if err := db.Update(context.Background(), func(tx *Tx) error {
			_, err := tx.Upsert("Observation", id, map[string]any{"resourceType": "Observation", "codes": codes})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "x")
	started, done, ended := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var before, after []string
	go db.View(func(tx *Tx) error {
		defer close(ended)
		before = tx.Lookup("Observation", "code", "x")
		close(started)
		<-done
		after = tx.Lookup("Observation", "code", "x")
		return nil
	})
	<-started
	put("b", "x")
	put("a", "y")           // a leaves x
	put("c", "x", "z", "w") // flushed into a segment: 3 writes or more
	close(done)
	<-ended
	db.View(func(tx *Tx) error {
		if got := tx.Lookup("Observation", "code", "x"); !slices.Equal(got, []string{"b", "c"}) {
			t.Errorf("now: code=x %v, want [b c]", got)
		}
		return nil
	})
	if !slices.Equal(before, []string{"a"}) || !slices.Equal(after, []string{"a"}) {
		t.Errorf("old snapshot: code=x %v then %v, want [a] both times", before, after)
	}
	if len(db.segs) == 0 || db.ix.ops != 0 {
		t.Errorf("the overlay of 3 writes was not flushed into a segment (%d segments, %d writes in the overlay)", len(db.segs), db.ix.ops)
	}
}

// TestOldIndexLists: an indexof list written with whole index keys (files
// of earlier versions) reads the same, and an update replaces its entries.
func TestOldIndexLists(t *testing.T) {
	db := openTest(t, Options{Indexer: codeIndexer, IndexOverlay: 1})
	put := func(codes ...any) {
		t.Helper()
		if err := db.Update(context.Background(), func(tx *Tx) error {
			_, err := tx.Upsert("Observation", "o1", map[string]any{"resourceType": "Observation", "codes": codes})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "b")
	var before []IndexEntry
	if err := db.bolt.Update(func(btx *bbolt.Tx) error {
		ob := btx.Bucket(bucketIndexOf)
		key := currentKey("Observation", "o1")
		var old []byte
		listBodies("Observation", "o1", ob.Get(key), func(b []byte) {
			k := bodyKey("Observation", "o1", b)
			old = binary.BigEndian.AppendUint32(old, uint32(len(k)))
			old = append(old, k...)
		})
		return ob.Put(key, old)
	}); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		before = tx.Entries("Observation", "o1")
		return nil
	})
	if want := []IndexEntry{{"code", "a"}, {"code", "b"}}; !slices.Equal(before, want) {
		t.Fatalf("entries of an old list %v, want %v", before, want)
	}
	put("b", "c")
	db.View(func(tx *Tx) error {
		if diff := cmp.Diff(listed(tx), visible(tx)); diff != "" {
			t.Errorf("index after updating an old list (-lists +visible):\n%s", diff)
		}
		if got := tx.Lookup("Observation", "code", "a"); len(got) != 0 {
			t.Errorf("code=a still finds %v", got)
		}
		return nil
	})
}

// TestListBodyNamedLikeType: a param named like the resource type is a
// body, not an old whole key.
func TestListBodyNamedLikeType(t *testing.T) {
	db := openTest(t, Options{Indexer: func(string, map[string]any) []IndexEntry {
		return []IndexEntry{{Param: "Patient", Value: "abcdefgh"}}
	}})
	if err := db.Update(context.Background(), func(tx *Tx) error {
		_, err := tx.Put("Patient", "x", map[string]any{"resourceType": "Patient"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if got := tx.Values("Patient", "x", "Patient"); !slices.Equal(got, []string{"abcdefgh"}) {
			t.Errorf("Values = %q", got)
		}
		if got := visible(tx); !slices.Equal(got, []string{"Patient\x00Patient\x00abcdefgh\x00x"}) {
			t.Errorf("index = %q", got)
		}
		return nil
	})
}
