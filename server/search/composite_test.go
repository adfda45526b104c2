package search

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/store"
)

// extractUnshared is Extract with nothing shared between parameters: the
// values of composite components are computed again for each composite.
func extractUnshared(r *Registry, typ string, res map[string]any) []store.IndexEntry {
	x := extraction{res: res, entries: []store.IndexEntry{}}
	for _, p := range r.typeOf(typ).list {
		vals, err := p.expr.EvaluateTyped(res)
		if err != nil || len(vals) == 0 {
			continue
		}
		x.components = nil
		x.param(p, vals)
	}
	return x.done()
}

// TestCompositeComponentsShared: sharing the component values between
// the composites of a resource (code on an Observation, read by six of
// them) changes no entry, on the Synthea corpus and the official examples
// (every type with composites: Observation, DocumentReference,
// RiskAssessment, Group...).
func TestCompositeComponentsShared(t *testing.T) {
	res := syntheaResources(t)
	files, _ := filepath.Glob(filepath.Join(corpusDir, "fhir-r4-examples", "instances", "*.json"))
	for _, f := range files {
		res = append(res, readResource(t, f))
	}
	r := Default()
	composites := 0
	for _, x := range res {
		typ, _ := x["resourceType"].(string)
		got, want := r.Extract(typ, x, ""), extractUnshared(r, typ, x)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s/%v (-unshared +Extract):\n%s", typ, x["id"], diff)
		}
		for _, p := range r.typeOf(typ).list {
			if p.Type == TypeComposite {
				composites++
			}
		}
	}
	if composites == 0 {
		t.Error("no composite parameter met")
	}
	t.Logf("%d resources", len(res))
}
