package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/conformance"
)

// TestPseudonymisedDatesAndIdentifiers: what a pseudonymised caller (a
// researcher) reads has no business identifier (stay, claim or
// source-record numbers are indirect identifiers: found in a black-box
// review) nor free-text note, its dates are generalised to the month, and
// it stays valid R4.
func TestPseudonymisedDatesAndIdentifiers(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Pseudo")
	obs := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "HbA1c"},
		"identifier":        []any{map[string]any{"system": "https://example.org/stay", "value": "S2025-00006"}},
		"subject":           map[string]any{"reference": "Patient/" + pid},
		"effectiveDateTime": "2026-03-14T09:30:00+01:00",
		"issued":            "2026-03-14T10:00:00.123Z",
		"valueQuantity":     map[string]any{"value": 7.9, "unit": "%"},
		"note":              []any{map[string]any{"text": "2026-03-14 is a date in free text"}},
	}
	w := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", obs)
	if w.status != http.StatusCreated {
		t.Fatalf("create: %d %s", w.status, w.raw)
	}
	r := h.as("researcher", "HRESCH", http.MethodGet, "/Observation?code:text=HbA1c", nil)
	if r.status != http.StatusOK {
		t.Fatalf("researcher search: %d %s", r.status, r.raw)
	}
	var got map[string]any
	for _, e := range anySlice(r.body["entry"]) {
		res := e.(map[string]any)["resource"].(map[string]any)
		if str(res, "effectiveDateTime") != "" && str(res, "valueQuantity", "unit") == "%" && res["issued"] != nil {
			got = res
		}
	}
	if got == nil {
		t.Fatalf("the researcher does not see the Observation: %s", r.raw)
	}
	b, _ := json.Marshal(got)
	for _, leak := range []string{"S2025-00006", "2026-03-14", pid} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the pseudonymised Observation shows %q: %s", leak, b)
		}
	}
	if str(got, "effectiveDateTime") != "2026-03-01T00:00:00Z" || str(got, "issued") != "2026-03-01T00:00:00Z" {
		t.Errorf("dates %q, %q: want the month", str(got, "effectiveDateTime"), str(got, "issued"))
	}
	if got["identifier"] != nil || got["note"] != nil {
		t.Errorf("identifier or note kept: %v, %v", got["identifier"], got["note"])
	}
	if lu := str(got, "meta", "lastUpdated"); !strings.HasSuffix(lu, "-01T00:00:00Z") {
		t.Errorf("meta.lastUpdated %q: want the month's first instant (the write's time dates the event)", lu)
	}
	read := h.as("researcher", "HRESCH", http.MethodGet, "/Observation/"+str(got, "id"), nil) // its pseudonym
	if lm := read.header.Get("Last-Modified"); read.status != http.StatusOK || !strings.Contains(lm, " 01 ") || !strings.HasSuffix(lm, "00:00:00 GMT") {
		t.Errorf("researcher read: %d, Last-Modified %q: want the month's first instant", read.status, lm)
	}
	// A date criterion to the month still works (finer ones match nothing).
	for q, want := range map[string]int{"date=ge2026-03&date=le2026-03": 1, "date=2026-03-14": 0} {
		r := h.as("researcher", "HRESCH", http.MethodGet, "/Observation?code:text=HbA1c&"+q, nil)
		if n := len(anySlice(r.body["entry"])); r.status != http.StatusOK || n != want {
			t.Errorf("researcher Observation?%s: %d, %d entries, want %d", q, r.status, n, want)
		}
	}
	v, err := conformance.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(got); err != nil {
		t.Errorf("the pseudonymised Observation is not valid R4: %v", err)
	}
}

