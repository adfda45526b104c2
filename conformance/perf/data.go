package perf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/conformance/load"
)

// ingest measures $ingest of a generated city-activity file on the hub
// with the policy and the audit log, in rows per second.
func (r *runner) ingest(ctx context.Context) error {
	row := Row{Key: RowIngest, Name: "$ingest city-activity (one file, policy + audit)", Unit: "rows/s"}
	if r.cfg.IngestFile == nil {
		row.Skipped = "no generator of city-activity files given (Config.IngestFile)"
		r.add(row)
		return nil
	}
	file, err := r.cfg.IngestFile(r.cfg.IngestRows)
	if err != nil {
		row.Skipped = "no file: " + err.Error()
		r.add(row)
		return nil
	}
	rows := bytes.Count(bytes.TrimSpace(file), []byte("\n")) // lines after the header
	r.logf("$ingest of %d generated city-activity rows", rows)
	h, err := r.startHub(ctx, Setup{Policy: true, Audit: true})
	if err != nil {
		return err
	}
	defer h.Close()
	start := time.Now()
	resp, err := do(ctx, http.MethodPost, h.URL+"/$ingest?source=city-activity", h.Ingester, "text/csv", file)
	elapsed := time.Since(start)
	var oo struct {
		Issue []struct{ Diagnostics string } `json:"issue"`
	}
	if err == nil {
		_ = json.Unmarshal(resp.body, &oo)
	}
	switch {
	case err != nil:
		row.Skipped = err.Error()
	case resp.status != http.StatusOK || len(oo.Issue) == 0:
		row.Skipped = fmt.Sprintf("$ingest: status %d: %s", resp.status, clip(resp.body))
	default:
		row.Rate = float64(rows) / elapsed.Seconds()
		row.P50, row.P99 = elapsed, elapsed
		row.Requests = 1
		row.Note = fmt.Sprintf("%d generated rows (%s) in %v: %s", rows, size(int64(len(file))), elapsed.Round(time.Millisecond), oo.Issue[0].Diagnostics)
	}
	r.add(row)
	return nil
}

// searchTypes are the resource types the corpus is loaded with: the
// clinical data a hospital feed sends (the hub's hospital IT identity may
// write them). Entries of other types, and those referring to them, are
// left out of each bundle.
var searchTypes = []string{
	"Patient", "Encounter", "Condition", "Procedure", "Observation", "DiagnosticReport",
	"MedicationRequest", "Immunization", "AllergyIntolerance", "Organization", "Practitioner",
	"PractitionerRole", "Location", "Claim",
}

// searches loads the corpus into a hub with the policy and the audit log
// and measures a few representative searches as the reader.
func (r *runner) searches(ctx context.Context) error {
	files, what := r.corpusFiles()
	if len(files) == 0 {
		r.add(Row{Key: RowSearch + "1", Name: "search", Skipped: what})
		return nil
	}
	h, err := r.startHub(ctx, Setup{Policy: true, Audit: true})
	if err != nil {
		return err
	}
	defer h.Close()
	r.logf("search: loading %s", what)
	start := time.Now()
	stored, refused, err := loadFiles(ctx, h, files)
	if err != nil {
		r.add(Row{Key: RowSearch + "1", Name: "search", Skipped: "loading " + what + ": " + err.Error()})
		return nil
	}
	note := fmt.Sprintf("searches: %s loaded as hospital IT (%d resources of %s, in %v), searched as the hospital's clinician for treatment",
		what, stored, strings.Join(searchTypes, ", "), time.Since(start).Round(time.Second))
	if len(refused) > 0 {
		note += fmt.Sprintf("; files refused by the hub: %s", strings.Join(refused, ", "))
	}
	r.rep.Notes = append(r.rep.Notes, note)
	queries, err := r.pickQueries(ctx, h)
	if err != nil {
		r.add(Row{Key: RowSearch + "1", Name: "search", Skipped: err.Error()})
		return nil
	}
	for i, q := range queries {
		key := RowSearch + strconv.Itoa(i+1)
		name := "search " + q.label
		resp, err := do(ctx, http.MethodGet, h.URL+"/"+q.path, h.Reader, "", nil)
		var bundle struct {
			Total *int `json:"total"`
			Entry []any
		}
		if err == nil {
			err = json.Unmarshal(resp.body, &bundle)
		}
		if err != nil || resp.status != http.StatusOK {
			r.add(Row{Key: key, Name: name, Skipped: fmt.Sprintf("%v: status %d: %s", err, resp.status, clip(resp.body))})
			continue
		}
		row, _ := r.drive(ctx, key, name, load.Config{
			URL: h.URL, Token: h.Reader.Token, Purpose: h.Reader.Purpose,
			Requests: []load.Request{{Path: q.path}},
		})
		total := "no total"
		if bundle.Total != nil {
			total = plural(*bundle.Total, "match", "matches")
		}
		row.Note = strings.TrimPrefix(row.Note+"; ", "; ") + fmt.Sprintf("%s, %s on the page", total, plural(len(bundle.Entry), "entry", "entries"))
		r.add(row)
	}
	return nil
}

