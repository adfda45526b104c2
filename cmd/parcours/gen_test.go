package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings/gen"
)

var update = flag.Bool("update", false, "rewrite testdata/demo from `parcours gen --out testdata/demo --patients 1000 --seed 1`")

const demoDir = "../../testdata/demo"

// demoArgs is the command that makes testdata/demo (its README says so).
var demoArgs = []string{"gen", "--patients", "1000", "--seed", "1"}

func readExpected(t *testing.T, dir string) gen.Expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, gen.ExpectedFile))
	if err != nil {
		t.Fatal(err)
	}
	var exp gen.Expected
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatalf("%s: %v", gen.ExpectedFile, err)
	}
	return exp
}

func TestGenCommand(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	var out bytes.Buffer
	for _, dir := range []string{a, b} {
		out.Reset()
		if err := run(ctx, []string{"gen", "--out", dir, "--patients", "40", "--seed", "2", "--bad-rows", "4"}, &out, io.Discard); err != nil {
			t.Fatalf("gen: %v", err)
		}
	}
	if !strings.Contains(out.String(), "rows/s") || !strings.Contains(out.String(), "no-gp-after-discharge") {
		t.Errorf("gen output lacks the summary:\n%s", out.String())
	}
	for _, name := range []string{"hospital-stays.csv", "city-activity.csv", "prevention-programme.ndjson", "liability-claims.csv", gen.ExpectedFile} {
		x, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		y, _ := os.ReadFile(filepath.Join(b, name))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s: %d bytes, not identical over two runs of the same command", name, len(x))
		}
	}
	exp := readExpected(t, a)
	if exp.Config.Patients != 40 || exp.Config.Seed != 2 || exp.Config.AsOf != "2026-10-01" || len(exp.BadRows) != 4 {
		t.Errorf("expected.json config %+v with %d bad rows", exp.Config, len(exp.BadRows))
	}

	// The large-file mode writes one file of exactly --rows rows.
	c := t.TempDir()
	if err := run(ctx, []string{"gen", "--out", c, "--source", "city-activity", "--rows", "700", "--as-of", "2026-06-30"}, io.Discard, io.Discard); err != nil {
		t.Fatalf("gen --rows: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(c, "city-activity.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != 701 {
		t.Errorf("city-activity.csv has %d lines, want a header and 700 rows", n)
	}
	if _, err := os.Stat(filepath.Join(c, "hospital-stays.csv")); err == nil {
		t.Error("the large-file mode wrote another source")
	}

	for _, args := range [][]string{
		{"gen"},
		{"gen", "--out", c, "--source", "city-activity"},
		{"gen", "--out", c, "--rows", "10"},
		{"gen", "--out", c, "--source", "pharmacy", "--rows", "10"},
		{"gen", "--out", c, "--as-of", "1st October"},
		{"gen", "--out", c, "--patients", "0"},
		{"gen", "--out", c, "extra"},
	} {
		var ee exitError
		if err := run(ctx, args, io.Discard, io.Discard); !errors.As(err, &ee) || ee != 2 {
			t.Errorf("%v: %v, want exit status 2", args, err)
		}
	}
	var help bytes.Buffer
	if err := run(ctx, []string{"gen", "--help"}, io.Discard, &help); !errors.Is(err, flag.ErrHelp) || !strings.Contains(help.String(), "-patients") {
		t.Errorf("gen --help: %v\n%s", err, help.String())
	}
}

// TestDemoData regenerates testdata/demo with the command its README gives
// and compares the bytes: the committed data cannot drift from the
// generator (-update rewrites it). The README's table of planted counts
// must be the one expected.json gives.
func TestDemoData(t *testing.T) {
	dir := t.TempDir()
	if err := run(context.Background(), append(demoArgs, "--out", dir), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, src := range append(append([]string{}, gen.Sources...), "") {
		name := gen.FileName(src)
		if src == "" {
			name = gen.ExpectedFile
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(demoDir, name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./cmd/parcours -run TestDemoData -update writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what `parcours %s --out testdata/demo` makes now: run go test ./cmd/parcours -run TestDemoData -update (and update its README)", path, strings.Join(demoArgs, " "))
		}
	}
	readme, err := os.ReadFile(filepath.Join(demoDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	table := demoTable(readExpected(t, dir))
	if !bytes.Contains(readme, []byte(table)) {
		t.Errorf("testdata/demo/README.md lacks the counts of expected.json; its table should read:\n%s", table)
	}
}

// demoTable is the README's table of rupture counts.
func demoTable(exp gen.Expected) string {
	var b strings.Builder
	b.WriteString("| Rule | Code | Index events | Censored | Excluded | Denominator | Ruptures | Patients (denominator) | Patients with a rupture |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, rule := range []string{"R1", "R2", "R3-breast", "R3-colorectal", "R5", "R7"} {
		c := exp.Rules[rule]
		fmt.Fprintf(&b, "| %s | `%s` | %d | %d | %d | %d | %d | %d | %d |\n", rule, c.Code, c.IndexEvents, c.Censored, c.Excluded, c.Denominator, c.Ruptures, c.Patients, c.PatientsWithRupture)
	}
	return b.String()
}

// devHub starts the real hub in developer mode on :0.
func devHub(t *testing.T) (base, data string, tokens map[string]string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	data = t.TempDir()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveConfig{Addr: "127.0.0.1:0", Data: data, MaxBody: 64 << 20, Dev: true}, io.Discard, io.Discard, ready)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr := <-ready:
		base = "http://" + addr + "/fhir"
	case err := <-done:
		t.Fatalf("serve ended before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	b, err := os.ReadFile(filepath.Join(data, "dev-tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &tokens); err != nil {
		t.Fatal(err)
	}
	return base, data, tokens
}

// TestGenRoundTrip generates a small population, ingests the four files
// into a real hub through HTTP $ingest (as `parcours demo` does) and finds
// in it, by FHIR searches, what expected.json announces; a second ingest
// of the same files changes nothing.
func TestGenRoundTrip(t *testing.T) {
	dir := t.TempDir()
	exp, err := gen.GenerateDir(gen.Config{Patients: 60, Seed: 7}, dir)
	if err != nil {
		t.Fatal(err)
	}
	base, data, tokens := devHub(t)
	// The researcher (HRESCH) reads every patient's data, pseudonymised:
	// the counts are the hub's whole content.
	get := func(path string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tokens["researcher"])
		req.Header.Set("X-Purpose-Of-Use", "HRESCH")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, %v", path, resp.StatusCode, err)
		}
		return body
	}
	counts := func() map[string]int {
		t.Helper()
		out := map[string]int{}
		for typ := range exp.Resources {
			total, _ := get("/" + typ + "?_summary=count")["total"].(float64)
			out[typ] = int(total)
		}
		return out
	}
	var log bytes.Buffer
	dc, err := newDemoClient(context.Background(), base, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.load(dir, &log); err != nil {
		t.Fatalf("ingest: %v\n%s", err, log.String())
	}
	if n := strings.Count(log.String(), " 0 with issues"); n != 4 {
		t.Fatalf("%d files ingested without issues, want 4:\n%s", n, log.String())
	}
	first := counts()
	if diff := cmp.Diff(exp.Resources, first); diff != "" {
		t.Errorf("resources in the hub (-expected.json +hub):\n%s", diff)
	}

	// The same counts, from the files themselves.
	stays, visits, labs := 0, 0, 0
	rows := func(name string) [][]string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var out [][]string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
			out = append(out, strings.Split(l, ";"))
		}
		return out
	}
	ins := map[string]bool{}
	unlinked := 0
	stays = len(rows("hospital-stays.csv"))
	for _, r := range rows("hospital-stays.csv") {
		if r[2] == "" {
			unlinked++
		}
		ins[r[2]] = true
	}
	for _, r := range rows("city-activity.csv") {
		switch r[6] {
		case "consultation", "teleconsultation":
			visits++
		case "lab-result":
			labs++
		}
		if r[2] == "" {
			unlinked++
		}
		ins[r[2]] = true
	}
	for _, r := range rows("liability-claims.csv") {
		if r[5] == "" {
			unlinked++
		}
		ins[r[5]] = true
	}
	pb, _ := os.ReadFile(filepath.Join(dir, "prevention-programme.ndjson"))
	for _, l := range strings.Split(strings.TrimSpace(string(pb)), "\n") {
		var m struct {
			INS string `json:"ins_nir"`
		}
		json.Unmarshal([]byte(l), &m)
		if m.INS == "" {
			unlinked++
		}
		ins[m.INS] = true
	}
	delete(ins, "")
	if first["Patient"] != len(ins)+unlinked || first["Patient"] != exp.Patients.Total {
		t.Errorf("%d Patients in the hub, %d distinct INS-NIR and %d unlinked rows in the files (expected.json %+v)", first["Patient"], len(ins), unlinked, exp.Patients)
	}
	if first["Encounter"] != stays+visits {
		t.Errorf("%d Encounters, want %d stays + %d consultations", first["Encounter"], stays, visits)
	}
	if first["AdverseEvent"] != len(rows("liability-claims.csv")) {
		t.Errorf("%d AdverseEvents for %d claims", first["AdverseEvent"], len(rows("liability-claims.csv")))
	}

	// Every lab result is an Observation with its pathway stage; a FIT is
	// screening.
	var labObs []map[string]any
	next := "/Observation?category=laboratory&_count=100"
	for next != "" {
		page := get(next)
		next = ""
		for _, l := range page["link"].([]any) {
			if l := l.(map[string]any); l["relation"] == "next" {
				u, _ := url.Parse(l["url"].(string))
				next = strings.TrimPrefix(u.Path, "/fhir") + "?" + u.RawQuery
			}
		}
		for _, e := range page["entry"].([]any) {
			labObs = append(labObs, e.(map[string]any)["resource"].(map[string]any))
		}
	}
	if len(labObs) != labs {
		t.Errorf("%d laboratory Observations for %d lab-result rows", len(labObs), labs)
	}
	stages := map[string]int{}
	for _, o := range labObs {
		stage := ""
		for _, x := range o["extension"].([]any) {
			if x := x.(map[string]any); x["url"] == "https://example.org/fhir/StructureDefinition/pathway-stage" {
				stage, _ = x["valueCoding"].(map[string]any)["code"].(string)
			}
		}
		code := o["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"]
		if stage == "" {
			t.Errorf("Observation %v (%v) has no pathway stage", o["id"], code)
		}
		if code == "29771-3" && stage != "depistage" {
			t.Errorf("FIT Observation %v at stage %q, want depistage", o["id"], stage)
		}
		stages[stage]++
	}
	if stages["surveillance-biologique"] == 0 || stages["bilan-biologique"] == 0 {
		t.Errorf("lab stages %v: want follow-up results (HbA1c of treated diabetics) and others", stages)
	}

	// Ingesting the same files again stores nothing new.
	log.Reset()
	if err := dc.load(dir, &log); err != nil {
		t.Fatalf("second ingest: %v\n%s", err, log.String())
	}
	// Provenance records an upload: a second upload is a second one.
	second := counts()
	if second["Provenance"] != 2*first["Provenance"] {
		t.Errorf("%d Provenances after two uploads of 4 files, want %d", second["Provenance"], 2*first["Provenance"])
	}
	delete(first, "Provenance")
	delete(second, "Provenance")
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("a second ingest changed the hub (-first +second):\n%s", diff)
	}
}

