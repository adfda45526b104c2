package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/internal/jsontest"
	"github.com/parcours-sante/parcours/server/policy"
)

// randJSON is random JSON text, valid or not, compact or indented, with
// raw HTML characters and U+2028 in its strings at times.
func randJSON(rnd *rand.Rand) json.RawMessage {
	switch rnd.IntN(12) {
	case 0:
		return nil
	case 1:
		return json.RawMessage{}
	case 2: // invalid
		bad := []string{`{`, `{"a":}`, `[1,]`, `"unterminated`, `{"a":1}x`, `nul`, "\"tab\tin\"", `{'a':1}`, `01`, `"\x"`, ` `, `]`}
		return json.RawMessage(bad[rnd.IntN(len(bad))])
	}
	v := randValue(rnd, 3)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(rnd.IntN(2) == 0)
	if rnd.IntN(3) == 0 {
		enc.SetIndent(strings.Repeat(" ", rnd.IntN(3)), "\t")
	}
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	s := buf.String()
	if rnd.IntN(2) == 0 {
		s = strings.TrimSpace(s)
	}
	if rnd.IntN(3) == 0 { // raw U+2028/2029, as another encoder may leave them
		s = strings.NewReplacer(`\u2028`, "\u2028", `\u2029`, "\u2029").Replace(s)
	}
	return json.RawMessage(s)
}

func randValue(rnd *rand.Rand, depth int) any {
	k := rnd.IntN(7)
	if depth == 0 {
		k = rnd.IntN(4)
	}
	switch k {
	case 0:
		return jsontest.String(rnd)
	case 1:
		return rnd.Float64()*2000 - 1000
	case 2:
		return rnd.IntN(2) == 0
	case 3:
		return nil
	case 4, 5:
		m := map[string]any{}
		for range rnd.IntN(5) {
			m[jsontest.String(rnd)] = randValue(rnd, depth-1)
		}
		return m
	default:
		l := make([]any, rnd.IntN(5))
		for i := range l {
			l[i] = randValue(rnd, depth-1)
		}
		return l
	}
}

var rawType = reflect.TypeFor[json.RawMessage]()

// fillRandom sets v, a value of any type Record is made of, to random
// content (jsontest.Fill), RawMessages random JSON text.
func fillRandom(rnd *rand.Rand, v reflect.Value, full bool) { jsontest.Fill(rnd, v, full, randJSON) }

// marshalBody is the body as encoding/json writes it (the reference).
func marshalBody(r Record) ([]byte, error) {
	r.Seq, r.Prev, r.Hash = 0, "", ""
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b, []byte(zeroTail)) {
		return nil, fmt.Errorf("encoding/json does not end with %s: %s", zeroTail, b)
	}
	return b[:len(b)-len(zeroTail)], nil
}

func TestAppendString(t *testing.T) {
	cases := slices.Clone(jsontest.Pieces)
	cases = append(cases, "", "plain", "\u2028\u2029x\u202a", "a\xffb", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaa", "日本語")
	for i := range 128 {
		cases = append(cases, string(rune(i)), "x"+string([]byte{byte(128 + i)})+"y")
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		cases = append(cases, jsontest.String(rnd))
	}
	for _, s := range cases {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json %s", s, got, want)
		}
	}
}

// TestBodyEncodingJSON: the hand-written body is encoding/json's, byte
// for byte, over random records (and fails where encoding/json fails).
func TestBodyEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	failed := 0
	for i := range 20000 {
		var r Record
		fillRandom(rnd, reflect.ValueOf(&r).Elem(), false)
		want, werr := marshalBody(r)
		got, gerr := body(&r)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("record %d: encoding/json error %v, body error %v\n%#v", i, werr, gerr, r)
		}
		if werr != nil {
			failed++
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d: body differs from encoding/json\n got %s\nwant %s", i, got, want)
		}
		// And the sealed record is encoding/json of the whole record.
		r.Seq, r.Prev = uint64(i+1), strings.Repeat("ab", 32)
		stored, err := encode(&r)
		if err != nil {
			t.Fatal(err)
		}
		if whole, _ := json.Marshal(&r); !bytes.Equal(stored, whole) {
			t.Fatalf("record %d: stored form differs from encoding/json\n got %s\nwant %s", i, stored, whole)
		}
	}
	if failed == 0 || failed > 10000 {
		t.Errorf("%d of 20000 random records have invalid JSON: the generator does not test both paths", failed)
	}
}

// TestBodyFields fails when Record gains a field that appendBody does not
// write: a record with every field set writes every json name Record has.
func TestBodyFields(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	var r Record
	fillRandom(rnd, reflect.ValueOf(&r).Elem(), true)
	b, err := body(&r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(append(b, zeroTail...), &m); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(mapKeys(m))
	if diff := cmp.Diff(jsonNames(reflect.TypeFor[Record]()), got); diff != "" {
		t.Errorf("fields of the canonical JSON (-Record +appendBody):\n%s", diff)
	}
	// Bundle's fields too.
	var bm map[string]map[string]json.RawMessage
	if err := json.Unmarshal(m["bundles"], &bm); err != nil {
		t.Fatal(err)
	}
	for _, v := range bm {
		if diff := cmp.Diff(jsonNames(reflect.TypeFor[Bundle]()), slices.Sorted(mapKeys(v))); diff != "" {
			t.Errorf("fields of a bundle (-Bundle +appendBody):\n%s", diff)
		}
	}
}

// jsonNames lists the json names of the fields of struct type t, sorted.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestAppendRaw: RawMessages are written as encoding/json writes them:
// compacted, HTML characters and U+2028/2029 escaped, invalid JSON an
// error.
func TestAppendRaw(t *testing.T) {
	cases := []string{
		`{"a":1}`, `{"a": 1}`, " {\n\t\"a\" : [1 , 2]\r\n} ", `"a b"`, `"<&>"`, `{"html":"<b>&amp;</b>"}`,
		`{"k":"a\"<b"}`, `{"k":"a\\"," x":1}`, `["\u003c", "\\\"  "]`, "\"\u2028\u2029\"", "\"\xe2\x80\xa8 \"", "\"’ – €\"",
		"\"\xff\xfe\"", `1`, `-0.5e+10`, `true`, `null`, `[]`, `{}`, `"\ud800"`, "\"\xe2\x80\"",
		// invalid
		`{`, `{"a":}`, `[1,]`, `"x`, `{"a":1}x`, `nul`, "\"\t\"", `01`, `"\x"`, ` `, `]`, `{"a" 1}`, "\"\xe2",
	}
	for _, c := range cases {
		checkRaw(t, json.RawMessage(c))
	}
	rnd := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		if raw := randJSON(rnd); len(raw) > 0 {
			checkRaw(t, raw)
		}
	}
}

