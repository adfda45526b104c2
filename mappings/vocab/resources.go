package vocab

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
)

// Coding is a code of a code system.
type Coding struct {
	System, Code, Display string
}

// Map renders the Coding as FHIR JSON (empty members omitted).
func (c Coding) Map() map[string]any {
	m := map[string]any{}
	if c.System != "" {
		m["system"] = c.System
	}
	if c.Code != "" {
		m["code"] = c.Code
	}
	if c.Display != "" {
		m["display"] = c.Display
	}
	return m
}

// num is a FHIR integer as a JSON number (Parcours resources hold json.Number).
func num(i int) json.Number { return json.Number(strconv.Itoa(i)) }

// built holds the generated resources and the compiled maps, made once.
var built = sync.OnceValue(func() *catalogue {
	cat := &catalogue{concepts: map[string]map[string]*conceptDef{}, maps: map[string]*compiled{}}
	for i := range codeSystems {
		d := &codeSystems[i]
		cat.resources = append(cat.resources, codeSystemResource(d), valueSetResource(d))
		idx := map[string]*conceptDef{}
		var walk func(cs []conceptDef)
		walk = func(cs []conceptDef) {
			for j := range cs {
				idx[cs[j].code] = &cs[j]
				walk(cs[j].children)
			}
		}
		walk(d.concepts)
		cat.concepts[CodeSystemBase+d.id] = idx
	}
	for i := range conceptMaps {
		r := conceptMapResource(&conceptMaps[i])
		cm, err := compile(r)
		if err != nil {
			// The maps are Go data compiled at start-up: an error is a broken build.
			panic(fmt.Sprintf("vocab: ConceptMap %s: %v", conceptMaps[i].id, err))
		}
		cat.resources = append(cat.resources, r)
		cat.maps[cm.url] = cm
		cat.order = append(cat.order, cm)
		for _, g := range cm.groups {
			if g.target == StageSystem {
				cat.stageMaps = append(cat.stageMaps, stageMapRef{source: g.source, cm: cm})
			}
		}
	}
	sort.SliceStable(cat.resources, func(a, b int) bool {
		ta, tb := cat.resources[a]["resourceType"].(string), cat.resources[b]["resourceType"].(string)
		if ta != tb {
			return ta < tb
		}
		return cat.resources[a]["id"].(string) < cat.resources[b]["id"].(string)
	})
	return cat
})

type stageMapRef struct {
	source string
	cm     *compiled
}

type catalogue struct {
	resources []map[string]any
	concepts  map[string]map[string]*conceptDef // system → code → concept
	maps      map[string]*compiled              // url → map
	order     []*compiled
	stageMaps []stageMapRef
}

// Resources returns every CodeSystem, ValueSet and ConceptMap of the
// vocabulary, sorted by type and id, as deep copies the caller may change.
func Resources() []map[string]any {
	src := built().resources
	out := make([]map[string]any, len(src))
	for i, r := range src {
		out[i] = clone(r).(map[string]any)
	}
	return out
}

func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = clone(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = clone(e)
		}
		return s
	default:
		return v
	}
}

func codeSystemResource(d *csDef) map[string]any {
	r := map[string]any{
		"resourceType":  "CodeSystem",
		"id":            d.id,
		"url":           CodeSystemBase + d.id,
		"version":       Version,
		"name":          pascal(d.id),
		"title":         d.title,
		"status":        "draft",
		"experimental":  false,
		"publisher":     "Parcours",
		"description":   d.description,
		"caseSensitive": true,
		"valueSet":      ValueSetBase + d.id,
		"content":       d.content,
	}
	if d.hierarchical {
		r["hierarchyMeaning"] = "is-a"
	}
	if len(d.properties) > 0 {
		var ps []any
		for _, p := range d.properties {
			ps = append(ps, map[string]any{"code": p.code, "uri": PropertyBase + p.code, "description": p.description, "type": p.typ})
		}
		r["property"] = ps
	}
	if len(d.concepts) > 0 {
		types := map[string]string{}
		for _, p := range d.properties {
			types[p.code] = p.typ
		}
		r["concept"] = conceptsJSON(d.id, types, d.concepts)
		r["count"] = num(countConcepts(d.concepts))
	}
	return r
}

func countConcepts(cs []conceptDef) int {
	n := len(cs)
	for _, c := range cs {
		n += countConcepts(c.children)
	}
	return n
}

