package gen

import (
	"math/rand/v2"
	"strconv"
)

// person is one generated patient and everything the four sources say
// about them. Rows carry their own ins: a row whose INS-NIR was left out
// (an unlinked row) is another patient for the hub and for the oracle.
type person struct {
	idx      int
	r        *rand.Rand
	sex      byte // '1' male, '2' female (PMSI codes)
	birth    day
	place    *place
	postcode string
	birthIn  string // NIR département of birth ("75", "2A", "971", "99" abroad)
	ins      string
	gp       *pro
	pharmacy *pro
	hosp     string // the establishment the person usually goes to
	planted  bool

	hf, t2d, mi, crc, ibd, copd, statin, thyroid bool
	dies                                         bool
	// end is the last day the person can have city activity (the day
	// before the death stay, or AsOf).
	end day

	stays  []*stay
	acts   []*act
	member *member
	claims []*claim
	keys   map[string]bool // city row keys already used (the mapper's record key)
}

func (p *person) female() bool { return p.sex == '2' }

// stayKind classifies a stay for the liability claims.
type stayKind uint8

const (
	kindMedical stayKind = iota
	kindSurgical
	kindScreening
	kindObstetric
	kindSession
	kindDeath
	kindRehab
)

type stayAct struct {
	code string
	date day
}

type stay struct {
	p                           *person
	ins                         string
	finess, id                  string
	adm, dis                    day
	admMode, admSource, disMode string
	ghm, dp, dr                 string
	das                         []string
	acts                        []stayAct
	unit                        string
	kind                        stayKind
	service                     string
	seq                         int
}

func (s *stay) diagnoses() []string {
	out := []string{s.dp}
	if s.dr != "" {
		out = append(out, s.dr)
	}
	return append(out, s.das...)
}

func (s *stay) shift(n day) {
	s.adm += n
	s.dis += n
	for i := range s.acts {
		s.acts[i].date += n
	}
}

// act is one city-activity row.
type act struct {
	p                   *person
	ins                 string
	pro                 *pro
	date                day
	kind                string
	system, code        string
	value, unit, interp string
	qty                 string
	days                int
	seq                 int
}

// key is what the city mapper keys a record on (besides the patient):
// two rows with the same key would be one resource.
func (a *act) key() string {
	return a.pro.rpps + "|" + strconv.Itoa(int(a.date)) + "|" + a.kind + "|" + a.system + "|" + a.code + "|" + a.value
}

// loinc is the LOINC of a lab result (NABM 1577 is HbA1c, as the
// nabm-to-loinc ConceptMap says).
func (a *act) loinc() string {
	if a.system == "nabm" {
		return map[string]string{"1577": "4548-4", "0592": "2160-0", "0552": "2345-7"}[a.code]
	}
	return a.code
}

type pevent struct {
	date                           day
	typ, system, code, value, unit string
}

type member struct {
	p                     *person
	ins                   string
	id, programme         string
	enrolled              day
	consent, gp, research bool
	risk                  string
	events                []pevent
}

type claim struct {
	p                                    *person
	ins                                  string
	id                                   string
	declared, event                      day
	finess, service, procedure, category string
	never                                bool
	severity                             int
	outcome, fault, avoidable, lossPct   string
	reserved, paid, status               string
	stay                                 *stay
}
