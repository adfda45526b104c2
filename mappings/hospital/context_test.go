package hospital

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/gen"
	"github.com/parcours-sante/parcours/mappings/vocab"
)

// TestPriorConditions: the history gathered in the first reading gives
// every stay the prior conditions the whole list of the file's stays gives
// (the mapping of a file before it was built a chunk at a time).
func TestPriorConditions(t *testing.T) {
	var buf bytes.Buffer
	if _, err := gen.Generate(gen.Config{Source: Source, Rows: 3000, Seed: 5}, gen.Writers{HospitalStays: &buf}); err != nil {
		t.Fatal(err)
	}
	h := &history{codes: map[string]uint32{}, patients: map[mappings.Key][]dated{}}
	var stays []*stay
	spec := mappings.Spec[*stay]{Source: Source, Columns: Columns, Parse: parse, Note: h.note,
		Build: func(_ *mappings.Batch, rows []*stay) { stays = append(stays, rows...) }}
	if _, err := mappings.Run(spec, bytes.NewReader(buf.Bytes()), mappings.Options{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	byPatient := map[string][]*stay{}
	for _, s := range stays {
		byPatient[s.patientKey()] = append(byPatient[s.patientKey()], s)
	}
	withHistory := 0
	for _, s := range stays {
		var want []vocab.Coding
		for _, o := range byPatient[s.patientKey()] {
			if o == s || (o.discharge <= s.admission && o.key() != s.key()) {
				want = append(want, o.diagnoses()...)
			}
		}
		if diff := cmp.Diff(set(want), set(h.priorConditions(s))); diff != "" {
			t.Fatalf("stay %s (-all stays +history):\n%s", s.key(), diff)
		}
		if len(set(want)) > len(set(s.diagnoses())) {
			withHistory++
		}
	}
	if withHistory < 100 {
		t.Errorf("only %d stays have conditions from other stays: the test proves little", withHistory)
	}
}

func set(cs []vocab.Coding) []vocab.Coding {
	out := slices.Clone(cs)
	slices.SortFunc(out, func(a, b vocab.Coding) int {
		if a.System+"|"+a.Code < b.System+"|"+b.Code {
			return -1
		}
		if a.System+"|"+a.Code > b.System+"|"+b.Code {
			return 1
		}
		return 0
	})
	return slices.Compact(out)
}
