package server

import (
	"context"
	"github.com/parcours-sante/parcours/conformance"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/fhirpath"
	"github.com/parcours-sante/parcours/server/measure"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
)

// decideOn decides an interaction on one stored version: the current
// version's access metadata comes from the index, a past version's from its
// content.
func (s *Server) decideOn(ctx context.Context, cl *caller, tx *store.Tx, interaction string, r store.Resource) (policy.Decision, error) {
	if cl == nil {
		return policy.Decision{Allow: true}, nil
	}
	if cur, err := tx.Get(r.Type, r.ID); err == nil && cur.Version == r.Version {
		return s.decideCurrent(ctx, cl, tx, interaction, r)
	}
	var a accessInfo
	if res := decodeStored(r.JSON); res != nil {
		a = accessOf(r.Type, r.ID, res, s.cfg.BaseURL)
	}
	return s.decide(ctx, cl, tx, question{interaction: interaction, typ: r.Type, target: &target{typ: r.Type, id: r.ID, access: a}})
}

// decideVersion is decideOn for a version a vread or a history shows: when
// it is not the resource's latest content, the latest content is decided
// too, and the version is shown only if both are allowed. A resource
// relabelled V (or moved out of the caller's reach) keeps its earlier
// versions from those it now excludes (black-box review: a vread of the
// version before the relabelling returned it). The version's decision is
// returned, for its obligations.
func (s *Server) decideVersion(ctx context.Context, cl *caller, tx *store.Tx, interaction string, r store.Resource) (policy.Decision, error) {
	if cl == nil {
		return policy.Decision{Allow: true}, nil
	}
	// The latest content first: refused, the version is not decided at
	// all (an allowed break-the-glass decision on it would open a review
	// for a disclosure that never happens).
	if latest, ok := lastContent(tx, r.Type, r.ID); ok && latest.Version != r.Version {
		if dl, err := s.decideOn(ctx, cl, tx, interaction, latest); err != nil {
			return dl, err
		}
	}
	return s.decideOn(ctx, cl, tx, interaction, r)
}

// decideCurrent is decideOn for a version known to be current.
func (s *Server) decideCurrent(ctx context.Context, cl *caller, tx *store.Tx, interaction string, r store.Resource) (policy.Decision, error) {
	if cl == nil {
		return policy.Decision{Allow: true}, nil
	}
	a := s.currentAccess(cl, tx, r)
	return s.decide(ctx, cl, tx, question{interaction: interaction, typ: r.Type, target: &target{typ: r.Type, id: r.ID, access: a, version: r.Version}})
}

// applyObligations transforms an allowed resource before it leaves:
// pseudonymise and redact. Without such obligations the bytes pass as they
// are (the fast path).
func (s *Server) applyObligations(tx *store.Tx, d policy.Decision, b []byte) ([]byte, error) {
	p, pseudo := d.Obligation("pseudonymise")
	r, redact := d.Obligation("redact")
	if !pseudo && !redact {
		return b, nil
	}
	res, err := fhirjson.Decode(b)
	if err != nil {
		return nil, err
	}
	if redact {
		for _, path := range r.Paths {
			redactPath(res, strings.Split(path, "."))
		}
		addSecurity(res, "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "REDACTED")
	}
	if pseudo {
		s.pseudonymise(tx, res, p.Domain)
		addSecurity(res, "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "PSEUDED")
	}
	pruneEmpty(res)
	return fhirjson.Marshal(res), nil
}

// pruneEmpty removes what redaction and pseudonymisation emptied (a
// Reference that held only an identifier and a display, a performer list
// of such references): FHIR JSON has no empty objects or arrays. It
// reports whether v itself is now empty. The arrays of a primitive's
// extensions ("_given": [null, {…}]) keep their positions: an emptied
// entry there becomes null, and the array goes only when all are.
func pruneEmpty(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if strings.HasPrefix(k, "_") {
				if list, ok := e.([]any); ok {
					all := true
					for i, el := range list {
						if el != nil && pruneEmpty(el) {
							list[i] = nil
						}
						all = all && list[i] == nil
					}
					if all {
						delete(x, k)
					}
					continue
				}
			}
			if list, ok := e.([]any); ok {
				kept := list[:0]
				for _, el := range list {
					if !pruneEmpty(el) {
						kept = append(kept, el)
					}
				}
				if len(kept) == 0 {
					delete(x, k)
				} else {
					x[k] = kept
				}
				continue
			}
			if pruneEmpty(e) {
				delete(x, k)
			}
		}
		return len(x) == 0
	}
	return false
}

