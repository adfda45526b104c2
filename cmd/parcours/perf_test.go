package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestPerfReport runs `parcours perf` without the Node and OPA peers, very
// briefly, and checks that the table has every row and that the ratios are
// those of the measured numbers. No timing is asserted.
func TestPerfReport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts eight hubs and drives each for a fraction of a second (-short)")
	}
	out := filepath.Join(t.TempDir(), "perf.md")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"perf",
		"--duration", "300ms", "--warmup", "100ms", "--skip-node", "--skip-opa", "--quiet",
		"--ingest-rows", "100", "--corpus", filepath.Join(t.TempDir(), "no-corpus"), "--testdata", "../../testdata",
		"--data", t.TempDir(), "--out", out,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("perf: %v\n%s", err, stderr.String())
	}
	text := stdout.String()
	mdBytes, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("--out: %v", err)
	}
	md := string(mdBytes)

	// Every target has its row, measured or skipped with the reason.
	rates := map[string]float64{} // Markdown row name → rate
	rowRE := regexp.MustCompile(`(?m)^\| (.+?) \| ([0-9 .]+) (req/s|rows/s|fsync/s|decisions/s|resources/s) \|`)
	for _, m := range rowRE.FindAllStringSubmatch(md, -1) {
		v, err := strconv.ParseFloat(strings.ReplaceAll(m[2], " ", ""), 64)
		if err != nil {
			t.Fatalf("rate %q of %q: %v", m[2], m[1], err)
		}
		rates[m[1]] = v
	}
	measured := []string{
		"floor: net/http handler, fixed JSON",
		"Parcours GET Patient/{id}, policy off",
		"Parcours GET Patient/{id}, policy on, no audit",
		"Parcours GET Patient/{id}, policy + audit",
		"Parcours GET Patient/{id}, policy + audit + tracing",
		"policy decision in process, memoised (as a GET)",
		"policy decision in process, evaluated (memo missed)",
		"Parcours POST Patient (durable), policy off",
		"Parcours POST Patient (durable), policy + audit",
		"fsync of the data directory's disk (4 KiB write + fsync)",
		"$ingest city-activity (one file, policy + audit)",
		"search Observation?patient={id}&code={code}",
		"Synthea transaction bundles, policy off",
	}
	for _, name := range measured {
		if rates[name] <= 0 {
			t.Errorf("no measured row %q in the Markdown report:\n%s", name, md)
		}
		if !strings.Contains(text, name) {
			t.Errorf("no row %q in the printed report", name)
		}
	}
	for _, skipped := range []string{
		`| Medplum fhir-router GET Patient/{id}, MemoryRepository | skipped | | | | | --skip-node |`,
		`| OPA sidecar: POST /v1/data/parcours/authz/decision | skipped | | | | | --skip-opa |`,
	} {
		if !strings.Contains(md, skipped) {
			t.Errorf("the Markdown report lacks %q", skipped)
		}
	}
	if !strings.Contains(md, "testdata/fhir (Synthea corpus absent") {
		t.Error("the report does not say the searches ran over testdata/fhir for want of the corpus")
	}
	if !strings.Contains(md, "testdata/demo/synthea (Synthea corpus absent") {
		t.Error("the report does not say the transactions posted testdata/demo/synthea for want of the corpus")
	}

	// The ratios are the measured rates' (rounded as printed).
	ratioRE := regexp.MustCompile(`(?m)^\| (.+?) \| ([0-9.]+)× \|`)
	printed := map[string]float64{}
	for _, m := range ratioRE.FindAllStringSubmatch(md, -1) {
		printed[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	for _, c := range []struct{ ratio, num, den string }{
		{"policy on / off (GET)", measured[2], measured[1]},
		{"audited / unaudited (GET)", measured[3], measured[2]},
		{"traced / untraced (GET, policy + audit)", measured[4], measured[3]},
		{"Parcours GET policy off / floor", measured[1], measured[0]},
		{"durable creates policy off / fsync rate", measured[7], measured[9]},
		{"durable creates policy + audit / fsync rate", measured[8], measured[9]},
	} {
		got, ok := printed[c.ratio]
		want := rates[c.num] / rates[c.den]
		// Rates are printed to the unit and ratios to 0.01.
		if !ok || math.Abs(got-want) > 0.006+want*2/rates[c.den] {
			t.Errorf("ratio %q printed %v (found %v), want %s / %s = %.3f", c.ratio, got, ok, c.num, c.den, want)
		}
	}
	goals := regexp.MustCompile(`(?m)^\| (.+?) \| (.+?) \| (PASS|FAIL|NOT MEASURED) \|$`).FindAllStringSubmatch(md, -1)
	if len(goals) != 6 {
		t.Fatalf("%d goals in the Markdown report, want 6:\n%s", len(goals), md)
	}
	// Two goals are absolute: the transactions' and the ingest's rates, as
	// in their rows.
	if g := goals[3]; !strings.HasSuffix(g[2], " resources/s") || !strings.Contains(md, "| Synthea transaction bundles, policy off | "+g[2]+" |") {
		t.Errorf("goal %q: measured %q, want the rate of the transactions row", g[1], g[2])
	}
	if g := goals[5]; !strings.HasSuffix(g[2], " rows/s") || !strings.Contains(md, "| $ingest city-activity (one file, policy + audit) | "+g[2]+" |") {
		t.Errorf("goal %q: measured %q, want the rate of the $ingest row", g[1], g[2])
	}
	if g := goals[4]; g[2] != fmt.Sprintf("%.2f×", printed["durable creates policy off / fsync rate"]) {
		t.Errorf("goal %q: measured %q, want the ratio printed above it", g[1], g[2])
	}
	goals = goals[:3]
	if goals[0][3] != "NOT MEASURED" || !strings.Contains(goals[0][2], "--skip-node") {
		t.Errorf("the Medplum goal without Medplum: %q", goals[0][0])
	}
	for _, g := range goals[1:] {
		v, err := strconv.ParseFloat(strings.TrimSuffix(g[2], "×"), 64)
		if err != nil || v != printed[map[string]string{"policy on ≥ 0.7× off": "policy on / off (GET)", "audited ≥ 0.8× unaudited at 16 connections": "audited / unaudited (GET)"}[g[1]]] {
			t.Errorf("goal %q: measured %q, want the ratio printed above it", g[1], g[2])
		}
	}
	if !strings.Contains(text, "Goals") || !strings.Contains(md, "go run ./cmd/parcours perf --duration 300ms") {
		t.Errorf("report without its Goals block or reproduce line")
	}
}

// TestPerfSoak runs a three-second soak: the report has its samples and the
// three verdict lines, and the hub answered every request. Whether p99 and
// the heap pass in three seconds on a shared machine is not asserted.
func TestPerfSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-second soak (-short)")
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"perf", "--soak", "3s", "--interval", "500ms", "--settle", "1s", "--warmup", "200ms", "--quiet", "--data", t.TempDir()}, &stdout, &stderr)
	var ee exitError
	if err != nil && !(errors.As(err, &ee) && ee == 1) {
		t.Fatalf("soak: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	samples := regexp.MustCompile(`(?m)^\s+[0-9.]+m?s\s+[0-9 .]+\s+0\s+\S+\s+\S+\s+[0-9.]+ MiB\s+[0-9.]+ MiB\s*$`).FindAllString(out, -1)
	if len(samples) < 5 || len(samples) > 7 {
		t.Errorf("%d sample lines with zero errors, want 5 to 7 (3s every 500ms):\n%s", len(samples), out)
	}
	for _, want := range []string{`errors\s+0 in [1-9][0-9]* requests \(want 0\)\s+PASS`, `p99 bounded\s+last interval`, `heap not growing\s+live heap slope`, `\nsoak: (PASS|FAIL)\n`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("soak report lacks %s:\n%s", want, out)
		}
	}
	if (err == nil) != strings.Contains(out, "soak: PASS") {
		t.Errorf("exit %v does not match the verdict:\n%s", err, out)
	}
}

func TestPerfHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"perf", "--help"}, &out, &errOut); err != nil && !strings.Contains(err.Error(), "help") {
		t.Fatalf("perf --help: %v", err)
	}
	for _, flag := range []string{"-skip-node", "-skip-opa", "-out", "-soak", "-duration", "-conns"} {
		if !strings.Contains(errOut.String(), flag) {
			t.Errorf("perf --help lacks %s:\n%s", flag, errOut.String())
		}
	}
}
