package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestMalformedQueryRefused: a query string that does not parse whole (a
// bad %-escape, a ';') is refused with 400, not run without the pairs Go's
// parser drops: a conditional delete or update would otherwise act on
// more resources than its criteria name, and a search would ignore them.
func TestMalformedQueryRefused(t *testing.T) {
	h := newHub(t)
	keep := map[string]string{}
	for _, name := range []string{"Dupont", "Durand", "Martin"} {
		p := patient(name)
		p["id"] = "q-" + name
		if r := h.do(http.MethodPut, "/Patient/q-"+name, p); r.status != http.StatusCreated {
			t.Fatalf("PUT: %d %s", r.status, r.raw)
		}
		keep["q-"+name] = name
	}
	for _, tt := range []struct{ method, path string }{
		{http.MethodDelete, "/Patient?_id=q-Dupont&given=%zz"},
		{http.MethodDelete, "/Patient?_id=q-Durand&given=a;b"},
		{http.MethodPut, "/Patient?_id=q-Martin&given=%zz"},
		{http.MethodGet, "/Patient?family=Dupont&given=%zz"},
		{http.MethodGet, "/Patient/_history?_count=%zz"},
	} {
		var body any
		if tt.method == http.MethodPut {
			body = patient("Overwritten")
		}
		r := h.do(tt.method, tt.path, body, "Prefer", "handling=lenient")
		wantOutcome(t, r, http.StatusBadRequest)
	}
	// In a batch: the entry is refused, the others run.
	r := h.do(http.MethodPost, "", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"request": map[string]any{"method": "DELETE", "url": "Patient?_id=q-Dupont&given=%zz"}},
		map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/q-Durand"}},
	}})
	if r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	if got := []string{str(r.body, "entry", 0, "response", "status"), str(r.body, "entry", 1, "response", "status")}; got[0] != "400 Bad Request" || got[1] != "200 OK" {
		t.Errorf("batch entry statuses %q, want 400 for the malformed url and 200 OK", got)
	}
	for id, family := range keep {
		if r := h.do(http.MethodGet, "/Patient/"+id, nil); r.status != http.StatusOK || str(r.body, "name", 0, "family") != family || str(r.body, "meta", "versionId") != "1" {
			t.Errorf("Patient/%s after the refused requests: %d, family %q, version %q; want it untouched", id, r.status, str(r.body, "name", 0, "family"), str(r.body, "meta", "versionId"))
		}
	}
}

// TestShapeCheckedBeforeWrite: a create or update with a _summary it
// cannot apply is refused before it is stored, not answered 400 after.
func TestShapeCheckedBeforeWrite(t *testing.T) {
	h := newHub(t)
	p := patient("Summary")
	p["id"] = "sum-put"
	wantOutcome(t, h.do(http.MethodPut, "/Patient/sum-put?_summary=bogus", p), http.StatusBadRequest)
	if r := h.do(http.MethodGet, "/Patient/sum-put", nil); r.status != http.StatusNotFound {
		t.Errorf("PUT refused for its _summary: the read answers %d, want 404 (nothing stored)", r.status)
	}
	for _, path := range []string{"/Patient?_summary=count", "/Patient?_summary=bogus"} {
		r := h.do(http.MethodPost, path, patient("Summary"))
		wantOutcome(t, r, http.StatusBadRequest)
		if loc := r.header.Get("Location"); loc != "" {
			t.Errorf("POST %s refused with a Location %s", path, loc)
		}
	}
	if n := h.total("/Patient?family=Summary"); n != 0 {
		t.Errorf("%d Patients stored by refused writes, want 0", n)
	}
}

// TestBatchReadConditions: a GET entry is a read: its ifNoneMatch and
// ifModifiedSince answer 304 without the resource, its url's _elements
// and _summary shape it, and a _summary a read refuses is refused.
func TestBatchReadConditions(t *testing.T) {
	h := newHub(t)
	id := h.create("Patient", patient("Lecture"))
	get := func(extra map[string]any) map[string]any {
		req := map[string]any{"method": "GET", "url": "Patient/" + id}
		for k, v := range extra {
			req[k] = v
		}
		return map[string]any{"request": req}
	}
	r := h.do(http.MethodPost, "", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		get(map[string]any{"ifNoneMatch": `W/"1"`}),
		get(map[string]any{"ifNoneMatch": `W/"7"`}),
		get(map[string]any{"ifModifiedSince": "2100-01-01T00:00:00Z"}),
		get(map[string]any{"ifModifiedSince": "2000-01-01T00:00:00Z"}),
		get(map[string]any{"url": "Patient/" + id + "?_elements=gender"}),
		get(map[string]any{"url": "Patient/" + id + "?_summary=count"}),
	}})
	if r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	want := []struct {
		status   string
		resource bool
	}{{"304 Not Modified", false}, {"200 OK", true}, {"304 Not Modified", false}, {"200 OK", true}, {"200 OK", true}, {"400 Bad Request", false}}
	for i, w := range want {
		e := dig(r.body, "entry", i)
		if got := str(e, "response", "status"); got != w.status || (dig(e, "resource") != nil) != w.resource {
			t.Errorf("entry %d: status %q, resource %v; want %q, resource %v", i, got, dig(e, "resource") != nil, w.status, w.resource)
		}
	}
	sub := dig(r.body, "entry", 4, "resource")
	if dig(sub, "name") != nil || str(sub, "meta", "tag", 0, "code") != "SUBSETTED" {
		t.Errorf("entry with _elements=gender: %v, want the Patient without its name, tagged SUBSETTED", sub)
	}
}

