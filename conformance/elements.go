package conformance

// HasElement reports whether resource type typ has the top-level element
// name (the schema's properties of its definition, schemaProps).
func HasElement(typ, name string) bool {
	if !IsResourceType(typ) {
		return false
	}
	_, ok := schemaProps()[typ][name]
	return ok
}
