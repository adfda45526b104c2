package fhirpath

import (
	"strings"
)

// FHIR functions: extension, memberOf, conformsTo, resolve.

func fnExtension(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	url, ok, err := c.stringArg(s, n, 0)
	if err != nil || !ok {
		return nil, err
	}
	var out []item
	for _, it := range in {
		m, isMap := it.v.(map[string]any)
		if !isMap {
			m = it.ext
		}
		exts, _ := m["extension"].([]any)
		for _, e := range exts {
			if em, ok := e.(map[string]any); ok && em["url"] == url {
				out = append(out, item{v: em, t: model.extension})
			}
		}
	}
	return out, nil
}

func fnMemberOf(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	vs, ok, err := c.stringArg(s, n, 0)
	if err != nil || !ok || len(in) != 1 || c.cfg == nil || c.cfg.memberOf == nil {
		return nil, err
	}
	member, known := c.cfg.memberOf(output(in[0]), vs)
	if !known {
		return nil, nil
	}
	return boolean(member), nil
}

func fnConformsTo(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	url, ok, err := c.stringArg(s, n, 0)
	if err != nil || !ok {
		return nil, err
	}
	name, core := strings.CutPrefix(url, "http://hl7.org/fhir/StructureDefinition/")
	t := fhirType(name)
	if !core || t == nil {
		return nil, c.errorf(n.pos, "conformsTo(): unknown profile %s", url)
	}
	if len(in) == 0 {
		return nil, nil
	}
	for _, it := range in {
		if it.t == nil || !it.t.derives(t) {
			return boolean(false), nil
		}
	}
	return boolean(true), nil
}

func fnResolve(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	var out []item
	for _, it := range in {
		if r, ok := c.resolve(it); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// resolve finds the resource a Reference (or a reference string) points to:
// a contained resource (#id), the configured resolver, an entry of the
// Bundle being evaluated, or else a stub {resourceType, id} taken from the
// reference itself, enough for resolve() is Patient.
func (c *evalCtx) resolve(it item) (item, bool) {
	var ref, typ string
	switch v := it.v.(type) {
	case map[string]any:
		ref, _ = v["reference"].(string)
		typ, _ = v["type"].(string)
	case string:
		ref = v
	}
	if ref == "" {
		if t := fhirType(typ); t != nil && t.resource {
			return item{v: map[string]any{"resourceType": typ}, t: t}, true
		}
		return item{}, false
	}
	if id, ok := strings.CutPrefix(ref, "#"); ok {
		for _, r := range c.resource {
			m, _ := r.v.(map[string]any)
			if id == "" {
				return r, true
			}
			cs, _ := m["contained"].([]any)
			for _, x := range cs {
				if cm, ok := x.(map[string]any); ok && cm["id"] == id {
					return newItem(cm, model.resource, nil), true
				}
			}
		}
		return item{}, false
	}
	if c.cfg != nil && c.cfg.resolver != nil {
		if v := c.cfg.resolver(ref); v != nil {
			return newItem(v, model.resource, nil), true
		}
	}
	rtype, id := splitReference(ref)
	for _, r := range c.rootRes {
		m, _ := r.v.(map[string]any)
		if m["resourceType"] != "Bundle" {
			continue
		}
		entries, _ := m["entry"].([]any)
		for _, e := range entries {
			em, _ := e.(map[string]any)
			res, _ := em["resource"].(map[string]any)
			if res == nil {
				continue
			}
			if em["fullUrl"] == ref || (rtype != "" && res["resourceType"] == rtype && res["id"] == id) {
				return newItem(res, model.resource, nil), true
			}
		}
	}
	if t := fhirType(rtype); t != nil && t.resource {
		return item{v: map[string]any{"resourceType": rtype, "id": id}, t: t}, true
	}
	return item{}, false
}

// splitReference reads the type and id of a relative or absolute
// reference (Patient/1, http://x/fhir/Patient/1/_history/2).
func splitReference(ref string) (string, string) {
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return "", ""
	}
	return parts[len(parts)-2], parts[len(parts)-1]
}
