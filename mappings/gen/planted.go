package gen

// Planted cases: the first patients of a file (as many as there are
// scenarios, fewer if the file is smaller) each carry one situation of the
// rupture rules, with nothing else in their record that could change its
// outcome: clear cases and the exact window boundaries (day 7 against day
// 8, day 30 against day 31, the index day itself). Each states the
// outcome its author expects; the oracle computes the outcome from the rows
// (TestPlanted checks that the two agree).

// Outcomes of an index event (or of a population member at AsOf).
const (
	outRupture   = "rupture"
	outNoRupture = "no-rupture"
	outCensored  = "censored"
	outExcluded  = "excluded"
	// absence: the event is not an index event, the person not in the
	// population.
	outNotIndex      = "not-index"
	outNotPopulation = "not-in-population"
)

// Rule identifiers (keys of Expected.Rules) and their rupture codes.
const (
	ruleR1           = "R1"
	ruleR2           = "R2"
	ruleR3Breast     = "R3-breast"
	ruleR3Colorectal = "R3-colorectal"
	ruleR5           = "R5"
	ruleR7           = "R7"
)

var ruleCodes = map[string]string{
	ruleR1:           "no-gp-after-discharge",
	ruleR2:           "missed-monitoring-test",
	ruleR3Breast:     "missed-screening",
	ruleR3Colorectal: "missed-screening",
	ruleR5:           "early-readmission",
	ruleR7:           "abnormal-result-not-followed",
}

type check struct {
	rule   string
	date   day
	expect string
}

type scenario struct {
	id, note string
	sex      byte
	age      int
	build    func(g *generator, p *person, b day) []check
}

// pstay adds a stay to a planted person: MCO, discharged home, admitted
// from home without the emergency department unless mods say otherwise.
func (g *generator) pstay(p *person, adm, dis day, dp, ghm string, mods ...func(*stay)) *stay {
	s := g.newStay(p, adm, dis, dp, kindMedical, "Médecine interne")
	s.ghm = ghm
	for _, m := range mods {
		m(s)
	}
	s.ins, s.seq = p.ins, len(p.stays)
	p.stays = append(p.stays, s)
	return s
}

func emergency(s *stay) { s.admSource = "5" }

func withDR(dr string) func(*stay) { return func(s *stay) { s.dr = dr } }

func withDAS(das ...string) func(*stay) { return func(s *stay) { s.das = das } }

func withActs(acts ...stayAct) func(*stay) { return func(s *stay) { s.acts = acts } }

func discharge(mode string) func(*stay) { return func(s *stay) { s.disMode = mode } }

func unit(u string) func(*stay) {
	return func(s *stay) { s.unit, s.ghm, s.admMode, s.admSource, s.kind = u, "", "7", "1", kindRehab }
}

func (g *generator) pgp(p *person, d day, code string) { g.consult(p, p.gp, d, code) }

func (g *generator) plab(p *person, d day, t labTest, interp string) {
	v, in := result(p.r, t, interp)
	g.add(p, &act{pro: p.place.lab, date: d, kind: "lab-result", system: "loinc", code: t.loinc, value: v, unit: t.unit, interp: in})
}

func (g *generator) pfit(p *person, d day, value, interp string) {
	g.add(p, &act{pro: p.place.lab, date: d, kind: "lab-result", system: "loinc", code: tFIT.loinc, value: value, unit: "ng/mL", interp: interp})
}

func (g *generator) pmetformin(p *person, offsets ...int) {
	for _, o := range offsets {
		g.dispense(p, p.pharmacy, g.asOf-day(o), "A10BA02", "3", 90)
	}
}

// hf is a planted heart-failure stay of 8 days discharged home on b.
func (g *generator) hf(p *person, b day, dp string, mods ...func(*stay)) *stay {
	return g.pstay(p, b-8, b, dp, "05M092", append([]func(*stay){emergency}, mods...)...)
}

