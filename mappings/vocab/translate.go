package vocab

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// TranslateParams are the in-parameters of ConceptMap/$translate (FHIR R4).
type TranslateParams struct {
	// URL is the canonical URL of the ConceptMap (url; the parsers read
	// "url|version" as URL and ConceptMapVersion, Translate accepts it too).
	URL string
	// ConceptMap is a map given inline (conceptMap): it is used instead of the hub's.
	ConceptMap        map[string]any
	ConceptMapVersion string
	// Source and Target are value set canonicals that select maps by their
	// source and target scope; TargetSystem selects groups by target system.
	Source, Target, TargetSystem string
	// The code to translate: Coding, else every coding of CodeableConcept,
	// else System and Code.
	System, Version, Code string
	Coding                *Coding
	CodeableConcept       []Coding
	// Dependency gives the context of the dependsOn rules.
	Dependency []Dependency
	// Reverse translates from target codes back to source codes.
	Reverse bool

	// names names the parameters of a parsed request (Expression).
	names paramNames
}

// Dependency is one dependency in-parameter: a dependsOn property URI
// (element) and the concept it has in this context.
type Dependency struct {
	Element string
	Concept []Coding
}

// contextProps turns the dependencies into dependsOn properties.
func contextProps(deps []Dependency) props {
	p := props{}
	for _, d := range deps {
		p[d.Element] = append(p[d.Element], d.Concept...)
	}
	return p
}

// Translate runs $translate and answers a FHIR Parameters resource: result
// (boolean), message, and one match per target (equivalence, concept,
// source = the ConceptMap URL). Context rules follow the package
// documentation: without dependencies only unconditional targets match.
// Translate itself answers result=false with a message for input it cannot
// use (nothing to translate, a url of no hub map); a server refuses such
// input before: the parsers return a *ParamError, and the server resolves
// url to a stored map (passed as ConceptMap) or answers 404.
func Translate(p TranslateParams) map[string]any {
	matches, msg := translate(p)
	result := false
	for _, m := range matches {
		if m.equivalence != "unmatched" && m.equivalence != "disjoint" && m.concept.Code != "" {
			result = true
		}
	}
	params := []any{map[string]any{"name": "result", "valueBoolean": result}}
	if msg != "" {
		params = append(params, map[string]any{"name": "message", "valueString": msg})
	}
	for _, m := range matches {
		parts := []any{map[string]any{"name": "equivalence", "valueCode": m.equivalence}}
		if m.concept.Code != "" {
			parts = append(parts, map[string]any{"name": "concept", "valueCoding": m.concept.Map()})
		}
		parts = append(parts, map[string]any{"name": "source", "valueUri": m.source})
		params = append(params, map[string]any{"name": "match", "part": parts})
	}
	return map[string]any{"resourceType": "Parameters", "parameter": params}
}

func translate(p TranslateParams) ([]match, string) {
	var codings []Coding
	switch {
	case p.Coding != nil:
		codings = []Coding{*p.Coding}
	case len(p.CodeableConcept) > 0:
		codings = p.CodeableConcept
	case p.Code != "":
		codings = []Coding{{System: p.System, Code: p.Code}}
	default:
		return nil, "nothing to translate: give code and system, coding or codeableConcept"
	}
	var maps []*compiled
	switch {
	case p.ConceptMap != nil:
		cm, err := compile(p.ConceptMap)
		if err != nil {
			return nil, "the conceptMap parameter is not a usable ConceptMap: " + err.Error()
		}
		maps = []*compiled{cm}
	case p.URL != "":
		u, v, _ := strings.Cut(p.URL, "|")
		cm := built().maps[u]
		if cm == nil || (v != "" && v != cm.version) {
			return nil, "no ConceptMap with this url"
		}
		maps = []*compiled{cm}
	default:
		for _, cm := range built().order {
			if p.Source != "" && !sameCanonical(cm.sourceVS, p.Source) && !p.Reverse {
				continue
			}
			if p.Target != "" && !sameCanonical(cm.targetVS, p.Target) && !p.Reverse {
				continue
			}
			if p.Reverse && ((p.Source != "" && !sameCanonical(cm.targetVS, p.Source)) || (p.Target != "" && !sameCanonical(cm.sourceVS, p.Target))) {
				continue
			}
			maps = append(maps, cm)
		}
	}
	ctx := contextProps(p.Dependency)
	var out []match
	for _, cm := range maps {
		if p.ConceptMapVersion != "" && cm.version != p.ConceptMapVersion {
			continue
		}
		for _, c := range codings {
			var ms []match
			if p.Reverse {
				ms = cm.reverse(c.System, c.Code)
			} else {
				ms = cm.translate(c.System, c.Code, ctx)
			}
			for _, m := range ms {
				if p.TargetSystem != "" && m.concept.System != p.TargetSystem {
					continue
				}
				m.input = c.Code
				out = append(out, m)
			}
		}
	}
	switch len(out) {
	case 0:
		return nil, "no mapping found"
	case 1:
		return out, describe(out[0])
	default:
		return out, fmt.Sprintf("%d matches", len(out))
	}
}

