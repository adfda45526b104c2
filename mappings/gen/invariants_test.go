package gen

import (
	"fmt"
	"strings"
	"testing"
)

// TestInvariants checks, over a generated population, the properties the
// package documentation promises and the rupture counts rely on.
func TestInvariants(t *testing.T) {
	g, err := newGenerator(Config{Patients: 1000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ds := g.data()
	inPeriod := func(what string, d day) {
		t.Helper()
		if d <= g.start || d > g.asOf {
			t.Errorf("%s dated %v, outside (%v, %v]", what, d, g.start, g.asOf)
		}
	}
	nearZone := func(d day) bool {
		for _, z := range g.zones {
			if d >= z-3 && d <= z+3 {
				return true
			}
		}
		return false
	}
	places := map[string]int{}
	insSeen := map[string]int{}
	for _, p := range ds.people {
		if q, dup := insSeen[p.ins]; dup {
			t.Errorf("patients %d and %d share an INS-NIR", q, p.idx)
		}
		insSeen[p.ins] = p.idx
		if len(p.ins) != 15 || insKey(p.ins[:13]) != p.ins[13:] {
			t.Errorf("patient %d: INS-NIR %q has a wrong key", p.idx, p.ins)
		}
		places[p.ins[5:7]]++
		if age(p.birth, g.asOf-3) != age(p.birth, g.asOf+3) {
			t.Errorf("patient %d: birthday within 3 days of AsOf", p.idx)
		}
		if a := age(p.birth, g.asOf); a < 21 || a > 95 {
			t.Errorf("patient %d: aged %d at AsOf", p.idx, a)
		}
		var death *stay
		for i, s := range p.stays {
			inPeriod("admission", s.adm)
			if s.dis > g.lastIndex {
				t.Errorf("patient %d: discharge %v within 35 days of AsOf", p.idx, s.dis)
			}
			if s.dis < s.adm {
				t.Errorf("patient %d: discharge before admission", p.idx)
			}
			for _, x := range s.acts {
				if x.date < s.adm || x.date > s.dis {
					t.Errorf("patient %d: act %s outside its stay", p.idx, x.code)
				}
				if (x.code == "QEQK004" || x.code == "HHQE002" || x.code == "HHQE005") && nearZone(x.date) {
					t.Errorf("patient %d: screening act within 3 days of a look-back boundary", p.idx)
				}
			}
			if i > 0 {
				prev := p.stays[i-1]
				if s.adm < prev.dis || s.adm == prev.dis && !(prev.disMode == "7" && s.admMode == "7") {
					t.Errorf("patient %d: stays %v–%v and %v–%v overlap", p.idx, prev.adm, prev.dis, s.adm, s.dis)
				}
			}
			if s.disMode == "9" {
				death = s
			}
		}
		if death != nil {
			if death != p.stays[len(p.stays)-1] {
				t.Errorf("patient %d: a stay after death", p.idx)
			}
			if age(p.birth, g.asOf) < 75 {
				t.Errorf("patient %d: died younger than 75 at AsOf", p.idx)
			}
			for _, s := range p.stays {
				for _, d := range s.diagnoses() {
					if strings.HasPrefix(d, "E1") {
						t.Errorf("patient %d: dead diabetic", p.idx)
					}
				}
			}
		}
		keys := map[string]bool{}
		for _, a := range p.acts {
			inPeriod("city row", a.date)
			if death != nil && a.date >= death.adm {
				t.Errorf("patient %d: city row on %v, after the death stay began", p.idx, a.date)
			}
			if keys[a.key()] {
				t.Errorf("patient %d: two city rows with the key %s", p.idx, a.key())
			}
			keys[a.key()] = true
			if a.kind == "lab-result" && abnormalFlags[a.interp] && a.date > g.lastIndex {
				t.Errorf("patient %d: abnormal result within 35 days of AsOf", p.idx)
			}
			relevant := a.kind == "dispensation" && strings.HasPrefix(a.code, "A10") ||
				a.kind == "lab-result" && (a.loinc() == "4548-4" || a.loinc() == "29771-3") ||
				a.kind == "procedure" && strings.HasPrefix(a.code, "QEQK") || strings.HasPrefix(a.code, "HHQE")
			if relevant && nearZone(a.date) {
				t.Errorf("patient %d: %s on %v, within 3 days of a look-back boundary", p.idx, a.code, a.date)
			}
			if death != nil && a.kind == "dispensation" && strings.HasPrefix(a.code, "A10") {
				t.Errorf("patient %d: dead diabetic", p.idx)
			}
		}
		if m := p.member; m != nil {
			inPeriod("enrolment", m.enrolled)
			for i, e := range m.events {
				inPeriod("programme event", e.date)
				if e.date < m.enrolled || i > 0 && e.date < m.events[i-1].date {
					t.Errorf("member %s: event on %v out of order or before enrolment", m.id, e.date)
				}
				if death != nil && e.date >= death.adm {
					t.Errorf("member %s: event after death", m.id)
				}
			}
			if !m.consent && len(m.events) > 0 {
				t.Errorf("member %s refused the programme but has events", m.id)
			}
		}
	}
	for _, c := range ds.claims {
		inPeriod("claim event", c.event)
		inPeriod("claim declaration", c.declared)
		if c.event > c.declared || c.event < c.stay.adm || c.event > c.stay.dis {
			t.Errorf("claim %s: event %v, declared %v, stay %v–%v", c.id, c.event, c.declared, c.stay.adm, c.stay.dis)
		}
	}
	for _, want := range []string{"2A", "2B", "97", "99", "75", "59"} {
		if places[want] == 0 {
			t.Errorf("no INS-NIR with birthplace %s among %d patients", want, len(ds.people))
		}
	}
	cats, never := map[string]bool{}, 0
	for _, c := range ds.claims {
		cats[c.category] = true
		if c.never {
			never++
		}
	}
	if len(cats) != 8 || never < 2 {
		t.Errorf("claims cover %d categories with %d never events, want 8 and at least 2", len(cats), never)
	}
	var consents [3][2]int
	for _, m := range ds.members {
		for i, v := range []bool{m.consent, m.gp, m.research} {
			if v {
				consents[i][1]++
			} else {
				consents[i][0]++
			}
		}
	}
	for i, c := range consents {
		if c[0] == 0 || c[1] == 0 {
			t.Errorf("consent %d is not mixed: %v (false, true)", i, c)
		}
	}
	t.Log(fmt.Sprintf("%d people, %d stays, %d city rows, %d members, %d claims", len(ds.people), len(ds.stays), len(ds.acts), len(ds.members), len(ds.claims)))
}
