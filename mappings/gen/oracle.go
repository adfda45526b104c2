package gen

import (
	"strconv"
	"strings"
)

// The oracle counts the ruptures of the generated rows from the rule
// definitions alone (Parcours issue 6, domain brief §6), reading the rows
// as the hub links them: one patient per INS-NIR across the files, one per
// row without one (one per member number for the programme). It shares no
// code with the mappers or the rupture engine.
//
//   - R1 no-gp-after-discharge: index = MCO stay with main or related
//     diagnosis I50*, I11.0, I13.0 or I13.2, discharge mode 8, age ≥ 18 at
//     discharge; met by a consultation or teleconsultation of a
//     medecine-generale professional in (discharge, discharge + 7 d];
//     censored by a death or a new stay admitted in that window.
//   - R2 missed-monitoring-test: population at AsOf = ≥ 3 A10* dispensations
//     on distinct dates in [AsOf − 12 months, AsOf], or any diagnosis
//     E10–E14; met by an HbA1c (LOINC 4548-4) in that window.
//   - R3 missed-screening: breast = women 50–74 at AsOf, met by a
//     mammography (CCAM QEQK004, city procedure or hospital act) in
//     [AsOf − 2 years, AsOf]; colorectal = people 50–74 at AsOf without a
//     diagnosis C18–C20, K50, K51, met by a FIT (LOINC 29771-3) in 2 years
//     or a colonoscopy (HHQE002, HHQE005) in 5 years.
//   - R5 early-readmission: index = MCO stay not ending in death (9) or
//     transfer (7), GHM not starting with 28, 14 or 15; rupture = another
//     stay admitted through the emergency department (provenance 5) in
//     (discharge, discharge + 30 d].
//   - R7 abnormal-result-not-followed: index = lab result flagged H, L, A,
//     AA, HH or LL; met by a consultation, a teleconsultation, a hospital
//     admission or a result of the same LOINC in (result, result + 30 d].
type oracle struct {
	g        *generator
	patients []*opatient
	byKey    map[string]*opatient
	linked   int
	members  []*member
	claims   []*claim
	stays    []*stay
	acts     []*act
	verdicts []verdict
}

type opatient struct {
	key, ins string
	birth    day
	sex      byte // 0 when no row of the patient gives it
	stays    []*stay
	acts     []*act
}

type verdict struct {
	rule, ins string
	date      day
	outcome   string
	patient   *opatient
}

func newOracle(g *generator, stays []*stay, acts []*act, members []*member, claims []*claim) *oracle {
	o := &oracle{g: g, byKey: map[string]*opatient{}, members: members, claims: claims, stays: stays, acts: acts}
	get := func(ins, unlinked string, birth day, sex byte) *opatient {
		key := "ins|" + ins
		if ins == "" {
			key = unlinked
		}
		op := o.byKey[key]
		if op == nil {
			op = &opatient{key: key, ins: ins}
			o.byKey[key] = op
			o.patients = append(o.patients, op)
			if ins != "" {
				o.linked++
			}
		}
		if op.sex == 0 && sex != 0 {
			op.birth, op.sex = birth, sex
		}
		return op
	}
	for _, s := range stays {
		op := get(s.ins, "stay|"+s.finess+"|"+s.id, s.p.birth, s.p.sex)
		op.stays = append(op.stays, s)
	}
	for i, a := range acts {
		op := get(a.ins, "act|"+strconv.Itoa(i), a.p.birth, a.p.sex)
		op.acts = append(op.acts, a)
	}
	for _, m := range members {
		get(m.ins, "member|"+m.programme+"|"+m.id, m.p.birth, m.p.sex)
	}
	for _, c := range claims {
		get(c.ins, "claim|"+c.id, 0, 0)
	}
	return o
}

