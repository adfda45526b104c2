package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/measure"
	"github.com/parcours-sante/parcours/server/pathway"
	"github.com/parcours-sante/parcours/server/search"
	"github.com/parcours-sante/parcours/server/store"
)

// The cast of testdata/native (see its README): a man with a heart-failure
// stay discharged home with no GP visit within 7 days (R1), readmitted
// through the emergency department (R5), diabetic with no HbA1c (R2).
const (
	insHeartFailure = "155037511204521"
	insColorectal   = "262016912345684"
	demoAsOf        = "2026-11-01"
)

// newDemoHub is a secure hub loaded with the four native demo files, its
// episodes computed.
func newDemoHub(t *testing.T) *secureHub {
	t.Helper()
	h := newSecureHub(t)
	for _, d := range demoSources {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "native", d.file))
		if err != nil {
			t.Fatal(err)
		}
		if r := h.upload(d.actor, d.purpose, d.source, d.contentType, b, ""); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", d.source, r.status, r.raw)
		}
	}
	h.s.WaitPathways()
	return h
}

// patientByINS is the id of the Patient with this INS-NIR.
func (h *secureHub) patientByINS(ins string) string {
	h.t.Helper()
	var id string
	h.s.db.View(func(tx *store.Tx) error {
		if ids := tx.Lookup("Patient", "identifier", insSystem+"|"+ins); len(ids) == 1 {
			id = ids[0]
		}
		return nil
	})
	if id == "" {
		h.t.Fatalf("no single Patient with INS %s", ins)
	}
	return id
}

// resourcesOf lists the stored current resources of a type about a patient.
func (h *secureHub) resourcesOf(typ, patient string) []map[string]any {
	var out []map[string]any
	h.s.db.View(func(tx *store.Tx) error {
		for _, id := range tx.Lookup(typ, paramPatient, "Patient/"+patient) {
			if r, err := tx.Get(typ, id); err == nil && !r.Deleted() {
				out = append(out, decodeStored(r.JSON))
			}
		}
		return nil
	})
	return out
}

func codesOf(list []map[string]any, path ...any) []string {
	var out []string
	for _, m := range list {
		out = append(out, str(m, path...))
	}
	slices.Sort(out)
	return out
}

func TestEpisodesFollowTheFacts(t *testing.T) {
	h := newDemoHub(t)
	pid := h.patientByINS(insHeartFailure)
	eps := h.resourcesOf("EpisodeOfCare", pid)
	types := codesOf(eps, "type", 0, "coding", 0, "code")
	for _, want := range []string{"heart-failure", "type-2-diabetes"} {
		if !slices.Contains(types, want) {
			t.Errorf("EpisodeOfCare types %v, want %s among them", types, want)
		}
	}
	for _, ep := range eps {
		if str(ep, "meta", "source") != sourcePrefix+"hub:" || str(ep, "patient", "reference") != "Patient/"+pid {
			t.Errorf("episode %s: source %q patient %q", str(ep, "id"), str(ep, "meta", "source"), str(ep, "patient", "reference"))
		}
		ext := dig(ep, "extension", 0)
		if str(ext, "url") != vocab.CurrentStageExtensionURL || str(ext, "valueCoding", "system") != vocab.StageSystem {
			t.Errorf("episode %s has no current stage: %v", str(ep, "id"), ep["extension"])
		}
	}
	// Recomputing without a new fact writes nothing.
	versions := func() map[string]string {
		v := map[string]string{}
		for _, ep := range h.resourcesOf("EpisodeOfCare", pid) {
			v[str(ep, "id")] = str(ep, "meta", "versionId")
		}
		return v
	}
	before := versions()
	if err := h.s.refreshEpisodes(t.Context(), []string{"Patient/" + pid}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, versions()); diff != "" {
		t.Errorf("episode versions after a recomputation with no new fact (-before +after):\n%s", diff)
	}
}

