package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/measure"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/pathway"
	"github.com/parcours-sante/parcours/server/store"
)

// Measures: GET|POST /fhir/Measure/{id}/$evaluate-measure?periodStart=&
// periodEnd=[&subject=Organization/{id}] answers a summary MeasureReport
// (server/measure: stratified, every cell under k suppressed with
// complementary suppression). Rupture Measures (rupture-<rule>) count the
// stored rule's findings whose index date is in the period; the Measure
// liability-claims is the claims feedback to one insured hospital. The
// policy decides on the Measure's topics; a filter obligation (a hospital
// asking for its own establishment) restricts the rows to the caller's
// organisation, and a subject outside it is refused.

// liabilityMeasureID is the claims feedback Measure.
const liabilityMeasureID = "liability-claims"

// liabilityStrata are its stratifiers: one per dimension, plus the crossing
// service × category × stage × never event the issue asks for.
var liabilityStrata = []string{"service", "category", "stage", "never-event", "severity", "service×category×stage×never-event"}

// liabilityMeasure is the Measure of the claims feedback.
func liabilityMeasure() map[string]any {
	var strat []any
	for _, s := range liabilityStrata {
		strat = append(strat, map[string]any{"code": map[string]any{"text": s}})
	}
	pop := func(code, text string) map[string]any {
		return map[string]any{
			"code":        map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/measure-population", "code": code}}},
			"description": text,
		}
	}
	return map[string]any{
		"resourceType": "Measure",
		"id":           liabilityMeasureID,
		"meta":         map[string]any{"source": sourcePrefix + "hub:"},
		"url":          vocab.Base + "/Measure/" + liabilityMeasureID,
		"version":      vocab.Version,
		"name":         "LiabilityClaimsFeedback",
		"title":        "Sinistralité : retour d'expérience à l'établissement assuré",
		"status":       "active",
		"description":  "Claims of one insured establishment (subject=Organization/<id>) declared in the period, by service, category, pathway stage, never event and severity, with indemnity totals (reserved + paid). Cells under 10 are suppressed. For the hospital itself and the liability risk manager only.",
		"topic":        []any{map[string]any{"coding": []any{vocab.Coding{System: vocab.MeasureTopicSystem, Code: "liability"}.Map()}}},
		"scoring":      map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/measure-scoring", "code": "proportion"}}},
		"group": []any{map[string]any{
			"population": []any{
				pop("initial-population", "claims of the establishment with an event in the period"),
				pop("denominator", "the same claims"),
				pop("numerator", "never events"),
			},
			"stratifier": strat,
		}},
	}
}

// storeMeasures stores the liability Measure when absent.
func (s *Server) storeMeasures(ctx context.Context) error {
	return s.db.Update(ctx, func(tx *store.Tx) error {
		if tx.Exists("Measure", liabilityMeasureID) {
			return nil
		}
		_, err := tx.PutBuiltin("Measure", liabilityMeasureID, liabilityMeasure())
		return err
	})
}