// TestIfNoneMatchOnWrites: an If-None-Match listing the current version's
// entity tag fails an update or a delete with 412 (RFC 9110 §13.1.2), as
// "*" fails when the resource exists; another version's tag does not.
func TestIfNoneMatchOnWrites(t *testing.T) {
	h := newHub(t)
	p := patient("Etag")
	p["id"] = "inm"
	h.do(http.MethodPut, "/Patient/inm", p)
	wantOutcome(t, h.do(http.MethodPut, "/Patient/inm", p, "If-None-Match", `W/"1"`), http.StatusPreconditionFailed)
	wantOutcome(t, h.do(http.MethodDelete, "/Patient/inm", nil, "If-None-Match", `W/"3", W/"1"`), http.StatusPreconditionFailed)
	if r := h.do(http.MethodPut, "/Patient/inm", p, "If-None-Match", `W/"7"`); r.status != http.StatusOK || str(r.body, "meta", "versionId") != "2" {
		t.Errorf("PUT with another version's tag: %d, version %q; want 200 and version 2", r.status, str(r.body, "meta", "versionId"))
	}
}

// TestHistoryOfNothing: the history of an id that never existed is 404,
// as its read is, with the policy on or off; a deleted resource keeps its
// history.
func TestHistoryOfNothing(t *testing.T) {
	sh := newSecureHub(t)
	wantOutcome(t, sh.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/never-existed-42/_history", nil), http.StatusNotFound)
	h := newHub(t)
	wantOutcome(t, h.do(http.MethodGet, "/Patient/never-existed-42/_history", nil), http.StatusNotFound)
	id := h.create("Patient", patient("Histoire"))
	if r := h.do(http.MethodDelete, "/Patient/"+id, nil); r.status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if r := h.do(http.MethodGet, "/Patient/"+id+"/_history", nil); r.status != http.StatusOK || num(r.body, "total") != 2 {
		t.Errorf("history of a deleted Patient: %d, total %d; want 200 and 2 versions", r.status, num(r.body, "total"))
	}
}

// TestNoEmptyArrays: FHIR JSON has no empty arrays, objects or stray
// nulls (json.html): a resource with one is refused with the element's
// path, and bundles with nothing to list leave entry out.
func TestNoEmptyArrays(t *testing.T) {
	h := newHub(t)
	for _, tt := range []struct {
		body string
		expr string
	}{
		{`{"resourceType":"Patient","name":[]}`, "Patient.name"},
		{`{"resourceType":"Patient","name":[{}]}`, "Patient.name[0]"},
		{`{"resourceType":"Patient","gender":null}`, "Patient.gender"},
		{`{"resourceType":"Patient","name":[{"given":[null]}]}`, "Patient.name[0].given[0]"},
	} {
		issues := wantOutcome(t, h.do(http.MethodPost, "/Patient", tt.body), http.StatusBadRequest)
		if !slices.Contains(expressions(issues), tt.expr) {
			t.Errorf("%s: expressions %v, want %s", tt.body, expressions(issues), tt.expr)
		}
	}
	for _, path := range []string{"/Patient/_history?_since=2100-01-01T00:00:00Z", "/_history?_count=0", "/Patient?family=Nobody"} {
		if r := h.do(http.MethodGet, path, nil); r.status != http.StatusOK || strings.Contains(string(r.raw), "[]") {
			t.Errorf("GET %s: %d %s, want 200 without an empty array", path, r.status, r.raw)
		}
	}
	if r := h.do(http.MethodPost, "", `{"resourceType":"Bundle","type":"transaction"}`); r.status != http.StatusOK || strings.Contains(string(r.raw), "[]") {
		t.Errorf("empty transaction: %d %s, want 200 without an empty array", r.status, r.raw)
	}
}

// TestAllowHeader: every 405 names in Allow the methods its route serves
// (RFC 9110 §15.5.6), and never a method answered 405 itself.
func TestAllowHeader(t *testing.T) {
	h := newHub(t)
	id := h.create("Patient", patient("Allow"))
	for _, tt := range []struct{ method, path, want string }{
		{http.MethodPost, "/Patient/" + id, "DELETE, GET, HEAD, PUT"},
		{http.MethodPatch, "/Patient/" + id, "DELETE, GET, HEAD, PUT"},
		{http.MethodPatch, "/Patient", "DELETE, GET, POST, PUT"},
		{http.MethodOptions, "/Patient/" + id, "DELETE, GET, HEAD, PUT"},
		{http.MethodPut, "", "GET, POST"},
		{http.MethodGet, "/$ingest", "POST"},
		{http.MethodDelete, "/AuditEvent/x", "GET, HEAD"},
		{http.MethodPatch, "/metadata", "GET, HEAD"},
	} {
		r := h.do(tt.method, tt.path, nil)
		wantOutcome(t, r, http.StatusMethodNotAllowed)
		if got := r.header.Get("Allow"); got != tt.want {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

// TestConditionalUpdateNoMatchExistingID: criteria matching nothing with a
// body id naming an existing resource is a 409 that says so (it told the
// client to retry, which never helps).
func TestConditionalUpdateNoMatchExistingID(t *testing.T) {
	h := newHub(t)
	id := h.create("Patient", patient("Existe"))
	body := patient("Autre")
	body["id"] = id
	issues := wantOutcome(t, h.do(http.MethodPut, "/Patient?identifier=urn:x|nomatch", body), http.StatusConflict)
	if d := issues[0].Diagnostics; strings.Contains(d, "retry") || !strings.Contains(d, "criteria") {
		t.Errorf("diagnostics %q, want the criteria and the existing id explained, no retry", d)
	}
	if r := h.do(http.MethodGet, "/Patient/"+id, nil); str(r.body, "name", 0, "family") != "Existe" {
		t.Errorf("the existing Patient was changed: %s", r.raw)
	}
	// With the policy on, the same answer.
	sh := newSecureHub(t)
	pid := seedHospital(t, sh, "Existe")
	body["id"] = pid
	body["identifier"] = []any{map[string]any{"system": insSystem, "value": strings.TrimPrefix(testINS("Autre"), insSystem+"|")}}
	issues = wantOutcome(t, sh.as("hospital-it", "HOPERAT", http.MethodPut, "/Patient?identifier=urn:x|nomatch", body), http.StatusConflict)
	if d := issues[0].Diagnostics; strings.Contains(d, "retry") || !strings.Contains(d, "criteria") {
		t.Errorf("secure hub: diagnostics %q, want the criteria and the existing id explained, no retry", d)
	}
}

// TestStrictJSON: invalid UTF-8 and a repeated key are refused with their
// line and column (they were stored as U+FFFD, and as the last value).
func TestStrictJSON(t *testing.T) {
	h := newHub(t)
	for _, tt := range []struct{ body, want string }{
		{"{\"resourceType\":\"Patient\",\n\"name\":[{\"family\":\"Bad\xff\"}]}", "invalid UTF-8"},
		{"{\"resourceType\":\"Patient\",\n\"gender\":\"male\",\"gender\":\"female\"}", `"gender" appears twice`},
	} {
		issues := wantOutcome(t, h.do(http.MethodPost, "/Patient", tt.body), http.StatusBadRequest)
		if !strings.Contains(issues[0].Diagnostics, tt.want) || !strings.Contains(issues[0].Diagnostics, "line 2") {
			t.Errorf("%q: %q, want %q at line 2", tt.body, issues[0].Diagnostics, tt.want)
		}
	}
}

// TestUnknownInstanceOperation: Type/id/$op that the hub does not have is
// an unknown operation, not an unknown resource type.
func TestUnknownInstanceOperation(t *testing.T) {
	h := newHub(t)
	issues := wantOutcome(t, h.do(http.MethodGet, "/Patient/x/$unknown", nil), http.StatusNotFound)
	if !strings.Contains(issues[0].Diagnostics, "unknown operation $unknown") {
		t.Errorf("diagnostics %q, want an unknown operation", issues[0].Diagnostics)
	}
}

// TestIntegerTypes: a FHIR integer is a whole number within 32 bits (JSON
// Schema's pattern applies to strings only: 1.5 was stored).
func TestIntegerTypes(t *testing.T) {
	h := newHub(t)
	for _, v := range []string{"1.5", "99999999999999999999", "2147483648", "1e3"} {
		issues := wantOutcome(t, h.do(http.MethodPost, "/Patient", `{"resourceType":"Patient","multipleBirthInteger":`+v+`}`), http.StatusBadRequest)
		if !slices.Contains(expressions(issues), "Patient.multipleBirthInteger") {
			t.Errorf("multipleBirthInteger %s: expressions %v", v, expressions(issues))
		}
	}
	if r := h.do(http.MethodPost, "/Patient", `{"resourceType":"Patient","multipleBirthInteger":2}`); r.status != http.StatusCreated {
		t.Errorf("multipleBirthInteger 2: %d %s", r.status, r.raw)
	}
	if r := h.do(http.MethodPost, "/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.5e2}}`); r.status != http.StatusCreated {
		t.Errorf("a decimal with an exponent: %d %s", r.status, r.raw)
	}
}