var scenarios = []scenario{
	{"R1-gp-day-7", "heart-failure discharge, GP consultation on day 7", '1', 78, func(g *generator, p *person, b day) []check {
		g.hf(p, b, "I50.0")
		g.pgp(p, b+7, "G")
		return []check{{ruleR1, b, outNoRupture}}
	}},
	{"R1-gp-day-8", "heart-failure discharge, GP consultation on day 8", '1', 81, func(g *generator, p *person, b day) []check {
		g.hf(p, b, "I50.9")
		g.pgp(p, b+8, "G")
		return []check{{ruleR1, b, outRupture}}
	}},
	{"R1-gp-on-discharge-day", "GP seen on the day of discharge (outside the window) and on day 20", '2', 84, func(g *generator, p *person, b day) []check {
		g.hf(p, b, "I50.1")
		g.pgp(p, b, "G")
		g.pgp(p, b+20, "G")
		return []check{{ruleR1, b, outRupture}}
	}},
	{"R1-teleconsultation-day-1", "GP teleconsultation (TCG) the day after discharge", '2', 79, func(g *generator, p *person, b day) []check {
		g.hf(p, b, "I50.0")
		g.pgp(p, b+1, "TCG")
		return []check{{ruleR1, b, outNoRupture}}
	}},
	{"R1-cardiologist-only", "cardiologist on day 3, GP on day 15: a cardiologist is not the GP", '1', 72, func(g *generator, p *person, b day) []check {
		g.hf(p, b, "I50.9")
		g.consult(p, p.place.cardiologist, b+3, "CS")
		g.pgp(p, b+15, "G")
		return []check{{ruleR1, b, outRupture}}
	}},
	{"R1-censored-readmission", "readmitted through the emergency department on day 5; the second stay is followed on its day 3", '1', 83, func(g *generator, p *person, b day) []check {
		g.hf(p, b, "I50.0")
		g.pstay(p, b+5, b+12, "I50.9", "05M092", emergency)
		g.pgp(p, b+15, "G")
		return []check{{ruleR1, b, outCensored}, {ruleR1, b + 12, outNoRupture}, {ruleR5, b, outRupture}}
	}},
	{"R1-censored-death", "admitted again on day 4 and died on day 6", '1', 88, func(g *generator, p *person, b day) []check {
		g.hf(p, b, "I50.0")
		g.pstay(p, b+4, b+6, "I50.0", "05M094", emergency, discharge("9"))
		p.end = b + 3
		return []check{{ruleR1, b, outCensored}, {ruleR5, b, outRupture}, {ruleR5, b + 6, outNotIndex}}
	}},
	{"R1-related-diagnosis", "heart failure as the related diagnosis (DR) of a Z-coded stay, GP on day 4", '2', 76, func(g *generator, p *person, b day) []check {
		g.hf(p, b, "Z45.0", withDR("I50.0"))
		g.pgp(p, b+4, "G")
		return []check{{ruleR1, b, outNoRupture}}
	}},
	{"R1-hypertensive-heart-and-kidney", "DP I13.0, first GP consultation on day 30", '1', 74, func(g *generator, p *person, b day) []check {
		g.hf(p, b, "I13.0")
		g.pgp(p, b+30, "G")
		return []check{{ruleR1, b, outRupture}}
	}},
	{"R1-transfer-not-index", "heart-failure stay transferred (mode 7) to an SMR stay", '2', 85, func(g *generator, p *person, b day) []check {
		g.hf(p, b, "I50.0", discharge("7"))
		g.pstay(p, b, b+21, "I50.9", "", unit("SMR"))
		g.pgp(p, b+23, "G")
		return []check{{ruleR1, b, outNotIndex}, {ruleR5, b, outNotIndex}, {ruleR1, b + 21, outNotIndex}}
	}},
	{"R1-heart-failure-secondary", "heart failure only as an associated diagnosis (DAS) of a hip-fracture stay", '1', 80, func(g *generator, p *person, b day) []check {
		g.pstay(p, b-10, b, "S72.0", "08C472", emergency, withDAS("I50.9"), withActs(stayAct{"NEKA020", b - 9}))
		return []check{{ruleR1, b, outNotIndex}, {ruleR5, b, outNoRupture}}
	}},
	{"R5-readmission-day-30", "pneumonia, readmitted through the emergency department on day 30", '1', 67, func(g *generator, p *person, b day) []check {
		g.pstay(p, b-7, b, "J18.9", "04M052", emergency)
		g.pstay(p, b+30, b+36, "J18.9", "04M053", emergency)
		return []check{{ruleR5, b, outRupture}, {ruleR5, b + 36, outNoRupture}}
	}},
	{"R5-readmission-day-31", "pneumonia, readmitted through the emergency department on day 31", '2', 71, func(g *generator, p *person, b day) []check {
		g.pstay(p, b-7, b, "J18.9", "04M052", emergency)
		g.pstay(p, b+31, b+37, "J18.9", "04M053", emergency)
		return []check{{ruleR5, b, outNoRupture}}
	}},
	{"R5-scheduled-readmission", "readmitted on day 10, not through the emergency department", '1', 69, func(g *generator, p *person, b day) []check {
		g.pstay(p, b-7, b, "J18.9", "04M052", emergency)
		g.pstay(p, b+10, b+12, "J18.9", "04M051")
		return []check{{ruleR5, b, outNoRupture}}
	}},
	{"R5-session-not-index", "colon cancer: a chemotherapy session (GHM 28) followed by an emergency stay on day 10", '2', 62, func(g *generator, p *person, b day) []check {
		g.pstay(p, b-60, b-60, "C18.7", "06K02Z", withActs(stayAct{"HHQE002", b - 60}))
		g.pstay(p, b-40, b-32, "C18.7", "06C041", withActs(stayAct{"HHFA008", b - 39}))
		g.pstay(p, b, b, "Z51.1", "28Z07Z", withDR("C18.7"))
		g.pstay(p, b+10, b+15, "K56.6", "06M101", emergency)
		return []check{{ruleR5, b, outNotIndex}, {ruleR5, b - 32, outNoRupture}, {ruleR3Colorectal, g.asOf, outExcluded}}
	}},
	{"R5-obstetric-not-index", "delivery (GHM 14) then an emergency stay for a puerperal infection on day 8", '2', 31, func(g *generator, p *person, b day) []check {
		g.pstay(p, b-3, b, "O80", "14Z14A", withActs(stayAct{"JQGD010", b - 3}))
		g.pstay(p, b+8, b+12, "O86.0", "14M03Z", emergency)
		return []check{{ruleR5, b, outNotIndex}}
	}},
	{"R7-visit-day-30", "high creatinine, GP consultation on day 30", '1', 58, func(g *generator, p *person, b day) []check {
		g.plab(p, b, tCreat, "H")
		g.pgp(p, b+30, "G")
		return []check{{ruleR7, b, outNoRupture}}
	}},
	{"R7-visit-day-31", "low potassium, GP consultation on day 31", '2', 45, func(g *generator, p *person, b day) []check {
		g.plab(p, b, tK, "L")
		g.pgp(p, b+31, "G")
		return []check{{ruleR7, b, outRupture}}
	}},
	{"R7-repeat-same-test", "high ALT, the same test repeated (normal) on day 14", '1', 52, func(g *generator, p *person, b day) []check {
		g.plab(p, b, tALT, "H")
		g.plab(p, b+14, tALT, "N")
		return []check{{ruleR7, b, outNoRupture}, {ruleR7, b + 14, outNotIndex}}
	}},
	{"R7-other-test-only", "high TSH, only another test (glucose) within 30 days", '2', 38, func(g *generator, p *person, b day) []check {
		g.plab(p, b, tTSH, "H")
		g.plab(p, b+10, tGlucose, "N")
		return []check{{ruleR7, b, outRupture}}
	}},
	{"R7-admission-day-3", "critically low haemoglobin, admitted on day 3", '1', 66, func(g *generator, p *person, b day) []check {
		g.plab(p, b, tHb, "LL")
		g.pstay(p, b+3, b+7, "D62", "16M111", emergency)
		return []check{{ruleR7, b, outNoRupture}}
	}},
	{"R7-visit-same-day", "critically high NT-proBNP, GP seen the same day (outside the window) and on day 40", '2', 77, func(g *generator, p *person, b day) []check {
		g.plab(p, b, tNTproBNP, "HH")
		g.pgp(p, b, "G")
		g.pgp(p, b+40, "G")
		return []check{{ruleR7, b, outRupture}}
	}},
	{"R2-tested", "metformin every 90 days, HbA1c 100 days before AsOf", '1', 64, func(g *generator, p *person, b day) []check {
		g.pmetformin(p, 600, 510, 420, 330, 240, 150, 60)
		g.plab(p, g.asOf-100, tHbA1c, "N")
		return []check{{ruleR2, g.asOf, outNoRupture}}
	}},
	{"R2-last-test-13-months", "metformin every 90 days, last HbA1c 400 days before AsOf", '2', 59, func(g *generator, p *person, b day) []check {
		g.pmetformin(p, 600, 510, 420, 330, 240, 150, 60)
		g.plab(p, g.asOf-400, tHbA1c, "N")
		return []check{{ruleR2, g.asOf, outRupture}}
	}},
	{"R2-diagnosis-only", "type-2 diabetes coded in a cataract stay (DAS E11.9), no drug, no HbA1c", '1', 70, func(g *generator, p *person, b day) []check {
		d := g.asOf - 300
		g.pstay(p, d, d, "H25.9", "02C05J", withDAS("E11.9"), withActs(stayAct{"BFGA004", d}))
		return []check{{ruleR2, g.asOf, outRupture}}
	}},
	{"R2-two-dispensations", "two metformin dispensations in the last 12 months (two more before), no diagnosis", '2', 55, func(g *generator, p *person, b day) []check {
		g.pmetformin(p, 500, 420, 250, 100)
		return []check{{ruleR2, g.asOf, outNotPopulation}}
	}},
	{"R2-tested-nabm", "HbA1c sent as the NABM act 1577 (LOINC 4548-4 through nabm-to-loinc)", '1', 68, func(g *generator, p *person, b day) []check {
		g.pmetformin(p, 600, 510, 420, 330, 240, 150, 60)
		v, _ := result(p.r, tHbA1c, "N")
		g.add(p, &act{pro: p.place.lab, date: g.asOf - 60, kind: "lab-result", system: "nabm", code: "1577", value: v, unit: "%", interp: "N"})
		return []check{{ruleR2, g.asOf, outNoRupture}}
	}},
	{"R3-mammography-23-months", "mammography 700 days before AsOf, FIT 300 days before", '2', 62, func(g *generator, p *person, b day) []check {
		g.add(p, &act{pro: p.place.radiologist, date: g.asOf - 700, kind: "procedure", system: "ccam", code: "QEQK004"})
		g.pfit(p, g.asOf-300, "35", "NEG")
		return []check{{ruleR3Breast, g.asOf, outNoRupture}, {ruleR3Colorectal, g.asOf, outNoRupture}}
	}},
	{"R3-mammography-25-months", "mammography 760 days before AsOf", '2', 58, func(g *generator, p *person, b day) []check {
		g.add(p, &act{pro: p.place.radiologist, date: g.asOf - 760, kind: "procedure", system: "ccam", code: "QEQK004"})
		return []check{{ruleR3Breast, g.asOf, outRupture}}
	}},
	{"R3-mammography-in-hospital", "mammography coded as an act of a day-hospital stay", '2', 66, func(g *generator, p *person, b day) []check {
		d := g.asOf - 200
		g.pstay(p, d, d, "Z12.3", "23K02Z", withActs(stayAct{"QEQK004", d}))
		return []check{{ruleR3Breast, g.asOf, outNoRupture}}
	}},
	{"R3-aged-75", "a woman of 75 at AsOf without mammography", '2', 75, func(g *generator, p *person, b day) []check {
		g.pgp(p, g.asOf-100, "G")
		return []check{{ruleR3Breast, g.asOf, outNotPopulation}, {ruleR3Colorectal, g.asOf, outNotPopulation}}
	}},
	{"R3-colonoscopy-30-months", "colonoscopy by a gastroenterologist 900 days before AsOf (5-year window)", '1', 57, func(g *generator, p *person, b day) []check {
		g.add(p, &act{pro: p.place.gastro, date: g.asOf - 900, kind: "procedure", system: "ccam", code: "HHQE002"})
		return []check{{ruleR3Colorectal, g.asOf, outNoRupture}}
	}},
	{"R3-FIT-26-months", "negative FIT 790 days before AsOf, nothing since", '1', 70, func(g *generator, p *person, b day) []check {
		g.pfit(p, g.asOf-790, "12", "NEG")
		return []check{{ruleR3Colorectal, g.asOf, outRupture}}
	}},
	{"R3-IBD-excluded", "ulcerative colitis (K51.9) stay: excluded from colorectal screening", '2', 55, func(g *generator, p *person, b day) []check {
		d := g.asOf - 400
		g.pstay(p, d, d+4, "K51.9", "06M041", emergency)
		return []check{{ruleR3Colorectal, g.asOf, outExcluded}}
	}},
	{"R3-FIT-positive-colonoscopy", "positive FIT, colonoscopy (HHQE005) in a day-hospital stay a month later", '1', 63, func(g *generator, p *person, b day) []check {
		d := g.asOf - 300
		g.pfit(p, d, "420", "POS")
		g.pstay(p, d+30, d+30, "K63.5", "06K02Z", withActs(stayAct{"HHQE005", d + 30}))
		return []check{{ruleR3Colorectal, g.asOf, outNoRupture}}
	}},
}

// plant builds planted patient i (i < len(scenarios)) and returns its
// checks.
func (g *generator) plant(p *person, sc scenario) []Planted {
	p.planted = true
	p.sex = sc.sex
	p.birth = g.birthFor(p.r, sc.age)
	g.setINS(p)
	b := g.asOf - 200
	checks := sc.build(g, p, b)
	var out []Planted
	for _, c := range checks {
		out = append(out, Planted{ID: sc.id, Rule: c.rule, INS: p.ins, IndexDate: c.date.String(), Expect: c.expect, Note: sc.note})
	}
	return out
}