// TestPseudonymiseHelpers: dates go to the month of their UTC instant (a
// Period keeps its order whatever its offsets), and references are read
// whether relative, versioned or absolute (found in review: those kept
// the real id).
func TestPseudonymiseHelpers(t *testing.T) {
	start, end := toMonth("2026-04-01T00:30:00+02:00").(string), toMonth("2026-03-31T23:00:00Z").(string)
	if start != "2026-03-01T00:00:00Z" || end != "2026-03-01T00:00:00Z" || start > end {
		t.Errorf("period %s – %s: want both in March (UTC), in order", start, end)
	}
	if got := toMonth("2026-03-14"); got != "2026-03" {
		t.Errorf("date: %v", got)
	}
	if got := toMonth("not a date 2026-03-14"); got != "not a date 2026-03-14" {
		t.Errorf("text: %v", got)
	}
	for ref, want := range map[string]string{
		"Observation/123":                                   "Observation 123",
		"Observation/123/_history/2":                        "Observation 123",
		"https://hub.example/fhir/Encounter/abc":            "Encounter abc",
		"https://hub.example/fhir/Encounter/abc/_history/7": "Encounter abc",
		"Patient/p1": "Patient p1",
		"#contained": "",
		"urn:uuid:0b5e2a50-0c3b-4f44-9f0e-3c1d4a2b1c00": "",
		"Nonsense/1": "",
	} {
		typ, id, ok := referenceParts(ref)
		got := ""
		if ok {
			got = typ + " " + id
		}
		if got != want {
			t.Errorf("referenceParts(%q) = %q, want %q", ref, got, want)
		}
	}
}

// TestPseudonymisedBatchEntries: a batch GET by pseudonym shows the
// pseudonym in the entry's fullUrl and location too (once the hub's id:
// black-box review), and a batch whose entry is refused before it is read
// (an unsupported URL) answers the others (once a panic).
func TestPseudonymisedBatchEntries(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Lot")
	obs := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", map[string]any{"resourceType": "Observation", "status": "final",
		"code": map[string]any{"text": "lot"}, "subject": map[string]any{"reference": "Patient/" + pid}})
	oid := strings.Split(strings.TrimPrefix(obs.header.Get("Location"), h.url+"/Observation/"), "/")[0]
	pseudo := h.s.resourcePseudonym("research", "Observation/"+oid)
	b := h.as("researcher", "HRESCH", http.MethodPost, "", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"request": map[string]any{"method": "GET", "url": "Observation/" + pseudo}},
		map[string]any{"request": map[string]any{"method": "GET", "url": "Observation/" + oid + "/_history"}},
	}})
	if b.status != http.StatusOK {
		t.Fatalf("batch: %d %s", b.status, b.raw)
	}
	if strings.Contains(string(b.raw), oid) || strings.Contains(string(b.raw), pid) {
		t.Errorf("the batch answer shows a hub id: %s", b.raw)
	}
	if got := str(b.body, "entry", 0, "fullUrl"); !strings.HasSuffix(got, "/Observation/"+pseudo) {
		t.Errorf("fullUrl %q, want the pseudonym", got)
	}
	if got := str(b.body, "entry", 0, "response", "location"); !strings.HasPrefix(got, "Observation/"+pseudo+"/_history/") {
		t.Errorf("location %q, want the pseudonym", got)
	}
}

