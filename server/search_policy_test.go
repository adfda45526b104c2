package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestSearchPolicy checks the search engine's features against the policy
// in the scenario world (real JWT, real OPA): criteria never reveal what a
// caller may not see (chains and _has only go through visible resources), a
// pseudonymised caller cannot find a person by who they are, and
// compartment, system and $everything answers hold only visible resources.
// The leak probes of TestPolicyScenarios cover _include, _revinclude and
// $everything too.
func TestSearchPolicy(t *testing.T) {
	w := seedScenarioWorld(t)
	researcher, gp := w.h.token("researcher"), w.h.token("gp")
	martinINS := url.QueryEscape(scSysINS + "|" + w.martin.ins)
	count := func(tok, purpose, path string) int {
		t.Helper()
		r := w.call(t, tok, purpose, http.MethodGet, path, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %.300s", path, r.status, r.raw)
		}
		return num(r.body, "total")
	}
	researchPatients := count(researcher, "HRESCH", "/Patient?_summary=count")

	tests := []struct {
		name         string
		tok, purpose string
		path         string
		total        int // -1: not checked
		ids          []string
		absent       []string
	}{
		// Pseudonymised: no criterion on who a person is.
		{"researcher by family", researcher, "HRESCH", "/Patient?family=Martin", 0, []string{}, []string{w.martin.id, w.pseudo("research", w.martin)}},
		// Nor an order by it (the results would be ranked by name, INS,
		// birth date…).
		// Nor pin a write to the second (outputs show it to the month).
		{"researcher by the second of a write", researcher, "HRESCH", "/Observation?_lastUpdated=ge2000-01-01T00:00:00Z", 0, []string{}, nil},
		{"researcher by the day of an event", researcher, "HRESCH", "/Encounter?date=ge2000-01-01", 0, []string{}, nil},
		{"researcher by phone", researcher, "HRESCH", "/Patient?phone=" + url.QueryEscape(w.martin.phone), 0, []string{}, nil},
		{"researcher by patient reference", researcher, "HRESCH", "/Observation?subject=Patient/" + w.martin.id, 0, []string{}, nil},
		{"researcher by patient id", researcher, "HRESCH", "/Observation?patient=" + w.martin.id, 0, []string{}, nil},
		{"researcher by chained family", researcher, "HRESCH", "/Observation?subject.family=Martin", 0, []string{}, nil},
		{"researcher by chained INS", researcher, "HRESCH", "/Condition?subject:Patient.identifier=" + martinINS, 0, []string{}, nil},
		{"researcher in a patient compartment", researcher, "HRESCH", "/Patient/" + w.martin.id + "/Observation", 0, []string{}, nil},
		{"researcher by coarse attribute", researcher, "HRESCH", "/Patient?gender=female&_summary=count", researchPatients, []string{}, nil},
		{"researcher by code text", researcher, "HRESCH", "/Observation?code:text=hba1c", 1, w.rrefs("research", "Observation", w.oMartin), []string{w.martin.id, w.oMartin}},
		// Chains and _has go only through what the caller sees.
		{"gp _has a hidden condition", gp, "TREAT", "/Patient?_has:Condition:patient:code:text=insuffisance", 0, []string{}, []string{w.optin.id}},
		{"gp _has a visible condition", gp, "TREAT", "/Patient?_has:Condition:patient:code:text=hta", 1, scRefs("Patient", w.gp.id), nil},
		{"gp chain to a hidden patient", gp, "TREAT", "/Observation?subject.family=Martin", 0, []string{}, nil},
		{"gp chain to a visible patient", gp, "TREAT", "/Observation?subject.family=Moreau", 1, scRefs("Observation", w.oOptin), nil},
		// Compartments, system search, $everything, _revinclude.
		{"gp compartment with hidden resources", gp, "TREAT", "/Patient/" + w.optin.id + "/Condition", 0, []string{}, []string{w.cOptin}},
		{"gp $everything of an opted-in patient", gp, "TREAT", "/Patient/" + w.optin.id + "/$everything", 2,
			scCat(scRefs("Patient", w.optin.id), scRefs("Observation", w.oOptin)), []string{w.cOptin, w.eOptin, w.consOptin}},
		{"gp system search", gp, "TREAT", "/?_type=Patient,Observation&_summary=count", 6, []string{}, nil},
		{"gp _revinclude", gp, "TREAT", "/Patient?_revinclude=Condition:subject&_revinclude=Encounter:subject", 3,
			scCat(scRefs("Patient", w.gp.id, w.optin.id, w.team.id), scRefs("Condition", w.cGP), scRefs("Encounter", w.eGP)),
			[]string{w.cOptin, w.eOptin}},
	}
	// An order by who people are would rank the pseudonymised results by
	// what the output hides: refused (it once answered no match, as if
	// _sort were a criterion).
	for _, path := range []string{"/Patient?_sort=identifier", "/Patient?_sort=-birthdate", "/Patient?_sort=family", "/Observation?_sort=subject"} {
		if r := w.call(t, researcher, "HRESCH", http.MethodGet, path, nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.raw), "not-supported") {
			t.Errorf("researcher GET %s: %d %.200s, want 400 not-supported", path, r.status, r.raw)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.call(t, tt.tok, tt.purpose, http.MethodGet, tt.path, nil)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %.400s", r.status, r.raw)
			}
			if got := num(r.body, "total"); tt.total >= 0 && got != tt.total {
				t.Errorf("total %d, want %d", got, tt.total)
			}
			if tt.ids != nil {
				want := slices.Sorted(slices.Values(tt.ids))
				if diff := cmp.Diff(want, scVisibleIDs(w.h.url, r.body), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("visible resources (-want +got):\n%s", diff)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(string(r.raw), s) {
					t.Errorf("the answer reveals %q", s)
				}
			}
		})
	}

	// Paging without totals stops deciding early, and still shows only
	// what the caller sees, one page at a time.
	t.Run("gp pages with _total=none", func(t *testing.T) {
		var seen []string
		next := "/Observation?_count=1&_total=none"
		for pages := 0; next != ""; pages++ {
			if pages > 5 {
				t.Fatal("next links loop")
			}
			r := w.call(t, gp, "TREAT", http.MethodGet, next, nil)
			if _, ok := r.body["total"]; ok {
				t.Errorf("page %d has a total", pages+1)
			}
			seen = append(seen, scVisibleIDs(w.h.url, r.body)...)
			next = strings.TrimPrefix(linkURL(r.body, "next"), w.h.url)
		}
		want := slices.Sorted(slices.Values(scRefs("Observation", w.oGP, w.oOptin, w.oTeam)))
		slices.Sort(seen)
		if diff := cmp.Diff(want, seen); diff != "" {
			t.Errorf("observations over the pages (-want +got):\n%s", diff)
		}
	})
}