func describe(m match) string {
	if m.fromDefault {
		return "no element for the code: the group's unmapped rule applied"
	}
	if m.via != "" && normalize(m.via) != normalize(m.input) {
		return "matched through the ancestor code " + m.via
	}
	return ""
}

// CheckConceptMap reports why a ConceptMap resource cannot be evaluated
// by Translate (nil when it can).
func CheckConceptMap(r map[string]any) error {
	_, err := compile(r)
	return err
}

func sameCanonical(a, b string) bool {
	a, _, _ = strings.Cut(a, "|")
	b, _, _ = strings.Cut(b, "|")
	return a == b
}

// ParamError is $translate input the operation refuses (the server
// answers 400 with an OperationOutcome): Code is the issue type (required,
// invalid or not-supported) and Expression names the parameters at fault,
// FHIRPath-ish: the query parameter's name for GET, Parameters.parameter[i]
// (or Parameters.parameter.where(name='…') when it is missing) for POST.
type ParamError struct {
	Code       string
	Expression []string
	Message    string
}

func (e *ParamError) Error() string { return e.Message }

// Issue types of a ParamError (http://hl7.org/fhir/issue-type).
const (
	IssueRequired     = "required"
	IssueInvalid      = "invalid"
	IssueNotSupported = "not-supported"
)

func paramErr(code string, expr []string, format string, args ...any) *ParamError {
	return &ParamError{Code: code, Expression: expr, Message: fmt.Sprintf(format, args...)}
}

// translateParamTypes are the in-parameters of R4 ConceptMap/$translate
// with their type; every one is 0..1 but dependency (0..*).
var translateParamTypes = map[string]string{
	"url": "uri", "conceptMap": "ConceptMap", "conceptMapVersion": "string", "code": "code",
	"system": "uri", "version": "string", "source": "uri", "coding": "Coding",
	"codeableConcept": "CodeableConcept", "target": "uri", "targetsystem": "uri",
	"dependency": "parts", "reverse": "boolean",
}

// valueKeys are the value[x] a parameter of a type may have in a POSTed
// Parameters: its own, or a specialisation of it in R4 (url, canonical,
// oid and uuid are uris; code, id and markdown are strings). Nothing else:
// a valueString is not a code nor a uri.
var valueKeys = map[string][]string{
	"uri":             {"valueUri", "valueUrl", "valueCanonical", "valueOid", "valueUuid"},
	"string":          {"valueString", "valueCode", "valueId", "valueMarkdown"},
	"code":            {"valueCode"},
	"boolean":         {"valueBoolean"},
	"Coding":          {"valueCoding"},
	"CodeableConcept": {"valueCodeableConcept"},
}

// paramNames is how a parse names its parameters in errors.
type paramNames struct {
	post bool
	at   map[string]string // parameter name → its expression, when given
}

// of names parameter name: where it was given, or where it is missing.
func (w paramNames) of(name string) string {
	if e, ok := w.at[name]; ok {
		return e
	}
	if w.post {
		return "Parameters.parameter.where(name='" + name + "')"
	}
	return name
}