func TestDetectRuptures(t *testing.T) {
	h := newDemoHub(t)
	pid := h.patientByINS(insHeartFailure)
	run := func(actor, purpose, query string) reply {
		return h.as(actor, purpose, http.MethodPost, "/$detect-ruptures?"+query, nil)
	}
	r := run("gp", "rupture-detection", "patient=Patient/"+pid+"&asOf="+demoAsOf)
	if r.status != http.StatusOK {
		t.Fatalf("$detect-ruptures as the GP: %d %s", r.status, r.raw)
	}
	var got []string
	for _, e := range bundleEntries(r.body) {
		got = append(got, str(e, "resource", "code", "coding", 0, "code"))
	}
	for _, want := range []string{"no-gp-after-discharge", "early-readmission", "missed-monitoring-test"} {
		if !slices.Contains(got, want) {
			t.Errorf("ruptures %v, want %s among them", got, want)
		}
	}
	issues := h.resourcesOf("DetectedIssue", pid)
	if len(issues) != len(got) {
		t.Errorf("%d DetectedIssues stored, %d answered", len(issues), len(got))
	}
	provenances := func() []map[string]any {
		var out []map[string]any
		h.s.db.View(func(tx *store.Tx) error {
			for _, id := range tx.IDs("Provenance") {
				r, _ := tx.Get("Provenance", id)
				m := decodeStored(r.JSON)
				if strings.HasPrefix(str(m, "target", 0, "reference"), "DetectedIssue/") {
					out = append(out, m)
				}
			}
			return nil
		})
		return out
	}
	provs := provenances()
	if len(provs) != len(issues) {
		t.Errorf("%d Provenances for %d DetectedIssues", len(provs), len(issues))
	}
	for _, p := range provs {
		var lib, cm bool
		for _, e := range dig(p, "entity").([]any) {
			ref := str(e, "what", "reference")
			lib = lib || (strings.HasPrefix(ref, "Library/rupture-") && strings.Contains(ref, "/_history/"))
			cm = cm || (strings.HasPrefix(ref, "ConceptMap/") && strings.Contains(ref, "/_history/"))
		}
		if !lib || !cm {
			t.Errorf("Provenance %s names the rule version %v and ConceptMap versions %v: %v", str(p, "id"), lib, cm, p["entity"])
		}
	}
	for _, di := range issues {
		if str(di, "patient", "reference") != "Patient/"+pid || str(di, "status") != "final" || str(di, "identifier", 0, "system") != vocab.SidRupture {
			t.Errorf("DetectedIssue %s: %v", str(di, "id"), di)
		}
	}
	// R1 belongs to the heart-failure episode; R2, a population rule
	// without an index event, to the type-2-diabetes one (once to none:
	// black-box review), and shows in that pathway's view.
	for _, di := range issues {
		ep := str(di, "extension", 0, "valueReference", "reference")
		switch str(di, "code", "coding", 0, "code") {
		case "no-gp-after-discharge":
			if ep != "EpisodeOfCare/"+episodeID("Patient/"+pid, "heart-failure") {
				t.Errorf("R1 DetectedIssue episode %q", ep)
			}
		case "missed-monitoring-test":
			if ep != "EpisodeOfCare/"+episodeID("Patient/"+pid, "type-2-diabetes") {
				t.Errorf("R2 DetectedIssue episode %q", ep)
			}
			view := h.as("gp", "TREAT", http.MethodGet, "/Patient/"+pid+"/$pathway?pathway-type=type-2-diabetes", nil)
			if !strings.Contains(string(view.raw), `"DetectedIssue/`+str(di, "id")+`"`) && !strings.Contains(string(view.raw), `"id":"`+str(di, "id")+`"`) {
				t.Errorf("the type-2-diabetes pathway view (%d) lacks the R2 DetectedIssue %s", view.status, str(di, "id"))
			}
		}
	}

	// Idempotent: a second run writes nothing.
	r = run("gp", "rupture-detection", "patient=Patient/"+pid+"&asOf="+demoAsOf)
	if r.status != http.StatusOK {
		t.Fatalf("second run: %d %s", r.status, r.raw)
	}
	for _, di := range h.resourcesOf("DetectedIssue", pid) {
		if v := str(di, "meta", "versionId"); v != "1" {
			t.Errorf("DetectedIssue %s at version %s after an identical run", str(di, "id"), v)
		}
	}
	if n := len(provenances()); n != len(provs) {
		t.Errorf("%d Provenances after an identical run, want %d", n, len(provs))
	}

	// Hub operations run every patient and get counts, no content.
	r = run("hospital-it", "HSYSADMIN", "asOf="+demoAsOf)
	if r.status != http.StatusOK || str(r.body, "resourceType") != "OperationOutcome" || !strings.Contains(string(r.raw), "ruptures") {
		t.Fatalf("$detect-ruptures for every patient: %d %s", r.status, r.raw)
	}
	if strings.Contains(string(r.raw), pid) || strings.Contains(string(r.raw), insHeartFailure) {
		t.Errorf("the operations answer names a patient: %s", r.raw)
	}

	// Refused: insurers, a clinician outside the care team's purpose, and
	// hub operations for one patient (its ruptures are its health data).
	for _, c := range []struct{ actor, purpose string }{
		{"mutual-prevention", "prevention-programme-reporting"},
		{"liability-risk-manager", "liability-risk-analysis"},
		{"gp", "TREAT"},
		{"hospital-it", "HSYSADMIN"},
	} {
		if r := run(c.actor, c.purpose, "patient=Patient/"+pid); r.status != http.StatusForbidden {
			t.Errorf("$detect-ruptures as %s for %s: %d, want 403", c.actor, c.purpose, r.status)
		}
	}
	if r := run("gp", "rupture-detection", "asOf=2026-13-01"); r.status != http.StatusBadRequest {
		t.Errorf("bad asOf: %d", r.status)
	}
}

