package server

import (
	"context"
	"strings"

	"github.com/parcours-sante/parcours/server/fhirjson"
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
	var a accessInfo
	if cur, err := tx.Get(r.Type, r.ID); err == nil && cur.Version == r.Version {
		a = storedAccess(tx, r.Type, r.ID)
	} else if res := decodeStored(r.JSON); res != nil {
		a = accessOf(r.Type, r.ID, res)
	}
	return s.decide(ctx, cl, tx, question{interaction: interaction, typ: r.Type, target: &target{typ: r.Type, id: r.ID, access: a}})
}

// applyObligations transforms an allowed resource before it leaves:
// pseudonymise and redact. Without such obligations the bytes pass as they
// are (the fast path).
func (s *Server) applyObligations(d policy.Decision, b []byte) ([]byte, error) {
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
	}
	if pseudo {
		s.pseudonymise(res, p.Domain)
	}
	return fhirjson.Marshal(res), nil
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

// pseudonymise replaces patient references and identities by the pseudonym
// of the domain, drops narrative and direct identifiers, and generalises
// the birth date to the month.
func (s *Server) pseudonymise(res map[string]any, domain string) {
	if domain == "" {
		domain = "research"
	}
	typ, _ := res["resourceType"].(string)
	delete(res, "text")
	if typ == "Patient" {
		id, _ := res["id"].(string)
		pseudo := s.pseudonym(domain, "Patient/"+id)
		for _, k := range directIdentifiers {
			delete(res, k)
		}
		res["id"] = pseudo
		res["identifier"] = []any{map[string]any{"system": "urn:parcours:pseudonym:" + domain, "value": pseudo}}
		if bd, ok := res["birthDate"].(string); ok && len(bd) >= 7 {
			res["birthDate"] = bd[:7]
		}
		delete(res, "_birthDate")
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if ref, ok := x["reference"].(string); ok && strings.HasPrefix(ref, "Patient/") {
				x["reference"] = "Patient/" + s.pseudonym(domain, ref)
				delete(x, "display")
				delete(x, "identifier")
			}
			for k, e := range x {
				if k != "reference" {
					walk(e)
				}
			}
		}
	}
	walk(res)
}