// Expression names the parameter name of a parsed request the way its
// errors do (for the caller's own errors about it, e.g. an unknown url).
func (p TranslateParams) Expression(name string) string { return p.names.of(name) }

// stringParam is the field of a $translate parameter of a string type
// (uri, code, string…), nil for the others.
func (p *TranslateParams) stringParam(name string) *string {
	switch name {
	case "url":
		return &p.URL
	case "conceptMapVersion":
		return &p.ConceptMapVersion
	case "source":
		return &p.Source
	case "target":
		return &p.Target
	case "targetsystem":
		return &p.TargetSystem
	case "system":
		return &p.System
	case "version":
		return &p.Version
	case "code":
		return &p.Code
	}
	return nil
}

// ParseTranslateQuery reads $translate parameters from a GET query: url
// ("url|version" is read as url and conceptMapVersion), conceptMapVersion,
// source, target, targetsystem, system, version, code, reverse. Complex
// parameters (coding, codeableConcept, conceptMap, dependency) need a
// POSTed Parameters resource. Input $translate cannot run with is a
// *ParamError: an unknown or complex parameter, one given twice or empty,
// and the rules of Check.
func ParseTranslateQuery(q url.Values) (TranslateParams, error) {
	p := TranslateParams{names: paramNames{at: map[string]string{}}}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names) // the same error for the same query
	for _, name := range names {
		vals := q[name]
		switch name {
		case "_format", "_pretty":
			continue
		case "coding", "codeableConcept", "conceptMap", "dependency":
			return p, paramErr(IssueNotSupported, []string{name}, "%s is a complex parameter: POST a Parameters resource to give it", name)
		}
		if _, known := translateParamTypes[name]; !known {
			return p, paramErr(IssueNotSupported, []string{name}, "unknown $translate parameter %q", name)
		}
		if len(vals) > 1 {
			return p, paramErr(IssueInvalid, []string{name}, "%s is given %d times: $translate takes it at most once", name, len(vals))
		}
		v := vals[0]
		if v == "" {
			return p, paramErr(IssueInvalid, []string{name}, "%s is empty", name)
		}
		p.names.at[name] = name
		if f := p.stringParam(name); f != nil {
			*f = v
			continue
		}
		switch name {
		case "reverse":
			switch v {
			case "true":
				p.Reverse = true
			case "false":
			default:
				return p, paramErr(IssueInvalid, []string{name}, "reverse must be true or false")
			}
		}
	}
	if err := p.check(); err != nil {
		return p, err
	}
	return p, nil
}

