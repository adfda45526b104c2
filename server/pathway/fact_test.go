package pathway_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parcours-sante/parcours/mappings/hospital"
	"github.com/parcours-sante/parcours/mappings/liability"
	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/pathway"
)

func resources(t *testing.T, raw string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFacts covers every enrichment of Facts on resources written by hand
// in the shapes the mappers (and FHIR senders) produce.
func TestFacts(t *testing.T) {
	rs := resources(t, `[
	  {"resourceType": "Organization", "id": "org", "identifier": [{"system": "https://finess.esante.gouv.fr", "value": "750712184"}]},
	  {"resourceType": "Organization", "id": "noFiness", "identifier": [{"system": "https://sirene.fr", "value": "1"}]},
	  {"resourceType": "Practitioner", "id": "dr", "qualification": [{"code": {"coding": [{"system": "urn:q", "code": "SM54"}]}}]},
	  {"resourceType": "PractitionerRole", "id": "role", "practitioner": {"reference": "Practitioner/dr"},
	   "specialty": [{"coding": [{"system": "https://example.org/fhir/CodeSystem/specialty", "code": "medecine-generale"}]}]},
	  {"resourceType": "Patient", "id": "p1", "birthDate": "1955-03-14", "gender": "male", "deceasedDateTime": "2026-09-01T10:00:00+02:00",
	   "address": [{"postalCode": "13001"}, {"use": "home", "postalCode": "97110"}]},
	  {"resourceType": "Encounter", "id": "stay", "meta": {"source": "urn:parcours:hospital-it:https://finess.esante.gouv.fr|750712184"},
	   "status": "finished", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
	   "type": [{"coding": [{"system": "https://example.org/fhir/CodeSystem/ghm", "code": "05M09T"}]}],
	   "serviceType": {"coding": [{"system": "https://example.org/fhir/CodeSystem/pmsi-field", "code": "MCO"}]},
	   "period": {"start": "2026-03-02", "end": "2026-03-10"},
	   "serviceProvider": {"reference": "https://hub.example/fhir/Organization/org/_history/2"},
	   "hospitalization": {
	     "admitSource": {"coding": [{"system": "https://example.org/fhir/CodeSystem/pmsi-provenance", "code": "5"}]},
	     "dischargeDisposition": {"coding": [{"system": "https://example.org/fhir/CodeSystem/pmsi-mode", "code": "8"}]}},
	   "diagnosis": [{"condition": {"reference": "Condition/dp"}, "rank": 1},
	                 {"condition": {"reference": "Condition/das"}, "use": {"coding": [{"system": "https://example.org/fhir/CodeSystem/pmsi-diagnosis-type", "code": "DAS"}]}}],
	   "extension": [{"url": "https://example.org/fhir/StructureDefinition/pathway-stage", "valueCoding": {"code": "hospitalisation"}}]},
	  {"resourceType": "Condition", "id": "dp", "code": {"coding": [{"system": "https://smt.esante.gouv.fr/terminologie-cim-10", "code": "I50.9"}]},
	   "recordedDate": "2026-03-10", "subject": {"reference": "Patient/p1"}},
	  {"resourceType": "Condition", "id": "das", "code": {"coding": [{"system": "https://smt.esante.gouv.fr/terminologie-cim-10", "code": "E11.9"}]},
	   "encounter": {"reference": "Encounter/stay"}, "recordedDate": "2026-03-10",
	   "extension": [{"url": "https://example.org/fhir/StructureDefinition/pmsi-diagnosis-type", "valueCoding": {"code": "DAS"}}]},
	  {"resourceType": "Procedure", "id": "echo", "status": "completed", "encounter": {"reference": "Encounter/stay"},
	   "code": {"coding": [{"system": "https://smt.esante.gouv.fr/terminologie-ccam", "code": "DZQM006"}]}, "performedDateTime": "2026-03-03T09:30:00Z"},
	  {"resourceType": "Encounter", "id": "gp", "class": {"code": "AMB"}, "period": {"start": "2026-03-14"},
	   "participant": [{"individual": {"reference": "PractitionerRole/role"}}]},
	  {"resourceType": "Encounter", "id": "gp2", "class": {"code": "VR"}, "period": {"start": "2026-03-20", "end": "2026-03-20"},
	   "participant": [{"individual": {"reference": "Practitioner/dr"}}], "serviceProvider": {"reference": "Organization/noFiness"}},
	  {"resourceType": "Observation", "id": "hba1c", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}, {"system": "https://example.org/fhir/CodeSystem/nabm", "code": "1577"}]},
	   "effectiveDateTime": "2026-04-02", "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}],
	   "performer": [{"reference": "PractitionerRole/role"}]},
	  {"resourceType": "Observation", "id": "wrong", "status": "entered-in-error", "code": {"coding": [{"code": "x"}]}, "effectiveDateTime": "2026-04-02"},
	  {"resourceType": "MedicationDispense", "id": "md", "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "A10BA02"}]},
	   "whenHandedOver": "2026-03-14", "daysSupply": {"value": 90, "unit": "d"}, "performer": [{"actor": {"reference": "PractitionerRole/role"}}]},
	  {"resourceType": "Immunization", "id": "flu", "vaccineCode": {"coding": [{"system": "http://www.whocc.no/atc", "code": "J07BB02"}]}, "occurrenceDateTime": "2025-10"},
	  {"resourceType": "AdverseEvent", "id": "ae", "date": "2026-03-10",
	   "category": [{"coding": [{"system": "https://example.org/fhir/CodeSystem/liability-event-category", "code": "defaut-surveillance"}]}],
	   "contained": [{"resourceType": "Location", "id": "service", "managingOrganization": {"reference": "Organization/org"}}],
	   "location": {"reference": "#service"},
	   "extension": [{"url": "https://example.org/fhir/StructureDefinition/indemnity", "extension": [{"url": "reserve", "valueMoney": {"value": 60000, "currency": "EUR"}}]}]},
	  {"resourceType": "CarePlan", "id": "cp", "period": {"start": "2025-12-01"},
	   "category": [{"coding": [{"system": "https://example.org/fhir/CodeSystem/prevention-programme", "code": "coeur-sante"}]}],
	   "activity": [{"detail": {"code": {"coding": [{"system": "https://example.org/fhir/CodeSystem/prevention-event-type", "code": "coaching"}]}}}]},
	  {"resourceType": "ServiceRequest", "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}},
	  {"resourceType": "Consent", "id": "c", "dateTime": "2026-01-01"}
	]`)
	p := pathway.Facts(rs)
	cim := func(c string) []pathway.Coding { return []pathway.Coding{{System: vocab.SystemCIM10, Code: c}} }
	gpSpecialty := []pathway.Coding{{System: vocab.SpecialtySystem, Code: "medecine-generale"}}
	want := pathway.Patient{
		Ref: "Patient/p1", BirthDate: day("1955-03-14"), Gender: "male",
		Deceased: true, DeceasedDate: day("2026-09-01"), Department: "971",
		Facts: []pathway.Fact{
			{Ref: "ServiceRequest/#17", Type: "ServiceRequest", Codes: []pathway.Coding{{System: vocab.SystemLOINC, Code: "4548-4"}}},
			{Ref: "Immunization/flu", Type: "Immunization", Start: day("2025-10-01"), End: day("2025-10-01"), Codes: []pathway.Coding{{System: vocab.SystemATC, Code: "J07BB02"}}},
			{Ref: "CarePlan/cp", Type: "CarePlan", Start: day("2025-12-01"), Codes: []pathway.Coding{
				{System: vocab.ProgrammeSystem, Code: "coeur-sante"}, {System: vocab.PreventionEventSystem, Code: "coaching"}}},
			{Ref: "Condition/das", Type: "Condition", Start: day("2026-03-02"), Codes: cim("E11.9"), DiagnosisRole: "DAS",
				Encounter: "Encounter/stay", Establishment: "750712184"},
			{Ref: "Condition/dp", Type: "Condition", Start: day("2026-03-02"), Codes: cim("I50.9"), DiagnosisRole: "DP",
				Encounter: "Encounter/stay", Establishment: "750712184"},
			{Ref: "Encounter/stay", Type: "Encounter", Start: day("2026-03-02"), End: day("2026-03-10"), Status: "finished",
				Codes: []pathway.Coding{
					{System: vocab.SystemGHM, Code: "05M09T"}, {System: vocab.PMSIFieldSystem, Code: "MCO"},
					{System: vocab.SystemV3ActCode, Code: "IMP"}},
				Stage: "hospitalisation", StageTop: "traitement", SourceActor: "hospital-it", SourceOrg: "https://finess.esante.gouv.fr|750712184",
				Class: "IMP", ServiceType: []pathway.Coding{{System: vocab.PMSIFieldSystem, Code: "MCO"}},
				AdmitSource: []pathway.Coding{{System: vocab.PMSIProvenanceSystem, Code: "5"}},
				Discharge:   []pathway.Coding{{System: vocab.PMSIModeSystem, Code: "8"}},
				Diagnoses: []pathway.Diagnosis{
					{Condition: "Condition/dp", Role: "DP", Codes: cim("I50.9")},
					{Condition: "Condition/das", Role: "DAS", Codes: cim("E11.9")},
				},
				Establishment: "750712184"},
			{Ref: "Procedure/echo", Type: "Procedure", Start: day("2026-03-03"), End: day("2026-03-03"), Status: "completed",
				Codes: []pathway.Coding{{System: vocab.SystemCCAM, Code: "DZQM006"}}, Encounter: "Encounter/stay", Establishment: "750712184"},
			{Ref: "AdverseEvent/ae", Type: "AdverseEvent", Start: day("2026-03-10"), End: day("2026-03-10"),
				Codes:         []pathway.Coding{{System: vocab.LiabilityEventSystem, Code: "defaut-surveillance"}},
				Establishment: "750712184", Costs: []pathway.Amount{{Kind: "indemnity-reserve", Value: 60000, Currency: "EUR"}}},
			{Ref: "Encounter/gp", Type: "Encounter", Start: day("2026-03-14"), Codes: []pathway.Coding{{Code: "AMB"}}, Class: "AMB", Specialties: gpSpecialty},
			{Ref: "MedicationDispense/md", Type: "MedicationDispense", Start: day("2026-03-14"), End: day("2026-06-12"),
				Codes: []pathway.Coding{{System: vocab.SystemATC, Code: "A10BA02"}}, DaysSupply: 90, Specialties: gpSpecialty},
			{Ref: "Encounter/gp2", Type: "Encounter", Start: day("2026-03-20"), End: day("2026-03-20"), Codes: []pathway.Coding{{Code: "VR"}}, Class: "VR",
				Specialties:   []pathway.Coding{{System: "urn:q", Code: "SM54"}, {System: vocab.SpecialtySystem, Code: "medecine-generale"}},
				Establishment: "Organization/noFiness"},
			{Ref: "Observation/hba1c", Type: "Observation", Start: day("2026-04-02"), End: day("2026-04-02"), Status: "final",
				Codes:          []pathway.Coding{{System: vocab.SystemLOINC, Code: "4548-4"}, {System: vocab.SystemNABM, Code: "1577"}},
				Interpretation: []pathway.Coding{{System: vocab.SystemV3Interpretation, Code: "H"}}, Specialties: gpSpecialty},
		},
	}
	if diff := cmp.Diff(want, p, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Facts (-want +got):\n%s", diff)
	}
}

func TestFactsPatient(t *testing.T) {
	cases := []struct {
		name, patient string
		want          pathway.Patient
	}{
		{"Paris", `{"postalCode": "75011"}`, pathway.Patient{Department: "75"}},
		{"Guadeloupe", `{"postalCode": "97110"}`, pathway.Patient{Department: "971"}},
		{"New Caledonia", `{"postalCode": "98800"}`, pathway.Patient{Department: "988"}},
		{"Corse-du-Sud", `{"postalCode": "20000"}`, pathway.Patient{Department: "2A"}},
		{"Haute-Corse", `{"postalCode": "20200"}`, pathway.Patient{Department: "2B"}},
		{"not a postal code", `{"postalCode": "SW1A 1AA"}`, pathway.Patient{}},
		{"no postal code", `{"city": "Lyon"}`, pathway.Patient{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pathway.Facts(resources(t, `[{"resourceType": "Patient", "id": "x", "address": [`+tc.patient+`]}]`))
			tc.want.Ref = "Patient/x"
			if diff := cmp.Diff(tc.want, p, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// Death: deceasedBoolean alone, and a stay discharged by death.
	p := pathway.Facts(resources(t, `[{"resourceType": "Patient", "deceasedBoolean": true}]`))
	if !p.Deceased || !p.DeceasedDate.IsZero() || p.Ref != "" {
		t.Errorf("deceasedBoolean: %+v", p)
	}
	p = pathway.Facts(resources(t, `[{"resourceType": "Patient", "id": "x", "birthDate": "1938"},
	  {"resourceType": "Encounter", "id": "e", "period": {"start": "2026-08-10", "end": "2026-08-18"},
	   "hospitalization": {"dischargeDisposition": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": "exp"}]}}}]`))
	if !p.Deceased || !p.DeceasedDate.Equal(day("2026-08-18")) || !p.BirthDate.Equal(day("1938-01-01")) {
		t.Errorf("death at discharge: deceased %v %v, birth %v", p.Deceased, p.DeceasedDate, p.BirthDate)
	}
}

// TestFactsOddInput: malformed values leave fields empty, never panic.
func TestFactsOddInput(t *testing.T) {
	p := pathway.Facts([]map[string]any{
		nil,
		{"resourceType": 7},
		{"resourceType": "Patient", "birthDate": "1955-02-30", "address": "75011", "gender": 1},
		{"resourceType": "Encounter", "id": "e", "period": "2026", "class": []any{"x"}, "participant": []any{1, nil, map[string]any{"individual": "x"}}},
		{"resourceType": "Observation", "effectiveDateTime": "2026-13-01", "code": map[string]any{"coding": "x"}, "interpretation": 3},
		{"resourceType": "MedicationDispense", "whenHandedOver": "2026-1-01", "daysSupply": map[string]any{"value": "90"}},
		{"resourceType": "Condition", "onsetDateTime": "20260101", "encounter": map[string]any{"reference": "Encounter/e"}},
		{"resourceType": "AdverseEvent", "location": map[string]any{"reference": "#nowhere"}, "extension": []any{map[string]any{"url": pathway.IndemnityExtensionURL, "extension": "x"}}},
	})
	if !p.BirthDate.IsZero() || p.Gender != "" || p.Department != "" {
		t.Errorf("patient %+v", p)
	}
	if len(p.Facts) != 5 {
		t.Fatalf("%d facts, want 5", len(p.Facts))
	}
	for _, f := range p.Facts {
		if !f.Start.IsZero() || len(f.Codes) > 0 && f.Type != "Encounter" || f.DaysSupply != 0 || len(f.Costs) > 0 {
			t.Errorf("fact %+v", f)
		}
	}
}

// TestExtensionURLs: the URLs restated here are the mappers'.
func TestExtensionURLs(t *testing.T) {
	if pathway.DiagnosisTypeExtensionURL != hospital.DiagnosisTypeExtensionURL {
		t.Errorf("diagnosis type: %s, hospital writes %s", pathway.DiagnosisTypeExtensionURL, hospital.DiagnosisTypeExtensionURL)
	}
	if pathway.IndemnityExtensionURL != liability.IndemnityExtensionURL {
		t.Errorf("indemnity: %s, liability writes %s", pathway.IndemnityExtensionURL, liability.IndemnityExtensionURL)
	}
}

func TestDay(t *testing.T) {
	// 00:30 in Paris is still the 9th in UTC: Day keeps t's own calendar day.
	paris := time.FixedZone("CET", 3600)
	got := pathway.Day(time.Date(2026, 3, 10, 0, 30, 0, 0, paris))
	if !got.Equal(day("2026-03-10")) {
		t.Errorf("Day = %v, want 2026-03-10 UTC", got)
	}
}
