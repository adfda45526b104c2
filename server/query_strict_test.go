package server

import (
	"net/http"
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
