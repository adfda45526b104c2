package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Headers of http.html: versions and preconditions, Prefer, format
// negotiation, _pretty, _summary, _elements, X-Request-Id.

func TestIfMatch(t *testing.T) {
	tests := []struct {
		name, method, ifMatch string
		status                int
		version               string // current versionId afterwards
	}{
		{"update with the current version", "PUT", `W/"1"`, http.StatusOK, "2"},
		{"update with a stale version", "PUT", `W/"2"`, http.StatusPreconditionFailed, "1"},
		{"update with a malformed If-Match", "PUT", `version one`, http.StatusBadRequest, "1"},
		{"delete with the current version", "DELETE", `W/"1"`, http.StatusOK, ""},
		{"delete with a stale version", "DELETE", `W/"7"`, http.StatusPreconditionFailed, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(t)
			id := h.create("Patient", patient("Martin"))
			var body any
			if tt.method == http.MethodPut {
				p := patient("Dupont")
				p["id"] = id
				body = p
			}
			r := h.do(tt.method, "/Patient/"+id, body, "If-Match", tt.ifMatch)
			if tt.status >= 400 {
				wantOutcome(t, r, tt.status)
			} else if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			cur := h.do(http.MethodGet, "/Patient/"+id, nil)
			if got := str(cur.body, "meta", "versionId"); got != tt.version {
				t.Errorf("current versionId %q, want %q", got, tt.version)
			}
		})
	}
	t.Run("update-as-create with If-Match", func(t *testing.T) {
		h := newHub(t)
		p := patient("Martin")
		p["id"] = "new"
		wantOutcome(t, h.do(http.MethodPut, "/Patient/new", p, "If-Match", `W/"1"`), http.StatusPreconditionFailed)
		if r := h.do(http.MethodGet, "/Patient/new", nil); r.status != http.StatusNotFound {
			t.Errorf("read: status %d, want 404 (nothing created)", r.status)
		}
	})
}

func TestConditionalRead(t *testing.T) {
	h := newHub(t)
	id := h.create("Patient", patient("Martin"))
	lastModified, err := http.ParseTime(h.do(http.MethodGet, "/Patient/"+id, nil).header.Get("Last-Modified"))
	if err != nil {
		t.Fatalf("Last-Modified: %v", err)
	}
	httpTime := func(d time.Duration) string { return lastModified.Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name, path string
		headers    []string
		status     int
	}{
		{"If-None-Match with the current ETag", "/Patient/" + id, []string{"If-None-Match", `W/"1"`}, http.StatusNotModified},
		{"If-None-Match with a list holding the current ETag", "/Patient/" + id, []string{"If-None-Match", `W/"0", W/"1"`}, http.StatusNotModified},
		{"If-None-Match with another ETag", "/Patient/" + id, []string{"If-None-Match", `W/"0"`}, http.StatusOK},
		{"If-None-Match on a vread", "/Patient/" + id + "/_history/1", []string{"If-None-Match", `W/"1"`}, http.StatusNotModified},
		{"If-Modified-Since after lastUpdated", "/Patient/" + id, []string{"If-Modified-Since", httpTime(time.Hour)}, http.StatusNotModified},
		{"If-Modified-Since at Last-Modified", "/Patient/" + id, []string{"If-Modified-Since", httpTime(0)}, http.StatusNotModified},
		{"If-Modified-Since before lastUpdated", "/Patient/" + id, []string{"If-Modified-Since", httpTime(-time.Hour)}, http.StatusOK},
		{"If-None-Match wins over If-Modified-Since", "/Patient/" + id, []string{"If-None-Match", `W/"0"`, "If-Modified-Since", httpTime(time.Hour)}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(http.MethodGet, tt.path, nil, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if r.header.Get("ETag") != `W/"1"` {
				t.Errorf("ETag %q, want W/\"1\"", r.header.Get("ETag"))
			}
			if tt.status == http.StatusNotModified && len(r.raw) != 0 {
				t.Errorf("304 with a %d-byte body", len(r.raw))
			}
			if tt.status == http.StatusOK && str(r.body, "id") != id {
				t.Errorf("200 without the resource: %.200s", r.raw)
			}
		})
	}
}

