package server

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/server/auth"
)

// TestPolicyReview covers what a black-box review of the access policy
// found: a care actor switching to PUBHLTH read the whole record (around
// an objection and the pharmacist's need-to-know), one justified
// break-the-glass search returned every patient of the hub, a vread read
// the version before a resource was relabelled V, and of two
// X-Purpose-Of-Use headers the first was used (a pricing purpose after it
// went unseen).
func TestPolicyReview(t *testing.T) {
	logs := &lockedBuffer{}
	h := newSecureHubWith(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })
	pid := seedHospital(t, h, "Revue")
	other := seedHospital(t, h, "Autre")
	third := seedHospital(t, h, "Troisieme") // never in the gp's care team
	oid := str(h.as("hospital-clinician", "TREAT", http.MethodGet, "/Observation?subject=Patient/"+pid, nil).body, "entry", 0, "resource", "id")
	if oid == "" {
		t.Fatal("no Observation seeded")
	}

	t.Run("public health is declarations, not the record", func(t *testing.T) {
		for _, actor := range []string{"hospital-clinician", "gp", "pharmacist"} {
			for _, path := range []string{"/Observation/" + oid, "/Observation?subject=Patient/" + pid, "/Patient/" + pid + "/$everything", "/Condition"} {
				r := h.as(actor, "PUBHLTH", http.MethodGet, path, nil)
				if r.status != http.StatusForbidden || !strings.Contains(string(r.raw), "aggregate-only") {
					t.Errorf("%s PUBHLTH GET %s: %d %.200s, want 403 aggregate-only", actor, path, r.status, r.raw)
				}
			}
		}
	})

	t.Run("break-the-glass opens one patient's record", func(t *testing.T) {
		btg := func(path string) reply {
			return h.as("gp", "ETREAT", http.MethodGet, path, nil, "X-Break-Glass-Reason", "SAMU: patient unconscious")
		}
		for _, path := range []string{"/Patient?_count=5", "/Observation", "/Observation?code=HbA1c", "/Observation?subject=Patient/" + pid + ",Patient/" + other,
			"/Observation?subject:missing=false", "/Observation/_history", "/_history", "/?_type=Observation", "/Observation?subject.gender=female",
			// _include and _revinclude reach beyond the patient's matches.
			"/Encounter?patient=" + pid + "&_include=Encounter:service-provider&_revinclude:iterate=Encounter:service-provider",
			"/Observation?subject=Patient/" + pid + "&_include=Observation:subject", "/Patient/" + pid + "/Encounter?_revinclude=Condition:encounter",
			// A Practitioner's or an Encounter's compartment holds many patients'.
			"/Practitioner/x/Encounter", "/Encounter/x/Observation", "/RelatedPerson/x/Observation"} {
			if r := btg(path); r.status != http.StatusForbidden || !strings.Contains(string(r.raw), "break-glass-one-patient-only") {
				t.Errorf("break-the-glass GET %s: %d %.200s, want 403 break-glass-one-patient-only", path, r.status, r.raw)
			}
		}
		for path, want := range map[string]int{
			"/Observation?subject=Patient/" + pid:              1,
			"/Observation?patient=" + pid + "&code:text=HbA1c": 1,
			"/Patient/" + pid + "/Observation":                 1,
			"/Patient?_id=" + pid:                              1,
			"/?_type=Observation,Encounter&patient=" + pid:     2,
		} {
			r := btg(path)
			if n := len(anySlice(r.body["entry"])); r.status != http.StatusOK || n != want {
				t.Errorf("break-the-glass GET %s: %d with %d entries %.200s, want 200 with %d", path, r.status, n, r.raw, want)
			}
		}
		for _, path := range []string{"/Observation/" + oid, "/Observation/" + oid + "/_history", "/Patient/" + pid + "/$everything"} {
			if r := btg(path); r.status != http.StatusOK {
				t.Errorf("break-the-glass GET %s: %d %.200s, want 200", path, r.status, r.raw)
			}
		}
		// A resource of the patient that names a patient of the caller's
		// care team (here as performer) is not a second record opened.
		if r := h.as("gp", "TREAT", http.MethodPost, "/Encounter", map[string]any{"resourceType": "Encounter", "status": "finished",
			"class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}, "subject": map[string]any{"reference": "Patient/" + other}}); r.status != http.StatusCreated {
			t.Fatalf("gp Encounter: %d %s", r.status, r.raw)
		}
		named := h.as("hospital-clinician", "TREAT", http.MethodPost, "/Observation", map[string]any{"resourceType": "Observation", "status": "final",
			"code": map[string]any{"text": "témoin"}, "subject": map[string]any{"reference": "Patient/" + pid}, "performer": []any{map[string]any{"reference": "Patient/" + other}}})
		if named.status != http.StatusCreated {
			t.Fatalf("Observation naming two patients: %d %s", named.status, named.raw)
		}
		nid := strings.Split(strings.TrimPrefix(named.header.Get("Location"), h.url+"/Observation/"), "/")[0]
		if r := btg("/Observation/" + nid); r.status != http.StatusOK {
			t.Errorf("break-the-glass read of the patient's Observation naming a care-team patient: %d %.200s, want 200", r.status, r.raw)
		}
		if r := btg("/Observation?subject=" + h.url + "/Patient/" + pid); r.status != http.StatusOK {
			t.Errorf("break-the-glass search by the patient's absolute reference: %d %.200s, want 200", r.status, r.raw)
		}
		// A Patient linking to the opened one is its own record, not part
		// of the opened one's compartment.
		linked := h.as("hospital-clinician", "TREAT", http.MethodPost, "/Patient", map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Lie"}},
			"link": []any{map[string]any{"other": map[string]any{"reference": "Patient/" + third}, "type": "seealso"}}})
		if linked.status != http.StatusCreated {
			t.Fatalf("linked Patient: %d %s", linked.status, linked.raw)
		}
		lid := strings.Split(strings.TrimPrefix(linked.header.Get("Location"), h.url+"/Patient/"), "/")[0]
		if r := btg("/Patient/" + third + "/Patient"); r.status != http.StatusOK || strings.Contains(string(r.raw), lid) || !strings.Contains(string(r.raw), third) {
			t.Errorf("break-the-glass GET Patient/{id}/Patient: %d, the linked Patient in it: %v: %.300s", r.status, strings.Contains(string(r.raw), lid), r.raw)
		}
		// One request opens one record: a batch of reads of two patients
		// opens the first only.
		batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
			map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/" + pid}},
			map[string]any{"request": map[string]any{"method": "GET", "url": "Observation/" + oid}},
			map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/" + third}},
		}}
		b := h.as("gp", "ETREAT", http.MethodPost, "", batch, "X-Break-Glass-Reason", "SAMU: patient unconscious")
		var statuses []string
		for _, e := range anySlice(b.body["entry"]) {
			statuses = append(statuses, strings.Fields(str(e, "response", "status"))[0])
		}
		if b.status != http.StatusOK || strings.Join(statuses, " ") != "200 200 403" {
			t.Errorf("break-the-glass batch of two patients: %d, entries %v, want 200 200 403", b.status, statuses)
		}
	})

	t.Run("a relabelled resource keeps its past versions", func(t *testing.T) {
		tok := h.token("patient", func(c *auth.Claims) { c.Patient = "Patient/" + pid })
		asPatient := func(path string) reply {
			return h.do(http.MethodGet, path, nil, "Authorization", "Bearer "+tok, "X-Purpose-Of-Use", "PATRQT")
		}
		obs := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "Sérologie"},
			"subject": map[string]any{"reference": "Patient/" + pid}, "valueString": "positive"}
		r := h.as("hospital-clinician", "TREAT", http.MethodPost, "/Observation", obs)
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		id := strings.Split(strings.TrimPrefix(r.header.Get("Location"), h.url+"/Observation/"), "/")[0]
		if r := asPatient("/Observation/" + id + "/_history/1"); r.status != http.StatusOK {
			t.Fatalf("the patient vreads its own Observation: %d %s", r.status, r.raw)
		}
		obs["id"] = id
		obs["meta"] = map[string]any{"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}}}
		if r := h.as("hospital-clinician", "TREAT", http.MethodPut, "/Observation/"+id, obs); r.status != http.StatusOK {
			t.Fatalf("relabel V: %d %s", r.status, r.raw)
		}
		for _, path := range []string{"/Observation/" + id, "/Observation/" + id + "/_history/1", "/Observation/" + id + "/_history"} {
			if r := asPatient(path); r.status != http.StatusForbidden {
				t.Errorf("the patient GET %s after the V relabelling: %d %.200s, want 403", path, r.status, r.raw)
			}
		}
		for _, path := range []string{"/Observation/_history", "/Patient/" + pid + "/$everything"} {
			if r := asPatient(path); r.status != http.StatusOK || strings.Contains(string(r.raw), id) {
				t.Errorf("the patient GET %s after the V relabelling: %d, the Observation in it: %v", path, r.status, strings.Contains(string(r.raw), id))
			}
		}
	})

	t.Run("a conditional create probes nothing the caller may not read", func(t *testing.T) {
		ok := seedHospital(t, h, "Objection")
		cond := func(code string) map[string]any {
			return map[string]any{"resourceType": "Condition", "subject": map[string]any{"reference": "Patient/" + ok},
				"code": map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}}}}
		}
		if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Condition", cond("I50.0")); r.status != http.StatusCreated {
			t.Fatalf("Condition: %d %s", r.status, r.raw)
		}
		// The patient objects to the hospital.
		tok := h.token("patient", func(c *auth.Claims) { c.Patient = "Patient/" + ok })
		sys, val, _ := strings.Cut(auth.DevHospital, "|")
		consent := map[string]any{"resourceType": "Consent", "status": "active",
			"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
			"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
			"patient":  map[string]any{"reference": "Patient/" + ok},
			"provision": map[string]any{"type": "deny", "actor": []any{map[string]any{
				"role":      map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}}},
				"reference": map[string]any{"identifier": map[string]any{"system": sys, "value": val}}}}}}
		if r := h.do(http.MethodPost, "/Consent", consent, "Authorization", "Bearer "+tok, "X-Purpose-Of-Use", "PATRQT"); r.status != http.StatusCreated {
			t.Fatalf("Consent: %d %s", r.status, r.raw)
		}
		for _, code := range []string{"I50.0", "C50.9"} {
			r := h.as("hospital-clinician", "TREAT", http.MethodPost, "/Condition", cond(code), "If-None-Exist", "subject=Patient/"+ok+"&code="+code)
			if r.status != http.StatusCreated {
				t.Errorf("clinician conditional create of %s for a patient who objected: %d %.200s, want 201 whether the hospital holds it or not", code, r.status, r.raw)
			}
		}
		// A writer that may not read back finds its own writes: no
		// duplicate (hospital IT, which wrote the I50.0).
		if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Condition", cond("I50.0"), "If-None-Exist", "subject=Patient/"+ok+"&code=I50.0"); r.status != http.StatusOK {
			t.Errorf("hospital-it conditional create of its own Condition: %d %.200s, want 200 (no duplicate)", r.status, r.raw)
		}
		// Conditional update and delete: the same rule (hospital IT once
		// learnt, and deleted, the clinician's diagnoses by code).
		if r := h.as("hospital-clinician", "TREAT", http.MethodPost, "/Condition", cond("M71.4")); r.status != http.StatusCreated {
			t.Fatalf("clinician Condition: %d %s", r.status, r.raw)
		}
		if r := h.as("hospital-it", "HOPERAT", http.MethodDelete, "/Condition?subject=Patient/"+ok+"&code=M71.4", nil); r.status != http.StatusOK || !strings.Contains(string(r.raw), "no resource matched") {
			t.Errorf("hospital-it conditional delete of the clinician's Condition: %d %.200s, want no match", r.status, r.raw)
		}
		if r := h.as("hospital-it", "HOPERAT", http.MethodPut, "/Condition?subject=Patient/"+ok+"&code=M71.4", cond("M71.4")); r.status != http.StatusCreated {
			t.Errorf("hospital-it conditional update matching the clinician's Condition: %d %.200s, want 201 (no match)", r.status, r.raw)
		}
		// By an identifier the writer sent, a match it may not read still
		// counts (linking, no duplicate).
		if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Patient", patient("Objection", testINS("Objection")), "If-None-Exist", "identifier="+testINS("Objection")); r.status != http.StatusOK {
			t.Errorf("hospital-it conditional create of a known INS: %d %.200s, want 200 (linked)", r.status, r.raw)
		}
	})

	t.Run("one purpose header", func(t *testing.T) {
		for _, order := range [][]string{{"HPAYMT", "underwriting-pricing"}, {"underwriting-pricing", "HPAYMT"}} {
			before := strings.Count(logs.String(), "security alert")
			req, err := http.NewRequest(http.MethodGet, h.url+"/Coverage", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+h.token("mutual-claims"))
			for _, p := range order {
				req.Header.Add("X-Purpose-Of-Use", p)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Decision-Id") == "" {
				t.Errorf("purposes %v: %d (decision %q), want 403 with its decision", order, resp.StatusCode, resp.Header.Get("X-Decision-Id"))
			}
			if after := strings.Count(logs.String(), "security alert"); after != before+1 {
				t.Errorf("purposes %v: %d security alerts, want 1", order, after-before)
			}
		}
		// A forbidden purpose in one header, whatever the separator or
		// the case, alerts too.
		for _, header := range []string{"HPAYMT;underwriting-pricing", "UNDERWRITING-PRICING", "HPAYMT, underwriting-pricing"} {
			before := strings.Count(logs.String(), "security alert")
			if r := h.as("mutual-claims", header, http.MethodGet, "/Coverage", nil); r.status != http.StatusForbidden {
				t.Errorf("purpose %q: %d, want 403", header, r.status)
			}
			if after := strings.Count(logs.String(), "security alert"); after != before+1 {
				t.Errorf("purpose %q: %d security alerts, want 1", header, after-before)
			}
		}
		if r := h.as("mutual-claims", "HPAYMT", http.MethodGet, "/Coverage", nil); r.status != http.StatusOK {
			t.Errorf("one purpose header: %d %s", r.status, r.raw)
		}
	})
}