// TestDemoBundles loads the FHIR bundles of testdata/demo (the Synthea
// patients and consents.json) on a hub without authentication or policy,
// after the native rows of the patients the consents name: every entry is
// created, and each Consent points at the Patient of its INS-NIR. Whether
// the policy lets hospital IT send them is another question (TestDemo
// shows what `parcours demo` does with them).
func TestDemoBundles(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveConfig{Addr: "127.0.0.1:0", Data: t.TempDir(), MaxBody: 64 << 20, insecure: true}, io.Discard, io.Discard, ready)
	}()
	base := "http://" + <-ready + "/fhir"
	defer func() { cancel(); <-done }()
	do := func(method, path, contentType string, body []byte) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	consents, err := os.ReadFile(filepath.Join(demoDir, "consents.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Entry []struct {
			Resource struct {
				Patient struct{ Reference string }
			}
		}
	}
	if err := json.Unmarshal(consents, &bundle); err != nil {
		t.Fatal(err)
	}
	insOf := map[string]bool{}
	for _, e := range bundle.Entry {
		_, ins, ok := strings.Cut(e.Resource.Patient.Reference, "Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|")
		if !ok {
			t.Fatalf("consent patient %q is not a conditional reference on the INS-NIR", e.Resource.Patient.Reference)
		}
		insOf[ins] = true
	}
	if len(bundle.Entry) != 3 || len(insOf) != 3 {
		t.Fatalf("consents.json: %d consents of %d patients, want 3 and 3", len(bundle.Entry), len(insOf))
	}
	// The native rows of those patients only.
	for _, f := range []struct{ source, file string }{{"hospital-stays", "hospital-stays.csv"}, {"city-activity", "city-activity.csv"}} {
		b, err := os.ReadFile(filepath.Join(demoDir, f.file))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(b), "\n")
		keep := lines[0]
		for _, l := range lines[1:] {
			if fields := strings.Split(l, ";"); len(fields) > 3 && insOf[fields[2]] {
				keep += l
			}
		}
		if status, oo := do(http.MethodPost, "/$ingest?source="+f.source, "text/csv", []byte(keep)); status != http.StatusOK {
			t.Fatalf("$ingest %s: %d %v", f.source, status, oo)
		}
	}
	files, _ := filepath.Glob(filepath.Join(demoDir, "synthea", "*.json"))
	if len(files) != 3 {
		t.Fatalf("%d Synthea bundles in testdata/demo/synthea, want 3", len(files))
	}
	for _, f := range append(files, filepath.Join(demoDir, "consents.json")) {
		b, _ := os.ReadFile(f)
		status, resp := do(http.MethodPost, "", "application/fhir+json", b)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %v", filepath.Base(f), status, resp)
		}
		for i, e := range resp["entry"].([]any) {
			if s := e.(map[string]any)["response"].(map[string]any)["status"].(string); !strings.HasPrefix(s, "201") {
				t.Errorf("%s entry %d: %s", filepath.Base(f), i, s)
			}
		}
	}
	_, found := do(http.MethodGet, "/Consent?identifier=https://example.org/fhir/sid/demo-consent|&_count=10", "", nil)
	entries, _ := found["entry"].([]any)
	if len(entries) != 3 {
		t.Fatalf("%d demo consents found, want 3", len(entries))
	}
	for _, e := range entries {
		ref := e.(map[string]any)["resource"].(map[string]any)["patient"].(map[string]any)["reference"].(string)
		status, p := do(http.MethodGet, "/"+ref, "", nil)
		if status != http.StatusOK {
			t.Fatalf("consent patient %s: status %d", ref, status)
		}
		ids, _ := p["identifier"].([]any)
		ok := false
		for _, id := range ids {
			if v, _ := id.(map[string]any)["value"].(string); insOf[v] {
				ok = true
			}
		}
		if !ok {
			t.Errorf("consent patient %s carries none of the INS-NIR of consents.json: %v", ref, ids)
		}
	}
}
