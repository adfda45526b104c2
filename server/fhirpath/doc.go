// Package fhirpath compiles and evaluates FHIRPath expressions (the R4
// dialect, FHIRPath 2.0 with the FHIR additions) over FHIR R4 resources
// decoded from JSON. It is a leaf package that imports nothing from the
// project: search indexing evaluates the SearchParameter expressions with
// it on every stored resource, and FHIRPath Patch, consent and invariant
// checks evaluate their expressions with it.
//
// Compile once, evaluate many times; a compiled *Expr is safe for
// concurrent use:
//
//	e, err := fhirpath.Compile("Observation.subject.where(resolve() is Patient)")
//	...
//	values, err := e.Evaluate(resource) // resource: map[string]any from encoding/json
//
// # Input and output
//
// The input is what encoding/json produces (map[string]any, []any, string,
// bool, json.Number with Decoder.UseNumber, or float64). Output collections
// hold the input's own values for elements (a HumanName is its map, a
// birthDate its string), and for computed values bool, string, int64
// (Integer), json.Number (Decimal, keeping its digits), Date, DateTime, Time
// and Quantity. EvaluateTyped also returns each value's FHIRPath type
// (FHIR.date, FHIR.CodeableConcept, System.Integer...), which tells a
// date from a dateTime or a Reference from an Identifier, and Locate the
// place of each value in the input (its parent object, JSON name and
// index), which FHIRPath Patch needs to change or delete it.
//
// # Types
//
// Values are typed with the R4 element table in model_gen.go, generated
// from the official FHIR R4 JSON schema by modelgen.go (go generate, with
// FHIR_R4_SCHEMA naming fhir.schema.json): resources by their
// resourceType, elements by their definition (Patient.gender is a code,
// Questionnaire.url a uri), choice elements by the suffix of their JSON
// name (Observation.value finds valueQuantity, and value.ofType(Quantity),
// value as Quantity and (value as Quantity) test that suffix). Values found
// outside the model are typed from the JSON: strings, booleans, integers
// (numbers without fraction or exponent) and decimals. Strings are read as
// dates, date-times or times when compared with one. Primitive extensions
// (the _name siblings) are kept with their value: extension(url) works on
// primitives, and a primitive with only extensions is an item whose value is
// nil (hasValue() is false).
//
// FHIR primitives are not System types (Patient.active is FHIR.boolean,
// not System.Boolean); is() follows the type hierarchy (a code is a string,
// an Age a Quantity), while as() and ofType() want the exact primitive type,
// as the official tests do.
//
// # Functions
//
// The FHIRPath functions and operators of R4 are supported, with date and
// time precision semantics, calendar durations and a small UCUM reader for
// quantity comparison and arithmetic, plus sort(), lowBoundary(),
// highBoundary(), precision(), comparable(), trim(), split(), join(),
// encode(), decode(), escape(), unescape(), matchesFull() and lastIndexOf()
// from FHIRPath 2.1, and the FHIR functions extension(), hasValue(),
// getValue(), resolve(), memberOf(), conformsTo() and htmlChecks()
// (elementDefinition() and slice() are not: they need StructureDefinitions).
// Environment variables: %context, %resource, %rootResource, %ucum, %sct,
// %loinc, %`vs-name`, %`ext-name`, and those given by WithEnv.
//
// resolve() finds contained resources (#id), entries of the Bundle being
// evaluated, and whatever the WithResolver function returns; otherwise it
// returns a stub {"resourceType": T, "id": id} read from the reference, so
// that subject.where(resolve() is Patient) can be evaluated at indexing time
// without reading the store. memberOf() is empty unless WithMemberOf is
// given; subsumes() and subsumedBy() are always empty (no terminology).
//
// # Conformance and deviations
//
// The official FHIRPath R4 test suite runs in TestOfficialSuite when the
// shared corpus is present (928 of its 935 cases pass; see suiteSkips), and
// a subset of it on every clone. The deviations are deliberate: strict-mode
// semantic errors (an unknown element, a type that cannot match) need the
// input type at compile time, which Compile does not have, so such paths are
// empty at evaluation; choice elements may also be read by their JSON name
// (Observation.valueQuantity); and as() on several items filters like
// ofType(), which the R4 SearchParameter expressions
// ((Observation.component.value as Quantity)) rely on.
//
// # Limits
//
// Decimals are float64 values carrying their number of decimal digits, so
// arithmetic is exact to about 15 significant digits. Unknown UCUM units
// compare to nothing. Strings built by + and & are limited to 1 MiB and
// repeat() to 100 000 items, so that an expression sent by a client cannot
// exhaust memory.
package fhirpath
