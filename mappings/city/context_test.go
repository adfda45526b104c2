package city

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/gen"
	"github.com/parcours-sante/parcours/mappings/vocab"
)

// TestContext: the history gathered in the first reading gives every row
// the context the whole list of the file's rows gives (the mapping of a
// file before it was built a chunk at a time): abnormal results of the
// look-back window and drugs dispensed up to the row, the row itself
// aside.
func TestContext(t *testing.T) {
	var buf bytes.Buffer
	if _, err := gen.Generate(gen.Config{Source: Source, Rows: 20000, Seed: 5}, gen.Writers{CityActivity: &buf}); err != nil {
		t.Fatal(err)
	}
	h := &history{codes: map[vocab.Coding]uint32{}, patients: map[mappings.Key]*patientHistory{}}
	var rows []*activity
	spec := mappings.Spec[*activity]{Source: Source, Columns: Columns, Parse: parse, Note: h.note,
		Build: func(_ *mappings.Batch, all []*activity) { rows = append(rows, all...) }}
	if _, err := mappings.Run(spec, bytes.NewReader(buf.Bytes()), mappings.Options{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	byPatient := map[string][]*activity{}
	for _, a := range rows {
		byPatient[a.patientKey()] = append(byPatient[a.patientKey()], a)
	}
	var results, drugs int
	for _, a := range rows {
		want := vocab.Context{Setting: vocab.SettingCity, Kind: a.kind}
		day, _ := time.Parse(mappings.DateLayout, a.date)
		from := day.Add(-vocab.RecentResultWindow).Format(mappings.DateLayout)
		for _, o := range byPatient[a.patientKey()] {
			if o == a || o.date > a.date {
				continue
			}
			if o.kind == "lab-result" && vocab.AbnormalInterpretation(o.interp) && o.loinc.Code != "" && o.date >= from && !slices.Contains(want.RecentResults, o.loinc) {
				want.RecentResults = append(want.RecentResults, o.loinc)
			}
			if o.kind == "dispensation" && o.code.System == vocab.SystemATC && !slices.Contains(want.Medications, o.code) {
				want.Medications = append(want.Medications, o.code)
			}
		}
		got := h.context(a)
		for _, c := range []*vocab.Context{&want, &got} {
			for _, l := range [][]vocab.Coding{c.RecentResults, c.Medications} {
				slices.SortFunc(l, func(x, y vocab.Coding) int { return strings.Compare(x.System+"|"+x.Code, y.System+"|"+y.Code) })
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("line %d (-all rows +history):\n%s", a.line, diff)
		}
		results += len(want.RecentResults)
		drugs += len(want.Medications)
	}
	if results < 20 || drugs < 100 {
		t.Errorf("only %d results and %d drugs in the contexts: the test proves little", results, drugs)
	}
}
