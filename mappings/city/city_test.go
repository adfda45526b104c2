package city_test

import (
	"bytes"
	"testing"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/city"
	"github.com/parcours-sante/parcours/mappings/internal/golden"
)

func TestGolden(t *testing.T) { golden.Run(t, &city.Mapper{}) }

func TestRegistered(t *testing.T) {
	m, ok := mappings.Lookup("city-activity")
	if !ok || m.Source() != "city-activity" {
		t.Fatalf("Lookup(city-activity) = %v, %v", m, ok)
	}
}

func FuzzMap(f *testing.F) {
	for _, s := range golden.Seeds(f, "../../testdata/native/city-activity.csv") {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, partial bool) {
		opt := golden.Options(t, golden.Parse(nil))
		opt.Partial = partial
		res, err := (&city.Mapper{}).Map(bytes.NewReader(data), opt)
		if err != nil {
			t.Fatalf("Map: %v", err)
		}
		golden.CheckResult(t, res, opt)
	})
}
