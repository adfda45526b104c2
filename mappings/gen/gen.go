package gen

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Source names (the $ingest source parameter) of the four native formats.
const (
	SourceHospital   = "hospital-stays"
	SourceCity       = "city-activity"
	SourcePrevention = "prevention-programme"
	SourceLiability  = "liability-claims"
)

// Sources lists the four sources in the order they are generated and
// should be ingested (hospital first: liability claims carry no birth date
// and sex, so their patients should exist before them).
var Sources = []string{SourceHospital, SourceCity, SourcePrevention, SourceLiability}

// ExpectedFile is the name of the expected counts written beside the data.
const ExpectedFile = "expected.json"

// FileName is the file a source is written to.
func FileName(source string) string {
	switch source {
	case SourceHospital:
		return "hospital-stays.csv"
	case SourceCity:
		return "city-activity.csv"
	case SourcePrevention:
		return "prevention-programme.ndjson"
	case SourceLiability:
		return "liability-claims.csv"
	}
	return ""
}

// DefaultAsOf is the evaluation date when Config.AsOf is zero.
var DefaultAsOf = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// DefaultPatients is the number of patients when Config.Patients is zero.
const DefaultPatients = 1000

// Config says what to generate.
type Config struct {
	// Patients is the number of people (default 1000).
	Patients int
	// Seed selects the data: the same Config gives the same bytes.
	Seed uint64
	// AsOf is the date the rupture counts are evaluated at (default
	// 2026-10-01, a date only). Every event lies in the 3 years before it,
	// none after.
	AsOf time.Time
	// BadRows adds that many deliberately bad rows (spread over the four
	// files, each with exactly one issue, listed in Expected.BadRows).
	BadRows int
	// Source and Rows select the large-file mode: Rows rows of one source,
	// streamed patient by patient in bounded memory, with no planted cases
	// and no rupture counts. Patients and BadRows are ignored.
	Source string
	Rows   int
}

// Writers receive the files. In the large-file mode only the writer of
// Config.Source is used. Expected, when set, receives expected.json.
type Writers struct {
	HospitalStays, CityActivity, PreventionProgramme, LiabilityClaims io.Writer
	Expected                                                          io.Writer
}

func (w Writers) of(source string) io.Writer {
	switch source {
	case SourceHospital:
		return w.HospitalStays
	case SourceCity:
		return w.CityActivity
	case SourcePrevention:
		return w.PreventionProgramme
	case SourceLiability:
		return w.LiabilityClaims
	}
	return nil
}

// Expected is what the generated files hold, computed from the rows (not
// by the mappers): row counts, the FHIR resources the hub should store,
// the rupture counts of an independent oracle, the planted cases and the
// bad rows.
type Expected struct {
	Generator string               `json:"generator"`
	Config    ExpectedConfig       `json:"config"`
	Files     map[string]FileCount `json:"files"`
	Patients  PatientCount         `json:"patients"`
	// Resources is the number of resources of each type an ingest of the
	// four files stores (per FHIR type), in the order of Sources.
	Resources map[string]int       `json:"resources,omitempty"`
	Rules     map[string]RuleCount `json:"rules,omitempty"`
	Planted   []Planted            `json:"planted,omitempty"`
	BadRows   []BadRow             `json:"bad_rows,omitempty"`
}

// ExpectedConfig is the configuration the files were made with.
type ExpectedConfig struct {
	Patients int    `json:"patients,omitempty"`
	Seed     uint64 `json:"seed"`
	AsOf     string `json:"as_of"`
	BadRows  int    `json:"bad_rows,omitempty"`
	Source   string `json:"source,omitempty"`
	Rows     int    `json:"rows,omitempty"`
}

// FileCount counts the data rows of a file (the header is not a row).
type FileCount struct {
	Source string `json:"source"`
	Rows   int    `json:"rows"`
	// UnlinkedRows have no INS-NIR: each makes its own patient (a
	// prevention member is matched on the member number).
	UnlinkedRows int `json:"unlinked_rows"`
	BadRows      int `json:"bad_rows,omitempty"`
}

// PatientCount counts people and the Patients the hub makes of them.
type PatientCount struct {
	// Generated is the number of people generated.
	Generated int `json:"generated"`
	// Linked is the number of distinct INS-NIR in the files, Unlinked the
	// number of patients made from rows without one; Total = Linked +
	// Unlinked is the number of Patient resources.
	Linked   int `json:"linked"`
	Unlinked int `json:"unlinked"`
	Total    int `json:"total"`
}