// resources counts the FHIR resources an ingest of the four files stores,
// with one Provenance per file: the count of a file mapped into one
// Bundle ($ingest stores a file in parts, a Provenance each).
func (o *oracle) resources() map[string]int {
	n := map[string]int{"Patient": len(o.patients), "Provenance": len(Sources), "AdverseEvent": len(o.claims)}
	orgs, pracs, roles := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, s := range o.stays {
		n["Encounter"]++
		n["Condition"] += len(s.diagnoses())
		n["Procedure"] += len(s.acts)
		orgs[s.finess] = true
	}
	for _, c := range o.claims {
		orgs[c.finess] = true
	}
	for _, a := range o.acts {
		pracs[a.pro.rpps] = true
		roles[a.pro.rpps+"|"+a.pro.specialty] = true
		switch a.kind {
		case "consultation", "teleconsultation":
			n["Encounter"]++
		case "procedure":
			n["Procedure"]++
		case "lab-result":
			n["Observation"]++
		case "dispensation":
			n["MedicationDispense"]++
		case "vaccination":
			n["Immunization"]++
		}
	}
	for _, m := range o.members {
		n["Consent"]++
		if !m.consent {
			continue
		}
		n["CarePlan"]++
		if m.gp {
			n["Consent"]++
		}
		if m.research {
			n["Consent"]++
		}
		for _, e := range m.events {
			switch e.typ {
			case "measurement", "questionnaire", "screening-done":
				n["Observation"]++
			}
		}
	}
	n["Organization"], n["Practitioner"], n["PractitionerRole"] = len(orgs), len(pracs), len(roles)
	return n
}

func isR1Diagnosis(code string) bool {
	return strings.HasPrefix(code, "I50") || code == "I11.0" || code == "I13.0" || code == "I13.2"
}

func hasPrefix(code string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(code, p) {
			return true
		}
	}
	return false
}

func isVisit(a *act) bool { return a.kind == "consultation" || a.kind == "teleconsultation" }

var abnormalFlags = map[string]bool{"H": true, "L": true, "A": true, "AA": true, "HH": true, "LL": true}

