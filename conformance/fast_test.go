package conformance

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// libraryValid is the library's answer with jsonRules' (the reference the
// verdict tree must match).
func libraryValid(t testing.TB, v *Validator, r map[string]any) bool {
	t.Helper()
	name, _ := r["resourceType"].(string)
	sch, err := v.schema(name)
	if err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	// The FHIR JSON rules the verdict holds besides the schema's.
	rules := issueReport{v: v, root: name, resource: r, seen: map[issueKey]bool{}}
	rules.jsonRules(r, name)
	return sch.Validate(r) == nil && len(rules.issues) == 0
}

// verdictValid is the verdict tree's answer alone.
func verdictValid(t testing.TB, v *Validator, r map[string]any) bool {
	t.Helper()
	name, _ := r["resourceType"].(string)
	n := v.verdictOf(name)
	if n == nil {
		t.Fatalf("%s has no verdict tree", name)
	}
	return n.valid(r)
}

// TestVerdictEveryType: every resource type gets a verdict tree (the FHIR
// schema uses only keywords it mirrors), so no type falls back to the
// library for valid resources.
func TestVerdictEveryType(t *testing.T) {
	v := sharedValidator(t)
	for _, name := range ResourceTypes() {
		if v.verdictOf(name) == nil {
			t.Errorf("%s: no verdict tree", name)
		}
	}
}

// TestVerdictRejectsUnmirrored: a schema keyword the tree does not mirror
// gives no tree (the library then decides), not a tree that ignores it.
func TestVerdictRejectsUnmirrored(t *testing.T) {
	for _, tc := range []struct{ name, schema string }{
		{"minLength", `{"type": "string", "minLength": 2}`},
		{"integer", `{"type": "integer"}`},
		{"oneOf", `{"oneOf": [{"type": "string"}, {"type": "number"}]}`},
		{"nested minItems", `{"type": "object", "properties": {"a": {"type": "array", "minItems": 1}}}`},
		{"number enum", `{"enum": [1, 2]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Validator{built: map[*jsonschema.Schema]*verdict{}}
			sch := compileTestSchema(t, tc.schema)
			if n := v.buildVerdict(sch); n != nil {
				t.Errorf("built a verdict tree for %s", tc.schema)
			}
			if len(v.built) != 0 {
				t.Errorf("kept %d trees of a failed build", len(v.built))
			}
		})
	}
	v := &Validator{built: map[*jsonschema.Schema]*verdict{}}
	sch := compileTestSchema(t, `{"type": "object", "required": ["a"], "additionalProperties": false, "properties": {"a": {"type": "array", "items": {"enum": ["x", "y"]}}, "b": {"const": "z"}}}`)
	n := v.buildVerdict(sch)
	if n == nil {
		t.Fatal("no verdict tree for a schema of mirrored keywords")
	}
	for in, want := range map[string]bool{
		`{"a": ["x", "y"]}`:              true,
		`{"a": ["y"], "b": "z"}`:         true,
		`{"a": ["x"], "b": "w"}`:         false,
		`{"a": ["x", "w"]}`:              false,
		`{"b": "z"}`:                     false,
		`{"a": ["x"], "c": 1}`:           false,
		`{"a": "x"}`:                     false,
		`{"a": ["x"], "b": {"z": true}}`: false,
	} {
		var x any
		if err := json.Unmarshal([]byte(in), &x); err != nil {
			t.Fatal(err)
		}
		if got, lib := n.valid(x), sch.Validate(x) == nil; got != want || lib != want {
			t.Errorf("%s: verdict %v, library %v, want %v", in, got, lib, want)
		}
	}
}

// corpusForVerdict is every resource the tests can read: the testdata
// examples, and the official examples and Synthea bundles of the shared
// corpus when present.
func corpusForVerdict(t testing.TB) []map[string]any {
	t.Helper()
	var files []string
	for _, name := range testdataExamples {
		files = append(files, testdataPath(name))
	}
	for _, glob := range []string{
		filepath.Join(corpusDir, "*.json"),
		filepath.Join(synthea, "*_*.json"),
		filepath.Join(filepath.Dir(synthea), "smart-on-fhir-generated-sample-data-r4", "[A-Z]*_*.json"),
	} {
		more, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, more...)
	}
	var out []map[string]any
	for _, f := range files {
		out = append(out, readResource(t, f))
	}
	return out
}

// TestVerdictMatchesLibrary holds the verdict tree to the library's
// answer on the corpus and on mutants of it: elements removed, added,
// given a value of another JSON type, an empty or badly spaced string, an
// unknown code, a nested resource of an unknown type. Every mutant the
// library rejects, the tree must reject (else an invalid resource would
// be stored); every one it accepts, the tree must accept (else it is no
// fast path).
func TestVerdictMatchesLibrary(t *testing.T) {
	v := sharedValidator(t)
	corpus := corpusForVerdict(t)
	rng := rand.New(rand.NewPCG(1, 2))
	mutants := 8
	if testing.Short() {
		mutants = 2
	}
	var checked, rejected int
	for _, r := range corpus {
		if lib, got := libraryValid(t, v, r), verdictValid(t, v, r); lib != got {
			t.Errorf("%s/%v: library %v, verdict %v", r["resourceType"], r["id"], lib, got)
		}
		for range mutants {
			m := deepCopy(r).(map[string]any)
			what := mutate(rng, m)
			lib, got := libraryValid(t, v, m), verdictValid(t, v, m)
			if lib != got {
				rules := issueReport{v: v, root: "x", resource: m, seen: map[issueKey]bool{}}
				rules.jsonRules(m, r["resourceType"].(string))
				t.Errorf("%s/%v mutated (%s): library %v, verdict %v; rules %v", r["resourceType"], r["id"], what, lib, got, rules.issues)
			}
			checked++
			if !lib {
				rejected++
			}
		}
	}
	if len(corpus) > 0 && (rejected == 0 || rejected == checked) {
		t.Errorf("%d mutants, %d rejected: the mutations test nothing", checked, rejected)
	}
	t.Logf("%d resources, %d mutants, %d of them invalid", len(corpus), checked, rejected)
}

// TestVerdictNonJSON: values no decoder produces (NaN, an int) are never
// valid for the tree; the library decides them.
func TestVerdictNonJSON(t *testing.T) {
	v := sharedValidator(t)
	for _, x := range []any{math.NaN(), math.Inf(1), 3, struct{}{}} {
		r := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "x"}, "valueQuantity": map[string]any{"value": x}}
		if verdictValid(t, v, r) {
			t.Errorf("value %#v: verdict valid", x)
		}
	}
}

// FuzzVerdict compares the tree and the library on arbitrary JSON.
func FuzzVerdict(f *testing.F) {
	for _, name := range testdataExamples {
		b, err := os.ReadFile(testdataPath(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"resourceType":"Patient","gender":"other","birthDate":"2020-02"}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Basic","code":{}}}]}`))
	v, err := testValidator()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r map[string]any
		if json.Unmarshal(b, &r) != nil { // float64 numbers
			return
		}
		name, _ := r["resourceType"].(string)
		if !IsResourceType(name) {
			return
		}
		if lib, got := libraryValid(t, v, r), verdictValid(t, v, r); lib != got {
			t.Errorf("library %v, verdict %v on %s", lib, got, b)
		}
	})
}