func TestPreferReturn(t *testing.T) {
	tests := []struct {
		prefer string
		want   string // resource, empty or outcome
	}{
		{"", "resource"},
		{"return=representation", "resource"},
		{"return=minimal", "empty"},
		{"return=OperationOutcome", "outcome"},
		{`handling=lenient, return="minimal"`, "empty"},
	}
	for _, tt := range tests {
		for _, method := range []string{"POST", "PUT"} {
			t.Run(method+" "+tt.prefer, func(t *testing.T) {
				h := newHub(t)
				path, status := "/Patient", http.StatusCreated
				p := patient("Martin")
				if method == http.MethodPut {
					id := h.create("Patient", patient("Martin"))
					path, status, p["id"] = "/Patient/"+id, http.StatusOK, id
				}
				r := h.do(method, path, p, "Prefer", tt.prefer)
				if r.status != status {
					t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
				}
				if r.header.Get("Location") == "" || r.header.Get("ETag") == "" {
					t.Errorf("Location %q, ETag %q: both are sent whatever the Prefer", r.header.Get("Location"), r.header.Get("ETag"))
				}
				switch tt.want {
				case "resource":
					if str(r.body, "resourceType") != "Patient" || str(r.body, "name", 0, "family") != "Martin" {
						t.Errorf("want the resource: %.300s", r.raw)
					}
				case "empty":
					if len(r.raw) != 0 {
						t.Errorf("want an empty body: %.300s", r.raw)
					}
				case "outcome":
					issues := outcomeIssues(t, r.body)
					if len(issues) == 0 || issues[0].Severity != "information" {
						t.Errorf("want an informational OperationOutcome: %.300s", r.raw)
					}
				}
			})
		}
	}
}

func TestFormatNegotiation(t *testing.T) {
	h := newHub(t)
	id := h.create("Patient", patient("Martin"))
	const fhirJSON, plainJSON = "application/fhir+json; charset=utf-8", "application/json; charset=utf-8"
	tests := []struct {
		name, path  string
		headers     []string
		status      int
		contentType string
	}{
		{"no Accept", "/Patient/" + id, nil, 200, fhirJSON},
		{"Accept FHIR JSON", "/Patient/" + id, []string{"Accept", "application/fhir+json"}, 200, fhirJSON},
		{"Accept plain JSON is answered as JSON", "/Patient/" + id, []string{"Accept", "application/json"}, 200, plainJSON},
		{"Accept of a browser", "/Patient/" + id, []string{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, 200, fhirJSON},
		{"Accept FHIR XML", "/Patient/" + id, []string{"Accept", "application/fhir+xml"}, 406, fhirJSON},
		{"Accept XML", "/metadata", []string{"Accept", "application/xml"}, 406, fhirJSON},
		{"Accept HTML only", "/Patient/" + id, []string{"Accept", "text/html"}, 406, fhirJSON},
		{"_format=xml", "/Patient/" + id + "?_format=xml", nil, 406, fhirJSON},
		{"_format=application/fhir+xml", "/Patient/" + id + "?_format=application/fhir%2Bxml", nil, 406, fhirJSON},
		{"_format=json", "/Patient/" + id + "?_format=json", nil, 200, fhirJSON},
		{"_format=application/fhir+json", "/Patient/" + id + "?_format=application/fhir%2Bjson", nil, 200, fhirJSON},
		{"_format wins over Accept", "/Patient/" + id + "?_format=json", []string{"Accept", "application/fhir+xml"}, 200, fhirJSON},
		{"_format=xml on a search", "/Patient?_format=xml", nil, 406, fhirJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(http.MethodGet, tt.path, nil, tt.headers...)
			if tt.status >= 400 {
				is := wantOutcome(t, r, tt.status)
				if is[0].Code != "not-supported" {
					t.Errorf("issue code %q, want not-supported", is[0].Code)
				}
				return
			}
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if ct := r.header.Get("Content-Type"); ct != tt.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tt.contentType)
			}
		})
	}
}

