package conformance

import (
	"encoding/json"
	"fmt"
	"sync"
)

// topElements maps each resource type to its top-level element names, read
// from the embedded schema once.
var topElements = sync.OnceValue(func() map[string]map[string]bool {
	var doc struct {
		Definitions map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(schemaJSON, &doc); err != nil {
		panic(fmt.Sprintf("conformance: embedded fhir.schema.json: %v", err))
	}
	out := map[string]map[string]bool{}
	for _, name := range ResourceTypes() {
		props := map[string]bool{}
		for p := range doc.Definitions[name].Properties {
			props[p] = true
		}
		out[name] = props
	}
	return out
})

// HasElement reports whether resource type typ has the top-level element name.
func HasElement(typ, name string) bool { return topElements()[typ][name] }
