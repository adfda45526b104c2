package definitions

import "testing"

func TestDefinitions(t *testing.T) {
	if n := len(SearchParameters()); n != 1375 {
		t.Errorf("SearchParameters: %d, want 1375", n)
	}
	p, ok := Lookup("Observation", "subject")
	if !ok || p.Type != "reference" || p.Expression != "Observation.subject" {
		t.Errorf("Observation.subject = %+v, %v", p, ok)
	}
	if _, ok := Lookup("Patient", "_id"); !ok {
		t.Error("Resource-level _id is not inherited by Patient")
	}
	pc := Compartment("patient")
	if got := pc["Observation"]; len(got) != 2 || got[0] != "subject" || got[1] != "performer" {
		t.Errorf("patient compartment of Observation = %v, want [subject performer]", got)
	}
	if _, ok := pc["Organization"]; ok {
		t.Error("Organization must not be in the patient compartment")
	}
}
