package search

import (
	"slices"
	"strings"

	"github.com/parcours-sante/parcours/conformance/definitions"
	"github.com/parcours-sante/parcours/server/store"
)

// Hit is a match with its sort keys ("" when the resource has no value:
// such resources come last, ascending or descending).
type Hit struct {
	Type, ID string
	Keys     []string
}

// Order sorts the matches of q by its _sort keys, then by id.
func (q *Query) Order(tx *store.Tx, ids []string) []Hit {
	hits := make([]Hit, len(ids))
	for i, id := range ids {
		hits[i] = Hit{Type: q.Type, ID: id}
	}
	if len(q.Sort) == 0 {
		return hits // ids are sorted
	}
	for i := range hits {
		hits[i].Keys = q.sortKeys(tx, hits[i].ID)
	}
	slices.SortStableFunc(hits, q.Compare)
	return hits
}

// Compare orders two hits as Order does.
func (q *Query) Compare(a, b Hit) int {
	for i, k := range q.Sort {
		var x, y string
		if i < len(a.Keys) {
			x = a.Keys[i]
		}
		if i < len(b.Keys) {
			y = b.Keys[i]
		}
		if x == y {
			continue
		}
		switch {
		case x == "":
			return 1
		case y == "":
			return -1
		}
		c := strings.Compare(x, y)
		if k.Desc {
			c = -c
		}
		return c
	}
	if c := strings.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// sortKeys reads the sort keys of one resource from its index entries: the
// lowest value ascending, the highest descending (the low end of a date
// range ascending, its high end descending).
func (q *Query) sortKeys(tx *store.Tx, id string) []string {
	keys := make([]string, len(q.Sort))
	for i, k := range q.Sort {
		if k.Param == nil || k.Code == "_id" {
			keys[i] = id
			continue
		}
		var values []string
		for _, name := range k.Param.indexNames() {
			values = append(values, tx.Values(q.Type, id, name)...)
		}
		for _, v := range values {
			switch k.Param.Type {
			case TypeToken:
				if k.Param.Code == "identifier" {
					_, v, _ = strings.Cut(v, "|")
				} else {
					v, _ = splitToken(v)
				}
			case TypeDate:
				lo, hi := splitRange(v)
				v = lo
				if k.Desc {
					v = hi
				}
			}
			if keys[i] == "" || (!k.Desc && v < keys[i]) || (k.Desc && v > keys[i]) {
				keys[i] = v
			}
		}
	}
	return keys
}

// References returns the relative references ("Type/id") a resource holds
// in reference parameter code ("*": every reference parameter), as indexed.
func (r *Registry) References(tx *store.Tx, typ, id, code string) []string {
	names := map[string]bool{}
	if code == "*" {
		for _, p := range r.typeOf(typ).params {
			if p.Type == TypeReference {
				names[p.indexName()] = true
			}
		}
	} else if p, ok := r.Lookup(typ, code); ok {
		for _, n := range p.indexNames() {
			names[n] = true
		}
	}
	var out []string
	for name := range names {
		for _, v := range tx.Values(typ, id, name) {
			if _, ok := relative(v); ok {
				out = append(out, v)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Referring returns the ids of the resources of type src that refer to
// target ("Type/id") through reference parameter code ("*": any).
func (r *Registry) Referring(tx *store.Tx, src, code, target string) []string {
	var out []string
	for _, p := range r.typeOf(src).params {
		if p.Type == TypeReference && p.Union == nil && (code == "*" || code == p.Code) {
			out = union(out, tx.Lookup(src, p.indexName(), target))
		}
		if p.Union != nil && code == p.Code {
			for _, n := range p.indexNames() {
				out = union(out, tx.Lookup(src, n, target))
			}
		}
	}
	return out
}

// Compartments returns the canonical URLs of the compartment definitions
// whose compartments are searched ([owner]/[id]/[type]), sorted.
func Compartments() []string {
	var out []string
	for _, name := range compartmentOwners {
		out = append(out, "http://hl7.org/fhir/CompartmentDefinition/"+name)
	}
	slices.Sort(out)
	return out
}

// compartmentOwners maps the compartment definitions to their owner type.
var compartmentOwners = map[string]string{
	"Patient": "patient", "Encounter": "encounter", "Practitioner": "practitioner",
	"RelatedPerson": "relatedPerson", "Device": "device",
}

// InCompartment returns the sorted ids of the resources of typ in the
// compartment of owner ("Patient/123"), from the official compartment
// definitions; ok is false when typ is not in that kind of compartment.
// The owner itself is not included.
func (r *Registry) InCompartment(tx *store.Tx, owner, typ string) (ids []string, ok bool) {
	ownerType, _, _ := strings.Cut(owner, "/")
	name, known := compartmentOwners[ownerType]
	if !known {
		return nil, false
	}
	params, in := definitions.Compartment(name)[typ]
	if !in {
		return nil, false
	}
	for _, code := range params {
		p, ok := r.Lookup(typ, code)
		if !ok {
			continue
		}
		for _, n := range p.indexNames() {
			ids = union(ids, tx.Lookup(typ, n, owner))
		}
	}
	return ids, true
}

// CompartmentOwners returns the owners of ownerType ("Patient/123") whose
// compartment holds res: the compartment definition's parameters of typ
// evaluated on res with the FHIRPath engine, the same rule InCompartment
// searches by. base is this server's FHIR base (absolute references to
// it count as relative ones).
func (r *Registry) CompartmentOwners(typ string, res map[string]any, ownerType, base string) []string {
	name, ok := compartmentOwners[ownerType]
	if !ok {
		return nil
	}
	x := extraction{base: strings.TrimSuffix(base, "/"), res: res}
	var out []string
	for _, code := range definitions.Compartment(name)[typ] {
		p, ok := r.Lookup(typ, code)
		if !ok {
			continue
		}
		params := []*Param{p}
		if p.Union != nil {
			params = p.Union
		}
		for _, q := range params {
			if q.expr == nil {
				continue
			}
			vals, err := q.expr.EvaluateTyped(res)
			if err != nil {
				continue
			}
			for _, v := range vals {
				refs, _ := x.referencesOf(v)
				for _, ref := range refs {
					if strings.HasPrefix(ref, ownerType+"/") && !slices.Contains(out, ref) {
						out = append(out, ref)
					}
				}
			}
		}
	}
	return out
}

// CompartmentOwnersIn is CompartmentOwners read from the entries Extract
// made for res (no second evaluation at write time).
func (r *Registry) CompartmentOwnersIn(typ string, entries []store.IndexEntry, ownerType string) []string {
	name, ok := compartmentOwners[ownerType]
	if !ok {
		return nil
	}
	var names []string
	for _, code := range definitions.Compartment(name)[typ] {
		if p, ok := r.Lookup(typ, code); ok {
			names = append(names, p.indexNames()...)
		}
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Value, ownerType+"/") && slices.Contains(names, e.Param) && !slices.Contains(out, e.Value) {
			out = append(out, e.Value)
		}
	}
	return out
}

// CompartmentTypes lists the resource types of the compartment of an owner
// type (Patient, Encounter...), sorted.
func CompartmentTypes(ownerType string) []string {
	name, ok := compartmentOwners[ownerType]
	if !ok {
		return nil
	}
	var out []string
	for t := range definitions.Compartment(name) {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Restrict is a criterion for the server: only these ids (a compartment).
func (q *Query) Restrict(ids []string) {
	q.only = sortedSet(slices.Clone(ids))
	q.restricted = true
}
