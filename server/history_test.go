package server

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// histEntry is a history Bundle entry as the tests compare it.
type histEntry struct {
	Method, URL, Status string
	Ref                 string // Type/id/_history/version, from fullUrl and etag
	HasResource         bool
}

func historyEntries(t *testing.T, h *hub, bundle map[string]any) []histEntry {
	t.Helper()
	var out []histEntry
	for _, e := range bundleEntries(bundle) {
		full := str(e, "fullUrl")
		etag := str(e, "response", "etag")
		var v int
		if _, err := fmt.Sscanf(etag, `W/"%d"`, &v); err != nil {
			t.Errorf("entry etag %q: %v", etag, err)
		}
		out = append(out, histEntry{
			Method:      str(e, "request", "method"),
			URL:         str(e, "request", "url"),
			Status:      str(e, "response", "status"),
			Ref:         fmt.Sprintf("%s/_history/%d", h.rel(full)[1:], v),
			HasResource: dig(e, "resource") != nil,
		})
		if res := dig(e, "resource"); res != nil {
			if got, want := str(res, "meta", "versionId"), fmt.Sprint(v); got != want {
				t.Errorf("%s: resource versionId %s, etag version %s", full, got, want)
			}
		}
	}
	return out
}

func TestHistory(t *testing.T) {
	h := newHub(t)
	a := h.create("Patient", patient("A"))
	pa := patient("A2")
	pa["id"] = a
	if r := h.do(http.MethodPut, "/Patient/"+a, pa); r.status != http.StatusOK {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	b := h.create("Patient", patient("B"))
	mid := h.do(http.MethodGet, "/Patient/"+b, nil)
	since := str(mid.body, "meta", "lastUpdated") // B's creation
	o := h.create("Observation", map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "poids"}})
	h.do(http.MethodDelete, "/Patient/"+a, nil)

	aV1 := histEntry{Method: "POST", URL: "Patient", Status: "201 Created", Ref: "Patient/" + a + "/_history/1", HasResource: true}
	aV2 := histEntry{Method: "PUT", URL: "Patient/" + a, Status: "200 OK", Ref: "Patient/" + a + "/_history/2", HasResource: true}
	aDel := histEntry{Method: "DELETE", URL: "Patient/" + a, Ref: "Patient/" + a + "/_history/3"}
	bV1 := histEntry{Method: "POST", URL: "Patient", Status: "201 Created", Ref: "Patient/" + b + "/_history/1", HasResource: true}
	oV1 := histEntry{Method: "POST", URL: "Observation", Status: "201 Created", Ref: "Observation/" + o + "/_history/1", HasResource: true}

	tests := []struct {
		name, path string
		want       []histEntry
	}{
		{"instance", "/Patient/" + a + "/_history", []histEntry{aDel, aV2, aV1}},
		{"type", "/Patient/_history", []histEntry{aDel, bV1, aV2, aV1}},
		{"system", "/_history", []histEntry{aDel, oV1, bV1, aV2, aV1}},
		{"system _since", "/_history?_since=" + url.QueryEscape(since), []histEntry{aDel, oV1, bV1}},
		{"type _since", "/Patient/_history?_since=" + url.QueryEscape(since), []histEntry{aDel, bV1}},
		{"instance _since", "/Patient/" + a + "/_history?_since=" + url.QueryEscape(since), []histEntry{aDel}},
		{"other type", "/Observation/_history", []histEntry{oV1}},
		{"type without versions", "/Encounter/_history", nil},
		{"_since in the future", "/_history?_since=2999-01-01T00:00:00Z", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(http.MethodGet, tt.path, nil)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			if got := str(r.body, "type"); got != "history" {
				t.Errorf("Bundle.type %q, want history", got)
			}
			got := historyEntries(t, h, r.body)
			// The status of a deletion is 200 or 204 (both allowed): only its
			// presence is compared.
			for i := range got {
				if got[i].Method == "DELETE" {
					if got[i].Status != "200 OK" && got[i].Status != "204 No Content" {
						t.Errorf("deletion status %q", got[i].Status)
					}
					got[i].Status = ""
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("entries, newest first (-want +got):\n%s", diff)
			}
			if n := num(r.body, "total"); n != len(tt.want) {
				t.Errorf("total %d, want %d", n, len(tt.want))
			}
		})
	}
	t.Run("malformed _since", func(t *testing.T) {
		is := wantOutcome(t, h.do(http.MethodGet, "/_history?_since=yesterday", nil), http.StatusBadRequest)
		if diff := cmp.Diff([]string{"_since"}, expressions(is)); diff != "" {
			t.Errorf("expressions (-want +got):\n%s", diff)
		}
	})
	t.Run("malformed _count", func(t *testing.T) {
		wantOutcome(t, h.do(http.MethodGet, "/_history?_count=many", nil), http.StatusBadRequest)
	})
}