// TestPseudonymisedNestedIdentity: what a black-box review found kept —
// a contained Patient's identity, a reference's identifier and display
// without a reference, the Patient's extensions (birth place, mother's
// maiden name), nested business identifiers, meta.source's establishment
// — is gone from what a researcher reads.
func TestPseudonymisedNestedIdentity(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Niche")
	ins := strings.TrimPrefix(testINS("Contenue"), insSystem+"|")
	obs := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "niche"},
		"subject": map[string]any{"reference": "Patient/" + pid},
		"contained": []any{map[string]any{"resourceType": "Patient", "id": "c1",
			"name":       []any{map[string]any{"family": "Contenue", "given": []any{"Jeanne"}}},
			"identifier": []any{map[string]any{"system": insSystem, "value": ins}},
			"birthDate":  "1990-12-24", "address": []any{map[string]any{"line": []any{"1 quai du port"}, "city": "Marseille"}}}},
		"performer": []any{map[string]any{"reference": "#c1"}, map[string]any{"identifier": map[string]any{"system": insSystem, "value": ins}, "display": "Jeanne Contenue"}},
		"basedOn":   []any{map[string]any{"identifier": map[string]any{"system": "https://example.org/requisition", "value": "REQ-777"}}},
	}
	if r := h.as("hospital-clinician", "TREAT", http.MethodPost, "/Observation", obs); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	p := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+pid, nil).body
	p["extension"] = []any{map[string]any{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": "Maiden-Secret"}}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPut, "/Patient/"+pid, p); r.status != http.StatusOK {
		t.Fatalf("update patient: %d %s", r.status, r.raw)
	}
	r := h.as("researcher", "HRESCH", http.MethodGet, "/Observation?code:text=niche&_include=Observation:subject", nil)
	if r.status != http.StatusOK || len(anySlice(r.body["entry"])) != 2 {
		t.Fatalf("researcher search: %d %s", r.status, r.raw)
	}
	for _, leak := range []string{"Contenue", "Jeanne", ins, "quai du port", "Marseille", "1990-12", "REQ-777", "Maiden-Secret", "750712184", "urn:parcours:hospital"} {
		if strings.Contains(string(r.raw), leak) {
			t.Errorf("the researcher's answer shows %q: %s", leak, r.raw)
		}
	}
	// What scrubbing emptied goes (FHIR JSON has no empty objects or
	// arrays): the performer known only by its identifier, the basedOn.
	if strings.Contains(string(r.raw), "{}") || strings.Contains(string(r.raw), "[]") {
		t.Errorf("the researcher's answer holds emptied elements: %s", r.raw)
	}
	if o := dig(r.body, "entry", 0, "resource"); dig(o, "basedOn") != nil || len(anySlice(dig(o, "performer"))) != 1 {
		t.Errorf("the Observation keeps basedOn %v or %d performers, want none and the contained one", dig(o, "basedOn"), len(anySlice(dig(o, "performer"))))
	}
	// Criteria that take what the output hides match nothing: the hub's
	// ids (_id, a reference), business identifiers or an approximate date
	// (their edges fall within the month); a date order is refused.
	oid := strings.TrimPrefix(str(h.as("hospital-clinician", "TREAT", http.MethodGet, "/Observation?code:text=niche", nil).body, "entry", 0, "fullUrl"), h.url+"/Observation/")
	if oid == "" || strings.Contains(oid, "/") {
		t.Fatalf("the clinician does not find the Observation: %q", oid)
	}
	for _, q := range []string{"_id=" + oid, "subject=Patient/" + pid, "based-on:identifier=REQ-777", "code:text=niche&date=ap2026-06"} {
		if r := h.as("researcher", "HRESCH", http.MethodGet, "/Observation?"+q, nil); r.status != http.StatusOK || num(r.body, "total") != 0 {
			t.Errorf("researcher Observation?%s: %d, total %d, want 0: %.300s", q, r.status, num(r.body, "total"), r.raw)
		}
	}
}

// TestPseudonymisedHistoryTimes: _since and _at finer than the month match
// nothing for a pseudonymised caller (they bisected write times to the
// second: black-box review); to the month they still work.
func TestPseudonymisedHistoryTimes(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Temps")
	pseudo := patientPseudonymOf(t, h.hub, "research", pid)
	month := time.Now().UTC().Format("2006-01")
	for q, want := range map[string]int{
		"_since=2020-01-01T00:00:00Z": 0, "_at=" + time.Now().UTC().Format("2006-01-02"): 0,
		"_since=2020-01": 1, "_at=" + month: 1,
	} {
		for _, path := range []string{"/Patient/" + pseudo + "/_history?", "/Patient/_history?"} {
			r := h.as("researcher", "HRESCH", http.MethodGet, path+q, nil)
			if r.status != http.StatusOK || num(r.body, "total") != want {
				t.Errorf("researcher %s%s: %d, total %d, want %d", path, q, r.status, num(r.body, "total"), want)
			}
		}
	}
}

