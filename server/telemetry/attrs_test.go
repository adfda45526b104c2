package telemetry

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/metric"
)

// TestAttrSet: the memoised options carry the attributes Attrs gives, for
// Add and Record, before and after the memo is full; the memo stays
// bounded.
func TestAttrSet(t *testing.T) {
	a := NewAttrSet("route", "method", "status")
	check := func(t *testing.T, values ...string) {
		t.Helper()
		want := metric.NewAddConfig([]metric.AddOption{Attrs("route", values[0], "method", values[1], "status", values[2])}).Attributes()
		for range 2 { // built, then memoised
			added := metric.NewAddConfig(a.Add(values...)).Attributes()
			recorded := metric.NewRecordConfig(a.Record(values...)).Attributes()
			if !added.Equals(&want) || !recorded.Equals(&want) {
				t.Errorf("attributes of %q: Add %v, Record %v, want %v (Attrs)", values, added.ToSlice(), recorded.ToSlice(), want.ToSlice())
			}
		}
	}
	tests := [][]string{
		{"/fhir/:type/:id", "GET", "200"},
		{"/fhir/:type/:id", "GET", "404"},
		{"/fhir/:type", "POST", "201"},
		{"", "", ""},
	}
	for _, values := range tests {
		t.Run(fmt.Sprint(values), func(t *testing.T) { check(t, values...) })
	}
	for i := range maxAttrSets + 10 {
		check(t, "unmatched", fmt.Sprintf("M%d", i), "405")
	}
	if n := len(a.m); n != maxAttrSets {
		t.Errorf("%d combinations memoised, want the bound %d", n, maxAttrSets)
	}
	// Fewer values than keys: the others are empty.
	b := NewAttrSet("route", "method")
	want := metric.NewAddConfig([]metric.AddOption{Attrs("route", "r", "method", "")}).Attributes()
	if got := metric.NewAddConfig(b.Add("r")).Attributes(); !got.Equals(&want) {
		t.Errorf("Add(r) attributes %v, want %v", got.ToSlice(), want.ToSlice())
	}
}