// TestHistoryRequestOfUpdateAsCreate checks entry.request of versions that
// a PUT created: the interaction was PUT Type/id, not POST Type.
func TestHistoryRequestOfUpdateAsCreate(t *testing.T) {
	h := newHub(t)
	p := patient("Martin")
	p["id"] = "chosen"
	h.do(http.MethodPut, "/Patient/chosen", p)                            // v1: update-as-create
	h.do(http.MethodDelete, "/Patient/chosen", nil)                       // v2
	if r := h.do(http.MethodPut, "/Patient/chosen", p); r.status != 201 { // v3: re-creation
		t.Fatalf("re-creation: status %d: %s", r.status, r.raw)
	}
	r := h.do(http.MethodGet, "/Patient/chosen/_history", nil)
	var got []string
	for _, e := range bundleEntries(r.body) {
		got = append(got, str(e, "request", "method")+" "+str(e, "request", "url"))
	}
	// Bundle.entry.request of a history says how the version was made: a
	// version created by PUT is "PUT Patient/<id>" ("POST Patient",
	// replayed, would create a resource with another id; the hub once
	// listed every create as POST).
	want := []string{"PUT Patient/chosen", "DELETE Patient/chosen", "PUT Patient/chosen"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request of each version, newest first (-want +got):\n%s", diff)
	}
}

// TestHistoryPaging follows next links with a small _count and checks that
// every version is visited exactly once, newest first, even while writes
// happen between pages.
func TestHistoryPaging(t *testing.T) {
	h := newHub(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, h.create("Patient", patient(fmt.Sprint("P", i))))
	}
	for v := range 6 { // Patient ids[0] gets versions 2..7
		p := patient(fmt.Sprint("P0 v", v+2))
		p["id"] = ids[0]
		h.do(http.MethodPut, "/Patient/"+ids[0], p)
	}
	h.do(http.MethodDelete, "/Patient/"+ids[1], nil)
	h.create("Observation", map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "x"}})

	tests := []struct{ name, path string }{
		{"instance", "/Patient/" + ids[0] + "/_history"},
		{"type", "/Patient/_history"},
		{"system", "/_history"},
	}
	for _, tt := range tests {
		for _, count := range []int{1, 3, 5, 50} {
			t.Run(fmt.Sprintf("%s _count=%d", tt.name, count), func(t *testing.T) {
				versions := h.total(tt.path) // grows with the writes of earlier subtests
				if versions < 7 {
					t.Fatalf("%d versions, want at least 7", versions)
				}
				visited := map[string]int{}
				var order []time.Time
				next := fmt.Sprintf("%s?_count=%d", tt.path, count)
				pages := 0
				for next != "" {
					pages++
					if pages > versions+2 {
						t.Fatalf("more than %d pages: the next links loop", pages)
					}
					r := h.do(http.MethodGet, next, nil)
					if r.status != http.StatusOK {
						t.Fatalf("GET %s: status %d: %s", next, r.status, r.raw)
					}
					page := bundleEntries(r.body)
					if len(page) > count {
						t.Errorf("page of %d entries, _count=%d", len(page), count)
					}
					if pages == 1 {
						// A write after the first page must not shift the
						// following ones.
						h.create("Patient", patient("late"))
					}
					for _, e := range page {
						visited[str(e, "fullUrl")+" "+str(e, "response", "etag")]++
						at, err := time.Parse(time.RFC3339Nano, str(e, "response", "lastModified"))
						if err != nil {
							t.Fatalf("lastModified: %v", err)
						}
						order = append(order, at)
					}
					next = linkURL(r.body, "next")
					if next != "" {
						next = h.rel(next)
					}
				}
				if len(visited) != versions {
					t.Errorf("visited %d distinct versions, want %d", len(visited), versions)
				}
				for v, n := range visited {
					if n != 1 {
						t.Errorf("%s visited %d times", v, n)
					}
				}
				for i := 1; i < len(order); i++ {
					if order[i].After(order[i-1]) {
						t.Errorf("entry %d (%s) is newer than entry %d (%s): want newest first", i, order[i], i-1, order[i-1])
					}
				}
			})
		}
	}
	t.Run("_count=0 gives the total only", func(t *testing.T) {
		r := h.do(http.MethodGet, "/Patient/"+ids[0]+"/_history?_count=0", nil)
		if n := num(r.body, "total"); n != 7 || len(bundleEntries(r.body)) != 0 {
			t.Errorf("total %d with %d entries, want 7 with none", n, len(bundleEntries(r.body)))
		}
	})
}

