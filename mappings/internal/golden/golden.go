// Package golden runs the golden mapping cases of the mapper packages:
// txtar files under testdata/ holding the options, the native input and the
// expected result (rows, good, issues and the Bundle) in one file. The flag
// -update rewrites the expected section from what the mapper produces
// (go test ./mappings/... -update). It also checks bundles against the
// official R4 JSON schema. Test-only: imported by _test files.
//
// The txtar format is the one of golang.org/x/tools/txtar (a comment, then
// files introduced by "-- name --" lines), implemented here in a few lines
// so that the module needs no new dependency.
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
)

var update = flag.Bool("update", false, "rewrite the expected section of golden files")

// Update reports whether -update was given.
func Update() bool { return *update }

// File is one file of an archive.
type File struct {
	Name string
	Data []byte
}

// Archive is a txtar archive.
type Archive struct {
	Comment []byte
	Files   []File
}

// Parse reads a txtar archive.
func Parse(data []byte) *Archive {
	a := &Archive{}
	var cur *File
	for len(data) > 0 {
		line := data
		rest := []byte(nil)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, rest = data[:i+1], data[i+1:]
		}
		data = rest
		if name, ok := marker(line); ok {
			a.Files = append(a.Files, File{Name: name})
			cur = &a.Files[len(a.Files)-1]
			continue
		}
		if cur == nil {
			a.Comment = append(a.Comment, line...)
		} else {
			cur.Data = append(cur.Data, line...)
		}
	}
	return a
}

func marker(line []byte) (string, bool) {
	s := strings.TrimRight(string(line), "\r\n")
	if !strings.HasPrefix(s, "-- ") || !strings.HasSuffix(s, " --") || len(s) < 7 {
		return "", false
	}
	return strings.TrimSpace(s[3 : len(s)-3]), true
}

// Format writes a txtar archive.
func Format(a *Archive) []byte {
	var b bytes.Buffer
	b.Write(fixNL(a.Comment))
	for _, f := range a.Files {
		fmt.Fprintf(&b, "-- %s --\n", f.Name)
		b.Write(fixNL(f.Data))
	}
	return b.Bytes()
}

func fixNL(b []byte) []byte {
	if len(b) == 0 || b[len(b)-1] == '\n' {
		return b
	}
	return append(b, '\n')
}

// Get returns a file's data.
func (a *Archive) Get(name string) ([]byte, bool) {
	for _, f := range a.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

func (a *Archive) set(name string, data []byte) {
	for i := range a.Files {
		if a.Files[i].Name == name {
			a.Files[i].Data = data
			return
		}
	}
	a.Files = append(a.Files, File{Name: name, Data: data})
}

// options is the options.json section.
type options struct {
	Partial bool   `json:"partial"`
	Actor   string `json:"actor"`
	Org     string `json:"org"`
	Now     string `json:"now"`
	// Prior is what the hub stores about patients (Options.Prior), by
	// INS-NIR: dated codes of kind condition (CIM-10), result (an abnormal
	// LOINC result) or medication (ATC, dispensed).
	Prior map[string][]priorFact `json:"prior"`
}

type priorFact struct {
	Kind string `json:"kind"`
	Code string `json:"code"`
	Date string `json:"date"`
}

// prior is Options.Prior for the options.json prior section.
func prior(t testing.TB, facts map[string][]priorFact) func(string) *mappings.History {
	if facts == nil {
		return nil
	}
	byINS := map[string]*mappings.History{}
	for ins, list := range facts {
		h := &mappings.History{}
		for _, f := range list {
			day := mappings.DayNumber(f.Date)
			if day == 0 {
				t.Fatalf("options.json prior: %s is not a date", f.Date)
			}
			switch f.Kind {
			case "condition":
				h.AddCondition(vocab.Coding{System: vocab.SystemCIM10, Code: f.Code}, day)
			case "result":
				h.AddResult(vocab.Coding{System: vocab.SystemLOINC, Code: f.Code}, day)
			case "medication":
				h.AddMedication(vocab.Coding{System: vocab.SystemATC, Code: f.Code}, day)
			default:
				t.Fatalf("options.json prior: kind %q is not condition, result or medication", f.Kind)
			}
		}
		byINS[ins] = h
	}
	return func(ins string) *mappings.History { return byINS[ins] }
}

// Input is the native input of an archive: the section named input.csv or
// input.ndjson.
func Input(a *Archive) ([]byte, bool) {
	if b, ok := a.Get("input.csv"); ok {
		return b, true
	}
	return a.Get("input.ndjson")
}

// Options reads the options.json section (defaults: not partial, Now
// 2025-06-30T12:00:00Z, no Prior).
func Options(t testing.TB, a *Archive) mappings.Options {
	o := options{Now: "2025-06-30T12:00:00Z"}
	if b, ok := a.Get("options.json"); ok {
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("options.json: %v", err)
		}
	}
	now, err := time.Parse(time.RFC3339, o.Now)
	if err != nil {
		t.Fatalf("options.json now: %v", err)
	}
	return mappings.Options{Partial: o.Partial, Actor: o.Actor, Org: o.Org, Now: now, Prior: prior(t, o.Prior)}
}

