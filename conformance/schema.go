package conformance

import (
	"errors"
	"slices"
	"strings"
)

// prepare makes four changes to the decoded schema document before it is
// compiled; the embedded file stays verbatim (SCHEMA-SOURCE.md). It also
// records the primitive types, for diagnostics.
//
//  1. It removes the root oneOf over the 146 resource types. Validate picks
//     the definition from resourceType and never uses the root, but the
//     library compiles a definition's whole enclosing document: with the
//     oneOf, the first compile of any type compiles all 680 definitions
//     (~0.5 s); without it, a type compiles only what it reaches (~0.3-3 ms).
//  2. It replaces definitions/ResourceList, the same oneOf for nested
//     resources, with resourceKeyword, which validates a nested resource
//     against the definition its own resourceType names, instead of trying
//     (and reporting) all 146 alternatives.
//  3. It adds "type": "object" to the 659 definitions that have properties but
//     no type (complex types, backbone elements, resources): as published, the
//     schema accepts "code": "x" where a CodeableConcept is due, which FHIR
//     JSON does not allow.
//  4. It copies the primitive definitions (string, code, dateTime…) into the
//     2,573 properties that $ref them. In draft-06 a $ref ignores its
//     siblings, so {"description": …, "$ref": "#/definitions/date"} means the
//     date definition: the copy validates the same. It saves the library one
//     nested validator per primitive value, about a quarter of the allocations
//     and time of a validation.
//  5. It adds "4.0.1" to the FHIRVersion enums: the published schema predates
//     the 4.0.1 technical correction and rejects the fhirVersion every R4
//     4.0.1 CapabilityStatement declares.
func (v *Validator) prepare(doc any) error {
	root, _ := doc.(map[string]any)
	defs, _ := root["definitions"].(map[string]any)
	if _, ok := defs["ResourceList"]; !ok {
		return errors.New("conformance: embedded schema has no definitions/ResourceList")
	}
	delete(root, "oneOf")
	defs["ResourceList"] = map[string]any{"type": "object", resourceKeyword: true}
	addFHIRVersion(defs)

	primitive := map[string]map[string]any{}
	for name, def := range defs {
		m, _ := def.(map[string]any)
		if _, ok := m["properties"]; ok {
			if m["type"] == nil {
				m["type"] = "object"
			}
			continue
		}
		if name != "ResourceList" {
			primitive[name] = m
		}
		if p, ok := m["pattern"].(string); ok {
			v.primitives[name] = p
		}
	}
	if len(primitive) == 0 || len(v.primitives) == 0 {
		return errors.New("conformance: embedded schema has no primitive types")
	}

	for defName, def := range defs {
		props, _ := def.(map[string]any)["properties"].(map[string]any)
		for prop, p := range props {
			target, _ := p.(map[string]any)
			loc := "/definitions/" + defName + "/properties/" + prop
			if items, ok := target["items"].(map[string]any); ok {
				target, loc = items, loc+"/items"
			}
			ref, _ := target["$ref"].(string)
			name, ok := strings.CutPrefix(ref, "#/definitions/")
			if !ok || primitive[name] == nil {
				continue
			}
			delete(target, "$ref")
			for k, val := range primitive[name] {
				if k != "description" {
					target[k] = val
				}
			}
			v.inlined[loc] = name
		}
	}
	return nil
}

// addFHIRVersion adds "4.0.1" next to "4.0.0" in every fhirVersion enum.
func addFHIRVersion(defs map[string]any) {
	for _, def := range defs {
		props, _ := def.(map[string]any)["properties"].(map[string]any)
		p, _ := props["fhirVersion"].(map[string]any)
		if items, ok := p["items"].(map[string]any); ok {
			p = items
		}
		enum, _ := p["enum"].([]any)
		if slices.Contains(enum, any("4.0.0")) && !slices.Contains(enum, any("4.0.1")) {
			p["enum"] = append(enum, "4.0.1")
		}
	}
}
