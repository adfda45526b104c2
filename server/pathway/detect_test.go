package pathway_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/pathway"
)

type ruleCase struct {
	name string
	p    pathway.Patient
	asOf string
	want []got
}

func runRule(t *testing.T, id string, cases []ruleCase) {
	t.Helper()
	r := rule(t, id)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := pathway.Detect([]pathway.Rule{r}, tc.p, day(tc.asOf))
			if diff := cmp.Diff(tc.want, summarise(fs), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s findings (-want +got):\n%s", id, diff)
			}
		})
	}
}

const dis = "2026-03-10" // discharge of the index stays below

// hf is a heart-failure stay discharged home on dis.
func hf(ref string, diagnoses ...pathway.Diagnosis) pathway.Fact {
	if len(diagnoses) == 0 {
		diagnoses = []pathway.Diagnosis{dx("DP", "I50.9")}
	}
	return stay(ref, "2026-03-02", dis, "05M09T", "5", "8", diagnoses...)
}

func TestR1NoGPAfterDischarge(t *testing.T) {
	idx := "Encounter/idx"
	gp := func(n int) pathway.Fact { return visit("Encounter/gp", after(dis, n), "AMB", "medecine-generale") }
	readmit := func(n int) pathway.Fact {
		return stay("Encounter/re", after(dis, n), after(dis, n+5), "05M092", "5", "8", dx("DP", "J18.9"))
	}
	late := "2026-06-30"
	runRule(t, "R1", []ruleCase{
		{"GP on day 7 (end inclusive)", person("1955-03-14", "male", hf(idx), gp(7)), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusMet, Evidence: []string{"Encounter/gp"}, Cost: 30, CostRefs: []string{"Encounter/gp"}}}},
		{"GP on day 8", person("1955-03-14", "male", hf(idx), gp(8)), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusRupture, Cost: 30, CostRefs: []string{"Encounter/gp"}}}},
		{"GP on the discharge day (start exclusive)", person("1955-03-14", "male", hf(idx), visit("Encounter/gp", dis, "AMB", "medecine-generale")), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusRupture}}},
		{"GP teleconsultation", person("1955-03-14", "male", hf(idx), visit("Encounter/gp", after(dis, 2), "VR", "medecine-generale")), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusMet, Evidence: []string{"Encounter/gp"}, Cost: 30, CostRefs: []string{"Encounter/gp"}}}},
		{"cardiologist is not a GP", person("1955-03-14", "male", hf(idx), visit("Encounter/card", after(dis, 2), "AMB", "cardiologie")), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusRupture, Cost: 50, CostRefs: []string{"Encounter/card"}}}},
		{"readmitted on day 3", person("1955-03-14", "male", hf(idx), readmit(3)), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusCensored, Censor: "readmission", CensorRef: "Encounter/re", Cost: 3900, CostRefs: []string{"Encounter/re"}}}},
		{"readmitted on day 3, GP on day 5", person("1955-03-14", "male", hf(idx), readmit(3), gp(5)), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusCensored, Censor: "readmission", CensorRef: "Encounter/re", Cost: 3930, CostRefs: []string{"Encounter/re", "Encounter/gp"}}}},
		{"GP and readmission the same day", person("1955-03-14", "male", hf(idx), gp(3), readmit(3)), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusMet, Evidence: []string{"Encounter/gp"}, Cost: 3930, CostRefs: []string{"Encounter/gp", "Encounter/re"}}}},
		{"died on day 5", dead(person("1955-03-14", "male", hf(idx)), after(dis, 5)), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusCensored, Censor: "death"}}},
		{"died on day 8", dead(person("1955-03-14", "male", hf(idx)), after(dis, 8)), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusRupture}}},
		{"window still open", person("1955-03-14", "male", hf(idx)), after(dis, 6),
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusPending}}},
		{"GP after the evaluation date does not count", person("1955-03-14", "male", hf(idx), gp(5)), after(dis, 4),
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusPending}}},
		{"aged 17 at discharge", person("2008-03-11", "female", hf(idx)), late, nil},
		{"aged 18 on the discharge day", person("2008-03-10", "female", hf(idx)), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusRupture}}},
		{"transferred out (mode 7)", person("1955-03-14", "male", stay(idx, "2026-03-02", dis, "05M09T", "5", "7", dx("DP", "I50.9"))), late, nil},
		{"I50 as DAS only", person("1955-03-14", "male", hf(idx, dx("DP", "N18.3"), dx("DAS", "I50.9"))), late, nil},
		{"I13.0 as DR", person("1955-03-14", "male", hf(idx, dx("DP", "Z51.8"), dx("DR", "I13.0"))), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusRupture}}},
		{"I11.9 is not listed", person("1955-03-14", "male", hf(idx, dx("DP", "I11.9"))), late, nil},
		{"ongoing stay (no discharge)", person("1955-03-14", "male", func() pathway.Fact { f := hf(idx); f.End = time.Time{}; return f }()), late, nil},
		{"downstream cost over 30 days", person("1955-03-14", "male", hf(idx),
			pathway.Fact{Ref: "Encounter/ed", Type: "Encounter", Class: "EMER", Start: day(after(dis, 10))},
			stay("Encounter/re", after(dis, 20), after(dis, 25), "06C041", "5", "8"),
			stay("Encounter/late", after(dis, 31), after(dis, 33), "05M092", "5", "8")), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusRupture, Cost: 160 + 8500, CostRefs: []string{"Encounter/ed", "Encounter/re"}}}},
	})
}

