package pathway_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/server/pathway"
)

// population is n patients cycling through the demo patients (about 20
// facts each for the linked ones), each under its own reference.
func population(b *testing.B, n int) []pathway.Patient {
	b.Helper()
	demo := loadDemo(b)
	keys := slices.Sorted(maps.Keys(demo))
	var base []pathway.Patient
	for _, k := range keys {
		base = append(base, demo[k])
	}
	out := make([]pathway.Patient, n)
	for i := range out {
		p := base[i%len(base)]
		p.Ref = fmt.Sprintf("Patient/bench-%d", i)
		out[i] = p
	}
	return out
}

// BenchmarkDetect: one op is every default rule over 1 000 patients.
func BenchmarkDetect(b *testing.B) {
	pats := population(b, 1000)
	rules, err := pathway.DefaultRules()
	if err != nil {
		b.Fatal(err)
	}
	asOf := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	facts, findings := 0, 0
	for _, p := range pats {
		facts += len(p.Facts)
		findings += len(pathway.Detect(rules, p, asOf))
	}
	for b.Loop() {
		for _, p := range pats {
			pathway.Detect(rules, p, asOf)
		}
	}
	b.ReportMetric(float64(facts), "facts/op")
	b.ReportMetric(float64(findings), "findings/op")
}

// BenchmarkEpisodes: one op is the default pathways over 1 000 patients.
func BenchmarkEpisodes(b *testing.B) {
	pats := population(b, 1000)
	for b.Loop() {
		for _, p := range pats {
			pathway.Episodes(p)
		}
	}
}

// BenchmarkFacts: one op is Facts over the resources of one demo patient
// with all four sources (155037511204521).
func BenchmarkFacts(b *testing.B) {
	s := demoStore(b)
	rs := s.patientResources(s.patientRef("155037511204521"))
	for b.Loop() {
		pathway.Facts(rs)
	}
	b.ReportMetric(float64(len(rs)), "resources/op")
}

// BenchmarkDetectHeavy: one op is every default rule over 1 000 patients
// of about 100 facts: the four-source demo patient 155037511204521 with
// his year repeated five times (dates shifted by whole years).
func BenchmarkDetectHeavy(b *testing.B) {
	a := loadDemo(b)["155037511204521"]
	var facts []pathway.Fact
	for y := range 5 {
		for _, f := range a.Facts {
			f.Ref = fmt.Sprintf("%s-%d", f.Ref, y)
			f.Start = f.Start.AddDate(-y, 0, 0)
			if !f.End.IsZero() {
				f.End = f.End.AddDate(-y, 0, 0)
			}
			facts = append(facts, f)
		}
	}
	slices.SortStableFunc(facts, func(x, y pathway.Fact) int { return x.Start.Compare(y.Start) })
	a.Facts = facts
	rules, err := pathway.DefaultRules()
	if err != nil {
		b.Fatal(err)
	}
	asOf := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	findings := len(pathway.Detect(rules, a, asOf))
	for b.Loop() {
		for i := range 1000 {
			a.Ref = fmt.Sprintf("Patient/bench-%d", i)
			pathway.Detect(rules, a, asOf)
		}
	}
	b.ReportMetric(float64(len(facts)), "facts/patient")
	b.ReportMetric(float64(findings*1000), "findings/op")
}
