package measure

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// block describes n rows of one kind ("N" numerator, "M" denominator only,
// "X" excluded) for patients prefix0, prefix1… (every row its own patient
// unless perPatient > 1), with a cost per row and stratifier values.
type block struct {
	n          int
	kind       string
	prefix     string
	perPatient int
	cost       float64
	strata     map[string]string
}

func build(blocks ...block) []Row {
	var rows []Row
	for _, b := range blocks {
		per := max(b.perPatient, 1)
		for i := range b.n {
			r := Row{Patient: fmt.Sprintf("%s%d", b.prefix, i/per), Cost: b.cost, Strata: b.strata}
			switch b.kind {
			case "N":
				r.InDenominator, r.InNumerator = true, true
			case "M":
				r.InDenominator = true
			case "X":
				r.Excluded = true
			}
			rows = append(rows, r)
		}
	}
	return rows
}

func params(k int, stratifiers ...string) Params {
	p := testPeriod
	p.K = k
	p.Stratifiers = stratifiers
	return p
}

// view is a readable digest of one published table.
type view struct {
	IP, DX, D, N     string // count or "masked"
	PIP, PD, PDX, PN string // patients or "" (masked)
	Score            string
	Cost, Mean       string
}

func show(pt pubTable) view {
	s := func(p *int64) string {
		if p == nil {
			return "masked"
		}
		return fmt.Sprint(*p)
	}
	pat := func(p *int64) string {
		if p == nil {
			return ""
		}
		return fmt.Sprint(*p)
	}
	f := func(p *float64) string {
		if p == nil {
			return "masked"
		}
		return fmt.Sprint(*p)
	}
	return view{
		IP: s(pt.count[colIP]), DX: s(pt.count[colDX]), D: s(pt.count[colD]), N: s(pt.count[colN]),
		PIP: pat(pt.patients[colIP]), PD: pat(pt.patients[colD]), PDX: pat(pt.patients[colDX]), PN: pat(pt.patients[colN]),
		Score: f(pt.score), Cost: f(pt.cost), Mean: f(pt.mean),
	}
}

func evaluate(t *testing.T, rows []Row, p Params) pubReport {
	t.Helper()
	report, err := Evaluate(rows, p)
	if err != nil {
		t.Fatal(err)
	}
	return parseReport(t, wire(t, report))
}

