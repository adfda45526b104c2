package measure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// scenario is one randomised input.
type scenario struct {
	name   string
	rows   []Row
	params Params
}

var testPeriod = Params{
	Measure:         "https://example.org/fhir/Measure/hf-no-gp-7d",
	PeriodStart:     time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	PeriodEnd:       time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC),
	Date:            time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC),
	CostPerspective: PerspectiveAMO,
}

// pick returns one of xs.
func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// genScenario draws groups from empty to large, from one to many strata with
// skewed sizes, patients with one or several rows, rare to universal
// exclusions and ruptures, and costs with zeros.
func genScenario(seed uint64) scenario {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	n := pick(r, r.IntN(12), r.IntN(40), 20+r.IntN(150), 100+r.IntN(600), 1000+r.IntN(2000))
	perPatient := pick(r, 1.0, 1.0, 0.7, 0.4)
	nPatients := max(1, int(float64(n)*perPatient))
	pExcl := pick(r, 0.0, 0.0, 0.02, 0.08, 0.3)
	pNum := pick(r, 0.0, 0.03, 0.15, 0.5, 0.9, 1.0)
	pZeroCost := pick(r, 0.0, 0.3, 1.0)
	k := pick(r, 3, 5, 10, 10)

	nStrat := pick(r, 0, 1, 2, 3, 4)
	type attr struct {
		name       string
		weights    []float64
		perPatient bool
		pMissing   float64
	}
	var attrs []attr
	for i := range nStrat {
		ns := pick(r, 1, 2, 3, 5, 8, 15, 30, 60)
		w := make([]float64, ns)
		for j := range w {
			w[j] = pick(r, 1.0, 1.0/float64(j+1), 1.0/float64((j+1)*(j+1)))
		}
		attrs = append(attrs, attr{
			name:       fmt.Sprintf("attr%d", i),
			weights:    w,
			perPatient: r.IntN(2) == 0,
			pMissing:   pick(r, 0.0, 0.0, 0.05),
		})
	}
	draw := func(a attr) string {
		if r.Float64() < a.pMissing {
			return ""
		}
		var total float64
		for _, w := range a.weights {
			total += w
		}
		x := r.Float64() * total
		for j, w := range a.weights {
			if x < w {
				return fmt.Sprintf("v%02d", j)
			}
			x -= w
		}
		return fmt.Sprintf("v%02d", len(a.weights)-1)
	}
	patientAttrs := make([]map[string]string, nPatients)
	for i := range patientAttrs {
		patientAttrs[i] = map[string]string{}
		for _, a := range attrs {
			if a.perPatient {
				patientAttrs[i][a.name] = draw(a)
			}
		}
	}
	rows := make([]Row, n)
	for i := range rows {
		p := r.IntN(nPatients)
		if perPatient == 1 {
			p = i
		}
		row := Row{Patient: fmt.Sprintf("p%04d", p), Strata: map[string]string{}}
		for _, a := range attrs {
			if a.perPatient {
				row.Strata[a.name] = patientAttrs[p][a.name]
			} else {
				row.Strata[a.name] = draw(a)
			}
		}
		switch {
		case r.Float64() < pExcl:
			row.Excluded = true
			row.InDenominator = r.IntN(2) == 0
			row.InNumerator = row.InDenominator && r.IntN(2) == 0
		default:
			row.InDenominator = true
			row.InNumerator = r.Float64() < pNum
		}
		if row.InNumerator && r.Float64() >= pZeroCost {
			row.Cost = float64(50 + r.IntN(5000))
		}
		rows[i] = row
	}
	params := testPeriod
	params.K = k
	for _, a := range attrs {
		params.Stratifiers = append(params.Stratifiers, a.name)
	}
	return scenario{
		name: fmt.Sprintf("seed%d/n%d/k%d/strat%d", seed, n, k, nStrat),
		rows: rows, params: params,
	}
}

// truthTable is what the test itself counts, independently of aggregate.
type truthTable struct {
	rows     [nCols]int
	patients [nCols]map[string]bool
	cost     float64
}

func newTruthTable() *truthTable {
	t := &truthTable{}
	for c := range nCols {
		t.patients[c] = map[string]bool{}
	}
	return t
}

func (t *truthTable) add(r Row) {
	var cs []col
	switch {
	case r.Excluded:
		cs = []col{colIP, colDX}
	case r.InNumerator:
		cs = []col{colIP, colD, colN}
		t.cost += r.Cost
	default:
		cs = []col{colIP, colD, colM}
	}
	for _, c := range cs {
		t.rows[c]++
		t.patients[c][r.Patient] = true
	}
}

type truth struct {
	g      *truthTable
	strata [][]*truthTable // per stratifier, in the report's order (sorted values)
	values [][]string
}

func countTruth(rows []Row, p Params) truth {
	tr := truth{g: newTruthTable()}
	for _, r := range rows {
		tr.g.add(r)
	}
	for _, attr := range p.Stratifiers {
		by := map[string]*truthTable{}
		for _, r := range rows {
			v := r.Strata[attr]
			if v == "" {
				v = Unknown
			}
			if by[v] == nil {
				by[v] = newTruthTable()
			}
			by[v].add(r)
		}
		var values []string
		for v := range by {
			values = append(values, v)
		}
		slices.Sort(values)
		var ts []*truthTable
		for _, v := range values {
			ts = append(ts, by[v])
		}
		tr.strata = append(tr.strata, ts)
		tr.values = append(tr.values, values)
	}
	return tr
}

// wire encodes and decodes the report as a client would receive it.
func wire(t testing.TB, report map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out map[string]any
	if err := d.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}
