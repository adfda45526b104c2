package measure

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/mappings/vocab"
)

// Stratifier attribute names the hub uses (Row.Strata keys). Any other name
// works the same way; these are the quasi-identifiers of domain brief §4.7.
const (
	AttrAgeBand       = "age-band"
	AttrSex           = "sex"
	AttrDepartement   = "departement"
	AttrEstablishment = "establishment"
)

// Unknown is the stratum of a row that has no value for a stratifier. Every
// row belongs to exactly one stratum of every stratifier, so the strata of a
// stratifier always add up to the group: the suppression relies on it.
const Unknown = "unknown"

// Cost perspectives (domain brief §6).
const (
	PerspectiveAMO           = "AMO"           // compulsory health insurance
	PerspectiveAMC           = "AMC"           // complementary insurance (mutual)
	PerspectiveEstablishment = "establishment" // the care establishment
)

// DefaultCostLabel says what the cost is, and what it is not (never "perte de chance").
const DefaultCostLabel = "rupture-associated downstream cost, association not causal"

// Extension URLs of the report (domain brief §3.2 item 5, §3.4).
const (
	// CostExtensionURL is the complex rupture-cost extension: total and mean
	// (Money, EUR), perspective (code) and label (string).
	CostExtensionURL = vocab.ExtensionBase + "rupture-cost"
	// PatientCountExtensionURL (valueInteger) sits on a population whose count
	// is published: the number of distinct patients behind that count.
	PatientCountExtensionURL = vocab.ExtensionBase + "population-patient-count"
	// ThresholdExtensionURL (valueInteger) on the report states the k applied.
	ThresholdExtensionURL = vocab.AggregationMinKExtensionURL
	// DataAbsentReasonURL carries valueCode "masked" on every suppressed value.
	DataAbsentReasonURL = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	// PopulationSystem is the R4 measure-population CodeSystem.
	PopulationSystem = "http://terminology.hl7.org/CodeSystem/measure-population"
)

// Age bands (domain brief §4.7: bands of at least 5 years).
const (
	// MinAgeBandWidth is the narrowest band AgeBand makes.
	MinAgeBandWidth = 5
	// TopAge is where the open top band starts (for widths dividing it): "90+".
	TopAge = 90
)

// ErrInvalid is wrapped by every error of Evaluate: the rows or the
// parameters break the contract below (a caller bug, not a client error).
var ErrInvalid = errors.New("measure: invalid input")

// Row is one index event (or one patient, for rules evaluated "as of" a date).
//
// Every row is in the initial population and is either excluded or in the
// denominator: Excluded wins (a row censored after detection is an exclusion
// even if it was flagged in the numerator); a row that is neither is an
// error, and so is a numerator row outside the denominator.
type Row struct {
	// Patient is an opaque key (a pseudonym); it is never published, only
	// counted: the threshold applies to distinct patients.
	Patient       string
	InDenominator bool
	InNumerator   bool
	Excluded      bool
	// ExclusionReason is accepted for the caller's records and never published:
	// a breakdown of exclusions by reason has structural zeros (an excluded
	// row is never in the numerator) that an attacker knows in advance, which
	// defeats cell suppression. The per-patient DetectedIssue side keeps it.
	ExclusionReason string
	// Cost is the downstream cost in euros attributed to the row under the
	// report's perspective. It is summed for numerator rows only (ignored
	// elsewhere), must be finite and not negative.
	Cost float64
	// Strata gives the row's value for each stratifier attribute
	// (AttrAgeBand, AttrSex…). A missing or empty value is Unknown.
	Strata map[string]string
}

// Params describe one evaluation.
type Params struct {
	// Measure is the canonical URL of the Measure (…/fhir/Measure/<rupture>).
	Measure string
	// PeriodStart and PeriodEnd bound the index events; both are required.
	PeriodStart, PeriodEnd time.Time
	// Date is MeasureReport.date; zero means now.
	Date time.Time
	// K is the smallest number of distinct patients behind a published value;
	// zero means vocab.MinAggregationK (10).
	K int
	// Stratifiers lists the Row.Strata attributes to stratify by, in order.
	Stratifiers []string
	// CostPerspective is PerspectiveAMO, PerspectiveAMC or
	// PerspectiveEstablishment; empty means the report carries no cost.
	CostPerspective string
	// CostLabel describes the cost; empty means DefaultCostLabel.
	CostLabel string
}

// Evaluate counts rows into a summary MeasureReport (FHIR R4 JSON as a map)
// and suppresses every value that the statistical secret forbids to release:
// see the package documentation for the rules. Rows are not modified.
func Evaluate(rows []Row, p Params) (map[string]any, error) {
	p, err := p.normalise()
	if err != nil {
		return nil, err
	}
	a, err := aggregate(rows, p)
	if err != nil {
		return nil, err
	}
	suppress(a, p.K, nil)
	return render(a, p), nil
}

func (p Params) normalise() (Params, error) {
	bad := func(format string, args ...any) (Params, error) {
		return p, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(p.Measure) == "" || strings.ContainsAny(p.Measure, " \t\n|") {
		return bad("the measure canonical URL is empty or malformed")
	}
	if p.PeriodStart.IsZero() || p.PeriodEnd.IsZero() || p.PeriodEnd.Before(p.PeriodStart) {
		return bad("the period needs a start and an end not before it")
	}
	switch {
	case p.K == 0:
		p.K = vocab.MinAggregationK
	case p.K < 0:
		return bad("threshold k %d is negative", p.K)
	}
	seen := map[string]bool{}
	for i, s := range p.Stratifiers {
		if strings.TrimSpace(s) == "" {
			return bad("stratifier %d has no name", i)
		}
		if seen[s] {
			return bad("stratifier %q is listed twice", s)
		}
		seen[s] = true
	}
	switch p.CostPerspective {
	case "", PerspectiveAMO, PerspectiveAMC, PerspectiveEstablishment:
	default:
		return bad("unknown cost perspective %q", p.CostPerspective)
	}
	if p.CostLabel == "" {
		p.CostLabel = DefaultCostLabel
	}
	if p.Date.IsZero() {
		p.Date = time.Now()
	}
	return p, nil
}

// AgeBand returns the age band of a person born on birth, at date at: "50-54"
// for width 5, "50-59" for width 10, and one open band from TopAge (or the
// largest multiple of width below it) up: "90+". Widths below MinAgeBandWidth
// are raised to it (domain brief §4.7). An unknown or future birth date gives
// Unknown. Ages are whole years in the calendar sense (a birthday on 29
// February counts from 1 March in common years).
func AgeBand(birth, at time.Time, width int) string {
	if birth.IsZero() || at.IsZero() || at.Before(birth) {
		return Unknown
	}
	width = max(width, MinAgeBandWidth)
	by, bm, bd := birth.Date()
	ay, am, ad := at.Date()
	age := ay - by
	if am < bm || (am == bm && ad < bd) {
		age--
	}
	if age < 0 {
		return Unknown
	}
	top := TopAge / width * width
	if top > 0 && age >= top {
		return strconv.Itoa(top) + "+"
	}
	lo := age / width * width
	return strconv.Itoa(lo) + "-" + strconv.Itoa(lo+width-1)
}

// roundCents rounds euros to the cent.
func roundCents(x float64) float64 { return math.Round(x*100) / 100 }