// rules evaluates every rule and returns the counts by rule.
func (o *oracle) rules() map[string]RuleCount {
	o.verdicts = nil
	asOf := o.g.asOf
	year, twoYears, fiveYears := asOf.addYears(-1), asOf.addYears(-2), asOf.addYears(-5)
	in := func(d, from, to day) bool { return d >= from && d <= to }
	after := func(d, index day, n int) bool { return d > index && d <= index+day(n) }
	for _, op := range o.patients {
		// R1 and R5: index stays.
		for _, s := range op.stays {
			if s.unit == "MCO" && (isR1Diagnosis(s.dp) || isR1Diagnosis(s.dr)) && s.disMode == "8" && op.sex != 0 && age(op.birth, s.dis) >= 18 {
				out := outRupture
				for _, t := range op.stays {
					if t != s && (after(t.adm, s.dis, 7) || t.disMode == "9" && after(t.dis, s.dis, 7)) {
						out = outCensored
					}
				}
				if out == outRupture {
					for _, a := range op.acts {
						if isVisit(a) && a.pro.specialty == spGP && after(a.date, s.dis, 7) {
							out = outNoRupture
						}
					}
				}
				o.verdict(ruleR1, op, s.dis, out)
			}
			if s.unit == "MCO" && s.disMode != "9" && s.disMode != "7" && !hasPrefix(s.ghm, "28", "14", "15") {
				out := outNoRupture
				for _, t := range op.stays {
					if t != s && t.admSource == "5" && after(t.adm, s.dis, 30) {
						out = outRupture
					}
				}
				o.verdict(ruleR5, op, s.dis, out)
			}
		}
		// R7: abnormal lab results.
		for _, a := range op.acts {
			if a.kind != "lab-result" || !abnormalFlags[a.interp] {
				continue
			}
			out := outRupture
			for _, b := range op.acts {
				if b != a && after(b.date, a.date, 30) && (isVisit(b) || b.kind == "lab-result" && b.loinc() == a.loinc()) {
					out = outNoRupture
				}
			}
			for _, t := range op.stays {
				if after(t.adm, a.date, 30) {
					out = outNoRupture
				}
			}
			o.verdict(ruleR7, op, a.date, out)
		}
		// R2: diabetics at AsOf.
		dates := map[day]bool{}
		diabetic, tested := false, false
		for _, a := range op.acts {
			if a.kind == "dispensation" && a.system == "atc" && strings.HasPrefix(a.code, "A10") && in(a.date, year, asOf) {
				dates[a.date] = true
			}
			if a.kind == "lab-result" && a.loinc() == "4548-4" && in(a.date, year, asOf) {
				tested = true
			}
		}
		var diagnoses []string
		for _, s := range op.stays {
			diagnoses = append(diagnoses, s.diagnoses()...)
		}
		for _, d := range diagnoses {
			diabetic = diabetic || hasPrefix(d, "E10", "E11", "E12", "E13", "E14")
		}
		if diabetic || len(dates) >= 3 {
			o.verdict(ruleR2, op, asOf, pick2(tested))
		}
		// R3: screening populations at AsOf.
		if op.sex == 0 {
			continue
		}
		if x := age(op.birth, asOf); x < 50 || x > 74 {
			continue
		}
		mammo, fit, colono := false, false, false
		for _, a := range op.acts {
			switch {
			case a.kind == "procedure" && a.system == "ccam" && a.code == "QEQK004" && in(a.date, twoYears, asOf):
				mammo = true
			case a.kind == "lab-result" && a.loinc() == "29771-3" && in(a.date, twoYears, asOf):
				fit = true
			case a.kind == "procedure" && a.system == "ccam" && (a.code == "HHQE002" || a.code == "HHQE005") && in(a.date, fiveYears, asOf):
				colono = true
			}
		}
		for _, s := range op.stays {
			for _, x := range s.acts {
				mammo = mammo || x.code == "QEQK004" && in(x.date, twoYears, asOf)
				colono = colono || (x.code == "HHQE002" || x.code == "HHQE005") && in(x.date, fiveYears, asOf)
			}
		}
		if op.sex == '2' {
			o.verdict(ruleR3Breast, op, asOf, pick2(mammo))
		}
		excluded := false
		for _, d := range diagnoses {
			excluded = excluded || hasPrefix(d, "C18", "C19", "C20", "K50", "K51")
		}
		switch {
		case excluded:
			o.verdict(ruleR3Colorectal, op, asOf, outExcluded)
		default:
			o.verdict(ruleR3Colorectal, op, asOf, pick2(fit || colono))
		}
	}
	counts := map[string]RuleCount{}
	patients := map[string]map[*opatient]bool{}
	ruptured := map[string]map[*opatient]bool{}
	for rule, code := range ruleCodes {
		counts[rule] = RuleCount{Code: code}
		patients[rule], ruptured[rule] = map[*opatient]bool{}, map[*opatient]bool{}
	}
	for _, v := range o.verdicts {
		c := counts[v.rule]
		c.IndexEvents++
		switch v.outcome {
		case outCensored:
			c.Censored++
		case outExcluded:
			c.Excluded++
		case outRupture:
			c.Ruptures++
			ruptured[v.rule][v.patient] = true
		case outNoRupture:
			c.NoRupture++
		}
		if v.outcome == outRupture || v.outcome == outNoRupture {
			patients[v.rule][v.patient] = true
		}
		counts[v.rule] = c
	}
	for rule, c := range counts {
		c.Denominator = c.Ruptures + c.NoRupture
		c.Patients, c.PatientsWithRupture = len(patients[rule]), len(ruptured[rule])
		counts[rule] = c
	}
	return counts
}

func pick2(met bool) string {
	if met {
		return outNoRupture
	}
	return outRupture
}

func (o *oracle) verdict(rule string, op *opatient, d day, outcome string) {
	o.verdicts = append(o.verdicts, verdict{rule: rule, ins: op.ins, date: d, outcome: outcome, patient: op})
}

// outcome is the oracle's outcome for a rule, a patient (by INS-NIR) and
// an index date: not-index / not-in-population when there is none.
func (o *oracle) outcome(rule, ins string, d day) string {
	for _, v := range o.verdicts {
		if v.rule == rule && v.ins == ins && v.date == d {
			return v.outcome
		}
	}
	if rule == ruleR2 || rule == ruleR3Breast || rule == ruleR3Colorectal {
		return outNotPopulation
	}
	return outNotIndex
}