// Render is the result.json form of a Result.
func Render(res *mappings.Result) []byte {
	issues := make([]any, 0, len(res.Issues))
	for _, is := range res.Issues {
		m := map[string]any{"severity": is.Severity, "code": is.Code, "line": json.Number(fmt.Sprint(is.Line)), "column": json.Number(fmt.Sprint(is.Column)), "diagnostics": is.Diagnostics}
		if len(is.Expression) > 0 {
			m["expression"] = strings.Join(is.Expression, ",")
		}
		issues = append(issues, m)
	}
	out := map[string]any{
		"rows":   json.Number(fmt.Sprint(res.Rows)),
		"good":   json.Number(fmt.Sprint(res.Good)),
		"issues": issues,
		"bundle": nil,
	}
	if res.Bundle != nil {
		out["bundle"] = res.Bundle
	}
	return append(fhirjson.MarshalIndent(out), '\n')
}

// Files lists the golden archives of a directory.
func Files(t testing.TB, dir string) []string {
	files, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in %s (%v)", dir, err)
	}
	return files
}

// Run maps the input of every testdata/*.txtar with m and compares the
// result with the result.json section (or rewrites it with -update). Every
// Bundle must be valid against the R4 JSON schema.
func Run(t *testing.T, m mappings.Mapper) {
	for _, path := range Files(t, "testdata") {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := Parse(raw)
			in, ok := Input(a)
			if !ok {
				t.Fatal("no input.csv or input.ndjson section")
			}
			res, err := m.Map(bytes.NewReader(in), Options(t, a))
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if res.Bundle != nil {
				Validate(t, res.Bundle)
			}
			got := Render(res)
			if *update {
				a.set("result.json", got)
				if err := os.WriteFile(path, Format(a), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, ok := a.Get("result.json")
			if !ok {
				t.Fatal("no result.json section (run with -update)")
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

var validator = sync.OnceValues(conformance.NewValidator)

// Validate checks a resource (a Bundle checks its entries too) against the
// official R4 JSON schema, after a round trip through the wire form.
func Validate(t testing.TB, res map[string]any) {
	t.Helper()
	v, err := validator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	wire, err := fhirjson.Decode(fhirjson.Marshal(res))
	if err != nil {
		t.Fatalf("the resource does not survive a JSON round trip: %v", err)
	}
	if err := v.Validate(wire); err != nil {
		if oe, ok := outcome.As(err); ok {
			for _, is := range oe.Issues {
				t.Errorf("schema: %s %s: %s", is.Code, strings.Join(is.Expression, ","), is.Diagnostics)
			}
			return
		}
		t.Fatalf("Validate: %v", err)
	}
}

// Seeds returns the inputs of the golden files of a directory and the
// given extra files, for fuzzing.
func Seeds(t testing.TB, extra ...string) [][]byte {
	var out [][]byte
	for _, path := range Files(t, "testdata") {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if in, ok := Input(Parse(raw)); ok {
			out = append(out, in)
		}
	}
	for _, path := range extra {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// CheckResult asserts the invariants of any Result (for fuzzing): counts,
// all-or-nothing, issue positions, Bundle shape. Schema validity is left to
// the golden and demo tests: the validator at every execution starves the
// coverage-guided fuzzer.
func CheckResult(t testing.TB, res *mappings.Result, opt mappings.Options) {
	t.Helper()
	if res.Good > res.Rows || res.Good < 0 {
		t.Fatalf("Good %d, Rows %d", res.Good, res.Rows)
	}
	if !opt.Partial && len(res.Issues) > 0 && res.Bundle != nil {
		t.Fatal("a file with issues gave a Bundle without Partial")
	}
	if res.Good == 0 && res.Bundle != nil {
		t.Fatal("a Bundle without good rows")
	}
	for _, is := range res.Issues {
		if is.Line < 1 || is.Column < 0 || is.Code == "" || is.Diagnostics == "" || is.Severity != outcome.SeverityError {
			t.Fatalf("malformed issue %+v", is)
		}
	}
	if res.Bundle != nil {
		entries, _ := res.Bundle["entry"].([]any)
		if res.Bundle["type"] != "transaction" || len(entries) < 2 {
			t.Fatalf("a Bundle of type %v with %d entries", res.Bundle["type"], len(entries))
		}
		last := entries[len(entries)-1].(map[string]any)["resource"].(map[string]any)
		if last["resourceType"] != "Provenance" {
			t.Fatal("the Bundle does not end with its Provenance")
		}
		// The wire form must survive a round trip (valid UTF-8, no NaN…).
		if _, err := fhirjson.Decode(fhirjson.Marshal(res.Bundle)); err != nil {
			t.Fatalf("the Bundle is not valid JSON: %v", err)
		}
	}
}
