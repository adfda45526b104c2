package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	// A second upload of the hospital file links to the same patients.
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
	issue := r.body["issue"].([]any)[0].(map[string]any)
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
