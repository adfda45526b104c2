package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/store"
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

// TestPseudonymisedContent: what a black-box review found surviving
// pseudonymisation — names, addresses and contact points inside
// extensions and contained practitioners, attachments (document bodies,
// titles, URLs holding hub ids), signatures and free text (a coded
// concept's text, valueString, a conclusion) — is gone from what a
// researcher reads, while codes, their displays and units stay.
func TestPseudonymisedContent(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Contenu")
	const marker = "Zorglub"
	ext := func(url string, value map[string]any) map[string]any {
		e := map[string]any{"url": "https://example.org/fhir/StructureDefinition/" + url}
		for k, v := range value {
			e[k] = v
		}
		return e
	}
	obs := map[string]any{"resourceType": "Observation", "status": "final",
		"contained": []any{map[string]any{"resourceType": "Practitioner", "id": "pr1", "name": []any{map[string]any{"family": marker + "Doc"}}}},
		"extension": []any{
			ext("name", map[string]any{"valueHumanName": map[string]any{"family": marker + "Name"}}),
			ext("address", map[string]any{"valueAddress": map[string]any{"line": []any{"12 rue " + marker}, "postalCode": "75011"}}),
			ext("phone", map[string]any{"valueContactPoint": map[string]any{"system": "phone", "value": "06" + marker}}),
			ext("note", map[string]any{"valueString": "Patient " + marker + "Text"}),
			ext("file", map[string]any{"valueAttachment": map[string]any{"contentType": "text/plain", "url": "http://hub/fhir/Binary/" + pid, "title": marker + "Title"}}),
		},
		"code":           map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}}, "text": "HbA1c de " + marker},
		"subject":        map[string]any{"reference": "Patient/" + pid},
		"performer":      []any{map[string]any{"reference": "#pr1"}},
		"valueQuantity":  map[string]any{"value": 7.2, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
		"interpretation": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}}, "text": "vu par " + marker}},
	}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", obs); r.status != http.StatusCreated {
		t.Fatalf("Observation: %d %s", r.status, r.raw)
	}
	report := map[string]any{"resourceType": "DiagnosticReport", "status": "final", "code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "58410-2"}}},
		"subject": map[string]any{"reference": "Patient/" + pid}, "conclusion": "Conclusion " + marker,
		"presentedForm": []any{map[string]any{"contentType": "text/plain", "data": "WnpvcmdsdWI=", "title": "CR " + marker}}}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/DiagnosticReport", report); r.status != http.StatusCreated {
		t.Fatalf("DiagnosticReport: %d %s", r.status, r.raw)
	}
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+pid+"/$everything", nil); !strings.Contains(string(r.raw), marker) {
		t.Fatalf("the clinician does not see the test content: %d %.300s", r.status, r.raw)
	}
	r := h.as("researcher", "HRESCH", http.MethodGet, "/Observation?code=4548-4&_revinclude=DiagnosticReport:subject", nil)
	all := h.as("researcher", "HRESCH", http.MethodGet, "/DiagnosticReport?code=58410-2", nil)
	for _, a := range []reply{r, all} {
		if a.status != http.StatusOK || len(anySlice(a.body["entry"])) == 0 {
			t.Fatalf("researcher: %d %.300s", a.status, a.raw)
		}
		raw := string(a.raw)
		for _, leak := range []string{marker, "WnpvcmdsdWI=", pid, "75011"} {
			if strings.Contains(raw, leak) {
				t.Errorf("the researcher's answer holds %q: %s", leak, raw)
			}
		}
	}
	// A Consent's actor named by identifier (an organisation's SIREN):
	// the identifier goes too.
	tok := h.token("patient", func(c *auth.Claims) { c.Patient = "Patient/" + pid })
	consent := map[string]any{"resourceType": "Consent", "status": "active",
		"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}}},
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
		"patient":  map[string]any{"reference": "Patient/" + pid},
		"provision": map[string]any{"type": "deny", "actor": []any{map[string]any{
			"role":      map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}}},
			"reference": map[string]any{"identifier": map[string]any{"system": "https://sirene.fr", "value": "552100554"}}}},
			"purpose": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HMARKT"}}}}
	if r := h.do(http.MethodPost, "/Consent", consent, "Authorization", "Bearer "+tok, "X-Purpose-Of-Use", "PATRQT"); r.status != http.StatusCreated {
		t.Fatalf("Consent: %d %s", r.status, r.raw)
	}
	if c := h.as("researcher", "HRESCH", http.MethodGet, "/Consent", nil); c.status != http.StatusOK || len(anySlice(c.body["entry"])) == 0 || strings.Contains(string(c.raw), "552100554") {
		t.Errorf("researcher Consent: %d, the actor's identifier kept: %v: %.400s", c.status, strings.Contains(string(c.raw), "552100554"), c.raw)
	}
	// A Provenance whose agent is named by an identifier only keeps a
	// masked agent: still valid R4 (agent and agent.who are required).
	prov := map[string]any{"resourceType": "Provenance", "recorded": "2026-03-14T10:00:00Z",
		"target": []any{map[string]any{"reference": "Patient/" + pid}},
		"agent":  []any{map[string]any{"who": map[string]any{"identifier": map[string]any{"system": "https://finess.esante.gouv.fr", "value": "750712184"}}}}}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Provenance", prov); r.status != http.StatusCreated {
		t.Fatalf("Provenance: %d %s", r.status, r.raw)
	}
	v, err := conformance.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	pr := h.as("researcher", "HRESCH", http.MethodGet, "/Provenance", nil)
	entries := anySlice(pr.body["entry"])
	if pr.status != http.StatusOK || len(entries) == 0 {
		t.Fatalf("researcher Provenance: %d %.300s", pr.status, pr.raw)
	}
	for _, e := range entries {
		res, _ := dig(e, "resource").(map[string]any)
		if err := v.Validate(res); err != nil || strings.Contains(fmt.Sprint(res), "750712184") {
			t.Errorf("researcher Provenance not valid R4 (%v) or keeping the FINESS: %v", err, res)
		}
	}
	// A required attachment is masked, not left out (DocumentReference
	// needs content); an extension emptied of its string is dropped
	// (ext-1); an Organization keeps a masked name (org-1).
	doc := map[string]any{"resourceType": "DocumentReference", "status": "current", "subject": map[string]any{"reference": "Patient/" + pid},
		"type":    map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "11506-3"}}},
		"content": []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain", "data": "SGVsbG8=", "title": "CR " + marker}}}}
	if r := h.as("hospital-clinician", "TREAT", http.MethodPost, "/DocumentReference", doc); r.status != http.StatusCreated {
		t.Fatalf("DocumentReference: %d %s", r.status, r.raw)
	}
	strExt := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "72166-2"}}},
		"subject": map[string]any{"reference": "Patient/" + pid}, "extension": []any{ext("str", map[string]any{"valueString": marker})}}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", strExt); r.status != http.StatusCreated {
		t.Fatalf("Observation: %d %s", r.status, r.raw)
	}
	for _, path := range []string{"/DocumentReference", "/Observation?code=72166-2"} {
		r := h.as("researcher", "HRESCH", http.MethodGet, path, nil)
		entries := anySlice(r.body["entry"])
		if r.status != http.StatusOK || len(entries) == 0 || strings.Contains(string(r.raw), marker) {
			t.Fatalf("researcher GET %s: %d, %d entries %.300s", path, r.status, len(entries), r.raw)
		}
		for _, e := range entries {
			res, _ := dig(e, "resource").(map[string]any)
			if err := v.Validate(res); err != nil {
				t.Errorf("researcher GET %s: not valid R4: %v", path, err)
			}
			switch str(res, "resourceType") {
			case "DocumentReference":
				if dig(res, "content", 0, "attachment", "extension", 0, "valueCode") != "masked" {
					t.Errorf("the DocumentReference's attachment is not masked: %v", res)
				}
			case "Observation":
				if _, ok := res["extension"]; ok {
					t.Errorf("an extension emptied of its string is kept: %v", res)
				}
			case "Organization":
				if dig(res, "_name", "extension", 0, "valueCode") != "masked" && res["identifier"] == nil {
					t.Errorf("an Organization without name nor identifier (org-1): %v", res)
				}
			}
		}
	}
	for _, kept := range []string{"Hemoglobin A1c", `"unit":"%"`, `"code":"H"`} {
		if !strings.Contains(string(r.raw), kept) {
			t.Errorf("the researcher's Observation lost %s: %s", kept, r.raw)
		}
	}
}

