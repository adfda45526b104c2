package fhirpath

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCompile checks that no text makes the parser (or the evaluation of
// what it accepts) panic. Seeds: the expressions of the test suite subset
// and of the benchmarks.
func FuzzCompile(f *testing.F) {
	for _, c := range loadSuite(f, filepath.Join("testdata", "suite-subset.xml")) {
		f.Add(c.Expression.Text)
	}
	for _, bc := range benchCases {
		f.Add(bc.expr)
	}
	patient := readJSON(f, filepath.Join("testdata", "patient-example.json"))
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Compile(src)
		if err != nil {
			if _, ok := err.(*CompileError); !ok {
				t.Fatalf("Compile(%q): error of type %T", src, err)
			}
			return
		}
		if e.String() != src {
			t.Fatalf("String() = %q", e.String())
		}
		// repeat() and aggregate() may legitimately run long on
		// adversarial input (they are bounded, not fast).
		if strings.Contains(src, "repeat") || strings.Contains(src, "aggregate") {
			return
		}
		_, _ = e.Evaluate(patient)
		_, _ = e.EvaluateBool(patient)
		_, _ = e.Locate(patient)
	})
}

// FuzzEvaluate checks that no resource shape makes an evaluation panic.
func FuzzEvaluate(f *testing.F) {
	for _, name := range []string{"patient-example.json", "observation-example.json", "synthea-observation.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw))
	}
	f.Add(`{"resourceType": "Patient", "": 1, "_": [null, {}], "name": [[1], null, {"_given": [{"id": "x"}]}]}`)
	exprs := []*Expr{
		MustCompile("descendants().select($this.toString() & type().name)"),
		MustCompile("children().ofType(Extension).value | name.given.extension('u') | value.hasValue()"),
		MustCompile("descendants().where($this = $this).resolve().count()"),
		MustCompile("repeat(children()).distinct().count() > 0 and %resource.descendants().isDistinct()"),
	}
	f.Fuzz(func(t *testing.T, src string) {
		d := json.NewDecoder(strings.NewReader(src))
		d.UseNumber()
		var v any
		if d.Decode(&v) != nil {
			return
		}
		for _, e := range exprs {
			_, _ = e.Evaluate(v)
		}
	})
}
