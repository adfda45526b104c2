package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/store"
)

// TestTransactionStoresWhatItIndexes posts Synthea bundles from four
// clients at once (plain creates, prepared by their request before they
// are queued, stamped at commit), and a bundle with conditional
// creates (prepared inside its write), then checks every stored resource:
// its meta.lastUpdated is its version's time, and its index entries are
// those the Indexer gives for the stored JSON, so that nothing prepared
// for one transaction time was stored under another.
func TestTransactionStoresWhatItIndexes(t *testing.T) {
	files := corpusFiles(t, "synthea/smart-on-fhir-generated-sample-data-r4/[A-Z]*_*.json")
	if len(files) > 12 {
		files = files[:12]
	}
	h := newHub(t)
	post := func(body []byte) error {
		req := httptest.NewRequest(http.MethodPost, "/fhir", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		w := httptest.NewRecorder()
		h.s.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			return fmt.Errorf("status %d: %.300s", w.Code, w.Body.String())
		}
		return nil
	}
	conditional, err := os.ReadFile("../testdata/fhir/Bundle-parcours-transaction.json")
	if err != nil {
		t.Fatal(err)
	}
	bodies := [][]byte{conditional}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	var wg sync.WaitGroup
	work := make(chan []byte)
	for range 4 {
		wg.Go(func() {
			for b := range work {
				if err := post(b); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()

	index := Indexer(h.s.cfg.BaseURL)
	checked := 0
	err = h.s.db.View(func(tx *store.Tx) error {
		for _, typ := range []string{"Patient", "Encounter", "Observation", "Condition", "Claim", "ExplanationOfBenefit", "Organization", "Practitioner", "Immunization", "Procedure", "MedicationRequest", "DiagnosticReport", "CarePlan"} {
			for _, id := range tx.IDs(typ) {
				r, err := tx.Get(typ, id)
				if err != nil {
					return err
				}
				res, err := fhirjson.Decode(r.JSON)
				if err != nil {
					return err
				}
				meta, _ := res["meta"].(map[string]any)
				if got, want := meta["lastUpdated"], store.FormatInstant(r.LastUpdated); got != want {
					t.Errorf("%s/%s: meta.lastUpdated %v, version time %s", typ, id, got, want)
				}
				// The same entries, in any order (a prepared create gets
				// its _lastUpdated entry last, at its commit).
				byEntry := cmpopts.SortSlices(func(a, b store.IndexEntry) bool { return a.Param+"\x00"+a.Value < b.Param+"\x00"+b.Value })
				if diff := cmp.Diff(index(typ, res), tx.Entries(typ, id), byEntry); diff != "" {
					t.Errorf("%s/%s: index entries (-from the stored JSON +stored):\n%s", typ, id, diff)
				}
				checked++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 500 {
		t.Errorf("%d resources checked", checked)
	}
	t.Logf("%d bundles, %d resources checked", len(bodies), checked)
}
