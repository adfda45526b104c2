package pathway

import (
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/mappings/vocab"
)

// ParseRule reads one rule (a JSON object, see the package documentation).
// The error, a *DataError, lists every unknown field, wrong type and bad
// value with its JSON path ($.window.end.days).
func ParseRule(data []byte) (Rule, error) {
	v, err := parseJSON(data)
	if err != nil {
		return Rule{}, err
	}
	var is issues
	r := ruleFrom("$", v, &is)
	return r, is.err()
}

// ParseRules reads a rules file: a JSON array of rules with distinct ids.
// Paths in the error start with the rule's position ($[2].window).
func ParseRules(data []byte) ([]Rule, error) {
	v, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	l, ok := v.([]any)
	if !ok {
		return nil, &DataError{Issues: []Issue{{Path: "$", Message: "must be an array of rules"}}}
	}
	var is issues
	rules := make([]Rule, 0, len(l))
	seen := map[string]int{}
	for i, e := range l {
		p := "$[" + strconv.Itoa(i) + "]"
		r := ruleFrom(p, e, &is)
		if j, dup := seen[r.ID]; dup && r.ID != "" {
			is.add(p+".id", "duplicate id %q (also $[%d])", r.ID, j)
		}
		seen[r.ID] = i
		rules = append(rules, r)
	}
	if err := is.err(); err != nil {
		return nil, err
	}
	return rules, nil
}

// ruleFrom decodes and validates one rule.
func ruleFrom(path string, v any, is *issues) Rule {
	var r Rule
	var dec issues
	decodeStrict(path, v, reflect.ValueOf(&r).Elem(), &dec)
	var val issues
	if _, isObj := v.(map[string]any); isObj {
		validateRule(path, &r, &val)
	}
	*is = append(*is, dec...)
	*is = append(*is, dropUnder(val, dec)...)
	return r
}

// Messages of checks over a whole window, which a bad bound makes moot.
const (
	msgWindowOrder = "start is after end"
	msgWindowEmpty = "the window is empty (equal bounds, one exclusive)"
)

// dropUnder removes the validation issues at or under a path that already
// has a decoding issue, and the window checks of a window with a bad
// bound (one message per mistake).
func dropUnder(val, dec issues) issues {
	var out issues
	for _, v := range val {
		moot := false
		for _, d := range dec {
			if under(v.Path, d.Path) || (v.Message == msgWindowOrder || v.Message == msgWindowEmpty) && under(d.Path, v.Path) {
				moot = true
				break
			}
		}
		if !moot {
			out = append(out, v)
		}
	}
	return out
}

