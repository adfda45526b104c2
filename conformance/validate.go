package conformance

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/message"

	"github.com/parcours-sante/parcours/server/outcome"
)

// schemaJSON is the official FHIR R4 JSON schema, byte for byte (SCHEMA-SOURCE.md).
//
//go:embed fhir.schema.json
var schemaJSON []byte

const (
	// schemaID is the schema's own "id"; definitions are compiled as schemaID#/definitions/<Name>.
	schemaID = "http://hl7.org/fhir/json-schema/4.0"
	// resourceKeyword is the keyword that replaces definitions/ResourceList in memory.
	resourceKeyword = "parcoursResource"
	// vocabularyURL names the one-keyword vocabulary that implements resourceKeyword.
	vocabularyURL = "urn:parcours:conformance:nested-resource"
	// maxListedCodes is how many allowed codes a diagnostic lists before it only counts them.
	maxListedCodes = 12
)

// resourceTypes is the sorted list of resource types of the schema's
// discriminator mapping, and the same as a set.
var resourceTypes = sync.OnceValues(func() ([]string, map[string]bool) {
	var doc struct {
		Discriminator struct {
			Mapping map[string]string `json:"mapping"`
		} `json:"discriminator"`
	}
	if err := json.Unmarshal(schemaJSON, &doc); err != nil {
		// The schema is embedded at build time: a file that does not decode is a broken build.
		panic(fmt.Sprintf("conformance: embedded fhir.schema.json: %v", err))
	}
	names := make([]string, 0, len(doc.Discriminator.Mapping))
	set := make(map[string]bool, len(doc.Discriminator.Mapping))
	for name := range doc.Discriminator.Mapping {
		names = append(names, name)
		set[name] = true
	}
	slices.Sort(names)
	return names, set
})

// IsResourceType reports whether name is one of the 146 R4 resource types (from the schema's discriminator mapping).
func IsResourceType(name string) bool {
	_, set := resourceTypes()
	return set[name]
}

// ResourceTypes returns the 146 R4 resource type names, sorted.
func ResourceTypes() []string {
	names, _ := resourceTypes()
	return slices.Clone(names)
}

// Validator checks resources against the official FHIR R4 JSON schema.
type Validator struct {
	// primitives maps each primitive type with a pattern (dateTime, id, code…)
	// to that pattern; inlined maps the schema location of each inlined
	// primitive (/definitions/Patient/properties/birthDate) to its type. Both
	// name the type in diagnostics without repeating the value. Read-only.
	primitives map[string]string
	inlined    map[string]string

	// schemas caches one compiled schema per resource type (*jsonschema.Schema),
	// verdicts its verdict tree (*verdict, nil if it has none: fast.go),
	// stored first.
	schemas  sync.Map
	verdicts sync.Map

	mu       sync.Mutex           // guards compiler, patterns and built: the compiler is not safe for concurrent use
	compiler *jsonschema.Compiler // shared: later types reuse the definitions compiled for earlier ones
	patterns patterns             // the compiler's RegexpEngine
	built    map[*jsonschema.Schema]*verdict
}

// Shared returns one Validator for the whole process (compiled schemas are
// cached in it, so sharing saves each user the start-up and compile cost).
var Shared = sync.OnceValues(NewValidator)

// NewValidator loads the embedded schema and checks it against the draft-06
// metaschema. Resource types are compiled on first use.
func NewValidator() (*Validator, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("conformance: decode embedded schema: %w", err)
	}
	v := &Validator{primitives: map[string]string{}, inlined: map[string]string{}, patterns: patterns{}, built: map[*jsonschema.Schema]*verdict{}}
	if err := v.prepare(doc); err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft6)
	c.UseRegexpEngine(v.patterns.compile)
	c.RegisterVocabulary(&jsonschema.Vocabulary{URL: vocabularyURL, Compile: v.compileKeyword})
	if err := c.AddResource(schemaID, doc); err != nil {
		return nil, fmt.Errorf("conformance: add schema: %w", err)
	}
	// Compiling a small definition loads the document and validates it against
	// the metaschema once, so a broken schema fails here and not on a request.
	if _, err := c.Compile(schemaID + "#/definitions/id"); err != nil {
		return nil, fmt.Errorf("conformance: load schema: %w", err)
	}
	v.compiler = c
	return v, nil
}

