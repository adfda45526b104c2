package conformance

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeResource decodes JSON as the server does: maps, slices and json.Number.
func decodeResource(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

const subsettedTag = `{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}`

// patientJSON has summary elements (identifier, name, birthDate with its
// primitive extension, link), non-summary ones (photo, contact, maritalStatus,
// multipleBirthInteger, communication) and a BackboneElement (link) whose id
// and extension are not summary while other and type are.
const patientJSON = `{
  "resourceType": "Patient",
  "id": "p1",
  "meta": {"versionId": "3", "lastUpdated": "2024-05-02T10:00:00Z"},
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jeanne Martin</div>"},
  "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "2700175123456"}],
  "active": true,
  "name": [{"use": "official", "family": "Martin", "given": ["Jeanne", "Marie"]}],
  "gender": "female",
  "birthDate": "1970-01-01",
  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1970-01-01T08:30:00+01:00"}]},
  "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
  "multipleBirthInteger": 2,
  "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
  "contact": [{"relationship": [{"text": "daughter"}], "name": {"family": "Martin", "given": ["Léa"]}, "telecom": [{"system": "phone", "value": "0600000000"}]}],
  "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]}, "preferred": true}],
  "link": [{"id": "l1", "extension": [{"url": "http://example.org/why", "valueString": "duplicate"}], "other": {"reference": "Patient/p2"}, "type": "seealso"}]
}`

// observationJSON has a value and components; in R4 Observation.component,
// component.code and component.value[x] are summary, component.interpretation,
// component.dataAbsentReason, component.referenceRange, category,
// interpretation, note and referenceRange are not.
const observationJSON = `{
  "resourceType": "Observation",
  "id": "o1",
  "meta": {"tag": [{"system": "http://example.org/parcours/tags", "code": "pathway"}]},
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Glucose 6.3 mmol/L</div>"},
  "status": "final",
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}]},
  "subject": {"reference": "Patient/p1"},
  "effectiveDateTime": "2024-03-01T08:00:00+01:00",
  "valueQuantity": {"value": 6.3, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
  "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}],
  "note": [{"text": "fasting"}],
  "referenceRange": [{"low": {"value": 3.1, "unit": "mmol/L"}, "high": {"value": 6.2, "unit": "mmol/L"}}],
  "component": [
    {"code": {"text": "fasting glucose"}, "valueQuantity": {"value": 6.3, "unit": "mmol/L"}, "interpretation": [{"text": "high"}], "referenceRange": [{"text": "3.1-6.2"}]},
    {"code": {"text": "post-meal glucose"}, "dataAbsentReason": {"text": "not done"}}
  ]
}`

func TestSummary(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		mode     string
		want     string
	}{
		{
			name:     "Patient true",
			resource: patientJSON,
			mode:     "true",
			want: `{
			  "resourceType": "Patient",
			  "id": "p1",
			  "meta": {"versionId": "3", "lastUpdated": "2024-05-02T10:00:00Z", "tag": [` + subsettedTag + `]},
			  "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "2700175123456"}],
			  "active": true,
			  "name": [{"use": "official", "family": "Martin", "given": ["Jeanne", "Marie"]}],
			  "gender": "female",
			  "birthDate": "1970-01-01",
			  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1970-01-01T08:30:00+01:00"}]},
			  "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}]
			}`,
		},
		{
			name:     "Patient text",
			resource: patientJSON,
			mode:     "text",
			want: `{
			  "resourceType": "Patient",
			  "id": "p1",
			  "meta": {"versionId": "3", "lastUpdated": "2024-05-02T10:00:00Z", "tag": [` + subsettedTag + `]},
			  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jeanne Martin</div>"}
			}`,
		},
		{
			name:     "Patient data",
			resource: patientJSON,
			mode:     "data",
			want: `{
			  "resourceType": "Patient",
			  "id": "p1",
			  "meta": {"versionId": "3", "lastUpdated": "2024-05-02T10:00:00Z", "tag": [` + subsettedTag + `]},
			  "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "2700175123456"}],
			  "active": true,
			  "name": [{"use": "official", "family": "Martin", "given": ["Jeanne", "Marie"]}],
			  "gender": "female",
			  "birthDate": "1970-01-01",
			  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1970-01-01T08:30:00+01:00"}]},
			  "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
			  "multipleBirthInteger": 2,
			  "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
			  "contact": [{"relationship": [{"text": "daughter"}], "name": {"family": "Martin", "given": ["Léa"]}, "telecom": [{"system": "phone", "value": "0600000000"}]}],
			  "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]}, "preferred": true}],
			  "link": [{"id": "l1", "extension": [{"url": "http://example.org/why", "valueString": "duplicate"}], "other": {"reference": "Patient/p2"}, "type": "seealso"}]
			}`,
		},
		{
			name:     "Patient false",
			resource: patientJSON,
			mode:     "false",
			want:     patientJSON,
		},
		{
			name:     "Observation true",
			resource: observationJSON,
			mode:     "true",
			want: `{
			  "resourceType": "Observation",
			  "id": "o1",
			  "meta": {"tag": [{"system": "http://example.org/parcours/tags", "code": "pathway"}, ` + subsettedTag + `]},
			  "status": "final",
			  "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}]},
			  "subject": {"reference": "Patient/p1"},
			  "effectiveDateTime": "2024-03-01T08:00:00+01:00",
			  "valueQuantity": {"value": 6.3, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
			  "component": [
			    {"code": {"text": "fasting glucose"}, "valueQuantity": {"value": 6.3, "unit": "mmol/L"}},
			    {"code": {"text": "post-meal glucose"}}
			  ]
			}`,
		},
		{
			name:     "Observation text keeps the mandatory status and code",
			resource: observationJSON,
			mode:     "text",
			want: `{
			  "resourceType": "Observation",
			  "id": "o1",
			  "meta": {"tag": [{"system": "http://example.org/parcours/tags", "code": "pathway"}, ` + subsettedTag + `]},
			  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Glucose 6.3 mmol/L</div>"},
			  "status": "final",
			  "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}]}
			}`,
		},
		{
			name:     "Observation data",
			resource: observationJSON,
			mode:     "data",
			want: `{
			  "resourceType": "Observation",
			  "id": "o1",
			  "meta": {"tag": [{"system": "http://example.org/parcours/tags", "code": "pathway"}, ` + subsettedTag + `]},
			  "status": "final",
			  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
			  "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}]},
			  "subject": {"reference": "Patient/p1"},
			  "effectiveDateTime": "2024-03-01T08:00:00+01:00",
			  "valueQuantity": {"value": 6.3, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
			  "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}],
			  "note": [{"text": "fasting"}],
			  "referenceRange": [{"low": {"value": 3.1, "unit": "mmol/L"}, "high": {"value": 6.2, "unit": "mmol/L"}}],
			  "component": [
			    {"code": {"text": "fasting glucose"}, "valueQuantity": {"value": 6.3, "unit": "mmol/L"}, "interpretation": [{"text": "high"}], "referenceRange": [{"text": "3.1-6.2"}]},
			    {"code": {"text": "post-meal glucose"}, "dataAbsentReason": {"text": "not done"}}
			  ]
			}`,
		},
		{
			name:     "Observation false",
			resource: observationJSON,
			mode:     "false",
			want:     observationJSON,
		},
		{
			name: "an existing SUBSETTED tag is not repeated",
			resource: `{"resourceType": "Patient", "id": "p1", "meta": {"tag": [` + subsettedTag + `]},
			  "gender": "male", "photo": [{"data": "AA=="}]}`,
			mode: "true",
			want: `{"resourceType": "Patient", "id": "p1", "meta": {"tag": [` + subsettedTag + `]}, "gender": "male"}`,
		},
		{
			name: "contentReference children follow the referenced element's flags",
			resource: `{"resourceType": "Bundle", "id": "b1", "type": "searchset", "total": 1,
			  "link": [{"relation": "self", "url": "http://example.org/Patient", "extension": [{"url": "http://example.org/x", "valueString": "y"}]}],
			  "entry": [{"fullUrl": "http://example.org/Patient/p1",
			    "link": [{"relation": "alternate", "url": "http://example.org/p1", "id": "x"}],
			    "resource": {"resourceType": "Patient", "id": "p1", "photo": [{"data": "AA=="}]},
			    "search": {"mode": "match", "extension": [{"url": "http://example.org/x", "valueString": "y"}]}}]}`,
			mode: "true",
			want: `{"resourceType": "Bundle", "id": "b1", "meta": {"tag": [` + subsettedTag + `]}, "type": "searchset", "total": 1,
			  "link": [{"relation": "self", "url": "http://example.org/Patient"}],
			  "entry": [{"fullUrl": "http://example.org/Patient/p1",
			    "link": [{"relation": "alternate", "url": "http://example.org/p1"}],
			    "resource": {"resourceType": "Patient", "id": "p1", "photo": [{"data": "AA=="}]},
			    "search": {"mode": "match"}}]}`,
		},
		{
			name:     "a type outside R4 keeps only resourceType, id and meta",
			resource: `{"resourceType": "Pathway", "id": "x1", "status": "active"}`,
			mode:     "true",
			want:     `{"resourceType": "Pathway", "id": "x1", "meta": {"tag": [` + subsettedTag + `]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := decodeResource(t, tt.resource)
			got, ok := Summary(in, tt.mode)
			if !ok {
				t.Fatalf("Summary(_, %q) = false, want true", tt.mode)
			}
			if diff := cmp.Diff(decodeResource(t, tt.want), got); diff != "" {
				t.Errorf("Summary(_, %q) mismatch (-want +got):\n%s", tt.mode, diff)
			}
			if diff := cmp.Diff(decodeResource(t, tt.resource), in); diff != "" {
				t.Errorf("Summary(_, %q) changed its input (-want +got):\n%s", tt.mode, diff)
			}
		})
	}
}

func TestSummaryUnknownMode(t *testing.T) {
	for _, mode := range []string{"count", "", "TRUE", "summary"} {
		t.Run(mode, func(t *testing.T) {
			got, ok := Summary(decodeResource(t, patientJSON), mode)
			if ok || got != nil {
				t.Errorf("Summary(_, %q) = %v, %t; want nil, false", mode, got, ok)
			}
		})
	}
}

func TestElements(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		names    []string
		want     string
	}{
		{
			name:     "Patient listed elements, unknown names ignored",
			resource: patientJSON,
			names:    []string{"name", "photo", "nickname", "name.family", "birthDate"},
			want: `{
			  "resourceType": "Patient",
			  "id": "p1",
			  "meta": {"versionId": "3", "lastUpdated": "2024-05-02T10:00:00Z", "tag": [` + subsettedTag + `]},
			  "name": [{"use": "official", "family": "Martin", "given": ["Jeanne", "Marie"]}],
			  "birthDate": "1970-01-01",
			  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1970-01-01T08:30:00+01:00"}]},
			  "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}]
			}`,
		},
		{
			name:     "Observation keeps its mandatory status and code",
			resource: observationJSON,
			names:    []string{"valueQuantity", "note", "unknown"},
			want: `{
			  "resourceType": "Observation",
			  "id": "o1",
			  "meta": {"tag": [{"system": "http://example.org/parcours/tags", "code": "pathway"}, ` + subsettedTag + `]},
			  "status": "final",
			  "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}]},
			  "valueQuantity": {"value": 6.3, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
			  "note": [{"text": "fasting"}]
			}`,
		},
		{
			name:     "a choice element by its base name",
			resource: observationJSON,
			names:    []string{"value", "effective[x]"},
			want: `{
			  "resourceType": "Observation",
			  "id": "o1",
			  "meta": {"tag": [{"system": "http://example.org/parcours/tags", "code": "pathway"}, ` + subsettedTag + `]},
			  "status": "final",
			  "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}]},
			  "effectiveDateTime": "2024-03-01T08:00:00+01:00",
			  "valueQuantity": {"value": 6.3, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
			}`,
		},
		{
			name:     "no names",
			resource: patientJSON,
			names:    nil,
			want: `{
			  "resourceType": "Patient",
			  "id": "p1",
			  "meta": {"versionId": "3", "lastUpdated": "2024-05-02T10:00:00Z", "tag": [` + subsettedTag + `]}
			}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := decodeResource(t, tt.resource)
			got := Elements(in, tt.names)
			if diff := cmp.Diff(decodeResource(t, tt.want), got); diff != "" {
				t.Errorf("Elements(_, %q) mismatch (-want +got):\n%s", tt.names, diff)
			}
			if diff := cmp.Diff(decodeResource(t, tt.resource), in); diff != "" {
				t.Errorf("Elements(_, %q) changed its input (-want +got):\n%s", tt.names, diff)
			}
		})
	}
}

// TestSummaryResultDoesNotAlias checks that the results are deep copies:
// changing them leaves the caller's resource as it was.
func TestSummaryResultDoesNotAlias(t *testing.T) {
	subsets := map[string]func(map[string]any) map[string]any{
		"false": func(r map[string]any) map[string]any { m, _ := Summary(r, "false"); return m },
		"true":  func(r map[string]any) map[string]any { m, _ := Summary(r, "true"); return m },
		"data":  func(r map[string]any) map[string]any { m, _ := Summary(r, "data"); return m },
		"elements": func(r map[string]any) map[string]any {
			return Elements(r, []string{"name", "link"})
		},
	}
	for name, subset := range subsets {
		t.Run(name, func(t *testing.T) {
			in := decodeResource(t, patientJSON)
			got := subset(in)
			got["meta"].(map[string]any)["versionId"] = "changed"
			got["name"].([]any)[0].(map[string]any)["family"] = "Changed"
			got["name"].([]any)[0].(map[string]any)["given"].([]any)[0] = "Changed"
			got["link"].([]any)[0].(map[string]any)["type"] = "replaced-by"
			if diff := cmp.Diff(decodeResource(t, patientJSON), in); diff != "" {
				t.Errorf("changing the result changed the input (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummaryData(t *testing.T) {
	var raw map[string]struct {
		Summary   []string            `json:"summary"`
		Mandatory []string            `json:"mandatory"`
		Backbone  []string            `json:"backbone"`
		Refs      map[string]string   `json:"refs"`
		Choice    map[string][]string `json:"choice"`
	}
	dec := json.NewDecoder(bytes.NewReader(summaryJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if len(raw) != 146 {
		t.Errorf("summary.json has %d resource types, want the 146 of R4", len(raw))
	}

	checks := []struct {
		resource string
		list     string
		path     string
		want     bool
	}{
		{"Patient", "summary", "identifier", true},
		{"Patient", "summary", "name", true},
		{"Patient", "summary", "birthDate", true},
		{"Patient", "summary", "deceasedBoolean", true},
		{"Patient", "summary", "deceasedDateTime", true},
		{"Patient", "summary", "photo", false},
		{"Patient", "summary", "contact", false},
		{"Patient", "summary", "text", false},
		{"Patient", "summary", "link.other", true},
		{"Patient", "backbone", "contact", true},
		{"Patient", "backbone", "name", false},
		{"Observation", "summary", "code", true},
		{"Observation", "summary", "valueQuantity", true},
		{"Observation", "summary", "valueString", true},
		{"Observation", "summary", "value[x]", false},
		{"Observation", "summary", "component", true},
		{"Observation", "summary", "component.code", true},
		{"Observation", "summary", "component.valueQuantity", true},
		{"Observation", "summary", "component.interpretation", false},
		{"Observation", "summary", "note", false},
		{"Observation", "mandatory", "status", true},
		{"Observation", "mandatory", "code", true},
		{"Observation", "mandatory", "subject", false},
		{"MedicationRequest", "mandatory", "medicationCodeableConcept", true},
		{"MedicationRequest", "mandatory", "medicationReference", true},
		// Elements that a repackaged R4 snapshot carried from later versions.
		{"ObservationDefinition", "summary", "publisher", false},
		{"Binary", "summary", "url", false},
	}
	for _, c := range checks {
		t.Run(c.resource+"."+c.path+" in "+c.list, func(t *testing.T) {
			def, ok := raw[c.resource]
			if !ok {
				t.Fatalf("no %s in summary.json", c.resource)
			}
			list := map[string][]string{"summary": def.Summary, "mandatory": def.Mandatory, "backbone": def.Backbone}[c.list]
			if got := slices.Contains(list, c.path); got != c.want {
				t.Errorf("%s %s contains %q = %t, want %t", c.resource, c.list, c.path, got, c.want)
			}
		})
	}

	// Every resource: sorted lists, id and meta in the summary, nested
	// summary paths under a BackboneElement, refs pointing at one.
	for typ, def := range raw {
		for name, list := range map[string][]string{"summary": def.Summary, "mandatory": def.Mandatory, "backbone": def.Backbone} {
			if !slices.IsSorted(list) {
				t.Errorf("%s %s is not sorted", typ, name)
			}
		}
		if !slices.Contains(def.Summary, "id") || !slices.Contains(def.Summary, "meta") {
			t.Errorf("%s summary lacks id or meta", typ)
		}
		for _, p := range def.Summary {
			if i := strings.LastIndexByte(p, '.'); i >= 0 {
				parent := p[:i]
				if ref, ok := def.Refs[parent]; ok {
					parent = ref
				}
				if !slices.Contains(def.Backbone, parent) {
					t.Errorf("%s summary path %q is not under a BackboneElement", typ, p)
				}
			}
		}
		for from, to := range def.Refs {
			if !slices.Contains(def.Backbone, to) {
				t.Errorf("%s ref %s → %s does not point at a BackboneElement", typ, from, to)
			}
		}
	}
}
