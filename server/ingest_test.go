package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/server/store"
)

// demoSources are the four native demo files, who sends them and for what.
var demoSources = []struct{ source, actor, purpose, contentType, file string }{
	{"hospital-stays", "hospital-it", "HOPERAT", "text/csv", "hospital-stays.csv"},
	{"city-activity", "gp", "TREAT", "text/csv", "city-activity.csv"},
	{"prevention-programme", "programme-operator", "prevention-programme-delivery", "application/x-ndjson", "prevention-programme.ndjson"},
	{"liability-claims", "liability-risk-manager", "liability-claim-handling", "text/csv", "liability-claims.csv"},
}

// upload posts a native file to $ingest.
func (h *secureHub) upload(actor, purpose, source, contentType string, body []byte, query string) reply {
	h.t.Helper()
	return h.do(http.MethodPost, "/$ingest?source="+source+query, body,
		"Authorization", "Bearer "+h.token(actor), "X-Purpose-Of-Use", purpose, "Content-Type", contentType)
}

func TestIngestDemoFiles(t *testing.T) {
	h := newSecureHub(t)
	for _, d := range demoSources {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "native", d.file))
		if err != nil {
			t.Fatal(err)
		}
		r := h.upload(d.actor, d.purpose, d.source, d.contentType, b, "")
		if r.status != http.StatusOK || !strings.Contains(string(r.raw), "0 with issues") {
			t.Fatalf("%s: %d %s", d.source, r.status, r.raw)
		}
	}
	// One Patient per INS-NIR across the four sources.
	seen := map[string]string{}
	h.s.db.View(func(tx *store.Tx) error {
		for _, id := range tx.IDs("Patient") {
			for _, e := range tx.Entries("Patient", id) {
				if e.Param == "identifier" && strings.HasPrefix(e.Value, insSystem+"|") {
					if other, dup := seen[e.Value]; dup {
						t.Errorf("two Patients %s and %s share one INS", other, id)
					}
					seen[e.Value] = id
				}
			}
		}
		return nil
	})
	if len(seen) < 10 {
		t.Errorf("only %d linked patients after the four demo files", len(seen))
	}
	// A second upload of every file stores nothing twice.
	counts := func() map[string]int {
		c := map[string]int{}
		h.s.db.View(func(tx *store.Tx) error {
			for _, typ := range []string{"Patient", "Encounter", "Condition", "Procedure", "Observation", "MedicationDispense", "Consent", "CarePlan", "AdverseEvent"} {
				c[typ] = len(tx.IDs(typ))
			}
			return nil
		})
		return c
	}
	first := counts()
	for _, d := range demoSources {
		b, _ := os.ReadFile(filepath.Join("..", "testdata", "native", d.file))
		if r := h.upload(d.actor, d.purpose, d.source, d.contentType, b, ""); r.status != http.StatusOK {
			t.Fatalf("second upload of %s: %d %s", d.source, r.status, r.raw)
		}
	}
	if diff := cmp.Diff(first, counts()); diff != "" {
		t.Errorf("resources after uploading every file twice (-once +twice):\n%s", diff)
	}
	before := len(seen)
	b, _ := os.ReadFile(filepath.Join("..", "testdata", "native", "hospital-stays.csv"))
	if r := h.upload("hospital-it", "HOPERAT", "hospital-stays", "text/csv", b, ""); r.status != http.StatusOK {
		t.Fatalf("second upload: %d %s", r.status, r.raw)
	}
	n := 0
	h.s.db.View(func(tx *store.Tx) error {
		for _, id := range tx.IDs("Patient") {
			for _, e := range tx.Entries("Patient", id) {
				if e.Param == "identifier" && strings.HasPrefix(e.Value, insSystem+"|") {
					n++
				}
			}
		}
		return nil
	})
	if n != before {
		t.Errorf("%d INS-linked patients after re-upload, want %d (no duplicate)", n, before)
	}
}

