package measure_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/server/measure"
)

// Heart-failure discharges without a GP visit within 7 days, by département:
// the Landes and Pyrénées-Atlantiques numerators (4 and 9 patients) are
// masked, and their costs with them; the Gironde is published in full.
func ExampleEvaluate() {
	var rows []measure.Row
	add := func(dep string, denominator, numerator, excluded int, cost float64) {
		for i := range denominator + excluded {
			rows = append(rows, measure.Row{
				Patient:       fmt.Sprintf("%s-%d", dep, i),
				InDenominator: i < denominator,
				InNumerator:   i < numerator,
				Excluded:      i >= denominator,
				Cost:          cost,
				Strata:        map[string]string{measure.AttrDepartement: dep},
			})
		}
	}
	add("33", 40, 12, 10, 850)
	add("40", 25, 4, 11, 1200)
	add("64", 30, 9, 10, 1000)

	report, err := measure.Evaluate(rows, measure.Params{
		Measure:         "https://example.org/fhir/Measure/no-gp-after-discharge",
		PeriodStart:     time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		PeriodEnd:       time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC),
		Stratifiers:     []string{measure.AttrDepartement},
		CostPerspective: measure.PerspectiveAMO,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	group := report["group"].([]any)[0].(map[string]any)
	fmt.Println(report["type"], report["measure"])
	fmt.Println("all:", line(group))
	for _, s := range group["stratifier"].([]any)[0].(map[string]any)["stratum"].([]any) {
		st := s.(map[string]any)
		fmt.Printf("%s: %s\n", st["value"].(map[string]any)["text"], line(st))
	}
	// Output:
	// summary https://example.org/fhir/Measure/no-gp-after-discharge
	// all: initial-population=126 denominator=95 denominator-exclusion=31 numerator=25 score=0.2632 total=24000 mean=960
	// 33: initial-population=50 denominator=40 denominator-exclusion=10 numerator=12 score=0.3 total=10200 mean=850
	// 40: initial-population=36 denominator=25 denominator-exclusion=11 numerator=masked score=masked total=masked mean=masked
	// 64: initial-population=40 denominator=30 denominator-exclusion=10 numerator=masked score=masked total=masked mean=masked
}

// line prints the populations, score and cost of a group or stratum; a
// masked value has no value and a data-absent-reason extension instead.
func line(m map[string]any) string {
	var b strings.Builder
	or := func(v any, ok bool) string {
		if !ok {
			return "masked"
		}
		return fmt.Sprint(v)
	}
	for _, p := range m["population"].([]any) {
		pm := p.(map[string]any)
		code := pm["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"]
		v, ok := pm["count"]
		fmt.Fprintf(&b, "%s=%s ", code, or(v, ok))
	}
	v, ok := m["measureScore"].(map[string]any)["value"]
	fmt.Fprintf(&b, "score=%s", or(v, ok))
	for _, sub := range m["extension"].([]any)[0].(map[string]any)["extension"].([]any) {
		sm := sub.(map[string]any)
		if money, isMoney := sm["valueMoney"].(map[string]any); isMoney {
			v, ok := money["value"]
			fmt.Fprintf(&b, " %s=%s", sm["url"], or(v, ok))
		}
	}
	return b.String()
}