func TestRequestContentType(t *testing.T) {
	h := newHub(t)
	xml := `<Patient xmlns="http://hl7.org/fhir"><active value="true"/></Patient>`
	tests := []struct {
		name, method, path, contentType string
		body                            string
		status                          int
	}{
		{"XML create", "POST", "/Patient", "application/xml", xml, 415},
		{"FHIR XML create", "POST", "/Patient", "application/fhir+xml", xml, 415},
		{"text create", "POST", "/Patient", "text/plain", `{"resourceType":"Patient"}`, 415},
		{"XML update", "PUT", "/Patient/p1", "application/fhir+xml", xml, 415},
		{"XML bundle", "POST", "", "application/fhir+xml", `<Bundle xmlns="http://hl7.org/fhir"/>`, 415},
		{"malformed Content-Type", "POST", "/Patient", "application/", `{"resourceType":"Patient"}`, 415},
		{"plain JSON", "POST", "/Patient", "application/json", `{"resourceType":"Patient"}`, 201},
		{"FHIR JSON with charset", "POST", "/Patient", "application/fhir+json; charset=utf-8", `{"resourceType":"Patient"}`, 201},
		{"DSTU2 FHIR JSON", "POST", "/Patient", "application/json+fhir", `{"resourceType":"Patient"}`, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.total("/_history")
			r := h.do(tt.method, tt.path, tt.body, "Content-Type", tt.contentType)
			if tt.status >= 400 {
				wantOutcome(t, r, tt.status)
				if n := h.total("/_history"); n != before {
					t.Errorf("history has %d versions, want %d (nothing written)", n, before)
				}
				return
			}
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
		})
	}
}

func TestPretty(t *testing.T) {
	h := newHub(t)
	id := h.create("Patient", patient("Martin"))
	tests := []struct {
		path     string
		indented bool
	}{
		{"/Patient/" + id + "?_pretty=true", true},
		{"/Patient/" + id + "?_pretty=false", false},
		{"/Patient/" + id, false},
		{"/Patient?_pretty=true", true},
		{"/Patient/nobody?_pretty=true", true}, // errors too
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := h.do(http.MethodGet, tt.path, nil)
			if got := strings.Contains(string(r.raw), "\n  \"resourceType\""); got != tt.indented {
				t.Errorf("indented = %v, want %v: %.200s", got, tt.indented, r.raw)
			}
		})
	}
}