func TestCountsRatesCost(t *testing.T) {
	tests := []struct {
		name string
		rows []Row
		want view
	}{{
		name: "counts, rate, cost over numerator rows",
		rows: build(
			block{n: 30, kind: "N", prefix: "n", cost: 100},
			block{n: 70, kind: "M", prefix: "m", cost: 55}, // ignored: not in the numerator
			block{n: 12, kind: "X", prefix: "x", cost: 999},
		),
		want: view{IP: "112", DX: "12", D: "100", N: "30", PIP: "112", PD: "100", PDX: "12", PN: "30",
			Score: "0.3", Cost: "3000", Mean: "100"},
	}, {
		name: "distinct patients: two events each",
		rows: build(
			block{n: 40, kind: "N", prefix: "n", perPatient: 2, cost: 12.345},
			block{n: 60, kind: "M", prefix: "m", perPatient: 3},
			block{n: 20, kind: "X", prefix: "x", perPatient: 2},
		),
		want: view{IP: "120", DX: "20", D: "100", N: "40", PIP: "50", PD: "40", PDX: "10", PN: "20",
			Score: "0.4", Cost: "493.8", Mean: "12.35"},
	}, {
		name: "one patient in numerator and exclusions is one patient of the initial population",
		rows: build(
			block{n: 15, kind: "N", prefix: "a"},
			block{n: 15, kind: "X", prefix: "a"},
			block{n: 15, kind: "M", prefix: "b"},
		),
		want: view{IP: "45", DX: "15", D: "30", N: "15", PIP: "30", PD: "30", PDX: "15", PN: "15",
			Score: "0.5", Cost: "0", Mean: "0"},
	}, {
		name: "excluded wins over the numerator flag",
		rows: append(build(
			block{n: 20, kind: "N", prefix: "n", cost: 10},
			block{n: 20, kind: "M", prefix: "m"},
		), slices.Repeat([]Row{{Patient: "late", InDenominator: true, InNumerator: true, Excluded: true, Cost: 1e6}}, 10)...),
		// Ten exclusions of one patient: DX is masked, and IP = D + DX with it.
		want: view{IP: "masked", DX: "masked", D: "40", N: "20", PIP: "", PD: "40", PN: "20",
			Score: "0.5", Cost: "200", Mean: "10"},
	}, {
		name: "rounding: rate to 4 decimals, euros to the cent",
		rows: build(
			block{n: 10, kind: "N", prefix: "n", cost: 33.333},
			block{n: 20, kind: "M", prefix: "m"},
			block{n: 10, kind: "X", prefix: "x"},
		),
		want: view{IP: "40", DX: "10", D: "30", N: "10", PIP: "40", PD: "30", PDX: "10", PN: "10",
			Score: "0.3333", Cost: "333.33", Mean: "33.33"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := show(evaluate(t, tt.rows, params(10)).g)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("group (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStratification(t *testing.T) {
	s := func(sex, dep string) map[string]string { return map[string]string{"sex": sex, "departement": dep} }
	rows := build(
		block{n: 20, kind: "N", prefix: "b1-", cost: 10, strata: s("female", "33")},
		block{n: 30, kind: "M", prefix: "b2-", strata: s("female", "33")},
		block{n: 10, kind: "X", prefix: "b3-", strata: s("female", "40")},
		block{n: 10, kind: "N", prefix: "b4-", cost: 20, strata: s("male", "40")},
		block{n: 15, kind: "M", prefix: "b5-", strata: s("male", "40")},
		block{n: 10, kind: "X", prefix: "b6-", strata: map[string]string{"sex": "male"}},
		block{n: 10, kind: "N", prefix: "b7-", cost: 5, strata: s("male", "")},
		block{n: 10, kind: "M", prefix: "b8-", strata: s("male", "")},
		block{n: 10, kind: "X", prefix: "b9-", strata: s("female", "33")},
	)
	pr := evaluate(t, rows, params(10, "sex", "departement"))
	got := map[string]view{"group": show(pr.g)}
	var order []string
	for j, st := range pr.strats {
		for _, pt := range st {
			got[pr.attrs[j]+"="+pt.value] = show(pt)
			order = append(order, pr.attrs[j]+"="+pt.value)
		}
	}
	want := map[string]view{
		"group": {IP: "125", DX: "30", D: "95", N: "40", PIP: "125", PD: "95", PDX: "30", PN: "40",
			Score: "0.4211", Cost: "450", Mean: "11.25"},
		"sex=female": {IP: "70", DX: "20", D: "50", N: "20", PIP: "70", PD: "50", PDX: "20", PN: "20",
			Score: "0.4", Cost: "200", Mean: "10"},
		"sex=male": {IP: "55", DX: "10", D: "45", N: "20", PIP: "55", PD: "45", PDX: "10", PN: "20",
			Score: "0.4444", Cost: "250", Mean: "12.5"},
		"departement=33": {IP: "60", DX: "10", D: "50", N: "20", PIP: "60", PD: "50", PDX: "10", PN: "20",
			Score: "0.4", Cost: "200", Mean: "10"},
		"departement=40": {IP: "35", DX: "10", D: "25", N: "10", PIP: "35", PD: "25", PDX: "10", PN: "10",
			Score: "0.4", Cost: "200", Mean: "20"},
		"departement=unknown": {IP: "30", DX: "10", D: "20", N: "10", PIP: "30", PD: "20", PDX: "10", PN: "10",
			Score: "0.5", Cost: "50", Mean: "5"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Strata in value order, a missing value as "unknown", stratifiers in the order asked.
	wantOrder := []string{"sex=female", "sex=male", "departement=33", "departement=40", "departement=unknown"}
	if diff := cmp.Diff(wantOrder, order); diff != "" {
		t.Errorf("strata order (-want +got):\n%s", diff)
	}
}

// maskedItems lists what is masked in a published table.
func maskedItems(pt pubTable) []string {
	var out []string
	for _, c := range []col{colIP, colDX, colD, colN} {
		if pt.count[c] == nil {
			out = append(out, c.String())
		}
	}
	if pt.score == nil {
		out = append(out, "score")
	}
	if pt.cost == nil {
		out = append(out, "cost")
	}
	return out
}

func TestSuppression(t *testing.T) {
	type sub = map[string]string
	dep := func(v string) sub { return sub{"departement": v} }
	// stratum: n numerator rows (cost each), 30 others, 10 exclusions.
	stratum := func(v string, n int, cost float64) []block {
		return []block{
			{n: n, kind: "N", prefix: v + "n", cost: cost, strata: dep(v)},
			{n: 30, kind: "M", prefix: v + "m", strata: dep(v)},
			{n: 10, kind: "X", prefix: v + "x", strata: dep(v)},
		}
	}
	strata := func(parts ...[]block) []Row { return build(slices.Concat(parts...)...) }
	all := []string{"initial-population", "denominator-exclusion", "denominator", "numerator", "score", "cost"}
	tests := []struct {
		name string
		rows []Row
		p    Params
		want map[string][]string // table → masked items; absent = nothing masked
		// unlisted: the stratifiers list no stratum
		unlisted bool
	}{{
		name:     "a whole report below k is masked and lists no stratum",
		rows:     build(block{n: 30, kind: "N", prefix: "p", perPatient: 4, cost: 10, strata: dep("33")}),
		p:        params(10, "departement"),
		want:     map[string][]string{"group": all},
		unlisted: true,
	}, {
		name: "few exclusions mask the initial population too",
		rows: build(block{n: 20, kind: "N", prefix: "n", cost: 1}, block{n: 30, kind: "M", prefix: "m"}, block{n: 3, kind: "X", prefix: "x"}),
		p:    params(10),
		want: map[string][]string{"group": {"initial-population", "denominator-exclusion"}},
	}, {
		name: "no exclusion at all: zero is below k",
		rows: build(block{n: 20, kind: "N", prefix: "n", cost: 1}, block{n: 30, kind: "M", prefix: "m"}),
		p:    params(10),
		want: map[string][]string{"group": {"initial-population", "denominator-exclusion"}},
	}, {
		name: "a 100 % rate is a disclosure: the numerator goes",
		rows: build(block{n: 20, kind: "N", prefix: "n", cost: 1}, block{n: 10, kind: "X", prefix: "x"}),
		p:    params(10),
		want: map[string][]string{"group": {"numerator", "score", "cost"}},
	}, {
		name: "one small stratum masks the next smallest",
		rows: strata(stratum("a", 3, 100), stratum("b", 15, 100), stratum("c", 25, 100)),
		p:    params(10, "departement"),
		want: map[string][]string{
			"departement=a": {"numerator", "score", "cost"},
			"departement=b": {"numerator", "score", "cost"},
		},
	}, {
		name: "two zero numerators would add up to zero: a positive third goes too",
		rows: strata(stratum("a", 0, 100), stratum("b", 0, 100), stratum("c", 30, 100)),
		p:    params(10, "departement"),
		want: map[string][]string{
			"departement=a": {"numerator", "score", "cost"},
			"departement=b": {"numerator", "score", "cost"},
			"departement=c": {"numerator", "score", "cost"},
		},
	}, {
		name: "masked costs over fewer than k patients: the next cost goes",
		rows: strata(stratum("a", 4, 100), stratum("b", 5, 100), stratum("c", 12, 100), stratum("d", 40, 100)),
		p:    params(10, "departement"),
		want: map[string][]string{
			"departement=a": {"numerator", "score", "cost"},
			"departement=b": {"numerator", "score", "cost"},
			"departement=c": {"cost"},
		},
	}, {
		name: "masked costs adding up to zero: the smallest positive cost goes",
		rows: strata(stratum("a", 4, 0), stratum("b", 8, 0), stratum("c", 12, 100), stratum("d", 40, 100)),
		p:    params(10, "departement"),
		want: map[string][]string{
			"departement=a": {"numerator", "score", "cost"},
			"departement=b": {"numerator", "score", "cost"},
			"departement=c": {"cost"},
		},
	}, {
		name: "a stratifier of one stratum is masked like the group",
		rows: build(block{n: 20, kind: "N", prefix: "n", strata: dep("33")}, block{n: 30, kind: "M", prefix: "m", strata: dep("33")},
			block{n: 3, kind: "X", prefix: "x", strata: dep("33")}),
		p: params(10, "departement"),
		want: map[string][]string{
			"group":          {"initial-population", "denominator-exclusion"},
			"departement=33": {"initial-population", "denominator-exclusion"},
		},
	}, {
		name: "small exclusions everywhere: exclusions and initial population go everywhere",
		rows: build(
			block{n: 20, kind: "N", prefix: "an", strata: dep("a")}, block{n: 30, kind: "M", prefix: "am", strata: dep("a")},
			block{n: 2, kind: "X", prefix: "ax", strata: dep("a")},
			block{n: 20, kind: "N", prefix: "bn", strata: dep("b")}, block{n: 30, kind: "M", prefix: "bm", strata: dep("b")},
			block{n: 3, kind: "X", prefix: "bx", strata: dep("b")},
			block{n: 20, kind: "N", prefix: "cn", strata: dep("c")}, block{n: 30, kind: "M", prefix: "cm", strata: dep("c")},
		),
		p: params(10, "departement"),
		want: map[string][]string{
			"group":         {"initial-population", "denominator-exclusion"},
			"departement=a": {"initial-population", "denominator-exclusion"},
			"departement=b": {"initial-population", "denominator-exclusion"},
			"departement=c": {"initial-population", "denominator-exclusion"},
		},
	}, {
		name: "k is a parameter: 25 masks what 10 publishes",
		rows: strata(stratum("a", 20, 100), stratum("b", 30, 100)),
		p:    params(25, "departement"),
		want: map[string][]string{
			"group":         {"denominator-exclusion", "initial-population"},
			"departement=a": {"initial-population", "denominator-exclusion", "numerator", "score", "cost"},
			"departement=b": {"initial-population", "denominator-exclusion", "numerator", "score", "cost"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := evaluate(t, tt.rows, tt.p)
			got := map[string][]string{}
			if m := maskedItems(pr.g); len(m) > 0 {
				got["group"] = m
			}
			for j, st := range pr.strats {
				for _, pt := range st {
					if m := maskedItems(pt); len(m) > 0 {
						got[pr.attrs[j]+"="+pt.value] = m
					}
				}
			}
			sortAll := cmp.Transformer("sort", func(in []string) []string { out := slices.Clone(in); slices.Sort(out); return out })
			if diff := cmp.Diff(tt.want, got, sortAll); diff != "" {
				t.Errorf("masked (-want +got):\n%s", diff)
			}
			for j, st := range pr.strats {
				if listed := len(st) > 0; listed == tt.unlisted {
					t.Errorf("%s: strata listed %v, want %v", pr.attrs[j], listed, !tt.unlisted)
				}
			}
		})
	}
}

// TestMaskedValuesCarryDataAbsentReason walks the raw JSON: every population
// has a count or a _count with data-absent-reason "masked", never both;
// likewise every measureScore and every Money of the cost.
func TestMaskedValuesCarryDataAbsentReason(t *testing.T) {
	var masked, published int
	for seed := range uint64(100) {
		sc := genScenario(seed)
		report, err := Evaluate(sc.rows, sc.params)
		if err != nil {
			t.Fatal(err)
		}
		check := func(where string, m map[string]any, key string) {
			_, has := m[key]
			dar := isMasked(m["_"+key])
			switch {
			case has == dar:
				t.Errorf("%s: %s: value present %v, data-absent-reason %v", sc.name, where, has, dar)
			case dar:
				masked++
			default:
				published++
			}
		}
		tables := []map[string]any{report["group"].([]any)[0].(map[string]any)}
		if sts, ok := tables[0]["stratifier"].([]any); ok {
			for _, s := range sts {
				list, _ := s.(map[string]any)["stratum"].([]any)
				for _, x := range list {
					tables = append(tables, x.(map[string]any))
				}
			}
		}
		for _, tb := range tables {
			for _, p := range tb["population"].([]any) {
				check("population", p.(map[string]any), "count")
			}
			check("measureScore", tb["measureScore"].(map[string]any), "value")
			for _, e := range tb["extension"].([]any) {
				for _, sub := range e.(map[string]any)["extension"].([]any) {
					if mon, ok := sub.(map[string]any)["valueMoney"].(map[string]any); ok {
						check("cost", mon, "value")
					}
				}
			}
		}
	}
	if masked == 0 || published == 0 {
		t.Errorf("masked %d, published %d: the inputs do not exercise both", masked, published)
	}
}

func TestEvaluateRejects(t *testing.T) {
	ok := build(block{n: 1, kind: "N", prefix: "p"})
	tests := []struct {
		name string
		rows []Row
		edit func(*Params)
	}{
		{"no measure", ok, func(p *Params) { p.Measure = "" }},
		{"measure with a version bar", ok, func(p *Params) { p.Measure += "|1.0" }},
		{"no period start", ok, func(p *Params) { p.PeriodStart = time.Time{} }},
		{"period ends before it starts", ok, func(p *Params) { p.PeriodEnd = p.PeriodStart.Add(-time.Hour) }},
		{"negative k", ok, func(p *Params) { p.K = -1 }},
		{"unnamed stratifier", ok, func(p *Params) { p.Stratifiers = []string{""} }},
		{"stratifier twice", ok, func(p *Params) { p.Stratifiers = []string{"sex", "sex"} }},
		{"unknown perspective", ok, func(p *Params) { p.CostPerspective = "perte de chance" }},
		{"row without patient", []Row{{InDenominator: true}}, nil},
		{"row in no population", []Row{{Patient: "p", InNumerator: true}}, nil},
		{"negative cost", []Row{{Patient: "p", InDenominator: true, InNumerator: true, Cost: -1}}, nil},
		{"NaN cost", []Row{{Patient: "p", InDenominator: true, InNumerator: true, Cost: math.NaN()}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := params(10)
			if tt.edit != nil {
				tt.edit(&p)
			}
			_, err := Evaluate(tt.rows, p)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v, want ErrInvalid", err)
			}
		})
	}
}

func TestEvaluateDefaults(t *testing.T) {
	p := params(0)
	p.CostLabel = ""
	report, err := Evaluate(build(block{n: 12, kind: "N", prefix: "n", cost: 1}, block{n: 12, kind: "M", prefix: "m"}), p)
	if err != nil {
		t.Fatal(err)
	}
	ext := report["extension"].([]any)[0].(map[string]any)
	if ext["url"] != ThresholdExtensionURL || ext["valueInteger"] != 10 {
		t.Errorf("threshold extension %v, want k = 10", ext)
	}
	cost := report["group"].([]any)[0].(map[string]any)["extension"].([]any)[0].(map[string]any)
	text := fmt.Sprint(cost)
	if !strings.Contains(text, DefaultCostLabel) || strings.Contains(strings.ToLower(text), "perte de chance") {
		t.Errorf("cost extension %v: want the default label", cost)
	}
	p.CostPerspective = ""
	report, err = Evaluate(build(block{n: 12, kind: "N", prefix: "n", cost: 1}), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := report["group"].([]any)[0].(map[string]any)["extension"]; ok {
		t.Errorf("a report without perspective carries a cost")
	}
}

func TestAgeBand(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	at := day(2025, 6, 15)
	tests := []struct {
		birth time.Time
		width int
		want  string
	}{
		{day(1975, 6, 15), 5, "50-54"}, // 50th birthday today
		{day(1975, 6, 16), 5, "45-49"}, // tomorrow
		{day(1975, 6, 16), 10, "40-49"},
		{day(1971, 1, 1), 10, "50-59"},
		{day(2025, 6, 15), 5, "0-4"},
		{day(1935, 6, 15), 5, "90+"},
		{day(1930, 1, 1), 10, "90+"},
		{day(1940, 1, 1), 20, "80+"},
		{day(1975, 6, 15), 1, "50-54"}, // raised to 5 years
		{day(2026, 1, 1), 5, Unknown},  // born after the date
		{time.Time{}, 5, Unknown},
		{day(2004, 2, 29), 5, "20-24"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.birth.Format(time.DateOnly), tt.width), func(t *testing.T) {
			if got := AgeBand(tt.birth, at, tt.width); got != tt.want {
				t.Errorf("AgeBand = %q, want %q", got, tt.want)
			}
		})
	}
	// 29 February: 21 on 1 March 2025, still 20 on 28 February.
	if got := AgeBand(day(2004, 2, 29), day(2025, 2, 28), 1); got != "20-24" {
		t.Errorf("leap day: %q", got)
	}
}
