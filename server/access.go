package server

import (
	"strings"
	"sync"

	"github.com/parcours-sante/parcours/conformance/definitions"
	"github.com/parcours-sante/parcours/server/store"
)

// Access metadata is what the policy needs to know about a stored resource
// without reading its content: the patients whose compartment holds it, the
// actor and organisation that supplied it (meta.source) and its security
// labels. It is written as index entries at write time (params starting
// with "_"), so that a read decides from the index, not from the JSON.
const (
	paramPatient = "_patient" // value: Patient/<id>
	paramSource  = "_source"  // value: meta.source
	paramLabel   = "_label"   // value: meta.security code
	paramConsent = "_consent" // Consent by patient, value: Patient/<id>
	// paramRecorded: Encounter, EpisodeOfCare and Patient (the
	// registration) by patient and recording organisation; paramMember:
	// CareTeam by patient and member.
	// Value: Patient/<id>|<org identifier, rpps identifier or CareTeam/<id>>.
	paramRecorded = "_recorded"
	paramMember   = "_member"
)

// sourcePrefix starts meta.source values the hub stamps on writes:
// urn:parcours:<actor_type>:<org system|value>.
const sourcePrefix = "urn:parcours:"

// Identifier systems of French professionals (domain brief §1.3).
const rppsSystem = "https://rpps.esante.gouv.fr"

// accessInfo is the access metadata of one resource.
type accessInfo struct {
	patients    []string // Patient/<id>
	sourceActor string
	sourceOrg   string
	labels      []string
}

// patientPaths maps each resource type to the element names that link it to
// a patient (from the patient CompartmentDefinition and the SearchParameter
// expressions of its params).
var patientPaths = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	for typ, params := range definitions.Compartment("patient") {
		seen := map[string]bool{}
		for _, code := range params {
			p, ok := definitions.Lookup(typ, code)
			if !ok {
				continue
			}
			for _, el := range pathsOf(typ, p.Expression) {
				if !seen[el] {
					seen[el] = true
					out[typ] = append(out[typ], el)
				}
			}
		}
	}
	return out
})

// pathsOf extracts the element paths of typ from a SearchParameter
// expression: "Observation.subject.where(resolve() is Patient) | …" gives
// "subject". Function calls end a path; (x as T) forms are unwrapped.
func pathsOf(typ, expr string) []string {
	var out []string
	for _, part := range strings.Split(expr, "|") {
		part = strings.TrimSpace(part)
		part = strings.TrimPrefix(part, "(")
		if !strings.HasPrefix(part, typ+".") {
			continue
		}
		rest := part[len(typ)+1:]
		var segs []string
		for _, seg := range strings.Split(rest, ".") {
			// A function call ends the path; "value as Quantity" keeps value.
			if i := strings.IndexAny(seg, " ()[]"); i >= 0 {
				if seg[i] != '(' && i > 0 {
					segs = append(segs, seg[:i])
				}
				break
			}
			segs = append(segs, seg)
		}
		if len(segs) > 0 && segs[len(segs)-1] != "" {
			out = append(out, strings.Join(segs, "."))
		}
	}
	return out
}

// accessOf computes the access metadata of a resource from its content.
func accessOf(typ, id string, res map[string]any) accessInfo {
	var a accessInfo
	if typ == "Patient" && id != "" {
		a.patients = []string{"Patient/" + id}
	} else {
		seen := map[string]bool{}
		for _, path := range patientPaths()[typ] {
			for _, ref := range referencesAt(res, strings.Split(path, ".")) {
				if strings.HasPrefix(ref, "Patient/") && !seen[ref] {
					seen[ref] = true
					a.patients = append(a.patients, ref)
				}
			}
		}
	}
	meta, _ := res["meta"].(map[string]any)
	if src, _ := meta["source"].(string); strings.HasPrefix(src, sourcePrefix) {
		a.sourceActor, a.sourceOrg, _ = strings.Cut(src[len(sourcePrefix):], ":")
	}
	sec, _ := meta["security"].([]any)
	for _, x := range sec {
		if c, _ := x.(map[string]any); c != nil {
			if code, _ := c["code"].(string); code != "" {
				a.labels = append(a.labels, code)
			}
		}
	}
	return a
}

// referencesAt returns the reference strings found at path under v.
func referencesAt(v any, path []string) []string {
	switch x := v.(type) {
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, referencesAt(e, path)...)
		}
		return out
	case map[string]any:
		if len(path) == 0 {
			if ref, ok := x["reference"].(string); ok {
				return []string{ref}
			}
			return nil
		}
		return referencesAt(x[path[0]], path[1:])
	}
	return nil
}

// accessIndex is the access part of the store Indexer (see Indexer): access
// metadata, plus the care-team and consent indexes the policy input is built
// from. Identifiers are indexed by the search engine (identifier =
// "system|value").
func accessIndex(typ string, res map[string]any) []store.IndexEntry {
	var out []store.IndexEntry
	id, _ := res["id"].(string)
	a := accessOf(typ, id, res)
	for _, p := range a.patients {
		out = append(out, store.IndexEntry{Param: paramPatient, Value: p})
	}
	if a.sourceActor != "" {
		out = append(out, store.IndexEntry{Param: paramSource, Value: a.sourceActor + ":" + a.sourceOrg})
	}
	for _, l := range a.labels {
		out = append(out, store.IndexEntry{Param: paramLabel, Value: l})
	}
	switch typ {
	case "Consent":
		for _, p := range a.patients {
			out = append(out, store.IndexEntry{Param: paramConsent, Value: p})
		}
	case "Encounter", "EpisodeOfCare", "Patient":
		if a.sourceOrg != "" {
			for _, p := range a.patients {
				out = append(out, store.IndexEntry{Param: paramRecorded, Value: p + "|" + a.sourceOrg})
			}
		}
	case "CareTeam":
		members := careTeamMembers(res)
		if id != "" {
			members = append(members, "CareTeam/"+id)
		}
		for _, p := range a.patients {
			for _, m := range members {
				out = append(out, store.IndexEntry{Param: paramMember, Value: p + "|" + m})
			}
		}
	}
	return out
}

// careTeamMembers lists who a CareTeam names: participant members and the
// managing organisations, as identifier "system|value" or reference.
func careTeamMembers(res map[string]any) []string {
	var out []string
	add := func(v any) {
		ref, _ := v.(map[string]any)
		if ident, _ := ref["identifier"].(map[string]any); ident != nil {
			sys, _ := ident["system"].(string)
			val, _ := ident["value"].(string)
			if val != "" {
				out = append(out, sys+"|"+val)
			}
		}
		if r, _ := ref["reference"].(string); r != "" {
			out = append(out, r)
		}
	}
	parts, _ := res["participant"].([]any)
	for _, p := range parts {
		pm, _ := p.(map[string]any)
		add(pm["member"])
		add(pm["onBehalfOf"])
	}
	orgs, _ := res["managingOrganization"].([]any)
	for _, o := range orgs {
		add(o)
	}
	return out
}

// storedAccess reads the access metadata of the current version from the
// index (no JSON decoding).
func storedAccess(tx *store.Tx, typ, id string) accessInfo {
	var a accessInfo
	for _, e := range tx.EntriesOf(typ, id, "_") {
		switch e.Param {
		case paramPatient:
			a.patients = append(a.patients, e.Value)
		case paramSource:
			a.sourceActor, a.sourceOrg, _ = strings.Cut(e.Value, ":")
		case paramLabel:
			a.labels = append(a.labels, e.Value)
		}
	}
	return a
}