// RuleCount is the oracle's count for one rupture rule at AsOf. For the
// event rules (R1, R5, R7) IndexEvents counts index events; for the
// population rules (R2, R3) people in the population at AsOf.
type RuleCount struct {
	Code        string `json:"code"`
	IndexEvents int    `json:"index_events"`
	Censored    int    `json:"censored"`
	Excluded    int    `json:"excluded"`
	// Denominator = IndexEvents − Censored − Excluded = Ruptures + NoRupture.
	Denominator int `json:"denominator"`
	Ruptures    int `json:"ruptures"`
	NoRupture   int `json:"no_rupture"`
	// Patients is the number of distinct patients in the denominator,
	// PatientsWithRupture of those with at least one rupture.
	Patients            int `json:"patients"`
	PatientsWithRupture int `json:"patients_with_rupture"`
}

// Planted is one planted case: the outcome its author expects for a rule
// at an index date (AsOf for population rules). Expect is rupture,
// no-rupture, censored, excluded, not-index or not-in-population.
type Planted struct {
	ID        string `json:"id"`
	Rule      string `json:"rule"`
	INS       string `json:"ins_nir"`
	IndexDate string `json:"index_date"`
	Expect    string `json:"expect"`
	Note      string `json:"note"`
}

// BadRow is a deliberately bad row and the issue a mapper must report.
type BadRow struct {
	Source     string `json:"source"`
	File       string `json:"file"`
	Line       int    `json:"line"`
	Column     int    `json:"column"`
	Expression string `json:"expression"`
	Problem    string `json:"problem"`
}

type generator struct {
	cfg                    Config
	cat                    *catalog
	asOf, start, lastIndex day
	zones                  []day
	seen                   map[string]bool
	large                  bool
}

func newGenerator(cfg Config) (*generator, error) {
	if cfg.AsOf.IsZero() {
		cfg.AsOf = DefaultAsOf
	}
	if cfg.Rows > 0 {
		if FileName(cfg.Source) == "" {
			return nil, fmt.Errorf("gen: unknown source %q (want one of %v)", cfg.Source, Sources)
		}
	} else {
		if cfg.Source != "" {
			return nil, errors.New("gen: a source needs a number of rows (the large-file mode)")
		}
		if cfg.Patients == 0 {
			cfg.Patients = DefaultPatients
		}
		if cfg.Patients < 0 || cfg.BadRows < 0 {
			return nil, errors.New("gen: the number of patients and of bad rows cannot be negative")
		}
	}
	asOf := dayOf(cfg.AsOf)
	g := &generator{
		cfg: cfg, cat: newCatalog(), asOf: asOf,
		start: asOf.addYears(-3), lastIndex: asOf - 35,
		zones: []day{asOf.addYears(-1), asOf.addYears(-2), asOf},
		large: cfg.Rows > 0,
	}
	if !g.large {
		g.seen = map[string]bool{}
	}
	return g, nil
}

// Generate writes the files of cfg to out and returns what they hold. The
// output depends on cfg only: the same Config gives the same bytes.
func Generate(cfg Config, out Writers) (Expected, error) {
	g, err := newGenerator(cfg)
	if err != nil {
		return Expected{}, err
	}
	var exp Expected
	if g.large {
		w := out.of(g.cfg.Source)
		if w == nil {
			return Expected{}, fmt.Errorf("gen: no writer for %s", g.cfg.Source)
		}
		exp, err = g.stream(w)
	} else {
		for _, s := range Sources {
			if out.of(s) == nil {
				return Expected{}, fmt.Errorf("gen: no writer for %s", s)
			}
		}
		exp, err = g.all(out)
	}
	if err != nil {
		return Expected{}, err
	}
	if out.Expected != nil {
		b, err := json.MarshalIndent(exp, "", "  ")
		if err != nil {
			return Expected{}, err
		}
		if _, err := out.Expected.Write(append(b, '\n')); err != nil {
			return Expected{}, err
		}
	}
	return exp, nil
}

