package fhirpath

//go:generate go run modelgen.go

import (
	"encoding/json"
	"math"
	"strings"
	"sync"
)

// sysKind is the System type a value maps to when it is compared or
// computed with.
type sysKind uint8

const (
	sysNone sysKind = iota
	sysBoolean
	sysString
	sysInteger
	sysDecimal
	sysDate
	sysDateTime
	sysTime
	sysQuantity
)

// typeDef is a FHIRPath type: a System type, a FHIR primitive, or a FHIR
// complex type, backbone element or resource with its elements.
type typeDef struct {
	name     string // FHIRPath name: Patient, HumanName, code, BackboneElement, Integer
	ns       string // "FHIR" or "System"
	key      string // model key, differs from name for backbone elements (Patient_Contact)
	base     *typeDef
	sys      sysKind // the System type of values of a primitive (or Quantity)
	prim     bool    // a FHIR primitive type
	resource bool
	elems    map[string]*elemDef
	qname    string // ns.name, set with the model (qualified)
}

type elemDef struct {
	t      *typeDef // nil for a choice element
	many   bool
	choice bool
	under  string // "_" + the element's name: its primitive extension
}

// qualified is ns.name (FHIR.Patient, System.String).
func (t *typeDef) qualified() string {
	if t.qname != "" {
		return t.qname
	}
	return t.ns + "." + t.name
}

func init() {
	for _, t := range systemTypes {
		t.qname = t.qualified()
	}
}

// derives reports whether t is u or derives from it.
func (t *typeDef) derives(u *typeDef) bool {
	for ; t != nil; t = t.base {
		if t == u {
			return true
		}
	}
	return false
}

// System types.
var (
	tBoolean  = &typeDef{name: "Boolean", ns: "System", sys: sysBoolean}
	tString   = &typeDef{name: "String", ns: "System", sys: sysString}
	tInteger  = &typeDef{name: "Integer", ns: "System", sys: sysInteger}
	tDecimal  = &typeDef{name: "Decimal", ns: "System", sys: sysDecimal}
	tDate     = &typeDef{name: "Date", ns: "System", sys: sysDate}
	tDateTime = &typeDef{name: "DateTime", ns: "System", sys: sysDateTime}
	tTime     = &typeDef{name: "Time", ns: "System", sys: sysTime}
	tQuantity = &typeDef{name: "Quantity", ns: "System", sys: sysQuantity}
	// tAny types the results of type() and other structures outside the
	// FHIR model.
	tAny = &typeDef{name: "Any", ns: "System"}
)

var systemTypes = map[string]*typeDef{
	"Boolean": tBoolean, "String": tString, "Integer": tInteger, "Decimal": tDecimal,
	"Date": tDate, "DateTime": tDateTime, "Time": tTime, "Quantity": tQuantity, "Any": tAny,
}

// FHIR primitive types: name, base and System type.
var primitiveDefs = []struct {
	name, base string
	sys        sysKind
}{
	{"boolean", "", sysBoolean},
	{"string", "", sysString},
	{"code", "string", sysString},
	{"id", "string", sysString},
	{"markdown", "string", sysString},
	{"uri", "", sysString},
	{"url", "uri", sysString},
	{"canonical", "uri", sysString},
	{"oid", "uri", sysString},
	{"uuid", "uri", sysString},
	{"integer", "", sysInteger},
	{"positiveInt", "integer", sysInteger},
	{"unsignedInt", "integer", sysInteger},
	{"decimal", "", sysDecimal},
	{"date", "", sysDate},
	{"dateTime", "", sysDateTime},
	{"instant", "", sysDateTime},
	{"time", "", sysTime},
	{"base64Binary", "", sysString},
	{"xhtml", "", sysString},
}

var model struct {
	once  sync.Once
	types map[string]*typeDef
	// often used FHIR types, set by load
	element, extension, quantity, resource, str, boolean, integer, decimal *typeDef
}

// fhirType returns the FHIR type of the given name (Patient, HumanName,
// code, Patient_Contact), or nil.
func fhirType(name string) *typeDef {
	model.once.Do(loadModel)
	return model.types[name]
}