func TestR2MissedHbA1c(t *testing.T) {
	asOf := "2026-12-31"
	a10 := func(ref, date string) pathway.Fact { return dispense(ref, date, "A10BA02", 90) }
	hba1c := func(date string) pathway.Fact { return obs("Observation/hba1c", date, vocab.SystemLOINC, "4548-4", "") }
	three := []pathway.Fact{a10("MedicationDispense/1", "2026-01-15"), a10("MedicationDispense/2", "2026-04-15"), a10("MedicationDispense/3", "2026-07-15")}
	runRule(t, "R2", []ruleCase{
		{"three A10 dispensations, no HbA1c", person("1955-03-14", "male", three...), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusRupture}}},
		{"two of them the same day", person("1955-03-14", "male", a10("MedicationDispense/1", "2026-01-15"), a10("MedicationDispense/2", "2026-01-15"), a10("MedicationDispense/3", "2026-07-15")), asOf, nil},
		{"one of them 13 months before", person("1955-03-14", "male", a10("MedicationDispense/1", "2025-11-30"), a10("MedicationDispense/2", "2026-04-15"), a10("MedicationDispense/3", "2026-07-15")), asOf, nil},
		{"first dispensation exactly 12 months before", person("1955-03-14", "male", a10("MedicationDispense/1", "2025-12-31"), a10("MedicationDispense/2", "2026-04-15"), a10("MedicationDispense/3", "2026-07-15")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusRupture}}},
		{"HbA1c on the window's first day", person("1955-03-14", "male", append(three, hba1c("2025-12-31"))...), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusMet, Evidence: []string{"Observation/hba1c"}}}},
		{"HbA1c the day before the window", person("1955-03-14", "male", append(three, hba1c("2025-12-30"))...), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusRupture}}},
		{"E11 condition years ago, NABM HbA1c", person("1955-03-14", "male", condition("Condition/e11", "2019-05-02", "E11.9", "DAS"),
			obs("Observation/nabm", "2026-06-01", vocab.SystemNABM, "1577", "")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusMet, Evidence: []string{"Observation/nabm"}}}},
		{"E15 is not diabetes", person("1955-03-14", "male", condition("Condition/e15", "2019-05-02", "E15", "DP")), asOf, nil},
		{"condition after the evaluation date", person("1955-03-14", "male", condition("Condition/e11", "2027-01-02", "E11.9", "DP")), asOf, nil},
		{"deceased before the evaluation date", dead(person("1955-03-14", "male", three...), "2026-10-01"), asOf, nil},
	})
}

