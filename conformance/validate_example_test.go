package conformance_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/server/outcome"
)

func ExampleValidator_Validate() {
	v, err := conformance.NewValidator()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := json.NewDecoder(strings.NewReader(`{"resourceType": "Patient", "gender": "robot",
		"birthDate": "25/12/1974", "name": [{"given": ["Ann", 7]}], "colour": "red"}`))
	d.UseNumber()
	var patient map[string]any
	if err := d.Decode(&patient); err != nil {
		fmt.Println(err)
		return
	}
	if e, ok := outcome.As(v.Validate(patient)); ok {
		fmt.Println(e.Status)
		for _, is := range e.Issues {
			fmt.Printf("%s %s: %s\n", is.Code, is.Expression[0], is.Diagnostics)
		}
	}
	// Output:
	// 400
	// value Patient.birthDate: value does not match the pattern of date
	// structure Patient.colour: unknown element "colour"
	// value Patient.gender: value is not one of the allowed codes "male", "female", "other", "unknown"
	// structure Patient.name[0].given[1]: wrong JSON type: expected string, found number
}
