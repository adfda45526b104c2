package fhirjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/outcome"
)

// stdDecode is the reference: encoding/json with UseNumber, refusing
// what FHIR JSON refuses beyond JSON (encoding/json takes both): invalid
// UTF-8 and a key repeated in an object.
func stdDecode(b []byte) (any, error) {
	if !json.Valid(b) {
		return nil, errors.New("invalid JSON")
	}
	if !utf8.Valid(b) {
		return nil, errors.New("invalid UTF-8")
	}
	if repeatedKey(b) {
		return nil, errors.New("repeated key")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

var seeds = []string{
	`{"resourceType":"Patient","id":"a","active":true,"deceasedBoolean":false,"x":null}`,
	`{"a":[1,-2,3.50,1e3,-0.0,2E-7,0],"b":{},"c":[]}`,
	`{"s":"é\u00e9\ud83d\ude00 \" \\ \/ \b\f\n\r\t","bad":"\ud800","x":"\ud800\u0041"}`,
	"{\"raw\":\"\xff\xfe ok\"}",
	`{"a":1,"b":{"a":2,"c":[{"a":1},{"a":2}]},"a":3}`, `{"a":{"x":1,"x":2}}`, `{"a":[{"k":1,"j":2,"k":3}]}`,
	` { "a" : [ { } , [ ] ] } `,
	`{"a":1}x`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `{"a":"\x"}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`,
	`{"a":tru}`, `{"a":"` + "\x01" + `"}`, `{"a":"unterminated`, `{`, ``, `"str"`, `[1,2]`, `{"a":[1 2]}`,
}

// repeatedKey reports whether an object of the (valid) JSON b names a
// key twice.
func repeatedKey(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && top.object {
					top.key = true // the object or array is a value
				}
				stack = append(stack, &frame{object: t == '{', keys: map[string]bool{}, key: t == '{'})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].key = true
				}
			}
			continue
		case string:
			if top != nil && top.object && top.key {
				if top.keys[t] {
					return true
				}
				top.keys[t] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.object {
			top.key = true // a value was read: a key comes next
		}
	}
}

func TestParseMatchesEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		t.Run(s, func(t *testing.T) { compareWithStd(t, []byte(s)) })
	}
}

func compareWithStd(t *testing.T, b []byte) {
	t.Helper()
	want, werr := stdDecode(b)
	got, gerr := parse(b)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("error mismatch for %q: encoding/json %v, parse %v", b, werr, gerr)
	}
	if werr == nil {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("value mismatch for %q (-want +got):\n%s", b, diff)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { compareWithStd(t, b) })
}

// TestParseOfficialExamples decodes every official R4 example both ways.
func TestParseOfficialExamples(t *testing.T) {
	files, _ := filepath.Glob("../../../shared/corpus/fhir-r4-examples/instances/*.json")
	local, _ := filepath.Glob("../../testdata/fhir/*.json")
	files = append(files, local...)
	if len(files) == 0 {
		t.Fatal("no example files: testdata/fhir should always be present")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		compareWithStd(t, b)
	}
}

func TestDecodeErrorPosition(t *testing.T) {
	_, err := Decode([]byte("{\n  \"resourceType\": \"Patient\",\n  \"active\": tru\n}"))
	e, ok := outcome.As(err)
	if !ok {
		t.Fatalf("want *outcome.Error, got %v", err)
	}
	if e.Status != 400 || e.Issues[0].Line != 3 || e.Issues[0].Column != 13 || e.Issues[0].Code != outcome.CodeStructure {
		t.Errorf("got status %d issue %+v, want 400 structure at line 3 column 13", e.Status, e.Issues[0])
	}
	for _, body := range []string{"", "  ", "[1]", `"x"`} {
		if _, err := Decode([]byte(body)); outcome.StatusOf(err) != 400 {
			t.Errorf("Decode(%q) = %v, want a 400", body, err)
		}
	}
}

func TestMarshalOrderAndRoundTrip(t *testing.T) {
	in := `{"name":[{"family":"Dupont"}],"meta":{"versionId":"1"},"id":"x","resourceType":"Patient","text":{"div":"<div>a & b</div>"},"v":1.50}`
	m, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got := string(Marshal(m))
	want := `{"resourceType":"Patient","id":"x","meta":{"versionId":"1"},"name":[{"family":"Dupont"}],"text":{"div":"<div>a & b</div>"},"v":1.50}`
	if got != want {
		t.Errorf("Marshal:\n got %s\nwant %s", got, want)
	}
}

func BenchmarkDecode(b *testing.B) {
	files, _ := filepath.Glob("../../testdata/fhir/*.json")
	var bodies [][]byte
	size := 0
	for _, f := range files {
		x, _ := os.ReadFile(f)
		bodies = append(bodies, x)
		size += len(x)
	}
	b.Run("parcours", func(b *testing.B) {
		b.SetBytes(int64(size))
		for i := 0; i < b.N; i++ {
			for _, x := range bodies {
				if _, err := parse(x); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(size))
		for i := 0; i < b.N; i++ {
			for _, x := range bodies {
				if _, err := stdDecode(x); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// syntheaBundles reads the Synthea patient bundles of the shared corpus
// (transactions of 70 to 400 resources), skipping when it is absent.
func syntheaBundles(b *testing.B) [][]byte {
	files, _ := filepath.Glob("../../../shared/corpus/synthea/smart-on-fhir-generated-sample-data-r4/[A-Z]*_*.json")
	if len(files) == 0 {
		b.Skip("Synthea corpus absent at ../../../shared/corpus (CI provides it beside the repository)")
	}
	var bodies [][]byte
	for _, f := range files {
		x, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, x)
	}
	return bodies
}

// BenchmarkDecodeSynthea decodes one Synthea patient bundle per op (the
// body of a transaction).
func BenchmarkDecodeSynthea(b *testing.B) {
	bodies := syntheaBundles(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := Decode(bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMarshalSynthea encodes, per op, the resources of one Synthea
// patient bundle one by one (as the store does).
func BenchmarkMarshalSynthea(b *testing.B) {
	var bundles [][]map[string]any
	for _, body := range syntheaBundles(b) {
		m, err := Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		var rs []map[string]any
		for _, e := range m["entry"].([]any) {
			rs = append(rs, e.(map[string]any)["resource"].(map[string]any))
		}
		bundles = append(bundles, rs)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, r := range bundles[i%len(bundles)] {
			Marshal(r)
		}
		i++
	}
}