// GenerateDir writes the files of cfg and expected.json into dir (created
// if needed): the four files, or the one of the large-file mode.
func GenerateDir(cfg Config, dir string) (exp Expected, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Expected{}, err
	}
	var w Writers
	var files []*os.File
	var bufs []*bufio.Writer
	defer func() {
		for i, f := range files {
			if e := bufs[i].Flush(); e != nil && err == nil {
				err = e
			}
			if e := f.Close(); e != nil && err == nil {
				err = e
			}
		}
	}()
	open := func(name string) (io.Writer, error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		b := bufio.NewWriterSize(f, 1<<16)
		files, bufs = append(files, f), append(bufs, b)
		return b, nil
	}
	sources := Sources
	if cfg.Rows > 0 {
		sources = []string{cfg.Source}
		if FileName(cfg.Source) == "" {
			return Expected{}, fmt.Errorf("gen: unknown source %q (want one of %v)", cfg.Source, Sources)
		}
	}
	for _, s := range sources {
		x, err := open(FileName(s))
		if err != nil {
			return Expected{}, err
		}
		switch s {
		case SourceHospital:
			w.HospitalStays = x
		case SourceCity:
			w.CityActivity = x
		case SourcePrevention:
			w.PreventionProgramme = x
		case SourceLiability:
			w.LiabilityClaims = x
		}
	}
	if w.Expected, err = open(ExpectedFile); err != nil {
		return Expected{}, err
	}
	return Generate(cfg, w)
}

func (g *generator) expectedConfig() ExpectedConfig {
	c := ExpectedConfig{Seed: g.cfg.Seed, AsOf: g.asOf.String()}
	if g.large {
		c.Source, c.Rows = g.cfg.Source, g.cfg.Rows
	} else {
		c.Patients, c.BadRows = g.cfg.Patients, g.cfg.BadRows
	}
	return c
}

// dataset is everything generated in the normal mode, in file order.
type dataset struct {
	people  []*person
	stays   []*stay
	acts    []*act
	members []*member
	claims  []*claim
	planted []Planted
}

// data generates cfg.Patients people, the planted ones first, and puts
// their rows in file order.
func (g *generator) data() *dataset {
	var people []*person
	var planted []Planted
	for i := 0; i < g.cfg.Patients; i++ {
		p := g.newPerson(i)
		if i < len(scenarios) {
			planted = append(planted, g.plant(p, scenarios[i])...)
		} else {
			g.setINS(p)
			g.conditions(p)
			g.stays(p, false)
			g.city(p)
			g.prevention(p, false)
		}
		people = append(people, p)
	}
	var stays []*stay
	var acts []*act
	var members []*member
	for _, p := range people {
		stays = append(stays, p.stays...)
		acts = append(acts, p.acts...)
		if p.member != nil {
			members = append(members, p.member)
		}
	}
	slices.SortFunc(stays, func(a, b *stay) int {
		return cmp.Or(cmp.Compare(a.adm, b.adm), cmp.Compare(a.dis, b.dis), cmp.Compare(a.p.idx, b.p.idx), cmp.Compare(a.seq, b.seq))
	})
	seqs := map[string]int{}
	for _, s := range stays {
		y, _, _ := s.adm.ymd()
		k := s.finess + fmt.Sprint(y)
		seqs[k]++
		s.id = fmt.Sprintf("S%d-%05d", y, seqs[k])
	}
	slices.SortFunc(acts, func(a, b *act) int {
		return cmp.Or(cmp.Compare(a.date, b.date), cmp.Compare(a.p.idx, b.p.idx), cmp.Compare(a.seq, b.seq))
	})
	slices.SortFunc(members, func(a, b *member) int {
		return cmp.Or(cmp.Compare(a.enrolled, b.enrolled), cmp.Compare(a.p.idx, b.p.idx))
	})
	return &dataset{people: people, stays: stays, acts: acts, members: members, claims: g.claims(stays), planted: planted}
}

// all writes the four files with planted cases and rupture counts.
func (g *generator) all(out Writers) (Expected, error) {
	ds := g.data()
	stays, acts, members, claims := ds.stays, ds.acts, ds.members, ds.claims
	lines := map[string][][]byte{}
	for _, s := range stays {
		lines[SourceHospital] = append(lines[SourceHospital], appendStay(nil, s))
	}
	for _, a := range acts {
		lines[SourceCity] = append(lines[SourceCity], appendAct(nil, a))
	}
	for _, m := range members {
		lines[SourcePrevention] = append(lines[SourcePrevention], appendMember(nil, m))
	}
	for _, c := range claims {
		lines[SourceLiability] = append(lines[SourceLiability], appendClaim(nil, c))
	}
	bad := g.badRows(lines)

	exp := Expected{
		Generator: "parcours gen",
		Config:    g.expectedConfig(),
		Files:     map[string]FileCount{},
		Planted:   ds.planted,
		BadRows:   bad,
	}
	for _, src := range Sources {
		w := out.of(src)
		if h := header(src); h != "" {
			if _, err := io.WriteString(w, h); err != nil {
				return Expected{}, err
			}
		}
		for _, l := range lines[src] {
			if _, err := w.Write(l); err != nil {
				return Expected{}, err
			}
		}
	}
	fc := func(src string, rows, unlinked int) {
		n := 0
		for _, b := range bad {
			if b.Source == src {
				n++
			}
		}
		exp.Files[FileName(src)] = FileCount{Source: src, Rows: rows + n, UnlinkedRows: unlinked, BadRows: n}
	}
	fc(SourceHospital, len(stays), count(stays, func(s *stay) bool { return s.ins == "" }))
	fc(SourceCity, len(acts), count(acts, func(a *act) bool { return a.ins == "" }))
	fc(SourcePrevention, len(members), count(members, func(m *member) bool { return m.ins == "" }))
	fc(SourceLiability, len(claims), count(claims, func(c *claim) bool { return c.ins == "" }))

	o := newOracle(g, stays, acts, members, claims)
	exp.Patients = PatientCount{Generated: len(ds.people), Linked: o.linked, Unlinked: len(o.patients) - o.linked, Total: len(o.patients)}
	exp.Resources = o.resources()
	exp.Rules = o.rules()
	return exp, nil
}

