package search

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parcours-sante/parcours/server/fhirpath"
	"github.com/parcours-sante/parcours/server/store"
)

// Extract returns the search index entries of a resource of type typ:
// every supported parameter of the type evaluated on it and encoded (see
// the package documentation). base is this server's FHIR base URL, used to
// make absolute references to its own resources relative ("" for none).
// Parameters whose expression fails on the resource are skipped.
func (r *Registry) Extract(typ string, res map[string]any, base string) []store.IndexEntry {
	tp := r.typeOf(typ)
	x := extraction{base: strings.TrimSuffix(base, "/"), res: res, entries: make([]store.IndexEntry, 0, 32)}
	has := namesPool.Get().(map[string]bool)
	elementNames(res, has)
	for _, p := range tp.list {
		if p.elems != nil && !hasAny(has, p.elems) {
			continue
		}
		vals, err := p.expr.EvaluateTyped(res)
		if err != nil || len(vals) == 0 {
			continue
		}
		x.param(p, vals)
	}
	clear(has)
	namesPool.Put(has)
	return x.done()
}

var namesPool = sync.Pool{New: func() any { return make(map[string]bool, 64) }}

// elementNames collects the elements a resource has: its JSON names, choice
// elements also by their name without the type suffix (valueQuantity is
// value), primitive extensions by the primitive's name.
func elementNames(res map[string]any, out map[string]bool) {
	for k := range res {
		k = strings.TrimPrefix(k, "_")
		out[k] = true
		for i := 1; i < len(k); i++ {
			if isUpper(k[i]) {
				out[k[:i]] = true
				break
			}
		}
	}
}

func hasAny(set map[string]bool, names []string) bool {
	for _, n := range names {
		if set[n] {
			return true
		}
	}
	return false
}

type extraction struct {
	base       string
	res        map[string]any
	entries    []store.IndexEntry
	components map[componentKey][]string // composite.go
}

func (x *extraction) add(param, value string) {
	if value == "" {
		return
	}
	x.entries = append(x.entries, store.IndexEntry{Param: param, Value: clip(value)})
}