// evaluateMeasure answers $evaluate-measure.
func (s *Server) evaluateMeasure(c echo.Context) error {
	id := c.Param("id")
	if err := checkID(id); err != nil {
		return err
	}
	params, err := s.operationInput(c)
	if err != nil {
		return err
	}
	start, end, err := measurePeriod(params)
	if err != nil {
		return err
	}
	if rt := params.Get("reportType"); rt != "" && rt != "summary" {
		return outcome.New(http.StatusBadRequest, outcome.CodeNotSupported, "reportType", "only reportType=summary is released: per-subject reports are not")
	}
	subject := params.Get("subject")
	if subject != "" && !strings.HasPrefix(subject, "Organization/") {
		return outcome.New(http.StatusBadRequest, outcome.CodeNotSupported, "subject", "subject must be an Organization (an establishment): per-patient reports are not released")
	}
	cl := callerOf(c)
	ctx := c.Request().Context()
	// The facts' count, then every write that counted committed: rows
	// memoised at this count hold for the snapshot read below.
	facts := s.dirty.facts.Load()
	if err := s.db.Barrier(ctx); err != nil {
		return err
	}
	var report map[string]any
	err = s.view(ctx, func(tx *store.Tx) error {
		mr, err := tx.Get("Measure", id)
		m := map[string]any(nil)
		if err == nil && !mr.Deleted() {
			m = decodeStored(mr.JSON)
		}
		q := question{interaction: "operation", operation: "$evaluate-measure", typ: "Measure", aggregate: true, measureTopics: topicsOf(m)}
		d, derr := s.decide(ctx, cl, tx, q)
		if derr != nil {
			return derr
		}
		if m == nil {
			return outcome.NotFound("Measure/%s not found", id)
		}
		k := vocab.MinAggregationK
		if o, ok := d.Obligation("aggregate"); ok && o.K > k {
			k = o.K
		}
		// The establishment the rows are restricted to.
		est := ""
		if subject != "" {
			if est = finessOf(tx, strings.TrimPrefix(subject, "Organization/")); est == "" {
				return outcome.New(http.StatusNotFound, outcome.CodeNotFound, "subject", "%s is not an establishment known by its FINESS", subject)
			}
		}
		if _, filter := d.Obligation("filter"); filter && cl != nil {
			own := ""
			if sys, val, ok := strings.Cut(cl.claims.Org, "|"); ok && sys == vocab.SidFINESS {
				own = val
			}
			switch {
			case own == "":
				return outcome.New(http.StatusForbidden, outcome.CodeForbidden, "", "access denied by policy: this report is limited to the caller's own establishment, and the caller has none")
			case est != "" && est != own:
				return outcome.New(http.StatusForbidden, outcome.CodeForbidden, "subject", "access denied by policy: this report is limited to the caller's own establishment")
			}
			est = own
		}
		p := measure.Params{Measure: vocab.Base + "/Measure/" + id, PeriodStart: start, PeriodEnd: end, K: k}
		var rows []measure.Row
		switch {
		case id == liabilityMeasureID:
			if est == "" {
				return outcome.New(http.StatusBadRequest, outcome.CodeRequired, "subject", "the claims feedback is for one establishment: give subject=Organization/<id>")
			}
			var indemnity float64
			rows, indemnity = claimRows(tx, est, start, end)
			p.Stratifiers = liabilityStrata
			defer func() {
				if report != nil {
					addIndemnity(report, rows, indemnity, k)
				}
			}()
		case strings.HasPrefix(id, "rupture-"):
			var rule *storedRule
			for _, r := range s.currentRules(tx) {
				if "rupture-"+r.rule.ID == id {
					rule = &r
					break
				}
			}
			if rule == nil {
				return outcome.New(http.StatusUnprocessableEntity, outcome.CodeProcessing, "", "Measure/%s has no stored rule (Library/%s)", id, id)
			}
			key := fmt.Sprintf("%s|%d|%s|%s|%s", rule.library, rule.at, est, start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
			var persp string
			rows, persp = s.measureRows.get(facts, key, func() ([]measure.Row, string) {
				return s.ruptureRows(tx, rule.rule, est, start, end)
			})
			p.Stratifiers = measureStrata
			p.CostPerspective = persp
		default:
			return outcome.New(http.StatusUnprocessableEntity, outcome.CodeNotSupported, "", "Measure/%s is not computed by the hub", id)
		}
		report, err = measure.Evaluate(rows, p)
		if err != nil {
			return err
		}
		if est != "" {
			report["reporter"] = map[string]any{"identifier": map[string]any{"system": vocab.SidFINESS, "value": est}}
		}
		return nil
	})
	if err != nil {
		return err
	}
	report["id"] = store.NewID()
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(report))
}

// measurePeriod reads periodStart and periodEnd (dates, both required).
func measurePeriod(params url.Values) (time.Time, time.Time, error) {
	var out [2]time.Time
	for i, k := range []string{"periodStart", "periodEnd"} {
		v := params.Get(k)
		if v == "" {
			return out[0], out[1], outcome.New(http.StatusBadRequest, outcome.CodeRequired, k, "%s is required (YYYY-MM-DD)", k)
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return out[0], out[1], outcome.Invalid(k, "%s must be a date (YYYY-MM-DD)", k)
		}
		out[i] = t
	}
	if out[1].Before(out[0]) {
		return out[0], out[1], outcome.Invalid("periodEnd", "periodEnd is before periodStart")
	}
	return out[0], out[1], nil
}