func TestPathwayOperation(t *testing.T) {
	h := newDemoHub(t)
	pid := h.patientByINS(insHeartFailure)
	if r := h.as("gp", "rupture-detection", http.MethodPost, "/$detect-ruptures?patient=Patient/"+pid+"&asOf="+demoAsOf, nil); r.status != http.StatusOK {
		t.Fatalf("$detect-ruptures: %d %s", r.status, r.raw)
	}
	get := func(actor, purpose, query string) reply {
		return h.as(actor, purpose, http.MethodGet, "/Patient/"+pid+"/$pathway"+query, nil)
	}
	r := get("gp", "TREAT", "")
	if r.status != http.StatusOK {
		t.Fatalf("$pathway as the GP: %d %s", r.status, r.raw)
	}
	entries := bundleEntries(r.body)
	if num(r.body, "total") != len(entries) || len(entries) == 0 {
		t.Fatalf("total %d for %d entries", num(r.body, "total"), len(entries))
	}
	var last string
	types := map[string]int{}
	sources := map[string]bool{}
	for _, e := range entries {
		typ := str(e, "resource", "resourceType")
		types[typ]++
		if typ == "EpisodeOfCare" || typ == "DetectedIssue" {
			continue
		}
		if types["EpisodeOfCare"]+types["DetectedIssue"] > 0 {
			t.Errorf("fact %s after the episodes and issues", typ)
		}
		var date string
		for _, x := range dig(e, "extension").([]any) {
			switch str(x, "url") {
			case factDateExtensionURL:
				date = str(x, "valueDateTime")
			case sourceActorExtensionURL:
				sources[str(x, "valueCode")] = true
			}
		}
		if date < last {
			t.Errorf("fact dated %s after one dated %s", date, last)
		}
		last = date
	}
	if types["EpisodeOfCare"] == 0 || types["DetectedIssue"] == 0 || types["Encounter"] == 0 {
		t.Errorf("entry types %v: want facts, EpisodeOfCares and DetectedIssues", types)
	}
	if !sources["hospital-it"] || !sources["gp"] {
		t.Errorf("source actors %v: want the hospital's and the city's facts", sources)
	}

	// Filters.
	r = get("gp", "TREAT", "?stage=suivi&since=2026-01-01&until=2026-12-31")
	if r.status != http.StatusOK {
		t.Fatalf("filtered: %d %s", r.status, r.raw)
	}
	for _, e := range bundleEntries(r.body) {
		typ := str(e, "resource", "resourceType")
		if typ == "EpisodeOfCare" || typ == "DetectedIssue" {
			continue
		}
		for _, x := range dig(e, "extension").([]any) {
			switch str(x, "url") {
			case factDateExtensionURL:
				if d := str(x, "valueDateTime"); d < "2026-01-01" || d > "2026-12-31T23:59:59Z" {
					t.Errorf("fact dated %s outside since/until", d)
				}
			case vocab.StageExtensionURL:
				code := str(x, "valueCoding", "code")
				if sc, _ := vocab.StageOf(code); sc.Top != "suivi" {
					t.Errorf("stage %s is not suivi or below", code)
				}
			}
		}
	}
	r = get("gp", "TREAT", "?pathway-type=heart-failure")
	if r.status != http.StatusOK {
		t.Fatalf("pathway-type: %d %s", r.status, r.raw)
	}
	for _, e := range bundleEntries(r.body) {
		if str(e, "resource", "resourceType") == "EpisodeOfCare" && str(e, "resource", "type", 0, "coding", 0, "code") != "heart-failure" {
			t.Errorf("episode of another pathway type: %v", e)
		}
	}
	for _, q := range []string{"?stage=nope", "?since=yesterday", "?pathway-type=unknown"} {
		if r := get("gp", "TREAT", q); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, r.status)
		}
	}
	// A mutual never sees a pathway; asking is a security alert.
	if r := get("mutual-prevention", "prevention-programme-reporting", ""); r.status != http.StatusForbidden {
		t.Errorf("$pathway as a mutual: %d, want 403", r.status)
	}
	if r := get("mutual-prevention", "underwriting-pricing", ""); r.status != http.StatusForbidden {
		t.Errorf("$pathway for pricing: %d, want 403", r.status)
	}
	if r := h.as("gp", "TREAT", http.MethodGet, "/Patient/nope/$pathway", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown patient: %d", r.status)
	}
}

func TestRuleEditedWithoutRebuild(t *testing.T) {
	h := newDemoHub(t)
	pid := h.patientByINS(insHeartFailure)
	lib := h.as("hospital-it", "HSYSADMIN", http.MethodGet, "/Library/rupture-R1", nil)
	if lib.status != http.StatusOK {
		t.Fatalf("Library/rupture-R1: %d %s", lib.status, lib.raw)
	}
	raw, err := base64.StdEncoding.DecodeString(str(lib.body, "content", 0, "data"))
	if err != nil {
		t.Fatal(err)
	}
	var rule map[string]any
	if err := json.Unmarshal(raw, &rule); err != nil {
		t.Fatal(err)
	}
	put := func(rule map[string]any) reply {
		body := lib.body
		body["content"] = []any{map[string]any{"contentType": vocab.RuleContentType, "data": base64.StdEncoding.EncodeToString(mustJSON(t, rule))}}
		delete(body, "meta")
		return h.as("hospital-it", "HSYSADMIN", http.MethodPut, "/Library/rupture-R1", body)
	}
	// A broken rule is refused with the JSON path of the problem.
	broken := map[string]any{}
	for k, v := range rule {
		broken[k] = v
	}
	broken["kind"] = "sometimes"
	broken["colour"] = "blue"
	r := put(broken)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.raw), "$.kind") || !strings.Contains(string(r.raw), "$.colour") {
		t.Fatalf("broken rule: %d %s", r.status, r.raw)
	}
	// An edited rule is used by the next detection.
	rule["severity"] = "low"
	rule["version"] = "1.1.0"
	if r := put(rule); r.status != http.StatusOK {
		t.Fatalf("edited rule: %d %s", r.status, r.raw)
	}
	if r := h.as("gp", "rupture-detection", http.MethodPost, "/$detect-ruptures?patient=Patient/"+pid+"&asOf="+demoAsOf, nil); r.status != http.StatusOK {
		t.Fatalf("$detect-ruptures: %d %s", r.status, r.raw)
	}
	found := false
	for _, di := range h.resourcesOf("DetectedIssue", pid) {
		if str(di, "code", "coding", 0, "code") == "no-gp-after-discharge" {
			found = true
			if str(di, "severity") != "low" || !strings.Contains(str(di, "detail"), "version 1.1.0") {
				t.Errorf("R1 after the edit: severity %q detail %q", str(di, "severity"), str(di, "detail"))
			}
		}
	}
	if !found {
		t.Error("no R1 DetectedIssue after the edit")
	}
	// Only the hub operator edits rules.
	if r := h.as("hospital-clinician", "TREAT", http.MethodPut, "/Library/rupture-R1", lib.body); r.status != http.StatusForbidden {
		t.Errorf("a clinician editing a rule: %d, want 403", r.status)
	}
}

