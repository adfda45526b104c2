package measure

import (
	"math"
	"time"
)

// published populations, in report order, with their measure-population codes.
var populations = []struct {
	c             col
	code, display string
}{
	{colIP, "initial-population", "Initial Population"},
	{colD, "denominator", "Denominator"},
	{colDX, "denominator-exclusion", "Denominator Exclusion"},
	{colN, "numerator", "Numerator"},
}

// ucumSystem and the unit "1" mark the proportion.
const ucumSystem = "http://unitsofmeasure.org"

func masked() []any {
	return []any{map[string]any{"url": DataAbsentReasonURL, "valueCode": "masked"}}
}

// render writes the report. Suppressed values are absent; the primitive that
// would hold each carries the data-absent-reason extension (valueCode masked).
func render(a *agg, p Params) map[string]any {
	group := map[string]any{}
	body(group, &a.g, a, p)
	var stratifiers []any
	for _, s := range a.strats {
		st := map[string]any{"code": []any{map[string]any{"text": s.attr}}}
		var strata []any
		for _, t := range s.strata {
			m := map[string]any{"value": map[string]any{"text": t.value}}
			body(m, t, a, p)
			strata = append(strata, m)
		}
		if len(strata) > 0 {
			st["stratum"] = strata
		}
		stratifiers = append(stratifiers, st)
	}
	if len(stratifiers) > 0 {
		group["stratifier"] = stratifiers
	}
	return map[string]any{
		"resourceType": "MeasureReport",
		"extension":    []any{map[string]any{"url": ThresholdExtensionURL, "valueInteger": p.K}},
		"status":       "complete",
		"type":         "summary",
		"measure":      p.Measure,
		"date":         p.Date.Format(time.RFC3339),
		"period": map[string]any{
			"start": fhirDate(p.PeriodStart),
			"end":   fhirDate(p.PeriodEnd),
		},
		"group": []any{group},
	}
}

// fhirDate writes a day when the time is midnight, else a full dateTime.
func fhirDate(t time.Time) string {
	if h, m, s := t.Clock(); h == 0 && m == 0 && s == 0 && t.Nanosecond() == 0 {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

// body fills the populations, score and cost of the group or a stratum.
func body(m map[string]any, t *table, a *agg, p Params) {
	pops := make([]any, 0, len(populations))
	for _, pop := range populations {
		x := t.cells[pop.c]
		e := map[string]any{"code": map[string]any{"coding": []any{map[string]any{
			"system": PopulationSystem, "code": pop.code, "display": pop.display,
		}}}}
		if x.masked {
			e["_count"] = map[string]any{"extension": masked()}
		} else {
			e["count"] = x.rows
			e["extension"] = []any{map[string]any{"url": PatientCountExtensionURL, "valueInteger": x.patients}}
		}
		pops = append(pops, e)
	}
	m["population"] = pops
	score := map[string]any{"unit": "1", "system": ucumSystem, "code": "1"}
	if t.cells[colN].masked || t.cells[colD].masked {
		score["_value"] = map[string]any{"extension": masked()}
	} else {
		score["value"] = round(float64(t.cells[colN].rows)/float64(t.cells[colD].rows), 4)
	}
	m["measureScore"] = score
	if a.withCost {
		m["extension"] = []any{costExtension(t, p)}
	}
}

func money(v float64, hide bool) map[string]any {
	out := map[string]any{"currency": "EUR"}
	if hide {
		out["_value"] = map[string]any{"extension": masked()}
	} else {
		out["value"] = roundCents(v)
	}
	return out
}

func costExtension(t *table, p Params) map[string]any {
	hide := t.costMasked || t.cells[colN].masked
	var mean float64
	if !hide {
		mean = t.cost / float64(t.cells[colN].rows)
	}
	return map[string]any{
		"url": CostExtensionURL,
		"extension": []any{
			map[string]any{"url": "total", "valueMoney": money(t.cost, hide)},
			map[string]any{"url": "mean", "valueMoney": money(mean, hide)},
			map[string]any{"url": "perspective", "valueCode": p.CostPerspective},
			map[string]any{"url": "label", "valueString": p.CostLabel},
		},
	}
}

func round(x float64, digits int) float64 {
	f := math.Pow10(digits)
	return math.Round(x*f) / f
}
