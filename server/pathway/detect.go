package pathway

import (
	"slices"
	"sort"
	"strconv"
	"time"
)

// Status is the outcome of one index event (or asOf population member).
type Status string

// Statuses. Index events that are not eligible give no finding.
const (
	// StatusRupture: the expected event is missing from the elapsed window
	// (absence), or an unwanted event happened in it (occurrence).
	StatusRupture Status = "rupture"
	// StatusMet: the expected event happened (absence), or the window
	// elapsed without the unwanted event (occurrence).
	StatusMet Status = "met"
	// StatusCensored: a censoring event (death, readmission…) came first.
	StatusCensored Status = "censored"
	// StatusPending: the window is not over at the evaluation date and
	// nothing has decided yet.
	StatusPending Status = "pending"
)

// Finding is the result of one rule for one index event.
type Finding struct {
	// Key is stable across runs: "<rule id>|<index ref>", or for an asOf
	// rule "<rule id>|<patient ref>|<year of the evaluation date>".
	Key                             string
	RuleID, Code, Version, Severity string
	Kind                            string
	Patient                         string
	// Index is the index fact's reference ("" for an asOf rule) and
	// IndexDate the index date (the evaluation date for an asOf rule).
	Index     string
	IndexDate time.Time
	// Window is the rule's window around IndexDate.
	Window Period
	Status Status
	// Evidence lists the facts that met the expectation (absence) or the
	// unwanted events (occurrence), and EvidenceDate the day it was decided.
	Evidence     []string
	EvidenceDate time.Time
	// CensorReason, CensorRef ("" for a death) and CensorDate say why and
	// when a censored finding was censored.
	CensorReason string
	CensorRef    string
	CensorDate   time.Time
	// Cost is the downstream cost (nil when the rule has no cost table).
	Cost *CostResult
	// Establishment is the index fact's establishment (FINESS).
	Establishment string
	// Age is the patient's age in completed years at IndexDate, -1 when
	// the birth date is unknown.
	Age int
}

// CostResult is the cost attached to a finding.
type CostResult struct {
	Perspective, Currency string
	Total                 float64
	Lines                 []CostLine
}

// CostLine is one costed fact.
type CostLine struct {
	Ref, Item string
	Amount    float64
}

// InPeriod reports whether the finding's index date is in [start, end]
// (calendar days, both inclusive).
func InPeriod(f Finding, start, end time.Time) bool {
	d := Day(f.IndexDate)
	return !d.Before(Day(start)) && !d.After(Day(end))
}

// Detect evaluates the rules for one patient as of a date: only facts
// dated on or before asOf count, so a past evaluation is reproducible.
// It returns one finding per eligible index event (rupture, met, censored
// or pending), rule by rule in the order given, index events by date.
func Detect(rules []Rule, p Patient, asOf time.Time) []Finding {
	asOf = Day(asOf)
	if !slices.IsSortedFunc(p.Facts, byStart) {
		p.Facts = slices.Clone(p.Facts)
		slices.SortStableFunc(p.Facts, byStart)
	}
	var out []Finding
	for i := range rules {
		out = detectRule(&rules[i], &p, asOf, out)
	}
	return out
}

func byStart(a, b Fact) int { return a.Start.Compare(b.Start) }

func detectRule(r *Rule, p *Patient, asOf time.Time, out []Finding) []Finding {
	switch {
	case r.AsOf != nil && r.Index == nil:
		if p.Deceased && (p.DeceasedDate.IsZero() || !p.DeceasedDate.After(asOf)) {
			return out
		}
		if !r.Population.admits(p, asOf) || r.Population.excludes(p, asOf, asOf) {
			return out
		}
		if len(r.AsOf.AnyOf) > 0 && !anyEvent(r.AsOf.AnyOf, p, asOf, asOf) {
			return out
		}
		f := r.evaluate(p, nil, asOf, asOf)
		f.Key = r.ID + "|" + p.Ref + "|" + strconv.Itoa(asOf.Year())
		return append(out, f)
	case r.Index != nil && r.AsOf == nil:
		first := -1
		for i := range p.Facts {
			fact := &p.Facts[i]
			d := r.Index.dateOf(fact)
			if d.IsZero() || d.After(asOf) || !r.Index.Match.matches(fact, nil) {
				continue
			}
			if r.Index.OnlyFirst {
				if first < 0 || d.Before(r.Index.dateOf(&p.Facts[first])) {
					first = i
				}
				continue
			}
			out = r.indexFinding(p, fact, d, asOf, out)
		}
		if first >= 0 {
			fact := &p.Facts[first]
			out = r.indexFinding(p, fact, r.Index.dateOf(fact), asOf, out)
		}
	}
	return out
}

