package pathway_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/parcours-sante/parcours/server/pathway"
)

// A heart-failure stay discharged home on 10 March with no GP visit in the
// next 7 days (R1), readmitted through the emergency department on 25
// March (R5).
func ExampleDetect() {
	var resources []map[string]any
	_ = json.Unmarshal([]byte(`[
	  {"resourceType": "Patient", "id": "p", "birthDate": "1955-03-14", "gender": "male"},
	  {"resourceType": "Encounter", "id": "s1", "class": {"code": "IMP"}, "period": {"start": "2026-03-02", "end": "2026-03-10"},
	   "serviceType": {"coding": [{"system": "https://example.org/fhir/CodeSystem/pmsi-field", "code": "MCO"}]},
	   "type": [{"coding": [{"system": "https://example.org/fhir/CodeSystem/ghm", "code": "05M09T"}]}],
	   "hospitalization": {"dischargeDisposition": {"coding": [{"system": "https://example.org/fhir/CodeSystem/pmsi-mode", "code": "8"}]}},
	   "diagnosis": [{"condition": {"reference": "Condition/c1"}, "rank": 1}]},
	  {"resourceType": "Condition", "id": "c1", "code": {"coding": [{"system": "https://smt.esante.gouv.fr/terminologie-cim-10", "code": "I50.9"}]}},
	  {"resourceType": "Encounter", "id": "s2", "class": {"code": "IMP"}, "period": {"start": "2026-03-25", "end": "2026-04-02"},
	   "serviceType": {"coding": [{"system": "https://example.org/fhir/CodeSystem/pmsi-field", "code": "MCO"}]},
	   "type": [{"coding": [{"system": "https://example.org/fhir/CodeSystem/ghm", "code": "05M092"}]}],
	   "hospitalization": {"admitSource": {"coding": [{"system": "https://example.org/fhir/CodeSystem/pmsi-provenance", "code": "5"}]}}}
	]`), &resources)
	rules, err := pathway.DefaultRules()
	if err != nil {
		fmt.Println(err)
		return
	}
	var r1r5 []pathway.Rule
	for _, r := range rules {
		if r.ID == "R1" || r.ID == "R5" {
			r1r5 = append(r1r5, r)
		}
	}
	p := pathway.Facts(resources)
	for _, f := range pathway.Detect(r1r5, p, time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)) {
		cost := ""
		if f.Cost != nil {
			cost = fmt.Sprintf(" cost %.0f %s", f.Cost.Total, f.Cost.Currency)
		}
		fmt.Printf("%s %s %s %s%s\n", f.Key, f.IndexDate.Format(time.DateOnly), f.Status, f.Evidence, cost)
	}
	for _, e := range pathway.Episodes(p) {
		fmt.Println(e.Type, e.Start.Format(time.DateOnly), e.Condition, e.Status)
	}
	// Output:
	// R1|Encounter/s1 2026-03-10 rupture [] cost 3900 EUR
	// R5|Encounter/s1 2026-03-10 rupture [Encounter/s2] cost 3900 EUR
	// R5|Encounter/s2 2026-04-02 met [] cost 0 EUR
	// heart-failure 2026-03-02 Condition/c1 active
}
