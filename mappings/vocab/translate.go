package vocab

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// TranslateParams are the in-parameters of ConceptMap/$translate (FHIR R4).
type TranslateParams struct {
	// URL is the canonical URL of the ConceptMap (url; "url|version" is accepted).
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
// Problems with the input (nothing to translate, unknown map) answer
// result=false with a message; they are not errors.
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

func sameCanonical(a, b string) bool {
	a, _, _ = strings.Cut(a, "|")
	b, _, _ = strings.Cut(b, "|")
	return a == b
}

// ParseTranslateQuery reads $translate parameters from a GET query: url,
// conceptMapVersion, source, target, targetsystem, system, version, code,
// reverse. (Complex parameters need a POSTed Parameters resource.)
func ParseTranslateQuery(q url.Values) (TranslateParams, error) {
	p := TranslateParams{
		URL: q.Get("url"), ConceptMapVersion: q.Get("conceptMapVersion"),
		Source: q.Get("source"), Target: q.Get("target"), TargetSystem: q.Get("targetsystem"),
		System: q.Get("system"), Version: q.Get("version"), Code: q.Get("code"),
	}
	for name := range q {
		switch name {
		case "url", "conceptMapVersion", "source", "target", "targetsystem", "system", "version", "code", "reverse", "_format", "_pretty":
		default:
			return p, fmt.Errorf("unknown $translate parameter %q", name)
		}
	}
	switch q.Get("reverse") {
	case "", "false":
	case "true":
		p.Reverse = true
	default:
		return p, errors.New("reverse must be true or false")
	}
	return p, nil
}

// ParseTranslateParameters reads $translate parameters from a POSTed
// Parameters resource (conceptMap, coding, codeableConcept and dependency
// included).
func ParseTranslateParameters(r map[string]any) (TranslateParams, error) {
	var p TranslateParams
	if str(r, "resourceType") != "Parameters" {
		return p, errors.New("the body must be a Parameters resource")
	}
	for i, pm := range list(r["parameter"]) {
		name := str(pm, "name")
		switch name {
		case "url", "source", "target":
			v := str(pm, "valueUri") + str(pm, "valueCanonical")
			switch name {
			case "url":
				p.URL = v
			case "source":
				p.Source = v
			case "target":
				p.Target = v
			}
		case "conceptMapVersion":
			p.ConceptMapVersion = str(pm, "valueString")
		case "targetsystem":
			p.TargetSystem = str(pm, "valueUri")
		case "system":
			p.System = str(pm, "valueUri")
		case "version":
			p.Version = str(pm, "valueString")
		case "code":
			p.Code = str(pm, "valueCode")
		case "coding":
			c := codingOf(pm["valueCoding"])
			p.Coding = &c
		case "codeableConcept":
			p.CodeableConcept = append(p.CodeableConcept, codingsOf(pm["valueCodeableConcept"])...)
		case "conceptMap":
			cm, ok := pm["resource"].(map[string]any)
			if !ok {
				return p, fmt.Errorf("parameter[%d] conceptMap has no resource", i)
			}
			p.ConceptMap = cm
		case "reverse":
			b, ok := pm["valueBoolean"].(bool)
			if !ok {
				return p, fmt.Errorf("parameter[%d] reverse must have valueBoolean", i)
			}
			p.Reverse = b
		case "dependency":
			var d Dependency
			for _, part := range list(pm["part"]) {
				switch str(part, "name") {
				case "element":
					d.Element = str(part, "valueUri")
				case "concept":
					d.Concept = append(d.Concept, codingsOf(part["valueCodeableConcept"])...)
				}
			}
			if d.Element == "" {
				return p, fmt.Errorf("parameter[%d] dependency has no element", i)
			}
			p.Dependency = append(p.Dependency, d)
		default:
			return p, fmt.Errorf("parameter[%d]: unknown $translate parameter %q", i, name)
		}
	}
	return p, nil
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
