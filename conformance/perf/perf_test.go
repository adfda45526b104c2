package perf

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSlope(t *testing.T) {
	tests := []struct {
		name   string
		xs, ys []float64
		want   float64
	}{
		{"flat", []float64{1, 2, 3, 4}, []float64{5, 5, 5, 5}, 0},
		{"exact line", []float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}, 2},
		{"noisy line", []float64{0, 1, 2, 3, 4}, []float64{0, 11, 19, 31, 39}, 9.8},
		{"falling", []float64{1, 2, 3}, []float64{9, 6, 3}, -3},
		{"one point", []float64{1}, []float64{4}, 0},
		{"same x", []float64{2, 2}, []float64{1, 9}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Slope(tt.xs, tt.ys); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Slope = %v, want %v", got, tt.want)
			}
		})
	}
}

// samples makes a soak's samples every 5s from p99s (ms) and live heaps (MiB).
func samples(p99ms []int, heapMiB []float64) []SoakSample {
	var out []SoakSample
	for i := range p99ms {
		out = append(out, SoakSample{
			At:       time.Duration(i+1) * 5 * time.Second,
			Requests: 1000,
			P99:      time.Duration(p99ms[i]) * time.Millisecond,
			HeapLive: uint64(heapMiB[i] * (1 << 20)),
		})
	}
	return out
}

func TestJudge(t *testing.T) {
	const mib = 1 << 20
	flat := []float64{40, 30, 31, 30, 32, 31, 30, 31, 32, 30, 31, 30}
	steadyP99 := []int{90, 40, 10, 11, 12, 10, 11, 13, 12, 11, 12, 14}
	tests := []struct {
		name    string
		samples []SoakSample
		errors  int64
		want    SoakVerdict // the fields compared below
	}{
		{"steady", samples(steadyP99, flat), 0,
			SoakVerdict{Steady: 10, FirstP99: 10 * time.Millisecond, LastP99: 14 * time.Millisecond, ErrorsOK: true, P99OK: true, HeapOK: true, Pass: true}},
		{"errors", samples(steadyP99, flat), 3,
			SoakVerdict{Steady: 10, Errors: 3, FirstP99: 10 * time.Millisecond, LastP99: 14 * time.Millisecond, P99OK: true, HeapOK: true}},
		{"p99 grows past 3x", samples([]int{90, 40, 10, 11, 12, 15, 18, 20, 24, 26, 28, 31}, flat), 0,
			SoakVerdict{Steady: 10, FirstP99: 10 * time.Millisecond, LastP99: 31 * time.Millisecond, ErrorsOK: true, HeapOK: true}},
		{"heap grows 1 MiB per sample, 12 MiB/min", samples(steadyP99, []float64{40, 30, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39}), 0,
			SoakVerdict{Steady: 10, FirstP99: 10 * time.Millisecond, LastP99: 14 * time.Millisecond, ErrorsOK: true, P99OK: true}},
		{"too short", samples([]int{10, 10, 10, 10}, []float64{1, 1, 1, 1}), 0,
			SoakVerdict{Steady: 2, ErrorsOK: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.samples, tt.errors, 10*time.Second, 5*time.Second, 3, 4*mib)
			got := SoakVerdict{Steady: v.Steady, Errors: v.Errors, FirstP99: v.FirstP99, LastP99: v.LastP99,
				ErrorsOK: v.ErrorsOK, P99OK: v.P99OK, HeapOK: v.HeapOK, Pass: v.Pass}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
			if (v.Problem != "") != (v.Steady < 3) {
				t.Errorf("problem %q with %d steady samples", v.Problem, v.Steady)
			}
		})
	}
	// The slope is the fitted one: 1 MiB every 5 s is 12 MiB a minute.
	v := Judge(samples(steadyP99, []float64{40, 30, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39}), 0, 10*time.Second, 5*time.Second, 3, 4*mib)
	if math.Abs(v.HeapSlope/mib-12) > 1e-6 {
		t.Errorf("heap slope %.3f MiB/min, want 12", v.HeapSlope/mib)
	}
}

