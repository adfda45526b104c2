package fhirjson

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

// refMarshal is the encoder Marshal replaced (bytes.Buffer, sorted key
// lists, a lookup per member), kept as the reference its output must
// match byte for byte.
func refMarshal(res map[string]any) []byte {
	var buf bytes.Buffer
	refResource(&buf, res)
	return buf.Bytes()
}

func refResource(buf *bytes.Buffer, res map[string]any) {
	buf.WriteByte('{')
	first := true
	for _, k := range []string{"resourceType", "id", "meta"} {
		if v, ok := res[k]; ok {
			refKV(buf, &first, k, v)
		}
	}
	keys := make([]string, 0, len(res))
	for k := range res {
		if k != "resourceType" && k != "id" && k != "meta" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		refKV(buf, &first, k, res[k])
	}
	buf.WriteByte('}')
}

func refKV(buf *bytes.Buffer, first *bool, k string, v any) {
	if !*first {
		buf.WriteByte(',')
	}
	*first = false
	refString(buf, k)
	buf.WriteByte(':')
	refValue(buf, v)
}

func refValue(buf *bytes.Buffer, v any) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["resourceType"]; ok {
			refResource(buf, x)
			return
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		first := true
		for _, k := range keys {
			refKV(buf, &first, k, x[k])
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			refValue(buf, e)
		}
		buf.WriteByte(']')
	case string:
		refString(buf, x)
	case json.Number:
		buf.WriteString(string(x))
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	case json.RawMessage:
		buf.Write(x)
	default:
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(x)
		buf.Truncate(buf.Len() - 1)
	}
}

func refString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf.WriteString(s[start:i])
		switch c {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case '\t':
			buf.WriteString(`\t`)
		default:
			buf.WriteString(`\u00`)
			buf.WriteByte(hex[c>>4])
			buf.WriteByte(hex[c&0xf])
		}
		start = i + 1
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}

// TestMarshalMatchesReference encodes the official examples and the
// Synthea bundles (when the shared corpus is there), the testdata
// examples and odd values, and compares with the reference encoder.
func TestMarshalMatchesReference(t *testing.T) {
	files, _ := filepath.Glob("../../../shared/corpus/fhir-r4-examples/instances/*.json")
	synthea, _ := filepath.Glob("../../../shared/corpus/synthea/*/[A-Z]*_*.json")
	local, _ := filepath.Glob("../../testdata/fhir/*.json")
	files = append(append(files, synthea...), local...)
	if len(local) == 0 {
		t.Fatal("no example files: testdata/fhir should always be present")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if got, want := Marshal(m), refMarshal(m); !bytes.Equal(got, want) {
			t.Errorf("%s: Marshal differs from the reference:\n got %.300s\nwant %.300s", filepath.Base(f), got, want)
		}
	}
	odd := map[string]any{
		"resourceType": "Basic", "zz": []any{}, "a": map[string]any{}, "ctl": "a\x01\"\\\n\r\t<&>é\u2028",
		"f": 1.5, "raw": json.RawMessage(`{"x":1}`), "n": nil, "b": []any{true, false, json.Number("-0.10")},
		"contained": []any{map[string]any{"resourceType": "Patient", "meta": map[string]any{"versionId": "2"}, "active": true, "id": "p"}},
		"meta":      map[string]any{"lastUpdated": "2024-01-01T00:00:00Z"},
	}
	if got, want := Marshal(odd), refMarshal(odd); !bytes.Equal(got, want) {
		t.Errorf("Marshal differs from the reference:\n got %s\nwant %s", got, want)
	}
}

// FuzzMarshal: on any JSON object, Marshal writes what the reference
// writes, and what it writes decodes to the same value.
func FuzzMarshal(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		got := Marshal(m)
		if want := refMarshal(m); !bytes.Equal(got, want) {
			t.Fatalf("Marshal differs from the reference:\n got %s\nwant %s", got, want)
		}
		if _, err := Decode(got); err != nil {
			t.Fatalf("Marshal wrote invalid JSON %q: %v", got, err)
		}
	})
}

// TestKeyInterning: a key met once is interned; the raw bytes of a key
// are only taken for an interned key when they are that key written
// plainly, so a key first met escaped does not make its raw control
// characters valid, and concurrent parses share the table safely.
func TestKeyInterning(t *testing.T) {
	for _, tc := range []struct {
		first, then string
		ok          bool
	}{
		{`{"a\nb":1}`, "{\"a\nb\":1}", false},      // raw newline: invalid JSON
		{`{"q\"x":1}`, `{"q\"x":2}`, true},         // escaped quote, both times
		{`{"tab\tx":1}`, "{\"tab\tx\":1}", false},  // raw tab
		{`{"\u00e9t\u00e9":1}`, `{"été":1}`, true}, // escaped, then plain UTF-8
	} {
		if _, err := Decode([]byte(tc.first)); err != nil {
			t.Fatalf("%q: %v", tc.first, err)
		}
		compareWithStdT(t, []byte(tc.then))
		if _, err := Decode([]byte(tc.then)); (err == nil) != tc.ok {
			t.Errorf("Decode(%q) after %q: %v, want ok=%v", tc.then, tc.first, err, tc.ok)
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				b := []byte(`{"k` + string(rune('a'+i)) + string(rune('a'+j%26)) + `":{"shared":[1,{"x":"y"}]}}`)
				m, err := Decode(b)
				if err != nil || len(m) != 1 {
					t.Errorf("Decode(%s) = %v, %v", b, m, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if s, ok := keys.get([]byte("shared")); !ok || s != "shared" {
		t.Errorf("key %q not interned", "shared")
	}
}

// compareWithStdT is compareWithStd without stopping the test.
func compareWithStdT(t *testing.T, b []byte) {
	t.Helper()
	t.Run("", func(t *testing.T) { compareWithStd(t, b) })
}