// compileTestSchema compiles a draft-06 schema of its own.
func compileTestSchema(t *testing.T, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft6)
	if err := c.AddResource("urn:test", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("urn:test")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func deepCopy(x any) any {
	switch x := x.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return x
}

// slot is a place in a resource: a key of an object or an index of an array.
type slot struct {
	obj map[string]any
	arr []any
	key string
	i   int
}

func (s slot) get() any {
	if s.obj != nil {
		return s.obj[s.key]
	}
	return s.arr[s.i]
}

func (s slot) set(x any) {
	if s.obj != nil {
		s.obj[s.key] = x
	} else {
		s.arr[s.i] = x
	}
}

func slots(x any, out []slot) []slot {
	switch x := x.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys) // map order would make the mutants random
		if i := slices.Index(keys, "resourceType"); i > 0 {
			keys[0], keys[i] = keys[i], keys[0] // first: mutate skips the root's
		}
		for _, k := range keys {
			out = append(out, slot{obj: x, key: k})
			out = slots(x[k], out)
		}
	case []any:
		for i, e := range x {
			out = append(out, slot{arr: x, i: i})
			out = slots(e, out)
		}
	}
	return out
}

// mutate changes one random place of r and says what it did.
func mutate(rng *rand.Rand, r map[string]any) string {
	all := slots(r, nil)[1:] // not the resource's own resourceType
	s := all[rng.IntN(len(all))]
	replacements := []any{
		"", " x", "x  y", "x\fy", "zz-unknown-code", "2020-13-45", "12:00", "1.5", "-0",
		json.Number("1"), json.Number("1.5e3"), true, nil,
		map[string]any{}, []any{}, []any{"x"}, map[string]any{"zzUnknown": "x"},
	}
	switch k := rng.IntN(5); {
	case k == 0 && s.obj != nil:
		delete(s.obj, s.key)
		return "delete " + s.key
	case k == 1:
		if m, ok := s.get().(map[string]any); ok {
			m["zzUnknown"] = "x"
			return "add an unknown element"
		}
	case k == 2:
		if m, ok := s.get().(map[string]any); ok {
			if _, ok := m["resourceType"]; ok {
				m["resourceType"] = []string{"Nope", "Basic", "Patient"}[rng.IntN(3)]
				return "change a nested resourceType"
			}
		}
	case k == 3:
		if str, ok := s.get().(string); ok && str != "" {
			b := []byte(str)
			b[rng.IntN(len(b))] = " aZ9-.:T\t"[rng.IntN(9)]
			s.set(string(b))
			return "change a character"
		}
	}
	x := replacements[rng.IntN(len(replacements))]
	s.set(x)
	return "replace a value"
}
