package server

import (
	"slices"
	"strings"

	"github.com/parcours-sante/parcours/server/pathway"
	"github.com/parcours-sante/parcours/server/search"
	"github.com/parcours-sante/parcours/server/store"
)

// patientRecord is one patient's stored record as the pathway engine reads
// it: the Patient, every current resource of its compartment, and the
// Practitioners, PractitionerRoles and Organizations those resources
// reference (specialties and establishments).
type patientRecord struct {
	resources []store.Resource
	decoded   []map[string]any
}

// contextTypes are the non-patient resources a fact's meaning depends on.
var contextTypes = []string{"Practitioner", "PractitionerRole", "Organization", "Location"}

// factRecord is what the pathway engine reads of a record (pathway.Facts):
// the compartment types that become facts; viewRecord adds what $pathway
// answers besides the facts.
var (
	factRecord = compartmentTypes(pathway.FactTypes())
	viewRecord = compartmentTypes(append(pathway.FactTypes(), "EpisodeOfCare", "DetectedIssue"))
)

// compartmentTypes keeps the types of the Patient compartment among types.
func compartmentTypes(types []string) []string {
	var out []string
	for _, t := range search.CompartmentTypes("Patient") {
		if t != "Patient" && slices.Contains(types, t) {
			out = append(out, t)
		}
	}
	return out
}

// loadRecord reads a patient's record from tx: the Patient, its
// compartment's resources of types (factRecord, viewRecord), and the
// context resources they reference; keep, when not nil, decides which
// resources are part of it (the policy, for a caller's view).
func loadRecord(tx *store.Tx, patientID string, types []string, keep func(store.Resource) bool) (*patientRecord, bool) {
	p, err := tx.Get("Patient", patientID)
	if err != nil || p.Deleted() {
		return nil, false
	}
	rec := &patientRecord{}
	seen := map[string]bool{}
	add := func(r store.Resource) {
		k := r.Type + "/" + r.ID
		if seen[k] {
			return
		}
		seen[k] = true
		if keep != nil && !keep(r) {
			return
		}
		m := decodeStored(r.JSON)
		if m == nil {
			return
		}
		rec.resources = append(rec.resources, r)
		rec.decoded = append(rec.decoded, m)
	}
	add(p)
	owner := "Patient/" + patientID
	for _, typ := range types {
		for _, id := range tx.Lookup(typ, paramPatient, owner) {
			if r, err := tx.Get(typ, id); err == nil && !r.Deleted() {
				add(r)
			}
		}
	}
	// One level of references to the context types.
	var refs []string
	for _, m := range rec.decoded {
		collectRefs(m, &refs)
	}
	slices.Sort(refs)
	for _, ref := range slices.Compact(refs) {
		typ, id, _ := strings.Cut(ref, "/")
		if r, err := tx.Get(typ, id); err == nil && !r.Deleted() {
			add(r)
		}
	}
	return rec, true
}

// collectRefs appends the relative references to context types found in v.
func collectRefs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["reference"].(string); ok {
			typ, id, found := strings.Cut(ref, "/")
			if found && id != "" && !strings.Contains(id, "/") && slices.Contains(contextTypes, typ) {
				*out = append(*out, ref)
			}
		}
		for _, e := range x {
			collectRefs(e, out)
		}
	case []any:
		for _, e := range x {
			collectRefs(e, out)
		}
	}
}
