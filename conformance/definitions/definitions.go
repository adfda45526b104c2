// Package definitions embeds the official FHIR R4 definitions the hub needs
// at run time — all 1 375 SearchParameters and the compartment definitions —
// copied byte for byte from the hl7.fhir.r4.examples 4.0.1 package (see
// ../../../shared/corpus/fhir-r4-examples/README.md). It is a leaf.
package definitions

import (
	"embed"
	"encoding/json"
	"fmt"
	"sync"
)

//go:embed Bundle-searchParams.json CompartmentDefinition-*.json
var files embed.FS

// SearchParameter is the part of an R4 SearchParameter the hub uses.
type SearchParameter struct {
	URL        string   `json:"url"`
	Code       string   `json:"code"`
	Base       []string `json:"base"`
	Type       string   `json:"type"`
	Expression string   `json:"expression"`
	Target     []string `json:"target"`
	Modifier   []string `json:"modifier"`
	Comparator []string `json:"comparator"`
	Component  []struct {
		Definition string `json:"definition"`
		Expression string `json:"expression"`
	} `json:"component"`
}

// SearchParameters returns all R4 SearchParameters, in file order.
var SearchParameters = sync.OnceValue(func() []SearchParameter {
	var bundle struct {
		Entry []struct {
			Resource SearchParameter `json:"resource"`
		} `json:"entry"`
	}
	mustDecode("Bundle-searchParams.json", &bundle)
	out := make([]SearchParameter, 0, len(bundle.Entry))
	for _, e := range bundle.Entry {
		out = append(out, e.Resource)
	}
	return out
})

// Compartment maps each resource type of a compartment (patient, encounter,
// practitioner, relatedPerson, device) to the search parameters that link
// it to the compartment owner. Types absent from the map are not in the
// compartment.
func Compartment(name string) map[string][]string {
	return compartments()[name]
}

var compartments = sync.OnceValue(func() map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for _, name := range []string{"patient", "encounter", "practitioner", "relatedPerson", "device"} {
		var def struct {
			Resource []struct {
				Code  string   `json:"code"`
				Param []string `json:"param"`
			} `json:"resource"`
		}
		mustDecode("CompartmentDefinition-"+name+".json", &def)
		m := map[string][]string{}
		for _, r := range def.Resource {
			if len(r.Param) > 0 {
				m[r.Code] = r.Param
			}
		}
		out[name] = m
	}
	return out
})

// Lookup returns the parameter code of type typ (its own or inherited from
// DomainResource or Resource).
func Lookup(typ, code string) (SearchParameter, bool) {
	for _, base := range []string{typ, "DomainResource", "Resource"} {
		if p, ok := index()[base+"."+code]; ok {
			return p, true
		}
	}
	return SearchParameter{}, false
}

var index = sync.OnceValue(func() map[string]SearchParameter {
	m := map[string]SearchParameter{}
	for _, p := range SearchParameters() {
		for _, b := range p.Base {
			m[b+"."+p.Code] = p
		}
	}
	return m
})

func mustDecode(name string, v any) {
	b, err := files.ReadFile(name)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		// Embedded at build time: a file that does not decode is a broken build.
		panic(fmt.Sprintf("definitions: %s: %v", name, err))
	}
}
