package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/server/auth"
)

// TestConsentNestedAndRoleActors: a nested provision holds within its
// parent's period (a nested permit outlived its expired parent: black-box
// review), and a provision naming a PractitionerRole names its
// practitioner (an objection naming one was accepted and ignored).
func TestConsentNestedAndRoleActors(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Imbrique")
	obs := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Observation?subject=Patient/"+pid, nil)
	oid := str(obs.body, "entry", 0, "resource", "id")
	if oid == "" {
		t.Fatalf("no Observation: %s", obs.raw)
	}
	patientTok := h.token("patient", func(c *auth.Claims) { c.Patient = "Patient/" + pid })
	consent := func(provision map[string]any) string {
		body := map[string]any{"resourceType": "Consent", "status": "active",
			"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
			"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
			"patient":  map[string]any{"reference": "Patient/" + pid}, "provision": provision}
		r := h.do(http.MethodPost, "/Consent", body, "Authorization", "Bearer "+patientTok, "X-Purpose-Of-Use", "PATRQT")
		if r.status != http.StatusCreated {
			t.Fatalf("patient writes a Consent: %d %s", r.status, r.raw)
		}
		return strings.Split(strings.TrimPrefix(r.header.Get("Location"), h.url+"/Consent/"), "/")[0]
	}
	role := map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}}}
	gpOrg := map[string]any{"role": role, "reference": map[string]any{"identifier": map[string]any{"system": "https://finess.esante.gouv.fr", "value": "750000001"}}}
	treat := []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}}
	if r := h.as("gp", "TREAT", http.MethodGet, "/Observation/"+oid, nil); r.status != http.StatusForbidden {
		t.Fatalf("gp outside the care team: %d, want 403 before any consent", r.status)
	}
	consent(map[string]any{"type": "deny", "period": map[string]any{"start": "2025-01-01", "end": "2025-03-01"},
		"provision": []any{map[string]any{"type": "permit", "actor": []any{gpOrg}, "purpose": treat}}})
	if r := h.as("gp", "TREAT", http.MethodGet, "/Observation/"+oid, nil); r.status != http.StatusForbidden {
		t.Errorf("gp with a nested permit inside an expired deny: %d, want 403", r.status)
	}

	// The clinician's PractitionerRole, named by an objection.
	prac := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Practitioner", map[string]any{"resourceType": "Practitioner",
		"identifier": []any{map[string]any{"system": "https://rpps.esante.gouv.fr", "value": "10000000011"}}})
	if prac.status != http.StatusCreated {
		t.Fatalf("practitioner: %d %s", prac.status, prac.raw)
	}
	pracID := strings.Split(strings.TrimPrefix(prac.header.Get("Location"), h.url+"/Practitioner/"), "/")[0]
	pr := h.as("hospital-it", "HOPERAT", http.MethodPost, "/PractitionerRole", map[string]any{"resourceType": "PractitionerRole",
		"practitioner": map[string]any{"reference": "Practitioner/" + pracID}})
	if pr.status != http.StatusCreated {
		t.Fatalf("role: %d %s", pr.status, pr.raw)
	}
	roleID := strings.Split(strings.TrimPrefix(pr.header.Get("Location"), h.url+"/PractitionerRole/"), "/")[0]
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Observation/"+oid, nil); r.status != http.StatusOK {
		t.Fatalf("clinician before the objection: %d", r.status)
	}
	consent(map[string]any{"type": "deny", "actor": []any{map[string]any{"role": role, "reference": map[string]any{"reference": "PractitionerRole/" + roleID}}}})
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Observation/"+oid, nil); r.status != http.StatusForbidden {
		t.Errorf("clinician after an objection naming its PractitionerRole: %d, want 403", r.status)
	}
}