func TestSummaryAndElements(t *testing.T) {
	h := newHub(t)
	p := patient("Martin", "urn:sys|1")
	p["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">Jeanne Martin</div>`}
	p["gender"] = "female"
	p["birthDate"] = "1970-01-01"
	p["maritalStatus"] = map[string]any{"text": "married"}
	p["communication"] = []any{map[string]any{"language": map[string]any{"text": "français"}}}
	id := h.create("Patient", p)
	base := []string{"id", "meta", "resourceType"}
	all := []string{"birthDate", "communication", "gender", "id", "identifier", "maritalStatus", "meta", "name", "resourceType", "text"}
	tests := []struct {
		query     string
		keys      []string
		subsetted bool
		status    int
	}{
		{"_summary=true", []string{"birthDate", "gender", "id", "identifier", "meta", "name", "resourceType"}, true, 200},
		{"_summary=text", append([]string{"text"}, base...), true, 200},
		{"_summary=data", []string{"birthDate", "communication", "gender", "id", "identifier", "maritalStatus", "meta", "name", "resourceType"}, true, 200},
		{"_summary=false", all, false, 200},
		{"_elements=name", append([]string{"name"}, base...), true, 200},
		{"_elements=name,birthDate", append([]string{"birthDate", "name"}, base...), true, 200},
		{"_summary=bogus", nil, false, 400},
	}
	for _, tt := range tests {
		for _, path := range []string{"/Patient/" + id, "/Patient/" + id + "/_history/1"} {
			t.Run(path+"?"+tt.query, func(t *testing.T) {
				r := h.do(http.MethodGet, path+"?"+tt.query, nil)
				if tt.status != http.StatusOK {
					wantOutcome(t, r, tt.status)
					return
				}
				if r.status != http.StatusOK {
					t.Fatalf("status %d: %s", r.status, r.raw)
				}
				var keys []string
				for k := range r.body {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				want := slices.Sorted(slices.Values(tt.keys))
				if diff := cmp.Diff(want, keys); diff != "" {
					t.Errorf("elements (-want +got):\n%s", diff)
				}
				if got := hasSubsetted(r.body); got != tt.subsetted {
					t.Errorf("SUBSETTED tag = %v, want %v: %v", got, tt.subsetted, r.body["meta"])
				}
				if v := str(r.body, "meta", "versionId"); v != "1" {
					t.Errorf("meta.versionId %q, want 1 (kept in a subset)", v)
				}
			})
		}
	}
	if r := h.do(http.MethodGet, "/Patient/"+id, nil); hasSubsetted(r.body) || r.body["communication"] == nil {
		t.Errorf("a later plain read is subsetted: the stored resource changed: %.300s", r.raw)
	}
}

func hasSubsetted(res map[string]any) bool {
	tags, _ := dig(res, "meta", "tag").([]any)
	for _, tag := range tags {
		if str(tag, "code") == "SUBSETTED" && str(tag, "system") == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue" {
			return true
		}
	}
	return false
}

func TestRequestID(t *testing.T) {
	h := newHub(t)
	id := h.create("Patient", patient("Martin"))
	tests := []struct {
		name, method, path, body string
		headers                  []string
	}{
		{"capability", "GET", "/fhir/metadata", "", nil},
		{"read", "GET", "/fhir/Patient/" + id, "", nil},
		{"not modified", "GET", "/fhir/Patient/" + id, "", []string{"If-None-Match", `W/"1"`}},
		{"not found", "GET", "/fhir/Patient/nobody", "", nil},
		{"unknown type", "GET", "/fhir/Foo", "", nil},
		{"not acceptable", "GET", "/fhir/Patient/" + id, "", []string{"Accept", "application/fhir+xml"}},
		{"unsupported media type", "POST", "/fhir/Patient", "<Patient/>", []string{"Content-Type", "application/xml"}},
		{"malformed JSON", "POST", "/fhir/Patient", "{", []string{"Content-Type", "application/fhir+json"}},
		{"method without route", "PATCH", "/fhir/Patient/" + id, "[]", []string{"Content-Type", "application/json-patch+json"}},
		{"create", "POST", "/fhir/Patient", `{"resourceType":"Patient"}`, []string{"Content-Type", "application/fhir+json"}},
		{"batch", "POST", "/fhir", `{"resourceType":"Bundle","type":"batch"}`, []string{"Content-Type", "application/fhir+json"}},
		{"history", "GET", "/fhir/_history", "", nil},
		{"search", "GET", "/fhir/Patient", "", nil},
		{"outside /fhir", "GET", "/healthz", "", nil},
		{"unknown endpoint outside /fhir", "GET", "/nowhere", "", nil},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, h.srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(tt.headers); i += 2 {
				req.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			rid := resp.Header.Get("X-Request-Id")
			if rid == "" {
				t.Fatalf("status %d without X-Request-Id", resp.StatusCode)
			}
			if seen[rid] {
				t.Errorf("X-Request-Id %q given twice", rid)
			}
			seen[rid] = true
		})
	}
	t.Run("the caller's id is kept", func(t *testing.T) {
		r := h.do(http.MethodGet, "/Patient/"+id, nil, "X-Request-Id", "trace-42")
		if got := r.header.Get("X-Request-Id"); got != "trace-42" {
			t.Errorf("X-Request-Id %q, want trace-42", got)
		}
	})
}
