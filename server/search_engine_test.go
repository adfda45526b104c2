package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The search engine through HTTP (no policy: newHub is insecure; the
// policy side runs in scenarios_test.go and search_policy_test.go), on the
// resources of server/search/testdata, stored with their ids by PUT.

func searchHub(t *testing.T) *hub {
	t.Helper()
	h := newHub(t)
	raw, err := os.ReadFile("search/testdata/resources.json")
	if err != nil {
		t.Fatal(err)
	}
	// The testdata names its server https://hub.example/fhir: here the
	// references are relative.
	raw = []byte(strings.ReplaceAll(string(raw), "https://hub.example/fhir/", ""))
	var b struct {
		Entry []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	for _, e := range b.Entry {
		r := e.Resource
		path := "/" + r["resourceType"].(string) + "/" + r["id"].(string)
		if rep := h.do(http.MethodPut, path, r); rep.status != http.StatusCreated {
			t.Fatalf("PUT %s: %d %.300s", path, rep.status, rep.raw)
		}
	}
	return h
}

// entryRefs lists "Type/id" of a searchset's entries, in order, with
// " (include)" for included ones.
func entryRefs(t *testing.T, r reply) []string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %.500s", r.status, r.raw)
	}
	var out []string
	for _, e := range bundleEntries(r.body) {
		ref := str(e, "resource", "resourceType") + "/" + str(e, "resource", "id")
		switch mode := str(e, "search", "mode"); mode {
		case "match":
		case "include":
			ref += " (include)"
		default:
			t.Errorf("%s: search.mode %q", ref, mode)
		}
		out = append(out, ref)
	}
	return out
}

func sortedRefs(t *testing.T, r reply) []string {
	out := entryRefs(t, r)
	slices.Sort(out)
	return out
}

