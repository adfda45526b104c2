package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
)

// t0 is the frozen clock of most tests: every commit then gets t0 plus one
// microsecond per earlier commit, so times are exact.
var t0 = time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)

func frozen() time.Time { return t0 }

// at is the commit time of the n-th commit (from 0) under the frozen clock.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Microsecond) }

var errBoom = errors.New("boom")

// openTest opens a store in a fresh directory, closed when the test ends.
func openTest(t testing.TB, opt Options) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "parcours.db"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

// patient is a minimal Patient; each identifier value becomes an identifier
// (indexed by identifierIndexer).
func patient(family string, identifiers ...string) map[string]any {
	res := map[string]any{
		"resourceType": "Patient",
		"active":       true,
		"name":         []any{map[string]any{"family": family}},
	}
	if len(identifiers) > 0 {
		list := make([]any, len(identifiers))
		for i, v := range identifiers {
			list[i] = map[string]any{"system": "urn:test", "value": v}
		}
		res["identifier"] = list
	}
	return res
}

func identifierIndexer(_ string, res map[string]any) []IndexEntry {
	list, _ := res["identifier"].([]any)
	var out []IndexEntry
	for _, x := range list {
		ident, _ := x.(map[string]any)
		if v, _ := ident["value"].(string); v != "" {
			out = append(out, IndexEntry{Param: "identifier", Value: v})
		}
	}
	return out
}

func put(t testing.TB, db *DB, typ, id string, res map[string]any) Resource {
	t.Helper()
	var r Resource
	err := db.Update(context.Background(), func(tx *Tx) (err error) {
		r, err = tx.Put(typ, id, res)
		return err
	})
	if err != nil {
		t.Fatalf("put %s/%s: %v", typ, id, err)
	}
	return r
}

func del(t testing.TB, db *DB, typ, id string) (Resource, error) {
	t.Helper()
	var r Resource
	err := db.Update(context.Background(), func(tx *Tx) (err error) {
		r, err = tx.Delete(typ, id)
		return err
	})
	return r, err
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	m, err := fhirjson.Decode(b)
	if err != nil {
		t.Fatalf("stored JSON does not decode: %v\n%s", err, b)
	}
	return m
}

func family(t testing.TB, r Resource) string {
	t.Helper()
	names, _ := decode(t, r.JSON)["name"].([]any)
	if len(names) == 0 {
		t.Fatalf("%s/%s/%d has no name: %s", r.Type, r.ID, r.Version, r.JSON)
	}
	f, _ := names[0].(map[string]any)["family"].(string)
	return f
}

// noJSON compares Resources on everything but the JSON bytes.
var noJSON = cmpopts.IgnoreFields(Resource{}, "JSON")

// checkJSON asserts the invariant between a version and its JSON: a tombstone
// has none, any other version carries its id, versionId and lastUpdated.
func checkJSON(t testing.TB, r Resource) {
	t.Helper()
	if r.Deleted() {
		if r.JSON != nil {
			t.Errorf("tombstone %s/%s/%d has JSON %s", r.Type, r.ID, r.Version, r.JSON)
		}
		return
	}
	m := decode(t, r.JSON)
	meta, _ := m["meta"].(map[string]any)
	got := []any{m["id"], meta["versionId"], meta["lastUpdated"]}
	want := []any{r.ID, fmt.Sprint(r.Version), FormatInstant(r.LastUpdated)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s/%s/%d: id, meta.versionId, meta.lastUpdated mismatch (-want +got):\n%s", r.Type, r.ID, r.Version, diff)
	}
}