func TestR3Screening(t *testing.T) {
	asOf := "2026-12-31"
	mammo := func(date string) pathway.Fact { return procedure("Procedure/mammo", date, "QEQK004", "depistage") }
	runRule(t, "R3-breast", []ruleCase{
		{"woman aged 50 today, mammography 2 years ago to the day", person("1976-12-31", "female", mammo("2024-12-31")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusMet, Evidence: []string{"Procedure/mammo"}}}},
		{"mammography 2 years and a day ago", person("1960-01-01", "female", mammo("2024-12-30")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusRupture}}},
		{"woman aged 49", person("1977-01-01", "female"), asOf, nil},
		{"woman aged 74", person("1952-01-01", "female"), asOf, []got{{IndexDate: asOf, Status: pathway.StatusRupture}}},
		{"woman aged 75", person("1951-12-31", "female"), asOf, nil},
		{"man", person("1960-01-01", "male"), asOf, nil},
		{"programme observation counts", person("1960-01-01", "female", obs("Observation/prog", "2026-02-02", vocab.SystemCCAM, "QEQK004", "")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusMet, Evidence: []string{"Observation/prog"}}}},
		{"a reminder (CarePlan) does not", person("1960-01-01", "female", pathway.Fact{Ref: "CarePlan/r", Type: "CarePlan", Start: day("2026-02-02"), Codes: []pathway.Coding{coding(vocab.SystemCCAM, "QEQK004")}}), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusRupture}}},
		{"unilateral mammography does not", person("1960-01-01", "female", procedure("Procedure/uni", "2026-02-02", "QEQK005", "imagerie")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusRupture}}},
		{"no birth date", pathway.Patient{Ref: "Patient/p1", Gender: "female"}, asOf, nil},
	})
	colo := func(date string) pathway.Fact { return procedure("Procedure/colo", date, "HHQE002", "depistage") }
	fit := func(date string) pathway.Fact { return obs("Observation/fit", date, vocab.SystemLOINC, "29771-3", "") }
	runRule(t, "R3-colorectal", []ruleCase{
		{"colonoscopy 4 years ago", person("1960-01-01", "male", colo("2022-12-31")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusMet, Evidence: []string{"Procedure/colo"}}}},
		{"colonoscopy 5 years ago to the day", person("1960-01-01", "male", colo("2021-12-31")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusMet, Evidence: []string{"Procedure/colo"}}}},
		{"colonoscopy 6 years ago", person("1960-01-01", "male", colo("2020-12-31")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusRupture}}},
		{"FIT 1 year ago", person("1960-01-01", "female", fit("2025-12-31")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusMet, Evidence: []string{"Observation/fit"}}}},
		{"FIT 3 years ago", person("1960-01-01", "female", fit("2023-12-31")), asOf,
			[]got{{IndexDate: asOf, Status: pathway.StatusRupture}}},
		{"colorectal cancer history", person("1960-01-01", "male", condition("Condition/c", "2015-01-01", "C18.7", "DP")), asOf, nil},
		{"ulcerative colitis", person("1960-01-01", "male", condition("Condition/k", "2015-01-01", "K51.9", "DAS")), asOf, nil},
		{"aged 49", person("1977-06-01", "male"), asOf, nil},
	})
}

