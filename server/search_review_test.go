package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestPseudonymisedSearchReview covers what a black-box review of search
// found for pseudonymised recipients: a compartment search by the
// pseudonym they read the patient by found nothing, a _sort on a date
// emptied the results, and a birth-date criterion to the year they are
// shown matched nothing.
func TestPseudonymisedSearchReview(t *testing.T) {
	h := newSecureHub(t)
	p := patient("Pseudo", testINS("Pseudo"))
	p["birthDate"], p["gender"] = "1976-05-04", "female"
	r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Patient", p)
	if r.status != http.StatusCreated {
		t.Fatalf("create Patient: %d %s", r.status, r.raw)
	}
	pid := strings.Split(strings.TrimPrefix(r.header.Get("Location"), h.url+"/Patient/"), "/")[0]
	for _, res := range []map[string]any{
		{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}, "subject": map[string]any{"reference": "Patient/" + pid}},
		{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "HbA1c"}, "subject": map[string]any{"reference": "Patient/" + pid}, "effectiveDateTime": "2026-03-14", "valueQuantity": map[string]any{"value": 7.9, "unit": "%"}},
	} {
		if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/"+res["resourceType"].(string), res); r.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", res["resourceType"], r.status, r.raw)
		}
	}
	research := func(path string) reply { return h.as("researcher", "HRESCH", http.MethodGet, path, nil) }
	count := func(r reply) int { return len(anySlice(r.body["entry"])) }

	year := research("/Patient?birthdate=1976")
	pseudo := str(year.body, "entry", 0, "resource", "id")
	if year.status != http.StatusOK || count(year) != 1 || !strings.HasPrefix(pseudo, "p-") {
		t.Fatalf("researcher Patient?birthdate=1976 (the year it is shown): %d, %d entries %.300s, want the patient", year.status, count(year), year.raw)
	}
	for path, want := range map[string]int{
		"/Patient?birthdate=1976-05-04":                0, // finer than what is shown
		"/Patient?birthdate=ap1976":                    0,
		"/Patient/" + pseudo + "/Observation":          1,
		"/Patient/" + pseudo + "/Encounter":            1,
		"/Observation?_sort=value-quantity":            1,
		"/Patient/" + pseudo + "/Observation?_count=1": 1,
		// Chains and _has on what is shown match; on what is not, nothing.
		"/Observation?subject:Patient.gender=female":        1,
		"/Observation?subject:Patient.gender=male":          0,
		"/Observation?subject:Patient.birthdate=1976":       1,
		"/Observation?subject:Patient.birthdate=1976-05-04": 0,
		"/Observation?subject:Patient.name=Pseudo":          0,
		"/Patient?_has:Observation:patient:code:text=HbA1c": 1,
		"/Patient?_has:Observation:patient:date=2026-03":    1,
		"/Patient?_has:Observation:patient:date=2026-03-14": 0,
	} {
		if r := research(path); r.status != http.StatusOK || count(r) != want {
			t.Errorf("researcher GET %s: %d, %d entries %.200s, want %d", path, r.status, count(r), r.raw, want)
		}
	}
	for _, path := range []string{"/Observation?_sort=date", "/Observation?_sort=-date", "/Patient?_sort=birthdate", "/Encounter?_sort=_lastUpdated"} {
		if r := research(path); r.status != http.StatusBadRequest || !strings.Contains(string(r.raw), "not-supported") {
			t.Errorf("researcher GET %s: %d %.200s, want 400 not-supported (not an empty answer)", path, r.status, r.raw)
		}
	}
	// Criteria by the ids the researcher is shown find what they name; by
	// the hub's ids, nothing.
	obsPseudo := str(research("/Patient/"+pseudo+"/Observation").body, "entry", 0, "resource", "id")
	if !strings.HasPrefix(obsPseudo, "r-") {
		t.Fatalf("the researcher's Observation id %q", obsPseudo)
	}
	for path, want := range map[string]int{
		"/Observation?subject=Patient/" + pseudo:                       1,
		"/Observation?patient=" + pseudo:                               1,
		"/Observation?subject:Patient=" + pseudo:                       1,
		"/Patient?_id=" + pseudo:                                       1,
		"/Observation?_id=" + obsPseudo:                                1,
		"/Observation?_id=" + obsPseudo + "," + pseudo:                 0, // not an Observation's
		"/Observation?subject=Patient/" + pid:                          0,
		"/Patient?_id=" + pid:                                          0,
		"/Observation?subject=Patient/" + pseudo + "&_id=" + obsPseudo: 1,
	} {
		if r := research(path); r.status != http.StatusOK || count(r) != want {
			t.Errorf("researcher GET %s: %d, %d entries %.200s, want %d", path, r.status, count(r), r.raw, want)
		}
	}
	// A pseudonymised answer is in the order of the ids it shows, not the
	// hub's (creation order, the same in every domain: linkable), page
	// after page; _sort=_id would rank by the hub's ids: refused.
	for i := range 4 {
		seedHospital(t, h, "Ordre"+strings.Repeat("x", i))
	}
	all := research("/Patient?_count=100")
	var shown []string
	for _, e := range anySlice(all.body["entry"]) {
		shown = append(shown, str(e, "resource", "id"))
	}
	if len(shown) != 5 || !slices.IsSorted(shown) {
		t.Errorf("researcher Patient?_count=100: ids %v, want the 5 patients in the order of their pseudonyms", shown)
	}
	var paged []string
	for path, n := "/Patient?_count=2", 0; path != "" && n < 10; n++ {
		r := research(path)
		for _, e := range anySlice(r.body["entry"]) {
			paged = append(paged, str(e, "resource", "id"))
		}
		path = ""
		for _, l := range anySlice(r.body["link"]) {
			if str(l, "relation") == "next" {
				path = strings.TrimPrefix(str(l, "url"), h.url)
			}
		}
	}
	if !slices.Equal(paged, shown) {
		t.Errorf("researcher Patient?_count=2, page after page: %v, want %v", paged, shown)
	}
	// $everything too: the patient's resources in the order of the ids shown.
	var ev []string
	for _, e := range anySlice(research("/Patient/" + pseudo + "/$everything").body["entry"]) {
		ev = append(ev, str(e, "resource", "id"))
	}
	if len(ev) < 3 || !slices.IsSorted(ev) {
		t.Errorf("researcher $everything: ids %v, want the patient's resources in the order of their pseudonyms", ev)
	}
	// With a _sort, ties are in the order of the ids shown too (the four
	// patients without gender tie), page after page.
	var ties []string
	for path, n := "/Patient?_sort=gender&_count=2", 0; path != "" && n < 10; n++ {
		r := research(path)
		for _, e := range anySlice(r.body["entry"]) {
			if str(e, "resource", "gender") == "" {
				ties = append(ties, str(e, "resource", "id"))
			}
		}
		path = ""
		for _, l := range anySlice(r.body["link"]) {
			if str(l, "relation") == "next" {
				path = strings.TrimPrefix(str(l, "url"), h.url)
			}
		}
	}
	if len(ties) != 4 || !slices.IsSorted(ties) {
		t.Errorf("researcher Patient?_sort=gender: the ties %v, want the 4 patients without gender in the order of their pseudonyms", ties)
	}
	if r := research("/Observation?_sort=_id"); r.status != http.StatusBadRequest {
		t.Errorf("researcher Observation?_sort=_id: %d, want 400", r.status)
	}
	// Included resources come in the order of the ids shown too.
	for i := range 3 {
		if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", map[string]any{"resourceType": "Observation", "status": "final",
			"code": map[string]any{"text": "suivi"}, "subject": map[string]any{"reference": "Patient/" + pid}, "valueQuantity": map[string]any{"value": i, "unit": "%"}}); r.status != http.StatusCreated {
			t.Fatalf("Observation: %d %s", r.status, r.raw)
		}
	}
	var inc []string
	for _, e := range anySlice(research("/Patient?_id=" + pseudo + "&_revinclude=Observation:subject&_revinclude=Encounter:subject").body["entry"]) {
		if str(e, "search", "mode") == "include" {
			inc = append(inc, str(e, "resource", "id"))
		}
	}
	if len(inc) != 5 || !slices.IsSorted(inc) {
		t.Errorf("researcher _revinclude: included %v, want the patient's 5 resources in the order of their pseudonyms", inc)
	}
	// meta.source (the writer, its organisation) is not shown: criteria
	// on it match nothing, a _sort by it is refused.
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Observation?_source:below=urn:parcours:hospital-it", nil); count(r) == 0 {
		t.Fatalf("clinician Observation?_source:below=urn:parcours:hospital-it: %d entries %.200s, want some", count(r), r.raw)
	}
	if r := research("/Observation?_source:below=urn:parcours:hospital-it"); r.status != http.StatusOK || count(r) != 0 {
		t.Errorf("researcher Observation?_source:below=…: %d, %d entries, want none", r.status, count(r))
	}
	if r := research("/Observation?_sort=_source"); r.status != http.StatusBadRequest {
		t.Errorf("researcher Observation?_sort=_source: %d, want 400", r.status)
	}
	// $pathway's since and until filter by whole months for a caller
	// shown months (the Observation is of 2026-03-14).
	facts := func(q string) int {
		r := research("/Patient/" + pseudo + "/$pathway?" + q)
		if r.status != http.StatusOK {
			t.Fatalf("researcher $pathway?%s: %d %s", q, r.status, r.raw)
		}
		return strings.Count(string(r.raw), `"resourceType":"Observation"`)
	}
	if month, after, before := facts("since=2026-03-01"), facts("since=2026-03-15"), facts("until=2026-03-13"); month == 0 || after != month || before == 0 {
		t.Errorf("researcher $pathway: Observations since 2026-03-01: %d, since 2026-03-15: %d, until 2026-03-13: %d; want the same, month-wide", month, after, before)
	}
	// A research pseudonym names nothing to a caller not shown it: the
	// hospital's clinician, who reads the patient by its hub id.
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+pseudo+"/Observation", nil); r.status != http.StatusNotFound {
		t.Errorf("clinician GET /Patient/{research pseudonym}/Observation: %d %.200s, want 404", r.status, r.raw)
	}
	for _, path := range []string{"/Observation?subject=Patient/" + pseudo, "/Patient?_id=" + pseudo} {
		if r := h.as("hospital-clinician", "TREAT", http.MethodGet, path, nil); r.status != http.StatusOK || count(r) != 0 {
			t.Errorf("clinician GET %s (a research pseudonym): %d, %d entries, want none", path, r.status, count(r))
		}
	}
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+pid+"/Observation", nil); r.status != http.StatusOK || count(r) != 4 {
		t.Errorf("clinician GET /Patient/{id}/Observation: %d, %d entries", r.status, count(r))
	}
}
