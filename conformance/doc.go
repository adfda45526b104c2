// Package conformance checks FHIR R4 JSON resources against the official R4
// JSON schema (embedded, see SCHEMA-SOURCE.md) and reports every problem at
// once as an *outcome.Error: status 400, one OperationOutcome issue per
// problem, each with an IssueType code and a FHIRPath expression. It is
// imported by package server; from the project it imports only server/outcome.
//
// The schema checks structure (unknown elements, JSON types), the regular
// expressions of the primitive types, the codes of required bindings and the
// few elements it marks required. It does not check most cardinalities,
// invariants (FHIRPath constraints), profiles, terminology or reference
// targets.
//
// A Validator compiles one schema per resource type on first use and caches
// it; it is safe for concurrent use. A valid resource is told valid by a
// verdict tree that mirrors the compiled schema without allocating
// (fast.go); the schema library runs only on resources the tree rejects,
// for their issues. Nested resources (contained,
// Bundle.entry.resource, Bundle.entry.response.outcome,
// Parameters.parameter.resource) are checked against the type named by their
// own resourceType, so their issues are precise rather than the noise of a
// oneOf over 146 types.
//
// Diagnostics never repeat the offending value: values may be health data.
//
// The package also subsets resources for the _summary and _elements search
// parameters (summary.go).
package conformance
