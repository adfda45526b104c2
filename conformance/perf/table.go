package perf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// A Ratio compares two rows: their rates, or their median latencies. A
// Ratio without Den is the rate of Num itself (an absolute goal), in
// Num's unit.
type Ratio struct {
	Name     string
	Num, Den string // row keys
	Unit     string // set by compute when Den is empty: the rate's unit
	Latency  bool   // p50 of Num over p50 of Den, instead of rate over rate
	Value    float64
	Missing  string // why Value could not be computed; empty when it was
	Errors   bool   // one of the rows had errors
}

// A Goal is a ratio the issue asks for, with its verdict.
type Goal struct {
	Name   string
	Ratio  Ratio
	Target float64 // the ratio must be at least Target
	// Verdict is PASS, FAIL, or NOT MEASURED.
	Verdict string
}

// Verdicts.
const (
	Pass        = "PASS"
	Fail        = "FAIL"
	NotMeasured = "NOT MEASURED"
)

// ratios computes the named ratios and the goals from the measured rows.
func ratios(rep *Report) ([]Ratio, []Goal) {
	full := Ratio{Name: "Parcours GET policy + audit + tracing / Medplum GET", Num: RowGetTrace, Den: RowMedplum}
	if row, ok := rep.Row(RowGetTrace); ok && !row.Measured() {
		full = Ratio{Name: "Parcours GET policy + audit (tracing not available) / Medplum GET", Num: RowGetAudit, Den: RowMedplum}
	}
	rs := []Ratio{
		{Name: "policy on / off (GET)", Num: RowGetPolicy, Den: RowGetOff},
		{Name: "audited / unaudited (GET)", Num: RowGetAudit, Den: RowGetPolicy},
		{Name: "traced / untraced (GET, policy + audit)", Num: RowGetTrace, Den: RowGetAudit},
		full,
		{Name: "Parcours GET policy off / Medplum GET", Num: RowGetOff, Den: RowMedplum},
		{Name: "Parcours GET policy off / floor", Num: RowGetOff, Den: RowFloor},
		{Name: "OPA sidecar p50 / in-process memoised decision p50", Num: RowOPA, Den: RowDecideMemo, Latency: true},
		{Name: "OPA sidecar p50 / in-process evaluated decision p50", Num: RowOPA, Den: RowDecideEval, Latency: true},
		{Name: "OPA sidecar decisions/s / in-process evaluated decisions/s", Num: RowOPA, Den: RowDecideEval},
		{Name: "durable creates policy off / fsync rate", Num: RowCreateOff, Den: RowFsync},
		{Name: "durable creates policy + audit / fsync rate", Num: RowCreateOn, Den: RowFsync},
		{Name: "ceiling of durable creates / fsync rate here: store floor / fsync rate", Num: RowStoreFloor, Den: RowFsync},
		{Name: "ceiling of audited / unaudited here: policy on + a bare group fdatasync / policy on", Num: RowGetSync, Den: RowGetPolicy},
		{Name: "ceiling of any durably audited GET / Medplum GET here: durable floor / Medplum GET", Num: RowFloorSync, Den: RowMedplum},
		{Name: "durable floor / floor", Num: RowFloorSync, Den: RowFloor},
	}
	for i := range rs {
		rs[i].compute(rep)
	}
	synthea := Ratio{Name: "Synthea transaction bundles", Num: RowTransactions}
	synthea.compute(rep)
	ingest := Ratio{Name: "$ingest", Num: RowIngest}
	ingest.compute(rep)
	goals := []Goal{
		{Name: "Parcours GET with policy + audit + tracing ≥ 1.5× Medplum router's GET", Ratio: rs[3], Target: 1.5},
		{Name: "policy on ≥ 0.7× off", Ratio: rs[0], Target: 0.7},
		{Name: "audited ≥ 0.8× unaudited at 16 connections", Ratio: rs[1], Target: 0.8},
		{Name: "Synthea transaction bundles ≥ 10 000 resources/s", Ratio: synthea, Target: 10000},
		{Name: "durable creates (policy off) ≥ 1× the fsync rate", Ratio: rs[9], Target: 1},
		{Name: "$ingest city-activity ≥ 20 000 rows/s", Ratio: ingest, Target: 20000},
	}
	for i := range goals {
		g := &goals[i]
		switch {
		case g.Ratio.Missing != "":
			g.Verdict = NotMeasured
		case g.Ratio.Errors || g.Ratio.Value < g.Target:
			g.Verdict = Fail
		default:
			g.Verdict = Pass
		}
	}
	return rs, goals
}