// TestHistoryStrictParameters: under Prefer handling=strict, history
// refuses what it does not support instead of ignoring it.
func TestHistoryStrictParameters(t *testing.T) {
	h := newHub(t)
	id := h.create("Patient", patient("Hist"))
	for _, path := range []string{"/Patient/" + id + "/_history?nickname=x", "/_history?nickname=x", "/Patient/_history?_at=notadate"} {
		r := h.do(http.MethodGet, path, nil, "Prefer", "handling=strict")
		if r.status != http.StatusBadRequest || str(r.body, "resourceType") != "OperationOutcome" {
			t.Errorf("strict %s: %d, want 400: %.200s", path, r.status, r.raw)
		}
	}
	if r := h.do(http.MethodGet, "/Patient/"+id+"/_history?nickname=x", nil); r.status != http.StatusOK {
		t.Errorf("lenient unknown parameter: %d, want 200", r.status)
	}
	if r := h.do(http.MethodGet, "/Patient/"+id+"/_history?_since=2020-01-01T00:00:00Z&_at=2026&_count=5", nil, "Prefer", "handling=strict"); r.status != http.StatusOK {
		t.Errorf("strict with _since, _at and _count: %d, want 200: %.200s", r.status, r.raw)
	}
}

// TestHistoryAt: _at keeps the versions current at some point of the
// period its date covers (it was ignored: every version came back).
func TestHistoryAt(t *testing.T) {
	h := newHub(t)
	res := patient("At")
	id := h.create("Patient", res)
	var times []string // lastUpdated of versions 1, 2, 3
	for v := 1; v <= 3; v++ {
		if v > 1 {
			time.Sleep(5 * time.Millisecond)
			res["id"] = id
			res["gender"] = []string{"", "", "male", "female"}[v]
			if r := h.do(http.MethodPut, "/Patient/"+id, res); r.status != http.StatusOK {
				t.Fatalf("update: %d %s", r.status, r.raw)
			}
		}
		r := h.do(http.MethodGet, "/Patient/"+id+"/_history/"+strconv.Itoa(v), nil)
		times = append(times, str(r.body, "meta", "lastUpdated"))
	}
	versions := func(path string) []string {
		r := h.do(http.MethodGet, path, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, r.status, r.raw)
		}
		var out []string
		for _, e := range anySlice(r.body["entry"]) {
			out = append(out, str(e, "resource", "meta", "versionId"))
		}
		slices.Sort(out)
		return out
	}
	later := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	for at, want := range map[string][]string{
		times[0]:               {"1"},
		times[1]:               {"2"}, // v1 was current until v2's instant, not at it
		times[0][:10]:          {"1", "2", "3"},
		later:                  {"3"},
		"2000-01-01T00:00:00Z": nil,
	} {
		for _, path := range []string{"/Patient/" + id + "/_history", "/Patient/_history"} {
			if got := versions(path + "?_at=" + url.QueryEscape(at)); !slices.Equal(got, want) {
				t.Errorf("%s?_at=%s: versions %v, want %v", path, at, got, want)
			}
		}
	}
}
