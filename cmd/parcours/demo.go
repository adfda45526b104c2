package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/mappings/gen"
	"github.com/parcours-sante/parcours/server/auth"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	var demoDir string
	fs := newFlags("demo [flags]", "Run a developer hub on a fresh data directory loaded with the demo data (testdata/demo: the four native\nfiles of `parcours gen --patients 1000 --seed 1`, Synthea bundles and consents), then tell the story:\nrupture detection, a GP's cross-setting pathway, a mutual's aggregated report, a refused pricing request,\nthe auditor's view.", stderr)
	cfg.flags(fs)
	fs.StringVar(&demoDir, "demo-data", "testdata/demo", "directory of the demo data: the four native files, and optionally synthea/*.json, consents.json and expected.json")
	fs.Lookup("data").DefValue = "a new temporary directory"
	cfg.Data = ""
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Data == "" {
		dir, err := os.MkdirTemp("", "parcours-demo-")
		if err != nil {
			return err
		}
		cfg.Data = dir
	}
	cfg.Dev = true
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, cfg, stdout, stderr, ready) }()
	select {
	case err := <-errc:
		return err
	case addr := <-ready:
		base := "http://" + addr + "/fhir"
		c, err := newDemoClient(ctx, base, cfg.Data)
		if err == nil {
			err = c.load(demoDir, stdout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "demo data not (fully) loaded: %v\n", err)
		} else if err := c.story(demoDir, stdout); err != nil {
			fmt.Fprintf(stderr, "demo story interrupted: %v\n", err)
		}
		printTry(stdout, addr, cfg.Data)
	}
	return <-errc
}

// demoFiles are the native demo files, who sends each and for what, in
// the order they are loaded (hospital first: the claims register carries
// no birth date, so its patients should exist before it).
var demoFiles = []struct{ source, actor, purpose, contentType string }{
	{gen.SourceHospital, "hospital-it", "HOPERAT", "text/csv"},
	{gen.SourceCity, "gp", "TREAT", "text/csv"},
	{gen.SourcePrevention, "programme-operator", "prevention-programme-delivery", "application/x-ndjson"},
	{gen.SourceLiability, "liability-risk-manager", "liability-claim-handling", "text/csv"},
}

// demoClient talks to the demo hub with the dev tokens.
type demoClient struct {
	ctx    context.Context
	base   string
	tokens map[string]string
}

func newDemoClient(ctx context.Context, base, dataDir string) (*demoClient, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, auth.DevTokensFile))
	if err != nil {
		return nil, err
	}
	c := &demoClient{ctx: ctx, base: base}
	return c, json.Unmarshal(b, &c.tokens)
}

// call sends one request as actor for purpose; body is sent as is.
func (c *demoClient) call(method, path, actor, purpose, contentType string, body []byte) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(c.ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.tokens[actor])
	req.Header.Set("X-Purpose-Of-Use", purpose)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var answer map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil && err != io.EOF {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, answer, nil
}

// diagnostics is the first issue's text of an OperationOutcome.
func diagnostics(oo map[string]any) string {
	issues, _ := oo["issue"].([]any)
	if len(issues) == 0 {
		return ""
	}
	first, _ := issues[0].(map[string]any)
	d, _ := first["diagnostics"].(string)
	return d
}

// load uploads the four native files of demoDir through $ingest, each with
// the dev token of the actor that sends it, then the FHIR transaction
// bundles: synthea/*.json as hospital IT, and each Consent of consents.json
// as the actor that collects it (the programme operator for a programme
// consent, otherwise the hospital clinician of the patient's care team).
func (c *demoClient) load(demoDir string, stdout io.Writer) error {
	fmt.Fprintln(stdout, "\n1. Four care actors send what they already have (native files → FHIR, one shared pathway vocabulary):")
	for _, f := range demoFiles {
		name := gen.FileName(f.source)
		body, err := os.ReadFile(filepath.Join(demoDir, name))
		if err != nil {
			return fmt.Errorf("%w (run the demo from the repository root, or pass --demo-data)", err)
		}
		status, answer, err := c.call(http.MethodPost, "/$ingest?source="+f.source, f.actor, f.purpose, f.contentType, body)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("$ingest %s: status %d: %s", f.source, status, diagnostics(answer))
		}
		fmt.Fprintf(stdout, "  loaded %-28s as %-22s %s\n", name, f.actor, diagnostics(answer))
	}
	bundles, _ := filepath.Glob(filepath.Join(demoDir, "synthea", "*.json"))
	slices.Sort(bundles)
	var refused []string
	send := func(name, actor, purpose string, body []byte) error {
		status, answer, err := c.call(http.MethodPost, "", actor, purpose, "application/fhir+json", body)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			fmt.Fprintf(stdout, "  REFUSED %-27s as %-22s HTTP %d: %s\n", name, actor, status, diagnostics(answer))
			refused = append(refused, fmt.Sprintf("%s (HTTP %d)", name, status))
			return nil
		}
		entries, _ := answer["entry"].([]any)
		created := 0
		for _, e := range entries {
			if st, _ := dig(e, "response", "status").(string); strings.HasPrefix(st, "201") {
				created++
			}
		}
		fmt.Fprintf(stdout, "  loaded %-28s as %-22s transaction: %d entries, %d created\n", name, actor, len(entries), created)
		return nil
	}
	for _, path := range bundles {
		name, _ := filepath.Rel(demoDir, path)
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := send(name, "hospital-it", "HOPERAT", body); err != nil {
			return err
		}
	}
	if body, err := os.ReadFile(filepath.Join(demoDir, "consents.json")); err == nil {
		var bundle struct {
			Entry []map[string]any `json:"entry"`
		}
		if err := json.Unmarshal(body, &bundle); err != nil {
			return fmt.Errorf("consents.json: %w", err)
		}
		for i, e := range bundle.Entry {
			actor, purpose := "hospital-clinician", "TREAT"
			if strings.Contains(string(mustMarshal(dig(e, "resource", "organization"))), strings.TrimPrefix(auth.DevOperator, "https://sirene.fr|")) {
				actor, purpose = "programme-operator", "prevention-programme-delivery"
			}
			one := mustMarshal(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{e}})
			if err := send(fmt.Sprintf("consents.json#%d", i+1), actor, purpose, one); err != nil {
				return err
			}
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("the hub refused %s", strings.Join(refused, ", "))
	}
	return nil
}

