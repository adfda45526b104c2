package pathway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings"
	_ "github.com/parcours-sante/parcours/mappings/all"
	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/pathway"
)

// demoSources are the native demo files with the uploader each would have.
var demoSources = []struct {
	source, path, actor, org string
}{
	{"hospital-stays", "../../testdata/native/hospital-stays.csv", "hospital-it", "https://finess.esante.gouv.fr|750712184"},
	{"city-activity", "../../testdata/native/city-activity.csv", "gp", "https://rpps.esante.gouv.fr|10000000029"},
	{"prevention-programme", "../../testdata/native/prevention-programme.ndjson", "programme-operator", "https://sirene.fr|552100554"},
	{"liability-claims", "../../testdata/native/liability-claims.csv", "liability-risk-manager", "https://sirene.fr|775684764"},
}

// memStore is what the hub does with a transaction Bundle, reduced to what
// the tests need: conditional creates (ifNoneExist on an identifier) reuse
// the stored resource, others get an id, urn:uuid references become
// Type/id, and meta.source names the uploader.
type memStore struct {
	resources []map[string]any
	next      int
}

func (s *memStore) find(typ, system, value string) string {
	for _, r := range s.resources {
		if r["resourceType"] != typ {
			continue
		}
		ids, _ := r["identifier"].([]any)
		if m, ok := r["identifier"].(map[string]any); ok {
			ids = []any{m}
		}
		for _, id := range ids {
			im, _ := id.(map[string]any)
			if im["system"] == system && im["value"] == value {
				return typ + "/" + r["id"].(string)
			}
		}
	}
	return ""
}

func (s *memStore) transaction(t testing.TB, bundle map[string]any, actor, org string) {
	t.Helper()
	refs := map[string]string{} // fullUrl → Type/id
	var created []map[string]any
	for _, e := range bundle["entry"].([]any) {
		em := e.(map[string]any)
		res := em["resource"].(map[string]any)
		req := em["request"].(map[string]any)
		typ := res["resourceType"].(string)
		full, _ := em["fullUrl"].(string)
		if ine, _ := req["ifNoneExist"].(string); ine != "" {
			sys, val, _ := strings.Cut(strings.TrimPrefix(ine, "identifier="), "|")
			if ref := s.find(typ, sys, val); ref != "" {
				refs[full] = ref
				continue
			}
		}
		s.next++
		id := fmt.Sprintf("%s-%d", strings.ToLower(typ), s.next)
		res["id"] = id
		res["meta"] = withSource(res["meta"], "urn:parcours:"+actor+":"+org)
		refs[full] = typ + "/" + id
		created = append(created, res)
		s.resources = append(s.resources, res)
	}
	for _, r := range created {
		rewrite(r, refs)
	}
}

func withSource(meta any, src string) map[string]any {
	m, _ := meta.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	m["source"] = src
	return m
}

func rewrite(v any, refs map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && k == "reference" {
				if r, ok := refs[s]; ok {
					t[k] = r
				}
				continue
			}
			rewrite(x, refs)
		}
	case []any:
		for _, x := range t {
			rewrite(x, refs)
		}
	}
}

