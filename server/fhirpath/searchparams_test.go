package fhirpath

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The R4 search parameters and example instances of the shared corpus;
// set FHIR_R4_EXAMPLES to the directory holding definitions/ and
// instances/ to run the tests from elsewhere.
const defaultExamplesDir = "../../../shared/corpus/fhir-r4-examples"

func examplesDir(t *testing.T) string {
	dir := os.Getenv("FHIR_R4_EXAMPLES")
	if dir == "" {
		dir = defaultExamplesDir
	}
	if _, err := os.Stat(filepath.Join(dir, "definitions", "Bundle-searchParams.json")); err != nil {
		t.Skipf("R4 examples not found (%v); set FHIR_R4_EXAMPLES to the directory holding definitions/Bundle-searchParams.json", err)
	}
	return dir
}

func readJSON(t testing.TB, path string) any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

type searchParam struct {
	id, expr string
	base     []string
	compiled *Expr
}

func loadSearchParams(t *testing.T, dir string) []searchParam {
	bundle := readJSON(t, filepath.Join(dir, "definitions", "Bundle-searchParams.json")).(map[string]any)
	var out []searchParam
	for _, e := range bundle["entry"].([]any) {
		r := e.(map[string]any)["resource"].(map[string]any)
		expr, _ := r["expression"].(string)
		if expr == "" {
			continue
		}
		sp := searchParam{id: r["id"].(string), expr: expr}
		for _, b := range r["base"].([]any) {
			sp.base = append(sp.base, b.(string))
		}
		out = append(out, sp)
	}
	return out
}

// TestSearchParameterExpressions compiles the expression of every R4
// SearchParameter, then evaluates those of each resource type on every
// example instance of that type: none may fail.
func TestSearchParameterExpressions(t *testing.T) {
	dir := examplesDir(t)
	params := loadSearchParams(t, dir)
	byType := map[string][]*searchParam{}
	failed := 0
	for i := range params {
		p := &params[i]
		e, err := Compile(p.expr)
		if err != nil {
			failed++
			t.Errorf("SearchParameter/%s: %q: %v", p.id, p.expr, err)
			continue
		}
		p.compiled = e
		for _, b := range p.base {
			byType[b] = append(byType[b], p)
		}
	}
	t.Logf("compiled %d of %d SearchParameter expressions", len(params)-failed, len(params))

	files, err := filepath.Glob(filepath.Join(dir, "instances", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var resources []map[string]any
	for _, f := range files {
		r, ok := readJSON(t, f).(map[string]any)
		if !ok {
			continue
		}
		resources = append(resources, r)
		if r["resourceType"] == "Bundle" {
			entries, _ := r["entry"].([]any)
			for _, e := range entries {
				if res, ok := e.(map[string]any)["resource"].(map[string]any); ok {
					resources = append(resources, res)
				}
			}
		}
	}
	evals, values := 0, 0
	for _, r := range resources {
		rt, _ := r["resourceType"].(string)
		for _, p := range append(byType[rt], byType["Resource"]...) {
			out, err := p.compiled.Evaluate(r)
			evals++
			values += len(out)
			if err != nil {
				t.Errorf("SearchParameter/%s on %s/%v: %v", p.id, rt, r["id"], err)
			}
		}
	}
	t.Logf("%d evaluations on %d example resources, %d values", evals, len(resources), values)
}

// TestSearchParameterValues checks a few search parameter values on the
// example instances: the choice types, resolve() stubs and as/ofType.
func TestSearchParameterValues(t *testing.T) {
	dir := examplesDir(t)
	tests := []struct {
		file, expr string
		want       []string
	}{
		{"Observation-example.json", "(Observation.value as Quantity) | (Observation.value as SampledData)", []string{`{"code":"[lb_av]","system":"http://unitsofmeasure.org","unit":"lbs","value":185}`}},
		{"Observation-example.json", "Observation.subject.where(resolve() is Patient)", []string{`{"reference":"Patient/example"}`}},
		{"Observation-example.json", "Observation.subject.where(resolve() is Group)", nil},
		{"Patient-example.json", "Patient.name.family | Practitioner.name.family", []string{`"Chalmers"`, `"Windsor"`}},
		{"Patient-example.json", "Patient.deceased.exists() and Patient.deceased != false", []string{`false`}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			r := readJSON(t, filepath.Join(dir, "instances", tt.file))
			got, err := MustCompile(tt.expr).Evaluate(r)
			if err != nil {
				t.Fatal(err)
			}
			var gotS []string
			for _, g := range got {
				b, _ := json.Marshal(g)
				gotS = append(gotS, string(b))
			}
			if strings.Join(gotS, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", gotS, tt.want)
			}
		})
	}
}
