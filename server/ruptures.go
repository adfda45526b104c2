package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/pathway"
	"github.com/parcours-sante/parcours/server/store"
)

// Rupture rules are data (server/pathway): each rule lives in the store as a
// Library (id rupture-<rule id>, its content the rule's JSON with media
// type vocab.RuleContentType) and is aggregated by a Measure of the same
// id. The defaults of server/pathway/ruptures.json are stored at start-up
// when absent, never over an edited version: the hub operator edits a rule
// with PUT Library/rupture-<id> (checked by pathway.ParseRule) and the next
// $detect-ruptures or $evaluate-measure uses it, without a rebuild.

// ruleLibraryID is the Library (and Measure) id of a rule.
func ruleLibraryID(ruleID string) string { return "rupture-" + ruleID }

// storedRule is a rule with the Library version that holds it.
type storedRule struct {
	rule    pathway.Rule
	library string // Library/<id>/_history/<version>
	measure string // Measure/<id>
	at      int64  // the Library version's commit time (ns): with library, names the rule exactly
}

// storeRules stores the default rules' Libraries and Measures that are
// missing.
func (s *Server) storeRules(ctx context.Context) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(pathway.DefaultRulesJSON, &raws); err != nil {
		return fmt.Errorf("default rupture rules: %w", err)
	}
	rules, err := pathway.DefaultRules()
	if err != nil {
		return fmt.Errorf("default rupture rules: %w", err)
	}
	return s.db.Update(ctx, func(tx *store.Tx) error {
		for i, r := range rules {
			id := ruleLibraryID(r.ID)
			if !tx.Exists("Library", id) {
				if _, err := tx.PutBuiltin("Library", id, ruleLibrary(r, raws[i])); err != nil {
					return err
				}
			}
			if !tx.Exists("Measure", id) {
				if _, err := tx.PutBuiltin("Measure", id, ruleMeasure(r)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ruleDefinition is what the Library and the Measure of a rule share.
func ruleDefinition(typ string, r pathway.Rule, description string) map[string]any {
	id := ruleLibraryID(r.ID)
	return map[string]any{
		"resourceType": typ,
		"id":           id,
		"meta":         map[string]any{"source": sourcePrefix + "hub:"},
		"url":          vocab.Base + "/" + typ + "/" + id,
		"version":      r.Version,
		"name":         "Rupture" + strings.ReplaceAll(r.ID, "-", ""),
		"title":        r.Title,
		"status":       "active",
		"description":  description,
	}
}

// ruleLibrary is the Library holding one rule.
func ruleLibrary(r pathway.Rule, raw []byte) map[string]any {
	lib := ruleDefinition("Library", r, "Rupture rule "+r.ID+" ("+r.Code+") as data: the content is the rule's JSON (server/pathway). Edit it with PUT; the next detection uses it.")
	lib["type"] = map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/library-type", "code": "logic-library"}}}
	lib["content"] = []any{map[string]any{"contentType": vocab.RuleContentType, "data": base64.StdEncoding.EncodeToString(raw)}}
	return lib
}

// measureTopics are the topics of the default Measures, by rupture code
// (the policy opens topics per purpose).
var measureTopics = map[string][]string{
	"missed-screening":          {"prevention"},
	"missed-vaccination":        {"prevention"},
	"treatment-discontinuation": {"care-quality", "prevention"},
}

// ruleMeasure is the Measure aggregating one rule.
func ruleMeasure(r pathway.Rule) map[string]any {
	id := ruleLibraryID(r.ID)
	topics := measureTopics[r.Code]
	if topics == nil {
		topics = []string{"care-quality"}
	}
	var topicList []any
	for _, t := range topics {
		topicList = append(topicList, map[string]any{"coding": []any{vocab.Coding{System: vocab.MeasureTopicSystem, Code: t}.Map()}})
	}
	pop := func(code, text string) map[string]any {
		return map[string]any{
			"code":        map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/measure-population", "code": code}}},
			"description": text,
			"criteria":    map[string]any{"language": vocab.RuleContentType, "expression": r.ID + "." + code},
		}
	}
	var strat []any
	for _, s := range measureStrata {
		strat = append(strat, map[string]any{"code": map[string]any{"text": s}, "description": "stratified by " + s})
	}
	m := ruleDefinition("Measure", r, "Rupture indicator "+r.ID+" ("+r.Code+"): denominator = eligible index events, numerator = ruptures, exclusions = censored. Cells under 10 are suppressed.")
	for k, v := range map[string]any{
		"topic":   topicList,
		"library": []any{vocab.Base + "/Library/" + id},
		"scoring": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/measure-scoring", "code": "proportion"}}},
		"improvementNotation": map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation", "code": "decrease"}}},
		"group": []any{map[string]any{
			"code": map[string]any{"coding": []any{vocab.Coding{System: vocab.RupturePathwaySystem, Code: r.Code}.Map()}},
			"population": []any{
				pop("initial-population", "index events of the rule in the period"),
				pop("denominator", "index events whose window has elapsed"),
				pop("denominator-exclusion", "censored index events (death, readmission, transfer…)"),
				pop("numerator", "ruptures"),
			},
			"stratifier": strat,
		}},
	} {
		m[k] = v
	}
	return m
}

// measureStrata are the stratifiers of the rupture Measures.
var measureStrata = []string{"age-band", "sex", "departement", "establishment"}

// currentRules reads the rules from their stored Libraries (ordered by id).
// A Library whose content no longer parses is skipped and logged: it cannot
// have been stored through the API (checkRuleLibrary refuses it).
func (s *Server) currentRules(tx *store.Tx) []storedRule {
	var out []storedRule
	for _, id := range tx.IDs("Library") {
		if !strings.HasPrefix(id, "rupture-") {
			continue
		}
		r, err := tx.Get("Library", id)
		if err != nil || r.Deleted() {
			continue
		}
		raw, ok := ruleContent(decodeStored(r.JSON))
		if !ok {
			continue
		}
		rule, err := pathway.ParseRule(raw)
		if err != nil {
			s.log.Error("stored rupture rule does not parse: skipped", "library", id)
			continue
		}
		out = append(out, storedRule{rule: rule, library: "Library/" + id + "/_history/" + strconv.FormatUint(r.Version, 10), measure: "Measure/" + id, at: r.LastUpdated.UnixNano()})
	}
	return out
}

// ruleContent is the rule JSON a Library carries, if any.
func ruleContent(lib map[string]any) ([]byte, bool) {
	contents, _ := lib["content"].([]any)
	for _, c := range contents {
		m, _ := c.(map[string]any)
		if m["contentType"] != vocab.RuleContentType {
			continue
		}
		data, _ := m["data"].(string)
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, false
		}
		return raw, true
	}
	return nil, false
}

// checkRuleLibrary refuses a Library carrying a rule that does not parse:
// 422 with every problem and its JSON path.
func checkRuleLibrary(res map[string]any) error {
	contents, _ := res["content"].([]any)
	for i, c := range contents {
		m, _ := c.(map[string]any)
		if m["contentType"] != vocab.RuleContentType {
			continue
		}
		expr := fmt.Sprintf("Library.content[%d].data", i)
		data, _ := m["data"].(string)
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return outcome.New(http.StatusUnprocessableEntity, outcome.CodeInvalid, expr, "the rule is not valid base64")
		}
		if _, err := pathway.ParseRule(raw); err != nil {
			var issues []outcome.Issue
			if de, ok := err.(*pathway.DataError); ok {
				for _, is := range de.Issues {
					issues = append(issues, outcome.Issue{Severity: outcome.SeverityError, Code: outcome.CodeInvalid, Expression: []string{expr},
						Diagnostics: "rupture rule " + is.Path + ": " + is.Message})
				}
			}
			if len(issues) == 0 {
				issues = append(issues, outcome.Issue{Severity: outcome.SeverityError, Code: outcome.CodeInvalid, Expression: []string{expr}, Diagnostics: "rupture rule: " + err.Error()})
			}
			return &outcome.Error{Status: http.StatusUnprocessableEntity, Issues: issues}
		}
	}
	return nil
}

// detectRuptures answers POST /fhir/$detect-ruptures[?patient=Patient/x]
// [&asOf=YYYY-MM-DD]: it runs the stored rules over one patient (a care
// team member, for rupture-detection) or every patient (hub operations,
// counts only), and stores one DetectedIssue per rupture, idempotently (the
// id derives from the rule and the index event), each new version with a
// Provenance naming the rule's Library version and the ConceptMap
// versions. A rupture whose expected event arrived since is cancelled
// with a mitigation.
func (s *Server) detectRuptures(c echo.Context) error {
	cl := callerOf(c)
	ctx := c.Request().Context()
	asOf := time.Now().UTC()
	if v := c.QueryParam("asOf"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return outcome.Invalid("asOf", "asOf must be a date (YYYY-MM-DD)")
		}
		if t.After(asOf) {
			// A window not yet elapsed would be stored as a rupture.
			return outcome.Invalid("asOf", "asOf must not be after today (%s)", asOf.Format(time.DateOnly))
		}
		asOf = t
	}
	patientID := ""
	if v := c.QueryParam("patient"); v != "" {
		patientID = strings.TrimPrefix(v, "Patient/")
		if err := checkID(patientID); err != nil {
			return outcome.Invalid("patient", "patient must be Patient/<id>")
		}
	}
	var patients []string
	var rules []storedRule
	var maps []string
	omit := false
	err := s.view(ctx, func(tx *store.Tx) error {
		q := question{interaction: "operation", operation: "$detect-ruptures"}
		if patientID != "" {
			p, err := tx.Get("Patient", patientID)
			if err != nil || p.Deleted() {
				if _, err := s.decide(ctx, cl, tx, q); err != nil {
					return err
				}
				return outcome.NotFound("Patient/%s not found", patientID)
			}
			q.typ = "Patient"
			q.target = &target{typ: "Patient", id: patientID, access: storedAccess(tx, "Patient", patientID)}
			patients = []string{patientID}
		}
		d, err := s.decide(ctx, cl, tx, q)
		if err != nil {
			return err
		}
		_, omit = d.Obligation("omit-content")
		if patientID == "" {
			patients = tx.IDs("Patient")
		}
		rules = s.currentRules(tx)
		maps = stageMapVersions(tx)
		return nil
	})
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		return outcome.New(http.StatusUnprocessableEntity, outcome.CodeProcessing, "", "no rupture rule is stored")
	}
	sum, err := s.runDetection(ctx, patients, rules, maps, asOf)
	if err != nil {
		return err
	}
	if patientID == "" || omit {
		return writeJSON(c, http.StatusOK, fhirjson.Marshal(outcome.Resource([]outcome.Issue{{
			Severity: outcome.SeverityInformation, Code: outcome.CodeInformational,
			Diagnostics: fmt.Sprintf("%d patients, %d rules, evaluated at %s: %d ruptures (%d new or changed DetectedIssues, %d cancelled, %d withdrawn), %d met, %d censored, %d pending",
				len(patients), len(rules), asOf.Format(time.DateOnly), sum.ruptures, sum.written, sum.cancelled, sum.withdrawn, sum.met, sum.censored, sum.pending),
		}})))
	}
	// One patient, for the care team: the patient's current DetectedIssues.
	return s.runSearch(c, searchSpec{types: []string{"DetectedIssue"}, params: map[string][]string{"patient": {"Patient/" + patientID}, "_sort": {"identified"}},
		path: "/DetectedIssue", interaction: "search-type"})
}

// detection counts what one run did.
type detection struct {
	ruptures, met, censored, pending, written, cancelled, withdrawn int
}

// runDetection evaluates rules over patients and writes the DetectedIssues
// (and their Provenances) that are new or changed, in batches of patients.
func (s *Server) runDetection(ctx context.Context, patients []string, rules []storedRule, maps []string, asOf time.Time) (detection, error) {
	var sum detection
	plain := make([]pathway.Rule, len(rules))
	byID := map[string]storedRule{}
	for i, r := range rules {
		plain[i] = r.rule
		byID[r.rule.ID] = r
	}
	const batch = 200
	for lo := 0; lo < len(patients); lo += batch {
		ids := patients[lo:min(lo+batch, len(patients))]
		type plan struct {
			id       string
			res      map[string]any
			finding  pathway.Finding
			activity string
		}
		var plans []plan
		err := s.view(ctx, func(tx *store.Tx) error {
			for _, pid := range ids {
				var pat pathway.Patient
				var episodes []pathway.Episode
				var findings []pathway.Finding
				rec, present := loadRecord(tx, pid, factRecord, nil) // absent: a deleted patient, its ruptures withdrawn
				if present {
					pat = pathway.Facts(rec.decoded)
					episodes = pathway.Episodes(pat)
					findings = pathway.Detect(plain, pat, asOf)
				}
				found := map[string]bool{}
				for _, f := range findings {
					id := ruptureID(f)
					found[id] = true
					cur, err := tx.Get("DetectedIssue", id)
					exists := err == nil && !cur.Deleted()
					switch f.Status {
					case pathway.StatusRupture:
						sum.ruptures++
						res := detectedIssue(id, f, byID[f.RuleID], episodeOfFinding(pat.Ref, f, byID[f.RuleID].rule, episodes))
						if exists {
							old := decodeStored(cur.JSON)
							res["identifiedDateTime"] = old["identifiedDateTime"] // first detection
							if sameContent(cur.JSON, res) {
								continue
							}
							plans = append(plans, plan{id, res, f, "UPDATE"})
						} else {
							plans = append(plans, plan{id, res, f, "CREATE"})
						}
					case pathway.StatusMet, pathway.StatusCensored:
						if f.Status == pathway.StatusMet {
							sum.met++
						} else {
							sum.censored++
						}
						if !exists {
							continue
						}
						old := decodeStored(cur.JSON)
						if old["status"] == "cancelled" {
							continue
						}
						plans = append(plans, plan{id, cancelled(old, f), f, "UPDATE"})
					default:
						sum.pending++
					}
				}
				// A rupture of a rule run here that rested on facts the
				// record no longer holds is withdrawn: its patient deleted,
				// its index event deleted or rolled back, or changed so that
				// an evaluation that looks at it no longer finds it. One the
				// evaluation did not look at stays as it is: an index event
				// after asOf (an earlier evaluation date), a population
				// rupture of another year, or of this year whose patient
				// has since left the population (turned 75, stopped a
				// treatment): it was a rupture when it was found.
				for _, id := range tx.Lookup("DetectedIssue", paramPatient, "Patient/"+pid) {
					if found[id] || !strings.HasPrefix(id, "rup-") {
						continue
					}
					cur, err := tx.Get("DetectedIssue", id)
					if err != nil || cur.Deleted() {
						continue
					}
					old := decodeStored(cur.JSON)
					ref, _ := old["reference"].(string)
					meta, _ := old["meta"].(map[string]any)
					ruleID, ok := strings.CutPrefix(ref, vocab.Base+"/Measure/rupture-")
					r, run := byID[ruleID]
					if !ok || !run || meta["source"] != sourcePrefix+"hub:" || old["status"] != "final" {
						continue
					}
					if present && !restedOnChangedFacts(r.rule, &pat, old, asOf) {
						continue
					}
					f := pathway.Finding{RuleID: ruleID, Version: r.rule.Version, Patient: "Patient/" + pid}
					plans = append(plans, plan{id, withdrawn(old), f, "UPDATE"})
				}
			}
			return nil
		})
		if err != nil {
			return sum, err
		}
		if len(plans) == 0 {
			continue
		}
		err = s.commit(ctx, func(tx *store.Tx) error {
			for _, p := range plans {
				r, err := tx.Upsert("DetectedIssue", p.id, p.res)
				if err != nil {
					return err
				}
				prov := ruptureProvenance(r, p.finding, byID[p.finding.RuleID], maps, p.activity)
				if _, err := tx.Put("Provenance", store.NewID(), prov); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return sum, err
		}
		for _, p := range plans {
			switch p.res["status"] {
			case "cancelled":
				sum.cancelled++
			case "entered-in-error":
				sum.withdrawn++
			default:
				sum.written++
			}
		}
	}
	return sum, nil
}

// restedOnChangedFacts reports whether a stored rupture that an
// evaluation at asOf of the patient's record does not yield rested on
// facts that changed: an index rule's index event is gone, or is looked at
// (dated on or before asOf) and no longer found. Population ruptures stand
// while their patient does.
func restedOnChangedFacts(r pathway.Rule, pat *pathway.Patient, old map[string]any, asOf time.Time) bool {
	if r.Index == nil {
		return false
	}
	index := ""
	if imp := asList(old["implicated"]); len(imp) > 0 {
		m, _ := imp[0].(map[string]any)
		index, _ = m["reference"].(string)
	}
	exists, considered := r.IndexConsidered(pat, index, asOf)
	return !exists || considered
}

// detectionDate is the day a run finds or settles a rupture: a
// DetectedIssue's identified date and its mitigations' (an evaluation at
// an earlier asOf, a backfill, still happens today).
func detectionDate() string { return time.Now().UTC().Format(time.DateOnly) }

// ruptureID is the stable DetectedIssue id of a finding.
func ruptureID(f pathway.Finding) string {
	h := sha256.Sum256([]byte(f.Patient + "|" + f.Key))
	return "rup-" + hex.EncodeToString(h[:12])
}

// episodeOfFinding is the patient's EpisodeOfCare the index fact belongs
// to, or for a finding without one (a population rule) the episode of the
// rule's pathway type.
func episodeOfFinding(patient string, f pathway.Finding, r pathway.Rule, episodes []pathway.Episode) string {
	for _, ep := range episodes {
		if f.Index != "" && slices.Contains(ep.Members, f.Index) || f.Index == "" && r.Pathway != "" && ep.Type == r.Pathway {
			return "EpisodeOfCare/" + episodeID(patient, ep.Type)
		}
	}
	return ""
}

// detectedIssue is the DetectedIssue of a rupture.
func detectedIssue(id string, f pathway.Finding, r storedRule, episode string) map[string]any {
	res := map[string]any{
		"resourceType":       "DetectedIssue",
		"id":                 id,
		"meta":               map[string]any{"source": sourcePrefix + "hub:"},
		"identifier":         []any{map[string]any{"system": vocab.SidRupture, "value": id}},
		"status":             "final",
		"code":               map[string]any{"coding": []any{vocab.Coding{System: vocab.RupturePathwaySystem, Code: f.Code, Display: displayOf(vocab.RupturePathwaySystem, f.Code)}.Map()}},
		"severity":           detectedSeverity(f.Severity),
		"patient":            map[string]any{"reference": f.Patient},
		"identifiedDateTime": detectionDate(), // when the hub found it (brief §3.2.4), whatever the evaluation date
		"detail":             ruptureDetail(f, r),
		"reference":          vocab.Base + "/" + r.measure,
	}
	if f.Index != "" {
		res["implicated"] = []any{map[string]any{"reference": f.Index}}
	}
	for _, ref := range f.Evidence { // occurrence: the unwanted events
		res["implicated"] = append(asList(res["implicated"]), map[string]any{"reference": ref})
	}
	if episode != "" {
		res["extension"] = []any{map[string]any{"url": vocab.EpisodeExtensionURL, "valueReference": map[string]any{"reference": episode}}}
	}
	return res
}

// detectedSeverity maps a rule severity to DetectedIssue.severity.
func detectedSeverity(s string) string {
	switch s {
	case "high", "moderate", "low":
		return s
	}
	return "moderate"
}

func ruptureDetail(f pathway.Finding, r storedRule) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (rule %s version %s): ", r.rule.Title, f.RuleID, f.Version)
	if f.Index != "" {
		fmt.Fprintf(&b, "index event %s on %s", f.Index, f.IndexDate.Format(time.DateOnly))
	} else {
		fmt.Fprintf(&b, "population at %s", f.IndexDate.Format(time.DateOnly))
	}
	if !f.Window.Start.IsZero() || !f.Window.End.IsZero() {
		fmt.Fprintf(&b, ", window %s to %s", f.Window.Start.Format(time.DateOnly), f.Window.End.Format(time.DateOnly))
	}
	if f.Cost != nil && f.Cost.Total > 0 {
		fmt.Fprintf(&b, "; rupture-associated downstream cost %.2f %s (%s perspective, association not causal)", f.Cost.Total, f.Cost.Currency, f.Cost.Perspective)
	}
	return b.String()
}

// cancelled is a stored DetectedIssue whose expected event arrived late (or
// that a censoring event now excludes).
func cancelled(old map[string]any, f pathway.Finding) map[string]any {
	old["status"] = "cancelled"
	action := "expected event recorded: " + strings.Join(f.Evidence, ", ")
	if f.Status == pathway.StatusCensored {
		action = "censored: " + f.CensorReason
	}
	old["mitigation"] = []any{map[string]any{
		"action": map[string]any{"text": action},
		"date":   detectionDate(),
	}}
	return old
}

// withdrawn is old, a DetectedIssue whose index event the record no longer
// holds (deleted, or rolled back with its upload), marked entered in error.
func withdrawn(old map[string]any) map[string]any {
	old["status"] = "entered-in-error"
	old["mitigation"] = []any{map[string]any{
		"action": map[string]any{"text": "withdrawn: the facts it rested on are no longer in the record"},
		"date":   detectionDate(),
	}}
	return old
}

// ruptureProvenance records where a DetectedIssue version comes from: the
// rule's Library version, the index fact and the stage ConceptMaps.
func ruptureProvenance(di store.Resource, f pathway.Finding, r storedRule, maps []string, activity string) map[string]any {
	entities := []any{map[string]any{"role": "source", "what": map[string]any{"reference": r.library, "display": "rupture rule " + f.RuleID + " version " + f.Version}}}
	if f.Index != "" {
		entities = append(entities, map[string]any{"role": "source", "what": map[string]any{"reference": f.Index}})
	}
	for _, m := range maps {
		entities = append(entities, map[string]any{"role": "source", "what": map[string]any{"reference": m}})
	}
	return map[string]any{
		"resourceType": "Provenance",
		"meta":         map[string]any{"source": sourcePrefix + "hub:"},
		"target":       []any{map[string]any{"reference": "DetectedIssue/" + di.ID + "/_history/" + strconv.FormatUint(di.Version, 10)}},
		"recorded":     store.FormatInstant(time.Now()),
		"activity":     map[string]any{"coding": []any{map[string]any{"system": vocab.SystemDataOperation, "code": activity}}},
		"agent": []any{map[string]any{
			"type": map[string]any{"coding": []any{map[string]any{"system": vocab.SystemProvenanceAgent, "code": "assembler"}}},
			"who":  map[string]any{"display": "Parcours rupture detection ($detect-ruptures)"},
		}},
		"entity": entities,
	}
}

// stageMapVersions lists the stored ConceptMaps whose target is the stage
// CodeSystem, as versioned references.
func stageMapVersions(tx *store.Tx) []string {
	var out []string
	for _, id := range tx.IDs("ConceptMap") {
		r, err := tx.Get("ConceptMap", id)
		if err != nil || r.Deleted() {
			continue
		}
		m := decodeStored(r.JSON)
		if t, _ := m["targetUri"].(string); t != vocab.StageValueSet && t != vocab.StageSystem {
			if !strings.Contains(string(r.JSON), vocab.StageSystem) {
				continue
			}
		}
		out = append(out, "ConceptMap/"+id+"/_history/"+strconv.FormatUint(r.Version, 10))
	}
	return out
}
