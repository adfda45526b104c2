package pathway_test

import (
	"testing"
	"time"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/pathway"
)

// day parses YYYY-MM-DD.
func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// after is the day n days after s.
func after(s string, n int) string { return day(s).AddDate(0, 0, n).Format(time.DateOnly) }

func coding(system, code string) pathway.Coding { return pathway.Coding{System: system, Code: code} }

// stay is an MCO inpatient stay as mappings/hospital writes it: provenance
// "" (none), "5" (emergency, also HL7 emd) or another code; discharge mode
// 6–9; dp the DP code (and more DAS codes).
func stay(ref, admission, discharge, ghm, provenance, mode string, diagnoses ...pathway.Diagnosis) pathway.Fact {
	f := pathway.Fact{
		Ref: ref, Type: "Encounter", Class: "IMP", Start: day(admission), End: day(discharge),
		ServiceType:   []pathway.Coding{coding(vocab.PMSIFieldSystem, "MCO")},
		Discharge:     []pathway.Coding{coding(vocab.PMSIModeSystem, mode)},
		AdmitSource:   []pathway.Coding{coding(vocab.PMSIModeSystem, "8")},
		Establishment: "750712184",
		Diagnoses:     diagnoses,
	}
	if ghm != "" {
		f.Codes = append(f.Codes, coding(vocab.SystemGHM, ghm))
	}
	f.Codes = append(f.Codes, f.ServiceType...)
	if provenance != "" {
		f.AdmitSource = append(f.AdmitSource, coding(vocab.PMSIProvenanceSystem, provenance))
	}
	if provenance == "5" {
		f.AdmitSource = append(f.AdmitSource, coding(vocab.SystemAdmitSource, "emd"))
	}
	if mode == "8" {
		f.Discharge = append(f.Discharge, coding(vocab.SystemDischargeDisp, "home"))
	}
	return f
}

func dx(role, code string) pathway.Diagnosis {
	return pathway.Diagnosis{Condition: "Condition/" + code, Role: role, Codes: []pathway.Coding{coding(vocab.SystemCIM10, code)}}
}

// visit is a city consultation (AMB) or teleconsultation (VR).
func visit(ref, date, class, specialty string) pathway.Fact {
	return pathway.Fact{
		Ref: ref, Type: "Encounter", Class: class, Start: day(date), End: day(date),
		Codes:       []pathway.Coding{coding(vocab.SystemNGAP, "G")},
		Specialties: []pathway.Coding{coding(vocab.SpecialtySystem, specialty)},
	}
}

func dispense(ref, date, atc string, supply int) pathway.Fact {
	return pathway.Fact{
		Ref: ref, Type: "MedicationDispense", Start: day(date), End: day(date).AddDate(0, 0, supply),
		Codes: []pathway.Coding{coding(vocab.SystemATC, atc)}, DaysSupply: supply,
	}
}

func obs(ref, date, system, code, interpretation string) pathway.Fact {
	f := pathway.Fact{Ref: ref, Type: "Observation", Start: day(date), End: day(date), Codes: []pathway.Coding{coding(system, code)}}
	if interpretation != "" {
		f.Interpretation = []pathway.Coding{coding(vocab.SystemV3Interpretation, interpretation)}
	}
	return f
}

func condition(ref, date, code, role string) pathway.Fact {
	return pathway.Fact{Ref: ref, Type: "Condition", Start: day(date), Codes: []pathway.Coding{coding(vocab.SystemCIM10, code)}, DiagnosisRole: role}
}

func procedure(ref, date, ccam, stage string) pathway.Fact {
	return pathway.Fact{Ref: ref, Type: "Procedure", Start: day(date), End: day(date), Codes: []pathway.Coding{coding(vocab.SystemCCAM, ccam)}, Stage: stage}
}

func person(birth, gender string, facts ...pathway.Fact) pathway.Patient {
	return pathway.Patient{Ref: "Patient/p1", BirthDate: day(birth), Gender: gender, Facts: facts}
}

func dead(p pathway.Patient, date string) pathway.Patient {
	p.Deceased, p.DeceasedDate = true, day(date)
	return p
}

// rule returns one default rule by id.
func rule(t *testing.T, id string) pathway.Rule {
	t.Helper()
	rules, err := pathway.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no default rule %s", id)
	return pathway.Rule{}
}

// got is the part of a finding the table tests compare.
type got struct {
	Index     string
	IndexDate string
	Status    pathway.Status
	Evidence  []string
	Censor    string
	CensorRef string
	Cost      float64
	CostRefs  []string
}

func summarise(fs []pathway.Finding) []got {
	var out []got
	for _, f := range fs {
		g := got{Index: f.Index, IndexDate: f.IndexDate.Format(time.DateOnly), Status: f.Status, Evidence: f.Evidence, Censor: f.CensorReason, CensorRef: f.CensorRef}
		if f.Cost != nil {
			g.Cost = f.Cost.Total
			for _, l := range f.Cost.Lines {
				g.CostRefs = append(g.CostRefs, l.Ref)
			}
		}
		out = append(out, g)
	}
	return out
}
