package conformance

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The library validator builds a result tree as it goes: scopes, instance
// locations and evaluated-property sets, about 300 allocations and most of
// the time of a validation. Almost every resource a hub receives is valid,
// and the answer "valid" needs none of that. So each compiled schema is
// also mirrored by a verdict tree (verdict) that answers only "valid or
// not", without allocating; Validate asks it first and calls the library
// only when it says no, for the issues. A verdict tree is built from the
// library's compiled schema itself, keyword by keyword, and only from the
// keywords the FHIR schema uses (type, const, enum, pattern, properties,
// additionalProperties, required, items, $ref and resourceKeyword): a
// schema with any other keyword gets no verdict tree, and its type always
// goes through the library. FuzzVerdict and TestVerdictMatchesLibrary hold
// both to the same answer.

// jsonKind is a JSON type as a bit; 0 is a value that is not JSON (the
// library rejects it whatever the schema).
type jsonKind uint8

const (
	kindNull jsonKind = 1 << iota
	kindBoolean
	kindNumber
	kindString
	kindArray
	kindObject
)

// kindOf is the library's typeOf for the values a decoder produces;
// anything else is 0 (never valid here: the library decides).
func kindOf(v any) jsonKind {
	switch x := v.(type) {
	case nil:
		return kindNull
	case bool:
		return kindBoolean
	case string:
		return kindString
	case map[string]any:
		return kindObject
	case []any:
		return kindArray
	case json.Number:
		return kindNumber
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0
		}
		return kindNumber
	}
	return 0
}

// verdict is one compiled schema reduced to what decides validity.
type verdict struct {
	never    bool              // the false schema
	ref      *verdict          // $ref: in draft 6 the other keywords are ignored
	types    jsonKind          // allowed types; 0 = any
	constant *string           // const (a string)
	enum     map[string]bool   // enum (strings)
	pattern  jsonschema.Regexp // strings, and numbers (FHIR JSON: jsonRules)
	integer  bool              // a number pattern without a fraction: 32 bits
	required []string
	props    map[string]*verdict
	closed   bool // additionalProperties: false
	extra    *verdict
	items    *verdict
	nested   *Validator // resourceKeyword: the definition named by resourceType
}

// valid reports whether the library would find no error in x.
func (n *verdict) valid(x any) bool {
	k := kindOf(x)
	if k == 0 || k == kindNull {
		return false // null is no FHIR JSON value (jsonRules), even where the schema leaves the type open (xhtml)
	}
	for n.ref != nil {
		n = n.ref
	}
	if n.never || n.types != 0 && n.types&k == 0 {
		return false
	}
	if n.constant != nil || n.enum != nil {
		s, ok := x.(string)
		if !ok || n.constant != nil && s != *n.constant || n.enum != nil && !n.enum[s] {
			return false
		}
	}
	switch x := x.(type) {
	case string:
		if n.pattern != nil && !n.pattern.MatchString(x) {
			return false
		}
	case json.Number:
		// FHIR JSON beyond the library (jsonRules): a number matches its
		// type's pattern, an integer fits 32 bits.
		if n.pattern != nil && !validNumber(x, n.pattern, n.integer) {
			return false
		}
	case []any:
		if len(x) == 0 {
			return false // FHIR JSON has no empty arrays (jsonRules)
		}
		if n.items != nil {
			for _, e := range x {
				if !n.items.valid(e) {
					return false
				}
			}
		}
	case map[string]any:
		if len(x) == 0 {
			return false // nor empty objects (jsonRules)
		}
		for _, name := range n.required {
			if _, ok := x[name]; !ok {
				return false
			}
		}
		for name, val := range x {
			c := n.props[name]
			if c == nil {
				if n.closed {
					return false
				}
				c = n.extra
			}
			if c != nil && !c.valid(val) {
				return false
			}
		}
		if n.nested != nil {
			name, _ := x["resourceType"].(string)
			if !IsResourceType(name) {
				return false
			}
			c := n.nested.verdictOf(name)
			if c == nil || !c.valid(x) {
				return false
			}
		}
	}
	return true
}

// verdictOf returns the verdict tree of resource type name, nil if it has
// none (a keyword it does not mirror, or a compile failure: the library
// reports it).
func (v *Validator) verdictOf(name string) *verdict {
	if n, ok := v.verdicts.Load(name); ok {
		return n.(*verdict)
	}
	if _, err := v.schema(name); err != nil {
		return nil
	}
	n, _ := v.verdicts.Load(name)
	return n.(*verdict) // stored by schema, nil when unsupported
}

// verdictBuilder builds the verdict trees of one compiled type. Trees
// are shared between types (done) and the way cycles close; those of a
// type that fails are all dropped (a tree in a cycle may already point to
// the failed one).
type verdictBuilder struct {
	v    *Validator
	done map[*jsonschema.Schema]*verdict // complete trees of earlier types
	new  map[*jsonschema.Schema]*verdict // this type's
}

