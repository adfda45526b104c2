package server

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/server/store"
)

// newHubWith is newHub with a tuned Config (DataDir and Logger are set
// before tune runs).
func newHubWith(t testing.TB, tune func(*Config)) *hub {
	t.Helper()
	cfg := Config{DataDir: t.TempDir(), Insecure: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tune(&cfg)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return &hub{t: t, s: s, srv: srv, url: srv.URL + "/fhir"}
}

// create posts res to /fhir/{typ} and returns the server-assigned id; any
// answer other than 201 fails the test.
func (h *hub) create(typ string, res map[string]any) string {
	h.t.Helper()
	r := h.do(http.MethodPost, "/"+typ, res)
	if r.status != http.StatusCreated {
		h.t.Fatalf("POST /%s: status %d, want 201: %.300s", typ, r.status, r.raw)
	}
	id := str(r.body, "id")
	if id == "" {
		h.t.Fatalf("POST /%s: no id in the answer: %.300s", typ, r.raw)
	}
	return id
}

// total is Bundle.total of GET path (a history or search URL), asking for no
// entries.
func (h *hub) total(path string) int {
	h.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	r := h.do(http.MethodGet, path+sep+"_count=0", nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET %s: status %d: %.300s", path, r.status, r.raw)
	}
	n, ok := r.body["total"].(float64)
	if !ok {
		h.t.Fatalf("GET %s: no total: %.300s", path, r.raw)
	}
	return int(n)
}

// rel turns an absolute URL of this hub (a Location, a link) into a path
// for hub.do.
func (h *hub) rel(u string) string {
	h.t.Helper()
	if !strings.HasPrefix(u, h.url) {
		h.t.Fatalf("URL %q is not under the hub base %s", u, h.url)
	}
	return strings.TrimPrefix(u, h.url)
}

// patient is a Patient with the given identifiers ("system|value").
func patient(family string, identifiers ...string) map[string]any {
	p := map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": family}}}
	var list []any
	for _, ident := range identifiers {
		system, value, _ := strings.Cut(ident, "|")
		list = append(list, map[string]any{"system": system, "value": value})
	}
	if list != nil {
		p["identifier"] = list
	}
	return p
}

// issue is one OperationOutcome.issue as tests compare it.
type issue struct {
	Severity, Code, Diagnostics string
	Expression                  []string
}

// wantOutcome checks that r answers status with an OperationOutcome in FHIR
// JSON, and returns its issues.
func wantOutcome(t testing.TB, r reply, status int) []issue {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %.500s", r.status, status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("Content-Type %q, want application/fhir+json", ct)
	}
	issues := outcomeIssues(t, r.body)
	if len(issues) == 0 {
		t.Errorf("OperationOutcome without issues: %s", r.raw)
	}
	return issues
}

// outcomeIssues reads the issues of an OperationOutcome resource.
func outcomeIssues(t testing.TB, oo any) []issue {
	t.Helper()
	if rt := str(oo, "resourceType"); rt != "OperationOutcome" {
		t.Fatalf("resourceType %q, want OperationOutcome: %v", rt, oo)
	}
	var out []issue
	list, _ := dig(oo, "issue").([]any)
	for _, x := range list {
		is := issue{Severity: str(x, "severity"), Code: str(x, "code"), Diagnostics: str(x, "diagnostics")}
		exprs, _ := dig(x, "expression").([]any)
		for _, e := range exprs {
			s, _ := e.(string)
			is.Expression = append(is.Expression, s)
		}
		out = append(out, is)
	}
	return out
}

// expressions lists the FHIRPath expressions of issues, sorted.
func expressions(issues []issue) []string {
	var out []string
	for _, is := range issues {
		out = append(out, is.Expression...)
	}
	slices.Sort(out)
	return out
}

// dig walks decoded JSON by object keys (string) and array indexes (int).
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k < 0 || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// str is dig for a string ("" if absent or not a string).
func str(v any, path ...any) string {
	s, _ := dig(v, path...).(string)
	return s
}

// num is dig for a JSON number decoded as float64 (-1 if absent).
func num(v any, path ...any) int {
	f, ok := dig(v, path...).(float64)
	if !ok {
		return -1
	}
	return int(f)
}

// bundleEntries returns Bundle.entry.
func bundleEntries(bundle map[string]any) []any {
	list, _ := bundle["entry"].([]any)
	return list
}

// linkURL returns the URL of the Bundle link with that relation ("" if none).
func linkURL(bundle map[string]any, relation string) string {
	list, _ := bundle["link"].([]any)
	for _, l := range list {
		if str(l, "relation") == relation {
			return str(l, "url")
		}
	}
	return ""
}

// decodeNumbers decodes JSON keeping numbers as json.Number, as the server
// stores them, so that comparisons see the lexical form of decimals.
func decodeNumbers(t testing.TB, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode: %v: %.200s", err, b)
	}
	return m
}

// mustJSON encodes v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// patientPseudonymOf is the pseudonym in domain of Patient/id, by which a
// pseudonymised caller reads it.
func patientPseudonymOf(t testing.TB, h *hub, domain, id string) string {
	t.Helper()
	var p string
	if err := h.s.db.View(func(tx *store.Tx) error {
		p = h.s.patientPseudonym(tx, domain, "Patient/"+id)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

// testINS is "system|value" of a valid INS-NIR (format and key) made from
// name: each test patient its own, as the hub refuses any other.
func testINS(name string) string {
	h := sha256.Sum256([]byte(name))
	nir := fmt.Sprintf("1%012d", binary.BigEndian.Uint64(h[:8])%1e12)
	return insSystem + "|" + nir + mappings.INSKey(nir)
}

// lineOf is the operationoutcome-issue-line of an issue (0 without one).
func lineOf(issue any) int {
	m, _ := issue.(map[string]any)
	for _, e := range anySlice(m["extension"]) {
		if str(e, "url") == "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line" {
			return num(e, "valueInteger")
		}
	}
	return 0
}