func loadModel() {
	types := map[string]*typeDef{}
	lines := strings.Split(modelSrc, "\n")
	// First pass: the types and their bases.
	bases := map[string]string{}
	for _, l := range lines {
		if l == "" || l[0] == ' ' {
			continue
		}
		f := strings.Fields(l)
		t := &typeDef{name: f[0], key: f[0], ns: "FHIR"}
		if len(f) > 1 {
			bases[f[0]] = f[1]
		}
		types[f[0]] = t
	}
	for _, p := range primitiveDefs {
		types[p.name] = &typeDef{name: p.name, key: p.name, ns: "FHIR", sys: p.sys, prim: true}
		bases[p.name] = p.base
		if p.base == "" {
			bases[p.name] = "Element"
		}
	}
	for name, t := range types {
		t.base = types[bases[name]]
		switch {
		case bases[name] == "BackboneElement" || (strings.Contains(name, "_") && bases[name] == "Element"):
			t.name = bases[name]
		}
	}
	for _, t := range types {
		for b := t; b != nil; b = b.base {
			if b.key == "Resource" {
				t.resource = true
			}
			if b.key == "Quantity" {
				t.sys = sysQuantity
			}
		}
	}
	// Second pass: the elements.
	var cur *typeDef
	for _, l := range lines {
		if l == "" {
			continue
		}
		if l[0] != ' ' {
			cur = types[strings.Fields(l)[0]]
			cur.elems = map[string]*elemDef{}
			continue
		}
		f := strings.Fields(l)
		name, typ := f[0], f[1]
		if typ == "[x]" {
			cur.elems[name] = &elemDef{choice: true, under: "_" + name}
			continue
		}
		e := &elemDef{many: strings.HasSuffix(typ, "*"), under: "_" + name}
		e.t = types[strings.TrimSuffix(typ, "*")]
		cur.elems[name] = e
	}
	// Inherit the elements of the bases.
	var inherit func(t *typeDef)
	done := map[*typeDef]bool{}
	inherit = func(t *typeDef) {
		if done[t] {
			return
		}
		done[t] = true
		if t.base == nil || t.prim {
			return
		}
		inherit(t.base)
		for n, e := range t.base.elems {
			if _, ok := t.elems[n]; !ok {
				if t.elems == nil {
					t.elems = map[string]*elemDef{}
				}
				t.elems[n] = e
			}
		}
	}
	for _, t := range types {
		inherit(t)
	}
	for _, t := range types {
		t.qname = t.ns + "." + t.name
	}
	model.types = types
	model.element = types["Element"]
	model.extension = types["Extension"]
	model.quantity = types["Quantity"]
	model.resource = types["Resource"]
	model.str = types["string"]
	model.boolean = types["boolean"]
	model.integer = types["integer"]
	model.decimal = types["decimal"]
}

// resourceType returns the type of a resource value, by its resourceType.
func resourceType(m map[string]any) *typeDef {
	if rt, ok := m["resourceType"].(string); ok {
		if t := fhirType(rt); t != nil && t.resource {
			return t
		}
	}
	return nil
}

// inferType types a JSON value found where the model has no type: a
// resource by its resourceType, primitives as FHIR string, boolean,
// integer or decimal.
func inferType(v any) *typeDef {
	model.once.Do(loadModel)
	switch x := v.(type) {
	case map[string]any:
		return resourceType(x)
	case string:
		return model.str
	case bool:
		return model.boolean
	case json.Number:
		if isIntegerText(string(x)) {
			return model.integer
		}
		return model.decimal
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return model.integer
		}
		return model.decimal
	case int64:
		return tInteger
	case int:
		return tInteger
	case decimal:
		return tDecimal
	case quantity:
		return tQuantity
	case Date:
		return tDate
	case DateTime:
		return tDateTime
	case Time:
		return tTime
	}
	return nil
}

// choiceType returns the type named by the suffix of a choice element's
// JSON name: valueQuantity → Quantity, valueDateTime → dateTime.
func choiceType(suffix string) *typeDef {
	if suffix == "" || suffix[0] < 'A' || suffix[0] > 'Z' {
		return nil
	}
	if t := fhirType(suffix); t != nil && !t.prim && !strings.Contains(suffix, "_") {
		return t
	}
	lower := strings.ToLower(suffix[:1]) + suffix[1:]
	if t := fhirType(lower); t != nil && t.prim {
		return t
	}
	return nil
}

// typeSpec is a type named in is, as or ofType, resolved at compile time.
type typeSpec struct {
	name string
	fhir *typeDef // the FHIR type of that name
	sys  *typeDef // the System type of that name
}

// resolveTypeSpec resolves System.X, FHIR.X or an unqualified name (a FHIR
// type or a System type; Quantity names both).
func resolveTypeSpec(qualified string) (typeSpec, bool) {
	ns, name, ok := strings.Cut(qualified, ".")
	if !ok {
		ns, name = "", qualified
	}
	ts := typeSpec{name: qualified}
	switch ns {
	case "System":
		// System types outside the spec (System.Patient) exist for no value.
		ts.sys = systemTypes[name]
		if ts.sys == nil {
			ts.sys = &typeDef{name: name, ns: "System"}
		}
	case "FHIR":
		ts.fhir = fhirType(name)
	case "":
		ts.sys = systemTypes[name]
		ts.fhir = fhirType(name)
		if ts.fhir != nil && strings.Contains(name, "_") {
			ts.fhir = nil
		}
	default:
		return ts, false
	}
	return ts, ts.sys != nil || ts.fhir != nil
}

// is reports whether an item is of the type or derives from it. With
// exact, FHIR primitives must be of the type itself (a code is not
// as(string)), following the official test suite.
func (ts typeSpec) is(it item, exact bool) bool {
	t := it.t
	if t == nil {
		return false
	}
	if t.ns == "System" {
		return t == ts.sys
	}
	if ts.fhir == nil {
		return false
	}
	if exact && t.prim {
		return t == ts.fhir
	}
	return t.derives(ts.fhir)
}

// ChildType names the FHIR type (the model's key: uri, Reference,
// Patient_Contact) of the element name, as spelt in JSON, of a value of
// type parent (a key too); a choice element's JSON name gives its type
// (valueUri: uri). "" when the model has no such element.
func ChildType(parent, name string) string {
	t := fhirType(parent)
	if t == nil {
		return ""
	}
	if e, ok := t.elems[name]; ok && e.t != nil {
		return e.t.key
	}
	for i := len(name) - 1; i > 0; i-- {
		if e, ok := t.elems[name[:i]]; ok && e.choice {
			if ct := choiceType(name[i:]); ct != nil {
				return ct.key
			}
			return ""
		}
	}
	return ""
}