func TestR5Readmission(t *testing.T) {
	idx := "Encounter/idx"
	index := func(ghm, mode string) pathway.Fact {
		return stay(idx, "2026-03-02", dis, ghm, "", mode, dx("DP", "K80.1"))
	}
	re := func(ref string, n int, provenance, ghm string) pathway.Fact {
		return stay(ref, after(dis, n), after(dis, n+3), ghm, provenance, "8", dx("DP", "K85.9"))
	}
	late := "2026-06-30"
	runRule(t, "R5", []ruleCase{
		{"emergency readmission on day 30", person("1955-03-14", "male", index("06C041", "8"), re("Encounter/re", 30, "5", "06C041")), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusRupture, Evidence: []string{"Encounter/re"}, Cost: 8500, CostRefs: []string{"Encounter/re"}},
				{Index: "Encounter/re", IndexDate: after(dis, 33), Status: pathway.StatusMet}}},
		{"emergency readmission on day 31", person("1955-03-14", "male", index("06C041", "8"), re("Encounter/re", 31, "5", "06C041")), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusMet}, {Index: "Encounter/re", IndexDate: after(dis, 34), Status: pathway.StatusMet}}},
		{"readmission on the discharge day (start exclusive)", person("1955-03-14", "male", index("06C041", "8"), re("Encounter/re", 0, "5", "06C041")), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusMet}, {Index: "Encounter/re", IndexDate: after(dis, 3), Status: pathway.StatusMet}}},
		{"planned readmission (not through the emergency department)", person("1955-03-14", "male", index("06C041", "8"), re("Encounter/re", 10, "1", "06C041")), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusMet}, {Index: "Encounter/re", IndexDate: after(dis, 13), Status: pathway.StatusMet}}},
		{"two readmissions, costs by GHM prefix and default", person("1955-03-14", "male", index("06C041", "8"),
			re("Encounter/re1", 5, "5", "05M092"), re("Encounter/re2", 20, "5", "99Z99Z")), "2026-12-31",
			[]got{
				{Index: idx, IndexDate: dis, Status: pathway.StatusRupture, Evidence: []string{"Encounter/re1", "Encounter/re2"}, Cost: 3900 + 4000, CostRefs: []string{"Encounter/re1", "Encounter/re2"}},
				{Index: "Encounter/re1", IndexDate: after(dis, 8), Status: pathway.StatusRupture, Evidence: []string{"Encounter/re2"}, Cost: 4000, CostRefs: []string{"Encounter/re2"}},
				{Index: "Encounter/re2", IndexDate: after(dis, 23), Status: pathway.StatusMet},
			}},
		{"HL7 emd alone is an emergency entry", person("1955-03-14", "male", index("06C041", "8"), func() pathway.Fact {
			f := re("Encounter/re", 5, "", "06C041")
			f.AdmitSource = []pathway.Coding{coding(vocab.SystemAdmitSource, "emd")}
			return f
		}()), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusRupture, Evidence: []string{"Encounter/re"}, Cost: 8500, CostRefs: []string{"Encounter/re"}},
				{Index: "Encounter/re", IndexDate: after(dis, 8), Status: pathway.StatusMet}}},
		{"died on day 10 before any readmission", dead(person("1955-03-14", "male", index("06C041", "8")), after(dis, 10)), late,
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusCensored, Censor: "death"}}},
		{"window open", person("1955-03-14", "male", index("06C041", "8")), after(dis, 29),
			[]got{{Index: idx, IndexDate: dis, Status: pathway.StatusPending}}},
		{"sessions (GHM 28) are not index stays", person("1955-03-14", "male", index("28Z07Z", "8"), re("Encounter/re", 5, "5", "28Z07Z")), late, nil},
		{"obstetrics (GHM 14) are not index stays", person("1955-03-14", "male", index("14Z08Z", "8")), late, nil},
		{"newborns (GHM 15) are not index stays", person("1955-03-14", "male", index("15M05A", "8")), late, nil},
		{"death at discharge (mode 9)", person("1955-03-14", "male", index("06C041", "9")), late, nil},
		{"transfer out (mode 7)", person("1955-03-14", "male", index("06C041", "7"), re("Encounter/re", 1, "5", "06C041")), late,
			[]got{{Index: "Encounter/re", IndexDate: after(dis, 4), Status: pathway.StatusMet}}},
		{"SMR stay is not an index stay", person("1955-03-14", "male", func() pathway.Fact {
			f := index("", "8")
			f.ServiceType = []pathway.Coding{coding(vocab.PMSIFieldSystem, "SMR")}
			return f
		}()), late, nil},
	})
}

