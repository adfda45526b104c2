package load

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of the measured phase of a Run.
//
// Every request that got a response or a transport error counts in Requests;
// Errors counts the non-2xx answers and transport errors among them.
// Percentiles are over the requests that got a response, whatever its status,
// timed from sending to reading the last byte; they are accurate to 0.5%.
type Report struct {
	Scenario     string
	RunID        string // prefix of the identifier values of this run's Patients
	Seeded       int    // Patients created before measuring
	Conns        int
	Duration     time.Duration // measured wall time
	Requests     int64
	Errors       int64    // non-2xx or transport errors
	ErrorSamples []string // first few distinct error descriptions (kind, status, start of body)
	RPS          float64
	P50, P90     time.Duration
	P99, Max     time.Duration
	ByKind       map[string]KindStats // by request kind: "read", "search", "create", "update", "request"; only kinds issued
	// At is, in an interval's report (Config.OnInterval), when the
	// interval ended since the measured phase began; zero otherwise.
	At time.Duration
}

// KindStats are the numbers of one request kind.
type KindStats struct {
	Requests, Errors   int64
	P50, P90, P99, Max time.Duration
}

// report sums the stats of the workers over elapsed.
func (r *runner) report(sets []*stats, elapsed time.Duration) Report {
	rep := Report{
		Scenario: r.cfg.Scenario,
		RunID:    r.runID,
		Seeded:   len(r.reads),
		Conns:    r.cfg.Conns,
		Duration: elapsed,
		ByKind:   make(map[string]KindStats),
	}
	all := new(histogram)
	var samples []sample
	for k := range numKinds {
		var rec kindRecord
		for _, set := range sets {
			s := &set.kinds[k]
			rec.requests += s.requests
			rec.errors += s.errors
			rec.max = max(rec.max, s.max)
			rec.hist.merge(&s.hist)
		}
		if rec.requests == 0 {
			continue
		}
		rep.ByKind[kindNames[k]] = KindStats{
			Requests: rec.requests,
			Errors:   rec.errors,
			P50:      rec.hist.quantile(0.50, rec.max),
			P90:      rec.hist.quantile(0.90, rec.max),
			P99:      rec.hist.quantile(0.99, rec.max),
			Max:      rec.max,
		}
		rep.Requests += rec.requests
		rep.Errors += rec.errors
		rep.Max = max(rep.Max, rec.max)
		all.merge(&rec.hist)
	}
	rep.P50 = all.quantile(0.50, rep.Max)
	rep.P90 = all.quantile(0.90, rep.Max)
	rep.P99 = all.quantile(0.99, rep.Max)
	if elapsed > 0 {
		rep.RPS = float64(rep.Requests) / elapsed.Seconds()
	}

	for _, set := range sets {
		samples = append(samples, set.samples...)
	}
	slices.SortStableFunc(samples, func(a, b sample) int { return a.at.Compare(b.at) })
	for _, s := range samples {
		if len(rep.ErrorSamples) == maxSamples {
			break
		}
		if !slices.Contains(rep.ErrorSamples, s.desc) {
			rep.ErrorSamples = append(rep.ErrorSamples, s.desc)
		}
	}
	return rep
}

// String renders the report as a short header, one table row per request
// kind plus a total, and the error samples.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s, %d conns, %v measured, %d Patients seeded (run %s)\n",
		r.Scenario, r.Conns, r.Duration.Round(time.Millisecond), r.Seeded, r.RunID)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\trequests\terrors\treq/s\tp50\tp90\tp99\tmax\t")
	row := func(name string, s KindStats) {
		rps := 0.0
		if r.Duration > 0 {
			rps = float64(s.Requests) / r.Duration.Seconds()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%v\t%v\t%v\t%v\t\n",
			name, s.Requests, s.Errors, rps, short(s.P50), short(s.P90), short(s.P99), short(s.Max))
	}
	for _, name := range kindNames {
		if s, ok := r.ByKind[name]; ok {
			row(name, s)
		}
	}
	row("all", KindStats{Requests: r.Requests, Errors: r.Errors, P50: r.P50, P90: r.P90, P99: r.P99, Max: r.Max})
	tw.Flush()
	if len(r.ErrorSamples) > 0 {
		b.WriteString("error samples:\n")
		for _, s := range r.ErrorSamples {
			b.WriteString("  " + s + "\n")
		}
	}
	return b.String()
}

// short rounds d to three or four significant digits.
func short(d time.Duration) time.Duration {
	step := time.Duration(1)
	for d/step >= 1000 {
		step *= 10
	}
	return d.Round(step)
}