// buildVerdict returns the verdict tree of sch, nil if it has a keyword the
// tree does not mirror. Called under v.mu: the compiler's schemas are
// complete and no longer change.
func (v *Validator) buildVerdict(sch *jsonschema.Schema) *verdict {
	b := verdictBuilder{v: v, done: v.built, new: map[*jsonschema.Schema]*verdict{}}
	n, err := b.build(sch)
	if err != nil {
		return nil
	}
	for k, t := range b.new {
		v.built[k] = t
	}
	return n
}

func (b *verdictBuilder) build(sch *jsonschema.Schema) (*verdict, error) {
	if n, ok := b.done[sch]; ok {
		return n, nil
	}
	if n, ok := b.new[sch]; ok {
		return n, nil
	}
	n := &verdict{}
	b.new[sch] = n
	fail := func(kw string) (*verdict, error) {
		return nil, fmt.Errorf("conformance: %s: keyword %s has no verdict", sch.Location, kw)
	}
	if sch.DraftVersion != 6 {
		return fail("$schema")
	}
	if sch.Bool != nil {
		n.never = !*sch.Bool
		return n, nil
	}
	switch {
	case sch.RecursiveRef != nil || sch.DynamicRef != nil:
		return fail("$recursiveRef")
	case sch.Not != nil || sch.AllOf != nil || sch.AnyOf != nil || sch.OneOf != nil || sch.If != nil || sch.Then != nil || sch.Else != nil:
		return fail("not/allOf/anyOf/oneOf/if")
	case sch.Format != nil:
		return fail("format")
	case sch.MaxProperties != nil || sch.MinProperties != nil || sch.PropertyNames != nil || sch.PatternProperties != nil ||
		sch.Dependencies != nil || sch.DependentRequired != nil || sch.DependentSchemas != nil || sch.UnevaluatedProperties != nil:
		return fail("object keywords")
	case sch.MinItems != nil || sch.MaxItems != nil || sch.UniqueItems || sch.Contains != nil || sch.MinContains != nil || sch.MaxContains != nil ||
		sch.AdditionalItems != nil || sch.PrefixItems != nil || sch.Items2020 != nil || sch.UnevaluatedItems != nil:
		return fail("array keywords")
	case sch.MinLength != nil || sch.MaxLength != nil || sch.ContentEncoding != nil || sch.ContentMediaType != nil || sch.ContentSchema != nil:
		return fail("string keywords")
	case sch.Maximum != nil || sch.Minimum != nil || sch.ExclusiveMaximum != nil || sch.ExclusiveMinimum != nil || sch.MultipleOf != nil:
		return fail("number keywords")
	}
	if sch.Ref != nil {
		// Draft 6: the compiler keeps nothing beside a $ref.
		ref, err := b.build(sch.Ref)
		if err != nil {
			return nil, err
		}
		// A chain of $refs that comes back (the library reports a cycle)
		// would loop in valid: closed here by the last link built.
		for m := ref; m != nil; m = m.ref {
			if m == n {
				return fail("$ref cycle")
			}
		}
		n.ref = ref
		return n, nil
	}
	if sch.Types != nil && !sch.Types.IsEmpty() {
		for _, t := range sch.Types.ToStrings() {
			switch t {
			case "null":
				n.types |= kindNull
			case "boolean":
				n.types |= kindBoolean
			case "number":
				n.types |= kindNumber
			case "string":
				n.types |= kindString
			case "array":
				n.types |= kindArray
			case "object":
				n.types |= kindObject
			default: // integer
				return fail("type " + t)
			}
		}
	}
	if sch.Const != nil {
		s, ok := (*sch.Const).(string)
		if !ok {
			return fail("const")
		}
		n.constant = &s
	}
	if sch.Enum != nil {
		n.enum = make(map[string]bool, len(sch.Enum.Values))
		for _, e := range sch.Enum.Values {
			s, ok := e.(string)
			if !ok {
				return fail("enum")
			}
			n.enum[s] = true
		}
	}
	n.pattern = sch.Pattern
	n.integer = n.pattern != nil && !strings.Contains(n.pattern.String(), ".")
	n.required = sch.Required
	if sch.Properties != nil {
		n.props = make(map[string]*verdict, len(sch.Properties))
		for name, p := range sch.Properties {
			c, err := b.build(p)
			if err != nil {
				return nil, err
			}
			n.props[name] = c
		}
	}
	switch a := sch.AdditionalProperties.(type) {
	case nil:
	case bool:
		n.closed = !a
	case *jsonschema.Schema:
		c, err := b.build(a)
		if err != nil {
			return nil, err
		}
		n.extra = c
	default:
		return fail("additionalProperties")
	}
	switch it := sch.Items.(type) {
	case nil:
	case *jsonschema.Schema:
		c, err := b.build(it)
		if err != nil {
			return nil, err
		}
		n.items = c
	default: // a list of schemas
		return fail("items")
	}
	for _, ext := range sch.Extensions {
		if _, ok := ext.(nestedResource); !ok {
			return fail("extension")
		}
		n.nested = b.v
	}
	return n, nil
}