// schema returns the compiled schema of resource type name, compiling it on first use.
func (v *Validator) schema(name string) (*jsonschema.Schema, error) {
	if s, ok := v.schemas.Load(name); ok {
		return s.(*jsonschema.Schema), nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.schemas.Load(name); ok {
		return s.(*jsonschema.Schema), nil
	}
	s, err := v.compiler.Compile(schemaID + "#/definitions/" + name)
	if err != nil {
		return nil, fmt.Errorf("conformance: compile schema of %s: %w", name, err)
	}
	v.verdicts.Store(name, v.buildVerdict(s))
	v.schemas.Store(name, s)
	return s, nil
}

// Validate checks one resource as decoded by encoding/json with
// Decoder.UseNumber (numbers are json.Number; float64 is accepted too).
//
// It returns nil, or an *outcome.Error with Status 400 and one issue per
// problem, all of them at once, deduplicated and sorted by expression. Each
// issue has severity "error"; code structure (unknown element, wrong JSON
// type), required (missing required element), value (pattern, code or fixed
// value not met) or invalid (anything else); diagnostics that never repeat the
// offending value, which may be health data ("value does not match the pattern
// of dateTime"); and a FHIRPath expression built from the instance location:
// /name/0/given/1 is "Patient.name[0].given[1]", the root is "Patient". A
// missing or unknown resourceType is one issue, code invalid, expression
// "resourceType". Issues of a nested resource (contained, Bundle.entry.resource)
// come from the definition its own resourceType names.
//
// Any other error (a type's schema failing to compile) is an internal failure.
func (v *Validator) Validate(resource map[string]any) error {
	raw, present := resource["resourceType"]
	name, _ := raw.(string)
	if !IsResourceType(name) {
		return outcome.Invalid("resourceType", "%s", resourceTypeProblem{missing: !present}.diagnostics())
	}
	sch, err := v.schema(name)
	if err != nil {
		return err
	}
	if n := v.verdictOf(name); n != nil && n.valid(resource) {
		return nil // neither the library nor jsonRules finds anything (fast.go)
	}
	r := issueReport{v: v, root: name, resource: resource, seen: map[issueKey]bool{}}
	r.jsonRules(resource, name)
	err = sch.Validate(resource)
	var verr *jsonschema.ValidationError
	switch {
	case err == nil:
	case errors.As(err, &verr):
		r.walk(verr)
	default:
		return fmt.Errorf("conformance: validate %s: %w", name, err)
	}
	if r.internal != nil {
		return r.internal
	}
	if len(r.issues) == 0 {
		return nil
	}
	slices.SortFunc(r.issues, func(a, b outcome.Issue) int {
		return cmp.Or(
			cmp.Compare(a.Expression[0], b.Expression[0]),
			cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Diagnostics, b.Diagnostics),
		)
	})
	return &outcome.Error{Status: http.StatusBadRequest, Issues: r.issues}
}

// jsonRules adds the rules of FHIR JSON the schema does not state
// (json.html): an object has content, an array at least one item, and
// null appears only in the arrays of a primitive's extensions, as a
// placeholder ("_given": [null, {…}]) or in the array of values they
// align with ("given": [null, "Marie"]). It also checks numbers against
// their type's pattern, which JSON Schema applies to strings only (1.5
// passed for an integer), and integers against their 32-bit range. def is
// the schema definition of v.
func (r *issueReport) jsonRules(v any, path string) { r.jsonRulesOf(v, path, "") }

func (r *issueReport) jsonRulesOf(v any, path, def string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			r.add(outcome.CodeStructure, path, "an object must have content (FHIR JSON has no empty objects)")
			return
		}
		if rt, ok := x["resourceType"].(string); ok && IsResourceType(rt) {
			def = rt // the resource, or a contained or bundled one
		}
		props := schemaProps()[def]
		for k, e := range x {
			at := path + "." + strings.TrimPrefix(k, "_")
			if e == nil {
				r.add(outcome.CodeStructure, at, "null is not a value in FHIR JSON: leave the element out")
				continue
			}
			p := props[k]
			list, ok := e.([]any)
			if !ok {
				r.number(e, at, p)
				r.jsonRulesOf(e, at, p.ref)
				continue
			}
			if len(list) == 0 {
				r.add(outcome.CodeStructure, at, "an array must have at least one item (FHIR JSON has no empty arrays)")
				continue
			}
			// null only where the other of a primitive's pair of arrays
			// has the item.
			_, paired := x["_"+k]
			if strings.HasPrefix(k, "_") {
				_, paired = x[k[1:]]
			}
			for i, el := range list {
				if el == nil && !paired {
					r.add(outcome.CodeStructure, fmt.Sprintf("%s[%d]", at, i), "null is not a value in FHIR JSON: leave the item out")
					continue
				}
				r.number(el, fmt.Sprintf("%s[%d]", at, i), p)
				r.jsonRulesOf(el, fmt.Sprintf("%s[%d]", at, i), p.ref)
			}
		}
	}
}

