package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/gen"
	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/store"
)

// generated is a native file of rows rows of source from mappings/gen.
func generated(t testing.TB, source string, rows int, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gen.Writers{HospitalStays: &buf, CityActivity: &buf, PreventionProgramme: &buf, LiabilityClaims: &buf}
	if _, err := gen.Generate(gen.Config{Source: source, Rows: rows, Seed: seed}, w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// uploader is who sends each source, for what, in what format.
var uploader = map[string]struct{ actor, purpose, contentType string }{
	gen.SourceHospital:   {"hospital-it", "HOPERAT", "text/csv"},
	gen.SourceCity:       {"gp", "TREAT", "text/csv"},
	gen.SourcePrevention: {"programme-operator", "prevention-programme-delivery", "application/x-ndjson"},
	gen.SourceLiability:  {"liability-risk-manager", "liability-claim-handling", "text/csv"},
}

// withChunkEntries sets the chunk size of $ingest for a test.
func withChunkEntries(t *testing.T, n int) {
	old := ingestChunkEntries
	ingestChunkEntries = n
	t.Cleanup(func() { ingestChunkEntries = old })
}

// stored counts the current resources of each type of a hub, once the
// pathway worker has caught up: EpisodeOfCares are derived from what it
// sees between commits (a file stored in chunks is seen part by part), and
// it deletes those that later facts or a rolled back upload make obsolete,
// so they end as if the file had been stored at once.
func stored(t testing.TB, h *hub) map[string]int {
	t.Helper()
	h.s.WaitPathways()
	out := map[string]int{}
	h.s.db.View(func(tx *store.Tx) error {
		for _, typ := range conformance.ResourceTypes() {
			n := 0
			for _, id := range tx.IDs(typ) {
				if r, err := tx.Get(typ, id); err == nil && !r.Deleted() {
					n++
				}
			}
			if n > 0 {
				out[typ] = n
			}
		}
		return nil
	})
	return out
}

// TestIngestChunks: a file stored in many chunks stores what one chunk
// stores (a Provenance per chunk aside), one Patient per INS, every
// reference resolved; uploading it again stores nothing new; every
// decision is recorded and the chain holds.
func TestIngestChunks(t *testing.T) {
	files := map[string][]byte{}
	for _, s := range gen.Sources {
		files[s] = generated(t, s, 300, 11)
	}
	upload := func(h *secureHub, source string) reply {
		u := uploader[source]
		return h.upload(u.actor, u.purpose, source, u.contentType, files[source], "")
	}
	withChunkEntries(t, 1<<30)
	one := newSecureHub(t)
	for _, s := range gen.Sources {
		if r := upload(one, s); r.status != http.StatusOK {
			t.Fatalf("%s in one chunk: %d %.500s", s, r.status, r.raw)
		}
	}
	want := stored(t, one.hub)

	withChunkEntries(t, 37)
	many := newSecureHub(t)
	var records uint64
	many.s.db.View(func(tx *store.Tx) error { records = audit.Len(tx); return nil })
	for _, s := range gen.Sources {
		if r := upload(many, s); r.status != http.StatusOK || !strings.Contains(string(r.raw), "0 with issues") {
			t.Fatalf("%s in chunks: %d %.500s", s, r.status, r.raw)
		}
	}
	got := stored(t, many.hub)
	if got["Provenance"] < 5*len(gen.Sources) || want["Provenance"] != len(gen.Sources) {
		t.Errorf("Provenances: %d in chunks, %d in one (one per file)", got["Provenance"], want["Provenance"])
	}
	delete(got, "Provenance")
	delete(want, "Provenance")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resources (-one chunk +many):\n%s", diff)
	}
	created := 0
	for _, n := range got {
		created += n
	}

	// References, identities, audit.
	many.s.db.View(func(tx *store.Tx) error {
		ins := map[string]string{}
		for _, id := range tx.IDs("Patient") {
			for _, e := range tx.Entries("Patient", id) {
				if e.Param == "identifier" && strings.HasPrefix(e.Value, insSystem+"|") {
					if other, dup := ins[e.Value]; dup {
						t.Errorf("Patients %s and %s share an INS", other, id)
					}
					ins[e.Value] = id
				}
			}
		}
		for _, typ := range []string{"Encounter", "Condition", "Observation", "MedicationDispense", "AdverseEvent", "Consent", "CarePlan"} {
			for _, id := range tx.IDs(typ) {
				for _, e := range tx.Entries(typ, id) {
					if e.Param != paramPatient {
						continue
					}
					p := strings.TrimPrefix(e.Value, "Patient/")
					if !tx.Exists("Patient", p) {
						t.Fatalf("%s/%s refers to %s, not stored", typ, id, e.Value)
					}
				}
			}
		}
		if n := audit.Len(tx) - records; n < uint64(created) {
			t.Errorf("%d decision records for %d resources created", n, created)
		}
		if v := audit.Verify(tx); !v.OK {
			t.Errorf("audit chain: %+v", v)
		}
		if jobs := tx.Jobs(); len(jobs) != 0 {
			t.Errorf("open jobs after the uploads: %v", jobs)
		}
		return nil
	})

	for _, s := range gen.Sources {
		if r := upload(many, s); r.status != http.StatusOK {
			t.Fatalf("second upload of %s: %d %.500s", s, r.status, r.raw)
		}
	}
	again := stored(t, many.hub)
	delete(again, "Provenance")
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("resources after a second upload (-once +twice):\n%s", diff)
	}
}