func TestEvaluateMeasure(t *testing.T) {
	h := newDemoHub(t)
	eval := func(actor, purpose, id, query string) reply {
		return h.as(actor, purpose, http.MethodGet, "/Measure/"+id+"/$evaluate-measure?"+query, nil)
	}
	period := "periodStart=2024-01-01&periodEnd=2026-10-31"
	r := eval("mutual-prevention", "prevention-programme-reporting", "rupture-R3-breast", period)
	if r.status != http.StatusOK || str(r.body, "resourceType") != "MeasureReport" || str(r.body, "type") != "summary" {
		t.Fatalf("prevention measure for the mutual: %d %s", r.status, r.raw)
	}
	// The demo set is tiny: every count is under 10 and masked.
	for _, p := range dig(r.body, "group", 0, "population").([]any) {
		if dig(p, "count") != nil {
			t.Errorf("population %s published with count %v under k", str(p, "code", "coding", 0, "code"), dig(p, "count"))
		}
	}
	if strings.Contains(string(r.raw), "Patient/") || strings.Contains(string(r.raw), insHeartFailure) {
		t.Errorf("the aggregate names a patient: %s", r.raw)
	}
	// POST with a Parameters body (the standard form) answers the same
	// report (it was refused: periodStart is required).
	params := map[string]any{"resourceType": "Parameters", "parameter": []any{
		map[string]any{"name": "periodStart", "valueDate": "2024-01-01"}, map[string]any{"name": "periodEnd", "valueDate": "2026-10-31"}}}
	if p := h.as("mutual-prevention", "prevention-programme-reporting", http.MethodPost, "/Measure/rupture-R3-breast/$evaluate-measure", params); p.status != http.StatusOK || str(p.body, "period", "start") != str(r.body, "period", "start") || str(p.body, "period", "end") != str(r.body, "period", "end") {
		t.Errorf("POST with a Parameters body: %d %.300s", p.status, p.raw)
	}
	// A hospital's report is restricted to its own establishment.
	if r := eval("hospital-clinician", "HOPERAT", "rupture-R5", period); str(r.body, "reporter", "identifier", "value") != "750712184" {
		t.Errorf("hospital report reporter %v", r.body["reporter"])
	}
	for _, c := range []struct {
		actor, purpose, id, query string
		status                    int
	}{
		{"mutual-prevention", "prevention-programme-reporting", "rupture-R1", period, http.StatusForbidden}, // care quality: not for mutuals
		{"mutual-prevention", "underwriting-pricing", "rupture-R3-breast", period, http.StatusForbidden},
		{"mutual-claims", "HPAYMT", "rupture-R3-breast", period, http.StatusForbidden},
		{"gp", "TREAT", "rupture-R1", period, http.StatusForbidden},
		{"public-health", "PUBHLTH", "rupture-R1", period, http.StatusOK},
		{"mutual-prevention", "prevention-programme-reporting", "rupture-R3-breast", "periodStart=2024-01-01", http.StatusBadRequest},
		{"mutual-prevention", "prevention-programme-reporting", "rupture-R3-breast", period + "&reportType=subject-list", http.StatusBadRequest},
		{"mutual-prevention", "prevention-programme-reporting", "rupture-R3-breast", period + "&subject=Patient/x", http.StatusBadRequest},
		{"public-health", "PUBHLTH", "nope", period, http.StatusForbidden},     // no Measure, no topic: the policy refuses first
		{"hospital-clinician", "HOPERAT", "rupture-R5", period, http.StatusOK}, // its own establishment
		{"hospital-it", "HOPERAT", "rupture-R5", period, http.StatusForbidden}, // metadata only
	} {
		if r := eval(c.actor, c.purpose, c.id, c.query); r.status != c.status {
			t.Errorf("%s %s %s?%s: %d, want %d: %s", c.actor, c.purpose, c.id, c.query, r.status, c.status, r.raw)
		}
	}
}

