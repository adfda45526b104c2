package server

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestHiddenTombstones: a deleted resource answers 410 (with the deletion
// time in Last-Modified), and a missing version of an existing one 404,
// only to a caller who may read the resource; another gets the 403 its
// content would give (found in a black-box review: a GP outside the care
// team learnt that a hidden Observation existed, and when it was deleted,
// and how many versions another had).
func TestHiddenTombstones(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Tombe")
	mk := func() string {
		w := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", map[string]any{"resourceType": "Observation", "status": "final",
			"code": map[string]any{"text": "x"}, "subject": map[string]any{"reference": "Patient/" + pid}})
		if w.status != http.StatusCreated {
			t.Fatalf("create: %d %s", w.status, w.raw)
		}
		return strings.Split(strings.TrimPrefix(w.header.Get("Location"), h.url+"/Observation/"), "/")[0]
	}
	gone, kept := mk(), mk()
	if r := h.as("hospital-it", "HOPERAT", http.MethodDelete, "/Observation/"+gone, nil); r.status/100 != 2 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	for _, c := range []struct {
		actor, purpose, path string
		want                 int
	}{
		{"gp", "TREAT", "/Observation/" + gone, http.StatusForbidden},
		{"gp", "TREAT", "/Observation/" + kept + "/_history/9", http.StatusForbidden},
		{"gp", "TREAT", "/Observation/" + gone + "/_history/2", http.StatusForbidden},
		{"hospital-clinician", "TREAT", "/Observation/" + gone, http.StatusGone},
		{"hospital-clinician", "TREAT", "/Observation/" + kept + "/_history/9", http.StatusNotFound},
		{"gp", "TREAT", "/Observation/never-existed", http.StatusNotFound},
	} {
		r := h.as(c.actor, c.purpose, http.MethodGet, c.path, nil)
		if r.status != c.want {
			t.Errorf("%s GET %s: %d, want %d", c.actor, c.path, r.status, c.want)
		}
		if r.status == http.StatusForbidden && r.header.Get("Last-Modified") != "" {
			t.Errorf("%s GET %s: a 403 with Last-Modified %s", c.actor, c.path, r.header.Get("Last-Modified"))
		}
		// The same read as a batch entry answers the same (once a bug:
		// a batch's GET entries said 410 to anyone who may read the type).
		b := h.as(c.actor, c.purpose, http.MethodPost, "", map[string]any{"resourceType": "Bundle", "type": "batch",
			"entry": []any{map[string]any{"request": map[string]any{"method": "GET", "url": strings.TrimPrefix(c.path, "/")}}}})
		if got := str(b.body, "entry", 0, "response", "status"); b.status != http.StatusOK || !strings.HasPrefix(got, strconv.Itoa(c.want)) {
			t.Errorf("%s batch GET %s: %d, entry status %q, want %d", c.actor, c.path, b.status, got, c.want)
		}
	}
}

// TestDeletedPatientToItsRegistrar: the organisation that registered a
// Patient and deleted it still reads its deletion (410), its versions and
// its history; it answered 403, the registration being gone from the index
// with the deletion (black-box review). Another organisation still learns
// nothing.
func TestDeletedPatientToItsRegistrar(t *testing.T) {
	h := newSecureHub(t)
	r := h.as("hospital-clinician", "TREAT", http.MethodPost, "/Patient", patient("Efface", testINS("Efface")))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	id := strings.Split(strings.TrimPrefix(r.header.Get("Location"), h.url+"/Patient/"), "/")[0]
	if r := h.as("hospital-clinician", "TREAT", http.MethodDelete, "/Patient/"+id, nil); r.status/100 != 2 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	for path, want := range map[string]int{
		"/Patient/" + id:                 http.StatusGone,
		"/Patient/" + id + "/_history/1": http.StatusOK,
		"/Patient/" + id + "/_history":   http.StatusOK,
	} {
		if r := h.as("hospital-clinician", "TREAT", http.MethodGet, path, nil); r.status != want {
			t.Errorf("registrar GET %s: %d, want %d: %.200s", path, r.status, want, r.raw)
		}
	}
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+id+"/_history", nil); len(anySlice(r.body["entry"])) != 2 {
		t.Errorf("registrar history: %d entries, want 2 (create, delete)", len(anySlice(r.body["entry"])))
	}
	if r := h.as("gp", "TREAT", http.MethodGet, "/Patient/"+id, nil); r.status != http.StatusForbidden {
		t.Errorf("gp GET the deleted patient: %d, want 403", r.status)
	}
}
