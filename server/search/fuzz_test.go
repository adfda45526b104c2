package search

import (
	"net/url"
	"testing"

	"github.com/parcours-sante/parcours/server/store"
)

// FuzzParse parses any query for Observation and Patient and evaluates what
// parses on the testdata store: no input may panic or fail other than with
// a 400.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"code=http://loinc.org|4548-4", "date=ge2023&date=lt2024-02", "value-quantity=ap7.5|http://unitsofmeasure.org|%",
		"subject:Patient.family=lef", "_has:Observation:patient:code=4548-4", "code-value-quantity=4548-4$gt7",
		"family:exact=Martin", "_sort=-date,code", "_include:iterate=Observation:subject", "code=a\\,b,c", "date=ap",
		"component-code-value-quantity=8480-6$lt|x|y", "birthdate:missing=true", "subject=https://hub.example/fhir/Patient/p-zoe",
	} {
		f.Add(seed)
	}
	fx := newFixture(f, testResources(f))
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		for _, typ := range []string{"Observation", "Patient"} {
			parsed, err := Default().Parse(typ, q, testBase)
			if err != nil {
				continue
			}
			if err := fx.db.View(func(tx *store.Tx) error {
				ids, err := parsed.IDs(tx)
				parsed.Order(tx, ids)
				return err
			}); err != nil {
				t.Errorf("%s?%s: %v", typ, query, err)
			}
		}
	})
}