func (r *Rule) indexFinding(p *Patient, fact *Fact, d, asOf time.Time, out []Finding) []Finding {
	if !r.Population.admits(p, d) || r.Population.excludes(p, d, asOf) {
		return out
	}
	f := r.evaluate(p, fact, d, asOf)
	f.Key = r.ID + "|" + fact.Ref
	f.Index = fact.Ref
	f.Establishment = fact.Establishment
	return append(out, f)
}

// dateOf is the index date of a fact (zero when it has none).
// IndexConsidered reports, for a rule with index events, whether the fact
// ref is in p's record (exists) and whether an evaluation at asOf looks at
// it as an index event (its index date is on or before asOf): a finding
// stored for it that such an evaluation no longer yields rested on facts
// that changed; one whose index is after asOf was simply not looked at.
func (r *Rule) IndexConsidered(p *Patient, ref string, asOf time.Time) (exists, considered bool) {
	if r.Index == nil {
		return false, false
	}
	for i := range p.Facts {
		if p.Facts[i].Ref == ref {
			d := r.Index.dateOf(&p.Facts[i])
			return true, !d.IsZero() && !d.After(asOf)
		}
	}
	return false, false
}

func (s *IndexSpec) dateOf(f *Fact) time.Time {
	if s.Date == "end" {
		return f.End
	}
	return f.Start
}

// admits applies the age and sex filters at date d.
func (pop *Population) admits(p *Patient, d time.Time) bool {
	if pop == nil {
		return true
	}
	if pop.MinAge != nil || pop.MaxAge != nil {
		age := ageAt(p.BirthDate, d)
		if age < 0 || pop.MinAge != nil && age < *pop.MinAge || pop.MaxAge != nil && age > *pop.MaxAge {
			return false
		}
	}
	if len(pop.Sex) > 0 && !containsStr(pop.Sex, p.Gender) {
		return false
	}
	return true
}

// excludes reports whether an exclusion event is present around date d.
func (pop *Population) excludes(p *Patient, d, asOf time.Time) bool {
	return pop != nil && len(pop.Exclude) > 0 && anyEvent(pop.Exclude, p, d, asOf)
}

// anyEvent reports whether any event is satisfied; events without a
// window look at the whole history up to date d.
func anyEvent(events []Event, p *Patient, d, asOf time.Time) bool {
	for i := range events {
		e := &events[i]
		win := history(d)
		if e.Window != nil {
			win = e.Window.resolve(d, 0)
		}
		if _, _, ok := e.satisfied(p, win, asOf, nil, false); ok {
			return true
		}
	}
	return false
}

// history is every day up to d.
func history(d time.Time) Period {
	return Period{Start: time.Time{}, End: d, StartInclusive: true, EndInclusive: true}
}

func ageAt(birth, d time.Time) int {
	if birth.IsZero() || d.Before(birth) {
		return -1
	}
	y := d.Year() - birth.Year()
	if d.Month() < birth.Month() || d.Month() == birth.Month() && d.Day() < birth.Day() {
		y--
	}
	return y
}

// evaluate runs the windowed anti-join for one index (nil for asOf).
func (r *Rule) evaluate(p *Patient, index *Fact, d, asOf time.Time) Finding {
	supply := 0
	if index != nil {
		supply = index.DaysSupply
	}
	win := r.Window.resolve(d, supply)
	f := Finding{
		RuleID: r.ID, Code: r.Code, Version: r.Version, Severity: r.Severity, Kind: r.Kind,
		Patient: p.Ref, IndexDate: d, Window: win, Age: ageAt(p.BirthDate, d),
	}
	occurrence := r.Kind == KindOccurrence
	events := r.Expected
	if occurrence {
		events = r.Unwanted
	}
	var found bool
	var eDate time.Time
	var eRefs []string
	for i := range events {
		e := &events[i]
		ew := win
		if e.Window != nil {
			ew = e.Window.resolve(d, supply)
		}
		date, refs, ok := e.satisfied(p, ew, asOf, index, occurrence)
		if occurrence && ok {
			for _, ref := range refs {
				if !slices.Contains(eRefs, ref) {
					eRefs = append(eRefs, ref)
				}
			}
		}
		if ok && (!found || date.Before(eDate)) {
			found, eDate = true, date
			if !occurrence {
				eRefs = refs
			}
		}
	}
	cDate, cReason, cRef, censored := r.censor(p, win, d, supply, asOf, index)
	decided := found && (!censored || !eDate.After(cDate))
	switch {
	case decided:
		f.EvidenceDate = eDate
		f.Evidence = eRefs
		if occurrence {
			f.Status = StatusRupture
			if censored {
				f.Evidence = r.before(p, eRefs, cDate)
			}
		} else {
			f.Status = StatusMet
		}
	case censored:
		f.Status = StatusCensored
		f.CensorReason, f.CensorRef, f.CensorDate = cReason, cRef, cDate
	case win.lastDay().After(asOf):
		f.Status = StatusPending
	case occurrence:
		f.Status = StatusMet
	default:
		f.Status = StatusRupture
	}
	if r.Cost != nil {
		var unwanted []string
		if occurrence && f.Status == StatusRupture {
			unwanted = f.Evidence
		}
		f.Cost = r.Cost.of(p, index, d, asOf, unwanted)
	}
	return f
}

