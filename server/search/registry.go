package search

import (
	"sort"
	"strings"
	"sync"

	"github.com/parcours-sante/parcours/conformance/definitions"
	"github.com/parcours-sante/parcours/server/fhirpath"
)

// Parameter types (SearchParameter.type).
const (
	TypeToken     = "token"
	TypeString    = "string"
	TypeDate      = "date"
	TypeNumber    = "number"
	TypeQuantity  = "quantity"
	TypeReference = "reference"
	TypeURI       = "uri"
	TypeComposite = "composite"
	TypeSpecial   = "special"
)

// Param is one search parameter as it applies to one resource type.
type Param struct {
	Code    string
	Type    string
	URL     string // the SearchParameter's canonical URL
	Targets []string
	// Expression is the part of the official expression that applies to
	// this resource type.
	Expression string
	// Components are the parts of a composite parameter.
	Components []Component

	expr *fhirpath.Expr // nil for _id
	// elems are the top-level elements the expression reads: when the
	// resource has none of them the expression is known to give nothing
	// (nil: always evaluate).
	elems []string
	// Union, when set, are parameters of the type whose expressions
	// together are this one's (Observation combo-code = code |
	// component-code): it is not indexed, but searched as their union.
	Union []*Param
}

// Component is one part of a composite parameter: a parameter type and an
// expression evaluated on each item of the composite's expression.
type Component struct {
	Type string
	URL  string
	src  string
	expr *fhirpath.Expr
}

// indexName is the index param a search parameter's entries are written
// under.
func (p *Param) indexName() string { return indexName(p.Code) }

// phonetic reports whether p is a phonetic parameter (Patient, Person,
// Practitioner, RelatedPerson phonetic): indexed and compared as the
// Soundex codes of the name (Phonetic), not as the name's strings.
func (p *Param) phonetic() bool { return p != nil && p.Code == "phonetic" && p.Type == TypeString }

func indexName(code string) string {
	if code == "_source" {
		return "_meta.source"
	}
	return code
}

// Registry holds the search parameters of every resource type.
type Registry struct {
	byURL map[string]definitions.SearchParameter
	mu    sync.RWMutex
	types map[string]*typeParams
}

type typeParams struct {
	once   sync.Once
	params map[string]*Param
	list   []*Param // indexed parameters, in code order
}

// Default is the registry of the official R4 definitions, built once.
var Default = sync.OnceValue(func() *Registry { return New() })

// New builds a registry from the official R4 SearchParameters; the
// expressions of a type are compiled the first time the type is used.
func New() *Registry {
	r := &Registry{byURL: map[string]definitions.SearchParameter{}, types: map[string]*typeParams{}}
	for _, p := range definitions.SearchParameters() {
		r.byURL[p.URL] = p
	}
	return r
}

// Params returns the supported search parameters of typ by code (its own
// and those of Resource and DomainResource).
func (r *Registry) Params(typ string) map[string]*Param { return r.typeOf(typ).params }

// Lookup returns the supported parameter code of typ.
func (r *Registry) Lookup(typ, code string) (*Param, bool) {
	p, ok := r.typeOf(typ).params[code]
	return p, ok
}