// conceptsJSON renders concepts; types gives each property's declared
// type, which decides its value[x] (a string is valueCode for type code,
// valueString for type string). A value that does not fit its declared
// type is a broken build: the tables are data of this package.
func conceptsJSON(system string, types map[string]string, cs []conceptDef) []any {
	out := make([]any, 0, len(cs))
	for _, c := range cs {
		m := map[string]any{"code": c.code, "display": c.display}
		if c.definition != "" {
			m["definition"] = c.definition
		}
		if len(c.props) > 0 {
			var ps []any
			for _, p := range c.props {
				pm := map[string]any{"code": p.code}
				typ := types[p.code]
				switch v := p.value.(type) {
				case int:
					if typ == "integer" {
						pm["valueInteger"] = num(v)
					}
				case string:
					switch typ {
					case "string":
						pm["valueString"] = v
					case "code":
						pm["valueCode"] = v
					}
				case Coding:
					if typ == "Coding" {
						pm["valueCoding"] = v.Map()
					}
				}
				if len(pm) == 1 {
					panic(fmt.Sprintf("vocab: CodeSystem %s concept %s: property %s (%q) does not hold a %T", system, c.code, p.code, typ, p.value))
				}
				ps = append(ps, pm)
			}
			m["property"] = ps
		}
		if len(c.children) > 0 {
			m["concept"] = conceptsJSON(system, types, c.children)
		}
		out = append(out, m)
	}
	return out
}

func valueSetResource(d *csDef) map[string]any {
	return map[string]any{
		"resourceType": "ValueSet",
		"id":           d.id,
		"url":          ValueSetBase + d.id,
		"version":      Version,
		"name":         pascal(d.id),
		"title":        d.title,
		"status":       "draft",
		"experimental": false,
		"publisher":    "Parcours",
		"description":  "Every code of the CodeSystem " + CodeSystemBase + d.id + ".",
		"compose": map[string]any{
			"include": []any{map[string]any{"system": CodeSystemBase + d.id}},
		},
	}
}

func conceptMapResource(d *cmDef) map[string]any {
	group := map[string]any{"source": d.source, "target": d.target}
	if prefixSystems[d.source] {
		group["extension"] = []any{map[string]any{"url": PrefixMatchExtensionURL, "valueBoolean": true}}
	}
	var elements []any
	for _, e := range d.elements {
		em := map[string]any{"code": e.code}
		if disp := displayOf(d.source, e.code); disp != "" {
			em["display"] = disp
		}
		var ts []any
		for _, t := range e.targets {
			tm := map[string]any{"equivalence": t.equivalence}
			if t.code != "" {
				tm["code"] = t.code
				if disp := displayOf(d.target, t.code); disp != "" {
					tm["display"] = disp
				}
			}
			if t.comment != "" {
				tm["comment"] = t.comment
			}
			if len(t.deps) > 0 {
				var ds []any
				for _, dep := range t.deps {
					dm := map[string]any{"property": dep.property, "value": dep.value}
					if dep.system != "" {
						dm["system"] = dep.system
					}
					ds = append(ds, dm)
				}
				tm["dependsOn"] = ds
			}
			ts = append(ts, tm)
		}
		em["target"] = ts
		elements = append(elements, em)
	}
	group["element"] = elements
	r := map[string]any{
		"resourceType": "ConceptMap",
		"id":           d.id,
		"url":          ConceptMapBase + d.id,
		"version":      Version,
		"name":         pascal(d.id),
		"title":        d.title,
		"status":       "draft",
		"experimental": false,
		"publisher":    "Parcours",
		"description":  d.description,
		"sourceUri":    valueSetOf(d.source),
		"group":        []any{group},
	}
	if d.targetVS != "" {
		r["targetCanonical"] = d.targetVS
	} else {
		r["targetUri"] = valueSetOf(d.target)
	}
	return r
}

// valueSetOf is the ValueSet of every code of a system: the hub's own
// ValueSet for hub systems, the FHIR implicit one (system?fhir_vs) otherwise.
func valueSetOf(system string) string {
	for _, d := range codeSystems {
		if CodeSystemBase+d.id == system {
			return ValueSetBase + d.id
		}
	}
	return system + "?fhir_vs"
}

// displayOf is the display of a hub code, or "" for other systems.
func displayOf(system, code string) string {
	for i := range codeSystems {
		if CodeSystemBase+codeSystems[i].id != system {
			continue
		}
		var find func(cs []conceptDef) string
		find = func(cs []conceptDef) string {
			for _, c := range cs {
				if c.code == code {
					return c.display
				}
				if d := find(c.children); d != "" {
					return d
				}
			}
			return ""
		}
		return find(codeSystems[i].concepts)
	}
	return ""
}

// pascal turns an id (kebab case, digits allowed) into a computable name.
func pascal(id string) string {
	out := make([]byte, 0, len(id))
	up := true
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if ch == '-' {
			up = true
			continue
		}
		if up && ch >= 'a' && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		up = false
		out = append(out, ch)
	}
	if len(out) > 0 && out[0] >= '0' && out[0] <= '9' {
		out = append([]byte("N"), out...)
	}
	return string(out)
}