func TestR7AbnormalResult(t *testing.T) {
	res := "2026-05-14"
	idx := "Observation/bnp"
	bnp := func(interp string) pathway.Fact { return obs(idx, res, vocab.SystemLOINC, "33762-6", interp) }
	late := "2026-12-31"
	runRule(t, "R7", []ruleCase{
		{"GP visit on day 30", person("1948-08-13", "male", bnp("H"), visit("Encounter/gp", after(res, 30), "AMB", "medecine-generale")), late,
			[]got{{Index: idx, IndexDate: res, Status: pathway.StatusMet, Evidence: []string{"Encounter/gp"}}}},
		{"GP visit on day 31", person("1948-08-13", "male", bnp("H"), visit("Encounter/gp", after(res, 31), "AMB", "medecine-generale")), late,
			[]got{{Index: idx, IndexDate: res, Status: pathway.StatusRupture}}},
		{"repeat test with the same code", person("1948-08-13", "male", bnp("HH"), obs("Observation/again", after(res, 10), vocab.SystemLOINC, "33762-6", "H")), late,
			[]got{{Index: idx, IndexDate: res, Status: pathway.StatusMet, Evidence: []string{"Observation/again"}}, {Index: "Observation/again", IndexDate: after(res, 10), Status: pathway.StatusRupture}}},
		{"another test is no follow-up", person("1948-08-13", "male", bnp("L"), obs("Observation/crea", after(res, 10), vocab.SystemLOINC, "2160-0", "")), late,
			[]got{{Index: idx, IndexDate: res, Status: pathway.StatusRupture}}},
		{"service request the next day", person("1948-08-13", "male", bnp("A"), pathway.Fact{Ref: "ServiceRequest/sr", Type: "ServiceRequest", Start: day(after(res, 1))}), late,
			[]got{{Index: idx, IndexDate: res, Status: pathway.StatusMet, Evidence: []string{"ServiceRequest/sr"}}}},
		{"hospital stay", person("1948-08-13", "male", bnp("AA"), stay("Encounter/s", after(res, 3), after(res, 8), "05M092", "5", "8")), late,
			[]got{{Index: idx, IndexDate: res, Status: pathway.StatusMet, Evidence: []string{"Encounter/s"}, Cost: 3900, CostRefs: []string{"Encounter/s"}}}},
		{"normal result", person("1948-08-13", "male", bnp("N")), late, nil},
		{"positive (POS) is not in the list", person("1948-08-13", "male", bnp("POS")), late, nil},
		{"died on day 4", dead(person("1948-08-13", "male", bnp("LL")), after(res, 4)), late,
			[]got{{Index: idx, IndexDate: res, Status: pathway.StatusCensored, Censor: "death"}}},
	})
}