func TestLiabilityFeedback(t *testing.T) {
	h := newDemoHub(t)
	var own, other string
	h.s.db.View(func(tx *store.Tx) error {
		for _, id := range tx.IDs("Organization") {
			switch finessOf(tx, id) {
			case "750712184": // the dev hospital, insured
				own = id
			case "":
			default:
				if other == "" {
					other = id
				}
			}
		}
		return nil
	})
	if own == "" || other == "" {
		t.Fatalf("establishments: own %q other %q", own, other)
	}
	eval := func(actor, purpose, org string) reply {
		return h.as(actor, purpose, http.MethodGet, "/Measure/liability-claims/$evaluate-measure?periodStart=2024-01-01&periodEnd=2026-12-31&subject=Organization/"+org, nil)
	}
	for _, c := range []struct {
		actor, purpose, org string
		status              int
	}{
		{"liability-risk-manager", "liability-risk-analysis", own, http.StatusOK},
		{"hospital-clinician", "HOPERAT", own, http.StatusOK},
		{"hospital-clinician", "HOPERAT", other, http.StatusForbidden}, // another establishment's claims
		{"mutual-prevention", "prevention-programme-reporting", own, http.StatusForbidden},
		{"gp", "TREAT", own, http.StatusForbidden},
		{"liability-risk-manager", "underwriting-pricing", own, http.StatusForbidden},
	} {
		r := eval(c.actor, c.purpose, c.org)
		if r.status != c.status {
			t.Errorf("%s %s for %s: %d, want %d: %s", c.actor, c.purpose, c.org, r.status, c.status, r.raw)
			continue
		}
		if r.status != http.StatusOK {
			continue
		}
		if str(r.body, "reporter", "identifier", "value") != "750712184" {
			t.Errorf("reporter %v", r.body["reporter"])
		}
		var strata []string
		for _, s := range dig(r.body, "group", 0, "stratifier").([]any) {
			strata = append(strata, str(s, "code", 0, "text"))
		}
		if !slices.Equal(strata, liabilityStrata) {
			t.Errorf("stratifiers %v, want %v", strata, liabilityStrata)
		}
		// Under 10 claims: the indemnity total is masked too.
		if strings.Contains(string(r.raw), `"valueMoney"`) {
			t.Errorf("indemnities published for fewer than 10 patients: %s", r.raw)
		}
	}
	if r := h.as("liability-risk-manager", "liability-risk-analysis", http.MethodGet, "/Measure/liability-claims/$evaluate-measure?periodStart=2024-01-01&periodEnd=2026-12-31", nil); r.status != http.StatusBadRequest {
		t.Errorf("claims feedback without subject: %d, want 400", r.status)
	}
}

// A write decision knows the patient a conditional reference names: a care
// team member records the consent of a patient of its care team.
func TestConditionalReferenceDecidedOnItsPatient(t *testing.T) {
	h := newDemoHub(t)
	consent := func(ins string) map[string]any {
		ref := map[string]any{"reference": "Patient?identifier=" + insSystem + "|" + ins}
		return map[string]any{
			"resourceType": "Consent", "status": "active",
			"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
			"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
			"patient":  ref, "performer": []any{ref},
			"policyRule": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}}},
			"provision":  map[string]any{"type": "deny"},
		}
	}
	tx := func(ins string) map[string]any {
		return map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
			map[string]any{"resource": consent(ins), "request": map[string]any{"method": "POST", "url": "Consent"}}}}
	}
	// 155037511204521 had stays at the dev hospital; 271059204111841 only city and programme data.
	if r := h.as("hospital-clinician", "TREAT", http.MethodPost, "", tx(insHeartFailure)); r.status != http.StatusOK {
		t.Errorf("consent of a care-team patient by conditional reference: %d %s", r.status, r.raw)
	}
	if r := h.as("hospital-clinician", "TREAT", http.MethodPost, "/Consent", consent(insHeartFailure)); r.status != http.StatusCreated {
		t.Errorf("consent of a care-team patient, plain create: %d %s", r.status, r.raw)
	}
	if r := h.as("hospital-clinician", "TREAT", http.MethodPost, "", tx("271059204111841")); r.status == http.StatusOK {
		t.Errorf("consent of a patient outside the care team accepted: %s", r.raw)
	}
}

// The claims register serves liability, not care: the risk manager reads
// claims pseudonymised for risk analysis; a GP of the care team does not
// read them for treatment.
func TestLiabilityClaimsUse(t *testing.T) {
	h := newDemoHub(t)
	pid := h.patientByINS(insColorectal) // a complication claim
	r := h.as("liability-risk-manager", "liability-risk-analysis", http.MethodGet, "/AdverseEvent", nil)
	if r.status != http.StatusOK {
		t.Fatalf("risk analysis search: %d %s", r.status, r.raw)
	}
	entries := bundleEntries(r.body)
	if len(entries) == 0 {
		t.Fatal("the risk manager sees no claim for risk analysis")
	}
	for _, e := range entries {
		if strings.Contains(mustJSONString(t, e), pid) || strings.Contains(mustJSONString(t, e), insColorectal) {
			t.Errorf("a claim for risk analysis names the patient: %v", e)
		}
		if !strings.Contains(mustJSONString(t, e), "PSEUDED") {
			t.Errorf("a claim for risk analysis is not marked pseudonymised: %v", e)
		}
	}
	r = h.as("gp", "TREAT", http.MethodGet, "/AdverseEvent?subject=Patient/"+pid, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GP search: %d %s", r.status, r.raw)
	}
	if n := len(bundleEntries(r.body)); n != 0 || num(r.body, "total") != 0 {
		t.Errorf("the GP reads %d claims of the register for treatment (total %d)", n, num(r.body, "total"))
	}
}