// ParseTranslateParameters reads $translate parameters from a POSTed
// Parameters resource (conceptMap, coding, codeableConcept and dependency
// included). Each parameter must have the R4 type of its value[x]
// (valueKeys); a parameter of cardinality 0..1 given twice, an unknown one,
// a conceptMap that is not a usable ConceptMap and the rules of Check are
// a *ParamError.
func ParseTranslateParameters(r map[string]any) (TranslateParams, error) {
	p := TranslateParams{names: paramNames{post: true, at: map[string]string{}}}
	if str(r, "resourceType") != "Parameters" {
		return p, paramErr(IssueInvalid, []string{"resourceType"}, "the body must be a Parameters resource")
	}
	raw, isList := r["parameter"].([]any)
	if r["parameter"] != nil && !isList {
		return p, paramErr(IssueInvalid, []string{"Parameters.parameter"}, "parameter must be a list")
	}
	for i, x := range raw {
		at := fmt.Sprintf("Parameters.parameter[%d]", i)
		pm, ok := x.(map[string]any)
		if !ok {
			return p, paramErr(IssueInvalid, []string{at}, "a parameter must be an object")
		}
		name := str(pm, "name")
		typ, known := translateParamTypes[name]
		if !known {
			if name == "" {
				return p, paramErr(IssueRequired, []string{at + ".name"}, "a parameter needs a name")
			}
			return p, paramErr(IssueNotSupported, []string{at}, "unknown $translate parameter %q", name)
		}
		if prev, dup := p.names.at[name]; dup && name != "dependency" {
			return p, paramErr(IssueInvalid, []string{at}, "%s is given twice (%s and %s): $translate takes it at most once", name, prev, at)
		}
		if name != "dependency" {
			p.names.at[name] = at
		}
		switch typ {
		case "ConceptMap":
			if err := onlyKeys(pm, at, "resource"); err != nil {
				return p, err
			}
			cm, ok := pm["resource"].(map[string]any)
			if !ok {
				return p, paramErr(IssueRequired, []string{at + ".resource"}, "conceptMap needs a ConceptMap resource")
			}
			if _, err := compile(cm); err != nil {
				return p, paramErr(IssueInvalid, []string{at + ".resource"}, "conceptMap is not a usable ConceptMap: %v", err)
			}
			p.ConceptMap = cm
			continue
		case "parts":
			if err := onlyKeys(pm, at, "part"); err != nil {
				return p, err
			}
			d, err := parseDependency(pm, at)
			if err != nil {
				return p, err
			}
			p.Dependency = append(p.Dependency, d)
			continue
		}
		v, err := valueOf(pm, at, name, typ)
		if err != nil {
			return p, err
		}
		if f := p.stringParam(name); f != nil {
			*f = v.(string)
			continue
		}
		switch name {
		case "reverse":
			p.Reverse = v.(bool)
		case "coding":
			c := codingOf(v)
			p.Coding = &c
		case "codeableConcept":
			p.CodeableConcept = codingsOf(v)
			if p.CodeableConcept == nil {
				p.CodeableConcept = []Coding{} // given, without codings: check says so
			}
		}
	}
	if err := p.check(); err != nil {
		return p, err
	}
	return p, nil
}

// onlyKeys refuses a parameter with a value[x], resource or part other
// than the one its type takes (want).
func onlyKeys(pm map[string]any, at string, want string) error {
	for k := range pm {
		if k != want && (strings.HasPrefix(k, "value") || k == "resource" || k == "part") {
			return paramErr(IssueInvalid, []string{at}, "%s takes %s, not %s", str(pm, "name"), want, k)
		}
	}
	return nil
}

// valueOf is the value of a parameter of a primitive or datatype type:
// exactly one value[x], of the type or a specialisation of it.
func valueOf(pm map[string]any, at, name, typ string) (any, error) {
	allowed := valueKeys[typ]
	var key string
	for k := range pm {
		if !strings.HasPrefix(k, "value") && k != "resource" && k != "part" {
			continue
		}
		if key != "" {
			return nil, paramErr(IssueInvalid, []string{at}, "%s has more than one value", name)
		}
		key = k
	}
	if key == "" {
		return nil, paramErr(IssueRequired, []string{at}, "%s has no value (%s)", name, allowed[0])
	}
	if !slices.Contains(allowed, key) {
		return nil, paramErr(IssueInvalid, []string{at}, "%s is of type %s: give %s, not %s", name, typ, allowed[0], key)
	}
	v := pm[key]
	switch typ {
	case "boolean":
		if _, ok := v.(bool); !ok {
			return nil, paramErr(IssueInvalid, []string{at + "." + key}, "%s must be true or false", name)
		}
	case "Coding", "CodeableConcept":
		if _, ok := v.(map[string]any); !ok {
			return nil, paramErr(IssueInvalid, []string{at + "." + key}, "%s must be a %s", name, typ)
		}
	default:
		if s, ok := v.(string); !ok || s == "" {
			return nil, paramErr(IssueInvalid, []string{at + "." + key}, "%s must be a non-empty %s", name, typ)
		}
	}
	return v, nil
}