func TestR4R6R8R9R10(t *testing.T) {
	late := "2026-12-31"
	mi := stay("Encounter/mi", "2026-07-01", "2026-07-08", "05K061", "5", "8", dx("DP", "I21.4"))
	smr := func(n int) pathway.Fact {
		f := stay("Encounter/smr", after("2026-07-08", n), after("2026-07-08", n+20), "", "1", "8")
		f.ServiceType = []pathway.Coding{coding(vocab.PMSIFieldSystem, "SMR")}
		return f
	}
	runRule(t, "R4", []ruleCase{
		{"SMR stay on day 90", person("1952-09-03", "male", mi, smr(90)), late,
			[]got{{Index: "Encounter/mi", IndexDate: "2026-07-08", Status: pathway.StatusMet, Evidence: []string{"Encounter/smr"}}}},
		{"no rehabilitation", person("1952-09-03", "male", mi), late,
			[]got{{Index: "Encounter/mi", IndexDate: "2026-07-08", Status: pathway.StatusRupture}}},
		{"aged 80", person("1946-07-08", "male", mi), late, nil},
	})
	runRule(t, "R6", []ruleCase{
		{"next dispensation within supply + 60 days", person("1960-01-01", "male",
			dispense("MedicationDispense/1", "2026-01-01", "C10AA05", 30), dispense("MedicationDispense/2", after("2026-01-01", 90), "C10AA07", 30)), late,
			[]got{{Index: "MedicationDispense/1", IndexDate: "2026-01-01", Status: pathway.StatusMet, Evidence: []string{"MedicationDispense/2"}},
				{Index: "MedicationDispense/2", IndexDate: after("2026-01-01", 90), Status: pathway.StatusRupture}}},
		{"gap of 91 days after a 30-day supply", person("1960-01-01", "male",
			dispense("MedicationDispense/1", "2026-01-01", "C10AA05", 30), dispense("MedicationDispense/2", after("2026-01-01", 91), "C10AA05", 30)), "2026-06-01",
			[]got{{Index: "MedicationDispense/1", IndexDate: "2026-01-01", Status: pathway.StatusRupture},
				{Index: "MedicationDispense/2", IndexDate: after("2026-01-01", 91), Status: pathway.StatusPending}}},
		{"another class does not continue the treatment", person("1960-01-01", "male",
			dispense("MedicationDispense/1", "2026-01-01", "C10AA05", 30), dispense("MedicationDispense/2", "2026-02-01", "C07AB02", 30)), late,
			[]got{{Index: "MedicationDispense/1", IndexDate: "2026-01-01", Status: pathway.StatusRupture}}},
	})
	runRule(t, "R8", []ruleCase{
		{"hip fracture then bisphosphonate", person("1941-04-17", "male", condition("Condition/hip", "2025-01-05", "S72.0", "DP"), dispense("MedicationDispense/bp", "2025-03-01", "M05BA04", 28)), late,
			[]got{{Index: "Condition/hip", IndexDate: "2025-01-05", Status: pathway.StatusMet, Evidence: []string{"MedicationDispense/bp"}}}},
		{"hip fracture as DAS is no index", person("1941-04-17", "male", condition("Condition/hip", "2025-01-05", "S72.0", "DAS")), late, nil},
		{"aged 49", person("1975-06-01", "male", condition("Condition/hip", "2025-01-05", "S72.0", "DP")), late, nil},
	})
	runRule(t, "R9", []ruleCase{
		{"chemotherapy session 60 days after the first diagnosis", person("1962-01-08", "female",
			condition("Condition/c1", "2026-04-14", "C18.7", "DP"), condition("Condition/c2", "2026-05-20", "C18.7", "DR"),
			stay("Encounter/chemo", after("2026-04-14", 60), after("2026-04-14", 60), "28Z07Z", "", "8")), late,
			[]got{{Index: "Condition/c1", IndexDate: "2026-04-14", Status: pathway.StatusMet, Evidence: []string{"Encounter/chemo"}}}},
		{"treatment after 61 days", person("1962-01-08", "female",
			condition("Condition/c1", "2026-04-14", "C18.7", "DP"), procedure("Procedure/colectomy", after("2026-04-14", 61), "HHFA008", "chirurgical-interventionnel")), late,
			[]got{{Index: "Condition/c1", IndexDate: "2026-04-14", Status: pathway.StatusRupture}}},
		{"surgery on the day of diagnosis", person("1962-01-08", "female",
			condition("Condition/c1", "2026-04-14", "C18.7", "DP"), procedure("Procedure/colectomy", "2026-04-14", "HHFA008", "chirurgical-interventionnel")), late,
			[]got{{Index: "Condition/c1", IndexDate: "2026-04-14", Status: pathway.StatusMet, Evidence: []string{"Procedure/colectomy"}}}},
	})
	runRule(t, "R10", []ruleCase{
		{"vaccinated in the year", person("1950-01-01", "female", pathway.Fact{Ref: "Immunization/flu", Type: "Immunization", Start: day("2026-10-20"), Codes: []pathway.Coding{coding(vocab.SystemATC, "J07BB02")}}), late,
			[]got{{IndexDate: late, Status: pathway.StatusMet, Evidence: []string{"Immunization/flu"}}}},
		{"not vaccinated", person("1950-01-01", "female"), late, []got{{IndexDate: late, Status: pathway.StatusRupture}}},
		{"aged 64", person("1962-06-01", "female"), late, nil},
	})
}

