package conformance

import (
	"encoding/json"
	"fmt"
	"sync"
)

// HasElement reports whether resource type typ has the top-level element
// name (the schema's properties of its definition, schemaProps).
func HasElement(typ, name string) bool {
	if !IsResourceType(typ) {
		return false
	}
	_, ok := schemaProps()[typ][name]
	return ok
}

// Required reports whether element name of type typ (a resource, or a
// backbone element as the schema names it: Claim_Insurance) is required:
// listed in the "required" of the schema's definition.
func Required(typ, name string) bool {
	return schemaRequired()[typ][name]
}

var schemaRequired = sync.OnceValue(func() map[string]map[string]bool {
	var doc struct {
		Definitions map[string]struct {
			Required []string `json:"required"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(schemaJSON, &doc); err != nil {
		panic(fmt.Sprintf("conformance: embedded fhir.schema.json: %v", err))
	}
	out := map[string]map[string]bool{}
	for typ, d := range doc.Definitions {
		for _, n := range d.Required {
			if out[typ] == nil {
				out[typ] = map[string]bool{}
			}
			out[typ][n] = true
		}
	}
	return out
})