// patientResources is a patient's compartment (resources whose subject or
// patient is the Patient) plus the support resources facts reference.
func (s *memStore) patientResources(ref string) []map[string]any {
	var out []map[string]any
	for _, r := range s.resources {
		typ := r["resourceType"].(string)
		switch {
		case typ+"/"+r["id"].(string) == ref:
			out = append([]map[string]any{r}, out...)
		case typ == "Practitioner" || typ == "PractitionerRole" || typ == "Organization" || typ == "Location":
			out = append(out, r)
		default:
			for _, k := range []string{"subject", "patient"} {
				if m, ok := r[k].(map[string]any); ok && m["reference"] == ref {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// loadDemo maps the four demo files into a memStore and returns every
// patient by INS-NIR (unlinked patients as unlinked-<birth date>, or
// unlinked-<ref> without one).
func loadDemo(t testing.TB) map[string]pathway.Patient {
	t.Helper()
	s := demoStore(t)
	out := map[string]pathway.Patient{}
	for _, r := range s.resources {
		if r["resourceType"] != "Patient" {
			continue
		}
		ref := "Patient/" + r["id"].(string)
		key := "unlinked-" + ref
		if bd, ok := r["birthDate"].(string); ok {
			key = "unlinked-" + bd
		}
		ids, _ := r["identifier"].([]any)
		for _, id := range ids {
			im := id.(map[string]any)
			if im["system"] == vocab.SidINSNIR {
				key = im["value"].(string)
			}
		}
		out[key] = pathway.Facts(s.patientResources(ref))
	}
	return out
}

// patientRef is the reference of the Patient with an INS-NIR.
func (s *memStore) patientRef(ins string) string { return s.find("Patient", vocab.SidINSNIR, ins) }

// demoStore maps the four demo files into a memStore.
func demoStore(t testing.TB) *memStore {
	t.Helper()
	s := &memStore{}
	for _, d := range demoSources {
		data, err := os.ReadFile(d.path)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := mappings.Lookup(d.source)
		if !ok {
			t.Fatalf("no mapper for %s", d.source)
		}
		res, err := m.Map(bytes.NewReader(data), mappings.Options{Actor: d.actor, Org: d.org, Now: time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC)})
		if err != nil || res.Bundle == nil || len(res.Issues) > 0 {
			t.Fatalf("%s: %v, %d issues", d.source, err, len(res.Issues))
		}
		// Through JSON, as the hub stores and reads resources.
		raw, err := json.Marshal(res.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		var bundle map[string]any
		if err := json.Unmarshal(raw, &bundle); err != nil {
			t.Fatal(err)
		}
		s.transaction(t, bundle, d.actor, d.org)
	}
	return s
}

var demoAsOf = day("2026-12-31")

// TestDemoFindings runs the default rules over the demo files at the end
// of 2026 (testdata/native/README.md). Every finding below was derived by
// hand from the native rows and the rule definitions; the comments give
// the reason.
func TestDemoFindings(t *testing.T) {
	pats := loadDemo(t)
	rules, err := pathway.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	type finding struct{ Rule, Index, Status string }
	const (
		rupture = string(pathway.StatusRupture)
		met     = string(pathway.StatusMet)
		pending = string(pathway.StatusPending)
		asOf    = "2026-12-31"
	)
	want := map[string][]finding{
		"155037511204521": {
			{"R1", "2026-03-10", rupture},    // HF stay H-0001, no GP by 03-17 (GP on 04-09)
			{"R1", "2026-04-02", met},        // HF stay H-0002, GP on 04-09 = day 7
			{"R2", asOf, rupture},            // 4 A10 dispensations in 2026 and E11.9, no HbA1c
			{"R3-colorectal", asOf, rupture}, // man of 71, no FIT or colonoscopy
			{"R5", "2026-03-10", rupture},    // H-0002 entered through the ED on 03-25
			{"R5", "2026-04-02", met},
			{"R6", "2026-01-15", met}, // A10 every 90 days
			{"R6", "2026-04-15", met},
			{"R6", "2026-07-15", met},
			{"R6", "2026-10-15", pending}, // 90 days of supply + 60 end in 2027
			{"R10", asOf, rupture},        // 71, no influenza vaccine
		},
		"262016912345684": {
			{"R3-breast", asOf, rupture}, // woman of 64, no mammography (colorectal: excluded, C18.7)
			{"R5", "2026-04-22", met},    // H-0004 (session) was not an emergency entry
			{"R5", "2026-10-20", met},    // H-0004 itself is GHM 28: no index
			{"R9", "2026-04-14", met},    // first C18.7 in the surgical stay H-0003
		},
		"148081305501278": {
			{"R1", "2026-05-12", met}, // GP on 05-15
			{"R5", "2026-05-12", met},
			{"R7", "2026-05-14", met}, // NT-proBNP H, GP the next day
			{"R10", asOf, rupture},    // 78
		},
		"271059204111841": {
			{"R3-breast", asOf, rupture}, // two reminders, no screening done
			{"R3-colorectal", asOf, rupture},
		},
		"245063155504745": {
			{"R5", "2026-06-05", met},     // the HAD stay that follows is not inpatient (class HH)
			{"R7", "2026-09-10", rupture}, // creatinine H, nothing after it
			{"R10", asOf, rupture},        // 81
		},
		"167025935002108": {
			{"R2", asOf, met},                // A10 on 3 days, HbA1c on 02-01 and 08-10
			{"R3-colorectal", asOf, rupture}, // 59
			{"R6", "2026-02-16", met},
			{"R6", "2026-05-16", met},
			{"R6", "2026-08-16", pending},
			{"R7", "2026-02-01", met}, // GP on 02-15
			{"R7", "2026-08-10", met}, // GP on 08-24
		},
		"258117505609332": {
			{"R2", asOf, met},            // HbA1c in March and September
			{"R3-breast", asOf, met},     // programme mammography on 02-02
			{"R3-colorectal", asOf, met}, // screening colonoscopy in H-0013
			{"R5", "2026-02-10", met},
			{"R6", "2026-03-13", met},
			{"R6", "2026-06-13", met},
			{"R6", "2026-09-15", pending},
			{"R10", asOf, rupture}, // 68
		},
		"152093306304159": {
			{"R3-colorectal", asOf, rupture}, // 74 on 09-03
			{"R4", "2026-07-08", rupture},    // MI, no SMR stay
			{"R5", "2026-07-08", met},
			{"R10", asOf, rupture},
		},
		"141041411806239": {
			{"R5", "2026-01-15", met},     // the SMR stay after it is a planned transfer
			{"R8", "2026-01-05", pending}, // hip fracture, 12 months not over
			{"R10", asOf, rupture},
		},
		"269086930105456": {
			{"R3-breast", asOf, rupture},
			{"R3-colorectal", asOf, rupture},
		},
		"unlinked-1990-02-14": {{"R5", "2026-09-05", met}},
		"unlinked-1966-09-30": {
			{"R3-breast", asOf, rupture},
			{"R3-colorectal", asOf, met}, // programme FIT on 02-25
		},
		// 138042A01203359 died on 2026-08-18 (discharge mode 9): no finding.
	}
	for key, p := range pats {
		var gotF []finding
		for _, f := range pathway.Detect(rules, p, demoAsOf) {
			gotF = append(gotF, finding{f.RuleID, f.IndexDate.Format(time.DateOnly), string(f.Status)})
		}
		if diff := cmp.Diff(want[key], gotF); diff != "" {
			t.Errorf("%s (-want +got):\n%s", key, diff)
		}
	}
	for key := range want {
		if _, ok := pats[key]; !ok {
			t.Errorf("no demo patient %s", key)
		}
	}

	// Details of the main patient: the R1 rupture costs the readmission
	// (GHM 05M092) and the GP visit of the 30 days; R5's evidence is the
	// stay of 03-25.
	a := pats["155037511204521"]
	startOf := map[string]string{}
	for _, f := range a.Facts {
		startOf[f.Ref] = f.Start.Format(time.DateOnly)
	}
	for _, f := range pathway.Detect(rules, a, demoAsOf) {
		if f.Status != pathway.StatusRupture {
			continue
		}
		switch f.RuleID {
		case "R1":
			var lines []string
			for _, l := range f.Cost.Lines {
				lines = append(lines, fmt.Sprintf("%s %s %.0f", startOf[l.Ref], l.Item, l.Amount))
			}
			if diff := cmp.Diff([]string{"2026-03-25 inpatient-stay 3900", "2026-04-09 gp-consultation 30"}, lines); diff != "" || f.Cost.Total != 3930 {
				t.Errorf("R1 cost %.2f (-want +got):\n%s", f.Cost.Total, diff)
			}
			if f.Establishment != "750712184" || f.Age != 70 || f.Key != "R1|"+f.Index {
				t.Errorf("R1 establishment %q age %d key %q", f.Establishment, f.Age, f.Key)
			}
		case "R5":
			if len(f.Evidence) != 1 || startOf[f.Evidence[0]] != "2026-03-25" || f.Cost.Total != 3900 {
				t.Errorf("R5 evidence %v cost %v", f.Evidence, f.Cost)
			}
		}
	}
}

// TestDemoFacts checks the linkage and enrichment of the demo patients.
func TestDemoFacts(t *testing.T) {
	pats := loadDemo(t)
	a := pats["155037511204521"]
	actors := map[string]bool{}
	var gpVisits, hfStays int
	for _, f := range a.Facts {
		actors[f.SourceActor] = true
		if f.Type == "Encounter" && f.Class == "AMB" {
			gpVisits++
			if diff := cmp.Diff([]pathway.Coding{{System: vocab.SpecialtySystem, Code: "medecine-generale"}}, f.Specialties); diff != "" {
				t.Errorf("GP visit specialties (-want +got):\n%s", diff)
			}
		}
		if f.Type == "Encounter" && f.Class == "IMP" {
			hfStays++
			if f.Establishment != "750712184" || len(f.Diagnoses) != 3 || f.Diagnoses[0].Role != "DP" {
				t.Errorf("stay %s: establishment %q diagnoses %+v", f.Start.Format(time.DateOnly), f.Establishment, f.Diagnoses)
			}
		}
		if f.Type == "AdverseEvent" && f.Establishment != "750712184" {
			t.Errorf("claim establishment %q", f.Establishment)
		}
	}
	if diff := cmp.Diff(map[string]bool{"hospital-it": true, "gp": true, "programme-operator": true, "liability-risk-manager": true}, actors); diff != "" {
		t.Errorf("source actors of 155037511204521 (-want +got):\n%s", diff)
	}
	if gpVisits != 1 || hfStays != 2 || a.Department != "75" || a.Gender != "male" || !a.BirthDate.Equal(day("1955-03-14")) {
		t.Errorf("GP visits %d, stays %d, department %q, gender %q, birth %v", gpVisits, hfStays, a.Department, a.Gender, a.BirthDate)
	}
	j := pats["138042A01203359"]
	if !j.Deceased || !j.DeceasedDate.Equal(day("2026-08-18")) || j.Department != "2A" {
		t.Errorf("138042A01203359: deceased %v on %v, department %q", j.Deceased, j.DeceasedDate, j.Department)
	}
}

// TestDemoEpisodes checks the pathway episodes of the demo patients.
func TestDemoEpisodes(t *testing.T) {
	pats := loadDemo(t)
	type ep struct{ Type, Start, Status string }
	want := map[string][]ep{
		"155037511204521":     {{"heart-failure", "2026-03-02", "active"}, {"type-2-diabetes", "2026-01-15", "active"}, {"cardiovascular-prevention", "2025-12-01", "active"}},
		"262016912345684":     {{"colorectal-cancer-screening", "2025-10-01", "active"}, {"colorectal-cancer", "2026-04-14", "active"}},
		"148081305501278":     {{"heart-failure", "2026-05-02", "active"}},
		"271059204111841":     {{"breast-cancer-screening", "2025-11-01", "active"}},
		"245063155504745":     {{"cardiovascular-prevention", "2026-02-01", "active"}},
		"167025935002108":     {{"type-2-diabetes", "2026-02-16", "active"}},
		"258117505609332":     {{"type-2-diabetes", "2026-02-09", "active"}, {"breast-cancer-screening", "2025-12-15", "active"}, {"colorectal-cancer-screening", "2026-02-09", "active"}},
		"152093306304159":     {{"post-myocardial-infarction", "2026-07-01", "active"}},
		"141041411806239":     {{"fragility-fracture", "2026-01-05", "active"}},
		"138042A01203359":     {{"copd", "2026-08-10", "finished"}},
		"280074410908783":     {{"cardiovascular-prevention", "2026-01-10", "active"}},
		"269086930105456":     {{"cardiovascular-prevention", "2026-03-01", "active"}},
		"284056204103308":     {{"cervical-cancer-screening", "2026-05-01", "active"}},
		"unlinked-1966-09-30": {{"colorectal-cancer-screening", "2026-01-10", "active"}},
	}
	for key, p := range pats {
		var gotE []ep
		for _, e := range pathway.Episodes(p) {
			gotE = append(gotE, ep{e.Type, e.Start.Format(time.DateOnly), e.Status})
		}
		if diff := cmp.Diff(want[key], gotE); diff != "" {
			t.Errorf("%s episodes (-want +got):\n%s", key, diff)
		}
	}
	// The diabetes episode of 155037511204521 starts with metformin and
	// points to the E11.9 of the first stay; its members are the A10
	// dispensations, the stays coded E11.9 with their Conditions and the
	// GP visit (not the furosemide of 04-15).
	a := pats["155037511204521"]
	byRef := map[string]pathway.Fact{}
	for _, f := range a.Facts {
		byRef[f.Ref] = f
	}
	for _, e := range pathway.Episodes(a) {
		if e.Type != "type-2-diabetes" {
			continue
		}
		if c := byRef[e.Condition]; c.Type != "Condition" || c.Codes[0].Code != "E11.9" || byRef[e.Trigger].Type != "MedicationDispense" {
			t.Errorf("T2D condition %+v trigger %s", c, e.Trigger)
		}
		var members []string
		for _, m := range e.Members {
			f := byRef[m]
			members = append(members, f.Start.Format(time.DateOnly)+" "+f.Type)
		}
		wantMembers := []string{
			"2026-01-15 MedicationDispense", "2026-03-02 Condition", "2026-03-02 Encounter", "2026-03-25 Condition",
			"2026-03-25 Encounter", "2026-04-09 Encounter", "2026-04-15 MedicationDispense", "2026-07-15 MedicationDispense",
			"2026-10-15 MedicationDispense",
		}
		if diff := cmp.Diff(wantMembers, members); diff != "" {
			t.Errorf("T2D members (-want +got):\n%s", diff)
		}
		if e.Stage != "medicamenteux" || e.StageTop != "traitement" || e.Key != a.Ref+"|type-2-diabetes" {
			t.Errorf("T2D stage %s/%s key %s", e.Stage, e.StageTop, e.Key)
		}
	}
}