func TestSearchEngineHTTP(t *testing.T) {
	h := searchHub(t)
	tests := []struct {
		path string
		want []string
	}{
		{"/Patient?family=lef", []string{"Patient/p-eloise"}},
		{"/Patient?name=ELOISE&gender=female", []string{"Patient/p-eloise"}},
		{"/Patient?birthdate=lt1960", []string{"Patient/p-martin"}},
		{"/Patient?address-city=saint", []string{"Patient/p-eloise"}},
		{"/Observation?code=http://loinc.org%7C4548-4&date=ge2024", []string{"Observation/o-2"}},
		{"/Observation?value-quantity=gt7.2", []string{"Observation/o-1", "Observation/o-3"}},
		{"/Observation?subject.family=dupont", []string{"Observation/o-4", "Observation/o-5"}},
		{"/Observation?subject=" + url.QueryEscape(h.url+"/Patient/p-martin"), []string{"Observation/o-3"}},
		{"/Observation?component-code-value-quantity=8480-6$gt120", []string{"Observation/o-4"}},
		{"/Patient?_has:Observation:patient:code=4548-4", []string{"Patient/p-eloise"}},
		{"/Encounter?date=2023-01-11", nil},                                                            // e-1 lasts three days: not within the day
		{"/Encounter?date=ge2023-01-11&date=le2023-01-11", []string{"Encounter/e-1", "Encounter/e-2"}}, // e-2 has no end
		{"/RiskAssessment?probability=ge0.5", []string{"RiskAssessment/ra-2"}},
		{"/ValueSet?url:below=http://example.org/fhir/ValueSet/parcours", []string{"ValueSet/vs-1"}},
		{"/Patient?_lastUpdated=gt2000&_security=R", []string{"Patient/p-eloise"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := h.do(http.MethodGet, tt.path, nil, "Prefer", "handling=strict")
			if diff := cmp.Diff(tt.want, sortedRefs(t, r)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if n := num(r.body, "total"); n != len(tt.want) {
				t.Errorf("total %d, want %d", n, len(tt.want))
			}
		})
	}
}

// TestSearchSortPaging walks _sort pages by next and previous links, and
// checks that a page stays right while writes happen.
func TestSearchSortPaging(t *testing.T) {
	h := searchHub(t)
	first := h.do(http.MethodGet, "/Observation?_sort=-date,_id&_count=2", nil)
	if diff := cmp.Diff([]string{"Observation/o-4", "Observation/o-2"}, entryRefs(t, first)); diff != "" {
		t.Fatalf("page 1 (-want +got):\n%s", diff)
	}
	if linkURL(first.body, "previous") != "" {
		t.Error("page 1 has a previous link")
	}
	// A write that sorts before the cursor does not shift the next page.
	h.create("Observation", map[string]any{"resourceType": "Observation", "status": "final",
		"code": map[string]any{"text": "late"}, "effectiveDateTime": "2030-01-01"})
	second := h.do(http.MethodGet, h.rel(linkURL(first.body, "next")), nil)
	if diff := cmp.Diff([]string{"Observation/o-1", "Observation/o-6"}, entryRefs(t, second)); diff != "" {
		t.Errorf("page 2 (-want +got):\n%s", diff)
	}
	if n := num(second.body, "total"); n != 7 {
		t.Errorf("page 2 total %d, want 7 (the new one counts)", n)
	}
	third := h.do(http.MethodGet, h.rel(linkURL(second.body, "next")), nil)
	if diff := cmp.Diff([]string{"Observation/o-5", "Observation/o-3"}, entryRefs(t, third)); diff != "" {
		t.Errorf("page 3 (-want +got):\n%s", diff)
	}
	if linkURL(third.body, "next") != "" {
		t.Error("last page has a next link")
	}
	back := h.do(http.MethodGet, h.rel(linkURL(third.body, "previous")), nil)
	if diff := cmp.Diff(entryRefs(t, second), entryRefs(t, back)); diff != "" {
		t.Errorf("previous of page 3 (-want +got):\n%s", diff)
	}
	for _, l := range []string{linkURL(second.body, "self"), linkURL(second.body, "next")} {
		if !strings.Contains(l, "_sort=-date%2C_id") || !strings.Contains(l, "_count=2") {
			t.Errorf("link %q lost _sort or _count", l)
		}
	}
	wantOutcome(t, h.do(http.MethodGet, "/Observation?_cursor=garbage", nil), http.StatusBadRequest)

	// Without totals, the pages are the same (the next page starts at its
	// cursor), and the links too.
	var got []string
	next := "/Observation?_sort=-date,_id&_count=3&_total=none"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("next links loop")
		}
		r := h.do(http.MethodGet, next, nil)
		if (linkURL(r.body, "previous") != "") != (pages > 0) {
			t.Errorf("page %d: previous link %q", pages+1, linkURL(r.body, "previous"))
		}
		got = append(got, entryRefs(t, r)...)
		if next = linkURL(r.body, "next"); next != "" {
			next = h.rel(next)
		}
	}
	want := []string{"Observation/" + str(h.do(http.MethodGet, "/Observation?_sort=-date&_count=1", nil).body, "entry", 0, "resource", "id"),
		"Observation/o-4", "Observation/o-2", "Observation/o-1", "Observation/o-6", "Observation/o-5", "Observation/o-3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages without totals (-want +got):\n%s", diff)
	}
}

func TestSearchTotalSummaryElements(t *testing.T) {
	h := searchHub(t)
	r := h.do(http.MethodGet, "/Observation?status=final&_total=none&_count=2", nil)
	if _, ok := r.body["total"]; ok || len(bundleEntries(r.body)) != 2 || linkURL(r.body, "next") == "" {
		t.Errorf("_total=none: want no total, 2 entries and a next link: %.400s", r.raw)
	}
	for _, v := range []string{"accurate", "estimate"} {
		if r := h.do(http.MethodGet, "/Observation?status=final&_total="+v, nil); num(r.body, "total") != 4 {
			t.Errorf("_total=%s: total %d, want 4", v, num(r.body, "total"))
		}
	}
	wantOutcome(t, h.do(http.MethodGet, "/Observation?_total=maybe", nil), http.StatusBadRequest)
	r = h.do(http.MethodGet, "/Observation?status=final&_summary=count", nil)
	if num(r.body, "total") != 4 || len(bundleEntries(r.body)) != 0 {
		t.Errorf("_summary=count: %.300s", r.raw)
	}
	r = h.do(http.MethodGet, "/Observation?_id=o-1&_elements=status", nil)
	res, _ := dig(r.body, "entry", 0, "resource").(map[string]any)
	if res == nil || res["status"] != "final" || res["valueQuantity"] != nil {
		t.Errorf("_elements=status: %.300s", r.raw)
	}
}

