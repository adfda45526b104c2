package pathway_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/server/pathway"
)

// goldenResources reads the resources of the mappers' golden cases
// (mappings/*/testdata/*.txtar, the result.json part).
func goldenResources(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob("../../mappings/*/testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, result, ok := strings.Cut(string(data), "-- result.json --\n")
		if !ok {
			continue
		}
		if i := strings.Index(result, "\n-- "); i >= 0 {
			result = result[:i]
		}
		var r struct {
			Bundle struct {
				Entry []struct {
					Resource json.RawMessage `json:"resource"`
				} `json:"entry"`
			} `json:"bundle"`
		}
		if err := json.Unmarshal([]byte(result), &r); err != nil || len(r.Bundle.Entry) == 0 {
			continue
		}
		var list []json.RawMessage
		for _, e := range r.Bundle.Entry {
			list = append(list, e.Resource)
		}
		raw, _ := json.Marshal(list)
		out = append(out, raw)
	}
	return out
}

// FuzzFacts: any JSON array of objects gives a Patient with sorted facts,
// and Detect and Episodes run over it without panicking.
func FuzzFacts(f *testing.F) {
	for _, seed := range goldenResources(f) {
		f.Add(seed)
	}
	f.Add([]byte(`[{"resourceType":"Patient","birthDate":"1955"},{"resourceType":"Encounter","period":{"end":"2026-02-30"}}]`))
	rules, err := pathway.DefaultRules()
	if err != nil {
		f.Fatal(err)
	}
	asOf := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var list []any
		if json.Unmarshal(data, &list) != nil {
			return
		}
		var rs []map[string]any
		for _, v := range list {
			m, _ := v.(map[string]any)
			rs = append(rs, m) // nil entries included on purpose
		}
		p := pathway.Facts(rs)
		if !slices.IsSortedFunc(p.Facts, func(a, b pathway.Fact) int { return a.Start.Compare(b.Start) }) {
			t.Errorf("facts not sorted by Start")
		}
		for _, fa := range p.Facts {
			if fa.Ref == "" || fa.Type == "" {
				t.Errorf("fact without ref or type: %+v", fa)
			}
		}
		for _, fi := range pathway.Detect(rules, p, asOf) {
			if fi.Key == "" || fi.Status == "" {
				t.Errorf("finding without key or status: %+v", fi)
			}
		}
		pathway.Episodes(p)
	})
}

// FuzzParseRule: the parser never panics, and what it accepts survives a
// JSON round trip.
func FuzzParseRule(f *testing.F) {
	var rules []json.RawMessage
	if err := json.Unmarshal(pathway.DefaultRulesJSON, &rules); err != nil {
		f.Fatal(err)
	}
	for _, r := range rules {
		f.Add([]byte(r))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := pathway.ParseRule(data)
		if err != nil {
			return
		}
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pathway.ParseRule(raw); err != nil {
			t.Errorf("accepted rule does not parse back: %v\n%s", err, raw)
		}
	})
}
