package hospital_test

import (
	"bytes"
	"testing"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/hospital"
	"github.com/parcours-sante/parcours/mappings/internal/golden"
)

func TestGolden(t *testing.T) { golden.Run(t, &hospital.Mapper{}) }

func TestRegistered(t *testing.T) {
	m, ok := mappings.Lookup("hospital-stays")
	if !ok || m.Source() != "hospital-stays" {
		t.Fatalf("Lookup(hospital-stays) = %v, %v", m, ok)
	}
}

func FuzzMap(f *testing.F) {
	for _, s := range golden.Seeds(f, "../../testdata/native/hospital-stays.csv") {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, partial bool) {
		opt := golden.Options(t, golden.Parse(nil))
		opt.Partial = partial
		res, err := (&hospital.Mapper{}).Map(bytes.NewReader(data), opt)
		if err != nil {
			t.Fatalf("Map: %v", err)
		}
		golden.CheckResult(t, res, opt)
	})
}
