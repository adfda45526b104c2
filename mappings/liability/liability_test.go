package liability_test

import (
	"bytes"
	"testing"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/internal/golden"
	"github.com/parcours-sante/parcours/mappings/liability"
)

func TestGolden(t *testing.T) { golden.Run(t, &liability.Mapper{}) }

func TestRegistered(t *testing.T) {
	m, ok := mappings.Lookup("liability-claims")
	if !ok || m.Source() != "liability-claims" {
		t.Fatalf("Lookup(liability-claims) = %v, %v", m, ok)
	}
}

func FuzzMap(f *testing.F) {
	for _, s := range golden.Seeds(f, "../../testdata/native/liability-claims.csv") {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, partial bool) {
		opt := golden.Options(t, golden.Parse(nil))
		opt.Partial = partial
		res, err := (&liability.Mapper{}).Map(bytes.NewReader(data), opt)
		if err != nil {
			t.Fatalf("Map: %v", err)
		}
		golden.CheckResult(t, res, opt)
	})
}
