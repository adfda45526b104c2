package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/server/auth"
)

// TestConsentReview covers what a black-box review of consents found: an
// objection naming its actor by absolute or versioned reference was
// ignored, a nested permit without actors applied to everyone, a permit
// limited to some data shared everything, and a programme operator's
// Consents spoke for the patient beyond its delegation (opening the record
// to an outsider, locking the care team out, undoing a withdrawal).
func TestConsentReview(t *testing.T) {
	h := newSecureHub(t)
	role := map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}}}
	byIdent := func(sysval string) map[string]any {
		sys, val, _ := strings.Cut(sysval, "|")
		return map[string]any{"role": role, "reference": map[string]any{"identifier": map[string]any{"system": sys, "value": val}}}
	}
	purpose := func(system, code string) []any { return []any{map[string]any{"system": system, "code": code}} }
	treat := purpose("http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT")
	delivery := purpose("https://example.org/fhir/CodeSystem/hub-purpose", "prevention-programme-delivery")
	consentOf := func(pid string, provision map[string]any) map[string]any {
		return map[string]any{"resourceType": "Consent", "status": "active",
			"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
			"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
			"patient":  map[string]any{"reference": "Patient/" + pid}, "provision": provision}
	}
	// seed: a hospital patient with an Observation, and a writer of
	// Consents as the patient.
	seed := func(name string) (pid, oid string, asPatient func(method, path string, body any) reply) {
		pid = seedHospital(t, h, name)
		oid = str(h.as("hospital-clinician", "TREAT", http.MethodGet, "/Observation?subject=Patient/"+pid, nil).body, "entry", 0, "resource", "id")
		if oid == "" {
			t.Fatalf("%s: no Observation", name)
		}
		tok := h.token("patient", func(c *auth.Claims) { c.Patient = "Patient/" + pid })
		asPatient = func(method, path string, body any) reply {
			return h.do(method, path, body, "Authorization", "Bearer "+tok, "X-Purpose-Of-Use", "PATRQT")
		}
		return pid, oid, asPatient
	}
	read := func(actor, purpose, oid string) int {
		return h.as(actor, purpose, http.MethodGet, "/Observation/"+oid, nil).status
	}
	created := func(r reply) string {
		t.Helper()
		if r.status != http.StatusCreated {
			t.Fatalf("Consent: %d %s", r.status, r.raw)
		}
		return strings.Split(strings.TrimPrefix(r.header.Get("Location"), h.url+"/Consent/"), "/")[0]
	}

	t.Run("objection by absolute or versioned reference", func(t *testing.T) {
		for i, form := range []string{"absolute", "versioned"} {
			pid, oid, asPatient := seed("Absolue" + form)
			org := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Organization", map[string]any{"resourceType": "Organization",
				"identifier": []any{map[string]any{"system": "https://finess.esante.gouv.fr", "value": strings.TrimPrefix(auth.DevHospital, "https://finess.esante.gouv.fr|")}}})
			orgID := strings.Split(strings.TrimPrefix(org.header.Get("Location"), h.url+"/Organization/"), "/")[0]
			ref := h.url + "/Organization/" + orgID
			if i == 1 {
				ref = "Organization/" + orgID + "/_history/1"
			}
			created(asPatient(http.MethodPost, "/Consent", consentOf(pid, map[string]any{"type": "deny",
				"actor": []any{map[string]any{"role": role, "reference": map[string]any{"reference": ref}}}})))
			if st := read("hospital-clinician", "TREAT", oid); st != http.StatusForbidden {
				t.Errorf("%s reference: the clinician of the objected organisation reads %d, want 403", form, st)
			}
		}
	})
	t.Run("nested permit without actors", func(t *testing.T) {
		pid, oid, asPatient := seed("Imbriquee")
		created(asPatient(http.MethodPost, "/Consent", consentOf(pid, map[string]any{"type": "deny", "actor": []any{byIdent(auth.DevHospital)},
			"provision": []any{map[string]any{"type": "permit", "purpose": delivery}}})))
		if st := read("programme-operator", "prevention-programme-delivery", oid); st != http.StatusForbidden {
			t.Errorf("the programme operator reads %d through a nested permit of a deny naming the hospital, want 403", st)
		}
	})
	t.Run("permit limited to some data", func(t *testing.T) {
		pid, oid, asPatient := seed("Limitee")
		created(asPatient(http.MethodPost, "/Consent", consentOf(pid, map[string]any{"type": "permit", "actor": []any{byIdent(auth.DevPractice)}, "purpose": treat,
			"data": []any{map[string]any{"meaning": "instance", "reference": map[string]any{"reference": "Observation/other"}}}})))
		if st := read("gp", "TREAT", oid); st != http.StatusForbidden {
			t.Errorf("the GP reads %d with a permit limited to another Observation, want 403", st)
		}
	})
	t.Run("programme operator's Consents", func(t *testing.T) {
		pid, oid, asPatient := seed("Deleguee")
		po := func(provision map[string]any) string {
			return created(h.as("programme-operator", "prevention-programme-delivery", http.MethodPost, "/Consent", consentOf(pid, provision)))
		}
		po(map[string]any{"type": "permit", "actor": []any{byIdent(auth.DevPractice)}, "purpose": treat})
		if st := read("gp", "TREAT", oid); st != http.StatusForbidden {
			t.Errorf("the GP reads %d on the operator's permit for TREAT, want 403", st)
		}
		po(map[string]any{"type": "deny", "actor": []any{byIdent(auth.DevHospital)}})
		if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+pid, nil); r.status != http.StatusOK {
			t.Errorf("the care team reads the Patient: %d after the operator's objection, want 200", r.status)
		}
		enrol := map[string]any{"type": "permit", "actor": []any{byIdent(auth.DevOperator)}, "purpose": delivery}
		id := po(enrol)
		if st := read("programme-operator", "prevention-programme-delivery", oid); st != http.StatusOK {
			t.Fatalf("the operator reads %d on its enrolment consent, want 200", st)
		}
		withdrawn := consentOf(pid, enrol)
		withdrawn["id"], withdrawn["status"] = id, "inactive"
		if r := asPatient(http.MethodPut, "/Consent/"+id, withdrawn); r.status != http.StatusOK {
			t.Fatalf("the patient withdraws: %d %s", r.status, r.raw)
		}
		po(enrol)
		if st := read("programme-operator", "prevention-programme-delivery", oid); st != http.StatusForbidden {
			t.Errorf("the operator reads %d on a copy of the consent the patient withdrew, want 403", st)
		}
	})
}

