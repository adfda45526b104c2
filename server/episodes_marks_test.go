package server

import (
	"net/http"
	"testing"
)

// TestFreshPatientNotMarked: a Patient created under an id the hub draws
// (POST) is not queued for a pathway recomputation — nothing stored can
// reference it yet — while a Patient created under the client's id (PUT),
// and a fact about the POSTed one, are.
func TestFreshPatientNotMarked(t *testing.T) {
	h := newHub(t)
	m0 := h.s.dirty.marks.Load()
	pid := h.create("Patient", patient("Martin"))
	if m := h.s.dirty.marks.Load(); m != m0 {
		t.Errorf("POST Patient marked %d patients, want none", m-m0)
	}
	if r := h.do(http.MethodPut, "/Patient/client-chosen", map[string]any{"resourceType": "Patient", "id": "client-chosen"}); r.status != http.StatusCreated {
		t.Fatalf("PUT Patient: status %d: %.300s", r.status, r.raw)
	}
	if m := h.s.dirty.marks.Load(); m != m0+1 {
		t.Errorf("PUT Patient (client id) marked %d patients, want 1", m-m0)
	}
	h.create("Condition", map[string]any{"resourceType": "Condition", "subject": map[string]any{"reference": "Patient/" + pid},
		"code": map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C50"}}}})
	if m := h.s.dirty.marks.Load(); m != m0+2 {
		t.Errorf("a Condition of the POSTed Patient marked %d patients in all, want 2", m-m0)
	}
}