// topicsOf lists a Measure's topic codes (measure-topic).
func topicsOf(m map[string]any) []string {
	out := []string{}
	topics, _ := m["topic"].([]any)
	for _, t := range topics {
		cc, _ := t.(map[string]any)
		codings, _ := cc["coding"].([]any)
		for _, x := range codings {
			cd, _ := x.(map[string]any)
			if cd["system"] == vocab.MeasureTopicSystem {
				if code, _ := cd["code"].(string); code != "" {
					out = append(out, code)
				}
			}
		}
	}
	return out
}

// finessOf is the FINESS of an Organization, "" when it has none.
func finessOf(tx *store.Tx, id string) string {
	r, err := tx.Get("Organization", id)
	if err != nil || r.Deleted() {
		return ""
	}
	ids, _ := decodeStored(r.JSON)["identifier"].([]any)
	for _, x := range ids {
		m, _ := x.(map[string]any)
		if m["system"] == vocab.SidFINESS {
			v, _ := m["value"].(string)
			return v
		}
	}
	return ""
}

// rowsMemo memoises the rows of rupture measures (ruptureRows: every
// patient's record read and its facts built, the cost of an evaluation)
// while the count of fact writes (dirtySet.facts) stays: rows computed at
// one count are served to the evaluations at the same count, whose
// snapshot (read after a Barrier) holds every write counted. The policy
// decision, the obligations and the suppression run per request. It
// keeps the rows of a few keys (rule version, establishment, period).
type rowsMemo struct {
	mu      sync.Mutex
	facts   uint64
	entries map[string]memoRows
}

type memoRows struct {
	rows  []measure.Row // shared, read-only
	persp string
}

// maxMemoRows bounds the keys kept (emptied when full).
const maxMemoRows = 64

// get returns the rows of key at facts, computing them if needed.
func (m *rowsMemo) get(facts uint64, key string, compute func() ([]measure.Row, string)) ([]measure.Row, string) {
	m.mu.Lock()
	if m.facts == facts {
		if e, ok := m.entries[key]; ok {
			m.mu.Unlock()
			return e.rows, e.persp
		}
	}
	m.mu.Unlock()
	rows, persp := compute()
	m.mu.Lock()
	defer m.mu.Unlock()
	if facts < m.facts {
		return rows, persp // computed on an older count than the memo's
	}
	if facts > m.facts || m.entries == nil || len(m.entries) >= maxMemoRows {
		m.facts, m.entries = facts, map[string]memoRows{}
	}
	m.entries[key] = memoRows{rows, persp}
	return rows, persp
}

// rowKey is the opaque, never published, patient key of a row.
func rowKey(patient string) string {
	h := sha256.Sum256([]byte(patient))
	return hex.EncodeToString(h[:8])
}

// ruptureRows evaluates one rule over every patient: one row per finding
// whose index date is in the period and whose window has elapsed, restricted
// to an establishment when est is set. It returns the cost perspective.
func (s *Server) ruptureRows(tx *store.Tx, rule pathway.Rule, est string, start, end time.Time) ([]measure.Row, string) {
	var rows []measure.Row
	persp := ""
	asOf := end
	for _, pid := range tx.IDs("Patient") {
		rec, ok := loadRecord(tx, pid, factRecord, nil)
		if !ok {
			continue
		}
		pat := pathway.Facts(rec.decoded)
		for _, f := range pathway.Detect([]pathway.Rule{rule}, pat, asOf) {
			if !pathway.InPeriod(f, start, end) || f.Status == pathway.StatusPending {
				continue
			}
			if est != "" && f.Establishment != est {
				continue
			}
			row := measure.Row{
				Patient:       rowKey(f.Patient),
				InDenominator: f.Status != pathway.StatusCensored,
				InNumerator:   f.Status == pathway.StatusRupture,
				Excluded:      f.Status == pathway.StatusCensored,
				Strata: map[string]string{
					measure.AttrAgeBand:       measure.AgeBand(pat.BirthDate, f.IndexDate, 10),
					measure.AttrSex:           pat.Gender,
					measure.AttrDepartement:   pat.Department,
					measure.AttrEstablishment: f.Establishment,
				},
			}
			if f.Cost != nil {
				row.Cost = f.Cost.Total
				if persp == "" {
					persp = f.Cost.Perspective
				}
			}
			rows = append(rows, row)
		}
	}
	switch persp {
	case measure.PerspectiveAMO, measure.PerspectiveAMC, measure.PerspectiveEstablishment, "":
	default:
		persp = ""
	}
	return rows, persp
}