func TestPut(t *testing.T) {
	tests := []struct {
		name   string
		bodies []map[string]any // successive puts of Patient/p1
	}{
		{"create", []map[string]any{patient("One")}},
		{"create then update", []map[string]any{patient("One"), patient("Two")}},
		{"three versions", []map[string]any{patient("One"), patient("Two"), patient("Three")}},
		{"body id replaced by the logical id", []map[string]any{{"resourceType": "Patient", "id": "other"}}},
		{"meta kept, versionId and lastUpdated replaced", []map[string]any{{
			"resourceType": "Patient",
			"meta": map[string]any{
				"profile":     []any{"http://example.org/StructureDefinition/p"},
				"versionId":   "42",
				"lastUpdated": "1999-01-01T00:00:00Z",
			},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{Now: frozen})
			for i, body := range tt.bodies {
				want := fhirjson.Clone(body).(map[string]any)
				version := uint64(i + 1)
				op := OpUpdate
				if i == 0 {
					op = OpCreate
				}
				meta, _ := want["meta"].(map[string]any)
				if meta == nil {
					meta = map[string]any{}
				}
				meta["versionId"] = fmt.Sprint(version)
				meta["lastUpdated"] = FormatInstant(at(i))
				want["meta"], want["id"] = meta, "p1"

				got := put(t, db, "Patient", "p1", body)
				wantHdr := Resource{Type: "Patient", ID: "p1", Version: version, LastUpdated: at(i), Op: op}
				if diff := cmp.Diff(wantHdr, got, noJSON); diff != "" {
					t.Errorf("put %d returned (-want +got):\n%s", version, diff)
				}
				if diff := cmp.Diff(want, decode(t, got.JSON)); diff != "" {
					t.Errorf("put %d JSON (-want +got):\n%s", version, diff)
				}
				read, err := db.Read("Patient", "p1")
				if err != nil {
					t.Fatalf("read after put %d: %v", version, err)
				}
				if diff := cmp.Diff(got, read); diff != "" {
					t.Errorf("read after put %d differs from what Put returned (-want +got):\n%s", version, diff)
				}
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	db := openTest(t, Options{})
	put(t, db, "Patient", "p1", patient("One"))
	tests := []struct {
		name string
		do   func() error
	}{
		{"Read unknown id", func() error { _, err := db.Read("Patient", "nope"); return err }},
		{"Read known id under another type", func() error { _, err := db.Read("Observation", "p1"); return err }},
		{"VRead unknown id", func() error { _, err := db.VRead("Patient", "nope", 1); return err }},
		{"VRead version 0", func() error { _, err := db.VRead("Patient", "p1", 0); return err }},
		{"VRead future version", func() error { _, err := db.VRead("Patient", "p1", 2); return err }},
		{"Tx.Get unknown id", func() error {
			return db.View(func(tx *Tx) error { _, err := tx.Get("Patient", "nope"); return err })
		}},
		{"Delete unknown id", func() error { _, err := del(t, db, "Patient", "nope"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
			if got := outcome.StatusOf(err); got != http.StatusNotFound {
				t.Errorf("status %d, want 404", got)
			}
		})
	}
	// Nothing above wrote anything: the store holds p1 version 1 only.
	p, err := db.History(HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 1 {
		t.Errorf("system history total %d after failed lookups and deletes, want 1", p.Total)
	}
}

func TestDelete(t *testing.T) {
	type step struct {
		del  bool
		body map[string]any // put when !del
	}
	tests := []struct {
		name        string
		steps       []step // on Patient/p1, one commit each
		wantLast    Resource
		wantLastErr error
		wantRead    Resource // header; JSON checked by checkJSON
		wantReadErr error
		wantTotal   int // instance history
	}{
		{
			name:        "delete writes a tombstone",
			steps:       []step{{body: patient("One")}, {body: patient("Two")}, {del: true}},
			wantLast:    Resource{Type: "Patient", ID: "p1", Version: 3, LastUpdated: at(2), Op: OpDelete},
			wantRead:    Resource{Type: "Patient", ID: "p1", Version: 3, LastUpdated: at(2), Op: OpDelete},
			wantReadErr: ErrGone,
			wantTotal:   3,
		},
		{
			name:        "deleting again changes nothing",
			steps:       []step{{body: patient("One")}, {del: true}, {del: true}, {del: true}},
			wantLast:    Resource{Type: "Patient", ID: "p1", Version: 2, LastUpdated: at(1), Op: OpDelete},
			wantRead:    Resource{Type: "Patient", ID: "p1", Version: 2, LastUpdated: at(1), Op: OpDelete},
			wantReadErr: ErrGone,
			wantTotal:   2,
		},
		{
			name:      "put after delete creates a new version",
			steps:     []step{{body: patient("One")}, {del: true}, {body: patient("Again")}},
			wantLast:  Resource{Type: "Patient", ID: "p1", Version: 3, LastUpdated: at(2), Op: OpCreate},
			wantRead:  Resource{Type: "Patient", ID: "p1", Version: 3, LastUpdated: at(2), Op: OpCreate},
			wantTotal: 3,
		},
		{
			name:      "update after re-create",
			steps:     []step{{body: patient("One")}, {del: true}, {body: patient("Again")}, {body: patient("More")}},
			wantLast:  Resource{Type: "Patient", ID: "p1", Version: 4, LastUpdated: at(3), Op: OpUpdate},
			wantRead:  Resource{Type: "Patient", ID: "p1", Version: 4, LastUpdated: at(3), Op: OpUpdate},
			wantTotal: 4,
		},
		{
			name:        "delete of a resource that never existed",
			steps:       []step{{del: true}},
			wantLastErr: ErrNotFound,
			wantReadErr: ErrNotFound,
			wantTotal:   0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{Now: frozen})
			var last Resource
			var lastErr error
			for _, s := range tt.steps {
				if s.del {
					last, lastErr = del(t, db, "Patient", "p1")
				} else {
					last, lastErr = put(t, db, "Patient", "p1", s.body), nil
				}
			}
			if !errors.Is(lastErr, tt.wantLastErr) {
				t.Errorf("last step error %v, want %v", lastErr, tt.wantLastErr)
			}
			if diff := cmp.Diff(tt.wantLast, last, noJSON); diff != "" {
				t.Errorf("last step (-want +got):\n%s", diff)
			}
			read, err := db.Read("Patient", "p1")
			if !errors.Is(err, tt.wantReadErr) {
				t.Errorf("Read error %v, want %v", err, tt.wantReadErr)
			}
			if diff := cmp.Diff(tt.wantRead, read, noJSON); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
			if err == nil || errors.Is(err, ErrGone) {
				checkJSON(t, read)
			}
			if errors.Is(err, ErrGone) && outcome.StatusOf(err) != http.StatusGone {
				t.Errorf("ErrGone answers %d, want 410", outcome.StatusOf(err))
			}
			var exists bool
			if err := db.View(func(tx *Tx) error { exists = tx.Exists("Patient", "p1"); return nil }); err != nil {
				t.Fatal(err)
			}
			if want := tt.wantReadErr == nil; exists != want {
				t.Errorf("Exists = %v, want %v", exists, want)
			}
			h, err := db.History(HistoryQuery{Type: "Patient", ID: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			if h.Total != tt.wantTotal {
				t.Errorf("instance history total %d, want %d", h.Total, tt.wantTotal)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	db := openTest(t, Options{Now: frozen})
	put(t, db, "Patient", "p1", patient("One"))            // v1
	put(t, db, "Patient", "p1", patient("Two"))            // v2
	if _, err := del(t, db, "Patient", "p1"); err != nil { // v3
		t.Fatal(err)
	}
	put(t, db, "Patient", "p1", patient("Four")) // v4, current

	tests := []struct {
		name       string
		version    uint64
		want       Resource // header
		wantFamily string
		wantErr    error // of VRead; Tx.Version returns tombstones without error
	}{
		{"first", 1, Resource{Type: "Patient", ID: "p1", Version: 1, LastUpdated: at(0), Op: OpCreate}, "One", nil},
		{"past update", 2, Resource{Type: "Patient", ID: "p1", Version: 2, LastUpdated: at(1), Op: OpUpdate}, "Two", nil},
		{"deleted", 3, Resource{Type: "Patient", ID: "p1", Version: 3, LastUpdated: at(2), Op: OpDelete}, "", ErrGone},
		{"current", 4, Resource{Type: "Patient", ID: "p1", Version: 4, LastUpdated: at(3), Op: OpCreate}, "Four", nil},
		{"not yet written", 5, Resource{}, "", ErrNotFound},
		{"zero", 0, Resource{}, "", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.VRead("Patient", "p1", tt.version)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("VRead error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, noJSON); diff != "" {
				t.Errorf("VRead (-want +got):\n%s", diff)
			}
			if got.Version != 0 {
				checkJSON(t, got)
			}
			if tt.wantFamily != "" {
				if f := family(t, got); f != tt.wantFamily {
					t.Errorf("family %q, want %q", f, tt.wantFamily)
				}
			}
			var txGot Resource
			txErr := db.View(func(tx *Tx) (err error) { txGot, err = tx.Version("Patient", "p1", tt.version); return err })
			wantTxErr := tt.wantErr
			if errors.Is(wantTxErr, ErrGone) {
				wantTxErr = nil // Tx.Version returns the tombstone itself
			}
			if !errors.Is(txErr, wantTxErr) {
				t.Errorf("Tx.Version error %v, want %v", txErr, wantTxErr)
			}
			if diff := cmp.Diff(got, txGot); diff != "" {
				t.Errorf("Tx.Version differs from VRead (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	type step struct {
		typ, id     string
		del         bool
		identifiers []string
	}
	type lookup struct {
		typ, value string
		want       []string
	}
	tests := []struct {
		name    string
		steps   []step
		lookups []lookup
	}{
		{
			name:    "create indexes",
			steps:   []step{{typ: "Patient", id: "p1", identifiers: []string{"A", "B"}}},
			lookups: []lookup{{"Patient", "A", []string{"p1"}}, {"Patient", "B", []string{"p1"}}, {"Patient", "C", nil}},
		},
		{
			name: "update replaces entries",
			steps: []step{
				{typ: "Patient", id: "p1", identifiers: []string{"A", "B"}},
				{typ: "Patient", id: "p1", identifiers: []string{"B", "C"}},
			},
			lookups: []lookup{{"Patient", "A", nil}, {"Patient", "B", []string{"p1"}}, {"Patient", "C", []string{"p1"}}},
		},
		{
			name: "update without identifiers removes entries",
			steps: []step{
				{typ: "Patient", id: "p1", identifiers: []string{"A"}},
				{typ: "Patient", id: "p1"},
			},
			lookups: []lookup{{"Patient", "A", nil}},
		},
		{
			name: "several resources share a value",
			steps: []step{
				{typ: "Patient", id: "p2", identifiers: []string{"A"}},
				{typ: "Patient", id: "p1", identifiers: []string{"A"}},
			},
			lookups: []lookup{{"Patient", "A", []string{"p1", "p2"}}},
		},
		{
			name: "delete removes entries",
			steps: []step{
				{typ: "Patient", id: "p1", identifiers: []string{"A"}},
				{typ: "Patient", id: "p2", identifiers: []string{"A"}},
				{typ: "Patient", id: "p1", del: true},
			},
			lookups: []lookup{{"Patient", "A", []string{"p2"}}},
		},
		{
			name: "re-create after delete indexes the new version",
			steps: []step{
				{typ: "Patient", id: "p1", identifiers: []string{"A"}},
				{typ: "Patient", id: "p1", del: true},
				{typ: "Patient", id: "p1", identifiers: []string{"B"}},
			},
			lookups: []lookup{{"Patient", "A", nil}, {"Patient", "B", []string{"p1"}}},
		},
		{
			name: "entries are per type",
			steps: []step{
				{typ: "Patient", id: "p1", identifiers: []string{"A"}},
				{typ: "Practitioner", id: "d1", identifiers: []string{"A"}},
				{typ: "Medication", id: "m1", identifiers: []string{"A"}},
				{typ: "MedicationRequest", id: "r1", identifiers: []string{"A"}},
			},
			lookups: []lookup{
				{"Patient", "A", []string{"p1"}},
				{"Practitioner", "A", []string{"d1"}},
				{"Medication", "A", []string{"m1"}},
				{"MedicationRequest", "A", []string{"r1"}},
				{"Observation", "A", nil},
			},
		},
		{
			name:    "a value is not a prefix match",
			steps:   []step{{typ: "Patient", id: "p1", identifiers: []string{"AB"}}},
			lookups: []lookup{{"Patient", "A", nil}, {"Patient", "AB", []string{"p1"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{Indexer: identifierIndexer})
			for _, s := range tt.steps {
				if s.del {
					if _, err := del(t, db, s.typ, s.id); err != nil {
						t.Fatal(err)
					}
					continue
				}
				res := patient(s.id, s.identifiers...)
				res["resourceType"] = s.typ
				put(t, db, s.typ, s.id, res)
			}
			for _, l := range tt.lookups {
				var got []string
				if err := db.View(func(tx *Tx) error { got = tx.Lookup(l.typ, "identifier", l.value); return nil }); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(l.want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("Lookup(%s, identifier, %s) (-want +got):\n%s", l.typ, l.value, diff)
				}
			}
		})
	}
}

func TestIDs(t *testing.T) {
	type step struct {
		typ, id string
		del     bool
	}
	tests := []struct {
		name  string
		steps []step
		typ   string
		want  []string
	}{
		{"empty store", nil, "Patient", nil},
		{"sorted", []step{{"Patient", "c", false}, {"Patient", "a", false}, {"Patient", "b", false}}, "Patient", []string{"a", "b", "c"}},
		{"deleted skipped", []step{{"Patient", "a", false}, {"Patient", "b", false}, {"Patient", "b", true}}, "Patient", []string{"a"}},
		{"re-created included", []step{{"Patient", "a", false}, {"Patient", "a", true}, {"Patient", "a", false}}, "Patient", []string{"a"}},
		{"other types excluded", []step{{"Patient", "a", false}, {"Observation", "o", false}}, "Patient", []string{"a"}},
		{"type that prefixes another", []step{{"Medication", "m", false}, {"MedicationRequest", "r", false}}, "Medication", []string{"m"}},
		{"type prefixed by another", []step{{"Medication", "m", false}, {"MedicationRequest", "r", false}}, "MedicationRequest", []string{"r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{})
			for _, s := range tt.steps {
				if s.del {
					if _, err := del(t, db, s.typ, s.id); err != nil {
						t.Fatal(err)
					}
				} else {
					put(t, db, s.typ, s.id, map[string]any{"resourceType": s.typ})
				}
			}
			var got []string
			exists := map[string]bool{}
			err := db.View(func(tx *Tx) error {
				got = tx.IDs(tt.typ)
				for _, s := range tt.steps {
					if s.typ == tt.typ {
						exists[s.id] = tx.Exists(s.typ, s.id)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("IDs(%s) (-want +got):\n%s", tt.typ, diff)
			}
			wantExists := map[string]bool{}
			for id := range exists {
				wantExists[id] = slices.Contains(tt.want, id)
			}
			if diff := cmp.Diff(wantExists, exists); diff != "" {
				t.Errorf("Exists disagrees with IDs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLastUpdatedIncreasing(t *testing.T) {
	var calls atomic.Int64
	tests := []struct {
		name string
		now  func() time.Time
	}{
		{"real clock", time.Now},
		{"frozen clock", frozen},
		{"clock going backwards", func() time.Time { return t0.Add(-time.Duration(calls.Add(1)) * time.Second) }},
		{"clock with nanosecond steps", func() time.Time { return t0.Add(time.Duration(calls.Add(1))) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{Now: tt.now})
			const commits = 50
			var prev time.Time
			for i := range commits {
				// Odd commits write two resources: one transaction, one time.
				var rs []Resource
				err := db.Update(t.Context(), func(tx *Tx) error {
					rs = rs[:0]
					for j := range 1 + i%2 {
						r, err := tx.Put("Patient", fmt.Sprintf("p%d-%d", i, j), patient("X"))
						if err != nil {
							return err
						}
						rs = append(rs, r)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rs {
					if !r.LastUpdated.Equal(rs[0].LastUpdated) {
						t.Errorf("commit %d: %s has lastUpdated %v, first resource of the same transaction %v", i, r.ID, r.LastUpdated, rs[0].LastUpdated)
					}
					if r.LastUpdated.Location() != time.UTC || r.LastUpdated.Nanosecond()%1000 != 0 {
						t.Errorf("commit %d: lastUpdated %v is not UTC at microsecond resolution", i, r.LastUpdated)
					}
				}
				if !rs[0].LastUpdated.After(prev) {
					t.Errorf("commit %d: lastUpdated %v not after the previous commit's %v", i, rs[0].LastUpdated, prev)
				}
				prev = rs[0].LastUpdated
			}
		})
	}
}

// TestLastUpdatedAfterReopen: the order of lastUpdated must survive a
// restart during which the clock went back (a VM restored, NTP stepping).
func TestLastUpdatedAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parcours.db")
	open := func(now time.Time) *DB {
		t.Helper()
		db, err := Open(path, Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open(t0.Add(time.Hour))
	before := put(t, db, "Patient", "p1", patient("One"))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t0) // an hour earlier
	defer db.Close()
	after := put(t, db, "Patient", "p1", patient("Two"))
	if !after.LastUpdated.After(before.LastUpdated) {
		t.Errorf("after reopening with the clock set back, version 2 has lastUpdated %v, not after version 1's %v",
			after.LastUpdated, before.LastUpdated)
	}
	p, err := db.History(HistoryQuery{Since: before.LastUpdated, Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 2 {
		t.Errorf("history since version 1 has %d versions, want 2", p.Total)
	}
}

// gate blocks the committer until release is called, so that every write
// queued meanwhile lands in the next batch.
func gate(t *testing.T, db *DB) (release func()) {
	t.Helper()
	entered, open := make(chan struct{}), make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- db.Update(context.Background(), func(*Tx) error {
			once.Do(func() { close(entered) })
			<-open
			return nil
		})
	}()
	<-entered
	return func() {
		close(open)
		if err := <-done; err != nil {
			t.Errorf("gate write: %v", err)
		}
	}
}

// waitQueued waits until n writes wait in the committer's queue.
func waitQueued(db *DB, n int) {
	for len(db.queue) < n {
		time.Sleep(100 * time.Microsecond)
	}
}

func TestUpdateIsolatesFailures(t *testing.T) {
	const writers = 60
	// Writer i: fails before writing (i%10 == 3), writes then fails
	// (i%10 == 7), or creates Patient/w<i> with identifier I<i>.
	kind := func(i int) string {
		switch i % 10 {
		case 3:
			return "fail"
		case 7:
			return "write then fail"
		}
		return "ok"
	}
	tests := []struct {
		name  string
		batch bool // hold the committer so that all writers share one batch
	}{
		{"one batch", true},
		{"free-running", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{Indexer: identifierIndexer})
			release := func() {}
			if tt.batch {
				release = gate(t, db)
			}
			errs := make([]error, writers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					id := fmt.Sprintf("w%02d", i)
					errs[i] = db.Update(t.Context(), func(tx *Tx) error {
						if kind(i) == "fail" {
							return fmt.Errorf("writer %d: %w", i, errBoom)
						}
						if _, err := tx.Put("Patient", id, patient(id, "I"+id)); err != nil {
							return err
						}
						if kind(i) == "write then fail" {
							return fmt.Errorf("writer %d: %w", i, errBoom)
						}
						return nil
					})
				})
			}
			close(start)
			if tt.batch {
				waitQueued(db, writers)
			}
			release()
			wg.Wait()

			var wantIDs []string
			for i := range writers {
				id := fmt.Sprintf("w%02d", i)
				r, err := db.Read("Patient", id)
				var lookup []string
				if verr := db.View(func(tx *Tx) error { lookup = tx.Lookup("Patient", "identifier", "I"+id); return nil }); verr != nil {
					t.Fatal(verr)
				}
				if kind(i) != "ok" {
					if !errors.Is(errs[i], errBoom) || errs[i].Error() != fmt.Sprintf("writer %d: boom", i) {
						t.Errorf("writer %d (%s) got error %v, want its own", i, kind(i), errs[i])
					}
					if !errors.Is(err, ErrNotFound) || len(lookup) > 0 {
						t.Errorf("writer %d (%s) left Read %v (err %v), lookup %v; want nothing", i, kind(i), r.Version, err, lookup)
					}
					continue
				}
				wantIDs = append(wantIDs, id)
				if errs[i] != nil {
					t.Errorf("writer %d got %v, want nil", i, errs[i])
				}
				if err != nil || r.Version != 1 || r.Op != OpCreate || family(t, r) != id {
					t.Errorf("writer %d: Read = v%d %c, %v; want v1 create with family %s", i, r.Version, r.Op, err, id)
				}
				if diff := cmp.Diff([]string{id}, lookup); diff != "" {
					t.Errorf("writer %d lookup (-want +got):\n%s", i, diff)
				}
			}
			var ids []string
			if err := db.View(func(tx *Tx) error { ids = tx.IDs("Patient"); return nil }); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantIDs, ids); diff != "" {
				t.Errorf("IDs (-want +got):\n%s", diff)
			}
			h, err := db.History(HistoryQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if h.Total != len(wantIDs) {
				t.Errorf("system history holds %d versions, want %d (failed writers must leave no log entry)", h.Total, len(wantIDs))
			}
		})
	}
}

// TestUpdateContextCanceled: a canceled context may or may not stop a write
// that is being queued, but the answer must tell which happened.
func TestUpdateContextCanceled(t *testing.T) {
	db := openTest(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for i := range 20 {
		id := fmt.Sprintf("c%d", i)
		err := db.Update(ctx, func(tx *Tx) error { _, err := tx.Put("Patient", id, patient(id)); return err })
		_, rerr := db.Read("Patient", id)
		switch {
		case err == nil && rerr != nil:
			t.Errorf("%s: Update returned nil but Read says %v", id, rerr)
		case errors.Is(err, context.Canceled) && !errors.Is(rerr, ErrNotFound):
			t.Errorf("%s: Update returned %v but Read says %v, want ErrNotFound", id, err, rerr)
		case err != nil && !errors.Is(err, context.Canceled):
			t.Errorf("%s: Update returned %v", id, err)
		}
	}
}

func TestUpdateEach(t *testing.T) {
	create := func(id string) func(*Tx) error {
		return func(tx *Tx) error { _, err := tx.Put("Patient", id, patient(id)); return err }
	}
	fail := func(*Tx) error { return errBoom }
	writeThenFail := func(id string) func(*Tx) error {
		return func(tx *Tx) error {
			if _, err := tx.Put("Patient", id, patient(id)); err != nil {
				return err
			}
			return errBoom
		}
	}
	// copyFamily writes Patient/to with the family of Patient/from, which an
	// earlier function of the same call wrote.
	copyFamily := func(from, to string) func(*Tx) error {
		return func(tx *Tx) error {
			r, err := tx.Get("Patient", from)
			if err != nil {
				return err
			}
			res, err := fhirjson.Decode(r.JSON)
			if err != nil {
				return err
			}
			_, err = tx.Put("Patient", to, res)
			return err
		}
	}
	// absent fails unless Patient/id is absent.
	absent := func(id string) func(*Tx) error {
		return func(tx *Tx) error {
			if _, err := tx.Get("Patient", id); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("Patient/%s visible: %v", id, err)
			}
			return nil
		}
	}
	tests := []struct {
		name         string
		fns          []func(*Tx) error
		wantErrs     []error
		wantVersions map[string]uint64 // Patient id -> current version, 0: not found
		wantFamily   map[string]string
	}{
		{
			name:         "all succeed in order",
			fns:          []func(*Tx) error{create("a"), create("b"), create("a")},
			wantErrs:     []error{nil, nil, nil},
			wantVersions: map[string]uint64{"a": 2, "b": 1},
		},
		{
			name:         "failure in the middle",
			fns:          []func(*Tx) error{create("a"), fail, create("b")},
			wantErrs:     []error{nil, errBoom, nil},
			wantVersions: map[string]uint64{"a": 1, "b": 1},
		},
		{
			name:         "failure first and last",
			fns:          []func(*Tx) error{fail, create("a"), fail},
			wantErrs:     []error{errBoom, nil, errBoom},
			wantVersions: map[string]uint64{"a": 1},
		},
		{
			name:         "all fail",
			fns:          []func(*Tx) error{fail, writeThenFail("a"), fail},
			wantErrs:     []error{errBoom, errBoom, errBoom},
			wantVersions: map[string]uint64{"a": 0},
		},
		{
			name:         "write then fail leaves nothing",
			fns:          []func(*Tx) error{create("a"), writeThenFail("c"), create("a")},
			wantErrs:     []error{nil, errBoom, nil},
			wantVersions: map[string]uint64{"a": 2, "c": 0},
		},
		{
			name:         "a function sees the writes of earlier ones",
			fns:          []func(*Tx) error{create("a"), copyFamily("a", "b")},
			wantErrs:     []error{nil, nil},
			wantVersions: map[string]uint64{"a": 1, "b": 1},
			wantFamily:   map[string]string{"b": "a"},
		},
		{
			name:         "a function does not see a failed one",
			fns:          []func(*Tx) error{writeThenFail("c"), absent("c"), copyFamily("c", "d")},
			wantErrs:     []error{errBoom, nil, ErrNotFound},
			wantVersions: map[string]uint64{"c": 0, "d": 0},
		},
		{
			name:         "empty",
			fns:          nil,
			wantErrs:     []error{},
			wantVersions: map[string]uint64{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{})
			errs := db.UpdateEach(t.Context(), tt.fns)
			if diff := cmp.Diff(tt.wantErrs, errs, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			got := map[string]uint64{}
			for id := range tt.wantVersions {
				r, err := db.Read("Patient", id)
				if err != nil && !errors.Is(err, ErrNotFound) {
					t.Fatal(err)
				}
				got[id] = r.Version
				if want, ok := tt.wantFamily[id]; ok && family(t, r) != want {
					t.Errorf("Patient/%s family %q, want %q", id, family(t, r), want)
				}
			}
			if diff := cmp.Diff(tt.wantVersions, got); diff != "" {
				t.Errorf("versions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailedWriteLeavesNothing(t *testing.T) {
	tests := []struct {
		name         string
		setup        func(tx *Tx) error
		fn           func(tx *Tx) error // writes, then returns errBoom
		wantVersions map[string]uint64  // Patient id -> current version, 0: not found
		wantLookup   map[string][]string
		wantTotal    int // system history
	}{
		{
			name: "creates",
			fn: func(tx *Tx) error {
				for _, id := range []string{"a", "b"} {
					if _, err := tx.Put("Patient", id, patient(id, "I"+id)); err != nil {
						return err
					}
				}
				return errBoom
			},
			wantVersions: map[string]uint64{"a": 0, "b": 0},
			wantLookup:   map[string][]string{"Ia": nil, "Ib": nil},
			wantTotal:    0,
		},
		{
			name:  "update",
			setup: func(tx *Tx) error { _, err := tx.Put("Patient", "a", patient("a", "A")); return err },
			fn: func(tx *Tx) error {
				if _, err := tx.Put("Patient", "a", patient("a", "B")); err != nil {
					return err
				}
				return errBoom
			},
			wantVersions: map[string]uint64{"a": 1},
			wantLookup:   map[string][]string{"A": {"a"}, "B": nil},
			wantTotal:    1,
		},
		{
			name:  "delete",
			setup: func(tx *Tx) error { _, err := tx.Put("Patient", "a", patient("a", "A")); return err },
			fn: func(tx *Tx) error {
				if _, err := tx.Delete("Patient", "a"); err != nil {
					return err
				}
				return errBoom
			},
			wantVersions: map[string]uint64{"a": 1},
			wantLookup:   map[string][]string{"A": {"a"}},
			wantTotal:    1,
		},
		{
			name: "several versions of one resource",
			fn: func(tx *Tx) error {
				for range 3 {
					if _, err := tx.Put("Patient", "a", patient("a", "A")); err != nil {
						return err
					}
				}
				return errBoom
			},
			wantVersions: map[string]uint64{"a": 0},
			wantLookup:   map[string][]string{"A": nil},
			wantTotal:    0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{Indexer: identifierIndexer})
			if tt.setup != nil {
				if err := db.Update(t.Context(), tt.setup); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Update(t.Context(), tt.fn); !errors.Is(err, errBoom) {
				t.Fatalf("Update returned %v, want errBoom", err)
			}
			got := map[string]uint64{}
			gotLookup := map[string][]string{}
			err := db.View(func(tx *Tx) error {
				for id := range tt.wantVersions {
					r, err := tx.Get("Patient", id)
					if err != nil && !errors.Is(err, ErrNotFound) {
						return err
					}
					got[id] = r.Version
					if r.Version > 0 {
						if _, err := tx.Version("Patient", id, r.Version+1); !errors.Is(err, ErrNotFound) {
							t.Errorf("Patient/%s version %d: %v, want ErrNotFound", id, r.Version+1, err)
						}
					}
				}
				for v := range tt.wantLookup {
					gotLookup[v] = tx.Lookup("Patient", "identifier", v)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantVersions, got); diff != "" {
				t.Errorf("versions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLookup, gotLookup, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("lookups (-want +got):\n%s", diff)
			}
			h, err := db.History(HistoryQuery{Count: 100})
			if err != nil {
				t.Fatal(err)
			}
			if h.Total != tt.wantTotal || len(h.Versions) != tt.wantTotal {
				t.Errorf("system history: total %d, %d versions; want %d", h.Total, len(h.Versions), tt.wantTotal)
			}
		})
	}
}

func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parcours.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Queue writes the way Update does, from this goroutine, so that they
	// are certainly pending (queued, not yet answered) when Close runs.
	release := gate(t, db)
	const n = 100
	pending := make([]*write, n)
	for i := range pending {
		id := fmt.Sprintf("p%03d", i)
		pending[i] = &write{
			fn:   func(tx *Tx) error { _, err := tx.Put("Patient", id, patient(id)); return err },
			errc: make(chan error, 1),
		}
		db.queue <- pending[i]
	}
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, w := range pending {
		select {
		case err := <-w.errc:
			if err != nil {
				t.Errorf("pending write %d: %v", i, err)
			}
		default:
			t.Errorf("pending write %d not answered when Close returned", i)
		}
	}

	t.Run("Update after Close", func(t *testing.T) {
		err := db.Update(t.Context(), func(tx *Tx) error { _, err := tx.Put("Patient", "late", patient("late")); return err })
		if !errors.Is(err, ErrClosed) {
			t.Errorf("got %v, want ErrClosed", err)
		}
	})
	t.Run("UpdateEach after Close", func(t *testing.T) {
		errs := db.UpdateEach(t.Context(), []func(*Tx) error{func(*Tx) error { return nil }, func(*Tx) error { return nil }})
		if diff := cmp.Diff([]error{ErrClosed, ErrClosed}, errs, cmpopts.EquateErrors()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("pending writes survive reopening", func(t *testing.T) {
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var ids []string
		if err := db.View(func(tx *Tx) error { ids = tx.IDs("Patient"); return nil }); err != nil {
			t.Fatal(err)
		}
		want := make([]string, n)
		for i := range want {
			want[i] = fmt.Sprintf("p%03d", i)
		}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("IDs after reopening (-want +got):\n%s", diff)
		}
	})
}

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestNewID: ids are UUIDv7 and successive ids sort after each other (the
// property that makes creates append to the same B+tree pages). 40 000 ids
// cross several multiples of 2^14 of the per-process counter.
func TestNewID(t *testing.T) {
	const n = 40000
	prev := ""
	seen := make(map[string]bool, n)
	for i := range n {
		id := NewID()
		if !uuidV7.MatchString(id) {
			t.Fatalf("id %d %q is not a UUIDv7", i, id)
		}
		if seen[id] {
			t.Fatalf("id %d %q repeats", i, id)
		}
		seen[id] = true
		if id <= prev {
			t.Fatalf("id %d %q does not sort after the previous one %q", i, id, prev)
		}
		prev = id
	}
}

// TestPanicContained: a write function that panics fails alone; the
// committer keeps serving the others.
func TestPanicContained(t *testing.T) {
	db := openTest(t, Options{})
	err := db.Update(context.Background(), func(tx *Tx) error {
		if _, err := tx.Put("Patient", "p1", patient("Panic")); err != nil {
			return err
		}
		panic("boom")
	})
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("Update with a panicking fn = %v, want ErrPanic", err)
	}
	if _, err := db.Read("Patient", "p1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("write of the panicking fn is visible: %v", err)
	}
	put(t, db, "Patient", "p2", patient("After"))
	if r, err := db.Read("Patient", "p2"); err != nil || r.Version != 1 {
		t.Errorf("write after the panic: %v, version %d", err, r.Version)
	}
}

// TestUpdateAfterClose answers ErrClosed instead of panicking.
func TestUpdateAfterClose(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Update after Close = %v, want ErrClosed", err)
	}
	if errs := db.UpdateEach(context.Background(), []func(*Tx) error{func(*Tx) error { return nil }}); !errors.Is(errs[0], ErrClosed) {
		t.Errorf("UpdateEach after Close = %v, want ErrClosed", errs[0])
	}
}

// TestLookupNulInValue: a NUL inside an index value cannot make one value's
// lookup return another value's resources.
func TestLookupNulInValue(t *testing.T) {
	db := openTest(t, Options{Indexer: identifierIndexer})
	put(t, db, "Patient", "a", patient("A", "s|x\x00y"))
	put(t, db, "Patient", "b", patient("B", "s|x"))
	put(t, db, "Patient", "a", patient("A", "s|z")) // replaces a's entries
	err := db.View(func(tx *Tx) error {
		for _, tc := range []struct{ value, want string }{{"s|x", "b"}, {"s|x\x00y", ""}, {"s|z", "a"}} {
			got := strings.Join(tx.Lookup("Patient", "identifier", tc.value), ",")
			if got != tc.want {
				t.Errorf("Lookup(%q) = %q, want %q", tc.value, got, tc.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