func TestSoakReportString(t *testing.T) {
	s := samples([]int{20, 12, 10, 11, 12, 13}, []float64{30, 30, 30, 30, 31, 30})
	r := &SoakReport{Setup: "policy + audit", Conns: 16, Scenario: "mixed", Samples: s}
	r.Verdict = Judge(s, 0, 10*time.Second, 5*time.Second, 3, 4<<20)
	out := r.String()
	for _, want := range []string{"errors", "p99 bounded", "heap not growing", "soak: PASS", "30.0 MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("soak report lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n 30s ") + strings.Count(out, "\n  30s "); n != 1 {
		t.Errorf("want one line for the sample at 30s, got %d:\n%s", n, out)
	}
}

func TestRatiosAndGoals(t *testing.T) {
	rep := &Report{Rows: []Row{
		{Key: RowFloor, Rate: 40000, P50: time.Millisecond},
		{Key: RowGetOff, Rate: 20000, P50: time.Millisecond},
		{Key: RowGetPolicy, Rate: 15000, P50: time.Millisecond},
		{Key: RowGetAudit, Rate: 9000, P50: time.Millisecond},
		{Key: RowGetTrace, Rate: 8000, P50: time.Millisecond},
		{Key: RowMedplum, Rate: 5000, P50: time.Millisecond},
		{Key: RowDecideMemo, Rate: 100000, P50: 10 * time.Microsecond},
		{Key: RowDecideEval, Rate: 2000, P50: 500 * time.Microsecond},
		{Key: RowOPA, Rate: 1000, P50: 5 * time.Millisecond, Errors: 2},
		{Key: RowCreateOff, Skipped: "not today"},
		{Key: RowFsync, Rate: 4000},
		{Key: RowTransactions, Rate: 9999.6, Unit: "resources/s"},
		{Key: RowFloorSync, Rate: 10000},
		{Key: RowGetSync, Rate: 6000},
		{Key: RowStoreFloor, Rate: 6000},
		{Key: RowIngest, Rate: 20000, Unit: "rows/s"},
	}}
	rs, goals := ratios(rep)
	got := map[string]string{}
	for _, r := range rs {
		got[r.Name] = r.String()
	}
	want := map[string]string{
		"policy on / off (GET)":                                                               "0.75×",
		"audited / unaudited (GET)":                                                           "0.60×",
		"traced / untraced (GET, policy + audit)":                                             "0.89×",
		"Parcours GET policy + audit + tracing / Medplum GET":                                 "1.60×",
		"Parcours GET policy off / Medplum GET":                                               "4.00×",
		"Parcours GET policy off / floor":                                                     "0.50×",
		"OPA sidecar p50 / in-process memoised decision p50":                                  "500.00× (with errors)",
		"OPA sidecar p50 / in-process evaluated decision p50":                                 "10.00× (with errors)",
		"OPA sidecar decisions/s / in-process evaluated decisions/s":                          "0.50× (with errors)",
		"durable creates policy off / fsync rate":                                             "n/a (create-off: not today)",
		"durable creates policy + audit / fsync rate":                                         "n/a (create-on not run)",
		"ceiling of audited / unaudited here: policy on + a bare group fdatasync / policy on": "0.40×",
		"ceiling of any durably audited GET / Medplum GET here: durable floor / Medplum GET":  "2.00×",
		"durable floor / floor":                                                               "0.25×",
		"ceiling of durable creates / fsync rate here: store floor / fsync rate":              "1.50×",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ratios (-want +got):\n%s", diff)
	}
	verdicts := map[string]string{}
	for _, g := range goals {
		verdicts[g.Name] = g.Verdict
	}
	wantVerdicts := map[string]string{
		"Parcours GET with policy + audit + tracing ≥ 1.5× Medplum router's GET": Pass,
		"policy on ≥ 0.7× off":                             Pass,
		"audited ≥ 0.8× unaudited at 16 connections":       Fail,
		"Synthea transaction bundles ≥ 10 000 resources/s": Fail,
		"durable creates (policy off) ≥ 1× the fsync rate": NotMeasured,
		"$ingest city-activity ≥ 20 000 rows/s":            Pass,
	}
	if diff := cmp.Diff(wantVerdicts, verdicts); diff != "" {
		t.Errorf("goals (-want +got):\n%s", diff)
	}

	if g := goals[3]; g.Ratio.String() != "10 000 resources/s" {
		t.Errorf("absolute goal printed %q, want the rate in its unit", g.Ratio.String())
	}

	// Without tracing the first goal falls back to policy + audit, and
	// says so; without Medplum it is not measured.
	rep.Rows[4] = Row{Key: RowGetTrace, Skipped: "tracing not available"}
	_, goals = ratios(rep)
	if g := goals[0]; g.Ratio.Num != RowGetAudit || !strings.Contains(g.Ratio.Name, "tracing not available") || g.Ratio.String() != "1.80×" || g.Verdict != Pass {
		t.Errorf("goal without tracing: %+v", g)
	}
	rep.Rows[5] = Row{Key: RowMedplum, Skipped: "--skip-node"}
	if _, goals = ratios(rep); goals[0].Verdict != NotMeasured {
		t.Errorf("goal without Medplum: %s, want %s", goals[0].Verdict, NotMeasured)
	}
}