// claimRows are the claims (AdverseEvents with a claim identifier) of one
// establishment whose event date is in the period.
func claimRows(tx *store.Tx, est string, start, end time.Time) ([]measure.Row, float64) {
	var rows []measure.Row
	var total float64
	for _, id := range tx.IDs("AdverseEvent") {
		r, err := tx.Get("AdverseEvent", id)
		if err != nil || r.Deleted() {
			continue
		}
		m := decodeStored(r.JSON)
		facts := pathway.Facts([]map[string]any{m})
		if len(facts.Facts) == 0 {
			continue
		}
		f := facts.Facts[0]
		if f.Establishment != est || f.Start.Before(start) || f.Start.After(end) {
			continue
		}
		service := "unknown"
		if cont, _ := m["contained"].([]any); len(cont) > 0 {
			for _, x := range cont {
				c, _ := x.(map[string]any)
				if c["resourceType"] == "Location" {
					if n, _ := c["name"].(string); n != "" {
						service = n
					}
				}
			}
		}
		category := ""
		for _, cc := range asList(m["category"]) {
			if category = firstCode(cc); category != "" {
				break
			}
		}
		never, severity := "false", ""
		var indemnity float64
		exts, _ := m["extension"].([]any)
		for _, x := range exts {
			e, _ := x.(map[string]any)
			switch e["url"] {
			case vocab.ExtensionBase + "never-event":
				if b, _ := e["valueBoolean"].(bool); b {
					never = "true"
				}
			case vocab.ExtensionBase + "harm-severity":
				if v, ok := e["valueInteger"].(float64); ok {
					severity = strconv.Itoa(int(v))
				}
			case vocab.ExtensionBase + "indemnity":
				subs, _ := e["extension"].([]any)
				for _, y := range subs {
					sub, _ := y.(map[string]any)
					if money, _ := sub["valueMoney"].(map[string]any); money != nil {
						if v, ok := money["value"].(float64); ok {
							indemnity += v
						}
					}
				}
			}
		}
		subject, _ := m["subject"].(map[string]any)
		patient, _ := subject["reference"].(string)
		total += indemnity
		rows = append(rows, measure.Row{
			Patient:       rowKey(patient),
			InDenominator: true,
			InNumerator:   never == "true",
			Strata: map[string]string{
				"service":                            service,
				"category":                           category,
				"stage":                              f.Stage,
				"never-event":                        never,
				"severity":                           severity,
				"service×category×stage×never-event": fmt.Sprintf("%s × %s × %s × %s", service, category, f.Stage, never),
			},
		})
	}
	return rows, total
}

// indemnityExtensionURL carries, on the claims feedback's group, the total
// indemnities (reserved + paid) of the establishment's claims.
var indemnityExtensionURL = vocab.ExtensionBase + "indemnity-total"

// addIndemnity publishes the indemnity total on the report's group when
// at least k distinct patients are behind it (brief §4.7: costs only as
// totals over at least 10 patients); otherwise the total is masked.
func addIndemnity(report map[string]any, rows []measure.Row, total float64, k int) {
	groups, _ := report["group"].([]any)
	if len(groups) == 0 {
		return
	}
	g, _ := groups[0].(map[string]any)
	patients := map[string]bool{}
	for _, r := range rows {
		patients[r.Patient] = true
	}
	ext := map[string]any{"url": indemnityExtensionURL}
	if len(patients) >= k {
		ext["valueMoney"] = map[string]any{"value": total, "currency": "EUR"}
	} else {
		ext["extension"] = []any{maskedExtension()}
	}
	exts, _ := g["extension"].([]any)
	g["extension"] = append(exts, ext)
}
