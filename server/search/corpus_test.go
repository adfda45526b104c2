package search

import (
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// corpusResources reads the Synthea patient bundles of the shared corpus
// with their urn:uuid references made relative (Type/id), as a transaction
// would store them. It skips the test when the corpus is absent.
func corpusResources(t testing.TB) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(corpusDir, "synthea", "*", "[A-Z]*_*.json"))
	if len(files) == 0 {
		t.Skipf("Synthea corpus absent at %s (CI provides it beside the repository): the testdata checks run without it", corpusDir)
	}
	var out []map[string]any
	for _, f := range files {
		b := readResource(t, f)
		refs := map[string]string{}
		var rs []map[string]any
		for _, e := range list(b["entry"]) {
			em := e.(map[string]any)
			r, ok := em["resource"].(map[string]any)
			if !ok {
				continue
			}
			typ, _ := r["resourceType"].(string)
			id, _ := r["id"].(string)
			full, _ := em["fullUrl"].(string)
			if id == "" {
				id = strings.TrimPrefix(full, "urn:uuid:")
				r["id"] = id
			}
			if full != "" {
				refs[full] = typ + "/" + id
			}
			rs = append(rs, r)
		}
		for _, r := range rs {
			rewriteRefs(r, refs)
		}
		out = append(out, rs...)
	}
	return out
}

func rewriteRefs(v any, refs map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x["reference"].(string); ok {
			if to, ok := refs[s]; ok {
				x["reference"] = to
			}
		}
		for _, e := range x {
			rewriteRefs(e, refs)
		}
	case []any:
		for _, e := range x {
			rewriteRefs(e, refs)
		}
	}
}

// mostFrequent is the most frequent value among those found on resources.
func mostFrequent(values []string) string {
	n := map[string]int{}
	for _, v := range values {
		n[v]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return n[keys[i]] > n[keys[j]] || n[keys[i]] == n[keys[j]] && keys[i] < keys[j] })
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

