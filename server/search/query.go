package search

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/server/outcome"
)

// resultParams shape the answer instead of selecting resources. Parse
// understands _sort, _include and _revinclude; the server the others.
var resultParams = map[string]bool{
	"_count": true, "_offset": true, "_cursor": true, "_summary": true, "_elements": true, "_total": true,
	"_format": true, "_pretty": true, "_sort": true, "_include": true, "_revinclude": true,
	"_include:iterate": true, "_revinclude:iterate": true, "_include:recurse": true, "_revinclude:recurse": true,
}

// IsResultParam reports whether name is a result parameter (_count,
// _sort, _include...), not a criterion.
func IsResultParam(name string) bool { return resultParams[name] }

// Query is the search criteria for one resource type, parsed and checked.
type Query struct {
	Type    string
	Clauses []*Clause // all must match
	Sort    []SortKey
	// Include and RevInclude are the _include and _revinclude requests.
	Include, RevInclude []Include
	// Unknown lists the parameters that were not understood, in name
	// order: with Prefer: handling=strict the server refuses them, else it
	// ignores them.
	Unknown []Unknown
	// Applied holds the parameters understood (criteria, _sort, _include,
	// _revinclude), as given: the self link shows them.
	Applied url.Values
	// Visible, when set, says whether the caller may see a resource: the
	// resources a chain or _has reaches through count only if visible, so
	// that a criterion never reveals what the caller may not see.
	Visible func(typ, id string) bool

	reg  *Registry
	base string
	now  time.Time
	// only restricts the matches (a compartment search).
	only       []string
	restricted bool
}

// Unknown is a parameter the engine does not support, and why.
type Unknown struct{ Name, Reason string }

// Clause is one criterion: a parameter (possibly chained, or _has) and the
// values of which any may match.
type Clause struct {
	Name     string // as written: "subject:Patient.name", "code:text"
	Param    *Param // the parameter of the searched type
	Modifier string
	Values   []Value
	// Chain is the criterion on the referenced resources, by target type
	// (subject.name, subject:Patient.name).
	Chain map[string]*Clause
	// Has is reverse chaining: resources of Has.Type referring to the
	// searched resource through Has.Ref and matching Has.Clause.
	Has *Has
}

// Has is a _has criterion.
type Has struct {
	Type   string
	Ref    *Param
	Clause *Clause
}

// Value is one value of a criterion, parsed for its parameter type.
type Value struct {
	Raw    string
	Prefix string // eq ne gt lt ge le sa eb ap (dates, numbers, quantities)

	// token, reference, quantity unit
	System, Code string
	HasSystem    bool // a "|" was given
	// date: the instant range, encoded
	lo, hi string
	// number, quantity: the value and the range its precision covers
	num, nlo, nhi float64
	// composite: the components
	parts []Value
}

// SortKey is one _sort key.
type SortKey struct {
	Code  string
	Desc  bool
	Param *Param // nil for _id
}

// Include is one _include or _revinclude: resources of Source referring
// (through Param, or any reference parameter when Param is "*") to
// resources of Target (any type when "").
type Include struct {
	Source  string
	Param   string
	Target  string
	Iterate bool
}

// Parse checks the search parameters q for type typ. base is the FHIR base
// URL of this server (absolute references to it are made relative). A value
// that cannot be read answers 400; a parameter the engine does not know or
// support goes to Query.Unknown.
func (r *Registry) Parse(typ string, q url.Values, base string) (*Query, error) {
	qu := &Query{Type: typ, Applied: url.Values{}, reg: r, base: strings.TrimSuffix(base, "/"), now: time.Now()}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		vals := q[name]
		switch {
		case name == "_sort":
			if err := qu.parseSort(vals); err != nil {
				return nil, err
			}
		case strings.HasPrefix(name, "_include") || strings.HasPrefix(name, "_revinclude"):
			if err := qu.parseInclude(name, vals); err != nil {
				return nil, err
			}
		case resultParams[name]:
		default:
			for _, v := range vals {
				c, unknown, err := r.parseClause(typ, name, v, qu.base, qu.now, true)
				if err != nil {
					return nil, err
				}
				if unknown != "" {
					qu.Unknown = append(qu.Unknown, Unknown{Name: name, Reason: unknown})
					break
				}
				qu.Clauses = append(qu.Clauses, c)
				qu.Applied[name] = append(qu.Applied[name], v)
			}
		}
	}
	return qu, nil
}