// number checks a JSON number against the pattern of its FHIR type and,
// for the integer types, their 32-bit range.
func (r *issueReport) number(v any, path string, p propSchema) {
	n, ok := v.(json.Number)
	if !ok || p.pattern == nil {
		return
	}
	integer := !strings.Contains(p.pattern.String(), ".")
	switch {
	case !p.pattern.MatchString(string(n)):
		r.add(outcome.CodeValue, path, "the number %s does not match its type's pattern %s", n, p.pattern)
	case !validNumber(n, p.pattern, integer):
		r.add(outcome.CodeValue, path, "the integer %s is beyond the 32-bit range of FHIR integers", n)
	}
}

// validNumber reports whether n matches pattern and, for an integer type,
// fits 32 bits (FHIR integer, positiveInt, unsignedInt).
func validNumber(n json.Number, pattern interface{ MatchString(string) bool }, integer bool) bool {
	if !pattern.MatchString(string(n)) {
		return false
	}
	if integer {
		i, err := strconv.ParseInt(string(n), 10, 64)
		return err == nil && i >= math.MinInt32 && i <= math.MaxInt32
	}
	return true
}

// propSchema is what jsonRules needs of a property's schema: the
// definition its value (or items) refers to, and for numbers the pattern.
type propSchema struct {
	ref     string
	pattern *regexp.Regexp
}

