package vocab

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// compiled is a ConceptMap ready for evaluation. It is parsed from the FHIR
// resource, so a map received inline by $translate behaves exactly like the
// hub's own.
type compiled struct {
	url, version       string
	sourceVS, targetVS string
	groups             []*group
}

type group struct {
	source, target string
	prefix         bool
	elements       map[string]*element // by key(code)
	unmapped       *unmapped
}

type element struct {
	code, display string
	targets       []target
}

type target struct {
	code, display, equivalence, comment string
	deps                                []dep
}

type dep struct{ property, system, value string }

type unmapped struct{ mode, code, display, url string }

// match is one translation result.
type match struct {
	equivalence string
	concept     Coding
	source      string // canonical URL of the map
	via         string // the element code that matched (differs from the input for a prefix match)
	input       string // the code that was translated
	comment     string
	fromDefault bool // the group's unmapped rule applied
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func list(v any) []map[string]any {
	xs, _ := v.([]any)
	out := make([]map[string]any, 0, len(xs))
	for _, x := range xs {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// compile parses a ConceptMap resource.
func compile(r map[string]any) (*compiled, error) {
	if str(r, "resourceType") != "ConceptMap" {
		return nil, errors.New("not a ConceptMap")
	}
	cm := &compiled{url: str(r, "url"), version: str(r, "version")}
	cm.sourceVS = str(r, "sourceUri") + str(r, "sourceCanonical")
	cm.targetVS = str(r, "targetUri") + str(r, "targetCanonical")
	for gi, gm := range list(r["group"]) {
		g := &group{source: str(gm, "source"), target: str(gm, "target"), elements: map[string]*element{}}
		for _, ext := range list(gm["extension"]) {
			if str(ext, "url") == PrefixMatchExtensionURL {
				g.prefix, _ = ext["valueBoolean"].(bool)
			}
		}
		for ei, em := range list(gm["element"]) {
			e := &element{code: str(em, "code"), display: str(em, "display")}
			if e.code == "" {
				return nil, fmt.Errorf("group[%d].element[%d] has no code", gi, ei)
			}
			for _, tm := range list(em["target"]) {
				t := target{code: str(tm, "code"), display: str(tm, "display"), equivalence: str(tm, "equivalence"), comment: str(tm, "comment")}
				if t.equivalence == "" {
					return nil, fmt.Errorf("group[%d].element[%d] has a target without equivalence", gi, ei)
				}
				for _, dm := range list(tm["dependsOn"]) {
					t.deps = append(t.deps, dep{property: str(dm, "property"), system: str(dm, "system"), value: str(dm, "value")})
				}
				e.targets = append(e.targets, t)
			}
			k := g.key(e.code)
			if _, dup := g.elements[k]; dup {
				return nil, fmt.Errorf("group[%d] maps the same source code twice", gi)
			}
			g.elements[k] = e
		}
		if um, ok := gm["unmapped"].(map[string]any); ok {
			g.unmapped = &unmapped{mode: str(um, "mode"), code: str(um, "code"), display: str(um, "display"), url: str(um, "url")}
		}
		cm.groups = append(cm.groups, g)
	}
	return cm, nil
}

// normalize is the comparison form of a hierarchical code: no dots, upper case.
func normalize(code string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(code), ".", ""))
}

func (g *group) key(code string) string {
	if g.prefix {
		return normalize(code)
	}
	return code
}

// props is a Context seen as dependsOn property → codings.
type props map[string][]Coding

// satisfied reports whether the context meets one dependsOn condition.
// Codes of hierarchical systems match by prefix (a condition on C18 holds
// for C18.7); others match exactly.
func (p props) satisfied(d dep) bool {
	for _, c := range p[d.property] {
		if d.system != "" && c.System != d.system {
			continue
		}
		if prefixSystems[d.system] {
			if v := normalize(d.value); v != "" && strings.HasPrefix(normalize(c.Code), v) {
				return true
			}
		} else if c.Code == d.value {
			return true
		}
	}
	return false
}

// selectTargets applies the context rules to an element's targets: the
// conditional targets whose conditions all hold, in document order; when
// none does, the unconditional ones.
func (p props) selectTargets(ts []target) []target {
	var cond, plain []target
	for _, t := range ts {
		if len(t.deps) == 0 {
			plain = append(plain, t)
			continue
		}
		ok := true
		for _, d := range t.deps {
			if !p.satisfied(d) {
				ok = false
				break
			}
		}
		if ok {
			cond = append(cond, t)
		}
	}
	if len(cond) > 0 {
		return cond
	}
	return plain
}

// translate maps one source code forward through every group of the map
// whose source is system (all groups when system is empty).
func (cm *compiled) translate(system, code string, p props) []match {
	var out []match
	for _, g := range cm.groups {
		if system != "" && g.source != system {
			continue
		}
		found := false
		for _, cand := range g.candidates(code) {
			e := g.elements[cand]
			if e == nil {
				continue
			}
			sel := p.selectTargets(e.targets)
			if len(sel) == 0 {
				continue
			}
			for _, t := range sel {
				out = append(out, match{
					equivalence: t.equivalence,
					concept:     Coding{System: g.target, Code: t.code, Display: t.display},
					source:      cm.url, via: e.code, comment: t.comment,
				})
			}
			found = true
			break
		}
		if !found && g.unmapped != nil {
			switch g.unmapped.mode {
			case "fixed":
				out = append(out, match{equivalence: "inexact", concept: Coding{System: g.target, Code: g.unmapped.code, Display: g.unmapped.display}, source: cm.url, fromDefault: true})
			case "provided":
				out = append(out, match{equivalence: "equal", concept: Coding{System: g.target, Code: code}, source: cm.url, fromDefault: true})
			}
		}
	}
	return out
}

// candidates are the element keys to try for a code, most specific first.
func (g *group) candidates(code string) []string {
	if !g.prefix {
		return []string{code}
	}
	n := normalize(code)
	out := make([]string, 0, len(n))
	for i := len(n); i >= 1; i-- {
		out = append(out, n[:i])
	}
	return out
}

// reverse finds the source codes that map to a target code.
func (cm *compiled) reverse(system, code string) []match {
	var out []match
	for _, g := range cm.groups {
		if system != "" && g.target != system {
			continue
		}
		for _, e := range g.sortedElements() {
			seen := map[string]bool{}
			for _, t := range e.targets {
				if t.code == code && !seen[t.equivalence] {
					seen[t.equivalence] = true
					out = append(out, match{equivalence: t.equivalence, concept: Coding{System: g.source, Code: e.code, Display: e.display}, source: cm.url, comment: t.comment})
				}
			}
		}
	}
	return out
}

// sortedElements lists elements in a stable order (by code).
func (g *group) sortedElements() []*element {
	out := make([]*element, 0, len(g.elements))
	for _, e := range g.elements {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *element) int { return strings.Compare(a.code, b.code) })
	return out
}
