package prevention_test

import (
	"bytes"
	"testing"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/internal/golden"
	"github.com/parcours-sante/parcours/mappings/prevention"
)

func TestGolden(t *testing.T) { golden.Run(t, &prevention.Mapper{}) }

func TestRegistered(t *testing.T) {
	m, ok := mappings.Lookup("prevention-programme")
	if !ok || m.Source() != "prevention-programme" {
		t.Fatalf("Lookup(prevention-programme) = %v, %v", m, ok)
	}
}

func FuzzMap(f *testing.F) {
	for _, s := range golden.Seeds(f, "../../testdata/native/prevention-programme.ndjson") {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, partial bool) {
		opt := golden.Options(t, golden.Parse(nil))
		opt.Partial = partial
		res, err := (&prevention.Mapper{}).Map(bytes.NewReader(data), opt)
		if err != nil {
			t.Fatalf("Map: %v", err)
		}
		golden.CheckResult(t, res, opt)
	})
}
