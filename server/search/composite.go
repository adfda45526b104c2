package search

import (
	"reflect"
	"strings"

	"github.com/parcours-sante/parcours/server/fhirpath"
)

// compositeSep joins the components of a composite index value.
const compositeSep = "$"

// composite indexes every combination of the component values found on
// each item of the composite's expression (an Observation and each of its
// components for combo-code-value-quantity): the component values must
// come from the same item.
func (x *extraction) composite(p *Param, name string, items []fhirpath.TypedValue) {
	for _, item := range items {
		parts := make([][]string, len(p.Components))
		ok := true
		for i, c := range p.Components {
			if parts[i] = x.component(c, item.Value); len(parts[i]) == 0 {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for _, v := range combine(parts) {
			x.add(name, v)
		}
	}
}

// component returns the encoded values of component c on item. The
// composites of a type share components (Observation's code-value-*
// and combo-code-value-* all read code on the Observation): the values of
// a component on an object are computed once per extraction.
func (x *extraction) component(c Component, item any) []string {
	m, shared := item.(map[string]any)
	var key componentKey
	if shared {
		key = componentKey{reflect.ValueOf(m).Pointer(), c.src, c.Type}
		if vals, ok := x.components[key]; ok {
			return vals
		}
	}
	var out []string
	if vals, err := c.expr.EvaluateTyped(item, fhirpath.WithResource(x.res)); err == nil {
		for _, v := range vals {
			out = append(out, x.componentValues(c.Type, v)...)
		}
	}
	if shared {
		if x.components == nil {
			x.components = map[componentKey][]string{}
		}
		x.components[key] = out
	}
	return out
}

// componentKey names a component's values on one object, by its address
// (the resource, which holds the object, is neither changed nor freed
// while it is indexed).
type componentKey struct {
	obj       uintptr
	src, kind string
}

// combine is the cartesian product of the component values, joined.
func combine(parts [][]string) []string {
	out := []string{""}
	for i, vals := range parts {
		var next []string
		for _, prefix := range out {
			for _, v := range vals {
				if i > 0 {
					next = append(next, prefix+compositeSep+v)
				} else {
					next = append(next, v)
				}
			}
		}
		out = next
	}
	return out
}

// componentValues encodes one value of a composite component.
func (x *extraction) componentValues(typ string, v fhirpath.TypedValue) []string {
	var out []string
	switch typ {
	case TypeToken:
		for _, t := range tokens(v) {
			if t.code != "" {
				out = append(out, t.code+"|"+t.system)
			}
		}
	case TypeString:
		for _, s := range stringsOf(v) {
			out = append(out, Normalize(s))
		}
	case TypeDate:
		for _, rg := range datesOf(v) {
			out = append(out, rg.lo+"/"+rg.hi)
		}
	case TypeNumber:
		if f, ok := number(v.Value); ok {
			out = append(out, EncodeNumber(f))
		}
	case TypeQuantity:
		for _, q := range quantitiesOf(v) {
			out = append(out, EncodeNumber(q.value)+"|"+q.system+"|"+q.unitCode())
		}
	case TypeReference:
		refs, _ := x.referencesOf(v)
		out = append(out, refs...)
	case TypeURI:
		if s, ok := v.Value.(string); ok {
			out = append(out, s)
		}
	}
	for i, s := range out { // "$" separates the components
		out[i] = strings.ReplaceAll(s, compositeSep, "")
	}
	return out
}