// TestPatientReadsOwnWithAnotherPatient: a patient reads a resource about
// itself that names another patient as performer (the right of access;
// once refused as another's record); the other patient does not.
func TestPatientReadsOwnWithAnotherPatient(t *testing.T) {
	h := newSecureHub(t)
	a, b := seedHospital(t, h, "Executante"), seedHospital(t, h, "Sujette")
	obs := h.as("hospital-clinician", "TREAT", http.MethodPost, "/Observation", map[string]any{"resourceType": "Observation", "status": "final",
		"code": map[string]any{"text": "tension"}, "subject": map[string]any{"reference": "Patient/" + b},
		"performer": []any{map[string]any{"reference": "Patient/" + a}}})
	if obs.status != http.StatusCreated {
		t.Fatalf("Observation: %d %s", obs.status, obs.raw)
	}
	oid := strings.Split(strings.TrimPrefix(obs.header.Get("Location"), h.url+"/Observation/"), "/")[0]
	as := func(pid string) int {
		tok := h.token("patient", func(c *auth.Claims) { c.Patient = "Patient/" + pid })
		return h.do(http.MethodGet, "/Observation/"+oid, nil, "Authorization", "Bearer "+tok, "X-Purpose-Of-Use", "PATRQT").status
	}
	if st := as(b); st != http.StatusOK {
		t.Errorf("the subject patient reads %d, want 200", st)
	}
	if st := as(a); st == http.StatusOK {
		t.Errorf("the performer patient reads %d, want a refusal", st)
	}
}

// TestSearchRecordNamesConsents: a search whose results rest on a
// patient's Consent (per-resource checks) names it in its AuditEvent's
// agent.policy, as a read does (once only reads and $everything did).
func TestSearchRecordNamesConsents(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Recherchee")
	tok := h.token("patient", func(c *auth.Claims) { c.Patient = "Patient/" + pid })
	consent := map[string]any{"resourceType": "Consent", "status": "active",
		"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
		"patient":  map[string]any{"reference": "Patient/" + pid},
		"provision": map[string]any{"type": "permit", "purpose": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}},
			"actor": []any{map[string]any{"role": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}}},
				"reference": map[string]any{"identifier": map[string]any{"system": "https://finess.esante.gouv.fr", "value": strings.TrimPrefix(auth.DevPractice, "https://finess.esante.gouv.fr|")}}}}}}
	r := h.do(http.MethodPost, "/Consent", consent, "Authorization", "Bearer "+tok, "X-Purpose-Of-Use", "PATRQT")
	if r.status != http.StatusCreated {
		t.Fatalf("Consent: %d %s", r.status, r.raw)
	}
	cid := strings.Split(strings.TrimPrefix(r.header.Get("Location"), h.url+"/"), "/_history")[0]
	s := h.as("gp", "TREAT", http.MethodGet, "/Observation?subject=Patient/"+pid, nil)
	if s.status != http.StatusOK || num(s.body, "total") == 0 {
		t.Fatalf("the GP's search: %d, total %d", s.status, num(s.body, "total"))
	}
	if err := h.s.audit.Flush(); err != nil {
		t.Fatal(err)
	}
	ev := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent/"+s.header.Get("X-Decision-Id"), nil)
	found := false
	for _, a := range anySlice(ev.body["agent"]) {
		found = found || slices.Contains(anyStrings(dig(a, "policy")), cid)
	}
	if !found {
		t.Errorf("the search's AuditEvent names no %s in agent.policy: %s", cid, ev.raw)
	}
}