// List returns the supported parameters of typ in code order.
func (r *Registry) List(typ string) []*Param {
	tp := r.typeOf(typ)
	out := make([]*Param, 0, len(tp.params))
	for _, p := range tp.params {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

func (r *Registry) typeOf(typ string) *typeParams {
	r.mu.RLock()
	tp, ok := r.types[typ]
	r.mu.RUnlock()
	if ok {
		tp.once.Do(func() { r.build(typ, tp) })
		return tp
	}
	r.mu.Lock()
	tp, ok = r.types[typ]
	if !ok {
		if typ != "Resource" && !isResourceType(typ) {
			r.mu.Unlock()
			return noType // a name from a client: nothing is cached for it
		}
		tp = &typeParams{}
		r.types[typ] = tp
	}
	r.mu.Unlock()
	tp.once.Do(func() { r.build(typ, tp) })
	return tp
}

var noType = &typeParams{params: map[string]*Param{}}

var isResourceExpr = fhirpath.MustCompile("$this is Resource")

// isResourceType reports whether typ is an R4 resource type (the FHIRPath
// model knows them).
func isResourceType(typ string) bool {
	if typ == "" || typ == "DomainResource" || !isUpper(typ[0]) {
		return false
	}
	ok, err := isResourceExpr.EvaluateBool(map[string]any{"resourceType": typ})
	return err == nil && ok
}

// unsupported are the parameters without an expression the engine can
// index, or that need what the hub does not have (a terminology server,
// geometry).
var unsupported = map[string]bool{"_text": true, "_content": true, "_query": true, "_list": true, "_filter": true, "_has": true, "_type": true}

func (r *Registry) build(typ string, tp *typeParams) {
	tp.params = map[string]*Param{}
	for _, base := range []string{"Resource", "DomainResource", typ} {
		if base == "DomainResource" && (typ == "Bundle" || typ == "Binary" || typ == "Parameters") {
			continue
		}
		for _, d := range definitions.SearchParameters() {
			if !contains(d.Base, base) || unsupported[d.Code] || d.Type == TypeSpecial {
				continue
			}
			p := &Param{Code: d.Code, Type: d.Type, URL: d.URL, Targets: d.Target}
			if d.Code == "_id" {
				tp.params[d.Code] = p
				continue
			}
			p.Expression = exprFor(typ, base, d.Expression)
			if p.Expression == "" {
				continue
			}
			e, err := fhirpath.Compile(p.Expression)
			if err != nil {
				continue // every R4 expression compiles (fhirpath tests); be safe
			}
			p.expr = e
			p.elems = topElements(typ, p.Expression)
			if d.Type == TypeComposite {
				ok := len(d.Component) > 0
				for _, c := range d.Component {
					cd, found := r.byURL[c.Definition]
					ce, err := fhirpath.Compile(c.Expression)
					if !found || err != nil || cd.Type == TypeComposite || cd.Type == TypeSpecial {
						ok = false
						break
					}
					p.Components = append(p.Components, Component{Type: cd.Type, URL: cd.URL, src: c.Expression, expr: ce})
				}
				if !ok {
					continue
				}
			}
			tp.params[d.Code] = p
		}
	}
	if _, ok := tp.params["identifier"]; !ok && contains(identifierTypes, typ) {
		tp.params["identifier"] = &Param{Code: "identifier", Type: TypeToken, Expression: typ + ".identifier",
			expr: fhirpath.MustCompile(typ + ".identifier"), elems: []string{"identifier"}}
	}
	findUnions(tp.params)
	for _, p := range tp.params {
		if p.expr != nil && p.Union == nil {
			tp.list = append(tp.list, p)
		}
	}
	sort.Slice(tp.list, func(i, j int) bool { return tp.list[i].Code < tp.list[j].Code })
}

// identifierTypes have an identifier element but no identifier
// SearchParameter in R4: the hub adds one (conditional operations and
// conditional references name resources by identifier).
var identifierTypes = []string{"AdverseEvent", "BiologicallyDerivedProduct", "CatalogEntry", "MedicinalProductIngredient", "ObservationDefinition", "SubstanceSpecification"}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// exprFor keeps the branches of a union expression that can apply to typ:
// "AllergyIntolerance.patient | Observation.subject" gives
// "Observation.subject" for Observation and "" for Patient. Branches of the
// Resource and DomainResource parameters apply to every type.
func exprFor(typ, base, expr string) string {
	if expr == "" {
		return ""
	}
	var keep []string
	for _, part := range splitUnion(expr) {
		lead := leadingName(part)
		switch {
		case lead == typ, lead == base && (base == "Resource" || base == "DomainResource"):
			keep = append(keep, strings.TrimSpace(part))
		case lead == "" || !isUpper(lead[0]):
			// Not qualified by a type name: it applies as written.
			keep = append(keep, strings.TrimSpace(part))
		}
	}
	return strings.Join(keep, " | ")
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

// leadingName is the first identifier of an expression branch, after
// opening parentheses.
func leadingName(part string) string {
	s := strings.TrimLeft(strings.TrimSpace(part), "( ")
	i := 0
	for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
		i++
	}
	return s[:i]
}

// splitUnion splits an expression on its top-level "|" operators (outside
// parentheses, brackets and string literals).
func splitUnion(expr string) []string {
	var out []string
	depth, start := 0, 0
	inStr := byte(0)
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case inStr != 0:
			if c == '\\' {
				i++
			} else if c == inStr {
				inStr = 0
			}
		case c == '\'' || c == '`' || c == '"':
			inStr = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		case c == '|' && depth == 0:
			out = append(out, expr[start:i])
			start = i + 1
		}
	}
	return append(out, expr[start:])
}