func mustJSONString(t testing.TB, v any) string { return string(mustJSON(t, v)) }

// DetectedIssues are for the care team (DESIGN §6): a researcher's
// pseudonymised access does not reach them.
func TestDetectedIssuesCareTeamOnly(t *testing.T) {
	h := newDemoHub(t)
	pid := h.patientByINS(insHeartFailure)
	if r := h.as("gp", "rupture-detection", http.MethodPost, "/$detect-ruptures?patient=Patient/"+pid+"&asOf="+demoAsOf, nil); r.status != http.StatusOK {
		t.Fatalf("$detect-ruptures: %d %s", r.status, r.raw)
	}
	if r := h.as("gp", "TREAT", http.MethodGet, "/DetectedIssue?patient=Patient/"+pid, nil); r.status != http.StatusOK || num(r.body, "total") == 0 {
		t.Errorf("the GP of the care team: %d, total %d", r.status, num(r.body, "total"))
	}
	for _, c := range []struct{ actor, purpose string }{{"researcher", "HRESCH"}, {"public-health", "PUBHLTH"}} {
		r := h.as(c.actor, c.purpose, http.MethodGet, "/DetectedIssue", nil)
		if r.status == http.StatusOK && num(r.body, "total") != 0 {
			t.Errorf("%s (%s) sees %d DetectedIssues", c.actor, c.purpose, num(r.body, "total"))
		}
	}
}