// schemaProps maps each definition of the embedded schema to its
// properties, read once.
var schemaProps = sync.OnceValue(func() map[string]map[string]propSchema {
	type prop struct {
		Ref     string `json:"$ref"`
		Type    string `json:"type"`
		Pattern string `json:"pattern"`
		Items   *prop  `json:"items"`
	}
	var doc struct {
		Definitions map[string]struct {
			Type       string          `json:"type"`
			Pattern    string          `json:"pattern"`
			Properties map[string]prop `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(schemaJSON, &doc); err != nil {
		panic(fmt.Sprintf("conformance: embedded fhir.schema.json: %v", err))
	}
	patterns := map[string]*regexp.Regexp{}
	compile := func(p string) *regexp.Regexp {
		if patterns[p] == nil {
			patterns[p] = regexp.MustCompile(p)
		}
		return patterns[p]
	}
	out := map[string]map[string]propSchema{}
	for name, d := range doc.Definitions {
		props := map[string]propSchema{}
		for k, p := range d.Properties {
			if p.Items != nil {
				p = *p.Items
			}
			ps := propSchema{ref: strings.TrimPrefix(p.Ref, "#/definitions/")}
			typ, pattern := p.Type, p.Pattern
			if ref, ok := doc.Definitions[ps.ref]; ok && ref.Properties == nil {
				typ, pattern = ref.Type, ref.Pattern // a primitive by reference
			}
			if typ == "number" && pattern != "" {
				ps.pattern = compile(pattern)
			}
			props[k] = ps
		}
		out[name] = props
	}
	return out
})

// --- nested resources (contained, Bundle.entry.resource, …)

// compileKeyword compiles resourceKeyword, the in-memory replacement of definitions/ResourceList.
func (v *Validator) compileKeyword(_ *jsonschema.CompilerContext, obj map[string]any) (jsonschema.SchemaExt, error) {
	if _, ok := obj[resourceKeyword]; !ok {
		return nil, nil
	}
	return nestedResource{v}, nil
}

// nestedResource validates a nested resource against the definition named by
// its own resourceType. It runs during a validation, never while v.mu is held
// by the same goroutine: compiling the nested type on first use is safe.
type nestedResource struct{ v *Validator }

func (n nestedResource) Validate(ctx *jsonschema.ValidatorContext, val any) {
	obj, ok := val.(map[string]any)
	if !ok {
		return // "type": "object" beside the keyword reports it
	}
	raw, present := obj["resourceType"]
	name, _ := raw.(string)
	if !IsResourceType(name) {
		ctx.AddError(&resourceTypeProblem{missing: !present})
		return
	}
	sch, err := n.v.schema(name)
	if err != nil {
		ctx.AddError(&compileFailure{err})
		return
	}
	if err := ctx.Validate(sch, val, nil); err != nil {
		ctx.AddErr(err)
	}
}

// resourceTypeProblem is a missing or unknown resourceType of a nested resource.
type resourceTypeProblem struct{ missing bool }

func (resourceTypeProblem) KeywordPath() []string { return []string{resourceKeyword} }

func (k resourceTypeProblem) LocalizedString(*message.Printer) string { return k.diagnostics() }

func (k resourceTypeProblem) diagnostics() string {
	if k.missing {
		return "resourceType is missing"
	}
	return "resourceType is not one of the 146 FHIR R4 resource types"
}

// compileFailure carries an internal compile error out of a validation.
type compileFailure struct{ err error }

func (compileFailure) KeywordPath() []string { return []string{resourceKeyword} }

func (k compileFailure) LocalizedString(*message.Printer) string { return k.err.Error() }

// --- issues

// issueReport turns a tree of validation errors into deduplicated issues.
type issueReport struct {
	v        *Validator
	root     string // resource type of the validated resource
	resource map[string]any
	issues   []outcome.Issue
	seen     map[issueKey]bool
	internal error
}

func (r *issueReport) add(code, expression, format string, args ...any) {
	k := issueKey{code: code, expression: expression, diagnostics: fmt.Sprintf(format, args...)}
	if r.seen[k] {
		return
	}
	r.seen[k] = true
	r.issues = append(r.issues, outcome.Issue{
		Severity:    outcome.SeverityError,
		Code:        code,
		Diagnostics: k.diagnostics,
		Expression:  []string{expression},
	})
}

type issueKey struct{ code, expression, diagnostics string }

// walk reports the leaves of the error tree: wrappers (schema, group, $ref) carry causes only.
func (r *issueReport) walk(e *jsonschema.ValidationError) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			r.walk(c)
		}
		return
	}
	at := fhirPath(r.root, r.resource, e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			r.add(outcome.CodeStructure, at+"."+p, "unknown element %q", p)
		}
	case *kind.Required:
		for _, p := range k.Missing {
			r.add(outcome.CodeRequired, at+"."+p, "missing required element %q", p)
		}
	case *kind.Type:
		r.add(outcome.CodeStructure, at, "wrong JSON type: expected %s, found %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.InvalidJsonValue, *kind.FalseSchema:
		r.add(outcome.CodeStructure, at, "not allowed here")
	case *kind.Pattern:
		if p := r.v.primitiveOf(e.SchemaURL, k.Want); p != "" {
			r.add(outcome.CodeValue, at, "value does not match the pattern of %s", p)
		} else {
			r.add(outcome.CodeValue, at, "value does not match the required pattern")
		}
	case *kind.Enum:
		r.add(outcome.CodeValue, at, "value is not one of %s", allowed(k.Want))
	case *kind.Const:
		r.add(outcome.CodeValue, at, "value is not the fixed value %s", quoteCode(k.Want))
	case *resourceTypeProblem:
		r.add(outcome.CodeInvalid, at+".resourceType", "%s", k.diagnostics())
	case *compileFailure:
		r.internal = k.err
	default:
		r.add(outcome.CodeInvalid, at, "fails schema rule %q", strings.Join(e.ErrorKind.KeywordPath(), "/"))
	}
}

// primitiveOf names the primitive type whose pattern failed: the definition
// itself (#/definitions/dateTime), or the type in a choice element's name
// (…/properties/valueDateTime), or the only primitive with that pattern.
func (v *Validator) primitiveOf(schemaURL, pattern string) string {
	_, frag, _ := strings.Cut(schemaURL, "#")
	if name, ok := v.inlined[frag]; ok {
		return name
	}
	toks := strings.Split(strings.TrimPrefix(frag, "/"), "/")
	last := toks[len(toks)-1]
	if len(toks) == 2 && toks[0] == "definitions" && v.primitives[last] == pattern {
		return last
	}
	best, only, n := "", "", 0
	for name, p := range v.primitives {
		if p != pattern {
			continue
		}
		n++
		only = name
		if len(name) > len(best) && strings.HasSuffix(last, strings.ToUpper(name[:1])+name[1:]) {
			best = name
		}
	}
	if best != "" {
		return best
	}
	if n == 1 {
		return only
	}
	return ""
}

// fhirPath builds a FHIRPath expression from a JSON instance location:
// [name 0 given 1] -> Patient.name[0].given[1]. The instance tells array
// indexes from element names.
func fhirPath(root string, resource map[string]any, loc []string) string {
	var b strings.Builder
	b.WriteString(root)
	var cur any = resource
	for _, tok := range loc {
		switch c := cur.(type) {
		case []any:
			b.WriteByte('[')
			b.WriteString(tok)
			b.WriteByte(']')
			cur = nil
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(c) {
				cur = c[i]
			}
		case map[string]any:
			b.WriteByte('.')
			b.WriteString(tok)
			cur = c[tok]
		default:
			b.WriteByte('.')
			b.WriteString(tok)
			cur = nil
		}
	}
	return b.String()
}

// allowed lists the codes of an enum, or counts them when there are many.
// The codes come from the schema, never from the instance.
func allowed(codes []any) string {
	if len(codes) > maxListedCodes {
		return fmt.Sprintf("the %d allowed codes", len(codes))
	}
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = quoteCode(c)
	}
	return "the allowed codes " + strings.Join(parts, ", ")
}

func quoteCode(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}
