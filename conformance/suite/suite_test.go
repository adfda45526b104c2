package suite_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/conformance/suite"
	"github.com/parcours-sante/parcours/server"
)

// hub builds the real Parcours hub in process. It is the one place that
// builds the hub for these tests (credentials go here when the hub requires
// them).
func hub(t *testing.T) http.Handler {
	t.Helper()
	// The REST semantics, without security (the command's test runs the
	// suite through the dev tokens and the policy).
	s, err := server.New(server.Config{DataDir: t.TempDir(), Insecure: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the hub: %v", err)
		}
	})
	return s.Handler()
}

// serve serves h over HTTP on 127.0.0.1:0 and returns a Config for its FHIR
// base.
func serve(t *testing.T, h http.Handler) suite.Config {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return suite.Config{URL: ts.URL + "/fhir", Client: ts.Client()}
}

// validator returns the official R4 JSON-schema validator of package
// conformance (which adds 4.0.1 to the schema's FHIRVersion enum: the
// published schema predates that technical correction).
func validator(t *testing.T) func(map[string]any) error {
	t.Helper()
	v, err := conformance.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v.Validate
}

// minPassed is how many checks pass against Parcours: all of them.
const minPassed = 50

// TestParcours runs the whole suite twice against one hub: the second run
// must not trip over the first one's data.
func TestParcours(t *testing.T) {
	cfg := serve(t, hub(t))
	cfg.Validate = validator(t)
	for _, run := range []string{"first run", "second run"} {
		t.Run(run, func(t *testing.T) {
			rep, err := suite.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + rep.Table())
			if rep.Failed != 0 {
				t.Errorf("%d checks failed", rep.Failed)
			}
			if rep.Passed < minPassed {
				t.Errorf("%d checks passed, want at least %d", rep.Passed, minPassed)
			}
			if n := len(rep.Results); rep.Passed+rep.Failed+rep.Skipped != n {
				t.Errorf("counts %d+%d+%d for %d results", rep.Passed, rep.Failed, rep.Skipped, n)
			}
			for _, res := range rep.Results {
				// Against Parcours a check skips only for a capability the
				// CapabilityStatement does not declare, never for a setup.
				if res.Skipped && !strings.HasPrefix(res.Detail, "not declared") {
					t.Errorf("%s/%s skipped: %s", res.Group, res.Name, res.Detail)
				}
			}
		})
	}
}

// peer is the suite's test peer: it answers every request with status and
// body and records the headers it received. It is not a FHIR server.
type peer struct {
	status int
	body   string

	mu      sync.Mutex
	headers []http.Header
}

func (p *peer) start(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.headers = append(p.headers, r.Header.Clone())
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(p.status)
		fmt.Fprint(w, p.body)
	}))
	t.Cleanup(ts.Close)
	return ts.URL + "/fhir"
}

const serverError = `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"boom"}]}`

func result(t *testing.T, rep suite.Report, group, name string) suite.Result {
	t.Helper()
	for _, res := range rep.Results {
		if res.Group == group && res.Name == name {
			return res
		}
	}
	t.Fatalf("no result %s/%s in\n%s", group, name, rep.Table())
	return suite.Result{}
}

