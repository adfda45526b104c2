package store

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ref names a version in diffs: "Patient/a/3 D".
func ref(r Resource) string { return fmt.Sprintf("%s/%s/%d %c", r.Type, r.ID, r.Version, r.Op) }

func refs(rs []Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = ref(r)
	}
	return out
}

// historyFixture writes, one commit each under the frozen clock (commit n at
// at(n)):
//
//	0 Patient/a 1 C   2 Observation/o 1 C   4 Patient/a 3 D          6 Medication/x 1 C
//	1 Patient/b 1 C   3 Patient/a 2 U       5 MedicationRequest/m 1 C  7 Patient/a 4 C
func historyFixture(t *testing.T) *DB {
	t.Helper()
	db := openTest(t, Options{Now: frozen})
	put(t, db, "Patient", "a", patient("a1"))
	put(t, db, "Patient", "b", patient("b1"))
	put(t, db, "Observation", "o", map[string]any{"resourceType": "Observation", "status": "final"})
	put(t, db, "Patient", "a", patient("a2"))
	if _, err := del(t, db, "Patient", "a"); err != nil {
		t.Fatal(err)
	}
	put(t, db, "MedicationRequest", "m", map[string]any{"resourceType": "MedicationRequest", "status": "active"})
	put(t, db, "Medication", "x", map[string]any{"resourceType": "Medication"})
	put(t, db, "Patient", "a", patient("a4"))
	return db
}

// checkVersions asserts that history returned each version as stored (the
// same Resource as Tx.Version, JSON included), newest first.
func checkVersions(t *testing.T, db *DB, vs []Resource) {
	t.Helper()
	for i, v := range vs {
		var stored Resource
		if err := db.View(func(tx *Tx) (err error) { stored, err = tx.Version(v.Type, v.ID, v.Version); return err }); err != nil {
			t.Errorf("%s: %v", ref(v), err)
			continue
		}
		if diff := cmp.Diff(stored, v); diff != "" {
			t.Errorf("%s differs from the stored version (-want +got):\n%s", ref(v), diff)
		}
		checkJSON(t, v)
		if i > 0 && v.LastUpdated.After(vs[i-1].LastUpdated) {
			t.Errorf("%s (%v) listed after %s (%v): not newest first", ref(v), v.LastUpdated, ref(vs[i-1]), vs[i-1].LastUpdated)
		}
	}
}

func TestHistory(t *testing.T) {
	db := historyFixture(t)
	tests := []struct {
		name string
		q    HistoryQuery
		want []string
	}{
		{"instance", HistoryQuery{Type: "Patient", ID: "a"}, []string{"Patient/a/4 C", "Patient/a/3 D", "Patient/a/2 U", "Patient/a/1 C"}},
		{"instance with one version", HistoryQuery{Type: "Patient", ID: "b"}, []string{"Patient/b/1 C"}},
		{"instance unknown", HistoryQuery{Type: "Patient", ID: "zz"}, nil},
		{"instance under another type", HistoryQuery{Type: "Observation", ID: "a"}, nil},
		{"type", HistoryQuery{Type: "Patient"}, []string{"Patient/a/4 C", "Patient/a/3 D", "Patient/a/2 U", "Patient/b/1 C", "Patient/a/1 C"}},
		{"type that prefixes another", HistoryQuery{Type: "Medication"}, []string{"Medication/x/1 C"}},
		{"type prefixed by another", HistoryQuery{Type: "MedicationRequest"}, []string{"MedicationRequest/m/1 C"}},
		{"type without versions", HistoryQuery{Type: "Encounter"}, nil},
		{"system", HistoryQuery{}, []string{
			"Patient/a/4 C", "Medication/x/1 C", "MedicationRequest/m/1 C", "Patient/a/3 D",
			"Patient/a/2 U", "Observation/o/1 C", "Patient/b/1 C", "Patient/a/1 C",
		}},
		{"system since (inclusive)", HistoryQuery{Since: at(3)}, []string{
			"Patient/a/4 C", "Medication/x/1 C", "MedicationRequest/m/1 C", "Patient/a/3 D", "Patient/a/2 U",
		}},
		{"type since", HistoryQuery{Type: "Patient", Since: at(4)}, []string{"Patient/a/4 C", "Patient/a/3 D"}},
		{"instance since", HistoryQuery{Type: "Patient", ID: "a", Since: at(3)}, []string{"Patient/a/4 C", "Patient/a/3 D", "Patient/a/2 U"}},
		{"since between commits", HistoryQuery{Type: "Patient", ID: "a", Since: at(6).Add(500)}, []string{"Patient/a/4 C"}},
		{"since the future", HistoryQuery{Since: at(8)}, nil},
		{"since the first commit", HistoryQuery{Type: "Patient", ID: "b", Since: at(0)}, []string{"Patient/b/1 C"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Count = 100
			p, err := db.History(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, refs(p.Versions), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("versions (-want +got):\n%s", diff)
			}
			if p.Total != len(tt.want) || p.Next != 0 {
				t.Errorf("Total %d, Next %d; want %d, 0", p.Total, p.Next, len(tt.want))
			}
			checkVersions(t, db, p.Versions)
		})
	}
}