func TestIngestErrors(t *testing.T) {
	h := newSecureHub(t)
	good, err := os.ReadFile(filepath.Join("..", "testdata", "native", "hospital-stays.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(good), "\n"), "\n")
	// Line 3 gets a bad admission date (column 7).
	fields := strings.Split(lines[2], ";")
	fields[6] = "2024-13-45"
	lines[2] = strings.Join(fields, ";")
	bad := []byte(strings.Join(lines, "\n") + "\n")
	count := func() int {
		n := 0
		h.s.db.View(func(tx *store.Tx) error { n = len(tx.IDs("Encounter")); return nil })
		return n
	}

	r := h.upload("hospital-it", "HOPERAT", "hospital-stays", "text/csv", bad, "")
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.raw), "operationoutcome-issue-line") {
		t.Fatalf("bad file: %d %s, want 422 with line numbers", r.status, r.raw)
	}
	// The counts first (DESIGN §11: counts and every issue), then the row's.
	if d := str(r.body, "issue", 0, "diagnostics"); !strings.Contains(d, "rows read, 1 with issues: nothing is stored") {
		t.Errorf("first issue %q: want the counts", d)
	}
	issue := r.body["issue"].([]any)[1].(map[string]any)
	ext := issue["extension"].([]any)
	if line := ext[0].(map[string]any)["valueInteger"].(float64); line != 3 {
		t.Errorf("issue line %v, want 3", line)
	}
	if col := ext[1].(map[string]any)["valueInteger"].(float64); col != 7 {
		t.Errorf("issue column %v, want 7", col)
	}
	if strings.Contains(string(r.raw), "2024-13-45") {
		t.Error("the issue echoes the bad value")
	}
	if n := count(); n != 0 {
		t.Errorf("%d Encounters stored from a rejected file, want 0", n)
	}
	r = h.upload("hospital-it", "HOPERAT", "hospital-stays", "text/csv", bad, "&mode=partial")
	if r.status != http.StatusOK || count() != len(lines)-2 {
		t.Errorf("partial: %d, %d Encounters, want %d: %s", r.status, count(), len(lines)-2, r.raw)
	}
	for _, tc := range []struct {
		name, actor, purpose, source, ct string
		want                             int
	}{
		{"unknown source", "hospital-it", "HOPERAT", "pmsi", "text/csv", 400},
		{"wrong content type", "hospital-it", "HOPERAT", "hospital-stays", "application/json", 415},
		{"mutual may not ingest", "mutual-prevention", "prevention-programme-reporting", "hospital-stays", "text/csv", 403},
	} {
		if r := h.upload(tc.actor, tc.purpose, tc.source, tc.ct, good, ""); r.status != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, r.status, tc.want, r.raw)
		}
	}
}

// TestVocabularyAndTranslate: the pathway vocabulary is stored at start-up,
// readable by any actor, and $translate resolves stages through it.
func TestVocabularyAndTranslate(t *testing.T) {
	h := newSecureHub(t)
	r := h.as("mutual-prevention", "prevention-programme-reporting", http.MethodGet, "/CodeSystem/parcours-stage", nil)
	if r.status != http.StatusOK || str(r.body, "url") != "https://example.org/fhir/CodeSystem/parcours-stage" {
		t.Fatalf("read parcours-stage: %d %.300s", r.status, r.raw)
	}
	maps := h.as("gp", "TREAT", http.MethodGet, "/ConceptMap", nil)
	if maps.status != http.StatusOK || maps.body["total"].(float64) < 5 {
		t.Errorf("ConceptMap search: %d total %v", maps.status, maps.body["total"])
	}
	q := "/ConceptMap/$translate?system=https://smt.esante.gouv.fr/terminologie-cim-10&code=I50.9&target=https://example.org/fhir/ValueSet/parcours-stage"
	tr := h.as("gp", "TREAT", http.MethodGet, q, nil)
	if tr.status != http.StatusOK || str(tr.body, "resourceType") != "Parameters" || !strings.Contains(string(tr.raw), `"valueBoolean":true`) {
		t.Errorf("$translate I50.9: %d %.500s", tr.status, tr.raw)
	}
	// A Condition sent as FHIR gets its stage from the same ConceptMaps.
	pid := seedHospital(t, h, "Stage")
	cond := map[string]any{"resourceType": "Condition", "subject": map[string]any{"reference": "Patient/" + pid},
		"code": map[string]any{"coding": []any{map[string]any{"system": "https://smt.esante.gouv.fr/terminologie-cim-10", "code": "I50.9"}}}}
	w := h.as("hospital-clinician", "TREAT", http.MethodPost, "/Condition", cond)
	if w.status != http.StatusCreated || !strings.Contains(string(w.raw), "pathway-stage") {
		t.Errorf("Condition sent as FHIR has no pathway-stage: %d %.400s", w.status, w.raw)
	}
	// Built-in definitions are not data changes: not in system history.
	if n := h.as("hospital-clinician", "TREAT", http.MethodGet, "/CodeSystem/_history", nil).body["total"].(float64); n != 0 {
		t.Errorf("CodeSystem type history total %v, want 0", n)
	}
}