// TestPseudonymisedValid: every resource a researcher reads of the native
// demo files and of Synthea bundles is valid R4 once pseudonymised
// (dropping names, text and attachments must leave no required element
// out) and holds no INS.
func TestPseudonymisedValid(t *testing.T) {
	h := newDemoHub(t)
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "demo", "synthea", "*.json"))
	for _, f := range files[:min(2, len(files))] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "", b); r.status != http.StatusOK {
			t.Fatalf("%s: %d %.300s", f, r.status, r.raw)
		}
	}
	v, err := conformance.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	var ins []string
	h.s.db.View(func(tx *store.Tx) error {
		for _, id := range tx.IDs("Patient") {
			for _, e := range tx.Entries("Patient", id) {
				if v, ok := strings.CutPrefix(e.Value, insSystem+"|"); ok && e.Param == "identifier" {
					ins = append(ins, v)
				}
			}
		}
		return nil
	})
	read := 0
	for _, typ := range []string{"Patient", "Encounter", "Condition", "Procedure", "Observation", "DiagnosticReport", "MedicationRequest", "MedicationDispense",
		"Immunization", "AllergyIntolerance", "CarePlan", "Claim", "ExplanationOfBenefit", "Provenance", "Consent", "AdverseEvent", "Practitioner", "PractitionerRole", "Organization"} {
		for path := "/" + typ + "?_count=500"; path != ""; {
			r := h.as("researcher", "HRESCH", http.MethodGet, path, nil)
			if r.status != http.StatusOK {
				if r.status == http.StatusForbidden {
					break // not the researcher's to read
				}
				t.Fatalf("researcher GET %s: %d %.300s", path, r.status, r.raw)
			}
			for _, e := range anySlice(r.body["entry"]) {
				res, _ := dig(e, "resource").(map[string]any)
				read++
				if err := v.Validate(res); err != nil {
					t.Errorf("pseudonymised %s/%s is not valid R4: %v", typ, str(res, "id"), err)
				}
				if typ == "Organization" && res["identifier"] == nil && dig(res, "_name", "extension", 0, "valueCode") != "masked" && res["name"] == nil {
					t.Errorf("pseudonymised Organization without name nor identifier (org-1): %v", res)
				}
			}
			for _, n := range ins {
				if strings.Contains(string(r.raw), n) {
					t.Errorf("researcher GET %s holds an INS", path)
				}
			}
			path = ""
			for _, l := range anySlice(r.body["link"]) {
				if str(l, "relation") == "next" {
					path = strings.TrimPrefix(str(l, "url"), h.url)
				}
			}
		}
	}
	if read < 100 {
		t.Errorf("the researcher read %d resources: want the demo data", read)
	}
}