// valueFromNothing are the FHIRPath operators and functions that give a
// value on an empty input: an expression using them is always evaluated.
var valueFromNothing = []string{"exists(", "empty(", "not(", "count(", "iif(", "=", "!", "<", ">", " and ", " or ", " xor ", " implies ", "%", "allTrue", "anyTrue", "allFalse", "anyFalse", "hasValue(", "isDistinct("}

// topElements lists the first element of each branch of a type's
// expression ("Observation.subject.where(...) | Observation.focus" gives
// subject, focus), or nil when some branch does not start with one or the
// expression can give a value from nothing (exists(), comparisons...).
func topElements(typ, expr string) []string {
	for _, f := range valueFromNothing {
		if strings.Contains(expr, f) {
			return nil
		}
	}
	var out []string
	for _, part := range splitUnion(expr) {
		s := strings.TrimLeft(strings.TrimSpace(part), "( ")
		lead := leadingName(s)
		if lead != typ && lead != "Resource" && lead != "DomainResource" {
			return nil
		}
		s = s[len(lead):]
		if !strings.HasPrefix(s, ".") {
			return nil
		}
		el := leadingName(s[1:])
		if el == "" || isUpper(el[0]) {
			return nil
		}
		if !contains(out, el) {
			out = append(out, el)
		}
	}
	return out
}

// findUnions sets Param.Union for the parameters whose expression branches
// are exactly covered by those of other parameters of the same type (and,
// for composites, the same components).
func findUnions(params map[string]*Param) {
	branches := map[*Param][]string{}
	for _, p := range params {
		if p.expr == nil {
			continue
		}
		var bs []string
		for _, b := range splitUnion(p.Expression) {
			bs = append(bs, normBranch(b))
		}
		branches[p] = bs
	}
	kind := func(p *Param) string {
		k := p.Type
		if p.phonetic() {
			k += "\x00phonetic" // indexed as codes, not as the name's strings
		}
		for _, c := range p.Components {
			k += "\x00" + c.Type + ":" + strings.ReplaceAll(c.src, " ", "")
		}
		return k
	}
	codes := make([]string, 0, len(params))
	for c := range params {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	// The same expression under two codes (Patient phonetic and name): the
	// first code is indexed.
	for i, code := range codes {
		p := params[code]
		for _, qc := range codes[:i] {
			q := params[qc]
			if q.Union == nil && len(branches[p]) > 0 && kind(q) == kind(p) && len(branches[q]) == len(branches[p]) && subset(branches[q], branches[p]) {
				p.Union = []*Param{q}
				break
			}
		}
	}
	for _, code := range codes {
		p := params[code]
		bp := branches[p]
		if len(bp) < 2 || p.Union != nil {
			continue
		}
		covered := map[string]bool{}
		var parts []*Param
		for _, qc := range codes {
			q := params[qc]
			bq := branches[q]
			if q == p || q.Union != nil || len(bq) == 0 || len(bq) >= len(bp) || kind(q) != kind(p) || !subset(bq, bp) {
				continue
			}
			parts = append(parts, q)
			for _, b := range bq {
				covered[b] = true
			}
		}
		if len(covered) == len(bp) && len(parts) >= 2 {
			p.Union = parts
		}
	}
}

// indexNames are the index params a parameter's values are under: its own,
// or those of the parameters it is the union of.
func (p *Param) indexNames() []string {
	if p.Union == nil {
		return []string{p.indexName()}
	}
	out := make([]string, len(p.Union))
	for i, q := range p.Union {
		out[i] = q.indexName()
	}
	return out
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !contains(b, x) {
			return false
		}
	}
	return true
}

// normBranch writes a branch without spaces and outer parentheses.
func normBranch(b string) string {
	b = strings.ReplaceAll(strings.TrimSpace(b), " ", "")
	for strings.HasPrefix(b, "(") && strings.HasSuffix(b, ")") && len(splitUnion(b[1:len(b)-1])) == 1 && balanced(b[1:len(b)-1]) {
		b = b[1 : len(b)-1]
	}
	return b
}

func balanced(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}
