package server

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings/gen"
	"github.com/parcours-sante/parcours/server/pathway"
	"github.com/parcours-sante/parcours/server/store"
)

// TestRupturesMatchTheGenerator is the round trip of the pathway issue:
// native files from the generator → $ingest (policy and audit on) →
// detection by the stored rules → the counts the generator's own oracle
// wrote from the rule definitions (mappings/gen, no code shared with the
// mappers or the engine), rule by rule.
func TestRupturesMatchTheGenerator(t *testing.T) {
	dir := t.TempDir()
	patients := 400
	if testing.Short() {
		patients = 150
	}
	exp, err := gen.GenerateDir(gen.Config{Patients: patients, Seed: 11}, dir)
	if err != nil {
		t.Fatal(err)
	}
	asOf, err := time.Parse(time.DateOnly, exp.Config.AsOf)
	if err != nil {
		t.Fatal(err)
	}
	h := newSecureHub(t)
	for _, d := range []struct{ source, actor, purpose, contentType string }{
		{gen.SourceHospital, "hospital-it", "HOPERAT", "text/csv"},
		{gen.SourceCity, "gp", "TREAT", "text/csv"},
		{gen.SourcePrevention, "programme-operator", "prevention-programme-delivery", "application/x-ndjson"},
		{gen.SourceLiability, "liability-risk-manager", "liability-claim-handling", "text/csv"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, gen.FileName(d.source)))
		if err != nil {
			t.Fatal(err)
		}
		if r := h.upload(d.actor, d.purpose, d.source, d.contentType, b, ""); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", d.source, r.status, r.raw)
		}
	}

	// The engine over every stored patient, counted like the oracle.
	rules, err := pathway.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	type counts struct{ Ruptures, Met, Censored, Pending int }
	got := map[string]counts{}
	want := map[string]counts{}
	for id, rc := range exp.Rules {
		want[id] = counts{Ruptures: rc.Ruptures, Met: rc.NoRupture, Censored: rc.Censored}
		got[id] = counts{}
	}
	h.s.db.View(func(tx *store.Tx) error {
		for _, pid := range tx.IDs("Patient") {
			rec, _ := loadRecord(tx, pid, factRecord, nil)
			for _, f := range pathway.Detect(rules, pathway.Facts(rec.decoded), asOf) {
				if _, ok := want[f.RuleID]; !ok {
					continue // rules the generator does not plant (R4, R6, R8–R10)
				}
				c := got[f.RuleID]
				switch f.Status {
				case pathway.StatusRupture:
					c.Ruptures++
				case pathway.StatusMet:
					c.Met++
				case pathway.StatusCensored:
					c.Censored++
				default:
					c.Pending++
				}
				got[f.RuleID] = c
			}
		}
		return nil
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings per rule at %s (-generator's oracle +engine over the stored data):\n%s", exp.Config.AsOf, diff)
	}

	// $detect-ruptures stores exactly one DetectedIssue per rupture.
	r := h.as("hospital-it", "HSYSADMIN", http.MethodPost, "/$detect-ruptures?asOf="+exp.Config.AsOf, nil)
	if r.status != http.StatusOK {
		t.Fatalf("$detect-ruptures: %d %s", r.status, r.raw)
	}
	perCode := map[string]int{}
	wantPerCode := map[string]int{}
	for _, rc := range exp.Rules {
		wantPerCode[rc.Code] += rc.Ruptures
	}
	h.s.db.View(func(tx *store.Tx) error {
		for _, id := range tx.IDs("DetectedIssue") {
			res, _ := tx.Get("DetectedIssue", id)
			code := str(decodeStored(res.JSON), "code", "coding", 0, "code")
			if _, planted := wantPerCode[code]; planted {
				perCode[code]++
			}
		}
		return nil
	})
	if diff := cmp.Diff(wantPerCode, perCode); diff != "" {
		t.Errorf("DetectedIssues per rupture code (-oracle +stored):\n%s", diff)
	}
}
