package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/server/search"
)

// TestCapabilityStatement checks that /metadata says exactly what is
// implemented: every R4 type with the same eight interactions and the
// search parameters of the search registry, the four system interactions,
// Patient $everything, and nothing else (no patch, no other operation).
func TestCapabilityStatement(t *testing.T) {
	h := newHub(t)
	r := h.do(http.MethodGet, "/metadata", nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	cs := r.body
	got := map[string]any{
		"resourceType": cs["resourceType"],
		"fhirVersion":  cs["fhirVersion"],
		"kind":         cs["kind"],
		"status":       cs["status"],
		"rest.mode":    str(cs, "rest", 0, "mode"),
		"json format":  slices.Contains(anyStrings(cs["format"]), "json") || slices.Contains(anyStrings(cs["format"]), "application/fhir+json"),
		"xml format":   slices.ContainsFunc(anyStrings(cs["format"]), func(f string) bool { return f == "xml" || f == "application/fhir+xml" }),
		"rest count":   len(anySlice(cs["rest"])),
	}
	want := map[string]any{
		"resourceType": "CapabilityStatement",
		"fhirVersion":  "4.0.1",
		"kind":         "instance",
		"status":       "active",
		"rest.mode":    "server",
		"json format":  true,
		"xml format":   false,
		"rest count":   1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CapabilityStatement (-want +got):\n%s", diff)
	}

	// Every compartment declared is searched: [owner]/[id]/[type] answers
	// for one of its types (not "not in the compartment", nor unknown).
	comps := anyStrings(dig(cs, "rest", 0, "compartment"))
	if len(comps) != 5 {
		t.Errorf("rest.compartment %v, want the five R4 compartment definitions", comps)
	}
	for _, c := range comps {
		owner := strings.ToUpper(c[len("http://hl7.org/fhir/CompartmentDefinition/"):][:1]) + c[len("http://hl7.org/fhir/CompartmentDefinition/")+1:]
		types := search.CompartmentTypes(owner)
		if len(types) == 0 {
			t.Errorf("compartment %s: no types", c)
			continue
		}
		if r := h.do(http.MethodGet, "/"+owner+"/x/"+types[0], nil); r.status != http.StatusOK {
			t.Errorf("compartment %s: GET /%s/x/%s answers %d: %s", c, owner, types[0], r.status, r.raw)
		}
	}

	var system []string
	for _, i := range anySlice(dig(cs, "rest", 0, "interaction")) {
		system = append(system, str(i, "code"))
	}
	slices.Sort(system)
	if diff := cmp.Diff([]string{"batch", "history-system", "search-system", "transaction"}, system); diff != "" {
		t.Errorf("system interactions (-want +got):\n%s", diff)
	}
	var sysOps []string
	for _, o := range anySlice(dig(cs, "rest", 0, "operation")) {
		sysOps = append(sysOps, str(o, "name"))
	}
	if diff := cmp.Diff([]string{"ingest", "detect-ruptures", "audit-verify"}, sysOps); diff != "" {
		t.Errorf("system operations (-want +got):\n%s", diff)
	}

	wantInteractions := []string{"create", "delete", "history-instance", "history-type", "read", "search-type", "update", "vread"}
	resources := anySlice(dig(cs, "rest", 0, "resource"))
	if len(resources) != 146 {
		t.Errorf("%d resources, want the 146 of R4", len(resources))
	}
	var types []string
	for _, res := range resources {
		typ := str(res, "type")
		types = append(types, typ)
		var codes []string
		for _, i := range anySlice(dig(res, "interaction")) {
			codes = append(codes, str(i, "code"))
		}
		slices.Sort(codes)
		want := wantInteractions
		if typ == "AuditEvent" { // the decision log: read and searched, written by the hub only
			want = []string{"read", "search-type"}
		}
		if diff := cmp.Diff(want, codes); diff != "" {
			t.Errorf("%s interactions (-want +got):\n%s", typ, diff)
		}
		var params, wantParams []string
		for _, p := range anySlice(dig(res, "searchParam")) {
			params = append(params, str(p, "name")+" "+str(p, "type")+" "+str(p, "definition"))
		}
		for _, p := range search.Default().List(typ) {
			if typ != "AuditEvent" || slices.Contains([]string{"date", "outcome", "patient", "subtype"}, p.Code) {
				wantParams = append(wantParams, p.Code+" "+p.Type+" "+p.URL)
			}
		}
		if typ == "AuditEvent" { // what auditEvents applies, and no more
			// entity-type: the resource type decided, the hub's own (black-box
			// review: declared as the standard one, which it is not).
			wantParams = append(wantParams, "agent token ", "entity-type token ", "purpose token ", "review token ")
			if inc := dig(res, "searchInclude"); inc != nil {
				t.Errorf("AuditEvent declares _include %v: the decision log's search has none", inc)
			}
			if dig(res, "readHistory") != false || dig(res, "updateCreate") != false || dig(res, "conditionalCreate") != false ||
				dig(res, "conditionalUpdate") != false || str(res, "conditionalDelete") != "not-supported" || str(res, "versioning") != "no-version" {
				t.Errorf("AuditEvent declares interactions the hub does not implement: %v", res)
			}
		}
		if diff := cmp.Diff(wantParams, params); diff != "" {
			t.Errorf("%s search parameters (-want +got):\n%s", typ, diff)
		}
		if conformance.HasElement(typ, "identifier") && !slices.ContainsFunc(params, func(p string) bool { return strings.HasPrefix(p, "identifier token") }) {
			t.Errorf("%s: no identifier parameter (conditional operations need it)", typ)
		}
		var ops []string
		for _, o := range anySlice(dig(res, "operation")) {
			ops = append(ops, str(o, "name"))
		}
		wantOps := map[string][]string{"Patient": {"everything", "pathway"}, "ConceptMap": {"translate"}, "Measure": {"evaluate-measure"}, "AuditEvent": {"review"}}[typ]
		if !slices.Equal(ops, wantOps) {
			t.Errorf("%s operations %v, want %v (what is implemented)", typ, ops, wantOps)
		}
		if typ == "AuditEvent" {
			continue // checked above
		}
		if got := str(res, "conditionalDelete"); got != "single" {
			t.Errorf("%s conditionalDelete %q, want single (several matches → 412)", typ, got)
		}
		if dig(res, "updateCreate") != true || dig(res, "conditionalCreate") != true || dig(res, "conditionalUpdate") != true {
			t.Errorf("%s: updateCreate, conditionalCreate and conditionalUpdate are implemented: %v", typ, res)
		}
	}
	if diff := cmp.Diff(conformance.ResourceTypes(), types); diff != "" {
		t.Errorf("resource types (-want +got):\n%s", diff)
	}
	for _, typ := range []string{"Patient", "Observation", "Bundle", "Parameters", "Binary"} {
		if !slices.Contains(types, typ) {
			t.Errorf("%s missing", typ)
		}
	}
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range anySlice(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