// parseDependency reads a dependency parameter: its parts element (uri,
// the dependsOn property) and concept (CodeableConcept), each at most
// once.
func parseDependency(pm map[string]any, at string) (Dependency, error) {
	var d Dependency
	parts, _ := pm["part"].([]any)
	seen := map[string]bool{}
	for j, x := range parts {
		pat := fmt.Sprintf("%s.part[%d]", at, j)
		part, ok := x.(map[string]any)
		if !ok {
			return d, paramErr(IssueInvalid, []string{pat}, "a part must be an object")
		}
		name := str(part, "name")
		var typ string
		switch name {
		case "element":
			typ = "uri"
		case "concept":
			typ = "CodeableConcept"
		default:
			return d, paramErr(IssueNotSupported, []string{pat}, "unknown dependency part %q (element, concept)", name)
		}
		if seen[name] {
			return d, paramErr(IssueInvalid, []string{pat}, "dependency.%s is given twice", name)
		}
		seen[name] = true
		v, err := valueOf(part, pat, "dependency."+name, typ)
		if err != nil {
			return d, err
		}
		if name == "element" {
			d.Element = v.(string)
		} else {
			d.Concept = codingsOf(v)
		}
	}
	if d.Element == "" {
		return d, paramErr(IssueRequired, []string{at + ".part"}, "dependency has no element (the dependsOn property it gives)")
	}
	return d, nil
}

// check applies the rules of R4 $translate that span parameters: one
// thing to translate (code and system, coding or codeableConcept), a
// system with a code ("If a code is provided, a system must be provided"),
// codings that can be translated, and one way to name the map.
func (p *TranslateParams) check() error {
	w := p.names
	var given []string
	if p.Code != "" {
		given = append(given, w.of("code"))
	}
	if p.Coding != nil {
		given = append(given, w.of("coding"))
	}
	if p.CodeableConcept != nil {
		given = append(given, w.of("codeableConcept"))
	}
	switch {
	case len(given) == 0:
		return paramErr(IssueRequired, []string{w.of("code"), w.of("coding"), w.of("codeableConcept")},
			"nothing to translate: give code and system, coding or codeableConcept")
	case len(given) > 1:
		return paramErr(IssueInvalid, given, "give one of code (with system), coding or codeableConcept, not several")
	}
	switch {
	case p.Code != "" && p.System == "":
		return paramErr(IssueRequired, []string{w.of("system")}, "system is required with code (if a code is provided, a system must be provided)")
	case p.Code == "" && p.System != "":
		return paramErr(IssueInvalid, []string{w.of("system")}, "system goes with code: a coding or codeableConcept carries its own system")
	case p.Code == "" && p.Version != "":
		return paramErr(IssueInvalid, []string{w.of("version")}, "version goes with code and system")
	case p.Coding != nil && (p.Coding.System == "" || p.Coding.Code == ""):
		return paramErr(IssueRequired, []string{w.of("coding")}, "coding needs a system and a code")
	case p.CodeableConcept != nil && !slices.ContainsFunc(p.CodeableConcept, func(c Coding) bool { return c.System != "" && c.Code != "" }):
		return paramErr(IssueRequired, []string{w.of("codeableConcept")}, "codeableConcept needs a coding with a system and a code")
	case p.URL != "" && p.ConceptMap != nil:
		return paramErr(IssueInvalid, []string{w.of("url"), w.of("conceptMap")}, "give url or conceptMap, not both")
	}
	if u, v, ok := strings.Cut(p.URL, "|"); ok {
		if u == "" || v == "" {
			return paramErr(IssueInvalid, []string{w.of("url")}, "url is url or url|version")
		}
		if p.ConceptMapVersion != "" && p.ConceptMapVersion != v {
			return paramErr(IssueInvalid, []string{w.of("url"), w.of("conceptMapVersion")}, "url names version %s and conceptMapVersion %s", v, p.ConceptMapVersion)
		}
		p.URL, p.ConceptMapVersion = u, v
		if _, given := w.at["conceptMapVersion"]; !given {
			w.at["conceptMapVersion"] = w.of("url")
		}
	}
	return nil
}

func codingOf(v any) Coding {
	m, _ := v.(map[string]any)
	return Coding{System: str(m, "system"), Code: str(m, "code"), Display: str(m, "display")}
}

func codingsOf(v any) []Coding {
	m, _ := v.(map[string]any)
	var out []Coding
	for _, c := range list(m["coding"]) {
		out = append(out, codingOf(c))
	}
	return out
}
