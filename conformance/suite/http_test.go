package suite

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		ref, typ, id, vid string
	}{
		{"Patient/1", "Patient", "1", ""},
		{"http://h/fhir/Patient/1/_history/2", "Patient", "1", "2"},
		{"/fhir/Observation/a.b-c/_history/7?x=1", "Observation", "a.b-c", "7"},
		{"Patient/1/", "Patient", "1", ""},
		{"urn:uuid:0e6a", "", "", ""},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			typ, id, vid := parseRef(tt.ref)
			if diff := cmp.Diff([]string{tt.typ, tt.id, tt.vid}, []string{typ, id, vid}); diff != "" {
				t.Errorf("parseRef(%q) (-want +got):\n%s", tt.ref, diff)
			}
		})
	}
}

func TestETagVersion(t *testing.T) {
	for etag, want := range map[string]string{`W/"3"`: "3", `"3"`: "3", ` W/"a1" `: "a1", "": ""} {
		if got := etagVersion(etag); got != want {
			t.Errorf("etagVersion(%q) = %q, want %q", etag, got, want)
		}
	}
}

func TestQuery(t *testing.T) {
	got := query("Patient", "identifier", "urn:x|1", "_count", "2")
	if want := "Patient?identifier=urn%3Ax%7C1&_count=2"; got != want {
		t.Errorf("query = %q, want %q", got, want)
	}
	if got := query("Patient"); got != "Patient" {
		t.Errorf("query without pairs = %q", got)
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"a  b\n c", 10, "a b c"},
		{"abcdef", 3, "abc…"},
		{"éé", 3, "é…"}, // never cut inside a rune
	}
	for _, tt := range tests {
		if got := clip(tt.in, tt.n); got != tt.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestAt(t *testing.T) {
	v := map[string]any{"entry": []any{map[string]any{"resource": map[string]any{"id": "x"}}}}
	if got := str(v, "entry", 0, "resource", "id"); got != "x" {
		t.Errorf("str = %q, want x", got)
	}
	for _, path := range [][]any{{"entry", 1, "resource"}, {"entry", -1}, {"nope", "deeper"}, {"entry", "key"}} {
		if got := at(v, path...); got != nil {
			t.Errorf("at(%v) = %v, want nil", path, got)
		}
	}
}

func TestCapabilityNeeds(t *testing.T) {
	c := parseCapability(map[string]any{"rest": []any{map[string]any{
		"mode":        "server",
		"interaction": []any{map[string]any{"code": "batch"}},
		"resource": []any{map[string]any{
			"type":              "Patient",
			"interaction":       []any{map[string]any{"code": "read"}, map[string]any{"code": "search-type"}},
			"searchParam":       []any{map[string]any{"name": "name"}},
			"searchInclude":     []any{"*"},
			"conditionalDelete": "single",
		}},
	}}})
	tests := []struct {
		name string
		err  error
		want string // "" for nil
	}{
		{"read", c.need("Patient", "read"), ""},
		{"delete", c.need("Patient", "delete"), "not declared: Patient interaction delete"},
		{"Observation", c.need("Observation", "read"), "not declared: resource type Observation"},
		{"batch", c.needSystem("batch"), ""},
		{"transaction", c.needSystem("transaction"), "not declared: system interaction transaction"},
		{"name", c.needSearch("Patient", "name"), ""},
		{"gender", c.needSearch("Patient", "gender"), "not declared: Patient search parameter gender"},
		{"include *", c.needSearch("Patient", "Patient:link"), ""},
		{"delete single", c.needConditionalDelete("Patient", "single"), ""},
		{"delete multiple", c.needConditionalDelete("Patient", "multiple"), "not declared: Patient conditionalDelete multiple (declared: single)"},
		{"versioned-update", c.needVersionedUpdate("Patient"), "not declared: Patient versioning versioned-update (declared: absent)"},
		{"none", (&capability{missing: "no CapabilityStatement"}).need("Patient", "read"), "no CapabilityStatement"},
	}
	for _, tt := range tests {
		got := ""
		if tt.err != nil {
			got = tt.err.Error()
			if _, ok := tt.err.(skipError); !ok {
				t.Errorf("%s: %T is not a skip", tt.name, tt.err)
			}
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLink(t *testing.T) {
	r := &runner{base: "http://h:8080/fhir"}
	tests := []struct{ link, want, err string }{
		{"", "", ""},
		{"http://h:8080/fhir/Patient?_offset=2", "http://h:8080/fhir/Patient?_offset=2", ""},
		{"Patient?_offset=2", "http://h:8080/fhir/Patient?_offset=2", ""},
		{"/fhir/Patient?_offset=2", "http://h:8080/fhir/Patient?_offset=2", ""},
		{"http://elsewhere/fhir/Patient", "", "not on the server at h:8080"},
		{"https://h:8080/fhir/Patient", "", "not on the server"},
	}
	for _, tt := range tests {
		got, err := r.link(tt.link)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("link(%q): error %v, want %q", tt.link, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("link(%q) = %q, %v; want %q", tt.link, got, err, tt.want)
		}
	}
}

func TestOutcome(t *testing.T) {
	resp := func(ct, body string) *response {
		x := &response{status: 404, header: http.Header{}, body: []byte(body)}
		if ct != "" {
			x.header.Set("Content-Type", ct)
		}
		var m map[string]any
		if json.Unmarshal(x.body, &m) == nil {
			x.res = m
		}
		return x
	}
	tests := []struct {
		name, ct, body string
		want           string // outcome's error, "" for nil
	}{
		{"OperationOutcome", fhirJSON, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`, ""},
		{"second issue complete", fhirJSON, `{"resourceType":"OperationOutcome","issue":[{"severity":"error"},{"severity":"error","code":"processing"}]}`, ""},
		// Asked for XML, a JSON-only server answers its error in JSON.
		{"JSON whatever the Content-Type", "application/fhir+xml", `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported"}]}`, ""},
		{"no issue", fhirJSON, `{"resourceType":"OperationOutcome","issue":[]}`, "GET x: answered 404, but the body is not an OperationOutcome (no issue with a severity and a code)"},
		{"issue without a code", fhirJSON, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","diagnostics":"gone"}]}`, "(no issue with a severity and a code)"},
		{"issue without a severity", fhirJSON, `{"resourceType":"OperationOutcome","issue":[{"code":"not-found"}]}`, "(no issue with a severity and a code)"},
		{"another resource", fhirJSON, `{"resourceType":"Patient","id":"x"}`, "(a Patient)"},
		{"JSON without resourceType", "application/json", `{"error":"not found"}`, "(a JSON object without a resourceType)"},
		{"text", "text/plain", "error", `(text/plain "error")`},
		{"empty", "", "", "(empty body, no Content-Type)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := resp(tt.ct, tt.body)
			err := x.outcome("GET x")
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("outcome: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("outcome: %v, want %q", err, tt.want)
			}
			if x.isOutcome() != (tt.want == "") {
				t.Errorf("isOutcome = %v", x.isOutcome())
			}
		})
	}
	// wantOutcome checks the status first.
	x := resp(fhirJSON, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`)
	if err := x.wantOutcome("GET x", http.StatusGone); err == nil || !strings.Contains(err.Error(), "got 404 OperationOutcome (not-found), want 410") {
		t.Errorf("wantOutcome(410) of a 404: %v", err)
	}
	if err := x.wantOutcome("GET x", http.StatusGone, http.StatusNotFound); err != nil {
		t.Errorf("wantOutcome(410, 404) of a 404 OperationOutcome: %v", err)
	}
}