// redactPath removes an element path (relative to the resource, or
// starting with its type) wherever it occurs.
func redactPath(v any, path []string) {
	if m, ok := v.(map[string]any); ok && len(path) > 1 {
		if rt, _ := m["resourceType"].(string); rt == path[0] {
			path = path[1:]
		}
	}
	var walk func(v any, path []string)
	walk = func(v any, path []string) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e, path)
			}
		case map[string]any:
			if len(path) == 1 {
				delete(x, path[0])
				delete(x, "_"+path[0])
				return
			}
			walk(x[path[0]], path[1:])
		}
	}
	walk(v, path)
}

// Direct identifiers of a Patient (and of the persons around it) removed by
// pseudonymisation (domain brief §4.7).
var directIdentifiers = []string{"name", "telecom", "photo", "contact", "address", "text"}

// addSecurity adds a security label to a resource's meta.
func addSecurity(res map[string]any, system, code string) {
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		res["meta"] = meta
	}
	list, _ := meta["security"].([]any)
	meta["security"] = append(list, map[string]any{"system": system, "code": code})
}

// pseudonymise replaces patient references and identities by the pseudonym
// of the domain, drops narrative and notes, direct identifiers and the business
// identifiers of other resources (stay, claim and source-record numbers:
// indirect identifiers), generalises the birth date to the year and every
// other date to the month (brief §4.7).
func (s *Server) pseudonymise(tx *store.Tx, res map[string]any, domain string) {
	domain = pseudoDomain(domain)
	typ, _ := res["resourceType"].(string)
	if typ != "Patient" {
		if id, _ := res["id"].(string); id != "" {
			res["id"] = s.resourcePseudonym(domain, typ+"/"+id)
		}
	}
	for k, v := range res {
		if k != "meta" && k != "birthDate" {
			res[k] = toMonth(v)
		}
	}
	if meta, ok := res["meta"].(map[string]any); ok {
		if lu, ok := meta["lastUpdated"].(string); ok && looksLikeDate(lu) {
			meta["lastUpdated"] = toMonth(lu) // the write's time would date the event
		}
		// meta.source names the establishment, which patient-level rows
		// never carry (brief §4.7).
		delete(meta, "source")
	}
	var walk func(v any, typ string)
	walk = func(v any, typ string) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e, typ)
			}
		case map[string]any:
			if rt, ok := x["resourceType"].(string); ok {
				typ = rt // the resource, or a contained one
				scrubPerson(x, rt)
			}
			if ref, ok := x["reference"].(string); ok && strings.HasPrefix(ref, "Patient/") {
				x["reference"] = "Patient/" + s.patientPseudonym(tx, domain, ref)
			} else if ok {
				// Other references follow their resources' ids: relative,
				// versioned (Type/id/_history/v) or absolute
				// (…/Type/id); one the hub cannot read as such is dropped
				// rather than shown with a real id.
				if typ, id, ok := referenceParts(ref); ok {
					if typ == "Patient" {
						x["reference"] = "Patient/" + s.patientPseudonym(tx, domain, "Patient/"+id)
					} else {
						x["reference"] = typ + "/" + s.resourcePseudonym(domain, typ+"/"+id)
					}
				} else if !strings.HasPrefix(ref, "#") && !strings.HasPrefix(ref, "urn:") {
					delete(x, "reference")
				}
			}
			if typ == "Reference" {
				delete(x, "display") // a name, with or without a reference
			}
			for k, e := range x {
				if _, literal := e.(string); k == "reference" && literal {
					continue // a Reference's literal reference, rewritten above
				}
				// (an element named reference of type Reference, such as a
				// Consent actor's, is walked: black-box review, its
				// identifier was kept)
				ct := fhirpath.ChildType(typ, k)
				if typ == "CodeableConcept" && k == "text" && x["coding"] == nil {
					continue // the concept itself, uncoded: kept (a required code stays)
				}
				if pseudonymDrops(typ, k, ct) {
					delete(x, k)
					delete(x, "_"+k)
					if conformance.Required(typ, k) {
						// A required element (DocumentReference.content's
						// attachment) masked rather than left out, so that
						// the resource stays valid.
						m := map[string]any{"extension": []any{maskedExtension()}}
						_, many := e.([]any)
						switch {
						case ct != "" && ct[0] >= 'a' && ct[0] <= 'z': // a primitive: its _element
							x["_"+k] = m
							if many {
								x["_"+k] = []any{m}
							}
						case many:
							x[k] = []any{m}
						default:
							x[k] = m
						}
					}
					continue
				}
				walk(e, ct)
				if ct == "Extension" {
					// An extension left without value or extensions is
					// not one (ext-1): dropped.
					if list, ok := x[k].([]any); ok {
						list = slices.DeleteFunc(list, func(v any) bool {
							m, _ := v.(map[string]any)
							for key := range m {
								if strings.HasPrefix(key, "value") || key == "extension" {
									return false
								}
							}
							return true
						})
						if len(list) == 0 {
							delete(x, k)
						} else {
							x[k] = list
						}
					}
				}
				if ct == "Reference" && conformance.Required(typ, k) {
					// Nothing left of a required reference (an agent
					// named by an identifier, an insurer by a display):
					// masked, as FHIR says of masked data, so that the
					// resource stays valid R4; an optional one goes.
					refs, list := e.([]any)
					if !list {
						refs = []any{e}
					}
					for _, r := range refs {
						if m, ok := r.(map[string]any); ok && m["reference"] == nil && len(m) <= 1 {
							m["extension"] = []any{maskedExtension()}
						}
					}
				}
			}
		}
	}
	walk(res, "")
	if typ == "Organization" && res["name"] == nil && res["identifier"] == nil {
		// org-1: a name or an identifier; both gone, the name is masked.
		res["_name"] = map[string]any{"extension": []any{maskedExtension()}}
	}
	if typ == "Patient" {
		id, _ := res["id"].(string)
		pseudo := s.patientPseudonym(tx, domain, "Patient/"+id)
		res["id"] = pseudo
		res["identifier"] = []any{map[string]any{"system": "urn:parcours:pseudonym:" + domain, "value": pseudo}}
	}
}

