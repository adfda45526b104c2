package gen_test

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings"
	_ "github.com/parcours-sante/parcours/mappings/all"
	"github.com/parcours-sante/parcours/mappings/gen"
)

// generate runs the generator into memory: the files by source, and
// expected.json.
func generate(t testing.TB, cfg gen.Config) (map[string][]byte, []byte, gen.Expected) {
	t.Helper()
	bufs := map[string]*bytes.Buffer{}
	for _, s := range gen.Sources {
		bufs[s] = &bytes.Buffer{}
	}
	var expected bytes.Buffer
	exp, err := gen.Generate(cfg, gen.Writers{
		HospitalStays: bufs[gen.SourceHospital], CityActivity: bufs[gen.SourceCity],
		PreventionProgramme: bufs[gen.SourcePrevention], LiabilityClaims: bufs[gen.SourceLiability],
		Expected: &expected,
	})
	if err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	out := map[string][]byte{}
	for s, b := range bufs {
		out[s] = b.Bytes()
	}
	return out, expected.Bytes(), exp
}

func mapFile(t *testing.T, source string, data []byte, partial bool) *mappings.Result {
	t.Helper()
	m, ok := mappings.Lookup(source)
	if !ok {
		t.Fatalf("no mapper for %s", source)
	}
	res, err := m.Map(bytes.NewReader(data), mappings.Options{Partial: partial, Actor: "hospital-it", Org: "https://finess.esante.gouv.fr|750712184"})
	if err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	return res
}

func TestDeterministic(t *testing.T) {
	cfg := gen.Config{Patients: 150, Seed: 11, BadRows: 5}
	a, ea, _ := generate(t, cfg)
	b, eb, _ := generate(t, cfg)
	for _, s := range gen.Sources {
		if !bytes.Equal(a[s], b[s]) {
			t.Errorf("%s differs between two runs of the same configuration", s)
		}
	}
	if !bytes.Equal(ea, eb) {
		t.Error("expected.json differs between two runs of the same configuration")
	}
	cfg.Seed = 12
	c, _, _ := generate(t, cfg)
	for _, s := range gen.Sources {
		if bytes.Equal(a[s], c[s]) {
			t.Errorf("%s is the same for seeds 11 and 12", s)
		}
	}
}

// TestMappersAccept maps the four generated files with the real mappers:
// no issue, and the Bundles hold the resources expected.json announces
// (patients and reference data counted once across the four files, by
// their conditional-create criteria, as the hub stores them).
func TestMappersAccept(t *testing.T) {
	files, _, exp := generate(t, gen.Config{Patients: 400, Seed: 3})
	got := map[string]int{}
	shared := map[string]map[string]bool{"Patient": {}, "Organization": {}, "Practitioner": {}, "PractitionerRole": {}}
	for _, s := range gen.Sources {
		res := mapFile(t, s, files[s], false)
		if len(res.Issues) > 0 {
			t.Errorf("%s: %d issues, the first at line %d column %d: %s", s, len(res.Issues), res.Issues[0].Line, res.Issues[0].Column, res.Issues[0].Diagnostics)
			continue
		}
		fc := exp.Files[gen.FileName(s)]
		if res.Rows != fc.Rows || res.Good != fc.Rows || res.Bundle == nil {
			t.Errorf("%s: %d rows, %d good, want %d", s, res.Rows, res.Good, fc.Rows)
			continue
		}
		for _, e := range res.Bundle["entry"].([]any) {
			e := e.(map[string]any)
			typ := e["resource"].(map[string]any)["resourceType"].(string)
			if seen, ok := shared[typ]; ok {
				seen[e["request"].(map[string]any)["ifNoneExist"].(string)] = true
				continue
			}
			got[typ]++
		}
	}
	for typ, seen := range shared {
		got[typ] = len(seen)
	}
	if diff := gocmp.Diff(exp.Resources, got); diff != "" {
		t.Errorf("resources (-expected.json +bundles):\n%s", diff)
	}
	if exp.Patients.Total != exp.Patients.Linked+exp.Patients.Unlinked || exp.Patients.Total != got["Patient"] {
		t.Errorf("patients %+v, %d Patient entries", exp.Patients, got["Patient"])
	}
}

// TestBadRows: the mappers report exactly the bad rows expected.json
// lists, at their line and column, and store every other row in partial
// mode.
func TestBadRows(t *testing.T) {
	files, _, exp := generate(t, gen.Config{Patients: 150, Seed: 4, BadRows: 14})
	if len(exp.BadRows) != 14 {
		t.Fatalf("%d bad rows listed, want 14", len(exp.BadRows))
	}
	type where struct {
		Line, Column int
		Expression   string
	}
	for _, s := range gen.Sources {
		var want []where
		for _, b := range exp.BadRows {
			if b.Source == s {
				want = append(want, where{b.Line, b.Column, b.Expression})
			}
		}
		res := mapFile(t, s, files[s], false)
		var got []where
		for _, is := range res.Issues {
			got = append(got, where{is.Line, is.Column, strings.Join(is.Expression, ",")})
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("%s issues (-expected.json +mapper):\n%s", s, diff)
		}
		if res.Bundle != nil {
			t.Errorf("%s: a file with bad rows was not rejected", s)
		}
		part := mapFile(t, s, files[s], true)
		fc := exp.Files[gen.FileName(s)]
		if part.Rows != fc.Rows || part.Good != fc.Rows-fc.BadRows || fc.BadRows != len(want) {
			t.Errorf("%s partial: %d rows, %d good; expected.json: %+v", s, part.Rows, part.Good, fc)
		}
	}
}