func (r *Ratio) compute(rep *Report) {
	num, ok1 := rep.Row(r.Num)
	den, ok2 := rep.Row(r.Den)
	switch {
	case !ok1 || !num.Measured():
		r.Missing = missing(num, ok1, r.Num)
	case r.Den == "":
		r.Value, r.Unit = num.Rate, num.Unit
	case !ok2 || !den.Measured():
		r.Missing = missing(den, ok2, r.Den)
	case r.Latency && den.P50 > 0:
		r.Value = float64(num.P50) / float64(den.P50)
	case r.Latency:
		r.Missing = r.Den + ": no latency"
	default:
		r.Value = num.Rate / den.Rate
	}
	r.Errors = num.Errors > 0 || den.Errors > 0
}

func missing(row Row, ok bool, key string) string {
	switch {
	case !ok:
		return key + " not run"
	case row.Skipped != "":
		return key + ": " + row.Skipped
	default:
		return key + ": nothing measured"
	}
}

func (r Ratio) String() string {
	if r.Missing != "" {
		return "n/a (" + r.Missing + ")"
	}
	s := strconv.FormatFloat(r.Value, 'f', 2, 64) + "×"
	if r.Unit != "" {
		s = rate(r.Value) + " " + r.Unit
	}
	if r.Errors {
		s += " (with errors)"
	}
	return s
}

// String renders the report as text: the header, one table of every
// target, the ratios and the goals.
func (rep *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Parcours performance report, %s (%v)\n", rep.Started.Format("2006-01-02 15:04 MST"), rep.Duration)
	fmt.Fprintf(&b, "machine: %s\nload:    %s\n", rep.Machine, rep.Load)
	for _, p := range rep.Peers {
		fmt.Fprintf(&b, "peer:    %s\n", p)
	}
	b.WriteString("\n")
	floor := rep.floorRate()
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\trate\t\tp50\tp99\t× floor\terrors\tnote")
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\tskipped\t\t\t\t\t\t%s\n", r.Name, r.Skipped)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\t%s\t%d\t%s\n", r.Name, rate(r.Rate), r.Unit, short(r.P50), short(r.P99), vsFloor(r, floor), r.Errors, r.Note)
	}
	tw.Flush()
	b.WriteString("\nRatios\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, r := range rep.Ratios {
		fmt.Fprintf(tw, "  %s\t%s\n", r.Name, r)
	}
	tw.Flush()
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	b.WriteString("\nGoals\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, g := range rep.Goals {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", g.Name, g.Ratio, g.Verdict)
	}
	tw.Flush()
	return b.String()
}

// Markdown renders the report for the README's performance section.
func (rep *Report) Markdown(reproduce string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s. Load: %s.\n", rep.Started.Format("2006-01-02"), rep.Machine, rep.Load)
	if len(rep.Peers) > 0 {
		b.WriteString("Peers: " + strings.Join(rep.Peers, "; ") + ".\n")
	}
	if reproduce != "" {
		fmt.Fprintf(&b, "Reproduce (%s here):\n\n```sh\n%s\n```\n", about(rep.Duration), reproduce)
	}
	floor := rep.floorRate()
	b.WriteString("\n| Target | Rate | p50 | p99 | × floor | Errors | Note |\n|---|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | skipped | | | | | %s |\n", md(r.Name), md(r.Skipped))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s %s | %v | %v | %s | %d | %s |\n", md(r.Name), rate(r.Rate), r.Unit, short(r.P50), short(r.P99), vsFloor(r, floor), r.Errors, md(r.Note))
	}
	b.WriteString("\n| Ratio | Value |\n|---|---:|\n")
	for _, r := range rep.Ratios {
		fmt.Fprintf(&b, "| %s | %s |\n", md(r.Name), md(r.String()))
	}
	b.WriteString("\n| Goal | Measured | Verdict |\n|---|---:|---|\n")
	for _, g := range rep.Goals {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", md(g.Name), md(g.Ratio.String()), g.Verdict)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "\n%s.\n", strings.ToUpper(n[:1])+n[1:])
	}
	return b.String()
}

func (rep *Report) floorRate() float64 {
	if f, ok := rep.Row(RowFloor); ok && f.Measured() {
		return f.Rate
	}
	return 0
}

func vsFloor(r Row, floor float64) string {
	if r.Unit != "req/s" || floor == 0 {
		return ""
	}
	return strconv.FormatFloat(r.Rate/floor, 'f', 2, 64)
}

// about is a run's duration in words.
func about(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	return fmt.Sprintf("about %d min", int(d.Round(time.Minute).Minutes()))
}

// md escapes the pipes of a Markdown table cell.
func md(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// rate formats a rate with a space between thousands.
func rate(v float64) string {
	if v < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + " " + s[i:]
	}
	return s
}

// short rounds d to three significant digits.
func short(d time.Duration) time.Duration {
	step := time.Duration(1)
	for d/step >= 1000 {
		step *= 10
	}
	return d.Round(step)
}

// size formats a byte count.
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