func count[T any](xs []T, f func(T) bool) int {
	n := 0
	for _, x := range xs {
		if f(x) {
			n++
		}
	}
	return n
}

// stream writes cfg.Rows rows of one source, person by person, keeping
// one person in memory at a time.
func (g *generator) stream(w io.Writer) (Expected, error) {
	src := g.cfg.Source
	bw := bufio.NewWriterSize(w, 1<<16)
	if _, err := bw.WriteString(header(src)); err != nil {
		return Expected{}, err
	}
	rows, unlinked, linked, people := 0, 0, 0, 0
	var buf []byte
	hasINS := false
	emit := func(ins string) error {
		rows++
		if ins == "" {
			unlinked++
		} else {
			hasINS = true
		}
		_, err := bw.Write(buf)
		return err
	}
	for i := 0; rows < g.cfg.Rows; i++ {
		p := g.newPerson(i)
		g.setINS(p)
		g.conditions(p)
		g.stays(p, src == SourceHospital || src == SourceLiability)
		if src == SourceCity || src == SourcePrevention {
			g.city(p)
		}
		people++
		hasINS = false
		switch src {
		case SourceHospital:
			for k, s := range p.stays {
				if rows == g.cfg.Rows {
					break
				}
				s.id = fmt.Sprintf("S%07d-%d", p.idx, k+1)
				buf = appendStay(buf[:0], s)
				if err := emit(s.ins); err != nil {
					return Expected{}, err
				}
			}
		case SourceCity:
			slices.SortFunc(p.acts, func(a, b *act) int { return cmp.Or(cmp.Compare(a.date, b.date), cmp.Compare(a.seq, b.seq)) })
			for _, a := range p.acts {
				if rows == g.cfg.Rows {
					break
				}
				buf = appendAct(buf[:0], a)
				if err := emit(a.ins); err != nil {
					return Expected{}, err
				}
			}
		case SourcePrevention:
			g.prevention(p, true)
			if m := p.member; m != nil {
				buf = appendMember(buf[:0], m)
				if err := emit(m.ins); err != nil {
					return Expected{}, err
				}
			}
		case SourceLiability:
			if len(p.stays) > 0 {
				c := g.claim(p.r, p.stays[p.r.IntN(len(p.stays))], "")
				c.id = fmt.Sprintf("RC-%07d", p.idx)
				buf = appendClaim(buf[:0], c)
				if err := emit(c.ins); err != nil {
					return Expected{}, err
				}
			}
		}
		if hasINS {
			linked++
		}
	}
	if err := bw.Flush(); err != nil {
		return Expected{}, err
	}
	return Expected{
		Generator: "parcours gen",
		Config:    g.expectedConfig(),
		Files:     map[string]FileCount{FileName(src): {Source: src, Rows: rows, UnlinkedRows: unlinked}},
		Patients:  PatientCount{Generated: people, Linked: linked, Unlinked: unlinked, Total: linked + unlinked},
	}, nil
}

// claimCategories are the 8 codes of liability-event-category.
var claimCategories = []string{
	"defaut-depistage", "erreur-diagnostic", "retard-diagnostic", "complication-operatoire",
	"erreur-medicamenteuse", "infection-associee-aux-soins", "defaut-surveillance", "defaut-information",
}