// TestEpisodesFollowRollback: the facts of a patient stored under an
// ingest job build EpisodeOfCares; when the job is rolled back, the
// episodes the facts no longer support are deleted (the patient stays: it
// was stored before the job). Likewise when the facts are deleted.
func TestEpisodesFollowRollback(t *testing.T) {
	demo := newDemoHub(t)
	pid := demo.patientByINS(insHeartFailure)
	type stored struct {
		typ, id string
		res     map[string]any
	}
	var patient stored
	var facts []stored
	demo.s.db.View(func(tx *store.Tx) error {
		r, err := tx.Get("Patient", pid)
		if err != nil {
			t.Fatal(err)
		}
		patient = stored{"Patient", pid, decodeStored(r.JSON)}
		for typ := range factTypes {
			for _, id := range tx.Lookup(typ, paramPatient, "Patient/"+pid) {
				if typ == "Patient" {
					continue
				}
				if r, err := tx.Get(typ, id); err == nil && !r.Deleted() {
					facts = append(facts, stored{typ, id, decodeStored(r.JSON)})
				}
			}
		}
		return nil
	})
	if len(facts) < 3 {
		t.Fatalf("the heart-failure patient has %d facts", len(facts))
	}
	h := newSecureHub(t)
	put := func(job string, list ...stored) {
		t.Helper()
		if err := h.s.db.Update(t.Context(), func(tx *store.Tx) error {
			if job != "" {
				if err := tx.SetJob(job); err != nil {
					return err
				}
			}
			for _, s := range list {
				if m, ok := s.res["meta"].(map[string]any); ok {
					delete(m, "versionId") // the store sets them; meta.source stays
					delete(m, "lastUpdated")
				}
				if _, err := tx.Put(s.typ, s.id, s.res); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("", patient)
	put("upload-1", facts...)
	h.s.WaitPathways()
	types := codesOf(h.resourcesOf("EpisodeOfCare", pid), "type", 0, "coding", 0, "code")
	if !slices.Contains(types, "heart-failure") {
		t.Fatalf("episodes while the job runs: %v, want heart-failure among them", types)
	}
	n, err := h.s.db.RollbackJob(t.Context(), "upload-1")
	if err != nil || n != len(facts) {
		t.Fatalf("rollback: %d purged, %v; want %d", n, err, len(facts))
	}
	h.s.WaitPathways()
	if eps := h.resourcesOf("EpisodeOfCare", pid); len(eps) != 0 {
		t.Errorf("episodes left after the rollback: %v", codesOf(eps, "type", 0, "coding", 0, "code"))
	}
	h.s.db.View(func(tx *store.Tx) error {
		if r, err := tx.Get("Patient", pid); err != nil || r.Deleted() {
			t.Errorf("the patient stored before the job is gone: %v", err)
		}
		return nil
	})

	// The same facts stored for good, then deleted: the episodes follow.
	put("", facts...)
	h.s.WaitPathways()
	if eps := h.resourcesOf("EpisodeOfCare", pid); len(eps) == 0 {
		t.Fatal("no episode from the facts stored again")
	}
	if err := h.s.db.Update(t.Context(), func(tx *store.Tx) error {
		for _, f := range facts {
			if _, err := tx.Delete(f.typ, f.id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.s.WaitPathways()
	if eps := h.resourcesOf("EpisodeOfCare", pid); len(eps) != 0 {
		t.Errorf("episodes left after their facts were deleted: %v", codesOf(eps, "type", 0, "coding", 0, "code"))
	}
}

// TestMeasureRowsFollowFacts: the rows of a rupture measure are computed
// once per state of the facts: a second evaluation reuses them, and a
// write to a fact makes the next evaluation see it.
func TestMeasureRowsFollowFacts(t *testing.T) {
	h := newDemoHub(t)
	pid := h.patientByINS(insHeartFailure)
	eval := func() {
		t.Helper()
		r := h.as("public-health", "PUBHLTH", http.MethodGet, "/Measure/rupture-R1/$evaluate-measure?periodStart=2024-01-01&periodEnd=2026-10-31", nil)
		if r.status != http.StatusOK {
			t.Fatalf("evaluate: %d %s", r.status, r.raw)
		}
	}
	memoRowsOf := func() []measure.Row {
		t.Helper()
		m := &h.s.measureRows
		m.mu.Lock()
		defer m.mu.Unlock()
		var out []measure.Row
		n := 0
		for k, e := range m.entries {
			if strings.HasPrefix(k, "Library/rupture-R1/") {
				out, n = e.rows, n+1
			}
		}
		if n != 1 {
			t.Fatalf("%d memoised row sets of R1, want 1", n)
		}
		return out
	}
	hasPatient := func(rows []measure.Row) bool {
		return slices.ContainsFunc(rows, func(r measure.Row) bool { return r.Patient == rowKey("Patient/"+pid) })
	}
	eval()
	first := memoRowsOf()
	if !hasPatient(first) {
		t.Fatalf("the planted R1 patient has no row among %d", len(first))
	}
	eval()
	if again := memoRowsOf(); len(again) != len(first) || &again[0] != &first[0] {
		t.Error("a second evaluation without a write computed the rows again")
	}
	// The patient's stays go: its R1 finding with them.
	if err := h.s.db.Update(t.Context(), func(tx *store.Tx) error {
		for _, id := range tx.Lookup("Encounter", paramPatient, "Patient/"+pid) {
			if _, err := tx.Delete("Encounter", id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eval()
	if after := memoRowsOf(); hasPatient(after) {
		t.Errorf("the patient's R1 row outlived the deletion of its stays (%d rows before, %d after)", len(first), len(after))
	}
}

// TestRupturesWithdrawn: a rupture whose index event leaves the record
// (deleted here; rolled back with its upload alike) is withdrawn by the
// next detection: entered in error, with a mitigation and a Provenance of
// the new version; the run after writes nothing.
func TestRupturesWithdrawn(t *testing.T) {
	h := newDemoHub(t)
	pid := h.patientByINS(insHeartFailure)
	run := func() reply {
		t.Helper()
		r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/$detect-ruptures?asOf="+demoAsOf, nil)
		if r.status != http.StatusOK {
			t.Fatalf("$detect-ruptures: %d %s", r.status, r.raw)
		}
		return r
	}
	run()
	indexed := map[string]bool{} // the patient's ruptures: those with an index event
	for _, di := range h.resourcesOf("DetectedIssue", pid) {
		indexed[str(di, "id")] = dig(di, "implicated") != nil
	}
	n := 0
	for _, yes := range indexed {
		if yes {
			n++
		}
	}
	if n == 0 {
		t.Fatal("no rupture with an index event for the heart-failure patient")
	}
	// Every fact of the patient goes: no index event is left (ruptures of
	// a population, such as a screening due, may remain or appear).
	if err := h.s.db.Update(t.Context(), func(tx *store.Tx) error {
		for typ := range factTypes {
			if typ == "Patient" {
				continue
			}
			for _, id := range tx.Lookup(typ, paramPatient, "Patient/"+pid) {
				if _, err := tx.Delete(typ, id); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := run()
	withdrawnN := 0
	for _, di := range h.resourcesOf("DetectedIssue", pid) {
		id := str(di, "id")
		if str(di, "status") == "final" {
			// Still found: a population rupture that rests on the Patient
			// alone (a screening due), never one with an index event.
			if indexed[id] {
				t.Errorf("DetectedIssue %s still final after its index event went", id)
			}
			continue
		}
		withdrawnN++
		if str(di, "status") != "entered-in-error" || !strings.HasPrefix(str(di, "mitigation", 0, "action", "text"), "withdrawn") {
			t.Errorf("DetectedIssue %s after its facts went: status %s, mitigation %v", id, str(di, "status"), di["mitigation"])
		}
		target := "DetectedIssue/" + id + "/_history/" + str(di, "meta", "versionId")
		found := false
		h.s.db.View(func(tx *store.Tx) error {
			for _, pv := range tx.IDs("Provenance") {
				p, _ := tx.Get("Provenance", pv)
				found = found || strings.Contains(string(p.JSON), `"`+target+`"`)
			}
			return nil
		})
		if !found {
			t.Errorf("no Provenance for %s", target)
		}
	}
	if withdrawnN < n || !strings.Contains(str(r.body, "issue", 0, "diagnostics"), fmt.Sprintf(" %d withdrawn", withdrawnN)) {
		t.Errorf("summary %q: %d DetectedIssues withdrawn, at least the %d with an index event", str(r.body, "issue", 0, "diagnostics"), withdrawnN, n)
	}
	if r := run(); !strings.Contains(str(r.body, "issue", 0, "diagnostics"), "(0 new or changed DetectedIssues, 0 cancelled, 0 withdrawn)") {
		t.Errorf("a rerun wrote something: %s", str(r.body, "issue", 0, "diagnostics"))
	}
}

// TestFactRecordSame: the pathway engine reads only the fact types of a
// record (factRecord): the facts and episodes it builds are those of the
// whole record, for every patient of the demo set.
func TestFactRecordSame(t *testing.T) {
	h := newDemoHub(t)
	// And the demo's Synthea patients, whose records hold CareTeams,
	// Goals, DocumentReferences, ImagingStudies… besides their facts.
	bundles, _ := filepath.Glob(filepath.Join("..", "testdata", "demo", "synthea", "*.json"))
	for _, f := range bundles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "", b); r.status != http.StatusOK {
			t.Fatalf("%s: %d %.300s", f, r.status, r.raw)
		}
	}
	if len(bundles) == 0 {
		t.Fatal("no Synthea bundle in testdata/demo/synthea")
	}
	h.s.WaitPathways()
	all := compartmentTypes(search.CompartmentTypes("Patient"))
	if len(factRecord) >= len(all) {
		t.Fatalf("factRecord reads %d types of %d", len(factRecord), len(all))
	}
	n := 0
	h.s.db.View(func(tx *store.Tx) error {
		for _, pid := range tx.IDs("Patient") {
			whole, ok := loadRecord(tx, pid, all, nil)
			part, _ := loadRecord(tx, pid, factRecord, nil)
			if !ok {
				continue
			}
			n++
			pw, pp := pathway.Facts(whole.decoded), pathway.Facts(part.decoded)
			if !reflect.DeepEqual(pw, pp) {
				t.Errorf("Patient/%s: facts differ: %d from the whole record, %d from its fact types", pid, len(pw.Facts), len(pp.Facts))
			}
			if !reflect.DeepEqual(pathway.Episodes(pw), pathway.Episodes(pp)) {
				t.Errorf("Patient/%s: episodes differ", pid)
			}
		}
		return nil
	})
	if n < 10 {
		t.Fatalf("only %d patients compared", n)
	}
}

// TestRupturesStandAcrossDates: a rupture is withdrawn only when the facts
// it rested on changed, not because an evaluation at another date does
// not yield it (black-box review: every population rupture of a year was
// withdrawn and found again under a new id on the first run of the next
// year; a run at an earlier date withdrew ruptures whose index came after
// it). An evaluation date after today is refused.
func TestRupturesStandAcrossDates(t *testing.T) {
	h := newDemoHub(t)
	run := func(asOf string) string {
		t.Helper()
		r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/$detect-ruptures?asOf="+asOf, nil)
		if r.status != http.StatusOK {
			t.Fatalf("$detect-ruptures at %s: %d %s", asOf, r.status, r.raw)
		}
		return str(r.body, "issue", 0, "diagnostics")
	}
	final := func() map[string]bool {
		out := map[string]bool{}
		h.s.db.View(func(tx *store.Tx) error {
			for _, id := range tx.IDs("DetectedIssue") {
				r, _ := tx.Get("DetectedIssue", id)
				if str(decodeStored(r.JSON), "status") == "final" {
					out[id] = true
				}
			}
			return nil
		})
		return out
	}
	for _, dates := range [][2]string{{"2025-12-30", "2026-01-02"}, {demoAsOf, "2026-01-01"}} {
		day0 := time.Now().UTC().Format(time.DateOnly)
		run(dates[0])
		day1 := time.Now().UTC().Format(time.DateOnly)
		// identified is the day the hub found it, not the evaluation date
		// (brief §3.2.4; once asOf: black-box review).
		h.s.db.View(func(tx *store.Tx) error {
			for _, id := range tx.IDs("DetectedIssue") {
				r, _ := tx.Get("DetectedIssue", id)
				if r.Version == 1 {
					if d := str(decodeStored(r.JSON), "identifiedDateTime"); d < day0 || d > day1 {
						t.Errorf("DetectedIssue %s identified %s, want the day of the run (%s)", id, d, day0)
					}
				}
			}
			return nil
		})
		before := final()
		if len(before) == 0 {
			t.Fatalf("no rupture at %s", dates[0])
		}
		if sum := run(dates[1]); !strings.Contains(sum, " 0 withdrawn") {
			t.Errorf("run at %s after %s: %s, want nothing withdrawn", dates[1], dates[0], sum)
		}
		after := final()
		for id := range before {
			if !after[id] {
				t.Errorf("DetectedIssue %s, a rupture at %s, is no longer final after a run at %s", id, dates[0], dates[1])
			}
		}
	}
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	wantOutcome(t, h.as("hospital-it", "HOPERAT", http.MethodPost, "/$detect-ruptures?asOf="+tomorrow, nil), http.StatusBadRequest)
}