// TestFailuresAreReported runs the suite against peers that are not
// conformant: the failures are FAIL rows, the run goes on.
func TestFailuresAreReported(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		check  string // the metadata check that must fail
		detail string // in its detail
	}{
		{"500 everywhere", 500, serverError, "CapabilityStatement", "got 500 OperationOutcome (boom), want 200"},
		{"not a CapabilityStatement", 200, `{"resourceType":"Patient","id":"x"}`, "CapabilityStatement", "want a CapabilityStatement"},
		{"no resources", 200, `{"resourceType":"CapabilityStatement","fhirVersion":"4.0.1","rest":[{"mode":"server"}]}`,
			"CapabilityStatement", "no rest entry with mode server declaring resources"},
		{"STU3", 200, `{"resourceType":"CapabilityStatement","fhirVersion":"3.0.2","format":["json"],` +
			`"rest":[{"mode":"server","resource":[{"type":"Patient"}]}]}`, "fhirVersion 4.x", `fhirVersion "3.0.2", want 4.x`},
		{"XML only", 200, `{"resourceType":"CapabilityStatement","fhirVersion":"4.0.1","format":["xml"],` +
			`"rest":[{"mode":"server","resource":[{"type":"Patient"}]}]}`, "JSON format", "does not list json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &peer{status: tt.status, body: tt.body}
			rep, err := suite.Run(context.Background(), suite.Config{URL: p.start(t)})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			t.Log("\n" + rep.Table())
			res := result(t, rep, "metadata", tt.check)
			if res.Pass || res.Skipped || !strings.Contains(res.Detail, tt.detail) {
				t.Errorf("%s: %s %q, want FAIL with %q", tt.check, res.Status(), res.Detail, tt.detail)
			}
			if rep.Failed == 0 || !strings.Contains(rep.Table(), "FAIL") {
				t.Errorf("Failed %d, table without FAIL", rep.Failed)
			}
			// Nothing the peer does not declare is tried: every check that
			// depends on a declaration skips with a reason.
			for _, res := range rep.Results {
				if res.Skipped && res.Detail == "" {
					t.Errorf("%s/%s skipped without a reason", res.Group, res.Name)
				}
				if res.Pass && res.Group != "metadata" {
					t.Errorf("%s/%s passed against a peer that answers %d to everything: %s", res.Group, res.Name, tt.status, res.Detail)
				}
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	p := &peer{status: 500, body: serverError}
	cfg := suite.Config{URL: p.start(t), Token: "tok", Purpose: "TREAT"}
	if _, err := suite.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(p.headers) < 2 {
		t.Fatalf("%d requests, want several", len(p.headers))
	}
	for i, h := range p.headers {
		if h.Get("Authorization") != "Bearer tok" || h.Get("X-Purpose-Of-Use") != "TREAT" {
			t.Errorf("request %d: Authorization %q, X-Purpose-Of-Use %q", i, h.Get("Authorization"), h.Get("X-Purpose-Of-Use"))
		}
	}
	if got := p.headers[0].Get("Accept"); got != "application/fhir+json" {
		t.Errorf("Accept %q, want application/fhir+json", got)
	}
}

func TestValidityReportsInvalidResources(t *testing.T) {
	p := &peer{status: 500, body: serverError}
	var calls int
	cfg := suite.Config{URL: p.start(t), Validate: func(res map[string]any) error {
		calls++
		return errors.New("issue.severity: bad")
	}}
	rep, err := suite.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := result(t, rep, "validity", "returned resources valid")
	want := fmt.Sprintf("%d of %d invalid: OperationOutcome in metadata/CapabilityStatement: issue.severity: bad", calls, calls)
	if res.Pass || res.Skipped || !strings.HasPrefix(res.Detail, want) {
		t.Errorf("validity %s %q, want FAIL starting %q", res.Status(), res.Detail, want)
	}

	rep, err = suite.Run(context.Background(), suite.Config{URL: cfg.URL})
	if err != nil {
		t.Fatal(err)
	}
	if res := result(t, rep, "validity", "returned resources valid"); !res.Skipped {
		t.Errorf("validity without a validator: %s %q, want SKIP", res.Status(), res.Detail)
	}
}

func TestRunErrors(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	closed := ts.URL + "/fhir"
	ts.Close()
	for _, url := range []string{closed, "", "ftp://example.org/fhir", "not a url"} {
		t.Run(url, func(t *testing.T) {
			rep, err := suite.Run(context.Background(), suite.Config{URL: url})
			if err == nil {
				t.Fatalf("Run(%q): no error, report\n%s", url, rep.Table())
			}
			if len(rep.Results) != 0 {
				t.Errorf("Run(%q) failed with %d results", url, len(rep.Results))
			}
		})
	}
}

func TestTable(t *testing.T) {
	rep := suite.Report{
		Results: []suite.Result{
			{Group: "crud", Name: "create", Pass: true, Detail: "201 Patient/1", Duration: time.Millisecond},
			{Group: "crud", Name: "read", Detail: "GET Patient/{id}: got 500, want 200"},
			{Group: "search", Name: "Patient name", Skipped: true, Detail: "not declared: Patient search parameter name"},
		},
		Passed: 1, Failed: 1, Skipped: 1,
	}
	want := `GROUP   CHECK         RESULT  DETAIL
crud    create        PASS    201 Patient/1
crud    read          FAIL    GET Patient/{id}: got 500, want 200
search  Patient name  SKIP    not declared: Patient search parameter name
1 passed, 1 failed, 1 skipped
`
	if got := rep.Table(); got != want {
		t.Errorf("Table:\n%s\nwant:\n%s", got, want)
	}
}