// TestFindingFields checks the fields the caller stores: key, rule
// identity, window, establishment, age, cost perspective.
func TestFindingFields(t *testing.T) {
	rules := []pathway.Rule{rule(t, "R1"), rule(t, "R2")}
	p := person("1955-03-14", "male", hf("Encounter/idx"),
		dispense("MedicationDispense/1", "2026-01-15", "A10BA02", 90), dispense("MedicationDispense/2", "2026-04-15", "A10BA02", 90),
		dispense("MedicationDispense/3", "2026-07-15", "A10BA02", 90))
	fs := pathway.Detect(rules, p, day("2026-12-31"))
	want := []pathway.Finding{
		{
			Key: "R1|Encounter/idx", RuleID: "R1", Code: "no-gp-after-discharge", Version: "1.0.0", Severity: "high", Kind: pathway.KindAbsence,
			Patient: "Patient/p1", Index: "Encounter/idx", IndexDate: day(dis),
			Window: pathway.Period{Start: day(dis), End: day(after(dis, 7)), EndInclusive: true},
			Status: pathway.StatusRupture, Establishment: "750712184", Age: 70,
			Cost: &pathway.CostResult{Perspective: "AMO", Currency: "EUR"},
		},
		{
			Key: "R2|Patient/p1|2026", RuleID: "R2", Code: "missed-monitoring-test", Version: "1.0.0", Severity: "moderate", Kind: pathway.KindAbsence,
			Patient: "Patient/p1", IndexDate: day("2026-12-31"),
			Window: pathway.Period{Start: day("2025-12-31"), End: day("2026-12-31"), StartInclusive: true, EndInclusive: true},
			Status: pathway.StatusRupture, Age: 71,
		},
	}
	if diff := cmp.Diff(want, fs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		start, end string
		want       bool
	}{
		{dis, dis, true}, {"2026-01-01", "2026-03-09", false}, {"2026-03-11", "2026-12-31", false}, {"2026-01-01", "2026-12-31", true},
	} {
		if got := pathway.InPeriod(fs[0], day(tc.start), day(tc.end)); got != tc.want {
			t.Errorf("InPeriod(%s, %s) = %v, want %v", tc.start, tc.end, got, tc.want)
		}
	}
}

// TestDetectUnsortedFacts: a hand-built patient whose facts are not in
// date order gives the same findings as the sorted one.
func TestDetectUnsortedFacts(t *testing.T) {
	rules, err := pathway.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	gp := visit("Encounter/gp", after(dis, 5), "AMB", "medecine-generale")
	sorted := person("1955-03-14", "male", hf("Encounter/idx"), gp)
	unsorted := person("1955-03-14", "male", gp, hf("Encounter/idx"))
	asOf := day("2026-12-31")
	want := pathway.Detect(rules, sorted, asOf)
	if len(want) == 0 {
		t.Fatal("no finding for the sorted patient")
	}
	if diff := cmp.Diff(want, pathway.Detect(rules, unsorted, asOf)); diff != "" {
		t.Errorf("unsorted facts (-sorted +unsorted):\n%s", diff)
	}
}
