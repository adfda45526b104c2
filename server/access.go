package server

import (
	"strings"

	"github.com/parcours-sante/parcours/server/search"
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
	// indexed: read from the index of the current version (storedAccess),
	// with recorded, its paramRecorded values.
	indexed  bool
	recorded []string
}

// accessOf computes the access metadata of a resource from its content.
// Its patients are those whose compartment holds it, by the official
// compartment definition evaluated with the search registry (the same rule
// compartment search and $everything use). base is the hub's public FHIR
// base ("" when derived per request).
func accessOf(typ, id string, res map[string]any, base string) accessInfo {
	var a accessInfo
	if typ == "Patient" && id != "" {
		a.patients = []string{"Patient/" + id}
	} else {
		a.patients = search.Default().CompartmentOwners(typ, res, "Patient", base)
	}
	m := accessMeta(res)
	a.sourceActor, a.sourceOrg, a.labels = m.sourceActor, m.sourceOrg, m.labels
	if typ == "Patient" && id != "" && a.sourceOrg != "" {
		// The registration this version records, as accessIndex indexes
		// it: a deleted Patient's is no longer in the index.
		a.recorded = []string{"Patient/" + id + "|" + a.sourceOrg}
	}
	return a
}

// accessMeta reads the source and security labels of a resource's meta.
func accessMeta(res map[string]any) accessInfo {
	var a accessInfo
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

// accessIndex is the access part of the store Indexer (see Indexer): access
// metadata, plus the care-team and consent indexes the policy input is built
// from. Identifiers are indexed by the search engine (identifier =
// "system|value").
//
// patients, when not nil, are the resource's patients already known from its
// search entries (no second evaluation of the compartment).
func accessIndex(typ string, res map[string]any, base string, patients []string) []store.IndexEntry {
	var out []store.IndexEntry
	id, _ := res["id"].(string)
	var a accessInfo
	if patients != nil && typ != "Patient" {
		a = accessMeta(res)
		a.patients = patients
	} else {
		a = accessOf(typ, id, res, base)
	}
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
	a := accessInfo{indexed: true}
	for _, e := range tx.EntriesOf(typ, id, "_") {
		switch e.Param {
		case paramPatient:
			a.patients = append(a.patients, e.Value)
		case paramSource:
			a.sourceActor, a.sourceOrg, _ = strings.Cut(e.Value, ":")
		case paramLabel:
			a.labels = append(a.labels, e.Value)
		case paramRecorded:
			a.recorded = append(a.recorded, e.Value)
		}
	}
	return a
}