// pagingFixture writes 48 versions, one commit each: Patient/p updated
// (deleted at commit 12 and re-created), Patient/q<n> created, Observation/o<n>
// updated.
func pagingFixture(t *testing.T) *DB {
	t.Helper()
	db := openTest(t, Options{Now: frozen})
	for i := range 48 {
		switch {
		case i == 12:
			if _, err := del(t, db, "Patient", "p"); err != nil {
				t.Fatal(err)
			}
		case i%4 < 2:
			put(t, db, "Patient", "p", patient(fmt.Sprint(i)))
		case i%4 == 2:
			put(t, db, "Patient", fmt.Sprintf("q%02d", i), patient(fmt.Sprint(i)))
		default:
			put(t, db, "Observation", fmt.Sprintf("o%d", i%3), map[string]any{"resourceType": "Observation", "status": fmt.Sprint(i)})
		}
	}
	return db
}

var pagingQueries = []struct {
	name string
	q    HistoryQuery
}{
	{"instance", HistoryQuery{Type: "Patient", ID: "p"}},
	{"type", HistoryQuery{Type: "Patient"}},
	{"other type", HistoryQuery{Type: "Observation"}},
	{"system", HistoryQuery{}},
	{"instance since", HistoryQuery{Type: "Patient", ID: "p", Since: at(17)}},
	{"type since", HistoryQuery{Type: "Patient", Since: at(17)}},
	{"system since", HistoryQuery{Since: at(17)}},
}

// all returns every version the query matches, in one page.
func all(t *testing.T, db *DB, q HistoryQuery) HistoryPage {
	t.Helper()
	q.Before, q.Count = 0, 1000
	p, err := db.History(q)
	if err != nil {
		t.Fatal(err)
	}
	if p.Next != 0 || len(p.Versions) != p.Total {
		t.Fatalf("one page of 1000: %d versions, Total %d, Next %d", len(p.Versions), p.Total, p.Next)
	}
	return p
}

// walk fetches every page of q from the newest and returns them joined,
// checking the shape of each page. between, if not nil, runs after each page
// but the last, with the cursor the page was fetched with.
func walk(t *testing.T, db *DB, q HistoryQuery, between func(before uint64, p HistoryPage)) []Resource {
	t.Helper()
	var got []Resource
	q.Before = 0
	for page := 0; ; page++ {
		p, err := db.History(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Versions) > q.Count {
			t.Fatalf("page %d has %d versions, more than Count %d", page, len(p.Versions), q.Count)
		}
		if p.Next != 0 && len(p.Versions) != q.Count {
			t.Errorf("page %d (not the last) has %d versions, want Count %d", page, len(p.Versions), q.Count)
		}
		if p.Next == 0 && len(p.Versions) == 0 && page > 0 {
			t.Errorf("page %d is empty: the previous page should have had no Next", page)
		}
		got = append(got, p.Versions...)
		if p.Next == 0 {
			return got
		}
		if page > 1000 {
			t.Fatal("more than 1000 pages: the cursor does not move")
		}
		if between != nil {
			between(q.Before, p)
		}
		q.Before = p.Next
	}
}