// corpusFiles lists the Synthea bundles of the corpus (batches first: they
// hold the practitioners and organisations the patients' bundles refer to
// conditionally) or, without them, the JSON files of the fallback.
func (r *runner) corpusFiles() ([]string, string) {
	var files []string
	for _, set := range []string{"google-fhir-data-pipes-synthea-hiv", "smart-on-fhir-generated-sample-data-r4"} {
		fs, _ := filepath.Glob(filepath.Join(r.cfg.Corpus, "synthea", set, "*.json"))
		files = append(files, fs...)
	}
	if len(files) > 0 {
		slices.SortStableFunc(files, func(a, b string) int { return batchFirst(a) - batchFirst(b) })
		return files, fmt.Sprintf("the Synthea bundles of %s", r.cfg.Corpus)
	}
	fallback, _ := filepath.Glob(filepath.Join(r.cfg.Fallback, "*.json"))
	if len(fallback) == 0 {
		return nil, fmt.Sprintf("no Synthea corpus in %s and no FHIR files in %s", r.cfg.Corpus, r.cfg.Fallback)
	}
	return fallback, fmt.Sprintf("%s (Synthea corpus absent from %s)", r.cfg.Fallback, r.cfg.Corpus)
}

// batchFirst orders batch bundles before the others.
func batchFirst(file string) int {
	b, _ := os.ReadFile(file)
	head := b[:min(len(b), 4096)]
	if bytes.Contains(head, []byte(`"type": "batch"`)) || bytes.Contains(head, []byte(`"type":"batch"`)) {
		return 0
	}
	return 1
}

// loadFiles posts every file as the writer: bundles to the base (their
// entries narrowed to searchTypes), other resources to their type. It
// returns the number of resources stored and the files the hub refused.
func loadFiles(ctx context.Context, h *Hub, files []string) (stored int, refused []string, err error) {
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return stored, refused, err
		}
		var res map[string]any
		if err := json.Unmarshal(raw, &res); err != nil {
			return stored, refused, fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		typ, _ := res["resourceType"].(string)
		target := h.URL
		switch {
		case typ == "Bundle":
			if kind, _ := res["type"].(string); (kind != "transaction" && kind != "batch") || narrow(res) == 0 {
				continue
			}
		case slices.Contains(searchTypes, typ):
			delete(res, "id")
			target = h.URL + "/" + typ
		default:
			continue
		}
		body, _ := json.Marshal(res)
		resp, err := do(ctx, http.MethodPost, target, h.Writer, "application/fhir+json", body)
		if err != nil {
			return stored, refused, err
		}
		if resp.status/100 != 2 {
			refused = append(refused, fmt.Sprintf("%s (%d)", filepath.Base(f), resp.status))
			continue
		}
		if typ != "Bundle" {
			stored++
			continue
		}
		var out struct {
			Entry []struct {
				Response struct{ Status string }
			}
		}
		_ = json.Unmarshal(resp.body, &out)
		for _, e := range out.Entry {
			if strings.HasPrefix(e.Response.Status, "201") {
				stored++
			}
		}
	}
	if stored == 0 {
		return 0, refused, fmt.Errorf("nothing stored (refused: %s)", strings.Join(refused, ", "))
	}
	return stored, refused, nil
}