// before keeps the refs of facts dated on or before day c.
func (r *Rule) before(p *Patient, refs []string, c time.Time) []string {
	var out []string
	for i := range p.Facts {
		f := &p.Facts[i]
		if !f.Start.After(c) && slices.Contains(refs, f.Ref) {
			out = append(out, f.Ref)
		}
	}
	return out
}

// censor finds the earliest censoring event (day, reason, fact ref).
func (r *Rule) censor(p *Patient, win Period, d time.Time, supply int, asOf time.Time, index *Fact) (time.Time, string, string, bool) {
	var best time.Time
	var reason, ref string
	found := false
	for i := range r.Censor {
		c := &r.Censor[i]
		cw := win
		if c.Window != nil {
			cw = c.Window.resolve(d, supply)
		}
		if c.Death {
			if dd := p.DeceasedDate; !dd.IsZero() && !dd.After(asOf) && cw.Contains(dd) && (!found || dd.Before(best)) {
				best, reason, ref, found = dd, c.Reason, "", true
			}
			continue
		}
		if c.Match == nil {
			continue
		}
		e := Event{Match: *c.Match}
		if date, refs, ok := e.satisfied(p, cw, asOf, index, false); ok && (!found || date.Before(best)) {
			best, reason, ref, found = date, c.Reason, refs[0], true
		}
	}
	return best, reason, ref, found
}

// satisfied looks for the event's facts in the window (up to asOf). It
// returns the day the event is satisfied (the MinCount-th matching fact),
// and the matching refs: those counted until then, or every matching fact
// of the window when all is set.
func (e *Event) satisfied(p *Patient, win Period, asOf time.Time, index *Fact, all bool) (time.Time, []string, bool) {
	last := win.lastDay()
	if last.After(asOf) {
		last = asOf
	}
	first := win.firstDay()
	if !win.Start.IsZero() && first.After(last) {
		return time.Time{}, nil, false
	}
	facts := p.Facts
	start := 0
	if !win.Start.IsZero() {
		start = sort.Search(len(facts), func(i int) bool { return !facts[i].Start.Before(first) })
	}
	need := max(e.MinCount, 1)
	count := 0
	var lastDay, doneDay time.Time
	var refs []string
	for i := start; i < len(facts) && !facts[i].Start.After(last); i++ {
		f := &facts[i]
		if f.Start.IsZero() || f == index || index != nil && f.Ref == index.Ref {
			continue
		}
		if !e.Match.matches(f, index) {
			continue
		}
		if e.DistinctDates && count > 0 && f.Start.Equal(lastDay) {
			if all {
				refs = append(refs, f.Ref)
			}
			continue
		}
		count++
		lastDay = f.Start
		refs = append(refs, f.Ref)
		if count == need {
			doneDay = f.Start
			if !all {
				return doneDay, refs, true
			}
		}
	}
	if count >= need {
		return doneDay, refs, true
	}
	if all {
		return time.Time{}, refs, false
	}
	return time.Time{}, nil, false
}

// of values the downstream facts (or the unwanted events) of an index.
func (c *Cost) of(p *Patient, index *Fact, d, asOf time.Time, unwanted []string) *CostResult {
	res := &CostResult{Perspective: c.Perspective, Currency: c.Currency}
	price := func(f *Fact) {
		for i := range c.Table {
			it := &c.Table[i]
			if !it.Match.matches(f, index) {
				continue
			}
			amount := it.price(f)
			res.Lines = append(res.Lines, CostLine{Ref: f.Ref, Item: it.Item, Amount: amount})
			res.Total += amount
			return
		}
	}
	switch c.Basis {
	case "unwanted":
		for i := range p.Facts {
			if slices.Contains(unwanted, p.Facts[i].Ref) {
				price(&p.Facts[i])
			}
		}
	case "downstream":
		// (d, d + horizon], up to asOf; facts are sorted by Start.
		last := d.AddDate(0, 0, c.HorizonDays)
		if last.After(asOf) {
			last = asOf
		}
		facts := p.Facts
		for i := sort.Search(len(facts), func(i int) bool { return facts[i].Start.After(d) }); i < len(facts) && !facts[i].Start.After(last); i++ {
			if f := &facts[i]; f != index {
				price(f)
			}
		}
	}
	return res
}

// price is the amount of the longest matching prefix, else the default.
func (it *CostItem) price(f *Fact) float64 {
	best, bestLen := it.Default, -1
	for _, pr := range it.Prices {
		for _, cd := range f.Codes {
			if cd.System == pr.System && codePrefix(cd.Code, pr.Prefix) && len(pr.Prefix) > bestLen {
				best, bestLen = pr.Amount, len(pr.Prefix)
			}
		}
	}
	return best
}
