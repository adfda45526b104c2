package audit

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/store"
)

// TestSearch: filters, newest first, paging with the Before cursor.
func TestSearch(t *testing.T) {
	db, _ := openDB(t)
	fill(t, New(db), 30) // record i: seq i+1, i%3 == 2 denied (mutual-claims), patient p-%06x of i%5, sub user-(i%7), i seconds after 10:00
	at := func(i int) time.Time { return time.Date(2026, 11, 22, 10, 0, i, 0, time.UTC) }
	seqs := func(f func(i int) bool) []uint64 {
		var out []uint64
		for i := 29; i >= 0; i-- {
			if f(i) {
				out = append(out, uint64(i+1))
			}
		}
		return out
	}
	tests := []struct {
		name   string
		filter Filter
		want   []uint64
	}{
		{"all", Filter{Count: 100}, seqs(func(int) bool { return true })},
		{"patient", Filter{Patient: "p-000003", Count: 100}, seqs(func(i int) bool { return i%5 == 3 })},
		{"agent by sub", Filter{Agent: "user-4", Count: 100}, seqs(func(i int) bool { return i%7 == 4 })},
		{"agent by actor type", Filter{Agent: "mutual-claims", Count: 100}, seqs(func(i int) bool { return i%3 == 2 })},
		{"purpose", Filter{Purpose: "TREAT", Count: 100}, seqs(func(i int) bool { return i%3 != 2 })},
		{"outcome deny", Filter{Outcome: "deny", Count: 100}, seqs(func(i int) bool { return i%3 == 2 })},
		{"outcome code 0", Filter{Outcome: "0", Count: 100}, seqs(func(i int) bool { return i%3 != 2 })},
		{"period", Filter{From: at(10), To: at(20), Count: 100}, seqs(func(i int) bool { return i >= 10 && i < 20 })},
		{"entity type", Filter{EntityType: "Observation", Count: 100}, seqs(func(int) bool { return true })},
		{"other entity type", Filter{EntityType: "Patient"}, nil},
		{"combined", Filter{Patient: "p-000001", Outcome: "allow", From: at(5)}, seqs(func(i int) bool { return i%5 == 1 && i%3 != 2 && i >= 5 })},
		{"before", Filter{Before: 10, Count: 100}, seqs(func(i int) bool { return i+1 < 10 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, next, total := view3(t, db, tt.filter)
			var got []uint64
			for _, r := range recs {
				got = append(got, r.Seq)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
			if next != 0 {
				t.Errorf("next %d on the only page", next)
			}
			if tt.filter.Before == 0 && total != len(tt.want) {
				t.Errorf("total %d, want %d", total, len(tt.want))
			}
		})
	}

	// Pages of 4 over the denials: 10 records, 3 pages.
	want := seqs(func(i int) bool { return i%3 == 2 })
	var got []uint64
	f := Filter{Outcome: OutcomeDeny, Count: 4}
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		recs, next, total := view3(t, db, f)
		if total != len(want) {
			t.Errorf("page %d: total %d, want %d", pages, total, len(want))
		}
		for _, r := range recs {
			got = append(got, r.Seq)
		}
		if next == 0 {
			break
		}
		f.Before = next
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paged seqs (-want +got):\n%s", diff)
	}
	if recs, _, _ := view3(t, db, Filter{}); len(recs) != DefaultCount && len(recs) != 30 {
		t.Errorf("default count: %d records", len(recs))
	}
}

func view3(t *testing.T, db *store.DB, f Filter) (recs []Record, next uint64, total int) {
	t.Helper()
	if err := db.View(func(tx *store.Tx) error { recs, next, total = Search(tx, f); return nil }); err != nil {
		t.Fatal(err)
	}
	return recs, next, total
}

// TestLabelMatch: label tests compare whole encoded members, never a
// prefix of a value or text inside another value.
func TestLabelMatch(t *testing.T) {
	l := labels(`{"actor_type":"gp","note":"a,\"sub\":\"user-1\"","sub":"user-10"}`)
	tests := []struct {
		k, v string
		want bool
	}{
		{"sub", "user-10", true},
		{"sub", "user-1", false},
		{"actor_type", "gp", true},
		{"actor_type", "g", false},
		{"note", `a,"sub":"user-1"`, true},
		{"missing", "", false},
	}
	for _, tt := range tests {
		if got := newLabelIs(tt.k, tt.v).in(l); got != tt.want {
			t.Errorf("%s=%q: %v, want %v", tt.k, tt.v, got, tt.want)
		}
	}
}