// narrow keeps the entries of a bundle whose type is in searchTypes and
// that refer to no left-out entry, and returns how many are kept.
func narrow(bundle map[string]any) int {
	entries, _ := bundle["entry"].([]any)
	dropped := map[string]bool{}
	keep := make([]bool, len(entries))
	for i, e := range entries {
		em, _ := e.(map[string]any)
		res, _ := em["resource"].(map[string]any)
		typ, _ := res["resourceType"].(string)
		keep[i] = slices.Contains(searchTypes, typ)
		if !keep[i] {
			if u, _ := em["fullUrl"].(string); u != "" {
				dropped[u] = true
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for i, e := range entries {
			if keep[i] && refersTo(e.(map[string]any)["resource"], dropped) {
				keep[i], changed = false, true
				if u, _ := e.(map[string]any)["fullUrl"].(string); u != "" {
					dropped[u] = true
				}
			}
		}
	}
	var kept []any
	for i, e := range entries {
		if keep[i] {
			kept = append(kept, e)
		}
	}
	bundle["entry"] = kept
	return len(kept)
}

// refersTo reports whether v holds a reference to one of the urls.
func refersTo(v any, urls map[string]bool) bool {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["reference"].(string); ok && urls[ref] {
			return true
		}
		for _, e := range x {
			if refersTo(e, urls) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if refersTo(e, urls) {
				return true
			}
		}
	}
	return false
}

type query struct{ label, path string }

// pickQueries makes the searches from what the reader can see: the patient
// with the most observations, its family name and the code of one of its
// observations.
func (r *runner) pickQueries(ctx context.Context, h *Hub) ([]query, error) {
	get := func(path string) (map[string]any, error) {
		resp, err := do(ctx, http.MethodGet, h.URL+"/"+path, h.Reader, "", nil)
		if err != nil {
			return nil, err
		}
		if resp.status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d: %s", path, resp.status, clip(resp.body))
		}
		var b map[string]any
		return b, json.Unmarshal(resp.body, &b)
	}
	obs, err := get("Observation?_count=1000&_elements=subject,code")
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	codes := map[string]string{}
	for _, e := range list(obs["entry"]) {
		res, _ := e.(map[string]any)["resource"].(map[string]any)
		subj, _ := res["subject"].(map[string]any)
		ref, _ := subj["reference"].(string)
		id, ok := strings.CutPrefix(ref, "Patient/")
		if !ok {
			continue
		}
		count[id]++
		if c := firstCoding(res["code"]); c != "" && codes[id] == "" {
			codes[id] = c
		}
	}
	if len(count) == 0 {
		return nil, errors.New("no observation of a patient visible to the reader: nothing to search")
	}
	ids := make([]string, 0, len(count))
	for id := range count {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return count[b] - count[a] })
	patient := ids[0]
	p, err := get("Patient?_id=" + url.QueryEscape(patient))
	if err != nil {
		return nil, err
	}
	family := ""
	for _, e := range list(p["entry"]) {
		res, _ := e.(map[string]any)["resource"].(map[string]any)
		for _, n := range list(res["name"]) {
			if f, _ := n.(map[string]any)["family"].(string); f != "" && family == "" {
				family = f
			}
		}
	}
	qs := []query{}
	if family != "" {
		qs = append(qs, query{"Patient?family={family}", "Patient?family=" + url.QueryEscape(family)})
	}
	qs = append(qs,
		query{"Observation?patient={id} (its " + strconv.Itoa(count[patient]) + "+ observations, first page)", "Observation?patient=" + url.QueryEscape(patient)},
		query{"Observation?patient={id}&code={code}", "Observation?patient=" + url.QueryEscape(patient) + "&code=" + url.QueryEscape(codes[patient])},
		query{"Encounter?patient={id}&date=ge2010-01-01", "Encounter?patient=" + url.QueryEscape(patient) + "&date=ge2010-01-01"},
		query{"Observation?code={code}&_count=50 (all patients)", "Observation?code=" + url.QueryEscape(codes[patient]) + "&_count=50"},
	)
	return qs, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func list(v any) []any { l, _ := v.([]any); return l }

// firstCoding is "system|code" of the first coding of a CodeableConcept.
func firstCoding(v any) string {
	cc, _ := v.(map[string]any)
	for _, c := range list(cc["coding"]) {
		cm, _ := c.(map[string]any)
		sys, _ := cm["system"].(string)
		code, _ := cm["code"].(string)
		if code != "" {
			return sys + "|" + code
		}
	}
	return ""
}