// under reports whether path p is at or under path q.
func under(p, q string) bool {
	return p == q || strings.HasPrefix(p, q+".") || strings.HasPrefix(p, q+"[")
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ctx says what a criteria may use where it stands.
type ctx struct {
	indexRule bool // sameCodeAsIndex and addDaysSupply are possible
}

func validateRule(p string, r *Rule, is *issues) {
	switch {
	case r.ID == "":
		is.add(p+".id", "required")
	case !idPattern.MatchString(r.ID):
		is.add(p+".id", "must be 1–64 letters, digits, '.', '_' or '-'")
	}
	if r.Code == "" {
		is.add(p+".code", "required")
	} else if _, ok := vocab.Lookup(vocab.RupturePathwaySystem, r.Code); !ok {
		is.add(p+".code", "%q is not a code of %s", r.Code, vocab.RupturePathwaySystem)
	}
	if r.Pathway != "" && !slices.Contains(Types(), r.Pathway) {
		is.add(p+".pathway", "%q is not a pathway type (%s)", r.Pathway, strings.Join(Types(), ", "))
	}
	required(is, p+".version", r.Version)
	required(is, p+".title", r.Title)
	oneOf(is, p+".kind", r.Kind, KindAbsence, KindOccurrence)
	oneOf(is, p+".severity", r.Severity, "high", "moderate", "low")
	c := ctx{indexRule: r.Index != nil}
	switch {
	case r.Index != nil && r.AsOf != nil:
		is.add(p, "index and asOf are exclusive")
	case r.Index == nil && r.AsOf == nil:
		is.add(p, "one of index or asOf is required")
	}
	if r.Index != nil {
		validateCriteria(p+".index.match", &r.Index.Match, ctx{}, is)
		if r.Index.Date != "" {
			oneOf(is, p+".index.date", r.Index.Date, "start", "end")
		}
	}
	if r.AsOf != nil {
		for i := range r.AsOf.AnyOf {
			validateEvent(p+".asOf.anyOf"+idx(i), &r.AsOf.AnyOf[i], ctx{}, is)
		}
	}
	if r.Population != nil {
		validatePopulation(p+".population", r.Population, is)
	}
	validateWindow(p+".window", &r.Window, c, is)
	switch r.Kind {
	case KindAbsence:
		if len(r.Expected) == 0 {
			is.add(p+".expected", "required for an absence rule")
		}
		if len(r.Unwanted) > 0 {
			is.add(p+".unwanted", "only for an occurrence rule")
		}
	case KindOccurrence:
		if len(r.Unwanted) == 0 {
			is.add(p+".unwanted", "required for an occurrence rule")
		}
		if len(r.Expected) > 0 {
			is.add(p+".expected", "only for an absence rule")
		}
	}
	for i := range r.Expected {
		validateEvent(p+".expected"+idx(i), &r.Expected[i], c, is)
	}
	for i := range r.Unwanted {
		validateEvent(p+".unwanted"+idx(i), &r.Unwanted[i], c, is)
	}
	for i := range r.Censor {
		validateCensor(p+".censor"+idx(i), &r.Censor[i], c, is)
	}
	if r.Cost != nil {
		validateCost(p+".cost", r, is)
	}
}

func validatePopulation(p string, pop *Population, is *issues) {
	if pop.MinAge != nil && (*pop.MinAge < 0 || *pop.MinAge > 150) {
		is.add(p+".minAge", "must be between 0 and 150")
	}
	if pop.MaxAge != nil && (*pop.MaxAge < 0 || *pop.MaxAge > 150) {
		is.add(p+".maxAge", "must be between 0 and 150")
	}
	if pop.MinAge != nil && pop.MaxAge != nil && *pop.MinAge > *pop.MaxAge {
		is.add(p, "minAge is above maxAge")
	}
	for i, s := range pop.Sex {
		oneOf(is, p+".sex"+idx(i), s, "male", "female", "other", "unknown")
	}
	for i := range pop.Exclude {
		validateEvent(p+".exclude"+idx(i), &pop.Exclude[i], ctx{}, is)
	}
}

func validateEvent(p string, e *Event, c ctx, is *issues) {
	validateCriteria(p+".match", &e.Match, c, is)
	if e.Window != nil {
		validateWindow(p+".window", e.Window, c, is)
	}
	if e.MinCount < 0 {
		is.add(p+".minCount", "must not be negative")
	}
}

func validateCensor(p string, cn *Censor, c ctx, is *issues) {
	required(is, p+".reason", cn.Reason)
	switch {
	case cn.Death && cn.Match != nil:
		is.add(p, "death and match are exclusive")
	case !cn.Death && cn.Match == nil:
		is.add(p, "one of death or match is required")
	}
	if cn.Match != nil {
		validateCriteria(p+".match", cn.Match, c, is)
	}
	if cn.Window != nil {
		validateWindow(p+".window", cn.Window, c, is)
	}
}

func validateCost(p string, r *Rule, is *issues) {
	cost := r.Cost
	required(is, p+".perspective", cost.Perspective)
	if len(cost.Currency) != 3 || strings.ToUpper(cost.Currency) != cost.Currency || strings.ContainsFunc(cost.Currency, func(r rune) bool { return r < 'A' || r > 'Z' }) {
		is.add(p+".currency", "must be an ISO 4217 code (3 capital letters)")
	}
	oneOf(is, p+".basis", cost.Basis, "downstream", "unwanted")
	switch cost.Basis {
	case "downstream":
		if cost.HorizonDays <= 0 || cost.HorizonDays > 3660 {
			is.add(p+".horizonDays", "must be between 1 and 3660 for a downstream cost")
		}
		if r.Index == nil {
			is.add(p+".basis", "a downstream cost needs an index rule")
		}
	case "unwanted":
		if r.Kind != KindOccurrence {
			is.add(p+".basis", "unwanted is for an occurrence rule")
		}
		if cost.HorizonDays != 0 {
			is.add(p+".horizonDays", "only for a downstream cost")
		}
	}
	if len(cost.Table) == 0 {
		is.add(p+".table", "required")
	}
	for i := range cost.Table {
		it := &cost.Table[i]
		ip := p + ".table" + idx(i)
		required(is, ip+".item", it.Item)
		validateCriteria(ip+".match", &it.Match, ctx{}, is)
		if it.Default < 0 {
			is.add(ip+".default", "must not be negative")
		}
		for j, pr := range it.Prices {
			pp := ip + ".prices" + idx(j)
			required(is, pp+".system", pr.System)
			required(is, pp+".prefix", pr.Prefix)
			if pr.Amount < 0 {
				is.add(pp+".amount", "must not be negative")
			}
		}
	}
}

var diagnosisRoles = []string{"DP", "DR", "DAS", "DAD"}

func validateCriteria(p string, cr *Criteria, c ctx, is *issues) {
	if len(cr.ResourceTypes) == 0 {
		is.add(p+".resourceTypes", "required")
	}
	for i, t := range cr.ResourceTypes {
		if !factTypes[t] {
			is.add(p+".resourceTypes"+idx(i), "%q is not a resource type that becomes a fact", t)
		}
	}
	validateCodeSets(p+".codes", cr.Codes, is)
	validateCodeSets(p+".excludeCodes", cr.ExcludeCodes, is)
	validateCodeSets(p+".serviceType", cr.ServiceType, is)
	validateCodeSets(p+".admitSource", cr.AdmitSource, is)
	validateCodeSets(p+".dischargeDisposition", cr.DischargeDisposition, is)
	validateCodeSets(p+".excludeDischargeDisposition", cr.ExcludeDischargeDisposition, is)
	validateCodeSets(p+".performerSpecialty", cr.PerformerSpecialty, is)
	validateCodeSets(p+".interpretation", cr.Interpretation, is)
	encounterOnly := len(cr.Class) > 0 || len(cr.ServiceType) > 0 || cr.Diagnosis != nil ||
		len(cr.AdmitSource) > 0 || len(cr.DischargeDisposition) > 0 || len(cr.ExcludeDischargeDisposition) > 0
	if encounterOnly && len(cr.ResourceTypes) > 0 && !slices.Contains(cr.ResourceTypes, "Encounter") {
		is.add(p+".resourceTypes", "class, serviceType, diagnosis, admitSource and dischargeDisposition need Encounter")
	}
	for i, s := range cr.Class {
		required(is, p+".class"+idx(i), s)
	}
	for i, s := range cr.DiagnosisRole {
		oneOf(is, p+".diagnosisRole"+idx(i), s, diagnosisRoles...)
	}
	if len(cr.DiagnosisRole) > 0 && len(cr.ResourceTypes) > 0 && !slices.Contains(cr.ResourceTypes, "Condition") {
		is.add(p+".resourceTypes", "diagnosisRole needs Condition")
	}
	if d := cr.Diagnosis; d != nil {
		if len(d.Role) == 0 && len(d.Codes) == 0 {
			is.add(p+".diagnosis", "one of role or codes is required")
		}
		for i, s := range d.Role {
			oneOf(is, p+".diagnosis.role"+idx(i), s, diagnosisRoles...)
		}
		validateCodeSets(p+".diagnosis.codes", d.Codes, is)
	}
	for i, s := range cr.Stage {
		if _, ok := vocab.StageOf(s); !ok {
			is.add(p+".stage"+idx(i), "%q is not a code of %s", s, vocab.StageSystem)
		}
	}
	for i, s := range cr.Status {
		required(is, p+".status"+idx(i), s)
	}
	for i, s := range cr.SourceActor {
		required(is, p+".sourceActor"+idx(i), s)
	}
	if cr.SameCodeAsIndex != nil {
		if !c.indexRule {
			is.add(p+".sameCodeAsIndex", "only in the expected, unwanted or censor events of an index rule")
		}
		if cr.SameCodeAsIndex.PrefixLength < 0 {
			is.add(p+".sameCodeAsIndex.prefixLength", "must not be negative")
		}
	}
}

func validateCodeSets(p string, sets []CodeSet, is *issues) {
	for i, s := range sets {
		sp := p + idx(i)
		required(is, sp+".system", s.System)
		if len(s.Codes) == 0 && len(s.Prefixes) == 0 {
			is.add(sp, "one of codes or prefixes is required")
		}
		for j, c := range s.Codes {
			if normCode(c) == "" {
				is.add(sp+".codes"+idx(j), "must not be empty")
			}
		}
		for j, c := range s.Prefixes {
			if normCode(c) == "" {
				is.add(sp+".prefixes"+idx(j), "must not be empty")
			}
		}
	}
}

// windowRef is the date bounds are compared at (mid-month, so that month
// offsets do not overflow).
var windowRef = time.Date(2001, 1, 15, 0, 0, 0, 0, time.UTC)

func validateWindow(p string, w *Window, c ctx, is *issues) {
	for _, b := range []struct {
		name string
		b    *Bound
	}{{"start", &w.Start}, {"end", &w.End}} {
		bp := p + "." + b.name
		if b.b.Inclusive == nil {
			is.add(bp+".inclusive", "required")
		}
		if b.b.Years < -100 || b.b.Years > 100 {
			is.add(bp+".years", "must be between -100 and 100")
		}
		if b.b.Months < -1200 || b.b.Months > 1200 {
			is.add(bp+".months", "must be between -1200 and 1200")
		}
		if b.b.Days < -36600 || b.b.Days > 36600 {
			is.add(bp+".days", "must be between -36600 and 36600")
		}
		if b.b.AddDaysSupply && !c.indexRule {
			is.add(bp+".addDaysSupply", "only in the windows of an index rule")
		}
	}
	if w.Start.Inclusive == nil || w.End.Inclusive == nil {
		return
	}
	per := w.resolve(windowRef, 0)
	switch cmp := per.Start.Compare(per.End); {
	case cmp > 0:
		is.add(p, msgWindowOrder)
	case cmp == 0 && !(per.StartInclusive && per.EndInclusive):
		is.add(p, msgWindowEmpty)
	}
}

func required(is *issues, p, v string) {
	if strings.TrimSpace(v) == "" {
		is.add(p, "required")
	}
}

func oneOf(is *issues, p, v string, allowed ...string) {
	if v == "" {
		is.add(p, "required (one of %s)", strings.Join(allowed, ", "))
		return
	}
	if !slices.Contains(allowed, v) {
		is.add(p, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

func idx(i int) string { return "[" + strconv.Itoa(i) + "]" }
