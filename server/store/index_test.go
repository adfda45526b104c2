package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestIndexFrom also checks Values.
func TestIndexFrom(t *testing.T) {
	idx := func(typ string, res map[string]any) []IndexEntry {
		return []IndexEntry{{Param: "n", Value: res["v"].(string)}, {Param: "other", Value: "x"}}
	}
	db, err := Open(filepath.Join(t.TempDir(), "db"), Options{Indexer: idx})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(context.Background(), func(tx *Tx) error {
		for id, v := range map[string]string{"a": "10", "b": "20", "c": "30", "d": "20"} {
			if _, err := tx.Put("T", id, map[string]any{"v": v}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from  string
		limit int
		want  []string
	}{
		{"", 10, []string{"10 a", "20 b", "20 d", "30 c"}},
		{"20", 10, []string{"20 b", "20 d", "30 c"}},
		{"15", 1, []string{"20 b"}},
		{"31", 10, nil},
	}
	db.View(func(tx *Tx) error {
		if diff := cmp.Diff([]string{"20"}, tx.Values("T", "b", "n")); diff != "" {
			t.Errorf("Values(T, b, n) (-want +got):\n%s", diff)
		}
		if got := tx.Values("T", "b", "nothing"); got != nil {
			t.Errorf("Values of an absent param: %v", got)
		}
		return nil
	})
	for _, tt := range tests {
		var got []string
		db.View(func(tx *Tx) error {
			tx.IndexFrom("T", "n", tt.from, func(value, id string) bool {
				got = append(got, value+" "+id)
				return len(got) < tt.limit
			})
			return nil
		})
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("IndexFrom(%q) (-want +got):\n%s", tt.from, diff)
		}
	}
}

func TestReindexStore(t *testing.T) {
	v1 := func(typ string, res map[string]any) []IndexEntry {
		return []IndexEntry{{Param: "old", Value: res["name"].(string)}}
	}
	v2 := func(typ string, res map[string]any) []IndexEntry {
		return []IndexEntry{{Param: "new", Value: res["name"].(string)}}
	}
	db, err := Open(filepath.Join(t.TempDir(), "db"), Options{Indexer: v1, MaxBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const n = reindexBatch + 5 // more than one batch
	if err := db.Update(ctx, func(tx *Tx) error {
		for range n {
			if _, err := tx.Put("T", NewID(), map[string]any{"name": "x"}); err != nil {
				return err
			}
		}
		if _, err := tx.Put("U", "u1", map[string]any{"name": "y"}); err != nil {
			return err
		}
		if _, err := tx.Put("U", "u2", map[string]any{"name": "z"}); err != nil {
			return err
		}
		_, err := tx.Delete("U", "u2")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Reindex(ctx, v2)
	if err != nil || got != n+1 {
		t.Fatalf("Reindex = %d, %v; want %d resources", got, err, n+1)
	}
	db.View(func(tx *Tx) error {
		if k := len(tx.Lookup("T", "new", "x")); k != n {
			t.Errorf("%d T indexed new=x, want %d", k, n)
		}
		if k := len(tx.Lookup("T", "old", "x")); k != 0 {
			t.Errorf("%d T still indexed old=x", k)
		}
		if diff := cmp.Diff([]IndexEntry{{Param: "new", Value: "y"}}, tx.Entries("U", "u1")); diff != "" {
			t.Errorf("U/u1 entries (-want +got):\n%s", diff)
		}
		if e := tx.Entries("U", "u2"); e != nil || tx.Has("U", "new", "z") {
			t.Errorf("deleted U/u2 indexed: %v", e)
		}
		return nil
	})
	// A second run changes nothing.
	if got, err := db.Reindex(ctx, v2); err != nil || got != n+1 {
		t.Fatalf("second Reindex = %d, %v", got, err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Reindex(ctx2, v2); err == nil {
		t.Error("Reindex with a cancelled context: no error")
	}
}
