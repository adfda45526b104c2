package measure_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/server/measure"
)

// benchRows makes n rows of about n/2 patients with four stratifiers: age
// band (10-year), sex, département (96, skewed) and establishment (300,
// skewed: many small ones that need suppression).
func benchRows(n int) []measure.Row {
	r := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]measure.Row, n)
	for i := range rows {
		birth := at.AddDate(-18-r.IntN(80), -r.IntN(12), 0)
		excluded := r.IntN(50) == 0
		rows[i] = measure.Row{
			Patient:       fmt.Sprintf("p%06d", r.IntN(n/2)),
			InDenominator: !excluded,
			Excluded:      excluded,
			InNumerator:   !excluded && r.IntN(5) == 0,
			Strata: map[string]string{
				measure.AttrAgeBand:       measure.AgeBand(birth, at, 10),
				measure.AttrSex:           []string{"female", "male"}[r.IntN(2)],
				measure.AttrDepartement:   fmt.Sprintf("%02d", 1+int(96*r.Float64()*r.Float64())),
				measure.AttrEstablishment: fmt.Sprintf("FINESS%04d", int(300*r.Float64()*r.Float64()*r.Float64())),
			},
		}
		if rows[i].InNumerator {
			rows[i].Cost = float64(100 + r.IntN(8000))
		}
	}
	return rows
}

func BenchmarkEvaluate100k4Stratifiers(b *testing.B) {
	rows := benchRows(100_000)
	p := measure.Params{
		Measure:         "https://example.org/fhir/Measure/early-readmission",
		PeriodStart:     time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		PeriodEnd:       time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC),
		Stratifiers:     []string{measure.AttrAgeBand, measure.AttrSex, measure.AttrDepartement, measure.AttrEstablishment},
		CostPerspective: measure.PerspectiveAMO,
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := measure.Evaluate(rows, p); err != nil {
			b.Fatal(err)
		}
	}
}