// fits says which stays a category plausibly comes from.
func fits(cat string, s *stay) bool {
	switch cat {
	case "defaut-depistage":
		return s.kind == kindScreening
	case "complication-operatoire", "infection-associee-aux-soins", "defaut-information":
		return s.kind == kindSurgical || s.kind == kindObstetric
	case "defaut-surveillance":
		return s.kind == kindDeath || s.kind == kindMedical || s.kind == kindObstetric
	default:
		return s.kind == kindMedical || s.kind == kindDeath
	}
}

// claims picks a few stays (3 %, at least 8) that led to a claim: the
// first eight cover the eight categories.
func (g *generator) claims(stays []*stay) []*claim {
	r := rand.New(rand.NewPCG(g.cfg.Seed, 1<<62|1))
	n := min(max(8, (len(stays)*3+50)/100), len(stays))
	used := map[*stay]bool{}
	var out []*claim
	for k := 0; k < n; k++ {
		cat := ""
		if k < len(claimCategories) {
			cat = claimCategories[k]
		}
		var cands []*stay
		for _, s := range stays {
			if !used[s] && (cat == "" || fits(cat, s)) {
				cands = append(cands, s)
			}
		}
		if len(cands) == 0 {
			for _, s := range stays {
				if !used[s] {
					cands = append(cands, s)
				}
			}
		}
		s := pick(r, cands)
		used[s] = true
		out = append(out, g.claim(r, s, cat))
	}
	never := count(out, func(c *claim) bool { return c.never })
	for _, c := range out {
		if never >= 2 || len(out) < 8 {
			break
		}
		if !c.never && (c.category == "complication-operatoire" || c.category == "erreur-medicamenteuse") {
			c.never = true
			never++
		}
	}
	slices.SortStableFunc(out, func(a, b *claim) int { return cmp.Compare(a.declared, b.declared) })
	seqs := map[int]int{}
	for _, c := range out {
		y, _, _ := c.declared.ymd()
		seqs[y]++
		c.id = fmt.Sprintf("RC-%d-%04d", y, seqs[y])
	}
	return out
}

// claim is a claim about a stay; an empty category is chosen to fit it.
func (g *generator) claim(r *rand.Rand, s *stay, cat string) *claim {
	if cat == "" {
		var fitting []string
		for _, c := range claimCategories {
			if fits(c, s) {
				fitting = append(fitting, c)
			}
		}
		if len(fitting) == 0 {
			fitting = claimCategories
		}
		cat = pick(r, fitting)
	}
	c := &claim{p: s.p, stay: s, category: cat, finess: s.finess, service: s.service}
	c.event = between(r, s.adm, s.dis)
	c.declared = min(c.event+day(30+r.IntN(400)), g.asOf)
	c.ins = s.ins
	if !s.p.planted && chance(r, dropClaim) {
		c.ins = ""
	}
	if len(s.acts) > 0 && chance(r, 0.8) {
		c.procedure = s.acts[0].code
	}
	if s.kind == kindDeath {
		c.severity, c.outcome = 5, "fatal"
	} else {
		switch x := r.Float64(); {
		case x < 0.15:
			c.severity = 1
		case x < 0.50:
			c.severity = 2
		case x < 0.85:
			c.severity = 3
		default:
			c.severity = 4
		}
		c.outcome = pick(r, [][]string{
			{"resolved"}, {"resolved", "recovering"},
			{"recovering", "resolvedWithSequelae", "ongoing"}, {"resolvedWithSequelae", "ongoing", "unknown"},
		}[c.severity-1])
	}
	switch {
	case cat == "infection-associee-aux-soins":
		c.fault = "hai"
	default:
		c.fault = pick(r, []string{"fault", "no-fault", "undetermined", "undetermined"})
	}
	switch x := r.Float64(); {
	case x < 0.3:
	case x < 0.6:
		c.avoidable = "true"
	default:
		c.avoidable = "false"
	}
	if c.fault == "fault" && chance(r, 0.6) {
		c.lossPct = fmt.Sprint(10 + 5*r.IntN(15))
	}
	reserved := (2000 + r.IntN(18000)) * c.severity * c.severity
	c.reserved = fmt.Sprint(reserved / 500 * 500)
	switch x := r.Float64(); {
	case x < 0.55:
		c.status = "open"
	case x < 0.9:
		c.status = "closed"
		if c.fault == "no-fault" {
			c.paid = "0"
		} else {
			c.paid = fmt.Sprint(reserved * (50 + r.IntN(50)) / 100 / 100 * 100)
		}
	default:
		c.status = "reopened"
	}
	c.never = (cat == "complication-operatoire" || cat == "erreur-medicamenteuse") && chance(r, 0.25)
	return c
}
