package measure

import (
	"testing"

	"github.com/parcours-sante/parcours/conformance"
)

// TestReportsAreValidR4 checks reports of every shape (all masked, partly
// masked, with and without cost and stratifiers) against the R4 JSON schema.
func TestReportsAreValidR4(t *testing.T) {
	v, err := conformance.Shared()
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(60) {
		sc := genScenario(seed)
		if seed%3 == 0 {
			sc.params.CostPerspective = ""
		}
		report, err := Evaluate(sc.rows, sc.params)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(wire(t, report)); err != nil {
			t.Errorf("%s: %v", sc.name, err)
		}
		// The validator does look: a count that is not an integer fails.
		if seed == 0 {
			bad := wire(t, report)
			pop := bad["group"].([]any)[0].(map[string]any)["population"].([]any)[0].(map[string]any)
			pop["count"] = "twelve"
			if v.Validate(bad) == nil {
				t.Errorf("a report with a text count passes the schema")
			}
		}
	}
}
