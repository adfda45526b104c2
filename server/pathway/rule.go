package pathway

import (
	_ "embed"
	"time"
)

// DefaultRulesJSON is the embedded default rules file (ruptures.json).
//
//go:embed ruptures.json
var DefaultRulesJSON []byte

// DefaultRules parses DefaultRulesJSON.
func DefaultRules() ([]Rule, error) { return ParseRules(DefaultRulesJSON) }

// Rule kinds.
const (
	// KindAbsence: a rupture is the absence of the expected event in the window.
	KindAbsence = "absence"
	// KindOccurrence: a rupture is the occurrence of an unwanted event in the window.
	KindOccurrence = "occurrence"
)

// Rule is one rupture definition (see the package documentation for the
// JSON format). Rules are data: build them with ParseRule or ParseRules.
type Rule struct {
	ID          string `json:"id"`
	Code        string `json:"code"`
	Version     string `json:"version"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Kind        string `json:"kind"`
	Severity    string `json:"severity"`
	// Pathway is the pathway type (pathways.json) whose episode a finding
	// without an index event belongs to (a population rule: the diabetic's
	// missed HbA1c belongs to the type-2-diabetes episode).
	Pathway string `json:"pathway,omitempty"`
	// Exactly one of Index (one finding per index event) and AsOf (one
	// finding per patient in the population at the evaluation date).
	Index      *IndexSpec  `json:"index,omitempty"`
	AsOf       *AsOfSpec   `json:"asOf,omitempty"`
	Population *Population `json:"population,omitempty"`
	Window     Window      `json:"window"`
	// Expected (absence rules) or Unwanted (occurrence rules): any of the
	// events.
	Expected []Event  `json:"expected,omitempty"`
	Unwanted []Event  `json:"unwanted,omitempty"`
	Censor   []Censor `json:"censor,omitempty"`
	Cost     *Cost    `json:"cost,omitempty"`
}

// IndexSpec selects the index events.
type IndexSpec struct {
	Match Criteria `json:"match"`
	// Date is the fact date that is the index date: "start" (default) or
	// "end" (a stay's discharge).
	Date string `json:"date,omitempty"`
	// OnlyFirst keeps only the patient's first matching fact.
	OnlyFirst bool `json:"onlyFirst,omitempty"`
}

// AsOfSpec is a population at the evaluation date: patients with any of
// the events (everyone passing Population when AnyOf is empty).
type AsOfSpec struct {
	AnyOf []Event `json:"anyOf,omitempty"`
}

// Population filters index events (or asOf patients).
type Population struct {
	// MinAge and MaxAge bound the age in completed years at the index date
	// (inclusive). A patient without birth date fails any age bound.
	MinAge *int `json:"minAge,omitempty"`
	MaxAge *int `json:"maxAge,omitempty"`
	// Sex lists the FHIR genders admitted (male, female, other, unknown).
	Sex []string `json:"sex,omitempty"`
	// Exclude: a patient with any of these events is not eligible. Without
	// a window an event counts at any date up to the index date.
	Exclude []Event `json:"exclude,omitempty"`
}

// Event is a set of facts: those matching Match, at least MinCount of
// them (on distinct days when DistinctDates), dated in Window (the rule's
// window when nil, for expected and unwanted events).
type Event struct {
	Match         Criteria `json:"match"`
	Window        *Window  `json:"window,omitempty"`
	MinCount      int      `json:"minCount,omitempty"`
	DistinctDates bool     `json:"distinctDates,omitempty"`
}

// Censor excludes an index event, with a reason, when the patient dies
// (Death) or a fact matching Match happens in the window (the rule's when
// nil) before any expected or unwanted event.
type Censor struct {
	Reason string    `json:"reason"`
	Death  bool      `json:"death,omitempty"`
	Match  *Criteria `json:"match,omitempty"`
	Window *Window   `json:"window,omitempty"`
}

// Window is a period relative to a date.
type Window struct {
	Start Bound `json:"start"`
	End   Bound `json:"end"`
}

// Bound is an offset from the index date (Years, Months and Days applied
// in that order by time.AddDate) and whether the bound itself belongs to
// the window.
type Bound struct {
	Years     int   `json:"years,omitempty"`
	Months    int   `json:"months,omitempty"`
	Days      int   `json:"days,omitempty"`
	Inclusive *bool `json:"inclusive"`
	// AddDaysSupply adds the index dispensation's days of supply.
	AddDaysSupply bool `json:"addDaysSupply,omitempty"`
}

// Criteria select facts. Every present field must hold (AND); within a
// list, any element may match (OR).
type Criteria struct {
	ResourceTypes []string  `json:"resourceTypes"`
	Codes         []CodeSet `json:"codes,omitempty"`
	ExcludeCodes  []CodeSet `json:"excludeCodes,omitempty"`
	// Class lists Encounter class codes.
	Class       []string  `json:"class,omitempty"`
	ServiceType []CodeSet `json:"serviceType,omitempty"`
	// DiagnosisRole lists the PMSI roles (DP, DR, DAS, DAD) of a Condition.
	DiagnosisRole []string `json:"diagnosisRole,omitempty"`
	// Diagnosis asks an Encounter for a Condition of that encounter.
	Diagnosis                   *DiagnosisCriteria `json:"diagnosis,omitempty"`
	AdmitSource                 []CodeSet          `json:"admitSource,omitempty"`
	DischargeDisposition        []CodeSet          `json:"dischargeDisposition,omitempty"`
	ExcludeDischargeDisposition []CodeSet          `json:"excludeDischargeDisposition,omitempty"`
	PerformerSpecialty          []CodeSet          `json:"performerSpecialty,omitempty"`
	Interpretation              []CodeSet          `json:"interpretation,omitempty"`
	// Stage lists parcours-stage codes; a top-level stage matches its children.
	Stage       []string `json:"stage,omitempty"`
	Status      []string `json:"status,omitempty"`
	SourceActor []string `json:"sourceActor,omitempty"`
	// SameCodeAsIndex asks for a code shared with the index fact.
	SameCodeAsIndex *SameCode `json:"sameCodeAsIndex,omitempty"`
}

// DiagnosisCriteria match one Condition of an Encounter.
type DiagnosisCriteria struct {
	Role  []string  `json:"role,omitempty"`
	Codes []CodeSet `json:"codes,omitempty"`
}

// SameCode compares a fact's codes with the index fact's: same system
// (System when set) and the same code, or the same first PrefixLength
// characters.
type SameCode struct {
	System       string `json:"system,omitempty"`
	PrefixLength int    `json:"prefixLength,omitempty"`
}

// CodeSet is codes of one system: exact Codes and Prefixes. Comparison
// ignores ASCII case and dots (I50.9 = I509).
type CodeSet struct {
	System   string   `json:"system"`
	Codes    []string `json:"codes,omitempty"`
	Prefixes []string `json:"prefixes,omitempty"`
}

// Cost values the facts that follow an index event.
type Cost struct {
	Perspective string `json:"perspective"`
	Currency    string `json:"currency"`
	// Basis is "downstream" (facts in (index, index + HorizonDays]) or
	// "unwanted" (the unwanted events of an occurrence rule).
	Basis       string     `json:"basis"`
	HorizonDays int        `json:"horizonDays,omitempty"`
	Table       []CostItem `json:"table"`
}

// CostItem prices the facts matching Match: the longest matching prefix of
// Prices, else Default. A fact takes the first item that matches it.
type CostItem struct {
	Item    string   `json:"item"`
	Match   Criteria `json:"match"`
	Default float64  `json:"default"`
	Prices  []Price  `json:"prices,omitempty"`
}

// Price is the amount of the codes of System starting with Prefix.
type Price struct {
	System string  `json:"system"`
	Prefix string  `json:"prefix"`
	Amount float64 `json:"amount"`
}

// Period is a resolved window.
type Period struct {
	Start, End                   time.Time
	StartInclusive, EndInclusive bool
}

// Contains reports whether day t is in the period.
func (p Period) Contains(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	if c := t.Compare(p.Start); c < 0 || c == 0 && !p.StartInclusive {
		return false
	}
	if c := t.Compare(p.End); c > 0 || c == 0 && !p.EndInclusive {
		return false
	}
	return true
}

// lastDay is the last day of the period.
func (p Period) lastDay() time.Time {
	if p.EndInclusive {
		return p.End
	}
	return p.End.AddDate(0, 0, -1)
}

// firstDay is the first day of the period.
func (p Period) firstDay() time.Time {
	if p.StartInclusive {
		return p.Start
	}
	return p.Start.AddDate(0, 0, 1)
}

// resolve places the window around date d; supply is the index fact's
// days of supply.
func (w Window) resolve(d time.Time, supply int) Period {
	at := func(b Bound) time.Time {
		t := d.AddDate(b.Years, b.Months, b.Days)
		if b.AddDaysSupply {
			t = t.AddDate(0, 0, supply)
		}
		return t
	}
	return Period{
		Start: at(w.Start), End: at(w.End),
		StartInclusive: w.Start.Inclusive != nil && *w.Start.Inclusive,
		EndInclusive:   w.End.Inclusive != nil && *w.End.Inclusive,
	}
}