func TestSearchIncludes(t *testing.T) {
	h := searchHub(t)
	tests := []struct {
		path string
		want []string
	}{
		{"/Observation?_id=o-1&_include=Observation:subject&_include=Observation:encounter",
			[]string{"Observation/o-1", "Patient/p-eloise (include)", "Encounter/e-1 (include)"}},
		{"/Observation?_id=o-1&_include=Observation:subject:Group", []string{"Observation/o-1"}},
		{"/Observation?_id=o-3&_include=*", []string{"Observation/o-3", "Encounter/e-2 (include)", "Patient/p-martin (include)"}},
		{"/Observation?_id=o-1&_include=Observation:encounter&_include:iterate=Encounter:service-provider",
			[]string{"Observation/o-1", "Encounter/e-1 (include)", "Organization/org-1 (include)"}},
		{"/Patient?_id=p-eloise&_revinclude=Observation:subject", []string{"Patient/p-eloise", "Observation/o-1 (include)", "Observation/o-2 (include)"}},
		{"/Patient?_id=p-eloise&_revinclude=Encounter:subject&_revinclude:iterate=Observation:encounter",
			[]string{"Patient/p-eloise", "Encounter/e-1 (include)", "Observation/o-1 (include)"}},
		{"/Observation?code=4548-4&_include=Observation:subject", []string{"Observation/o-1", "Observation/o-2", "Patient/p-eloise (include)"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := h.do(http.MethodGet, tt.path, nil, "Prefer", "handling=strict")
			if diff := cmp.Diff(tt.want, entryRefs(t, r)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			matches := 0
			for _, w := range tt.want {
				if !strings.HasSuffix(w, "(include)") {
					matches++
				}
			}
			if n := num(r.body, "total"); n != matches {
				t.Errorf("total %d, want %d (matches only)", n, matches)
			}
		})
	}
}

func TestSearchSystemAndCompartment(t *testing.T) {
	h := searchHub(t)
	tests := []struct {
		method, path, form string
		want               []string
	}{
		{http.MethodGet, "?_type=Patient,Observation&_id=p-eloise,o-1,e-1", "", []string{"Observation/o-1", "Patient/p-eloise"}},
		{http.MethodGet, "?_id=org-1", "", []string{"Organization/org-1"}},
		{http.MethodGet, "?_type=Patient&family=lef", "", []string{"Patient/p-eloise"}},
		{http.MethodGet, "?_type=Patient,ValueSet&_tag=urn:parcours:tag%7Cdemo", "", []string{"Patient/p-eloise"}},
		{http.MethodPost, "/_search", "_type=Encounter&_lastUpdated=gt2000&status=in-progress", []string{"Encounter/e-2"}},
		{http.MethodGet, "/Patient/p-eloise/Observation", "", []string{"Observation/o-1", "Observation/o-2"}},
		{http.MethodGet, "/Patient/p-eloise/Observation?date=ge2024", "", []string{"Observation/o-2"}},
		{http.MethodGet, "/Patient/p-martin/Condition", "", []string{"Condition/c-2"}},
		{http.MethodGet, "/Encounter/e-1/Observation", "", []string{"Observation/o-1"}},
		{http.MethodGet, "/Practitioner/pr-1/Patient", "", []string{"Patient/p-eloise", "Patient/p-martin"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var body any
			var headers []string
			if tt.form != "" {
				body, headers = tt.form, []string{"Content-Type", "application/x-www-form-urlencoded"}
			}
			r := h.do(tt.method, tt.path, body, headers...)
			if diff := cmp.Diff(tt.want, sortedRefs(t, r)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
	wantOutcome(t, h.do(http.MethodGet, "/Patient/p-eloise/ValueSet", nil), http.StatusNotFound)
	wantOutcome(t, h.do(http.MethodGet, "?_type=Nothing", nil), http.StatusBadRequest)
	// A criterion not understood for every type is ignored (lenient) or
	// refused (strict).
	r := h.do(http.MethodGet, "?_type=Patient,Observation&family=lef", nil)
	if self := linkURL(r.body, "self"); strings.Contains(self, "family") {
		t.Errorf("self link %q shows the ignored family", self)
	}
	wantOutcome(t, h.do(http.MethodGet, "?_type=Patient,Observation&family=lef", nil, "Prefer", "handling=strict"), http.StatusBadRequest)
}

func TestEverything(t *testing.T) {
	h := searchHub(t)
	all := []string{"Condition/c-1", "Encounter/e-1", "Observation/o-1", "Observation/o-2", "Patient/p-eloise", "Patient/p-zoe", "RiskAssessment/ra-2"}
	if diff := cmp.Diff(all, sortedRefs(t, h.do(http.MethodGet, "/Patient/p-eloise/$everything", nil))); diff != "" {
		t.Errorf("$everything (-want +got):\n%s", diff)
	}
	var seen []string
	next := "/Patient/p-eloise/$everything?_count=3"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("next links loop")
		}
		r := h.do(http.MethodGet, next, nil)
		if n := num(r.body, "total"); n != len(all) {
			t.Errorf("page %d: total %d, want %d", pages+1, n, len(all))
		}
		seen = append(seen, entryRefs(t, r)...)
		next = linkURL(r.body, "next")
		if next != "" {
			next = h.rel(next)
		}
	}
	slices.Sort(seen)
	if diff := cmp.Diff(all, seen); diff != "" {
		t.Errorf("$everything over pages (-want +got):\n%s", diff)
	}
	first := h.do(http.MethodGet, "/Patient/p-eloise/$everything?_type=Observation&_count=1", nil)
	second := h.do(http.MethodGet, h.rel(linkURL(first.body, "next")), nil)
	if diff := cmp.Diff([]string{"Observation/o-1", "Observation/o-2"}, append(entryRefs(t, first), entryRefs(t, second)...)); diff != "" {
		t.Errorf("$everything _type=Observation, two pages (-want +got):\n%s", diff)
	}
	wantOutcome(t, h.do(http.MethodGet, "/Patient/nobody/$everything", nil), http.StatusNotFound)
}

// TestConditionalWithSearchCriteria: conditional create, update and
// delete take any search criteria: none, one or several matches.
func TestConditionalWithSearchCriteria(t *testing.T) {
	h := searchHub(t)
	create := func(criteria string) reply {
		return h.do(http.MethodPost, "/Patient", patient("Nouveau"), "If-None-Exist", criteria)
	}
	if r := create("family=Lef%C3%A8vre&birthdate=1961-04-12"); r.status != http.StatusOK || str(r.body, "id") != "p-eloise" {
		t.Errorf("one match: %d %.200s, want 200 with p-eloise", r.status, r.raw)
	}
	if r := create("gender=female"); r.status != http.StatusPreconditionFailed {
		t.Errorf("two matches: %d, want 412", r.status)
	}
	if r := create("family=nobody"); r.status != http.StatusCreated {
		t.Errorf("no match: %d, want 201", r.status)
	}
	if r := h.do(http.MethodPut, "/Patient?gender=female", patient("X")); r.status != http.StatusPreconditionFailed {
		t.Errorf("conditional update, two matches: %d, want 412", r.status)
	}
	if r := h.do(http.MethodDelete, "/Observation?code=4548-4&date=2024-02-01", nil); r.status != http.StatusOK {
		t.Errorf("conditional delete: %d %.200s", r.status, r.raw)
	}
	if diff := cmp.Diff([]string{"Observation/o-1"}, sortedRefs(t, h.do(http.MethodGet, "/Observation?code=4548-4", nil))); diff != "" {
		t.Errorf("after the conditional delete (-want +got):\n%s", diff)
	}
	if r := h.do(http.MethodDelete, "/Observation?subject.family=dupont", nil); r.status != http.StatusPreconditionFailed {
		t.Errorf("conditional delete with a chain, two matches: %d, want 412", r.status)
	}
}
