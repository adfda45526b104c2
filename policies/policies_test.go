package policies_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/parcours-sante/parcours/policies"
)

// minTests is a floor on the number of Rego tests, so that a loading problem
// (a file not embedded, a package not compiled) cannot pass silently. Raise
// it when adding tests.
const minTests = 300

// load reads every .rego module (tests included) and every .json data file
// of policies.FS, the same embedded files the server loads.
func load(t *testing.T) (map[string]*ast.Module, storage.Store) {
	t.Helper()
	res, err := loader.NewFileLoader().
		WithFS(policies.FS).
		WithRegoVersion(ast.RegoV1).
		All([]string{"."})
	if err != nil {
		t.Fatalf("load policies.FS: %v", err)
	}
	store, err := res.Store()
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	return res.ParsedModules(), store
}

// TestRego runs every test_* rule of the *_test.rego files.
func TestRego(t *testing.T) {
	modules, store := load(t)
	ctx := context.Background()

	ch, err := tester.NewRunner().
		SetStore(store).
		SetModules(modules).
		SetDefaultRegoVersion(ast.RegoV1).
		RaiseBuiltinErrors(true).  // as the engine evaluates (strict builtin errors)
		SetTimeout(2*time.Minute). // the matrix sweeps are slow on a loaded 2-core machine
		RunTests(ctx, nil)
	if err != nil {
		t.Fatalf("run Rego tests: %v", err)
	}

	var passed, failed int
	for r := range ch {
		switch {
		case r.Error != nil:
			failed++
			t.Errorf("%s.%s (%s): error: %v", r.Package, r.Name, r.Location, r.Error)
		case r.Skip:
			failed++
			t.Errorf("%s.%s (%s): skipped; write the reason in the test instead", r.Package, r.Name, r.Location)
		case r.Fail:
			failed++
			msg := ""
			if r.FailedAt != nil {
				msg = " at " + r.FailedAt.String()
			}
			t.Errorf("%s.%s (%s): FAIL%s", r.Package, r.Name, r.Location, msg)
		default:
			passed++
		}
	}
	t.Logf("Rego tests: %d passed, %d failed", passed, failed)
	if total := passed + failed; total < minTests {
		t.Errorf("ran %d Rego tests, want at least %d: are all *_test.rego files embedded and compiled?", total, minTests)
	}
}

// TestEmbeddedFiles checks that every rule file has its test file and that the
// data file is embedded.
func TestEmbeddedFiles(t *testing.T) {
	names, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	rules := 0
	for _, n := range names {
		if strings.HasSuffix(n, "_test.rego") {
			continue
		}
		rules++
		if want := strings.TrimSuffix(n, ".rego") + "_test.rego"; !have[want] {
			t.Errorf("%s has no %s", n, want)
		}
	}
	if rules == 0 {
		t.Error("no rule file embedded")
	}
	if _, err := fs.Stat(policies.FS, "matrix.json"); err != nil {
		t.Errorf("matrix.json not embedded: %v", err)
	}
}

// TestDecisionAlwaysDefined evaluates the entry point the way the server does
// (prepared once, evaluated per input, test files excluded) on inputs that
// are not even objects: the decision must be a deny, never undefined.
func TestDecisionAlwaysDefined(t *testing.T) {
	modules, store := load(t)
	ctx := context.Background()

	opts := []func(*rego.Rego){
		rego.Query("data.parcours.authz.decision"),
		rego.Store(store),
		rego.SetRegoVersion(ast.RegoV1),
	}
	for name, m := range modules {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}

	tests := []struct {
		name  string
		input string
		allow bool
	}{
		{"null", `null`, false},
		{"string", `"TREAT"`, false},
		{"array", `[1,2]`, false},
		{"empty object", `{}`, false},
		{"subject not an object", `{"subject":"gp","purpose":"TREAT"}`, false},
		{"gp in care team", `{
			"now":"2026-11-22T17:30:00Z",
			"subject":{"sub":"u1","actor_type":"gp","org":"https://finess.esante.gouv.fr|750000001","purposes":["TREAT"]},
			"purpose":"TREAT","break_glass":null,"interaction":"read","resource_type":"Observation","aggregate":false,
			"resource":{"type":"Observation","id":"o1","source_org":"https://finess.esante.gouv.fr|750000002","security_labels":["N"]},
			"patient":{"pseudonym":"p-1","is_self":false,"care_team":{"member":true,"via":["encounter"]},"consents":[]}}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var input any
			if err := json.Unmarshal([]byte(tc.input), &input); err != nil {
				t.Fatal(err)
			}
			rs, err := pq.Eval(ctx, rego.EvalInput(input))
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			if len(rs) != 1 || len(rs[0].Expressions) != 1 {
				t.Fatalf("decision undefined: %v", rs)
			}
			d, ok := rs[0].Expressions[0].Value.(map[string]any)
			if !ok {
				t.Fatalf("decision is %T, want an object", rs[0].Expressions[0].Value)
			}
			for _, k := range []string{"allow", "reasons", "obligations", "legal_basis"} {
				if _, ok := d[k]; !ok {
					t.Errorf("decision has no %q: %v", k, d)
				}
			}
			if got := d["allow"]; got != tc.allow {
				t.Errorf("allow = %v, want %v (decision %v)", got, tc.allow, d)
			}
		})
	}
}
