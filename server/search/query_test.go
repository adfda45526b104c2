package search

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/parcours-sante/parcours/server/store"
)

// The correctness tests load resources into a real store (indexed by
// Extract at write time) and compare the ids each query finds with the
// ids computed by walking the stored resources in plain Go: the
// expectations below read the JSON directly and apply the R4 search rules
// themselves; they share no code with the engine.

const testBase = "https://hub.example/fhir"

// fixture is a store holding resources, and the resources as stored.
type fixture struct {
	db  *store.DB
	res map[string][]map[string]any // by type, with id and meta set
}

// newFixture stores the resources, one commit per resource type, a day
// apart (so that _lastUpdated tells them apart).
func newFixture(t testing.TB, resources []map[string]any) *fixture {
	t.Helper()
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	db, err := store.Open(filepath.Join(t.TempDir(), "parcours.db"), store.Options{
		Indexer: func(typ string, res map[string]any) []store.IndexEntry { return Default().Extract(typ, res, testBase) },
		Now:     func() time.Time { return clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, res: map[string][]map[string]any{}}
	byType := map[string][]map[string]any{}
	var types []string
	for _, r := range resources {
		typ := r["resourceType"].(string)
		if byType[typ] == nil {
			types = append(types, typ)
		}
		byType[typ] = append(byType[typ], r)
	}
	slices.Sort(types)
	for _, typ := range types {
		clock = clock.AddDate(0, 0, 1)
		if err := db.Update(context.Background(), func(tx *store.Tx) error {
			for _, r := range byType[typ] {
				if _, err := tx.Put(typ, r["id"].(string), r); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		f.res[typ] = byType[typ]
	}
	return f
}

// search runs a query with the engine and returns the ids found.
func (f *fixture) search(t *testing.T, typ, query string) []string {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Default().Parse(typ, q, testBase)
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, query, err)
	}
	if len(parsed.Unknown) > 0 {
		t.Fatalf("%s?%s: not understood: %v", typ, query, parsed.Unknown)
	}
	var ids []string
	if err := f.db.View(func(tx *store.Tx) error {
		ids, err = parsed.IDs(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// expect walks the stored resources of typ.
func (f *fixture) expect(typ string, match func(r map[string]any) bool) []string {
	var ids []string
	for _, r := range f.res[typ] {
		if match(r) {
			ids = append(ids, r["id"].(string))
		}
	}
	slices.Sort(ids)
	return ids
}

// check is one query and the condition a resource must meet to match.
type check struct {
	typ, query string
	match      func(r map[string]any) bool
	// some: the dataset must hold a match (the check discriminates).
	some bool
}

// run runs the checks twice: by scanning the indexes, and by checking
// the criteria on each candidate (the path a selective first criterion
// takes), every resource of the type being a candidate.
func (f *fixture) run(t *testing.T, checks []check) {
	f.runChecks(t, checks, false)
	limit := checkLimit
	checkLimit = 1 << 30
	defer func() { checkLimit = limit }()
	t.Run("by candidate", func(t *testing.T) { f.runChecks(t, checks, true) })
}

func (f *fixture) runChecks(t *testing.T, checks []check, candidates bool) {
	for _, c := range checks {
		t.Run(c.typ+"?"+c.query, func(t *testing.T) {
			want := f.expect(c.typ, c.match)
			query := c.query
			if candidates {
				var all []string
				for _, r := range f.res[c.typ] {
					all = append(all, r["id"].(string))
				}
				query = "_id=" + strings.Join(all, ",") + "&" + query
			}
			got := f.search(t, c.typ, query)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if c.some && len(want) == 0 {
				t.Errorf("no resource of the dataset matches: the check tests nothing")
			}
		})
	}
}

// --- Walking FHIR JSON, independently of the engine.

// at returns the values at a path of element names, arrays flattened.
func at(v any, path ...string) []any {
	cur := []any{v}
	for _, name := range path {
		var next []any
		for _, x := range cur {
			m, ok := x.(map[string]any)
			if !ok {
				continue
			}
			switch e := m[name].(type) {
			case nil:
			case []any:
				next = append(next, e...)
			default:
				next = append(next, e)
			}
		}
		cur = next
	}
	return cur
}

func strsAt(v any, path ...string) []string {
	var out []string
	for _, x := range at(v, path...) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// choiceOf returns the value of a choice element (effective[x]) and its
// type suffix.
func choiceOf(r map[string]any, name string) (string, any) {
	for k, v := range r {
		if strings.HasPrefix(k, name) && len(k) > len(name) && unicode.IsUpper(rune(k[len(name)])) {
			return k[len(name):], v
		}
	}
	return "", nil
}

type codingT struct{ system, code, display string }

// codingsAt reads the Codings of CodeableConcepts (or Codings) at a path.
func codingsAt(v any, path ...string) []codingT {
	var out []codingT
	for _, x := range at(v, path...) {
		m, _ := x.(map[string]any)
		list := at(m, "coding")
		if _, isCoding := m["code"]; isCoding {
			list = append(list, m)
		}
		for _, c := range list {
			cm := c.(map[string]any)
			s, _ := cm["system"].(string)
			cd, _ := cm["code"].(string)
			d, _ := cm["display"].(string)
			out = append(out, codingT{s, cd, d})
		}
	}
	return out
}

// tokenIs applies a token search value (code, |code, system|code,
// system|) to codings.
func tokenIs(q string, cs []codingT) bool {
	sys, code, piped := strings.Cut(q, "|")
	if !piped {
		code, sys = q, ""
	}
	for _, c := range cs {
		switch {
		case !piped && c.code == code:
			return true
		case piped && code == "" && c.system == sys:
			return true
		case piped && code != "" && c.system == sys && c.code == code:
			return true
		}
	}
	return false
}

// fold is the string comparison form: lower case, without accents.
func fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, _ := transform.String(t, s)
	return strings.ToLower(strings.Join(strings.Fields(out), " "))
}

func anyString(ss []string, f func(string) bool) bool { return slices.ContainsFunc(ss, f) }

// span is the time a FHIR date covers: [lo, end) at its precision.
type span struct{ lo, end time.Time }

func spanOf(s string) (span, bool) {
	var layout string
	var next func(time.Time) time.Time
	switch {
	case len(s) == 4:
		layout, next = "2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
	case len(s) == 7:
		layout, next = "2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	case len(s) == 10:
		layout, next = "2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	default:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return span{}, false
		}
		step := time.Second
		if i := strings.IndexByte(s, '.'); i > 0 {
			digits := strings.IndexAny(s[i+1:], "Z+-")
			step = time.Duration(math.Pow10(9 - digits))
		}
		return span{t.UTC(), t.UTC().Add(step)}, true
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return span{}, false
	}
	return span{t, next(t)}, true
}

var (
	beginning = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	ending    = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// spansOf reads a date value: a date string or a Period.
func spansOf(v any) []span {
	switch x := v.(type) {
	case string:
		if s, ok := spanOf(x); ok {
			return []span{s}
		}
	case map[string]any:
		start, _ := x["start"].(string)
		end, _ := x["end"].(string)
		if start == "" && end == "" {
			return nil
		}
		sp := span{beginning, ending}
		if s, ok := spanOf(start); ok {
			sp.lo = s.lo
		}
		if e, ok := spanOf(end); ok {
			sp.end = e.end
		}
		return []span{sp}
	}
	return nil
}

// dateQuery applies an R4 date search value to spans: any may match.
func dateQuery(q string, spans []span) bool {
	prefix, v := "eq", q
	if len(q) > 2 && q[0] >= 'a' && q[0] <= 'z' {
		prefix, v = q[:2], q[2:]
	}
	s, ok := spanOf(v)
	if !ok {
		panic("bad test date " + q)
	}
	if prefix == "ap" {
		gap := time.Since(s.lo).Abs() / 10
		s = span{s.lo.Add(-gap), s.end.Add(gap)}
	}
	for _, t := range spans {
		inside := !t.lo.Before(s.lo) && !t.end.After(s.end)
		var m bool
		switch prefix {
		case "eq":
			m = inside
		case "ne":
			m = !inside
		case "gt": // the range above the value overlaps the target
			m = t.end.After(s.end)
		case "lt":
			m = t.lo.Before(s.lo)
		case "ge":
			m = t.end.After(s.end) || inside
		case "le":
			m = t.lo.Before(s.lo) || inside
		case "sa":
			m = !t.lo.Before(s.end)
		case "eb":
			m = !t.end.After(s.lo)
		case "ap":
			m = t.lo.Before(s.end) && t.end.After(s.lo)
		}
		if m {
			return true
		}
	}
	return false
}

// numQuery applies a number search value (with prefix) to values: equality
// is within the precision of the value written (100 is 99.5 to 100.5).
func numQuery(q string, values []float64) bool {
	prefix, v := "eq", q
	if len(q) > 2 && q[0] >= 'a' && q[0] <= 'z' {
		prefix, v = q[:2], q[2:]
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		panic("bad test number " + q)
	}
	decimals := 0
	if i := strings.IndexByte(v, '.'); i >= 0 {
		decimals = len(v) - i - 1
	}
	half := 0.5 / math.Pow(10, float64(decimals))
	for _, f := range values {
		var m bool
		switch prefix {
		case "eq":
			m = f >= x-half && f < x+half
		case "ne":
			m = f < x-half || f >= x+half
		case "gt", "sa":
			m = f > x
		case "lt", "eb":
			m = f < x
		case "ge":
			m = f >= x
		case "le":
			m = f <= x
		case "ap":
			d := math.Max(math.Abs(x)/10, half)
			m = f >= x-d && f <= x+d
		}
		if m {
			return true
		}
	}
	return false
}

func floatsAt(v any, path ...string) []float64 {
	var out []float64
	for _, x := range at(v, path...) {
		if f, ok := number(x); ok {
			out = append(out, f)
		}
	}
	return out
}

// refIs compares a stored reference with "Type/id" (absolute URLs of the
// test server count as relative).
func refIs(ref any, want string) bool {
	m, _ := ref.(map[string]any)
	s, _ := m["reference"].(string)
	s = strings.TrimPrefix(s, testBase+"/")
	return s == want
}

func anyRef(r map[string]any, want string, path ...string) bool {
	for _, x := range at(r, path...) {
		if refIs(x, want) {
			return true
		}
	}
	return false
}

// refID is the "Type/id" of a reference (this server's absolute URL made
// relative), "" for others.
func refID(ref any) string {
	m, _ := ref.(map[string]any)
	s, _ := m["reference"].(string)
	s = strings.TrimPrefix(s, testBase+"/")
	if strings.Contains(s, ":") {
		return ""
	}
	return s
}

func (f *fixture) byID(typ, id string) map[string]any {
	for _, r := range f.res[typ] {
		if r["id"] == id {
			return r
		}
	}
	return nil
}

// --- The checks.

func obsDate(r map[string]any) []span {
	_, v := choiceOf(r, "effective")
	return spansOf(v)
}

func obsQuantities(r map[string]any) []map[string]any {
	var out []map[string]any
	if r["valueQuantity"] != nil {
		out = append(out, r["valueQuantity"].(map[string]any))
	}
	return out
}

func quantityQuery(q string, qs []map[string]any) bool {
	parts := strings.Split(q, "|")
	for _, x := range qs {
		f, _ := number(x["value"])
		if !numQuery(parts[0], []float64{f}) {
			continue
		}
		if len(parts) == 3 {
			sys, _ := x["system"].(string)
			code, _ := x["code"].(string)
			unit, _ := x["unit"].(string)
			if code == "" {
				code = unit
			}
			if code != parts[2] || (parts[1] != "" && sys != parts[1]) {
				continue
			}
		}
		return true
	}
	return false
}

func (f *fixture) checks() []check {
	patient := func(r map[string]any) map[string]any {
		id := refID(r["subject"])
		if !strings.HasPrefix(id, "Patient/") {
			return nil
		}
		return f.byID("Patient", strings.TrimPrefix(id, "Patient/"))
	}
	name := func(r map[string]any) []string {
		var out []string
		for _, k := range []string{"text", "family", "given", "prefix", "suffix"} {
			out = append(out, strsAt(r, "name", k)...)
		}
		return out
	}
	var cs []check
	// token
	for _, q := range []string{"http://loinc.org|4548-4", "4548-4", "|4548-4", "http://loinc.org|", "4548-4,29463-7", "http://snomed.info/sct|4548-4"} {
		cs = append(cs, check{"Observation", "code=" + url.QueryEscape(q), func(r map[string]any) bool {
			for _, alt := range strings.Split(q, ",") {
				if tokenIs(alt, codingsAt(r, "code")) {
					return true
				}
			}
			return false
		}, !strings.HasPrefix(q, "|") && !strings.Contains(q, "snomed")})
	}
	cs = append(cs,
		check{"Observation", "code:not=http://loinc.org|4548-4", func(r map[string]any) bool { return !tokenIs("http://loinc.org|4548-4", codingsAt(r, "code")) }, true},
		check{"Observation", "code:text=hemoglobine", func(r map[string]any) bool {
			texts := strsAt(r, "code", "text")
			for _, c := range codingsAt(r, "code") {
				texts = append(texts, c.display)
			}
			return anyString(texts, func(s string) bool { return strings.HasPrefix(fold(s), "hemoglobine") })
		}, true},
		check{"Observation", "status=final", func(r map[string]any) bool { return r["status"] == "final" }, true},
		check{"Observation", "status=final,amended&category=vital-signs", func(r map[string]any) bool {
			return (r["status"] == "final" || r["status"] == "amended") && tokenIs("vital-signs", codingsAt(r, "category"))
		}, true},
		check{"Observation", "status=final&status:not=amended&code=4548-4", func(r map[string]any) bool {
			return r["status"] == "final" && tokenIs("4548-4", codingsAt(r, "code"))
		}, true},
		check{"Patient", "gender=female", func(r map[string]any) bool { return r["gender"] == "female" }, true},
		check{"Patient", "active=true", func(r map[string]any) bool { return r["active"] == true }, true},
		check{"Patient", "identifier=urn:sys|e1", func(r map[string]any) bool {
			return slices.ContainsFunc(at(r, "identifier"), func(x any) bool { m := x.(map[string]any); return m["system"] == "urn:sys" && m["value"] == "e1" })
		}, true},
		check{"Patient", "identifier=urn:sys|", func(r map[string]any) bool {
			return slices.ContainsFunc(at(r, "identifier"), func(x any) bool { return x.(map[string]any)["system"] == "urn:sys" })
		}, true},
		check{"Patient", "identifier:of-type=" + url.QueryEscape("http://terminology.hl7.org/CodeSystem/v2-0203|NI|261044212345637"), func(r map[string]any) bool {
			for _, x := range at(r, "identifier") {
				if x.(map[string]any)["value"] == "261044212345637" && tokenIs("http://terminology.hl7.org/CodeSystem/v2-0203|NI", codingsAt(x, "type")) {
					return true
				}
			}
			return false
		}, true},
		check{"Patient", "telecom=phone|0601020304", func(r map[string]any) bool {
			return slices.ContainsFunc(at(r, "telecom"), func(x any) bool { m := x.(map[string]any); return m["system"] == "phone" && m["value"] == "0601020304" })
		}, true},
		check{"Patient", "_tag=urn:parcours:tag|demo", func(r map[string]any) bool { return tokenIs("urn:parcours:tag|demo", codingsAt(r, "meta", "tag")) }, true},
		check{"Patient", "_security=R", func(r map[string]any) bool { return tokenIs("R", codingsAt(r, "meta", "security")) }, true},
		check{"Patient", "_id=p-eloise,p-zoe,nobody", func(r map[string]any) bool { return r["id"] == "p-eloise" || r["id"] == "p-zoe" }, true},
	)
	// string
	for _, q := range []string{"lef", "LEFÈVRE", "dupont", "martin", "zz"} {
		cs = append(cs, check{"Patient", "family=" + url.QueryEscape(q), func(r map[string]any) bool {
			return anyString(strsAt(r, "name", "family"), func(s string) bool { return strings.HasPrefix(fold(s), fold(q)) })
		}, q != "zz"})
	}
	cs = append(cs,
		check{"Patient", "family:exact=Martin", func(r map[string]any) bool { return slices.Contains(strsAt(r, "name", "family"), "Martin") }, true},
		check{"Patient", "family:exact=martin", func(r map[string]any) bool { return slices.Contains(strsAt(r, "name", "family"), "martin") }, false},
		check{"Patient", "family:contains=mart", func(r map[string]any) bool {
			return anyString(strsAt(r, "name", "family"), func(s string) bool { return strings.Contains(fold(s), "mart") })
		}, true},
		check{"Patient", "name=eloi", func(r map[string]any) bool {
			return anyString(name(r), func(s string) bool { return strings.HasPrefix(fold(s), "eloi") })
		}, true},
		check{"Patient", "address-city=saint-etienne", func(r map[string]any) bool {
			return anyString(strsAt(r, "address", "city"), func(s string) bool { return strings.HasPrefix(fold(s), "saint-etienne") })
		}, true},
		check{"Patient", "address=69", func(r map[string]any) bool {
			var parts []string
			for _, k := range []string{"text", "line", "city", "district", "state", "postalCode", "country"} {
				parts = append(parts, strsAt(r, "address", k)...)
			}
			return anyString(parts, func(s string) bool { return strings.HasPrefix(fold(s), "69") })
		}, true},
	)
	// date
	for _, q := range []string{"2023", "2023-01-11", "eq2024-03", "ne2023", "gt2023-01-11", "lt2023", "ge2023-01-11T08:00:00Z", "le2021", "sa2023-01-11", "eb2024-02", "ap2024-02-01"} {
		cs = append(cs, check{"Observation", "date=" + url.QueryEscape(q), func(r map[string]any) bool { return dateQuery(q, obsDate(r)) }, true})
	}
	for _, q := range []string{"2023-01-11", "gt2023-01-11", "lt2019-06-02", "ge2024", "le2019-06-01", "sa2023-01-12", "eb2023", "ne2023-01", "ap2023-01-11"} {
		cs = append(cs, check{"Encounter", "date=" + url.QueryEscape(q), func(r map[string]any) bool { return dateQuery(q, spansOf(r["period"])) }, false})
	}
	for _, q := range []string{"1961-04-12", "1961", "lt1960", "gt1961-04-12", "ge2001-12-05", "le1950-06", "ne1961-04-12"} {
		cs = append(cs, check{"Patient", "birthdate=" + url.QueryEscape(q), func(r map[string]any) bool { return dateQuery(q, spansOf(r["birthDate"])) }, false})
	}
	cs = append(cs,
		check{"Patient", "death-date=lt2021", func(r map[string]any) bool { return dateQuery("lt2021", spansOf(r["deceasedDateTime"])) }, false},
		check{"Condition", "onset-date=ge2018-03", func(r map[string]any) bool { _, v := choiceOf(r, "onset"); return dateQuery("ge2018-03", spansOf(v)) }, false},
	)
	// _lastUpdated: the fixture commits one type per day from 2025-01-02.
	for _, q := range []string{"ge2025-01-04", "lt2025-01-06", "2025-01"} {
		for _, typ := range []string{"Observation", "Patient"} {
			cs = append(cs, check{typ, "_lastUpdated=" + q, func(r map[string]any) bool {
				return dateQuery(q, spansOf(at(r, "meta", "lastUpdated")[0]))
			}, false})
		}
	}
	// number
	for _, q := range []string{"0.25", "0.2", "gt0.2", "lt0.2", "ge0.7", "le0.125", "ne0.25", "ap0.7", "0.13", "sa0.5", "eb0.2"} {
		cs = append(cs, check{"RiskAssessment", "probability=" + q, func(r map[string]any) bool {
			return numQuery(q, floatsAt(r, "prediction", "probabilityDecimal"))
		}, false})
	}
	// quantity
	for _, q := range []string{"7.5", "7", "gt7", "lt7", "ge82.5", "le6.8", "ne7.5", "ap80", "7.5|http://unitsofmeasure.org|%", "82.5||kg", "gt1||%", "gt1|http://unitsofmeasure.org|kg", "sa82", "eb7"} {
		cs = append(cs, check{"Observation", "value-quantity=" + url.QueryEscape(q), func(r map[string]any) bool { return quantityQuery(q, obsQuantities(r)) }, false})
	}
	cs = append(cs,
		check{"Observation", "component-value-quantity=gt100", func(r map[string]any) bool {
			var qs []map[string]any
			for _, x := range at(r, "component", "valueQuantity") {
				qs = append(qs, x.(map[string]any))
			}
			return quantityQuery("gt100", qs)
		}, false},
		check{"Observation", "combo-value-quantity=gt80", func(r map[string]any) bool {
			qs := obsQuantities(r)
			for _, x := range at(r, "component", "valueQuantity") {
				qs = append(qs, x.(map[string]any))
			}
			return quantityQuery("gt80", qs)
		}, true},
	)
	// reference
	for _, q := range []string{"Patient/p-eloise", "p-eloise", testBase + "/Patient/p-zoe", "Patient/p-zoe", "Patient/nobody"} {
		want := strings.TrimPrefix(q, testBase+"/")
		if !strings.Contains(want, "/") {
			want = "Patient/" + want
		}
		cs = append(cs, check{"Observation", "subject=" + url.QueryEscape(q), func(r map[string]any) bool { return refIs(r["subject"], want) }, q != "Patient/nobody"})
	}
	cs = append(cs,
		check{"Observation", "subject:Patient=p-martin", func(r map[string]any) bool { return refIs(r["subject"], "Patient/p-martin") }, true},
		check{"Observation", "patient=p-zoe", func(r map[string]any) bool { return refIs(r["subject"], "Patient/p-zoe") }, true},
		check{"Observation", "performer=Practitioner/pr-1", func(r map[string]any) bool { return anyRef(r, "Practitioner/pr-1", "performer") }, true},
		check{"Patient", "general-practitioner=pr-1", func(r map[string]any) bool { return anyRef(r, "Practitioner/pr-1", "generalPractitioner") }, true},
		check{"Encounter", "service-provider=Organization/org-1&status=finished", func(r map[string]any) bool {
			return refIs(r["serviceProvider"], "Organization/org-1") && r["status"] == "finished"
		}, true},
	)
	// uri
	cs = append(cs,
		check{"ValueSet", "url=http://example.org/fhir/ValueSet/other", func(r map[string]any) bool { return r["url"] == "http://example.org/fhir/ValueSet/other" }, true},
		check{"ValueSet", "url:below=http://example.org/fhir/ValueSet/parcours", func(r map[string]any) bool {
			s, _ := r["url"].(string)
			return strings.HasPrefix(s, "http://example.org/fhir/ValueSet/parcours")
		}, true},
		check{"ValueSet", "url:above=http://example.org/fhir/ValueSet/parcours/stages/v2", func(r map[string]any) bool {
			s, _ := r["url"].(string)
			return s != "" && strings.HasPrefix("http://example.org/fhir/ValueSet/parcours/stages/v2", s)
		}, true},
		check{"Patient", "_profile=https://example.org/fhir/StructureDefinition/fr-patient", func(r map[string]any) bool {
			return slices.Contains(strsAt(r, "meta", "profile"), "https://example.org/fhir/StructureDefinition/fr-patient")
		}, true},
		check{"Patient", "_source=urn:src:city", func(r map[string]any) bool { return slices.Contains(strsAt(r, "meta", "source"), "urn:src:city") }, true},
	)
	// composite
	compQ := func(comps []any, code, q string) bool {
		for _, c := range comps {
			cm := c.(map[string]any)
			if tokenIs(code, codingsAt(cm, "code")) {
				if vq, ok := cm["valueQuantity"].(map[string]any); ok && quantityQuery(q, []map[string]any{vq}) {
					return true
				}
			}
		}
		return false
	}
	cs = append(cs,
		check{"Observation", "code-value-quantity=" + url.QueryEscape("http://loinc.org|4548-4$gt7"), func(r map[string]any) bool { return compQ([]any{r}, "http://loinc.org|4548-4", "gt7") }, true},
		check{"Observation", "code-value-quantity=" + url.QueryEscape("4548-4$lt7|http://unitsofmeasure.org|%"), func(r map[string]any) bool { return compQ([]any{r}, "4548-4", "lt7|http://unitsofmeasure.org|%") }, true},
		check{"Observation", "component-code-value-quantity=" + url.QueryEscape("8480-6$gt120"), func(r map[string]any) bool { return compQ(at(r, "component"), "8480-6", "gt120") }, true},
		check{"Observation", "component-code-value-quantity=" + url.QueryEscape("8462-4$gt120"), func(r map[string]any) bool { return compQ(at(r, "component"), "8462-4", "gt120") }, false},
		check{"Observation", "combo-code-value-quantity=" + url.QueryEscape("8480-6$ge128,4548-4$ge7"), func(r map[string]any) bool {
			all := append([]any{r}, at(r, "component")...)
			return compQ(all, "8480-6", "ge128") || compQ(all, "4548-4", "ge7")
		}, true},
		check{"Observation", "code-value-concept=" + url.QueryEscape("94500-6$http://snomed.info/sct|260385009"), func(r map[string]any) bool {
			return tokenIs("94500-6", codingsAt(r, "code")) && tokenIs("http://snomed.info/sct|260385009", codingsAt(r, "valueCodeableConcept"))
		}, true},
		check{"Observation", "code-value-string=" + url.QueryEscape("11502-2$resultat"), func(r map[string]any) bool {
			s, _ := r["valueString"].(string)
			return tokenIs("11502-2", codingsAt(r, "code")) && strings.HasPrefix(fold(s), "resultat")
		}, true},
		check{"Observation", "code-value-date=" + url.QueryEscape("4548-4$ge2024"), func(r map[string]any) bool {
			_, v := choiceOf(r, "value")
			return tokenIs("4548-4", codingsAt(r, "code")) && dateQuery("ge2024", spansOf(v))
		}, false},
	)
	// :missing, on every type of parameter
	cs = append(cs,
		check{"Observation", "subject:missing=true", func(r map[string]any) bool { return r["subject"] == nil }, true},
		check{"Observation", "encounter:missing=false", func(r map[string]any) bool { return r["encounter"] != nil }, true},
		check{"Observation", "value-quantity:missing=true", func(r map[string]any) bool { return r["valueQuantity"] == nil }, true},
		check{"Observation", "category:missing=true", func(r map[string]any) bool { return r["category"] == nil }, true},
		check{"Patient", "birthdate:missing=true", func(r map[string]any) bool { return r["birthDate"] == nil }, true},
		check{"Patient", "family:missing=false", func(r map[string]any) bool { return len(strsAt(r, "name", "family")) > 0 }, true},
		check{"Patient", "_profile:missing=true", func(r map[string]any) bool { return len(strsAt(r, "meta", "profile")) == 0 }, true},
		check{"Observation", "code-value-quantity:missing=false", func(r map[string]any) bool { return r["valueQuantity"] != nil }, true},
		check{"RiskAssessment", "probability:missing=false", func(r map[string]any) bool { return len(floatsAt(r, "prediction", "probabilityDecimal")) > 0 }, true},
	)
	// chains and _has
	cs = append(cs,
		check{"Observation", "subject.gender=female", func(r map[string]any) bool { p := patient(r); return p != nil && p["gender"] == "female" }, true},
		check{"Observation", "subject:Patient.family=dupont", func(r map[string]any) bool {
			p := patient(r)
			return p != nil && anyString(strsAt(p, "name", "family"), func(s string) bool { return strings.HasPrefix(fold(s), "dupont") })
		}, true},
		check{"Observation", "subject.identifier=urn:sys|e1", func(r map[string]any) bool {
			p := patient(r)
			return p != nil && slices.ContainsFunc(at(p, "identifier"), func(x any) bool { m := x.(map[string]any); return m["system"] == "urn:sys" && m["value"] == "e1" })
		}, true},
		check{"Encounter", "subject.birthdate=lt1960", func(r map[string]any) bool {
			p := patient(r)
			return p != nil && dateQuery("lt1960", spansOf(p["birthDate"]))
		}, true},
		check{"Patient", "_has:Observation:patient:code=4548-4", func(r map[string]any) bool {
			for _, o := range f.res["Observation"] {
				if refIs(o["subject"], "Patient/"+r["id"].(string)) && tokenIs("4548-4", codingsAt(o, "code")) {
					return true
				}
			}
			return false
		}, true},
		check{"Patient", "_has:Observation:subject:status=preliminary&gender=female", func(r map[string]any) bool {
			if r["gender"] != "female" {
				return false
			}
			for _, o := range f.res["Observation"] {
				if refIs(o["subject"], "Patient/"+r["id"].(string)) && o["status"] == "preliminary" {
					return true
				}
			}
			return false
		}, true},
	)
	return cs
}

func testResources(t testing.TB) []map[string]any {
	b := readResource(t, "testdata/resources.json")
	var out []map[string]any
	for _, e := range list(b["entry"]) {
		out = append(out, e.(map[string]any)["resource"].(map[string]any))
	}
	return out
}

// TestSearch runs every check on the testdata resources (a bare clone has
// them).
func TestSearch(t *testing.T) {
	f := newFixture(t, testResources(t))
	f.run(t, f.checks())
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		typ, query string
		unknown    []string // parameters reported as not understood
		invalid    bool     // a 400
	}{
		{"Patient", "nickname=x", []string{"nickname"}, false},
		{"Patient", "family:below=x", []string{"family:below"}, false},
		{"Patient", "gender:in=http://x", []string{"gender:in"}, false},
		{"Observation", "subject.subject.name=x", []string{"subject.subject.name"}, false},
		{"Observation", "status.name=x", []string{"status.name"}, false},
		{"Observation", "subject:Device.name=x", []string{"subject:Device.name"}, false},
		{"Patient", "_has:Observation:nothing:code=x", []string{"_has:Observation:nothing:code"}, false},
		{"Patient", "_text=x&_content=y", []string{"_content", "_text"}, false},
		{"Patient", "_sort=nickname", []string{"_sort"}, false},
		{"Patient", "_include=Observation:subject", []string{"_include"}, false},
		{"Patient", "_revinclude=Observation:code", []string{"_revinclude"}, false},
		{"Patient", "birthdate=yesterday", nil, true},
		{"Patient", "birthdate=2020-13", nil, true},
		{"RiskAssessment", "probability=lots", nil, true},
		{"Observation", "value-quantity=5|kg", nil, true},
		{"Observation", "code-value-quantity=4548-4", nil, true},
		{"Patient", "family:missing=maybe", nil, true},
		{"Patient", "family=", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			parsed, err := Default().Parse(tt.typ, q, testBase)
			if tt.invalid {
				if err == nil {
					t.Fatalf("no error, want a 400")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, u := range parsed.Unknown {
				names = append(names, u.Name)
				if u.Reason == "" {
					t.Errorf("%s: no reason", u.Name)
				}
			}
			if diff := cmp.Diff(tt.unknown, names); diff != "" {
				t.Errorf("unknown (-want +got):\n%s", diff)
			}
			for _, n := range tt.unknown {
				if parsed.Applied.Has(n) {
					t.Errorf("%s in Applied", n)
				}
			}
		})
	}
}

// TestSort orders matches by several keys, missing values last.
func TestSort(t *testing.T) {
	f := newFixture(t, testResources(t))
	tests := []struct {
		typ, sort string
		want      []string
	}{
		{"Patient", "birthdate", []string{"p-martin", "p-eloise", "p-zoe", "p-anon"}},
		{"Patient", "-birthdate", []string{"p-zoe", "p-eloise", "p-martin", "p-anon"}},
		{"Patient", "gender,-_id", []string{"p-zoe", "p-eloise", "p-martin", "p-anon"}},
		{"Patient", "family", []string{"p-zoe", "p-eloise", "p-martin", "p-anon"}},
		{"Observation", "-date", []string{"o-4", "o-2", "o-1", "o-6", "o-5", "o-3"}},
		{"Observation", "status,code", []string{"o-3", "o-6", "o-1", "o-2", "o-4", "o-5"}},
		{"RiskAssessment", "probability", []string{"ra-2", "ra-1"}},
		{"RiskAssessment", "-probability", []string{"ra-2", "ra-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.sort, func(t *testing.T) {
			q, err := Default().Parse(tt.typ, url.Values{"_sort": {tt.sort}}, testBase)
			if err != nil || len(q.Unknown) > 0 {
				t.Fatal(err, q.Unknown)
			}
			var got []string
			f.db.View(func(tx *store.Tx) error {
				ids, _ := q.IDs(tx)
				for _, h := range q.Order(tx, ids) {
					got = append(got, h.ID)
				}
				return nil
			})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCompartmentAndReferences checks the helpers the server builds
// compartments and includes with.
func TestCompartmentAndReferences(t *testing.T) {
	f := newFixture(t, testResources(t))
	r := Default()
	f.db.View(func(tx *store.Tx) error {
		got, ok := r.InCompartment(tx, "Patient/p-eloise", "Observation")
		if diff := cmp.Diff([]string{"o-1", "o-2"}, got); !ok || diff != "" {
			t.Errorf("Observations in Patient/p-eloise (-want +got):\n%s", diff)
		}
		got, _ = r.InCompartment(tx, "Patient/p-eloise", "Patient")
		if diff := cmp.Diff([]string{"p-zoe"}, got); diff != "" { // link
			t.Errorf("Patients in Patient/p-eloise (-want +got):\n%s", diff)
		}
		if _, ok := r.InCompartment(tx, "Patient/p-eloise", "ValueSet"); ok {
			t.Error("ValueSet in a Patient compartment")
		}
		if diff := cmp.Diff([]string{"Encounter/e-1", "Patient/p-eloise", "Practitioner/pr-1"}, r.References(tx, "Observation", "o-1", "*")); diff != "" {
			t.Errorf("references of o-1 (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"o-1", "o-2"}, r.Referring(tx, "Observation", "patient", "Patient/p-eloise")); diff != "" {
			t.Errorf("Observations referring to p-eloise (-want +got):\n%s", diff)
		}
		return nil
	})
	if !slices.Contains(CompartmentTypes("Patient"), "Observation") || CompartmentTypes("ValueSet") != nil {
		t.Error("CompartmentTypes")
	}
}

func ExampleRegistry_Parse() {
	q, err := Default().Parse("Observation", url.Values{
		"code":           {"http://loinc.org|4548-4"},
		"date":           {"ge2023"},
		"subject.family": {"Lefèvre"},
		"_sort":          {"-date"},
		"nickname":       {"x"},
		"value-quantity": {"gt7|http://unitsofmeasure.org|%"},
		"_include":       {"Observation:subject"},
	}, "")
	fmt.Println(err, len(q.Clauses), q.Unknown[0].Name, q.Sort[0].Code, q.Sort[0].Desc, q.Include[0].Param)
	// Output: <nil> 4 nickname date true subject
}

// TestNumberBeyondFloatPrecision: a value stated to more digits than a
// float64 holds matches itself (its range is narrower than the float64s
// around it), ne excludes it, and short values keep their range.
func TestNumberBeyondFloatPrecision(t *testing.T) {
	for _, c := range []struct {
		q    string
		f    float64
		want bool
	}{
		{"168.80253764416227", 168.80253764416227, true},
		{"eq2.7240913285748305", 2.7240913285748305, true},
		{"ne168.80253764416227", 168.80253764416227, false},
		{"168.80253764416227", 168.8025376441623, false},
		{"100", 99.5, true},
		{"100", 100.5, false},
	} {
		var v Value
		prefix, s := "eq", c.q
		if c.q[0] >= 'a' && c.q[0] <= 'z' {
			prefix, s = c.q[:2], c.q[2:]
		}
		v.Prefix = prefix
		if err := v.setNumber(s); err != nil {
			t.Fatal(err)
		}
		if got := numberMatches(v, c.f); got != c.want {
			t.Errorf("%s on %v: %v, want %v", c.q, c.f, got, c.want)
		}
	}
}