// TestLargeFile: the large-file mode writes exactly the rows asked for,
// which the mappers accept.
func TestLargeFile(t *testing.T) {
	for _, tt := range []struct {
		source string
		rows   int
	}{{gen.SourceHospital, 3000}, {gen.SourceCity, 5000}, {gen.SourcePrevention, 300}, {gen.SourceLiability, 1000}} {
		t.Run(tt.source, func(t *testing.T) {
			var buf, expected bytes.Buffer
			w := gen.Writers{Expected: &expected}
			switch tt.source {
			case gen.SourceHospital:
				w.HospitalStays = &buf
			case gen.SourceCity:
				w.CityActivity = &buf
			case gen.SourcePrevention:
				w.PreventionProgramme = &buf
			case gen.SourceLiability:
				w.LiabilityClaims = &buf
			}
			exp, err := gen.Generate(gen.Config{Source: tt.source, Rows: tt.rows, Seed: 5}, w)
			if err != nil {
				t.Fatal(err)
			}
			if fc := exp.Files[gen.FileName(tt.source)]; fc.Rows != tt.rows || len(exp.Files) != 1 {
				t.Errorf("expected.json files %+v, want %d rows of %s only", exp.Files, tt.rows, tt.source)
			}
			res := mapFile(t, tt.source, buf.Bytes(), false)
			if res.Rows != tt.rows || len(res.Issues) > 0 {
				t.Errorf("%d rows mapped with %d issues (first %+v), want %d and none", res.Rows, len(res.Issues), res.Issues[:min(1, len(res.Issues))], tt.rows)
			}
			if exp.Rules != nil || exp.Planted != nil {
				t.Error("large-file mode reports rupture counts or planted cases")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []gen.Config{
		{Source: "pharmacy", Rows: 10},
		{Source: gen.SourceCity},
		{Patients: -1},
		{BadRows: -2},
	} {
		if _, err := gen.Generate(cfg, gen.Writers{}); err == nil {
			t.Errorf("Generate(%+v) succeeded", cfg)
		}
	}
	if _, err := gen.Generate(gen.Config{Patients: 5}, gen.Writers{}); err == nil {
		t.Error("Generate without writers succeeded")
	}
}

// TestProfessionals: RPPS numbers carry a Luhn key (but the two of
// developer mode, which predate it), and the GPs are medecine-generale.
func TestProfessionals(t *testing.T) {
	files, _, _ := generate(t, gen.Config{Patients: 300, Seed: 6})
	luhn := func(s string) bool {
		sum := 0
		for i := range len(s) {
			d := int(s[len(s)-1-i] - '0')
			if i%2 == 1 {
				if d *= 2; d > 9 {
					d -= 9
				}
			}
			sum += d
		}
		return sum%10 == 0
	}
	specialties := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(string(files[gen.SourceCity])), "\n")[1:]
	for _, l := range lines {
		f := strings.Split(l, ";")
		specialties[f[1]] = true
		if f[0] != "10000000029" && f[0] != "10000000037" && !luhn(f[0]) {
			t.Fatalf("RPPS %s has no Luhn key", f[0])
		}
	}
	var got []string
	for s := range specialties {
		got = append(got, s)
	}
	slices.SortFunc(got, cmp.Compare)
	for _, want := range []string{"medecine-generale", "pharmacie", "biologie-medicale", "cardiologie", "radiologie"} {
		if !specialties[want] {
			t.Errorf("no row by a %s professional among %v", want, got)
		}
	}
}

func ExampleGenerate() {
	var hosp, city, prev, claims bytes.Buffer
	exp, err := gen.Generate(gen.Config{Patients: 50, Seed: 1}, gen.Writers{
		HospitalStays: &hosp, CityActivity: &city, PreventionProgramme: &prev, LiabilityClaims: &claims,
	})
	if err != nil {
		panic(err)
	}
	header, _, _ := strings.Cut(city.String(), "\n")
	fmt.Println(header)
	r1 := exp.Rules["R1"]
	fmt.Println(r1.Code, r1.Denominator == r1.Ruptures+r1.NoRupture, r1.Denominator == r1.IndexEvents-r1.Censored)
	// Output:
	// rpps;specialty;ins_nir;birth_date;sex;date;kind;code_system;code;value;unit;interpretation;quantity;days_supply
	// no-gp-after-discharge true true
}

// BenchmarkLargeFile measures the large-file mode (rows/s); peak memory is
// measured with `/usr/bin/time -v parcours gen --source … --rows 1000000`.
func BenchmarkLargeFile(b *testing.B) {
	for _, src := range []string{gen.SourceCity, gen.SourceHospital} {
		b.Run(src, func(b *testing.B) {
			const rows = 20000
			var w gen.Writers
			if src == gen.SourceCity {
				w.CityActivity = io.Discard
			} else {
				w.HospitalStays = io.Discard
			}
			for b.Loop() {
				if _, err := gen.Generate(gen.Config{Source: src, Rows: rows, Seed: 1}, w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkDemo measures the normal mode at the size of the demo dataset.
func BenchmarkDemo(b *testing.B) {
	w := gen.Writers{HospitalStays: io.Discard, CityActivity: io.Discard, PreventionProgramme: io.Discard, LiabilityClaims: io.Discard}
	for b.Loop() {
		if _, err := gen.Generate(gen.Config{Patients: 1000, Seed: 1}, w); err != nil {
			b.Fatal(err)
		}
	}
}