func TestHistoryPaging(t *testing.T) {
	db := pagingFixture(t)
	for _, pq := range pagingQueries {
		full := all(t, db, pq.q)
		if full.Total < 5 {
			t.Fatalf("%s: fixture too small (%d versions)", pq.name, full.Total)
		}
		for _, count := range []int{1, 2, 3, 7, full.Total - 1, full.Total, full.Total + 1} {
			t.Run(fmt.Sprintf("%s/count=%d", pq.name, count), func(t *testing.T) {
				q := pq.q
				q.Count = count
				var totals []int
				got := walk(t, db, q, nil)
				if diff := cmp.Diff(refs(full.Versions), refs(got)); diff != "" {
					t.Errorf("pages joined (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(full.Versions, got); diff != "" {
					t.Errorf("pages joined, full versions (-want +got):\n%s", diff)
				}
				// Every page reports the total of the whole query.
				q.Before = 0
				for {
					p, err := db.History(q)
					if err != nil {
						t.Fatal(err)
					}
					totals = append(totals, p.Total)
					if p.Next == 0 {
						break
					}
					q.Before = p.Next
				}
				wantPages := (full.Total + count - 1) / count
				if len(totals) != wantPages {
					t.Errorf("%d pages, want %d", len(totals), wantPages)
				}
				for i, total := range totals {
					if total != full.Total {
						t.Errorf("page %d Total %d, want %d", i, total, full.Total)
					}
				}
			})
		}
	}
}

// TestHistoryCursorUnderWrites: writes that arrive between pages neither
// shift the pages still to come nor change a page fetched again with the
// same cursor.
func TestHistoryCursorUnderWrites(t *testing.T) {
	for _, pq := range pagingQueries {
		for _, count := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/count=%d", pq.name, count), func(t *testing.T) {
				db := pagingFixture(t)
				full := all(t, db, pq.q)
				q := pq.q
				q.Count = count
				writes := 0
				got := walk(t, db, q, func(before uint64, page HistoryPage) {
					// Versions every query matches: Patient/p, a new
					// Patient, Observation/o0.
					put(t, db, "Patient", "p", patient(fmt.Sprint("late", writes)))
					put(t, db, "Patient", fmt.Sprintf("late%02d", writes), patient("late"))
					put(t, db, "Observation", "o0", map[string]any{"resourceType": "Observation", "status": "late"})
					writes++
					if before == 0 {
						return // the first page is "the newest": it moves, by definition
					}
					again := q
					again.Before = before
					p, err := db.History(again)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(refs(page.Versions), refs(p.Versions)); diff != "" {
						t.Errorf("page at cursor %d fetched again after writes (-want +got):\n%s", before, diff)
					}
					if p.Next != page.Next {
						t.Errorf("page at cursor %d fetched again after writes: Next %d, want %d", before, p.Next, page.Next)
					}
				})
				if diff := cmp.Diff(refs(full.Versions), refs(got)); diff != "" {
					t.Errorf("pages fetched while writing, joined (-want +got):\n%s", diff)
				}
				if writes == 0 {
					t.Fatal("no write happened between pages")
				}
				// A new walk starts at the new writes.
				now := all(t, db, pq.q)
				if now.Total <= full.Total {
					t.Fatalf("after %d rounds of writes Total is %d, want more than %d", writes, now.Total, full.Total)
				}
				if diff := cmp.Diff(refs(full.Versions), refs(now.Versions[now.Total-full.Total:])); diff != "" {
					t.Errorf("older versions after the writes (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestHistoryCountZero(t *testing.T) {
	db := pagingFixture(t)
	for _, pq := range pagingQueries {
		full := all(t, db, pq.q)
		for _, count := range []int{0, -1} {
			for _, before := range []uint64{0, 5} {
				t.Run(fmt.Sprintf("%s/count=%d/before=%d", pq.name, count, before), func(t *testing.T) {
					q := pq.q
					q.Count, q.Before = count, before
					p, err := db.History(q)
					if err != nil {
						t.Fatal(err)
					}
					want := HistoryPage{Total: full.Total}
					if diff := cmp.Diff(want, p, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("(-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}