// parseClause reads one criterion; unknown is why it is not supported.
func (r *Registry) parseClause(typ, name, raw, base string, now time.Time, top bool) (c *Clause, unknown string, err error) {
	if strings.HasPrefix(name, "_has:") {
		if !top {
			return nil, "_has is supported one level deep", nil
		}
		return r.parseHas(typ, name, raw, base, now)
	}
	head, rest, chained := strings.Cut(name, ".")
	code, mod, _ := strings.Cut(head, ":")
	p, ok := r.Lookup(typ, code)
	if !ok {
		return nil, "unknown search parameter " + strconv.Quote(code) + " for " + typ, nil
	}
	c = &Clause{Name: name, Param: p, Modifier: mod}
	if chained {
		if !top {
			return nil, "chains are supported one level deep", nil
		}
		if p.Type != TypeReference {
			return nil, code + " is not a reference parameter: it cannot be chained", nil
		}
		if strings.Contains(rest, ".") {
			return nil, "chains are supported one level deep", nil
		}
		targets := p.Targets
		if mod != "" {
			if !contains(p.Targets, mod) {
				return nil, mod + " is not a target type of " + code, nil
			}
			targets = []string{mod}
		}
		c.Modifier = ""
		c.Chain = map[string]*Clause{}
		for _, t := range targets {
			inner, why, err := r.parseClause(t, rest, raw, base, now, false)
			if err != nil {
				return nil, "", err
			}
			if why == "" {
				c.Chain[t] = inner
			}
		}
		if len(c.Chain) == 0 {
			return nil, "no target type of " + code + " has the parameter " + strconv.Quote(rest), nil
		}
		return c, "", nil
	}
	if why := modifierProblem(p, mod); why != "" {
		return nil, why, nil
	}
	for _, v := range splitValues(raw) {
		val, err := parseValue(p, mod, v, now)
		if err != nil {
			return nil, "", outcome.Invalid(name, "%s: %v", name, err)
		}
		c.Values = append(c.Values, val)
	}
	if len(c.Values) == 0 {
		return nil, "", outcome.Invalid(name, "%s has no value", name)
	}
	return c, "", nil
}

// parseHas reads _has:Type:ref:param[:modifier]=value.
func (r *Registry) parseHas(typ, name, raw, base string, now time.Time) (*Clause, string, error) {
	parts := strings.SplitN(name, ":", 4)
	if len(parts) != 4 {
		return nil, "", outcome.Invalid(name, "_has is written _has:Type:reference:parameter=value")
	}
	src, refCode, inner := parts[1], parts[2], parts[3]
	if !isResourceType(src) {
		return nil, "unknown resource type " + strconv.Quote(src) + " in _has", nil
	}
	ref, ok := r.Lookup(src, refCode)
	if !ok || ref.Type != TypeReference {
		return nil, refCode + " is not a reference parameter of " + src, nil
	}
	if len(ref.Targets) > 0 && !contains(ref.Targets, typ) {
		return nil, src + "." + refCode + " does not refer to " + typ, nil
	}
	c, why, err := r.parseClause(src, inner, raw, base, now, false)
	if err != nil || why != "" {
		return nil, why, err
	}
	return &Clause{Name: name, Has: &Has{Type: src, Ref: ref, Clause: c}}, "", nil
}

// modifierProblem says why a modifier is not supported on p ("" if it is).
func modifierProblem(p *Param, mod string) string {
	if mod == "" || mod == "missing" {
		return ""
	}
	ok := false
	switch p.Type {
	case TypeString:
		ok = (mod == "exact" || mod == "contains") && !p.phonetic()
	case TypeToken:
		ok = mod == "text" || mod == "not" || (mod == "of-type" && p.Code == "identifier")
		if p.Code == "_id" {
			ok = mod == "not"
		}
	case TypeReference:
		ok = mod == "identifier" || contains(p.Targets, mod) || (len(p.Targets) == 0 && isResourceType(mod))
	case TypeURI:
		ok = mod == "above" || mod == "below"
	}
	if ok {
		return ""
	}
	return "modifier :" + mod + " is not supported on " + p.Type + " parameter " + p.Code
}

// splitValues splits a parameter value on the commas that are not escaped
// (\,): the values any of which may match.
func splitValues(raw string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) {
			if raw[i+1] == ',' {
				b.WriteByte(',')
			} else {
				b.WriteByte(c)
				b.WriteByte(raw[i+1])
			}
			i++
			continue
		}
		if c == ',' {
			out = append(out, b.String())
			b.Reset()
			continue
		}
		b.WriteByte(c)
	}
	out = append(out, b.String())
	keep := out[:0]
	for _, v := range out {
		if v != "" {
			keep = append(keep, v)
		}
	}
	return keep
}