// maskedExtension is the data-absent-reason extension of masked data
// (pseudonymised elements, masked measure cells).
func maskedExtension() map[string]any {
	return map[string]any{"url": measure.DataAbsentReasonURL, "valueCode": "masked"}
}

// pseudonymDrops reports whether pseudonymisation drops element name (of
// type ct) of a parent of type parent, at any depth: business identifiers
// (stay, claim, requisition, document numbers, a reference's identifier:
// indirect identifiers); names, addresses and contact points, a
// practitioner's or inside an extension as well as the patient's;
// attachments and signatures (document bodies, titles, URLs holding hub
// ids); and free text — narrative, notes, markdown and strings (a coded
// CodeableConcept's text, a valueString, a conclusion: names, dates,
// places; black-box review) — but for the few strings that are
// terminology or structure: a Coding's display and version, a quantity's
// unit, a questionnaire item's linkId (and, in pseudonymise, the text of a
// CodeableConcept without coding, which is the concept).
func pseudonymDrops(parent, name, ct string) bool {
	switch ct {
	case "Identifier", "Narrative", "Annotation", "HumanName", "Address", "ContactPoint", "Attachment", "Signature", "markdown":
		return true
	case "string":
		switch {
		case parent == "Coding" && (name == "display" || name == "version"),
			name == "unit" && (parent == "Quantity" || parent == "SimpleQuantity" || parent == "Age" || parent == "Duration" || parent == "Count" || parent == "Distance" || parent == "MoneyQuantity"),
			name == "linkId":
			return false
		}
		return true
	}
	return false
}

// scrubPerson removes the identity of a person resource (the Patient, or
// one contained in another resource): direct identifiers, extensions
// (birth place, mother's maiden name…), the birth date beyond its year.
func scrubPerson(res map[string]any, typ string) {
	switch typ {
	case "Patient", "RelatedPerson", "Person":
	default:
		return
	}
	for _, k := range directIdentifiers {
		delete(res, k)
	}
	delete(res, "extension")
	delete(res, "modifierExtension")
	if bd, ok := res["birthDate"].(string); ok && len(bd) >= 4 {
		res["birthDate"] = bd[:4]
	}
	delete(res, "_birthDate")
}

// toMonth generalises the dates in v to the month: a date or a partial
// dateTime ("2026-03-14") becomes "2026-03", a dateTime or instant with a
// time ("2026-03-14T09:30:00+01:00") the first instant of its month in UTC
// ("2026-03-01T00:00:00Z", still a valid instant). Other values are kept.
func toMonth(v any) any {
	switch x := v.(type) {
	case string:
		if !looksLikeDate(x) {
			return x
		}
		if len(x) > 10 && x[10] == 'T' {
			// The month of the UTC instant, so that a Period's start and
			// end keep their order whatever their offsets.
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return monthStart(t).Format(time.RFC3339)
			}
			return x[:7] + "-01T00:00:00Z"
		}
		return x[:7]
	case []any:
		for i, e := range x {
			x[i] = toMonth(e)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = toMonth(e)
		}
	}
	return v
}

