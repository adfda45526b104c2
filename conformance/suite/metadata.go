package suite

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// capability is what the server's CapabilityStatement (rest mode server)
// declares. Its need methods return nil when something is declared and a
// skipError naming what is missing otherwise.
type capability struct {
	missing string // why there is no CapabilityStatement, when there is none
	system  map[string]bool
	types   map[string]*typeCaps
}

// typeCaps is one CapabilityStatement.rest.resource.
type typeCaps struct {
	interactions, searchParams, includes map[string]bool

	versioning, conditionalRead, conditionalDelete     string
	updateCreate, conditionalCreate, conditionalUpdate bool
}

func parseCapability(cs map[string]any) *capability {
	c := &capability{system: map[string]bool{}, types: map[string]*typeCaps{}}
	for _, rest := range list(cs, "rest") {
		if str(rest, "mode") != "server" {
			continue
		}
		for _, in := range list(rest, "interaction") {
			c.system[str(in, "code")] = true
		}
		for _, res := range list(rest, "resource") {
			t := &typeCaps{
				interactions: map[string]bool{}, searchParams: map[string]bool{}, includes: map[string]bool{},
				versioning:        str(res, "versioning"),
				conditionalRead:   str(res, "conditionalRead"),
				conditionalDelete: str(res, "conditionalDelete"),
				updateCreate:      at(res, "updateCreate") == true,
				conditionalCreate: at(res, "conditionalCreate") == true,
				conditionalUpdate: at(res, "conditionalUpdate") == true,
			}
			for _, in := range list(res, "interaction") {
				t.interactions[str(in, "code")] = true
			}
			for _, p := range list(res, "searchParam") {
				t.searchParams[str(p, "name")] = true
			}
			for _, inc := range list(res, "searchInclude") {
				if s, ok := inc.(string); ok {
					t.includes[s] = true
				}
			}
			c.types[str(res, "type")] = t
		}
	}
	return c
}

func (c *capability) resource(typ string) (*typeCaps, error) {
	if c.missing != "" {
		return nil, skipError(c.missing)
	}
	t := c.types[typ]
	if t == nil {
		return nil, skipf("not declared: resource type %s", typ)
	}
	return t, nil
}

// need checks type interactions (read, vread, update, delete,
// history-instance, history-type, create, search-type).
func (c *capability) need(typ string, interactions ...string) error {
	t, err := c.resource(typ)
	if err != nil {
		return err
	}
	for _, in := range interactions {
		if !t.interactions[in] {
			return skipf("not declared: %s interaction %s", typ, in)
		}
	}
	return nil
}

// needSystem checks system interactions (transaction, batch, history-system).
func (c *capability) needSystem(code string) error {
	if c.missing != "" {
		return skipError(c.missing)
	}
	if !c.system[code] {
		return skipf("not declared: system interaction %s", code)
	}
	return nil
}

// needSearch checks the search-type interaction and search parameters
// (_include values such as "Observation:subject" are looked up in
// searchInclude).
func (c *capability) needSearch(typ string, params ...string) error {
	if err := c.need(typ, "search-type"); err != nil {
		return err
	}
	t := c.types[typ]
	for _, p := range params {
		if strings.Contains(p, ":") {
			if !t.includes[p] && !t.includes["*"] {
				return skipf("not declared: %s searchInclude %s", typ, p)
			}
			continue
		}
		if !t.searchParams[p] {
			return skipf("not declared: %s search parameter %s", typ, p)
		}
	}
	return nil
}

// needFlag checks a boolean or coded capability of a type: ok reports
// whether the declared value allows the check; declared names it.
func (c *capability) needFlag(typ, name string, ok func(*typeCaps) bool, declared func(*typeCaps) string) error {
	t, err := c.resource(typ)
	if err != nil {
		return err
	}
	if !ok(t) {
		return skipf("not declared: %s %s (declared: %s)", typ, name, declared(t))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}

func (c *capability) needVersionedUpdate(typ string) error {
	return c.needFlag(typ, "versioning versioned-update",
		func(t *typeCaps) bool { return t.versioning == "versioned-update" },
		func(t *typeCaps) string { return orNone(t.versioning) })
}

func (c *capability) needConditionalRead(typ string) error {
	return c.needFlag(typ, "conditionalRead not-match or full-support",
		func(t *typeCaps) bool { return t.conditionalRead == "not-match" || t.conditionalRead == "full-support" },
		func(t *typeCaps) string { return orNone(t.conditionalRead) })
}

func (c *capability) needConditionalDelete(typ string, modes ...string) error {
	return c.needFlag(typ, "conditionalDelete "+strings.Join(modes, " or "),
		func(t *typeCaps) bool { return slices.Contains(modes, t.conditionalDelete) },
		func(t *typeCaps) string { return orNone(t.conditionalDelete) })
}

func (c *capability) needBool(typ, name string, get func(*typeCaps) bool) error {
	return c.needFlag(typ, name, get, func(t *typeCaps) string { return fmt.Sprint(get(t)) })
}

func (r *runner) metadataChecks() []check {
	return []check{
		{"CapabilityStatement", r.capabilityStatement},
		{"fhirVersion 4.x", r.fhirVersion},
		{"JSON format", r.jsonFormat},
	}
}

// capabilityStatement checks the answer to GET metadata (sent by Run) and
// parses it for the checks that follow.
func (r *runner) capabilityStatement(context.Context) (string, error) {
	x := r.metadata
	if err := x.want("GET metadata", http.StatusOK); err != nil {
		return "", err
	}
	if t := str(x.res, "resourceType"); t != "CapabilityStatement" {
		return "", fmt.Errorf("GET metadata: got %s, want a CapabilityStatement", x.brief())
	}
	caps := parseCapability(x.res)
	if len(caps.types) == 0 {
		return "", fmt.Errorf("no rest entry with mode server declaring resources")
	}
	r.caps = caps
	detail := fmt.Sprintf("%d resource types", len(caps.types))
	if sw := strings.TrimSpace(str(x.res, "software", "name") + " " + str(x.res, "software", "version")); sw != "" {
		detail = sw + ", " + detail
	}
	return detail, nil
}

func (r *runner) fhirVersion(context.Context) (string, error) {
	if r.caps.missing != "" {
		return "", skipError(r.caps.missing)
	}
	v := str(r.metadata.res, "fhirVersion")
	if !strings.HasPrefix(v, "4.") {
		return "", fmt.Errorf("fhirVersion %q, want 4.x (R4)", v)
	}
	return v, nil
}

func (r *runner) jsonFormat(context.Context) (string, error) {
	if r.caps.missing != "" {
		return "", skipError(r.caps.missing)
	}
	var formats []string
	json := false
	for _, f := range list(r.metadata.res, "format") {
		s, _ := f.(string)
		formats = append(formats, s)
		if s == "json" || isJSONType(s) {
			json = true
		}
	}
	if !json {
		return "", fmt.Errorf("format %v does not list json or application/fhir+json", formats)
	}
	if ct := r.metadata.header.Get("Content-Type"); !isJSONType(ct) {
		return "", fmt.Errorf("GET metadata answered Content-Type %q, want application/fhir+json", ct)
	}
	return strings.Join(formats, ", "), nil
}

// isJSONType reports whether a media type is FHIR JSON (application/fhir+json
// or application/json, parameters ignored).
func isJSONType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == fhirJSON || mt == "application/json"
}
