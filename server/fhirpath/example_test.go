package fhirpath_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/parcours-sante/parcours/server/fhirpath"
)

func decodeJSON(s string) any {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		panic(err)
	}
	return v
}

const observation = `{
  "resourceType": "Observation",
  "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
  "subject": {"reference": "Patient/example"},
  "effectiveDateTime": "2016-03-28",
  "valueQuantity": {"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}
}`

// Search indexing: compile the SearchParameter expressions once, evaluate
// them on each resource written.
func ExampleExpr_Evaluate() {
	obs := decodeJSON(observation)
	for _, src := range []string{
		"Observation.subject.where(resolve() is Patient)",
		"(Observation.value as Quantity).value",
		"Observation.effective",
	} {
		values, err := fhirpath.MustCompile(src).Evaluate(obs)
		fmt.Println(values, err)
	}
	// Output:
	// [map[reference:Patient/example]] <nil>
	// [185] <nil>
	// [2016-03-28] <nil>
}

// Invariants and consent conditions are boolean expressions.
func ExampleExpr_EvaluateBool() {
	obs := decodeJSON(observation)
	e, err := fhirpath.Compile("value.exists() implies (value as Quantity) > 80 'kg'")
	if err != nil {
		panic(err)
	}
	ok, err := e.EvaluateBool(obs)
	fmt.Println(ok, err)
	// Output: true <nil>
}

// The types tell a date from a dateTime, a Reference from an Identifier.
func ExampleExpr_EvaluateTyped() {
	obs := decodeJSON(observation)
	values, _ := fhirpath.MustCompile("effective | subject | value.code").EvaluateTyped(obs)
	for _, v := range values {
		fmt.Println(v.Type, v.Value)
	}
	// Output:
	// FHIR.dateTime 2016-03-28
	// FHIR.Reference map[reference:Patient/example]
	// FHIR.code [lb_av]
}

func ExampleCompile() {
	_, err := fhirpath.Compile("Patient.name.where(use = 'official'")
	fmt.Println(err)
	// Output: fhirpath: 1:36: expected ')', found end of expression
}