func TestReportRendering(t *testing.T) {
	rep := &Report{
		Started: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Machine: "test machine", Load: "16 connections",
		Rows: []Row{
			{Key: RowFloor, Name: "floor", Unit: "req/s", Rate: 40000, P50: 300 * time.Microsecond, P99: time.Millisecond},
			{Key: RowGetOff, Name: "GET | off", Unit: "req/s", Rate: 20000, P50: 500 * time.Microsecond, P99: 2 * time.Millisecond},
			{Key: RowMedplum, Name: "Medplum", Skipped: "--skip-node"},
			{Key: RowIngest, Name: "ingest", Unit: "rows/s", Rate: 1234.4, Note: "10 rows"},
		},
	}
	rep.Ratios, rep.Goals = ratios(rep)
	text, mdown := rep.String(), rep.Markdown("go run ./cmd/parcours perf")
	for _, want := range []string{"floor", "GET | off", "40 000", "20 000", "0.50", "1 234", "--skip-node", "Goals", "NOT MEASURED"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
	for _, want := range []string{"| floor | 40 000 req/s | 300µs | 1ms | 1.00 | 0 |", `| GET \| off | 20 000 req/s |`, "| Medplum | skipped |", "go run ./cmd/parcours perf", "| 1 234 rows/s |"} {
		if !strings.Contains(mdown, want) {
			t.Errorf("Markdown report lacks %q:\n%s", want, mdown)
		}
	}
}

func TestNarrow(t *testing.T) {
	bundle := map[string]any{"entry": []any{
		map[string]any{"fullUrl": "urn:uuid:p", "resource": map[string]any{"resourceType": "Patient"}},
		map[string]any{"fullUrl": "urn:uuid:m", "resource": map[string]any{"resourceType": "Medication"}},
		map[string]any{"fullUrl": "urn:uuid:rx", "resource": map[string]any{"resourceType": "MedicationRequest",
			"subject": map[string]any{"reference": "urn:uuid:p"}, "medicationReference": map[string]any{"reference": "urn:uuid:m"}}},
		map[string]any{"fullUrl": "urn:uuid:c", "resource": map[string]any{"resourceType": "Claim",
			"prescription": map[string]any{"reference": "urn:uuid:rx"}}},
		map[string]any{"fullUrl": "urn:uuid:o", "resource": map[string]any{"resourceType": "Observation",
			"subject": map[string]any{"reference": "urn:uuid:p"}}},
	}}
	if n := narrow(bundle); n != 2 {
		t.Errorf("kept %d entries, want 2", n)
	}
	var kept []string
	for _, e := range bundle["entry"].([]any) {
		kept = append(kept, e.(map[string]any)["fullUrl"].(string))
	}
	if diff := cmp.Diff([]string{"urn:uuid:p", "urn:uuid:o"}, kept); diff != "" {
		t.Errorf("kept entries (-want +got):\n%s", diff)
	}
}