// TestPseudonymisedPatientOperations: $everything and $pathway name the
// patient as reads do — by its pseudonym for a pseudonymised caller (the
// hub's id: 404), by the hub's id for others (a pseudonym: 404) — and
// $pathway's fact dates are to the month under pseudonymisation (they
// were to the day, and the hub's id was accepted: black-box review).
func TestPseudonymisedPatientOperations(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Operations")
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", map[string]any{"resourceType": "Observation", "status": "final",
		"code": map[string]any{"text": "dated"}, "subject": map[string]any{"reference": "Patient/" + pid}, "effectiveDateTime": "2026-03-14T10:00:00Z"}); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	pseudo := patientPseudonymOf(t, h.hub, "research", pid)
	dates := 0
	for _, c := range []struct {
		actor, purpose, path string
		want                 int
	}{
		{"researcher", "HRESCH", "/Patient/" + pseudo + "/$everything", http.StatusOK},
		{"researcher", "HRESCH", "/Patient/" + pid + "/$everything", http.StatusNotFound},
		{"researcher", "HRESCH", "/Patient/" + pseudo + "/$pathway", http.StatusOK},
		{"researcher", "HRESCH", "/Patient/" + pid + "/$pathway", http.StatusNotFound},
		{"hospital-clinician", "TREAT", "/Patient/" + pseudo + "/$everything", http.StatusNotFound},
		{"hospital-clinician", "TREAT", "/Patient/" + pseudo + "/$pathway", http.StatusNotFound},
		{"gp", "TREAT", "/Patient/" + pseudo + "/$everything", http.StatusNotFound},
		{"hospital-clinician", "TREAT", "/Patient/" + pid + "/$pathway", http.StatusOK},
	} {
		r := h.as(c.actor, c.purpose, http.MethodGet, c.path, nil)
		if r.status != c.want {
			t.Errorf("%s %s: %d, want %d: %.200s", c.actor, c.path, r.status, c.want, r.raw)
			continue
		}
		if c.actor == "researcher" && r.status == http.StatusOK {
			if strings.Contains(string(r.raw), pid) || len(anySlice(r.body["entry"])) == 0 {
				t.Errorf("%s: no entry, or the hub's id shows: %.300s", c.path, r.raw)
			}
			for _, e := range anySlice(r.body["entry"]) {
				for _, x := range anySlice(e.(map[string]any)["extension"]) {
					if d := str(x, "valueDateTime"); d != "" {
						dates++
						if d != "2026-03-01T00:00:00Z" {
							t.Errorf("%s: fact date %s, want the month's first instant", c.path, d)
						}
					}
				}
			}
		}
	}
	if dates == 0 {
		t.Error("no fact date in the researcher's $pathway: the check checked nothing")
	}
}

// TestPseudonymOfPatientWithoutINS: a Patient without INS-NIR is shown, and
// read back, by its UUID encrypted; one with an INS-NIR by the INS-NIR
// encrypted (the same person, the same pseudonym, in one domain only).
func TestPseudonymOfPatientWithoutINS(t *testing.T) {
	h := newSecureHub(t)
	r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Patient", patient("SansINS"))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	pid := strings.Split(strings.TrimPrefix(r.header.Get("Location"), h.url+"/Patient/"), "/")[0]
	withINS := seedHospital(t, h, "AvecINS")
	for _, id := range []string{pid, withINS} {
		research := patientPseudonymOf(t, h.hub, "research", id)
		if len(research) != pseudoIDLen || research == patientPseudonymOf(t, h.hub, "liability", id) {
			t.Errorf("Patient/%s: research pseudonym %q (want p- and 26 characters, not the liability one)", id, research)
		}
		got := h.as("researcher", "HRESCH", http.MethodGet, "/Patient/"+research, nil)
		if got.status != http.StatusOK || str(got.body, "id") != research {
			t.Errorf("researcher GET Patient/%s: %d %.200s", research, got.status, got.raw)
		}
	}
}