func checkRaw(t *testing.T, raw json.RawMessage) {
	t.Helper()
	want, werr := json.Marshal(raw)
	got, gerr := appendRaw([]byte("prefix"), raw)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%q: encoding/json error %v, appendRaw error %v", raw, werr, gerr)
	}
	if werr == nil && string(got) != "prefix"+string(want) {
		t.Fatalf("%q: appendRaw %q, encoding/json %q", raw, got, want)
	}
	if plainJSON(raw) && (werr != nil || !bytes.Equal(want, raw)) {
		t.Fatalf("%q: plainJSON true, but encoding/json writes %q (error %v)", raw, want, werr)
	}
}

// TestPlainJSON: what encoding/json writes itself (compact, HTML escaped)
// takes the fast path, down to 64 levels of nesting; deeper values take
// the slow one, which fails as encoding/json does past its limit.
func TestPlainJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	for range 20000 {
		b, err := json.Marshal(randValue(rnd, 4))
		if err != nil {
			t.Fatal(err)
		}
		if !plainJSON(b) {
			t.Fatalf("plainJSON(%q) = false for the output of encoding/json", b)
		}
	}
	for _, depth := range []int{1, 63, 64, 65, 10000, 10001} {
		for _, open := range []string{"[", `{"a":`} {
			close := map[string]string{"[": "]", `{"a":`: "}"}[open]
			raw := strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth)
			if got, want := plainJSON([]byte(raw)), depth <= 64; got != want {
				t.Errorf("plainJSON of %d levels %s = %v, want %v", depth, open, got, want)
			}
			checkRaw(t, json.RawMessage(raw))
		}
	}
}

// FuzzAppendRaw compares appendRaw with encoding/json on any bytes:
//
//	go test ./server/audit/ -run '^$' -fuzz FuzzAppendRaw -fuzztime 1m
func FuzzAppendRaw(f *testing.F) {
	for _, s := range []string{`{"a": "<b>"}`, "\"\u2028\"", `[1, 2]`, `"\\"`, "{\"a\":\"\xff\"}",
		`{"a":[1,-0.5e+3,true,false,null,{}],"b":{"c":"\u00e9\n"}}`, `[[[[{"a":[]}]]]]`, `-01`, `1.e5`, `"\uD83D"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 0 {
			checkRaw(t, raw)
		}
	})
}

// TestSetDecision: the recorded result is json.Marshal(ResultOf(d)).
func TestSetDecision(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 10))
	for i := range 20000 {
		var d policy.Decision
		fillRandom(rnd, reflect.ValueOf(&d).Elem(), i == 0)
		var r Record
		r.SetDecision(d)
		want, err := json.Marshal(ResultOf(d))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Result, want) {
			t.Fatalf("decision %d: result %s, encoding/json %s", i, r.Result, want)
		}
		if i == 0 { // every field set: every name of Result and Obligation written
			var res map[string]json.RawMessage
			var obl []map[string]json.RawMessage
			if err := json.Unmarshal(r.Result, &res); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(res["obligations"], &obl); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(jsonNames(reflect.TypeFor[Result]()), slices.Sorted(mapKeys(res))); diff != "" {
				t.Errorf("fields of the result (-Result +appendResult):\n%s", diff)
			}
			if diff := cmp.Diff(jsonNames(reflect.TypeFor[policy.Obligation]()), slices.Sorted(mapKeys(obl[0]))); diff != "" {
				t.Errorf("fields of an obligation (-Obligation +appendResult):\n%s", diff)
			}
		}
	}
}

// BenchmarkBody encodes the body of a server-like record (the sample
// records, with the result of a decision) with encoding/json, as body did,
// and by hand (appendBody); and the result of a decision (SetDecision)
// both ways.
//
//	go test ./server/audit/ -run '^$' -bench Body -benchmem
func BenchmarkBody(b *testing.B) {
	r := sample(1)
	b.Logf("body %d bytes, input %d bytes, result %d bytes", len(must(body(&r))), len(r.Input), len(r.Result))
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := marshalBody(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendBody", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := body(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
	d := policy.Decision{Allow: true, Reasons: []string{"care-team-opt-out-no-objection", "cell:gp:TREAT/COC"},
		Obligations: []policy.Obligation{{Type: "audit"}, {Type: "redact", Paths: []string{"Observation.note"}}},
		LegalBasis:  []string{"GDPR-9-2-h", "CSP-L1110-4"}, Revision: fmt.Sprintf("%064x", 42), Elapsed: 85 * time.Microsecond}
	b.Run("result-encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(ResultOf(d)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("result-appendResult", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = appendResult(make([]byte, 0, resultSize(&d)), &d)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