// splitEscaped splits on sep where not escaped by a backslash, and
// unescapes \| \$ \, and \\ in the parts.
func splitEscaped(s string, sep byte, n int) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			b.WriteByte(s[i+1])
			i++
			continue
		}
		if c == sep && (n < 0 || len(out) < n-1) {
			out = append(out, b.String())
			b.Reset()
			continue
		}
		b.WriteByte(c)
	}
	return append(out, b.String())
}

// prefixes of ordered values.
var prefixes = map[string]bool{"eq": true, "ne": true, "gt": true, "lt": true, "ge": true, "le": true, "sa": true, "eb": true, "ap": true}

func cutPrefix(v string) (string, string) {
	if len(v) >= 3 && prefixes[v[:2]] && (v[2] >= '0' && v[2] <= '9' || v[2] == '-' || v[2] == '+' || v[2] == '.') {
		return v[:2], v[2:]
	}
	return "eq", v
}

// parseValue reads one value for parameter p.
func parseValue(p *Param, mod, raw string, now time.Time) (Value, error) {
	v := Value{Raw: raw}
	if mod == "missing" {
		if raw != "true" && raw != "false" {
			return v, errorf(":missing takes true or false")
		}
		return v, nil
	}
	return parseTyped(p.Type, p, mod, raw, now)
}

func parseTyped(typ string, p *Param, mod, raw string, now time.Time) (Value, error) {
	v := Value{Raw: raw}
	switch typ {
	case TypeToken:
		if mod == "text" {
			v.Code = Normalize(raw)
			return v, nil
		}
		parts := splitEscaped(raw, '|', 2)
		if len(parts) == 2 {
			v.System, v.Code, v.HasSystem = parts[0], parts[1], true
		} else {
			v.Code = parts[0]
		}
		if v.Code == "" && v.System == "" {
			return v, errorf("empty token")
		}
		if mod == "of-type" {
			ps := splitEscaped(raw, '|', 3)
			if len(ps) != 3 || ps[1] == "" || ps[2] == "" {
				return v, errorf(":of-type takes system|code|value")
			}
		}
	case TypeString:
		v.Code = raw
		if p.phonetic() { // compared by code: a code is a prefix of itself only
			if v.Code = Phonetic(Normalize(raw)); v.Code == "" {
				return v, errorf("phonetic takes a name (letters)")
			}
		}
	case TypeURI:
		v.Code = raw
	case TypeReference:
		v.Code = raw
		if mod == "identifier" {
			parts := splitEscaped(raw, '|', 2)
			if len(parts) == 2 {
				v.System, v.Code, v.HasSystem = parts[0], parts[1], true
			}
		}
	case TypeDate:
		v.Prefix, raw = cutPrefix(raw)
		lo, hi, ok := dateRange(raw)
		if !ok {
			return v, errorf("%q is not a FHIR date, dateTime or instant", raw)
		}
		if v.Prefix == "ap" {
			gap := now.Sub(lo)
			if gap < 0 {
				gap = -gap
			}
			lo, hi = lo.Add(-gap/10), hi.Add(gap/10)
		}
		v.lo, v.hi = encodeInstant(lo), encodeInstant(hi)
	case TypeNumber:
		v.Prefix, raw = cutPrefix(raw)
		if err := v.setNumber(raw); err != nil {
			return v, err
		}
	case TypeQuantity:
		v.Prefix, raw = cutPrefix(raw)
		parts := splitEscaped(raw, '|', 3)
		if err := v.setNumber(parts[0]); err != nil {
			return v, err
		}
		if len(parts) == 3 {
			v.System, v.Code, v.HasSystem = parts[1], parts[2], true
		} else if len(parts) == 2 {
			return v, errorf("a quantity is number, number|system|code or number||code")
		}
	case TypeComposite:
		parts := splitComponents(raw)
		if len(parts) != len(p.Components) {
			return v, errorf("%d components given, %s has %d (separated by $)", len(parts), p.Code, len(p.Components))
		}
		for i, part := range parts {
			cv, err := parseTyped(p.Components[i].Type, nil, "", part, now)
			if err != nil {
				return v, err
			}
			v.parts = append(v.parts, cv)
		}
	default:
		return v, errorf("parameter type %s is not supported", typ)
	}
	return v, nil
}