// TestSearchCorpus runs the testdata checks and checks built from the
// Synthea data (its frequent codes, its patients, its dates) over the
// testdata and every Synthea patient bundle together.
func TestSearchCorpus(t *testing.T) {
	syn := corpusResources(t)
	f := newFixture(t, append(testResources(t), syn...))
	checks := f.checks()

	// Frequent codes of several resource types, in every token form.
	for _, tc := range []struct{ typ, param, path string }{
		{"Observation", "code", "code"},
		{"Condition", "code", "code"},
		{"Immunization", "vaccine-code", "vaccineCode"},
		{"Encounter", "type", "type"},
		{"Procedure", "code", "code"},
		{"Claim", "use", ""},
	} {
		var vals []string
		for _, r := range f.res[tc.typ] {
			if tc.path == "" {
				s, _ := r["use"].(string)
				vals = append(vals, "|"+s)
				continue
			}
			for _, c := range codingsAt(r, tc.path) {
				vals = append(vals, c.system+"|"+c.code)
			}
		}
		top := mostFrequent(vals)
		if top == "" {
			t.Errorf("no %s %s in the corpus", tc.typ, tc.param)
			continue
		}
		sys, code, _ := strings.Cut(top, "|")
		queries := []string{code}
		if sys != "" {
			queries = append(queries, top, sys+"|")
		}
		for _, q := range queries {
			path := tc.path
			checks = append(checks, check{tc.typ, tc.param + "=" + url.QueryEscape(q), func(r map[string]any) bool {
				if path == "" {
					return r["use"] == code
				}
				return tokenIs(q, codingsAt(r, path))
			}, true})
		}
		if tc.path != "" {
			checks = append(checks, check{tc.typ, tc.param + ":not=" + url.QueryEscape(top), func(r map[string]any) bool { return !tokenIs(top, codingsAt(r, tc.path)) }, true})
		}
	}
	// Dates of several types, every prefix, at several precisions.
	for _, q := range []string{"2015", "ne2015", "gt2015-06", "lt2010-01-01", "ge2018-03-04T10:00:00Z", "le2012", "sa2019", "eb2008", "ap2016-05-05"} {
		checks = append(checks,
			check{"Observation", "date=" + url.QueryEscape(q), func(r map[string]any) bool { return dateQuery(q, obsDate(r)) }, true},
			check{"Encounter", "date=" + url.QueryEscape(q), func(r map[string]any) bool { return dateQuery(q, spansOf(r["period"])) }, true},
			check{"Immunization", "date=" + url.QueryEscape(q), func(r map[string]any) bool { _, v := choiceOf(r, "occurrence"); return dateQuery(q, spansOf(v)) }, true},
			check{"Claim", "created=" + url.QueryEscape(q), func(r map[string]any) bool { return dateQuery(q, spansOf(r["created"])) }, true},
		)
	}
	for _, q := range []string{"lt1970", "ge1990-01", "1993"} {
		checks = append(checks, check{"Patient", "birthdate=" + q, func(r map[string]any) bool { return dateQuery(q, spansOf(r["birthDate"])) }, false})
	}
	// Quantities: every prefix, with and without unit.
	var units []string
	for _, r := range f.res["Observation"] {
		if q, ok := r["valueQuantity"].(map[string]any); ok {
			s, _ := q["system"].(string)
			c, _ := q["code"].(string)
			units = append(units, s+"|"+c)
		}
	}
	unit := mostFrequent(units)
	for _, q := range []string{"gt100", "lt5", "ge72", "le1.5", "ne80", "ap120", "100", "5.4", "gt50|" + unit, "lt10||" + strings.SplitN(unit, "|", 2)[1]} {
		checks = append(checks, check{"Observation", "value-quantity=" + url.QueryEscape(q), func(r map[string]any) bool { return quantityQuery(q, obsQuantities(r)) }, false})
	}
	// References, chains and _has on the corpus patients.
	var pids []string
	for _, r := range f.res["Patient"] {
		pids = append(pids, r["id"].(string))
	}
	slices.Sort(pids)
	pid := pids[len(pids)/2]
	p := f.byID("Patient", pid)
	family := strsAt(p, "name", "family")[0]
	checks = append(checks,
		check{"Observation", "subject=Patient/" + pid, func(r map[string]any) bool { return refIs(r["subject"], "Patient/"+pid) }, true},
		check{"Encounter", "patient=" + pid, func(r map[string]any) bool { return refIs(r["subject"], "Patient/"+pid) }, true},
		check{"ExplanationOfBenefit", "patient=" + pid, func(r map[string]any) bool { return refIs(r["patient"], "Patient/"+pid) }, true},
		check{"Patient", "family=" + url.QueryEscape(strings.ToLower(family[:3])), func(r map[string]any) bool {
			return anyString(strsAt(r, "name", "family"), func(s string) bool { return strings.HasPrefix(fold(s), fold(family[:3])) })
		}, true},
		check{"Patient", "family:exact=" + url.QueryEscape(family), func(r map[string]any) bool { return slices.Contains(strsAt(r, "name", "family"), family) }, true},
		check{"Observation", "subject.family=" + url.QueryEscape(family), func(r map[string]any) bool {
			id := refID(r["subject"])
			q := f.byID("Patient", strings.TrimPrefix(id, "Patient/"))
			return strings.HasPrefix(id, "Patient/") && q != nil && anyString(strsAt(q, "name", "family"), func(s string) bool { return strings.HasPrefix(fold(s), fold(family)) })
		}, true},
		check{"Patient", "_has:Encounter:patient:date=ge2019", func(r map[string]any) bool {
			for _, e := range f.res["Encounter"] {
				if refIs(e["subject"], "Patient/"+r["id"].(string)) && dateQuery("ge2019", spansOf(e["period"])) {
					return true
				}
			}
			return false
		}, true},
		check{"Observation", "encounter:missing=true", func(r map[string]any) bool { return r["encounter"] == nil }, true},
		check{"Patient", "deceased=true", func(r map[string]any) bool {
			_, v := choiceOf(r, "deceased")
			return v != nil && v != false
		}, false},
		check{"Patient", "gender=male&address-state=" + url.QueryEscape(strings.ToLower(strsAt(p, "address", "state")[0])), func(r map[string]any) bool {
			st := fold(strsAt(p, "address", "state")[0])
			return r["gender"] == "male" && anyString(strsAt(r, "address", "state"), func(s string) bool { return strings.HasPrefix(fold(s), st) })
		}, true},
	)
	f.run(t, checks)
}
