package gen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Column lists of the formats (DESIGN §6, mappings/<source> Columns).
var (
	hospitalColumns = []string{
		"finess", "stay_id", "ins_nir", "birth_date", "sex", "postcode", "admission_date",
		"discharge_date", "admission_mode", "admission_source", "discharge_mode", "ghm",
		"main_diagnosis", "related_diagnosis", "other_diagnoses", "acts", "unit_type",
	}
	cityColumns = []string{
		"rpps", "specialty", "ins_nir", "birth_date", "sex", "date", "kind", "code_system",
		"code", "value", "unit", "interpretation", "quantity", "days_supply",
	}
	liabilityColumns = []string{
		"claim_id", "declared_at", "event_date", "finess", "service", "ins_nir", "procedure_ccam",
		"category", "never_event", "severity", "outcome", "fault", "avoidable", "loss_of_chance_pct",
		"indemnity_reserved_eur", "indemnity_paid_eur", "status",
	}
)

func header(src string) string {
	switch src {
	case SourceHospital:
		return strings.Join(hospitalColumns, ";") + "\n"
	case SourceCity:
		return strings.Join(cityColumns, ";") + "\n"
	case SourceLiability:
		return strings.Join(liabilityColumns, ";") + "\n"
	}
	return "" // NDJSON has no header
}

// column is the 1-based position of a CSV column.
func column(cols []string, name string) int { return slices.Index(cols, name) + 1 }

func joinCSV(b []byte, fields []string) []byte {
	for i, f := range fields {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, f...)
	}
	return append(b, '\n')
}

func stayFields(s *stay) []string {
	var acts []string
	for _, a := range s.acts {
		acts = append(acts, a.code+"@"+a.date.String())
	}
	return []string{
		s.finess, s.id, s.ins, s.p.birth.String(), string(s.p.sex), s.p.postcode,
		s.adm.String(), s.dis.String(), s.admMode, s.admSource, s.disMode, s.ghm,
		s.dp, s.dr, strings.Join(s.das, "|"), strings.Join(acts, "|"), s.unit,
	}
}

func appendStay(b []byte, s *stay) []byte { return joinCSV(b, stayFields(s)) }

func actFields(a *act) []string {
	days := ""
	if a.days > 0 {
		days = strconv.Itoa(a.days)
	}
	return []string{
		a.pro.rpps, a.pro.specialty, a.ins, a.p.birth.String(), string(a.p.sex), a.date.String(),
		a.kind, a.system, a.code, a.value, a.unit, a.interp, a.qty, days,
	}
}

func appendAct(b []byte, a *act) []byte { return joinCSV(b, actFields(a)) }

func claimFields(c *claim) []string {
	return []string{
		c.id, c.declared.String(), c.event.String(), c.finess, c.service, c.ins, c.procedure,
		c.category, strconv.FormatBool(c.never), strconv.Itoa(c.severity), c.outcome, c.fault,
		c.avoidable, c.lossPct, c.reserved, c.paid, c.status,
	}
}

func appendClaim(b []byte, c *claim) []byte { return joinCSV(b, claimFields(c)) }

// mline is a prevention member as text, before it becomes one NDJSON line.
type mline struct {
	id, ins, birth, sex, programme, enrolled, risk string
	consent, gp, research                          bool
	events                                         []pevent
}

func memberLine(m *member) mline {
	return mline{
		id: m.id, ins: m.ins, birth: m.p.birth.String(), sex: string(m.p.sex), programme: m.programme,
		enrolled: m.enrolled.String(), risk: m.risk, consent: m.consent, gp: m.gp, research: m.research,
		events: m.events,
	}
}

func appendMember(b []byte, m *member) []byte { return renderMember(b, memberLine(m)) }