func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// dig walks decoded JSON by keys and indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// demoExpected is what the story reads from expected.json.
type demoExpected struct {
	Config struct {
		AsOf string `json:"as_of"`
	} `json:"config"`
	Planted []struct {
		ID     string `json:"id"`
		INS    string `json:"ins_nir"`
		Expect string `json:"expect"`
	} `json:"planted"`
}

// story runs the demo's scenes against the loaded hub and says what each
// actor got.
func (c *demoClient) story(demoDir string, stdout io.Writer) error {
	var exp demoExpected
	if b, err := os.ReadFile(filepath.Join(demoDir, "expected.json")); err == nil {
		_ = json.Unmarshal(b, &exp)
	}
	asOf := exp.Config.AsOf
	if asOf == "" {
		asOf = time.Now().UTC().Format(time.DateOnly)
	}
	fmt.Fprintf(stdout, "\n2. Hub operations run the rupture rules (Library/rupture-*, data) over every patient, as of %s:\n", asOf)
	status, oo, err := c.call(http.MethodPost, "/$detect-ruptures?asOf="+asOf, "hospital-it", "HSYSADMIN", "", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  HTTP %d: %s\n", status, diagnostics(oo))

	// A GP of the patient's care team: a heart-failure discharge followed by
	// a GP visit on day 8, one day too late (rupture R1).
	ins := ""
	for _, p := range exp.Planted {
		if p.ID == "R1-gp-day-8" {
			ins = p.INS
		}
	}
	if ins != "" {
		fmt.Fprintf(stdout, "\n3. The GP opens the cross-setting pathway of patient INS %s (TREAT):\n", ins)
		q := "/Patient?identifier=" + url.QueryEscape("urn:oid:1.2.250.1.213.1.4.8|"+ins)
		status, found, err := c.call(http.MethodGet, q, "gp", "TREAT", "", nil)
		if err != nil {
			return err
		}
		id, _ := dig(found, "entry", 0, "resource", "id").(string)
		if status != http.StatusOK || id == "" {
			return fmt.Errorf("the GP cannot find the patient: HTTP %d", status)
		}
		status, pw, err := c.call(http.MethodGet, "/Patient/"+id+"/$pathway", "gp", "TREAT", "", nil)
		if err != nil {
			return err
		}
		sources, stages := map[string]int{}, map[string]int{}
		var ruptures, episodes []string
		entries, _ := pw["entry"].([]any)
		for _, e := range entries {
			switch dig(e, "resource", "resourceType") {
			case "DetectedIssue":
				code, _ := dig(e, "resource", "code", "coding", 0, "display").(string)
				st, _ := dig(e, "resource", "status").(string)
				ruptures = append(ruptures, code+" ("+st+")")
			case "EpisodeOfCare":
				t, _ := dig(e, "resource", "type", 0, "coding", 0, "code").(string)
				episodes = append(episodes, t)
			default:
				exts, _ := dig(e, "extension").([]any)
				for _, x := range exts {
					switch dig(x, "url") {
					case "https://example.org/fhir/StructureDefinition/pathway-source-actor":
						s, _ := dig(x, "valueCode").(string)
						sources[s]++
					case "https://example.org/fhir/StructureDefinition/pathway-stage":
						s, _ := dig(x, "valueCoding", "code").(string)
						stages[s]++
					}
				}
			}
		}
		fmt.Fprintf(stdout, "  HTTP %d: %d entries; facts by source %v; by stage %v\n  episodes %v\n  rupture alerts: %s\n",
			status, len(entries), sources, stages, episodes, strings.Join(ruptures, "; "))
		fmt.Fprintf(stdout, "  curl -s \"$B/Patient/%s/\\$pathway\" -H \"Authorization: Bearer $(tok gp)\" -H 'X-Purpose-Of-Use: TREAT'\n", id)
		status, _, err = c.call(http.MethodGet, "/Patient/"+id+"/$pathway", "mutual-prevention", "prevention-programme-reporting", "", nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  the same pathway asked by the mutual's prevention team: HTTP %d (per-patient data never reaches a mutual)\n", status)
	}

	fmt.Fprintln(stdout, "\n4. The mutual's prevention team gets an aggregated screening report only (cells under 10 suppressed):")
	start, _ := time.Parse(time.DateOnly, asOf)
	mq := "/Measure/rupture-R3-breast/$evaluate-measure?periodStart=" + start.AddDate(-1, 0, 0).Format(time.DateOnly) + "&periodEnd=" + asOf
	status, mr, err := c.call(http.MethodGet, mq, "mutual-prevention", "prevention-programme-reporting", "", nil)
	if err != nil {
		return err
	}
	pops := map[string]any{}
	groupPops, _ := dig(mr, "group", 0, "population").([]any)
	for _, p := range groupPops {
		code, _ := dig(p, "code", "coding", 0, "code").(string)
		if n := dig(p, "count"); n != nil {
			pops[code] = n
		} else {
			pops[code] = "masked"
		}
	}
	masked, cells := 0, 0
	strats, _ := dig(mr, "group", 0, "stratifier").([]any)
	for _, s := range strats {
		strata, _ := dig(s, "stratum").([]any)
		for _, st := range strata {
			ps, _ := dig(st, "population").([]any)
			for _, p := range ps {
				cells++
				if dig(p, "count") == nil {
					masked++
				}
			}
		}
	}
	fmt.Fprintf(stdout, "  HTTP %d: MeasureReport %v, rate %v; %d of %d stratum cells suppressed\n", status, pops, dig(mr, "group", 0, "measureScore", "value"), masked, cells)
	fmt.Fprintf(stdout, "  curl -s \"$B%s\" -H \"Authorization: Bearer $(tok mutual-prevention)\" -H 'X-Purpose-Of-Use: prevention-programme-reporting'\n", strings.ReplaceAll(mq, "$", "\\$"))

	fmt.Fprintln(stdout, "\n5. The mutual's claims team asks for the same report to price contracts:")
	status, oo, err = c.call(http.MethodGet, mq, "mutual-claims", "underwriting-pricing", "", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  HTTP %d: %s (a security alert, counted on /metrics)\n", status, diagnostics(oo))

	fmt.Fprintln(stdout, "\n6. The auditor sees every decision, refusals included, and checks the chain:")
	status, denied, err := c.call(http.MethodGet, "/AuditEvent?outcome=4&_summary=count", "auditor", "HCOMPL", "", nil)
	if err != nil {
		return err
	}
	_, all, err := c.call(http.MethodGet, "/AuditEvent?_summary=count", "auditor", "HCOMPL", "", nil)
	if err != nil {
		return err
	}
	_, verify, err := c.call(http.MethodGet, "/$audit-verify", "auditor", "HCOMPL", "", nil)
	if err != nil {
		return err
	}
	ok := ""
	params, _ := verify["parameter"].([]any)
	for _, p := range params {
		if dig(p, "name") == "ok" {
			ok = fmt.Sprint(dig(p, "valueBoolean"))
		}
	}
	fmt.Fprintf(stdout, "  HTTP %d: %v decisions recorded, %v refused; hash chain verified: %s\n", status, dig(all, "total"), dig(denied, "total"), ok)
	return nil
}

func printTry(stdout io.Writer, addr, dataDir string) {
	fmt.Fprintf(stdout, `
Try it (tokens in %[2]s/%[3]s, one per actor type):
  B=http://%[1]s/fhir
  tok() { python3 -c "import json,sys; print(json.load(open('%[2]s/%[3]s'))[sys.argv[1]])" "$1"; }
  # the hospital's clinician sees the patients the hospital recorded (TREAT)
  curl -s "$B/Patient?_count=3" -H "Authorization: Bearer $(tok hospital-clinician)" -H 'X-Purpose-Of-Use: TREAT'
  # a mutual asking for per-patient data, or for pricing, is refused (and alerted)
  curl -s "$B/Patient" -H "Authorization: Bearer $(tok mutual-claims)" -H 'X-Purpose-Of-Use: underwriting-pricing'
  # a researcher gets pseudonymised data
  curl -s "$B/Patient?_count=1" -H "Authorization: Bearer $(tok researcher)" -H 'X-Purpose-Of-Use: HRESCH'
  # the shared vocabulary
  curl -s "$B/ConceptMap/\$translate?system=https://smt.esante.gouv.fr/terminologie-cim-10&code=I50.9" -H "Authorization: Bearer $(tok gp)" -H 'X-Purpose-Of-Use: TREAT'
  # the auditor console: open http://%[1]s/audit/ and paste the auditor token
  curl -s http://%[1]s/metrics | grep parcours_policy
`, addr, dataDir, auth.DevTokensFile)
}