func (x *extraction) done() []store.IndexEntry {
	slices.SortFunc(x.entries, func(a, b store.IndexEntry) int {
		if c := strings.Compare(a.Param, b.Param); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return slices.Compact(x.entries)
}

func (x *extraction) param(p *Param, vals []fhirpath.TypedValue) {
	name := p.indexName()
	switch p.Type {
	case TypeToken:
		for _, v := range vals {
			for _, t := range tokens(v) {
				t.emit(x, name, p.Code == "identifier")
			}
		}
	case TypeString:
		for _, v := range vals {
			for _, s := range stringsOf(v) {
				if p.phonetic() {
					for _, c := range phoneticCodes(s) {
						x.add(name, c)
					}
					continue
				}
				x.add(name, Normalize(s))
			}
		}
	case TypeDate:
		for _, v := range vals {
			for _, rg := range datesOf(v) {
				x.add(name, rg.lo+"/"+rg.hi)
				if rg.wide {
					x.add(name+":hi", rg.hi+"/"+rg.lo)
				}
			}
		}
	case TypeNumber:
		for _, v := range vals {
			if f, ok := number(v.Value); ok {
				x.add(name, EncodeNumber(f))
			}
		}
	case TypeQuantity:
		for _, v := range vals {
			for _, q := range quantitiesOf(v) {
				n := EncodeNumber(q.value)
				if unit := q.unitCode(); unit != "" || q.system != "" {
					n += "|" + unit + "|" + q.system
				}
				x.add(name, n)
			}
		}
	case TypeReference:
		for _, v := range vals {
			refs, idents := x.referencesOf(v)
			for _, ref := range refs {
				x.add(name, ref)
			}
			for _, id := range idents {
				x.add(name+":identifier", id)
			}
		}
	case TypeURI:
		for _, v := range vals {
			if s, ok := v.Value.(string); ok {
				x.add(name, s)
			}
		}
	case TypeComposite:
		x.composite(p, name, vals)
	}
}

// token is one coded value: system and code, the texts it shows, and for
// identifiers their types.
type token struct {
	system, code string
	texts        []string
	ofType       []string // "typesystem|typecode" of an Identifier
}

// emit writes a token code first ("code|system"): one entry answers code,
// |code and system|code. Identifiers are written system first
// ("system|value", plus identifier:code = value), the form the access
// policy reads.
func (t token) emit(x *extraction, name string, systemFirst bool) {
	if t.code != "" {
		if systemFirst {
			x.add(name, t.system+"|"+t.code)
			x.add(name+":code", t.code)
		} else {
			x.add(name, t.code+"|"+t.system)
		}
		for _, ty := range t.ofType {
			x.add(name+":of-type", ty+"|"+t.code)
		}
	}
	for _, s := range t.texts {
		x.add(name+":text", Normalize(s))
	}
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// tokens reads the coded values of a token parameter value.
func tokens(v fhirpath.TypedValue) []token {
	switch x := v.Value.(type) {
	case bool:
		if x {
			return []token{{code: "true"}}
		}
		return []token{{code: "false"}}
	case string:
		return []token{{code: x}}
	case map[string]any:
		switch v.Type {
		case "FHIR.Coding":
			return []token{coding(x)}
		case "FHIR.Identifier":
			t := token{system: str(x, "system"), code: str(x, "value")}
			if ty, ok := x["type"].(map[string]any); ok {
				for _, c := range list(ty["coding"]) {
					if cm, ok := c.(map[string]any); ok && str(cm, "code") != "" {
						t.ofType = append(t.ofType, str(cm, "system")+"|"+str(cm, "code"))
					}
				}
				if s := str(ty, "text"); s != "" {
					t.texts = append(t.texts, s)
				}
			}
			return []token{t}
		case "FHIR.ContactPoint":
			return []token{{system: str(x, "system"), code: str(x, "value")}}
		}
		if _, ok := x["coding"]; ok || v.Type == "FHIR.CodeableConcept" {
			var out []token
			for _, c := range list(x["coding"]) {
				if cm, ok := c.(map[string]any); ok {
					out = append(out, coding(cm))
				}
			}
			if s := str(x, "text"); s != "" {
				out = append(out, token{texts: []string{s}})
			}
			return out
		}
		if _, ok := x["code"]; ok { // Coding-like (Quantity used as a token...)
			return []token{coding(x)}
		}
		if _, ok := x["value"]; ok { // Identifier-like
			return []token{{system: str(x, "system"), code: str(x, "value")}}
		}
	}
	return nil
}

func coding(m map[string]any) token {
	t := token{system: str(m, "system"), code: str(m, "code")}
	if d := str(m, "display"); d != "" {
		t.texts = []string{d}
	}
	return t
}

func list(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	}
	return []any{v}
}

// stringsOf reads the strings of a string parameter value: a primitive,
// or every part of a HumanName or an Address.
func stringsOf(v fhirpath.TypedValue) []string {
	switch x := v.Value.(type) {
	case string:
		return []string{x}
	case map[string]any:
		var out []string
		var keys []string
		switch v.Type {
		case "FHIR.HumanName":
			keys = []string{"text", "family", "given", "prefix", "suffix"}
		case "FHIR.Address":
			keys = []string{"text", "line", "city", "district", "state", "postalCode", "country"}
		default:
			keys = []string{"text", "value", "display", "family", "given"}
		}
		for _, k := range keys {
			for _, e := range list(x[k]) {
				if s, ok := e.(string); ok && s != "" {
					out = append(out, s)
				}
			}
		}
		return out
	case interface{ String() string }:
		return []string{x.String()}
	}
	return nil
}

// encodedRange is an instant range, encoded; wide when it spans more than
// narrowSpan (only wide ranges get a code:hi entry).
type encodedRange struct {
	lo, hi string
	wide   bool
}

// narrowSpan is the widest range indexed by its low end only: a range
// ending after t starts after t - narrowSpan (dates.go).
const narrowSpan = 24 * time.Hour

func newRange(lo, hi time.Time) encodedRange {
	return encodedRange{encodeInstant(lo), encodeInstant(hi), hi.Sub(lo) > narrowSpan}
}

// datesOf reads the instant ranges of a date parameter value: a date,
// dateTime or instant, a Period, or the events of a Timing.
func datesOf(v fhirpath.TypedValue) []encodedRange {
	one := func(s string) []encodedRange {
		lo, hi, ok := dateRange(s)
		if !ok {
			return nil
		}
		return []encodedRange{newRange(lo, hi)}
	}
	switch x := v.Value.(type) {
	case string:
		return one(x)
	case fhirpath.Date, fhirpath.DateTime:
		return one(x.(interface{ String() string }).String())
	case map[string]any:
		if _, ok := x["event"]; ok || v.Type == "FHIR.Timing" {
			var out []encodedRange
			for _, e := range list(x["event"]) {
				if s, ok := e.(string); ok {
					out = append(out, one(s)...)
				}
			}
			if rep, ok := x["repeat"].(map[string]any); ok {
				if bp, ok := rep["boundsPeriod"].(map[string]any); ok {
					out = append(out, period(bp)...)
				}
			}
			return out
		}
		return period(x)
	}
	return nil
}

// period is the range of a Period; an open end is unbounded.
func period(m map[string]any) []encodedRange {
	start, end := str(m, "start"), str(m, "end")
	if start == "" && end == "" {
		return nil
	}
	rg := encodedRange{minInstant, maxInstant, true}
	var lo, hi time.Time
	if start != "" {
		var ok bool
		if lo, _, ok = dateRange(start); !ok {
			return nil
		}
		rg.lo = encodeInstant(lo)
	}
	if end != "" {
		var ok bool
		if _, hi, ok = dateRange(end); !ok {
			return nil
		}
		rg.hi = encodeInstant(hi)
	}
	if start != "" && end != "" {
		rg.wide = hi.Sub(lo) > narrowSpan
	}
	return []encodedRange{rg}
}

type quantity struct {
	value              float64
	system, code, unit string
}

// unitCode is the code of the unit, or its display when there is no code.
func (q quantity) unitCode() string {
	if q.code != "" {
		return q.code
	}
	return q.unit
}

// quantitiesOf reads a Quantity (Age, Duration, Money...), both ends of a
// Range, or a FHIRPath quantity.
func quantitiesOf(v fhirpath.TypedValue) []quantity {
	switch x := v.Value.(type) {
	case map[string]any:
		if v.Type == "FHIR.Range" || x["low"] != nil || x["high"] != nil {
			var out []quantity
			for _, k := range []string{"low", "high"} {
				if m, ok := x[k].(map[string]any); ok {
					out = append(out, quantitiesOf(fhirpath.TypedValue{Value: m, Type: "FHIR.Quantity"})...)
				}
			}
			return out
		}
		f, ok := number(x["value"])
		if !ok {
			return nil
		}
		q := quantity{value: f, system: str(x, "system"), code: str(x, "code"), unit: str(x, "unit")}
		if c := str(x, "currency"); c != "" { // Money
			q.system, q.code = "urn:iso:std:iso:4217", c
		}
		return []quantity{q}
	case fhirpath.Quantity:
		f, ok := number(x.Value)
		if !ok {
			return nil
		}
		return []quantity{{value: f, system: "http://unitsofmeasure.org", code: x.Unit}}
	default:
		if f, ok := number(x); ok {
			return []quantity{{value: f}}
		}
	}
	return nil
}

// referencesOf reads the targets of a reference parameter value: the
// normalised reference of a Reference (and its logical identifier), a
// canonical or a URI.
func (x *extraction) referencesOf(v fhirpath.TypedValue) (refs, idents []string) {
	switch val := v.Value.(type) {
	case string:
		return x.normRefs(val), nil
	case map[string]any:
		if ref := str(val, "reference"); ref != "" {
			refs = x.normRefs(ref)
		}
		if id, ok := val["identifier"].(map[string]any); ok && str(id, "value") != "" {
			idents = append(idents, str(id, "system")+"|"+str(id, "value"))
		}
	}
	return refs, idents
}

// normRefs normalises a reference for the index: "Type/id" for relative
// references and absolute ones to this server (history version dropped),
// a canonical both with and without its |version, other URLs as written.
// Contained references (#id) are not indexed.
func (x *extraction) normRefs(ref string) []string {
	return NormalizeReference(ref, x.base)
}

// NormalizeReference is how references are indexed and searched.
func NormalizeReference(ref, base string) []string {
	ref = strings.TrimSpace(ref)
	if ref == "" || ref[0] == '#' {
		return nil
	}
	if base != "" && strings.HasPrefix(ref, base+"/") {
		ref = ref[len(base)+1:]
	}
	if rel, ok := relative(ref); ok {
		return []string{rel}
	}
	if i := strings.LastIndexByte(ref, '|'); i > 0 { // canonical|version
		return []string{ref, ref[:i]}
	}
	return []string{ref}
}

// relative reports whether ref is a relative literal reference Type/id
// (optionally /_history/vid) and returns Type/id.
func relative(ref string) (string, bool) {
	if strings.Contains(ref, ":") || ref == "" || !isUpper(ref[0]) {
		return "", false
	}
	parts := strings.Split(ref, "/")
	if len(parts) != 2 && !(len(parts) == 4 && parts[2] == "_history") {
		return "", false
	}
	if parts[1] == "" {
		return "", false
	}
	return parts[0] + "/" + parts[1], true
}