// TestINSUnique: a Patient sent as FHIR with an INS the hub knows is not a
// second patient.
func TestINSUnique(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Unique") // INS urn:oid:…|Unique
	dup := patient("Unique-bis", testINS("Unique"))
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Patient", dup); r.status != http.StatusConflict {
		t.Errorf("second Patient with the same INS: %d, want 409: %s", r.status, r.raw)
	}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Patient", dup, "If-None-Exist", "identifier="+testINS("Unique")); r.status != http.StatusOK || !strings.Contains(r.header.Get("Location"), pid) {
		t.Errorf("conditional create on the INS: %d %s, want 200 and the existing patient", r.status, r.header.Get("Location"))
	}
}

// TestIngestLimit: a native file is bounded by MaxIngest, not by the JSON
// body limit (it is spooled to disk and streamed), with and without a
// Content-Length; above MaxIngest the answer is 413 and nothing is stored.
func TestIngestLimit(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("..", "testdata", "native", "city-activity.csv"))
	if err != nil {
		t.Fatal(err)
	}
	h := newSecureHubWith(t, func(c *Config) {
		c.MaxBody = 1024
		c.MaxIngest = int64(len(file)) + 10
	})
	if len(file) <= 2*1024 {
		t.Fatalf("the city-activity fixture (%d bytes) must exceed the test's 1 KiB body limit", len(file))
	}
	count := func() int {
		n := 0
		h.s.db.View(func(tx *store.Tx) error { n = len(tx.IDs("Encounter")); return nil })
		return n
	}
	// A JSON body over MaxBody is refused.
	big := map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": strings.Repeat("x", 2048)}}}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Patient", big); r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("JSON body over --max-body: %d, want 413", r.status)
	}
	// Over MaxIngest, announced (Content-Length) or streamed (chunked).
	over := append(bytes.Clone(file), strings.Repeat("\n", 64)...)
	if r := h.upload("gp", "TREAT", "city-activity", "text/csv", over, ""); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("file over --max-ingest with Content-Length: %d, want 413: %s", r.status, r.raw)
	}
	req, err := http.NewRequest(http.MethodPost, h.url+"/$ingest?source=city-activity", io.MultiReader(bytes.NewReader(over)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked: the limit is found while spooling
	req.Header.Set("Authorization", "Bearer "+h.token("gp"))
	req.Header.Set("X-Purpose-Of-Use", "TREAT")
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked file over --max-ingest: %d, want 413", resp.StatusCode)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d Encounters stored from refused files", n)
	}
	// Within MaxIngest, far over MaxBody: stored.
	if r := h.upload("gp", "TREAT", "city-activity", "text/csv", file, ""); r.status != http.StatusOK || count() == 0 {
		t.Fatalf("file within --max-ingest: %d, %d Encounters: %s", r.status, count(), r.raw)
	}
}