// referenceParts reads a literal reference as a resource type and id:
// Type/id, Type/id/_history/v, or an absolute URL ending so.
func referenceParts(ref string) (typ, id string, ok bool) {
	parts := strings.Split(ref, "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	n := len(parts)
	if n < 2 || parts[n-1] == "" || !conformance.IsResourceType(parts[n-2]) {
		return "", "", false
	}
	return parts[n-2], parts[n-1], true
}

// monthStart is the first instant of t's month, in UTC.
func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// looksLikeDate reports whether s starts with YYYY-MM-DD and is a FHIR
// date or dateTime (nothing after the day but a time part).
func looksLikeDate(s string) bool {
	if len(s) < 10 || (len(s) > 10 && s[10] != 'T') {
		return false
	}
	for i := 0; i < 10; i++ {
		c := s[i]
		if i == 4 || i == 7 {
			if c != '-' {
				return false
			}
		} else if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// insSystem is the INS-NIR identifier system (domain brief §1.3).
const insSystem = "urn:oid:1.2.250.1.213.1.4.8"

// patientPseudonym is the pseudonym of a patient in a domain:
// HMAC-SHA256 of the patient's INS-NIR when the hub knows it, of its
// logical reference otherwise, so that every reference to the patient gets
// the same pseudonym.
func (s *Server) patientPseudonym(tx *store.Tx, domain, ref string) string {
	return s.patientPseudonymAt(tx, domain, ref, 0)
}

// patientPseudonymAt is patientPseudonym when the caller knows the
// patient's current version (0: read it).
func (s *Server) patientPseudonymAt(tx *store.Tx, domain, ref string, version uint64) string {
	id, ok := strings.CutPrefix(ref, "Patient/")
	if !ok || tx == nil {
		return s.pseudonym(domain, ref)
	}
	// Memoised by the patient's version: its INS can change only with it.
	if version == 0 {
		if r, err := tx.Get("Patient", id); err == nil {
			version = r.Version
		}
	}
	key := pseudonymKey{domain: domain, id: id}
	if p, ok := s.pseudonyms.get(key, version); ok {
		return p
	}
	p := s.keys.patientPseudonym(domain, id, tx.EntriesOf("Patient", id, "identifier"))
	s.pseudonyms.put(key, version, p)
	return p
}

// pseudonymMemo memoises patient pseudonyms: one entry per domain and
// patient, replaced when the patient changes version (an update must not
// leave the old entry behind), and the whole memo dropped past
// maxPseudonyms entries: memory stays bounded. A hit allocates nothing.
type pseudonymMemo struct {
	mu sync.RWMutex
	m  map[pseudonymKey]memoPseudonym
}

type pseudonymKey struct{ domain, id string }

// memoPseudonym is a memoised pseudonym and the patient version it is of.
type memoPseudonym struct {
	version uint64
	p       string
}

// maxPseudonyms bounds the pseudonym memo (entries of ~150 bytes): the hot
// patients' pseudonyms, ~2.4 MiB. It was 1 << 18 (~39 MiB): a heap profile
// of a 2-minute soak showed it filling by 3.8 MiB, a third of the live
// heap's growth there.
const maxPseudonyms = 1 << 14

// get returns the pseudonym memoised for k at version.
func (m *pseudonymMemo) get(k pseudonymKey, version uint64) (string, bool) {
	m.mu.RLock()
	e, ok := m.m[k]
	m.mu.RUnlock()
	return e.p, ok && e.version == version
}

func (m *pseudonymMemo) put(k pseudonymKey, version uint64, p string) {
	m.mu.Lock()
	if _, replaced := m.m[k]; !replaced && len(m.m) >= maxPseudonyms {
		m.m = nil
	}
	if m.m == nil {
		m.m = map[pseudonymKey]memoPseudonym{}
	}
	m.m[k] = memoPseudonym{version, p}
	m.mu.Unlock()
}

// pseudoDomain is the key domain of a pseudonymise obligation (research by
// default).
func pseudoDomain(d string) string {
	if d == "" {
		return "research"
	}
	return d
}
