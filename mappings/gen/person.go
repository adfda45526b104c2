package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Shares of rows sent without an INS-NIR (unlinked rows).
const (
	dropHospital   = 0.015
	dropCity       = 0.008
	dropPrevention = 0.03
	dropClaim      = 0.08
)

// Programmes of vocab's prevention-programme CodeSystem.
const (
	progHeart     = "coeur-sante"
	progScreening = "depistage-cancers"
	progDiabetes  = "diabete-prevention"
)

// ageBands is the adult age distribution at AsOf (per mille).
var ageBands = []struct{ lo, hi, w int }{
	{21, 29, 130}, {30, 39, 160}, {40, 49, 160}, {50, 59, 170}, {60, 69, 160}, {70, 79, 130}, {80, 95, 90},
}

func between(r *rand.Rand, lo, hi day) day {
	if hi < lo {
		return lo
	}
	return lo + day(r.IntN(int(hi-lo)+1))
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// poisson draws a Poisson count (Knuth; the means here are small).
func poisson(r *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// newPerson draws the demographics of patient i from its own random
// stream: patients do not depend on each other, so a larger file starts
// with the same people.
func (g *generator) newPerson(i int) *person {
	r := rand.New(rand.NewPCG(g.cfg.Seed, uint64(i)))
	p := &person{idx: i, r: r, keys: map[string]bool{}}
	p.sex = '1'
	if chance(r, 0.52) {
		p.sex = '2'
	}
	x, a := r.IntN(1000), 0
	for _, b := range ageBands {
		if x < b.w {
			a = b.lo + r.IntN(b.hi-b.lo+1)
			break
		}
		x -= b.w
	}
	p.birth = g.birthFor(r, a)
	p.place = g.cat.pick(r)
	p.postcode = pick(r, p.place.postcodes)
	switch x := r.Float64(); {
	case x < 0.65 && !(g.large && p.place.overseas()):
		p.birthIn = p.place.nirDept
	case x < 0.85 || g.large:
		for {
			pl := g.cat.pick(r)
			if !pl.overseas() {
				p.birthIn = pl.nirDept
				break
			}
		}
	case x < 0.90:
		p.birthIn = pick(r, []string{"971", "972", "974"})
	default:
		p.birthIn = "99" + pick(r, countries)
	}
	p.gp = pick(r, p.place.gps)
	p.pharmacy = pick(r, p.place.pharmacies)
	p.hosp = p.place.hospitals[0]
	if len(p.place.hospitals) > 1 && chance(r, 0.4) {
		p.hosp = p.place.hospitals[1]
	}
	if (p.place.nirDept == "93" || p.place.nirDept == "92") && chance(r, 0.3) {
		p.hosp = devHospital
	}
	p.end = g.asOf
	return p
}

// birthFor draws a birth date giving age a at AsOf, away from the
// birthday itself (so that "aged 50–74 at AsOf" has one reading) and never
// on 29 February.
func (g *generator) birthFor(r *rand.Rand, a int) day {
	lo := g.asOf.addYears(-(a + 1)) + 1
	hi := g.asOf.addYears(-a)
	for {
		b := between(r, lo+4, hi-4)
		if _, m, d := b.ymd(); m == 2 && d == 29 {
			continue
		}
		return b
	}
}

// setINS writes the person's INS-NIR: sex, year and month of birth, place
// of birth (département + commune, 2A/2B for Corsica, 97x + commune
// overseas, 99 + country abroad), order number and key. Commune and order
// come from a bijection of the patient number, so that INS-NIRs are
// unique without remembering them (large files); births overseas and
// abroad, which use fewer digits for the place, are checked against the
// ones already made (not in large-file mode, which has none).
func (g *generator) setINS(p *person) {
	y, m, _ := p.birth.ymd()
	j := uint64(p.idx) * 524287 % 998001
	if block := p.idx / 998001; block > 0 {
		m = 19 + block // NIR months 20–42: month of birth unknown to the registry
	}
	commune, order := int(j/999)+1, int(j%999)+1
	var where string
	switch {
	case len(p.birthIn) == 5: // abroad: 99 + country
		where = p.birthIn
	case len(p.birthIn) == 3:
		where = fmt.Sprintf("%s%02d", p.birthIn, commune%100)
	default:
		where = fmt.Sprintf("%s%03d", p.birthIn, commune)
	}
	for {
		nir := fmt.Sprintf("%c%02d%02d%s%03d", p.sex, y%100, m, where, order)
		ins := nir + insKey(nir)
		if g.seen == nil || !g.seen[ins] {
			if g.seen != nil {
				g.seen[ins] = true
			}
			p.ins = ins
			return
		}
		order = order%999 + 1
	}
}

// conditions draws the chronic conditions and whether the person dies.
func (g *generator) conditions(p *person) {
	r, a := p.r, age(p.birth, g.asOf)
	p.hf = (a >= 60 && chance(r, 0.08)) || (a >= 45 && a < 60 && chance(r, 0.02))
	p.t2d = (a >= 45 && chance(r, 0.12)) || (a >= 30 && a < 45 && chance(r, 0.03))
	miRate := 0.02
	if p.sex == '1' {
		miRate = 0.04
	}
	p.mi = a >= 45 && chance(r, miRate)
	p.crc = a >= 50 && chance(r, 0.015)
	p.ibd = chance(r, 0.008)
	p.copd = a >= 55 && chance(r, 0.05)
	p.statin = a >= 50 && chance(r, 0.2)
	p.thyroid = p.female() && a >= 40 && chance(r, 0.06)
	// Those who die are old and not diabetic: a dead diabetic, or a dead
	// woman of screening age, would make the populations of R2 and R3
	// depend on whether the reader removes the dead.
	p.dies = !p.t2d && ((p.hf && a >= 77 && chance(r, 0.25)) || (a >= 85 && chance(r, 0.04)))
}

// rowINS is the INS-NIR a row carries: the person's, or none for the few
// rows a source sends unlinked (never in planted cases).
func (p *person) rowINS(drop float64) string {
	if !p.planted && chance(p.r, drop) {
		return ""
	}
	return p.ins
}

// stayTpl is a kind of background stay.
type stayTpl struct {
	minAge, maxAge int
	dps, ghms      []string
	acts           []string
	emergency      float64
	los            [2]int
	kind           stayKind
	service        string
	unit           string
	weight         int
}

var background = []stayTpl{
	{18, 69, []string{"K35.8"}, []string{"06C091", "06C092"}, []string{"HHFA016"}, 0.9, [2]int{1, 4}, kindSurgical, "Chirurgie digestive", "MCO", 10},
	{30, 95, []string{"K80.2"}, []string{"07C141", "07C142"}, []string{"HMFC004"}, 0.2, [2]int{1, 3}, kindSurgical, "Chirurgie digestive", "MCO", 10},
	{60, 95, []string{"M16.1"}, []string{"08C481", "08C482"}, []string{"NEKA020"}, 0, [2]int{5, 8}, kindSurgical, "Orthopédie", "MCO", 8},
	{75, 95, []string{"S72.0", "S72.1"}, []string{"08C471", "08C472", "08C473"}, []string{"NEKA020"}, 1, [2]int{7, 12}, kindSurgical, "Orthopédie", "MCO", 8},
	{60, 95, []string{"J18.9"}, []string{"04M052", "04M053"}, []string{"ZBQK002"}, 0.85, [2]int{5, 10}, kindMedical, "Pneumologie", "MCO", 10},
	{60, 95, []string{"H25.9"}, []string{"02C05J"}, []string{"BFGA004"}, 0, [2]int{0, 0}, kindSurgical, "Ophtalmologie", "MCO", 10},
	{25, 65, []string{"M23.2"}, []string{"08C44J"}, []string{"NFFC004"}, 0, [2]int{0, 0}, kindSurgical, "Orthopédie", "MCO", 6},
	{65, 95, []string{"N17.9"}, []string{"11M061", "11M062"}, nil, 0.8, [2]int{4, 8}, kindMedical, "Néphrologie", "MCO", 6},
	{40, 95, []string{"R07.4"}, []string{"05M13T"}, []string{"DEQP003"}, 1, [2]int{1, 1}, kindMedical, "Cardiologie", "MCO", 8},
	{50, 74, []string{"Z12.1"}, []string{"06K02Z"}, []string{"HHQE002", "HHQE005"}, 0, [2]int{0, 0}, kindScreening, "Gastro-entérologie", "MCO", 5},
	{18, 70, []string{"F32.2"}, nil, nil, 0.3, [2]int{14, 30}, kindMedical, "Psychiatrie", "PSY", 2},
}

var backgroundTotal = func() int {
	t := 0
	for _, b := range background {
		t += b.weight
	}
	return t
}()

func (g *generator) newStay(p *person, adm, dis day, dp string, kind stayKind, service string) *stay {
	return &stay{p: p, finess: p.hosp, adm: adm, dis: dis, admMode: "8", disMode: "8", dp: dp, unit: "MCO", kind: kind, service: service}
}

func (g *generator) fromTemplate(p *person, t stayTpl, adm day) *stay {
	r := p.r
	los := t.los[0] + r.IntN(t.los[1]-t.los[0]+1)
	s := g.newStay(p, adm, adm+day(los), pick(r, t.dps), t.kind, t.service)
	s.unit = t.unit
	if t.ghms != nil {
		s.ghm = pick(r, t.ghms)
	}
	if chance(r, t.emergency) {
		s.admSource = "5"
	}
	if len(t.acts) > 0 {
		s.acts = []stayAct{{pick(r, t.acts), adm + day(min(los, 1))}}
	}
	if p.t2d && chance(r, 0.7) {
		s.das = append(s.das, "E11.9")
	}
	return s
}

// hfStay is a heart-failure stay: DP I50.x mostly, or a hypertensive heart
// disease with heart failure (I11.0, I13.0, I13.2), or I50 as the related
// diagnosis of a Z-coded stay.
func (g *generator) hfStay(p *person, adm day) *stay {
	r := p.r
	los := 4 + r.IntN(11)
	s := g.newStay(p, adm, adm+day(los), "", kindMedical, "Cardiologie")
	switch x := r.Float64(); {
	case x < 0.70:
		s.dp = pick(r, []string{"I50.0", "I50.1", "I50.9"})
	case x < 0.85:
		s.dp = "I11.0"
	case x < 0.93:
		s.dp = pick(r, []string{"I13.0", "I13.2"})
	default:
		s.dp, s.dr = "Z45.0", "I50.0"
	}
	s.ghm = "05M09" + strconv.Itoa(1+min(los/4, 3))
	if chance(r, 0.7) {
		s.admSource = "5"
	}
	if p.t2d && chance(r, 0.8) {
		s.das = append(s.das, "E11.9")
	}
	if chance(r, 0.3) {
		s.das = append(s.das, "N18.3")
	}
	if chance(r, 0.3) {
		s.das = append(s.das, "I48.9")
	}
	s.acts = []stayAct{{"DEQP003", adm}, {"DZQM006", adm + 1}}
	return s
}

func (g *generator) smrStay(p *person, after *stay, dp string) *stay {
	s := g.newStay(p, after.dis, after.dis+day(14+p.r.IntN(15)), dp, kindRehab, "Soins médicaux et de réadaptation")
	s.finess, s.unit, s.admMode, s.admSource = after.finess, "SMR", "7", "1"
	return s
}

// readmission is an unplanned stay through the emergency department.
func (g *generator) readmission(p *person, adm day, dp, ghm string, kind stayKind, service string) *stay {
	s := g.newStay(p, adm, adm+day(3+p.r.IntN(8)), dp, kind, service)
	s.ghm, s.admSource = ghm, "5"
	if chance(p.r, 0.2) {
		s.finess = pick(p.r, p.place.hospitals)
	}
	return s
}

// stays builds the person's hospital history: episodes (a stay with its
// transfer or readmission) laid out without overlap, every stay discharged
// at least 35 days before AsOf (so that no 30-day window runs past it),
// and the death stay last.
func (g *generator) stays(p *person, dense bool) {
	r, a := p.r, age(p.birth, g.asOf)
	limit := g.lastIndex
	var death *stay
	if p.dies {
		d := between(r, g.start+200, g.lastIndex)
		death = g.newStay(p, d-1-day(r.IntN(6)), d, "", kindDeath, "Médecine interne")
		death.admSource, death.disMode = "5", "9"
		switch {
		case p.hf:
			death.dp, death.ghm, death.service = "I50.0", "05M094", "Cardiologie"
		case chance(r, 0.5):
			death.dp, death.ghm = "J18.9", "04M054"
		default:
			death.dp, death.ghm = "A41.9", "18M074"
		}
		limit = death.adm - 2
		p.end = death.adm - 1
	}
	var eps [][]*stay
	if p.hf {
		n := 1
		if chance(r, 0.4) {
			n++
		}
		if chance(r, 0.2) {
			n++
		}
		for range n {
			s := g.hfStay(p, between(r, g.start+20, limit-10))
			ep := []*stay{s}
			switch x := r.Float64(); {
			case x < 0.10:
				s.disMode = "7"
				ep = append(ep, g.smrStay(p, s, "I50.9"))
			case x < 0.13:
				s.disMode = "6"
			case x < 0.31:
				ep = append(ep, g.readmission(p, s.dis+day(3+r.IntN(26)), pick(r, []string{"I50.9", "J18.9", "N17.9"}), "05M092", kindMedical, "Cardiologie"))
			case x < 0.36:
				ep = append(ep, g.readmission(p, s.dis+day(31+r.IntN(15)), "I50.9", "05M092", kindMedical, "Cardiologie"))
			}
			eps = append(eps, ep)
		}
	}
	if p.mi {
		adm := between(r, g.start+20, limit-10)
		s := g.newStay(p, adm, adm+day(3+r.IntN(5)), pick(r, []string{"I21.0", "I21.1", "I21.4"}), kindSurgical, "Cardiologie")
		s.ghm, s.admSource = pick(r, []string{"05K051", "05K052"}), "5"
		s.acts = []stayAct{{"DEQP003", adm}, {"DDAF001", adm}}
		if p.t2d {
			s.das = append(s.das, "E11.9")
		}
		eps = append(eps, []*stay{s})
	}
	if p.crc {
		adm := between(r, g.start+20, limit-200)
		site := pick(r, []string{"C18.7", "C18.2", "C20"})
		colo := g.newStay(p, adm, adm, site, kindScreening, "Gastro-entérologie")
		colo.ghm, colo.acts = "06K02Z", []stayAct{{"HHQE002", adm}}
		op := adm + day(20+r.IntN(20))
		surgery := g.newStay(p, op, op+day(6+r.IntN(7)), site, kindSurgical, "Chirurgie digestive")
		surgery.ghm, surgery.acts = "06C041", []stayAct{{"HHFA008", op + 1}}
		ep := []*stay{colo, surgery}
		d := surgery.dis + day(21+r.IntN(10))
		for range 4 + r.IntN(5) {
			s := g.newStay(p, d, d, "Z51.1", kindSession, "Oncologie")
			s.dr, s.ghm = site, "28Z07Z"
			ep = append(ep, s)
			d += 14
		}
		eps = append(eps, ep)
	}
	if p.ibd {
		adm := between(r, g.start+20, limit-10)
		s := g.newStay(p, adm, adm+day(2+r.IntN(5)), pick(r, []string{"K50.9", "K51.9"}), kindMedical, "Gastro-entérologie")
		s.ghm = "06M041"
		if chance(r, 0.5) {
			s.admSource = "5"
		}
		eps = append(eps, []*stay{s})
	}
	if p.t2d && chance(r, 0.08) {
		adm := between(r, g.start+20, limit-10)
		s := g.newStay(p, adm, adm+day(2+r.IntN(4)), "E11.6", kindMedical, "Endocrinologie")
		s.ghm = "10M161"
		eps = append(eps, []*stay{s})
	}
	if p.female() && a >= 23 && a <= 44 && chance(r, 0.08) {
		adm := between(r, g.start+20, limit-30)
		s := g.newStay(p, adm, adm+day(2+r.IntN(3)), "O80", kindObstetric, "Maternité")
		s.ghm, s.acts = "14Z14A", []stayAct{{"JQGD010", adm}}
		ep := []*stay{s}
		if chance(r, 0.05) {
			ep = append(ep, g.readmission(p, s.dis+day(3+r.IntN(15)), "O86.0", "14M03Z", kindObstetric, "Maternité"))
		}
		eps = append(eps, ep)
	}
	if p.copd && chance(r, 0.5) {
		adm := between(r, g.start+20, limit-10)
		s := g.newStay(p, adm, adm+day(4+r.IntN(6)), "J44.1", kindMedical, "Pneumologie")
		s.ghm, s.admSource = "04M202", "5"
		eps = append(eps, []*stay{s})
	}
	rate := 0.10
	switch {
	case a >= 70:
		rate = 0.30
	case a >= 50:
		rate = 0.18
	}
	n := 0
	if chance(r, rate) {
		n++
		if chance(r, rate/2) {
			n++
		}
	}
	if dense && n == 0 && len(eps) == 0 && death == nil {
		n = 1
	}
	for k := 0; k < n; k++ {
		var t stayTpl
		for tries := 0; ; tries++ {
			x := r.IntN(backgroundTotal)
			for _, b := range background {
				if x < b.weight {
					t = b
					break
				}
				x -= b.weight
			}
			if a >= t.minAge && a <= t.maxAge || tries > 20 {
				break
			}
		}
		s := g.fromTemplate(p, t, between(r, g.start+20, limit-10))
		ep := []*stay{s}
		switch {
		case t.dps[0] == "S72.0" && chance(r, 0.35):
			s.disMode = "7"
			ep = append(ep, g.smrStay(p, s, s.dp))
		case s.unit == "MCO" && s.kind != kindScreening && chance(r, 0.06):
			dp, ghm := s.dp, s.ghm
			if s.kind == kindSurgical {
				dp, ghm = "T81.4", "21M071"
			}
			ep = append(ep, g.readmission(p, s.dis+day(2+r.IntN(28)), dp, ghm, kindMedical, s.service))
		}
		eps = append(eps, ep)
	}
	slices.SortStableFunc(eps, func(x, y []*stay) int { return int(x[0].adm - y[0].adm) })
	cursor := g.start + 1
	for _, ep := range eps {
		if ep[0].adm < cursor {
			d := cursor - ep[0].adm
			for _, s := range ep {
				s.shift(d)
			}
		}
		for _, s := range ep {
			if s.dis > limit {
				break
			}
			p.stays = append(p.stays, s)
			cursor = s.dis + 1
		}
	}
	if death != nil {
		p.stays = append(p.stays, death)
	}
	if dense && len(p.stays) == 0 { // the only episode did not fit: a short stay early on
		s := g.fromTemplate(p, background[8], g.start+30)
		p.stays = append(p.stays, s)
	}
	for i, s := range p.stays {
		s.seq = i
		s.ins = p.rowINS(dropHospital)
	}
}

// inStay reports whether a day falls within one of the person's stays.
func (p *person) inStay(d day) bool {
	for _, s := range p.stays {
		if d >= s.adm && d <= s.dis {
			return true
		}
	}
	return false
}

// add records a city row if it fits: within the period, outside the
// person's stays (background rows only), and not a second row the mapper
// would key like an existing one.
func (g *generator) add(p *person, a *act) bool {
	if a.date <= g.start || a.date > p.end || (!p.planted && p.inStay(a.date)) {
		return false
	}
	a.p = p
	if p.keys[a.key()] {
		return false
	}
	p.keys[a.key()] = true
	a.ins = p.rowINS(dropCity)
	a.seq = len(p.acts)
	p.acts = append(p.acts, a)
	return true
}

// nudge moves a date that the 12-month and 2-year look-backs of R2 and R3
// could read either way (within 3 days of a boundary) a week earlier.
func (g *generator) nudge(d day) day {
	for _, z := range g.zones {
		if d >= z-3 && d <= z+3 {
			return d - 7
		}
	}
	return d
}

func (g *generator) consult(p *person, who *pro, d day, code string) bool {
	kind := "consultation"
	if code == "TCG" || code == "TC" {
		kind = "teleconsultation"
	}
	return g.add(p, &act{pro: who, date: d, kind: kind, system: "ngap", code: code})
}

func (g *generator) gpCode(p *person) string {
	switch x := p.r.Float64(); {
	case x < 0.08:
		return "TCG"
	case x < 0.18:
		return "GS"
	case x < 0.28 && age(p.birth, g.asOf) >= 80:
		return "VG"
	}
	return "G"
}

type labTest struct {
	loinc, unit string
	lo, hi      float64
	dec         int
}

var (
	tGlucose  = labTest{"2345-7", "g/L", 0.70, 1.10, 2}
	tChol     = labTest{"2093-3", "g/L", 1.50, 2.40, 2}
	tCreat    = labTest{"2160-0", "mg/L", 6, 12, 1}
	tALT      = labTest{"1742-6", "U/L", 7, 40, 0}
	tTSH      = labTest{"3016-3", "m[IU]/L", 0.4, 4.0, 2}
	tK        = labTest{"2823-3", "mmol/L", 3.5, 5.0, 1}
	tHb       = labTest{"718-7", "g/dL", 12.0, 16.0, 1}
	tNTproBNP = labTest{"33762-6", "pg/mL", 20, 125, 0}
	tHbA1c    = labTest{"4548-4", "%", 4.5, 6.0, 1}
	tFIT      = labTest{"29771-3", "ng/mL", 0, 149, 0}
)

func fmtValue(v float64, dec int) string { return strconv.FormatFloat(v, 'f', dec, 64) }

// result is a lab value with its interpretation: N within the range,
// otherwise the flag given.
func result(r *rand.Rand, t labTest, interp string) (string, string) {
	span := t.hi - t.lo
	var v float64
	switch interp {
	case "H", "A":
		v = t.hi + span*(0.1+r.Float64())
	case "HH", "AA":
		v = t.hi + span*(2+2*r.Float64())
	case "L":
		v = t.lo - (t.lo * (0.1 + 0.3*r.Float64()))
	case "LL":
		v = t.lo * (0.3 + 0.2*r.Float64())
	default:
		interp = "N"
		v = t.lo + span*r.Float64()
	}
	return fmtValue(v, t.dec), interp
}

// lab adds a lab result; an abnormal flag dated in the last 35 days before
// AsOf becomes normal (no R7 window runs past AsOf).
func (g *generator) lab(p *person, d day, t labTest, interp string) *act {
	if interp != "N" && d > g.lastIndex {
		interp = "N"
	}
	v, in := result(p.r, t, interp)
	a := &act{pro: p.place.lab, date: d, kind: "lab-result", system: "loinc", code: t.loinc, value: v, unit: t.unit, interp: in}
	if !g.add(p, a) {
		return nil
	}
	return a
}

func abnormalFlag(r *rand.Rand) string {
	switch x := r.Float64(); {
	case x < 0.58:
		return "H"
	case x < 0.83:
		return "L"
	case x < 0.90:
		return "HH"
	case x < 0.94:
		return "LL"
	case x < 0.98:
		return "A"
	}
	return "AA"
}

func (g *generator) dispense(p *person, who *pro, d day, atc string, packs string, days int) bool {
	return g.add(p, &act{pro: who, date: d, kind: "dispensation", system: "atc", code: atc, qty: packs, days: days})
}

// course dispenses a chronic drug every `every` days (± a few) from..to,
// skipping some renewals.
func (g *generator) course(p *person, atc string, from, to day, every int, adherence float64) {
	r := p.r
	packs, days := "1", 30
	if every >= 80 {
		packs, days = "3", 90
	}
	who := p.pharmacy
	for d := from; d <= to; d += day(every - 5 + r.IntN(11)) {
		if !chance(r, adherence) {
			continue
		}
		dd := d
		if atc[:3] == "A10" {
			dd = g.nudge(d)
		}
		if chance(r, 0.05) {
			who = pick(r, p.place.pharmacies)
		}
		g.dispense(p, who, dd, atc, packs, days)
	}
}

// city builds the person's city activity around the stays.
func (g *generator) city(p *person) {
	r, a := p.r, age(p.birth, g.asOf)
	chronic := p.hf || p.t2d || p.mi || p.crc
	rate := 1.0
	switch {
	case a >= 70:
		rate = 3
	case a >= 50:
		rate = 2
	}
	if chronic {
		rate += 2
	}
	years := float64(p.end-g.start) / 365.25
	for range poisson(r, rate*years) {
		who := p.gp
		if chance(r, 0.1) {
			who = pick(r, p.place.gps)
		}
		d := between(r, g.start+1, p.end)
		if g.consult(p, who, d, g.gpCode(p)) && chance(r, 0.1) {
			g.dispense(p, p.pharmacy, d+day(r.IntN(2)), pick(r, []string{"J01CA04", "N02BE01", "M01AE01"}), "1", 7)
		}
	}
	// After a stay: the GP (R1 when it is a heart-failure discharge), the
	// nurse for the oldest.
	for _, s := range p.stays {
		if s.disMode != "8" || s.kind == kindSession {
			continue
		}
		if isHF(s) && s.unit == "MCO" {
			switch x := r.Float64(); {
			case x < 0.55:
				code := "G"
				if chance(r, 0.15) {
					code = "TCG"
				}
				g.consult(p, p.gp, s.dis+day(2+r.IntN(5)), code)
			case x < 0.70:
				g.consult(p, p.gp, s.dis+day(8+r.IntN(13)), "G")
			}
			if a >= 80 && chance(r, 0.5) {
				for _, k := range []int{1, 3, 5} {
					g.add(p, &act{pro: p.place.nurse, date: s.dis + day(k), kind: "procedure", system: "ngap", code: "AMI"})
				}
			}
		} else if chance(r, 0.4) {
			g.consult(p, p.gp, s.dis+day(3+r.IntN(18)), "G")
		}
	}
	// Specialists.
	if p.hf || p.mi {
		for d := g.start + day(r.IntN(180)); d <= p.end; d += day(150 + r.IntN(60)) {
			if chance(r, 0.7) {
				code := "CS"
				if chance(r, 0.1) {
					code = "TC"
				}
				g.consult(p, p.place.cardiologist, d, code)
			}
		}
	}
	if p.t2d && chance(r, 0.4) {
		g.consult(p, p.place.endo, between(r, g.start+1, p.end), "CS")
	}
	if p.female() && a >= 25 && a <= 65 {
		for d := g.start + day(r.IntN(365)); d <= p.end; d += 365 {
			if chance(r, 0.3) {
				g.consult(p, p.place.gyn, d, "CS")
			}
		}
	}
	if p.crc || p.ibd {
		for range 1 + r.IntN(3) {
			g.consult(p, p.place.gastro, between(r, g.start+1, p.end), "CS")
		}
	}
	g.drugs(p)
	g.labs(p)
	g.vaccines(p)
	g.screening(p)
}

func isHF(s *stay) bool {
	for _, d := range []string{s.dp, s.dr} {
		if len(d) >= 3 && d[:3] == "I50" || d == "I11.0" || d == "I13.0" || d == "I13.2" {
			return true
		}
	}
	return false
}

func (g *generator) drugs(p *person) {
	r := p.r
	if p.t2d && chance(r, 0.85) {
		from := g.start + 1 + day(r.IntN(60))
		to := p.end
		if chance(r, 0.1) {
			to = between(r, from, p.end)
		}
		every := 90
		if chance(r, 0.4) {
			every = 30
		}
		g.course(p, "A10BA02", from, to, every, 0.9)
		if chance(r, 0.4) {
			g.course(p, pick(r, []string{"A10BJ06", "A10BK01", "A10BB09"}), from+day(r.IntN(200)), to, 90, 0.85)
		}
	}
	if p.hf {
		from := g.start + 1 + day(r.IntN(40))
		for _, s := range p.stays {
			if isHF(s) && chance(r, 0.5) {
				from = s.dis + 1
				break
			}
		}
		every := 90
		if chance(r, 0.4) {
			every = 30
		}
		for _, atc := range []string{"C03CA01", "C07AB07", "C09AA05"} {
			g.course(p, atc, from, p.end, every, 0.9)
		}
	}
	if p.mi {
		for _, s := range p.stays {
			if s.dp[:3] == "I21" {
				for _, atc := range []string{"B01AC06", "C10AA05", "C07AB07", "C09AA05"} {
					to := p.end
					if chance(r, 0.3) {
						to = between(r, s.dis, p.end)
					}
					g.course(p, atc, s.dis+1, to, 90, 0.9)
				}
				break
			}
		}
	}
	if p.statin && !p.mi {
		g.course(p, "C10AA01", g.start+1+day(r.IntN(90)), p.end, 90, 0.85)
	}
	if p.thyroid {
		g.course(p, "H03AA01", g.start+1+day(r.IntN(90)), p.end, 90, 0.9)
	}
}

// labs: yearly check-ups, HbA1c for diabetics, NT-proBNP for heart
// failure; an abnormal result is often followed by the GP or a repeat.
func (g *generator) labs(p *person) {
	r, a := p.r, age(p.birth, g.asOf)
	var panels []day
	every, rate := 365, 0.3
	switch {
	case p.hf:
		every, rate = 182, 0.8
	case p.t2d || p.mi || a >= 60:
		every, rate = 365, 0.7
	}
	for d := g.start + 1 + day(r.IntN(every)); d <= p.end; d += day(every - 20 + r.IntN(41)) {
		if chance(r, rate) {
			panels = append(panels, d)
		}
	}
	var results []*act
	flag := func() string {
		if chance(r, 0.06) {
			return abnormalFlag(r)
		}
		return "N"
	}
	for _, d := range panels {
		var tests []labTest
		for _, t := range []labTest{tGlucose, tCreat, tChol} {
			if chance(r, 0.6) {
				tests = append(tests, t)
			}
		}
		if chance(r, 0.2) {
			tests = append(tests, tALT, tHb)
		}
		if p.female() && chance(r, 0.3) || p.thyroid {
			tests = append(tests, tTSH)
		}
		if p.hf {
			tests = append(tests, tK)
		}
		for _, t := range tests {
			if x := g.lab(p, d, t, flag()); x != nil {
				results = append(results, x)
			}
		}
		if p.hf {
			in := "N"
			if chance(r, 0.8) {
				in = "H"
			}
			if x := g.lab(p, d, tNTproBNP, in); x != nil {
				results = append(results, x)
			}
		}
	}
	if p.t2d {
		lapsed := chance(r, 0.25) // no HbA1c in the last 14 months: R2
		for d := g.start + 1 + day(r.IntN(120)); d <= p.end; d += day(100 + r.IntN(60)) {
			if lapsed && d > g.asOf-425 || !chance(r, 0.85) {
				continue
			}
			dd := g.nudge(d)
			in := "N"
			if chance(r, 0.6) {
				in = "H"
			}
			v, in2 := result(r, tHbA1c, in)
			if in2 != "N" && dd > g.lastIndex {
				v, in2 = result(r, tHbA1c, "N")
			}
			x := &act{pro: p.place.lab, date: dd, kind: "lab-result", system: "loinc", code: tHbA1c.loinc, value: v, unit: "%", interp: in2}
			// Some labs send the NABM act (mapped to LOINC 4548-4): only
			// for a normal result with no HbA1c in the month before, so
			// that "a repeat of the same code" has one reading.
			if in2 == "N" && chance(r, 0.2) && !g.recent(p, dd, "4548-4", 31) {
				x.system, x.code = "nabm", "1577"
			}
			if g.add(p, x) {
				results = append(results, x)
			}
		}
	}
	for _, x := range results {
		if x.interp == "N" {
			continue
		}
		switch y := r.Float64(); {
		case y < 0.6:
			g.consult(p, p.gp, x.date+day(1+r.IntN(25)), "G")
		case y < 0.75:
			t := testOf(x.loinc())
			d := x.date + day(7+r.IntN(22))
			if t.loinc == tHbA1c.loinc {
				d = g.nudge(d)
			}
			g.lab(p, d, t, "N")
		}
	}
}

// recent reports whether the person has a lab result with that LOINC in
// the n days up to d.
func (g *generator) recent(p *person, d day, loinc string, n int) bool {
	for _, a := range p.acts {
		if a.kind == "lab-result" && a.loinc() == loinc && a.date <= d && a.date >= d-day(n) {
			return true
		}
	}
	return false
}

func testOf(loinc string) labTest {
	for _, t := range []labTest{tGlucose, tChol, tCreat, tALT, tTSH, tK, tHb, tNTproBNP, tHbA1c, tFIT} {
		if t.loinc == loinc {
			return t
		}
	}
	return tGlucose
}

func (g *generator) vaccines(p *person) {
	r, a := p.r, age(p.birth, g.asOf)
	y0, _, _ := g.start.ymd()
	y1, _, _ := p.end.ymd()
	for y := y0; y <= y1; y++ {
		d := civil(y, 10, 15) + day(r.IntN(60))
		if a >= 65 && chance(r, 0.55) || a < 65 && chance(r, 0.1) {
			who := p.pharmacy
			if chance(r, 0.5) {
				who = p.gp
			}
			g.add(p, &act{pro: who, date: d, kind: "vaccination", system: "atc", code: "J07BB02"})
		}
		if a >= 65 && chance(r, 0.15) {
			g.add(p, &act{pro: p.pharmacy, date: d + day(r.IntN(20)), kind: "vaccination", system: "atc", code: "J07BN01"})
		}
	}
}

// screening: mammography for women and FIT for everyone aged 50–74 at
// the time, every two years for those who take part; a positive FIT
// leads to a colonoscopy.
func (g *generator) screening(p *person) {
	r := p.r
	eligible := func(d day) bool { x := age(p.birth, d); return x >= 50 && x <= 74 }
	mammo, fit := 0.15, 0.1
	if chance(r, 0.6) {
		mammo = 0.85
	}
	if chance(r, 0.4) {
		fit = 0.7
	}
	if p.female() {
		for d := g.start + 1 + day(r.IntN(730)); d <= p.end; d += day(670 + r.IntN(120)) {
			if eligible(d) && chance(r, mammo) {
				g.add(p, &act{pro: p.place.radiologist, date: g.nudge(d), kind: "procedure", system: "ccam", code: "QEQK004"})
			}
		}
	}
	for d := g.start + 1 + day(r.IntN(730)); d <= p.end; d += day(670 + r.IntN(120)) {
		if !eligible(d) || !chance(r, fit) {
			continue
		}
		dd := g.nudge(d)
		v, in := strconv.Itoa(r.IntN(140)), "NEG"
		if chance(r, 0.05) {
			v, in = strconv.Itoa(160+r.IntN(700)), "POS"
		}
		x := &act{pro: p.place.lab, date: dd, kind: "lab-result", system: "loinc", code: tFIT.loinc, value: v, unit: "ng/mL", interp: in}
		if g.add(p, x) && in == "POS" {
			g.add(p, &act{pro: p.place.gastro, date: g.nudge(dd + day(20+r.IntN(40))), kind: "procedure", system: "ccam", code: "HHQE002"})
		}
	}
	if eligible(g.asOf) && chance(r, 0.04) {
		g.add(p, &act{pro: p.place.gastro, date: g.nudge(between(r, g.start+1, p.end)), kind: "procedure", system: "ccam", code: pick(r, []string{"HHQE002", "HHQE005"})})
	}
}

// prevention enrols some people in a programme of their profile.
func (g *generator) prevention(p *person, dense bool) {
	r, a := p.r, age(p.birth, g.asOf)
	var prog string
	switch {
	case (p.hf || p.mi) && a >= 45 && chance(r, 0.35):
		prog = progHeart
	case p.t2d && chance(r, 0.25):
		prog = progDiabetes
	case a >= 50 && a <= 74 && chance(r, 0.14):
		prog = progScreening
	case a >= 45 && chance(r, 0.05):
		prog = progHeart
	case a >= 40 && chance(r, 0.04):
		prog = progDiabetes
	case dense:
		prog = progHeart
	default:
		return
	}
	lo, hi := g.start+30, min(g.asOf-60, p.end-30)
	if hi < lo {
		if !dense {
			return
		}
		hi = lo
	}
	prefix := map[string]string{progHeart: "CS", progScreening: "DC", progDiabetes: "DP"}[prog]
	m := &member{p: p, programme: prog, id: fmt.Sprintf("%s-%06d", prefix, p.idx), enrolled: between(r, lo, hi)}
	m.ins = p.rowINS(dropPrevention)
	m.consent = chance(r, 0.92)
	m.gp = chance(r, 0.55)
	m.research = chance(r, 0.3)
	switch x := r.Float64(); {
	case x < 0.3:
		m.risk = "low"
	case x < 0.65:
		m.risk = "moderate"
	case x < 0.9:
		m.risk = "high"
	}
	p.member = m
	if !m.consent {
		return
	}
	last := min(g.asOf, p.end)
	ev := func(d day, typ, sys, code, value, unit string) {
		if d >= m.enrolled && d <= last {
			m.events = append(m.events, pevent{d, typ, sys, code, value, unit})
		}
	}
	switch prog {
	case progHeart, progDiabetes:
		ev(m.enrolled, "questionnaire", "loinc", "72166-2", "", "")
		weight := 60 + 45*r.Float64()
		for d := m.enrolled; d <= last && d < m.enrolled+365; d += day(110 + r.IntN(20)) {
			if prog == progHeart {
				ev(d, "measurement", "loinc", "8480-6", strconv.Itoa(115+r.IntN(50)), "mm[Hg]")
			} else {
				ev(d, "measurement", "loinc", "39156-5", fmtValue(weight/2.9, 1), "kg/m2")
				ev(d, "measurement", "loinc", "8280-0", strconv.Itoa(85+r.IntN(30)), "cm")
			}
			ev(d, "measurement", "loinc", "29463-7", fmtValue(weight, 1), "kg")
			weight -= r.Float64()
		}
		for k := 1; k <= 6; k++ {
			ev(m.enrolled+day(30*k), "coaching", "", "", "", "")
		}
	case progScreening:
		// Screening done: the programme records the tests its member had,
		// on the day the lab or the radiologist did them (so the
		// programme's Observations never disagree with city activity).
		for d := m.enrolled + 7; d <= last; d += 365 {
			ev(d, "screening-reminder", "loinc", tFIT.loinc, "", "")
			if p.female() {
				ev(d, "screening-reminder", "ccam", "QEQK004", "", "")
			}
		}
		for _, x := range p.acts {
			switch {
			case x.ins == "" || m.ins == "":
				// an unlinked row or member is another patient for the hub
			case x.kind == "lab-result" && x.code == tFIT.loinc:
				ev(x.date, "screening-done", "loinc", x.code, x.value, x.unit)
			case x.kind == "procedure" && x.code == "QEQK004":
				ev(x.date, "screening-done", "ccam", x.code, "", "")
			}
		}
	}
	slices.SortStableFunc(m.events, func(x, y pevent) int { return int(x.date - y.date) })
}