// hospitalRows is a hospital-stays file of n stays of one patient, the
// first at of them at one establishment and the rest at another.
func hospitalRows(n, at int) []byte {
	var b strings.Builder
	b.WriteString("finess;stay_id;ins_nir;birth_date;sex;postcode;admission_date;discharge_date;admission_mode;admission_source;discharge_mode;ghm;main_diagnosis;related_diagnosis;other_diagnoses;acts;unit_type\n")
	for i := range n {
		finess := "750712184"
		if i >= at {
			finess = "330781196"
		}
		fmt.Fprintf(&b, "%s;S-%04d;155037511204521;1955-03-14;1;75011;2026-03-02;2026-03-10;8;5;8;05M09T;I50.9;;E11.9;DEQP003@2026-03-02;MCO\n", finess, i)
	}
	return []byte(b.String())
}

// TestIngestRollback: when a later chunk of a file fails, the chunks
// already committed are undone: nothing of the file is stored.
func TestIngestRollback(t *testing.T) {
	withChunkEntries(t, 20)
	h := newSecureHub(t)
	// Two Organizations with the FINESS the third chunk is the first to
	// need: its conditional create matches both (412).
	if err := h.s.db.Update(context.Background(), func(tx *store.Tx) error {
		for range 2 {
			org := map[string]any{"resourceType": "Organization", "identifier": []any{map[string]any{"system": "https://finess.esante.gouv.fr", "value": "330781196"}}}
			if _, err := tx.Put("Organization", store.NewID(), org); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := stored(t, h.hub)
	var records uint64
	h.s.db.View(func(tx *store.Tx) error { records = audit.Len(tx); return nil })
	for _, mode := range []string{"", "&mode=partial"} {
		r := h.upload("hospital-it", "HOPERAT", "hospital-stays", "text/csv", hospitalRows(60, 45), mode)
		m := regexp.MustCompile(`lines ([0-9]+) to ([0-9]+) \(part ([0-9]+) `).FindStringSubmatch(string(r.raw))
		if r.status != http.StatusPreconditionFailed || m == nil {
			t.Fatalf("upload%s: %d %.800s, want 412 naming the rows of a chunk", mode, r.status, r.raw)
		}
		// Line 47 is the first stay at the second establishment.
		if from, _ := strconv.Atoi(m[1]); from > 47 || m[3] == "1" {
			t.Errorf("upload%s: the failing part is lines %s to %s, part %s", mode, m[1], m[2], m[3])
		}
		if diff := cmp.Diff(before, stored(t, h.hub)); diff != "" {
			t.Errorf("upload%s: resources (-before +after):\n%s", mode, diff)
		}
	}
	h.s.db.View(func(tx *store.Tx) error {
		if jobs := tx.Jobs(); len(jobs) != 0 {
			t.Errorf("open jobs: %v", jobs)
		}
		// The decisions of the failed uploads are recorded all the same.
		if n := audit.Len(tx) - records; n < 2*40 {
			t.Errorf("%d decision records for two failed uploads", n)
		}
		if v := audit.Verify(tx); !v.OK {
			t.Errorf("audit chain: %+v", v)
		}
		return nil
	})
	// Without the duplicate, the same file is stored whole.
	if err := h.s.db.Update(context.Background(), func(tx *store.Tx) error {
		ids := tx.IDs("Organization")
		_, err := tx.Delete("Organization", ids[len(ids)-1])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r := h.upload("hospital-it", "HOPERAT", "hospital-stays", "text/csv", hospitalRows(60, 45), ""); r.status != http.StatusOK {
		t.Fatalf("upload: %d %.500s", r.status, r.raw)
	}
	if n := stored(t, h.hub)["Encounter"]; n != 60 {
		t.Errorf("%d Encounters stored, want 60", n)
	}
}

// TestIngestSchemaValid: what every mapper makes of generated files is
// valid against the R4 JSON schema — why $ingest does not validate the
// mappers' output entry by entry (the golden tests cover the edge cases).
func TestIngestSchemaValid(t *testing.T) {
	v, err := conformance.Shared()
	if err != nil {
		t.Fatal(err)
	}
	for _, source := range gen.Sources {
		t.Run(source, func(t *testing.T) {
			m, _ := mappings.Lookup(source)
			res, err := m.Map(bytes.NewReader(generated(t, source, 400, 13)), mappings.Options{Actor: uploader[source].actor, Org: "https://finess.esante.gouv.fr|750712184"})
			if err != nil || res.Bundle == nil {
				t.Fatalf("%v: %d issues", err, len(res.Issues))
			}
			types := map[string]int{}
			for i, e := range res.Bundle["entry"].([]any) {
				r := e.(map[string]any)["resource"].(map[string]any)
				types[r["resourceType"].(string)]++
				if err := v.Validate(r); err != nil {
					t.Errorf("entry %d (%s): %v", i, r["resourceType"], err)
				}
			}
			t.Logf("%d entries valid: %v", len(res.Bundle["entry"].([]any)), types)
		})
	}
}

// TestIngestSpoolRemoved: the spooled upload does not outlive its request.
func TestIngestSpoolRemoved(t *testing.T) {
	h := newSecureHub(t)
	u := uploader[gen.SourceCity]
	if r := h.upload(u.actor, u.purpose, gen.SourceCity, u.contentType, generated(t, gen.SourceCity, 50, 1), ""); r.status != http.StatusOK {
		t.Fatalf("%d %.300s", r.status, r.raw)
	}
	left, _ := os.ReadDir(filepath.Join(h.s.cfg.DataDir, "ingest"))
	if len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
}

func TestSharedRefs(t *testing.T) {
	m := sharedRefs{byUUID: map[[16]byte]storedAt{}, other: map[string]string{}}
	id := store.NewID()
	cases := map[string]string{
		"urn:uuid:5b2e7c1a-934d-4f61-8a0c-6e21d447903f": "Patient/" + id,
		"urn:uuid:0190a0b0-0000-7000-8000-000000000001": "Organization/org-1", // a client's id
		"urn:uuid:0190A0B0-0000-7000-8000-000000000002": "Patient/" + id,      // not canonical
		"urn:oid:1.2.3": "Practitioner/" + id,
	}
	for u, to := range cases {
		m.put(u, to)
	}
	for u, want := range cases {
		if got, ok := m.get(u); !ok || got != want {
			t.Errorf("get(%s) = %q, %v; want %q", u, got, ok, want)
		}
	}
	if got, ok := m.get("urn:uuid:5b2e7c1a-934d-4f61-8a0c-6e21d4479000"); ok {
		t.Errorf("an unknown fullUrl resolved to %s", got)
	}
	if len(m.byUUID) != 1 {
		t.Errorf("%d compact entries, want 1", len(m.byUUID))
	}
}