// setNumber reads a decimal and the range its precision covers: 100 is
// [99.5, 100.5), 1e2 is [50, 150).
func (v *Value) setNumber(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return errorf("%q is not a number", s)
	}
	mant, exp := strings.ToLower(s), 0
	if i := strings.IndexByte(mant, 'e'); i >= 0 {
		exp, _ = strconv.Atoi(mant[i+1:])
		mant = mant[:i]
	}
	decimals := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		decimals = len(mant) - i - 1
	}
	half := 0.5 * math.Pow10(-(decimals - exp))
	v.num, v.nlo, v.nhi = f, f-half, f+half
	if v.Prefix == "ap" {
		d := math.Abs(f) / 10
		if d < half {
			d = half
		}
		v.nlo, v.nhi = f-d, f+d
	}
	// A value stated to more digits than a float64 holds has a range
	// narrower than the float64s around it: widen it to them, so that the
	// value itself still matches (once a bug: 168.80253764416227 did not
	// find the resources stored with it).
	v.nlo = min(v.nlo, math.Nextafter(f, math.Inf(-1)))
	v.nhi = max(v.nhi, math.Nextafter(f, math.Inf(1)))
	return nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// splitComponents splits a composite value on the "$" that are not
// escaped (\$), keeping the other escapes for the component parsers.
func splitComponents(s string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			if s[i+1] != '$' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[i+1])
			i++
			continue
		}
		if s[i] == '$' {
			out = append(out, b.String())
			b.Reset()
			continue
		}
		b.WriteByte(s[i])
	}
	return append(out, b.String())
}

// parseSort reads _sort=key,-key.
func (q *Query) parseSort(vals []string) error {
	for _, v := range vals {
		for _, k := range strings.Split(v, ",") {
			k = strings.TrimSpace(k)
			if k == "" {
				continue
			}
			key := SortKey{Code: k}
			if strings.HasPrefix(k, "-") {
				key.Code, key.Desc = k[1:], true
			}
			if key.Code != "_id" {
				p, ok := q.reg.Lookup(q.Type, key.Code)
				if !ok || p.Type == TypeComposite {
					q.Unknown = append(q.Unknown, Unknown{Name: "_sort", Reason: "cannot sort " + q.Type + " by " + strconv.Quote(key.Code)})
					continue
				}
				key.Param = p
			}
			q.Sort = append(q.Sort, key)
		}
	}
	if len(q.Sort) > 0 {
		keys := make([]string, len(q.Sort))
		for i, k := range q.Sort {
			keys[i] = k.Code
			if k.Desc {
				keys[i] = "-" + k.Code
			}
		}
		q.Applied.Set("_sort", strings.Join(keys, ","))
	}
	return nil
}

// parseInclude reads _include[:iterate]=Source:param[:Target] and
// _revinclude likewise.
func (q *Query) parseInclude(name string, vals []string) error {
	base, mod, _ := strings.Cut(name, ":")
	rev := base == "_revinclude"
	if base != "_include" && !rev || mod != "" && mod != "iterate" && mod != "recurse" {
		q.Unknown = append(q.Unknown, Unknown{Name: name, Reason: "unknown parameter"})
		return nil
	}
	for _, v := range vals {
		parts := strings.Split(v, ":")
		inc := Include{Source: parts[0], Iterate: mod != ""}
		if len(parts) >= 2 {
			inc.Param = parts[1]
		}
		if len(parts) == 3 {
			inc.Target = parts[2]
		}
		why := ""
		switch {
		case v == "*" && !rev:
			inc = Include{Source: q.Type, Param: "*", Iterate: mod != ""}
		case len(parts) < 2 || len(parts) > 3:
			why = "write Type:parameter[:targetType]"
		case !isResourceType(inc.Source):
			why = "unknown resource type " + strconv.Quote(inc.Source)
		case !rev && !inc.Iterate && inc.Source != q.Type:
			why = "_include names a parameter of " + q.Type + " (or use :iterate)"
		case inc.Target != "" && !isResourceType(inc.Target):
			why = "unknown resource type " + strconv.Quote(inc.Target)
		case inc.Param == "*":
		default:
			p, ok := q.reg.Lookup(inc.Source, inc.Param)
			switch {
			case !ok || p.Type != TypeReference:
				why = inc.Param + " is not a reference parameter of " + inc.Source
			case inc.Target != "" && len(p.Targets) > 0 && !contains(p.Targets, inc.Target):
				why = inc.Target + " is not a target of " + inc.Source + "." + inc.Param
			case rev && !inc.Iterate && len(p.Targets) > 0 && !contains(p.Targets, q.Type) && inc.Target == "":
				why = inc.Source + "." + inc.Param + " does not refer to " + q.Type
			}
		}
		if why != "" {
			q.Unknown = append(q.Unknown, Unknown{Name: name, Reason: why})
			continue
		}
		if rev {
			q.RevInclude = append(q.RevInclude, inc)
		} else {
			q.Include = append(q.Include, inc)
		}
		q.Applied[name] = append(q.Applied[name], v)
	}
	return nil
}
