package gen

import (
	"math/rand/v2"
	"testing"
	"time"
)

func mustDate(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The oracle against the rule definitions, on hand-made records: each case
// is one patient and the outcome the definition gives.

type rec struct {
	g     *generator
	p     *person
	stays []*stay
	acts  []*act
}

func newRec(t *testing.T, sex byte, ageAtAsOf int) *rec {
	t.Helper()
	g, err := newGenerator(Config{})
	if err != nil {
		t.Fatal(err)
	}
	pl := g.cat.places[0]
	p := &person{sex: sex, birth: g.birthFor(rand.New(rand.NewPCG(1, 2)), ageAtAsOf), ins: "1TEST", place: pl, gp: pl.gps[1], pharmacy: pl.pharmacies[1], hosp: pl.hospitals[0]}
	return &rec{g: g, p: p}
}

func (r *rec) stay(adm, dis day, dp, ghm string, mods ...func(*stay)) *rec {
	s := r.g.newStay(r.p, adm, dis, dp, kindMedical, "x")
	s.ghm, s.ins, s.id = ghm, r.p.ins, "S"+string(rune('A'+len(r.stays)))
	for _, m := range mods {
		m(s)
	}
	r.stays = append(r.stays, s)
	return r
}

func (r *rec) act(a *act) *rec {
	a.p, a.ins = r.p, r.p.ins
	r.acts = append(r.acts, a)
	return r
}

func (r *rec) visit(who *pro, d day, kind, code string) *rec {
	return r.act(&act{pro: who, date: d, kind: kind, system: "ngap", code: code})
}

func (r *rec) lab(d day, loinc, interp string) *rec {
	return r.act(&act{pro: r.p.place.lab, date: d, kind: "lab-result", system: "loinc", code: loinc, value: "1", interp: interp})
}

func (r *rec) outcome(rule string, d day) string {
	o := newOracle(r.g, r.stays, r.acts, nil, nil)
	o.rules()
	return o.outcome(rule, r.p.ins, d)
}

func TestOracleDefinitions(t *testing.T) {
	asOf := dayOf(DefaultAsOf)
	b := asOf - 300
	gp := func(r *rec) *pro { return r.p.place.gps[0] }
	tests := []struct {
		name  string
		sex   byte
		age   int
		build func(r *rec)
		rule  string
		date  day
		want  string
	}{
		{"R1 GP consultation on day 7", '1', 70, func(r *rec) { r.stay(b-5, b, "I50.9", "05M092").visit(gp(r), b+7, "consultation", "G") }, ruleR1, b, outNoRupture},
		{"R1 GP consultation on day 8", '1', 70, func(r *rec) { r.stay(b-5, b, "I50.9", "05M092").visit(gp(r), b+8, "consultation", "G") }, ruleR1, b, outRupture},
		{"R1 GP on the discharge day", '1', 70, func(r *rec) { r.stay(b-5, b, "I50.9", "05M092").visit(gp(r), b, "consultation", "G") }, ruleR1, b, outRupture},
		{"R1 GP teleconsultation", '2', 70, func(r *rec) { r.stay(b-5, b, "I11.0", "05M092").visit(gp(r), b+2, "teleconsultation", "TCG") }, ruleR1, b, outNoRupture},
		{"R1 cardiologist is not a GP", '2', 70, func(r *rec) {
			r.stay(b-5, b, "I13.2", "05M092").visit(r.p.place.cardiologist, b+2, "consultation", "CS")
		}, ruleR1, b, outRupture},
		{"R1 GP procedure is not a consultation", '2', 70, func(r *rec) { r.stay(b-5, b, "I50.1", "05M092").visit(gp(r), b+2, "procedure", "G") }, ruleR1, b, outRupture},
		{"R1 related diagnosis", '1', 70, func(r *rec) {
			r.stay(b-5, b, "Z45.0", "05M092", withDR("I50.0")).visit(gp(r), b+1, "consultation", "G")
		}, ruleR1, b, outNoRupture},
		{"R1 I11.9 is not heart failure", '1', 70, func(r *rec) { r.stay(b-5, b, "I11.9", "05M092") }, ruleR1, b, outNotIndex},
		{"R1 associated diagnosis only", '1', 70, func(r *rec) { r.stay(b-5, b, "J18.9", "04M052", withDAS("I50.9")) }, ruleR1, b, outNotIndex},
		{"R1 transferred", '1', 70, func(r *rec) { r.stay(b-5, b, "I50.9", "05M092", discharge("7")) }, ruleR1, b, outNotIndex},
		{"R1 SMR stay", '1', 70, func(r *rec) { r.stay(b-5, b, "I50.9", "", unit("SMR"), discharge("8")) }, ruleR1, b, outNotIndex},
		{"R1 younger than 18 at discharge", '1', 19, func(r *rec) { r.stay(asOf-1000, asOf-995, "I50.9", "05M092") }, ruleR1, asOf - 995, outNotIndex},
		{"R1 new stay on day 7 censors", '1', 70, func(r *rec) {
			r.stay(b-5, b, "I50.9", "05M092").stay(b+7, b+9, "J18.9", "04M052").visit(gp(r), b+3, "consultation", "G")
		}, ruleR1, b, outCensored},
		{"R1 new stay on day 8 does not censor", '1', 70, func(r *rec) { r.stay(b-5, b, "I50.9", "05M092").stay(b+8, b+9, "J18.9", "04M052") }, ruleR1, b, outRupture},
		{"R1 death in the window censors", '1', 80, func(r *rec) { r.stay(b-5, b, "I50.9", "05M092").stay(b+2, b+6, "I50.9", "05M094", discharge("9")) }, ruleR1, b, outCensored},
		{"R5 emergency readmission on day 30", '1', 60, func(r *rec) { r.stay(b-5, b, "J18.9", "04M052").stay(b+30, b+32, "J18.9", "04M052", emergency) }, ruleR5, b, outRupture},
		{"R5 emergency readmission on day 31", '1', 60, func(r *rec) { r.stay(b-5, b, "J18.9", "04M052").stay(b+31, b+32, "J18.9", "04M052", emergency) }, ruleR5, b, outNoRupture},
		{"R5 readmission on the discharge day", '1', 60, func(r *rec) { r.stay(b-5, b, "J18.9", "04M052").stay(b, b+2, "J18.9", "04M052", emergency) }, ruleR5, b, outNoRupture},
		{"R5 scheduled readmission", '1', 60, func(r *rec) { r.stay(b-5, b, "J18.9", "04M052").stay(b+3, b+5, "J18.9", "04M052") }, ruleR5, b, outNoRupture},
		{"R5 emergency SMR stay counts", '1', 60, func(r *rec) {
			r.stay(b-5, b, "J18.9", "04M052").stay(b+3, b+5, "J18.9", "", func(s *stay) { s.unit, s.admSource = "SMR", "5" })
		}, ruleR5, b, outRupture},
		{"R5 death is not an index", '1', 80, func(r *rec) { r.stay(b-5, b, "J18.9", "04M054", discharge("9")) }, ruleR5, b, outNotIndex},
		{"R5 transfer is not an index", '1', 60, func(r *rec) { r.stay(b-5, b, "J18.9", "04M054", discharge("7")) }, ruleR5, b, outNotIndex},
		{"R5 mutation (6) is an index", '1', 60, func(r *rec) { r.stay(b-5, b, "J18.9", "04M054", discharge("6")) }, ruleR5, b, outNoRupture},
		{"R5 session is not an index", '2', 60, func(r *rec) { r.stay(b, b, "Z51.1", "28Z07Z") }, ruleR5, b, outNotIndex},
		{"R5 obstetrics is not an index", '2', 30, func(r *rec) { r.stay(b-3, b, "O80", "14Z14A") }, ruleR5, b, outNotIndex},
		{"R5 newborn GHM is not an index", '2', 30, func(r *rec) { r.stay(b-3, b, "P07.3", "15M051") }, ruleR5, b, outNotIndex},
		{"R5 stay without GHM is an index", '1', 60, func(r *rec) { r.stay(b-3, b, "J18.9", "") }, ruleR5, b, outNoRupture},
		{"R7 consultation on day 30", '1', 50, func(r *rec) { r.lab(b, "2160-0", "H").visit(r.p.place.cardiologist, b+30, "consultation", "CS") }, ruleR7, b, outNoRupture},
		{"R7 consultation on day 31", '1', 50, func(r *rec) { r.lab(b, "2160-0", "H").visit(gp(r), b+31, "consultation", "G") }, ruleR7, b, outRupture},
		{"R7 same-day consultation", '1', 50, func(r *rec) { r.lab(b, "2160-0", "LL").visit(gp(r), b, "consultation", "G") }, ruleR7, b, outRupture},
		{"R7 repeat of the same test", '1', 50, func(r *rec) { r.lab(b, "2823-3", "HH").lab(b+20, "2823-3", "N") }, ruleR7, b, outNoRupture},
		{"R7 another test", '1', 50, func(r *rec) { r.lab(b, "2823-3", "A").lab(b+20, "2160-0", "N") }, ruleR7, b, outRupture},
		{"R7 HbA1c repeated as NABM 1577", '1', 50, func(r *rec) {
			r.lab(b, "4548-4", "AA").act(&act{pro: r.p.place.lab, date: b + 5, kind: "lab-result", system: "nabm", code: "1577", value: "6"})
		}, ruleR7, b, outNoRupture},
		{"R7 admission within 30 days", '1', 50, func(r *rec) { r.lab(b, "718-7", "L").stay(b+30, b+31, "D62", "16M111") }, ruleR7, b, outNoRupture},
		{"R7 normal result is not an index", '1', 50, func(r *rec) { r.lab(b, "718-7", "N") }, ruleR7, b, outNotIndex},
		{"R7 positive FIT is not an index", '1', 60, func(r *rec) { r.lab(b, "29771-3", "POS") }, ruleR7, b, outNotIndex},
		{"R2 three dispensations, tested", '1', 60, func(r *rec) {
			for _, d := range []day{asOf - 300, asOf - 200, asOf - 100} {
				r.act(&act{pro: r.p.pharmacy, date: d, kind: "dispensation", system: "atc", code: "A10BA02"})
			}
			r.lab(asOf.addYears(-1), "4548-4", "N")
		}, ruleR2, asOf, outNoRupture},
		{"R2 three dispensations on two dates", '1', 60, func(r *rec) {
			for _, d := range []day{asOf - 300, asOf - 300, asOf - 100} {
				r.act(&act{pro: r.p.pharmacy, date: d, kind: "dispensation", system: "atc", code: "A10BA02", qty: "1"})
			}
		}, ruleR2, asOf, outNotPopulation},
		{"R2 dispensation 12 months and a day before does not count", '1', 60, func(r *rec) {
			for _, d := range []day{asOf.addYears(-1) - 1, asOf - 200, asOf - 100} {
				r.act(&act{pro: r.p.pharmacy, date: d, kind: "dispensation", system: "atc", code: "A10BJ06"})
			}
		}, ruleR2, asOf, outNotPopulation},
		{"R2 diagnosis E13, old test", '2', 60, func(r *rec) { r.stay(asOf-900, asOf-897, "E13.9", "10M161").lab(asOf.addYears(-1)-1, "4548-4", "N") }, ruleR2, asOf, outRupture},
		{"R2 diagnosis E10 as DAS, NABM test", '2', 40, func(r *rec) {
			r.stay(asOf-900, asOf-897, "J18.9", "04M052", withDAS("E10.9")).act(&act{pro: r.p.place.lab, date: asOf - 10, kind: "lab-result", system: "nabm", code: "1577", value: "7"})
		}, ruleR2, asOf, outNoRupture},
		{"R2 E15 is not diabetes", '2', 60, func(r *rec) { r.stay(asOf-900, asOf-897, "E15", "10M161") }, ruleR2, asOf, outNotPopulation},
		{"R3 breast: mammography exactly 2 years before", '2', 60, func(r *rec) {
			r.act(&act{pro: r.p.place.radiologist, date: asOf.addYears(-2), kind: "procedure", system: "ccam", code: "QEQK004"})
		}, ruleR3Breast, asOf, outNoRupture},
		{"R3 breast: mammography 2 years and a day before", '2', 60, func(r *rec) {
			r.act(&act{pro: r.p.place.radiologist, date: asOf.addYears(-2) - 1, kind: "procedure", system: "ccam", code: "QEQK004"})
		}, ruleR3Breast, asOf, outRupture},
		{"R3 breast: hospital act", '2', 74, func(r *rec) { r.stay(asOf-50, asOf-50, "Z12.3", "23K02Z", withActs(stayAct{"QEQK004", asOf - 50})) }, ruleR3Breast, asOf, outNoRupture},
		{"R3 breast: aged 49", '2', 49, func(r *rec) { r.visit(gp(r), asOf-100, "consultation", "G") }, ruleR3Breast, asOf, outNotPopulation},
		{"R3 breast: aged 50", '2', 50, func(r *rec) { r.visit(gp(r), asOf-100, "consultation", "G") }, ruleR3Breast, asOf, outRupture},
		{"R3 breast: aged 75", '2', 75, func(r *rec) { r.visit(gp(r), asOf-100, "consultation", "G") }, ruleR3Breast, asOf, outNotPopulation},
		{"R3 breast: men are not in it", '1', 60, func(r *rec) { r.visit(gp(r), asOf-100, "consultation", "G") }, ruleR3Breast, asOf, outNotPopulation},
		{"R3 colorectal: FIT within 2 years", '1', 60, func(r *rec) { r.lab(asOf-700, "29771-3", "NEG") }, ruleR3Colorectal, asOf, outNoRupture},
		{"R3 colorectal: FIT 2 years and a day before", '1', 60, func(r *rec) { r.lab(asOf.addYears(-2)-1, "29771-3", "NEG") }, ruleR3Colorectal, asOf, outRupture},
		{"R3 colorectal: colonoscopy 4 years before", '2', 60, func(r *rec) {
			r.act(&act{pro: r.p.place.gastro, date: asOf.addYears(-4), kind: "procedure", system: "ccam", code: "HHQE005"})
		}, ruleR3Colorectal, asOf, outNoRupture},
		{"R3 colorectal: colonoscopy as a stay act", '1', 70, func(r *rec) { r.stay(asOf-999, asOf-999, "Z12.1", "06K02Z", withActs(stayAct{"HHQE002", asOf - 999})) }, ruleR3Colorectal, asOf, outNoRupture},
		{"R3 colorectal: C19 excluded", '1', 60, func(r *rec) { r.stay(asOf-500, asOf-490, "C19", "06C041") }, ruleR3Colorectal, asOf, outExcluded},
		{"R3 colorectal: K50 as DAS excluded", '1', 60, func(r *rec) { r.stay(asOf-500, asOf-490, "J18.9", "04M052", withDAS("K50.1")) }, ruleR3Colorectal, asOf, outExcluded},
		{"R3 colorectal: C21 not excluded", '1', 60, func(r *rec) { r.stay(asOf-500, asOf-490, "C21.0", "06C041") }, ruleR3Colorectal, asOf, outRupture},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRec(t, tt.sex, tt.age)
			tt.build(r)
			if got := r.outcome(tt.rule, tt.date); got != tt.want {
				t.Errorf("%s at %v: %s, want %s", tt.rule, tt.date, got, tt.want)
			}
		})
	}
}

// TestPlanted: the oracle finds, in the generated rows, the outcome each
// planted case was written to have, for several seeds (the planted
// patients are the same situations with other people around them).
func TestPlanted(t *testing.T) {
	for _, seed := range []uint64{1, 2, 7} {
		g, err := newGenerator(Config{Patients: 120, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		ds := g.data()
		if len(ds.planted) == 0 {
			t.Fatal("no planted case")
		}
		o := newOracle(g, ds.stays, ds.acts, ds.members, ds.claims)
		o.rules()
		ids := map[string]bool{}
		for _, pc := range ds.planted {
			ids[pc.ID] = true
			d := dayOf(mustDate(t, pc.IndexDate))
			if got := o.outcome(pc.Rule, pc.INS, d); got != pc.Expect {
				t.Errorf("seed %d, %s: %s at %s is %s, want %s (%s)", seed, pc.ID, pc.Rule, pc.IndexDate, got, pc.Expect, pc.Note)
			}
		}
		if len(ids) != len(scenarios) {
			t.Errorf("seed %d: %d planted scenarios, want %d", seed, len(ids), len(scenarios))
		}
	}
}