// renderMember writes one member as a JSON object on one line, keys in the
// order of the format; values are plain ASCII, so no escaping is needed
// beyond quoting (strconv.Quote would differ from JSON only for
// characters the generator never writes).
func renderMember(b []byte, m mline) []byte {
	str := func(b []byte, k, v string) []byte {
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `": "`...)
		b = append(b, v...)
		return append(b, '"')
	}
	b = append(b, '{')
	b = str(b, "member_id", m.id)
	if m.ins != "" {
		b = str(append(b, ", "...), "ins_nir", m.ins)
	}
	b = str(append(b, ", "...), "birth_date", m.birth)
	b = str(append(b, ", "...), "sex", m.sex)
	b = str(append(b, ", "...), "programme", m.programme)
	b = str(append(b, ", "...), "enrolled_at", m.enrolled)
	b = fmt.Appendf(b, `, "consents": {"programme": %t, "share_with_gp": %t, "research": %t}`, m.consent, m.gp, m.research)
	if m.risk != "" {
		b = str(append(b, ", "...), "risk_segment", m.risk)
	}
	if len(m.events) > 0 {
		b = append(b, `, "events": [`...)
		for i, e := range m.events {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = str(append(b, '{'), "date", e.date.String())
			b = str(append(b, ", "...), "type", e.typ)
			if e.code != "" {
				b = str(append(b, ", "...), "code_system", e.system)
				b = str(append(b, ", "...), "code", e.code)
			}
			if e.value != "" {
				b = append(b, `, "value": `...)
				b = append(b, e.value...)
			}
			if e.unit != "" {
				b = str(append(b, ", "...), "unit", e.unit)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// ndjsonColumn is the column a mapper reports for a top-level field of an
// NDJSON line: the 1-based character position where its value starts.
func ndjsonColumn(line []byte, key string) int {
	k := `"` + key + `": `
	return strings.Index(string(line), k) + len(k) + 1
}

// badRows inserts cfg.BadRows deliberately bad rows into the files, in
// turn hospital, city, prevention, liability, each with exactly one
// issue, at positions drawn from the seed. They are made for people of
// their own (not the generated patients) and carry no INS-NIR (or one
// with a wrong key), so that no cross-row check reports them twice and the
// good rows stay exactly what the counts describe.
func (g *generator) badRows(lines map[string][][]byte) []BadRow {
	if g.cfg.BadRows == 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(g.cfg.Seed, 1<<62))
	marks := map[string][]*BadRow{}
	for _, src := range Sources {
		marks[src] = make([]*BadRow, len(lines[src]))
	}
	for k := 0; k < g.cfg.BadRows; k++ {
		src := Sources[k%len(Sources)]
		variant := k / len(Sources) % 3
		p := g.newPerson(g.cfg.Patients + k)
		g.setINS(p)
		d := between(r, g.start+30, g.lastIndex)
		id := fmt.Sprintf("BAD-%d", k+1)
		br := &BadRow{Source: src, File: FileName(src)}
		var line []byte
		switch src {
		case SourceHospital:
			s := g.newStay(p, d, d+2, "J18.9", kindMedical, "Pneumologie")
			s.id, s.ghm = id, "04M051"
			f := stayFields(s)
			switch variant {
			case 0:
				k, _ := strconv.Atoi(p.ins[13:])
				f[2] = p.ins[:13] + fmt.Sprintf("%02d", k%97+1)
				br.Expression, br.Problem = "ins_nir", "INS-NIR key does not match"
			case 1:
				f[4] = "X"
				br.Expression, br.Problem = "sex", "unknown sex code"
			default:
				f[8] = "5"
				br.Expression, br.Problem = "admission_mode", "admission mode outside 6, 7, 8"
			}
			br.Column = column(hospitalColumns, br.Expression)
			line = joinCSV(nil, f)
		case SourceCity:
			a := &act{p: p, pro: p.gp, date: d, kind: "consultation", system: "ngap", code: "G"}
			f := actFields(a)
			switch variant {
			case 0:
				y, _, _ := d.ymd()
				f[5] = fmt.Sprintf("%d-02-30", y)
				br.Expression, br.Problem = "date", "not a calendar date"
			case 1:
				f[6] = "visite"
				br.Expression, br.Problem = "kind", "unknown kind"
			default:
				a = &act{p: p, pro: p.place.lab, date: d, kind: "lab-result", system: "loinc", code: "4548-5", value: "6.1", unit: "%", interp: "N"}
				f = actFields(a)
				br.Expression, br.Problem = "code", "LOINC check digit is wrong"
			}
			br.Column = column(cityColumns, br.Expression)
			line = joinCSV(nil, f)
		case SourcePrevention:
			m := mline{id: id, birth: p.birth.String(), sex: string(p.sex), programme: progHeart, enrolled: d.String(), consent: true}
			switch variant {
			case 0:
				y, _, _ := p.birth.ymd()
				m.birth = fmt.Sprintf("%d-02-30", y)
				br.Expression, br.Problem = "birth_date", "not a calendar date"
			case 1:
				m.risk = "extreme"
				br.Expression, br.Problem = "risk_segment", "unknown risk segment"
			default:
				m.sex = "9"
				br.Expression, br.Problem = "sex", "unknown sex code"
			}
			line = renderMember(nil, m)
			br.Column = ndjsonColumn(line, br.Expression)
		case SourceLiability:
			c := &claim{id: id, event: d, declared: d + 60, finess: p.hosp, service: "Pneumologie", category: "defaut-surveillance", severity: 2, outcome: "resolved", fault: "undetermined", reserved: "10000", status: "open"}
			f := claimFields(c)
			switch variant {
			case 0:
				f[7] = "erreur-inconnue"
				br.Expression, br.Problem = "category", "unknown category"
			case 1:
				f[9] = "7"
				br.Expression, br.Problem = "severity", "severity outside 1–5"
			default:
				f[1] = (d - 10).String()
				br.Expression, br.Problem = "event_date", "event after the declaration"
			}
			br.Column = column(liabilityColumns, br.Expression)
			line = joinCSV(nil, f)
		}
		pos := r.IntN(len(lines[src]) + 1)
		lines[src] = slices.Insert(lines[src], pos, line)
		marks[src] = slices.Insert(marks[src], pos, br)
	}
	var out []BadRow
	for _, src := range Sources {
		first := 2 // the CSV header is line 1
		if src == SourcePrevention {
			first = 1
		}
		for i, m := range marks[src] {
			if m != nil {
				m.Line = first + i
				out = append(out, *m)
			}
		}
	}
	return out
}