// TestIngestChangedRecord: a row sent again under the key of a stored
// source record but with other content (here the stay H-2026-0001 for
// another patient) is refused with a conflict naming the stored resource,
// and nothing of its file is stored; before, the stay matched the first
// upload's Encounter and the new patient's diagnoses were created pointing
// at it — another patient's stay. The same row sent again unchanged is
// still stored once (idempotent).
func TestIngestChangedRecord(t *testing.T) {
	h := newSecureHub(t)
	b, err := os.ReadFile(filepath.Join("..", "testdata", "native", "hospital-stays.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	header, stay := lines[0], lines[1]
	if !strings.Contains(stay, ";H-2026-0001;155037511204521;1955-03-14;1;75011;") {
		t.Fatalf("testdata changed: %q", stay)
	}
	upload := func(body string) reply {
		return h.upload("hospital-it", "HOPERAT", "hospital-stays", "text/csv", []byte(body), "")
	}
	if r := upload(header + stay + lines[2]); r.status != http.StatusOK {
		t.Fatalf("first upload: %d %s", r.status, r.raw)
	}
	counts := func() map[string]int {
		c := map[string]int{}
		h.s.db.View(func(tx *store.Tx) error {
			for _, typ := range []string{"Patient", "Encounter", "Condition", "Procedure", "Provenance"} {
				c[typ] = len(tx.IDs(typ))
			}
			return nil
		})
		return c
	}
	first := counts()
	if r := upload(header + stay + lines[2]); r.status != http.StatusOK {
		t.Fatalf("same rows again: %d %s", r.status, r.raw)
	}
	again := counts()
	first["Provenance"]++ // every upload that stores is recorded
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("the same row uploaded twice (-once +twice):\n%s", diff)
	}
	other := strings.Replace(stay, ";155037511204521;1955-03-14;1;75011;", ";262016912345684;1962-01-08;2;93100;", 1)
	other2 := strings.Replace(lines[2], ";I50.0;", ";I50.1;", 1) // a correction
	r := upload(header + lines[3] + other + other2)
	if r.status != http.StatusConflict {
		t.Fatalf("stay key reused for another patient: %d %s, want 409", r.status, r.raw)
	}
	for _, want := range []string{"already stored as Encounter/", "other content", "nothing of the file is stored", "3 rows read, 2 with issues"} {
		if !strings.Contains(string(r.raw), want) {
			t.Errorf("the OperationOutcome lacks %q: %s", want, r.raw)
		}
	}
	// Each row is named by its line (3 and 4: a new row comes first), not
	// by an entry of the Bundle it was mapped to; and every such row is
	// reported (once only the first).
	var at []int
	for _, is := range anySlice(r.body["issue"]) {
		if str(is, "code") != "conflict" {
			continue
		}
		if strings.Contains(fmt.Sprint(is), "Bundle.entry") {
			t.Errorf("conflict issue with a Bundle path: %v", is)
		}
		if l := lineOf(is); !slices.Contains(at, l) {
			at = append(at, l)
		}
	}
	if slices.Sort(at); !slices.Equal(at, []int{3, 4}) {
		t.Errorf("conflicts at lines %v, want [3 4]: %s", at, r.raw)
	}
	if diff := cmp.Diff(again, counts()); diff != "" {
		t.Errorf("a refused file stored something (-before +after):\n%s", diff)
	}
	// In partial mode the rows in conflict are skipped and reported like
	// other bad rows, and the good row is stored (black-box review: the
	// whole file was refused).
	p := h.upload("hospital-it", "HOPERAT", "hospital-stays", "text/csv", []byte(header+lines[3]+other+other2), "&mode=partial")
	if p.status != http.StatusOK {
		t.Fatalf("partial upload with rows in conflict: %d %s", p.status, p.raw)
	}
	if sum := str(p.body, "issue", 0, "diagnostics"); !strings.Contains(sum, "3 rows read, 1 stored, 2 with issues") {
		t.Errorf("partial summary %q, want 3 rows read, 1 stored, 2 with issues", sum)
	}
	var skipped []int
	for _, is := range anySlice(p.body["issue"]) {
		if str(is, "code") == "conflict" {
			col := 0
			for _, e := range anySlice(dig(is, "extension")) {
				if strings.HasSuffix(str(e, "url"), "operationoutcome-issue-col") {
					col = num(e, "valueInteger")
				}
			}
			if str(is, "severity") != "warning" || lineOf(is) == 0 || col == 0 {
				t.Errorf("skipped row issue %v: want a warning with its line and column", is)
			}
			if l := lineOf(is); !slices.Contains(skipped, l) {
				skipped = append(skipped, l)
			}
		}
	}
	if slices.Sort(skipped); !slices.Equal(skipped, []int{3, 4}) {
		t.Errorf("partial: skipped lines %v, want [3 4]: %s", skipped, p.raw)
	}
	after := counts()
	if after["Encounter"] != again["Encounter"]+1 || after["Provenance"] != again["Provenance"]+1 || after["Patient"] < again["Patient"] {
		t.Errorf("partial upload stored %v from %v: want the good row's stay and one Provenance", after, again)
	}
}

// TestIngestKeyedRecords: the hub keys the source-record identifiers of
// what it ingests (found in a black-box review: the name-based UUIDv5 of
// a row, whose key holds the INS, let a researcher recover the INS by
// brute force): none of the stored ones is the unkeyed identifier the
// same file maps to without the hub's key.
func TestIngestKeyedRecords(t *testing.T) {
	h := newSecureHub(t)
	b, err := os.ReadFile(filepath.Join("..", "testdata", "native", "hospital-stays.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if r := h.upload("hospital-it", "HOPERAT", "hospital-stays", "text/csv", b, ""); r.status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.status, r.raw)
	}
	m, _ := mappings.Lookup("hospital-stays")
	res, err := m.Map(bytes.NewReader(b), mappings.Options{Actor: "hospital-it", Org: "https://finess.esante.gouv.fr|750712184"})
	if err != nil {
		t.Fatal(err)
	}
	unkeyed := map[string]bool{}
	for _, e := range res.Bundle["entry"].([]any) {
		ids, _ := e.(map[string]any)["resource"].(map[string]any)["identifier"].([]any)
		for _, id := range ids {
			if m := id.(map[string]any); m["system"] == mappings.SourceRecordSystem {
				unkeyed[m["value"].(string)] = true
			}
		}
	}
	stored := 0
	h.s.db.View(func(tx *store.Tx) error {
		tx.IndexScan("Encounter", "identifier", mappings.SourceRecordSystem+"|", func(value, _ string) bool {
			stored++
			if _, v, _ := strings.Cut(value, "|"); unkeyed[v] {
				t.Errorf("stored source-record identifier %s is the unkeyed one", v)
			}
			return true
		})
		return nil
	})
	if stored == 0 || len(unkeyed) == 0 {
		t.Fatalf("%d stored and %d unkeyed source-record identifiers: the test compares nothing", stored, len(unkeyed))
	}
}

// TestPatientINSChecked: a Patient sent as FHIR with an INS-NIR that is
// not one (length, key) or written in lower case (2a) is refused with its
// path, so that it cannot become a second patient of the person the native
// files link (found in a black-box review); a valid one is accepted.
func TestPatientINSChecked(t *testing.T) {
	h := newHub(t)
	corsican := "194072A010101" + mappings.INSKey("194072A010101")
	for _, c := range []struct {
		ins, reason string
	}{
		{strings.ToLower(corsican), "upper case"},
		{"192057500808100", "key"},
		{"1930675009091", "15 characters"},
	} {
		r := h.do(http.MethodPost, "/Patient", patient("Ins", insSystem+"|"+c.ins))
		if r.status != http.StatusBadRequest || str(r.body, "issue", 0, "expression", 0) != "Patient.identifier[0].value" || !strings.Contains(str(r.body, "issue", 0, "diagnostics"), c.reason) {
			t.Errorf("INS %s: %d %s, want 400 at Patient.identifier[0].value naming %q", c.ins, r.status, r.raw, c.reason)
		}
	}
	if r := h.do(http.MethodPost, "/Patient", patient("Ins", insSystem+"|"+corsican)); r.status != http.StatusCreated {
		t.Errorf("valid INS %s: %d %s", corsican, r.status, r.raw)
	}
	if n := h.total("/Patient?_summary=count"); n != 1 {
		t.Errorf("%d Patients stored, want 1", n)
	}
}

// TestIngestMethods: $ingest is invoked with POST; other methods answer 405
// (once 404 "unknown resource type").
func TestIngestMethods(t *testing.T) {
	h := newHub(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		if r := h.do(m, "/$ingest?source=city-activity", nil); r.status != http.StatusMethodNotAllowed || str(r.body, "resourceType") != "OperationOutcome" {
			t.Errorf("%s $ingest: %d %s, want 405", m, r.status, r.raw)
		}
	}
}

// TestIngestUnlinkedShifted: the same city-activity export sent again with
// a row added before its rows stores nothing twice, unlinked patients (no
// INS-NIR) included; they were keyed by their row's line, so every one of
// them was stored again (black-box review).
func TestIngestUnlinkedShifted(t *testing.T) {
	h := newSecureHub(t)
	const header = "rpps;specialty;ins_nir;birth_date;sex;date;kind;code_system;code;value;unit;interpretation;quantity;days_supply\n"
	const unlinked = "10000000029;medecine-generale;;1981-11-02;F;2025-06-12;teleconsultation;ngap;TCG;;;;;\n"
	const linked = "10000000029;medecine-generale;155037511204521;1955-03-14;1;2025-03-14;consultation;ngap;G;;;;;\n"
	count := func() (patients, encounters int) {
		h.s.db.View(func(tx *store.Tx) error {
			patients, encounters = len(tx.IDs("Patient")), len(tx.IDs("Encounter"))
			return nil
		})
		return
	}
	if r := h.upload("gp", "TREAT", "city-activity", "text/csv", []byte(header+unlinked), ""); r.status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.status, r.raw)
	}
	if p, e := count(); p != 1 || e != 1 {
		t.Fatalf("after the first upload: %d patients, %d encounters, want 1 and 1", p, e)
	}
	if r := h.upload("gp", "TREAT", "city-activity", "text/csv", []byte(header+linked+unlinked), ""); r.status != http.StatusOK {
		t.Fatalf("upload with a row before: %d %s", r.status, r.raw)
	}
	if p, e := count(); p != 2 || e != 2 {
		t.Errorf("after the second upload: %d patients, %d encounters, want 2 and 2 (the new row's only)", p, e)
	}
}
