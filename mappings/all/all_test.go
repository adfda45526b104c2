package all_test

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings"
	_ "github.com/parcours-sante/parcours/mappings/all"
	"github.com/parcours-sante/parcours/mappings/internal/golden"
	"github.com/parcours-sante/parcours/mappings/vocab"
)

var demo = map[string]string{
	"hospital-stays":       "../../testdata/native/hospital-stays.csv",
	"city-activity":        "../../testdata/native/city-activity.csv",
	"prevention-programme": "../../testdata/native/prevention-programme.ndjson",
	"liability-claims":     "../../testdata/native/liability-claims.csv",
}

func TestSources(t *testing.T) {
	want := []string{"city-activity", "hospital-stays", "liability-claims", "prevention-programme"}
	if diff := cmp.Diff(want, mappings.Sources()); diff != "" {
		t.Errorf("Sources (-want +got):\n%s", diff)
	}
}

// fact is what the scenario checks need of a mapped resource.
type fact struct {
	typ, date, code, extra string
}

// mapDemo maps every demo file and indexes the facts by the patient's INS-NIR.
func mapDemo(t *testing.T) map[string]map[string][]fact {
	t.Helper()
	bySource := map[string]map[string][]fact{}
	for source, path := range demo {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := mappings.Lookup(source)
		if !ok {
			t.Fatalf("no mapper for %s", source)
		}
		opt := mappings.Options{Actor: "hospital-it", Org: "https://finess.esante.gouv.fr|750712184", Now: time.Now()}
		res, err := m.Map(bytes.NewReader(data), opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range res.Issues {
			t.Errorf("%s line %d column %d: %s", source, is.Line, is.Column, is.Diagnostics)
		}
		if res.Bundle == nil || res.Good != res.Rows || res.Rows < 10 || res.Rows > 40 {
			t.Fatalf("%s: rows %d good %d bundle %v", source, res.Rows, res.Good, res.Bundle != nil)
		}
		golden.Validate(t, res.Bundle)
		bySource[source] = index(res.Bundle)
	}
	return bySource
}

func index(bundle map[string]any) map[string][]fact {
	ins := map[string]string{} // fullUrl → INS-NIR
	out := map[string][]fact{}
	str := func(v any) string { s, _ := v.(string); return s }
	code := func(cc any) string {
		if l, ok := cc.([]any); ok && len(l) > 0 {
			cc = l[0]
		}
		m, _ := cc.(map[string]any)
		cs, _ := m["coding"].([]any)
		if len(cs) == 0 {
			return ""
		}
		return str(cs[0].(map[string]any)["code"])
	}
	for _, e := range bundle["entry"].([]any) {
		em := e.(map[string]any)
		r := em["resource"].(map[string]any)
		if r["resourceType"] == "Patient" {
			ids, _ := r["identifier"].([]any)
			for _, id := range ids {
				if idm := id.(map[string]any); idm["system"] == vocab.SidINSNIR {
					ins[str(em["fullUrl"])] = str(idm["value"])
				}
			}
		}
	}
	for _, e := range bundle["entry"].([]any) {
		r := e.(map[string]any)["resource"].(map[string]any)
		var subj any = r["subject"]
		if subj == nil {
			subj = r["patient"]
		}
		sm, _ := subj.(map[string]any)
		p := ins[str(sm["reference"])]
		if p == "" {
			continue
		}
		f := fact{typ: str(r["resourceType"])}
		switch f.typ {
		case "Encounter":
			period := r["period"].(map[string]any)
			f.date, f.code = str(period["end"]), code(r["type"])
			if h, ok := r["hospitalization"].(map[string]any); ok {
				var admit []string
				for _, c := range h["admitSource"].(map[string]any)["coding"].([]any) {
					admit = append(admit, str(c.(map[string]any)["code"]))
				}
				f.extra = str(period["start"]) + "/" + strings.Join(admit, ",")
			}
		case "Condition":
			f.date, f.code = str(r["recordedDate"]), code(r["code"])
			exts, _ := r["extension"].([]any)
			for _, x := range exts {
				if xm := x.(map[string]any); strings.HasSuffix(str(xm["url"]), "pmsi-diagnosis-type") {
					f.extra = str(xm["valueCoding"].(map[string]any)["code"])
				}
			}
		case "Observation":
			f.date, f.code, f.extra = str(r["effectiveDateTime"]), code(r["code"]), code(r["interpretation"])
		case "MedicationDispense":
			f.date, f.code = str(r["whenHandedOver"]), code(r["medicationCodeableConcept"])
		case "Procedure":
			f.date, f.code = str(r["performedDateTime"]), code(r["code"])
		case "Immunization":
			f.date, f.code = str(r["occurrenceDateTime"]), code(r["vaccineCode"])
		case "CarePlan":
			acts, _ := r["activity"].([]any)
			for _, a := range acts {
				d := a.(map[string]any)["detail"].(map[string]any)
				out[p] = append(out[p], fact{typ: "CarePlan." + str(d["status"]), date: str(d["scheduledPeriod"].(map[string]any)["start"]), code: code(d["code"])})
			}
			continue
		case "AdverseEvent":
			f.date = str(r["date"])
		}
		out[p] = append(out[p], f)
	}
	return out
}

func addDays(date string, n int) string {
	d, _ := time.Parse(mappings.DateLayout, date)
	return d.AddDate(0, 0, n).Format(mappings.DateLayout)
}

// TestDemoFiles maps each demo file with zero issues and checks that the
// data crosses the four sources and holds the situations the first rupture
// rules must find (brief §6), each with a control patient where it must not.
func TestDemoFiles(t *testing.T) {
	src := mapDemo(t)
	h, c, p, l := src["hospital-stays"], src["city-activity"], src["prevention-programme"], src["liability-claims"]

	var everywhere []string
	for ins := range h {
		if len(c[ins]) > 0 && len(p[ins]) > 0 && len(l[ins]) > 0 {
			everywhere = append(everywhere, ins)
		}
	}
	if len(everywhere) < 2 {
		t.Errorf("patients present in the four sources: %v, want at least 2", everywhere)
	}

	gpVisitWithin := func(ins, from string, days int) bool {
		for _, f := range c[ins] {
			if f.typ == "Encounter" && slices.Contains([]string{"G", "GS", "VG", "TCG"}, f.code) && f.date > from && f.date <= addDays(from, days) {
				return true
			}
		}
		return false
	}
	// R1: heart-failure discharge home without a GP visit within 7 days.
	var r1, r1ok []string
	for ins, facts := range h {
		for _, f := range facts {
			if f.typ == "Condition" && f.extra == "DP" && strings.HasPrefix(f.code, "I50") {
				if gpVisitWithin(ins, f.date, 7) {
					r1ok = append(r1ok, ins)
				} else {
					r1 = append(r1, ins)
				}
			}
		}
	}
	// R2: diabetic (≥ 3 A10 dispensations) without HbA1c in the 12 months before the last one.
	var r2, r2ok []string
	for ins, facts := range c {
		var a10 []string
		for _, f := range facts {
			if f.typ == "MedicationDispense" && strings.HasPrefix(f.code, "A10") {
				a10 = append(a10, f.date)
			}
		}
		if len(a10) < 3 {
			continue
		}
		last := slices.Max(a10)
		hba1c := slices.ContainsFunc(facts, func(f fact) bool {
			return f.typ == "Observation" && f.code == "4548-4" && f.date > addDays(last, -365)
		})
		if hba1c {
			r2ok = append(r2ok, ins)
		} else {
			r2 = append(r2, ins)
		}
	}
	// R3: screening reminder without a screening done afterwards.
	var r3, r3ok []string
	for ins, facts := range p {
		for _, f := range facts {
			if f.typ != "CarePlan.scheduled" {
				continue
			}
			done := slices.ContainsFunc(facts, func(g fact) bool { return g.typ == "Observation" && g.code == f.code && g.date >= f.date })
			if done {
				r3ok = append(r3ok, ins)
			} else {
				r3 = append(r3, ins)
			}
		}
	}
	// R5: readmission through the emergency department within 30 days of a discharge.
	var r5 []string
	for ins, facts := range h {
		for _, a := range facts {
			for _, b := range facts {
				if a.typ == "Encounter" && b.typ == "Encounter" && strings.Contains(b.extra, "emd") {
					start, _, _ := strings.Cut(b.extra, "/")
					if start > a.date && start <= addDays(a.date, 30) {
						r5 = append(r5, ins)
					}
				}
			}
		}
	}
	// R7: abnormal result with nothing else for the patient within 30 days.
	var r7, r7ok []string
	for ins, facts := range c {
		for _, f := range facts {
			if f.typ != "Observation" || (f.extra != "H" && f.extra != "L" && f.extra != "A") {
				continue
			}
			followed := slices.ContainsFunc(append(slices.Clone(facts), h[ins]...), func(g fact) bool {
				return g != f && g.date > f.date && g.date <= addDays(f.date, 30)
			})
			if followed {
				r7ok = append(r7ok, ins)
			} else {
				r7 = append(r7, ins)
			}
		}
	}
	for name, got := range map[string][]string{"R1": r1, "R1 control": r1ok, "R2": r2, "R2 control": r2ok, "R3": r3, "R3 control": r3ok, "R5": r5, "R7": r7, "R7 control": r7ok} {
		if len(got) == 0 {
			t.Errorf("%s: no patient in the demo data", name)
		}
	}
	t.Logf("R1 %v (not %v); R2 %v (not %v); R3 %v (not %v); R5 %v; R7 %v (not %v); in all four sources %v",
		r1, r1ok, r2, r2ok, r3, r3ok, r5, r7, r7ok, everywhere)
}

// The server looks a mapper up by source name and maps an upload.
func ExampleLookup() {
	m, _ := mappings.Lookup("liability-claims")
	file := "claim_id;declared_at;event_date;finess;service;ins_nir;procedure_ccam;category;never_event;severity;outcome;fault;avoidable;loss_of_chance_pct;indemnity_reserved_eur;indemnity_paid_eur;status\n" +
		"RC-1;2026-05-04;2026-01-06;750712184;Orthopédie;;NEKA020;infection-associee-aux-soins;false;3;recovering;hai;false;;30000;;open\n" +
		"RC-2;2026-05-04;2026-06-06;750712184;;;;chute;false;3;;;;;;;open\n"
	res, _ := m.Map(strings.NewReader(file), mappings.Options{Partial: true, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	fmt.Println("rows", res.Rows, "good", res.Good, "stored", res.Bundle != nil)
	for _, is := range res.Issues {
		fmt.Printf("line %d column %d %s: %s\n", is.Line, is.Column, is.Code, is.Diagnostics)
	}
	// Output:
	// rows 2 good 1 stored true
	// line 3 column 3 value: event_date is after declared_at
	// line 3 column 8 value: category must be a code of https://example.org/fhir/CodeSystem/liability-event-category
}
