package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/parcours-sante/parcours/conformance/load"
)

// Soak defaults.
const (
	DefaultSoakDuration = 60 * time.Second
	DefaultSoakInterval = 5 * time.Second
	DefaultSoakSettle   = 10 * time.Second
	// DefaultMaxP99Ratio bounds the last interval's p99 by the first steady
	// interval's: a server that degrades under sustained load (queues,
	// compaction, a growing memo or index scan) shows it there, while
	// scheduling noise on a shared machine stays well under 3×.
	DefaultMaxP99Ratio = 3
	// DefaultMaxHeapSlope bounds the growth of the live heap: the slope of
	// the least-squares line through the steady samples, in bytes per
	// minute. 1 MiB a minute is 1.4 GiB a day, more than a hub can give a
	// leak. It sits above the measurement's noise: with reads only, the
	// least-of-three live heap varies by about 0.4 MiB between samples, a
	// standard error of about 0.5 MiB/min on the slope of the ten steady
	// samples of a 60-second soak (a longer soak sharpens it). And it sits
	// below what a memo that keeps an entry per patient version costs at
	// this mix (about 260 bytes per write, 2 to 4 MiB/min here).
	DefaultMaxHeapSlope = 1 << 20
)

// SoakConfig says how Soak runs. StartHub is required.
type SoakConfig struct {
	Duration time.Duration // measured time (default 60s)
	Interval time.Duration // sampling period (default 5s)
	// Settle is the start of the run the verdict leaves out: caches, memos,
	// the store's pages and the connection pool fill there (default 10s).
	Settle time.Duration
	Conns  int           // default 16
	Warmup time.Duration // uncounted warm-up before measuring (default 1s)
	// DataDir is where the hub's data directory is made (default: a
	// temporary directory).
	DataDir      string
	StartHub     func(ctx context.Context, dir string, s Setup) (*Hub, error)
	MaxP99Ratio  float64 // default DefaultMaxP99Ratio
	MaxHeapSlope float64 // bytes per minute (default DefaultMaxHeapSlope)
	Log          io.Writer
}

// SoakSample is one interval of a soak.
type SoakSample struct {
	At               time.Duration // end of the interval since the measured start
	Requests, Errors int64
	Rate             float64 // requests per second
	P50, P99         time.Duration
	HeapLive         uint64 // live heap after a forced GC, bytes (/gc/heap/live:bytes)
	GoMemory         uint64 // memory the Go runtime holds from the OS, bytes (/memory/classes/total minus released)
}

// SoakVerdict is the judgement of a soak.
type SoakVerdict struct {
	Steady             int // samples after Settle, the ones judged
	Errors             int64
	FirstP99, LastP99  time.Duration
	WorstP99           time.Duration // the largest steady p99 (reported, not judged)
	WorstAt            time.Duration
	P99Ratio           float64
	HeapSlope          float64 // bytes per minute
	ErrorsOK, P99OK    bool
	HeapOK, Pass       bool
	Problem            string // why a verdict could not be reached, if so
	MaxP99, MaxSlope   float64
	SettleAt, Interval time.Duration
}

// SoakReport is the outcome of Soak.
type SoakReport struct {
	Setup    string
	Scenario string
	Conns    int
	Samples  []SoakSample
	Total    load.Report
	Verdict  SoakVerdict
}

// Soak drives a hub with the policy and the audit log with a mix of reads,
// searches, creates and updates, samples every Interval, and judges.
func Soak(ctx context.Context, cfg SoakConfig) (*SoakReport, error) {
	if cfg.StartHub == nil {
		return nil, errors.New("perf: SoakConfig.StartHub is required")
	}
	cfg.defaults()
	c := Config{DataDir: cfg.DataDir}
	cleanup, err := c.dataDir("parcours-soak-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	setup := Setup{Policy: true, Audit: true}
	h, err := cfg.StartHub(ctx, c.DataDir+"/hub", setup)
	if err != nil {
		return nil, fmt.Errorf("perf: start the hub: %w", err)
	}
	defer h.Close()
	rep := &SoakReport{Setup: setup.String(), Scenario: "mixed: 70% read, 20% search, 5% create, 5% update", Conns: cfg.Conns}
	fmt.Fprintf(cfg.Log, "soak: %v at %d connections, %s, sampled every %v\n", cfg.Duration, cfg.Conns, rep.Scenario, cfg.Interval)
	var mu sync.Mutex
	total, err := load.Run(ctx, load.Config{
		URL: h.URL, Scenario: load.ScenarioMixed, Conns: cfg.Conns, Duration: cfg.Duration, Warmup: cfg.Warmup,
		Token: h.Reader.Token, Purpose: h.Reader.Purpose, SeedToken: h.Writer.Token, SeedPurpose: h.Writer.Purpose,
		Interval: cfg.Interval,
		OnInterval: func(r load.Report) {
			s := SoakSample{At: r.At, Requests: r.Requests, Errors: r.Errors, Rate: r.RPS, P50: r.P50, P99: r.P99}
			s.HeapLive, s.GoMemory = heap()
			fmt.Fprintf(cfg.Log, "  %6v  %s req/s  p99 %-8v errors %d  live heap %s\n", s.At.Round(time.Second), rate(s.Rate), short(s.P99), s.Errors, size(int64(s.HeapLive)))
			mu.Lock()
			rep.Samples = append(rep.Samples, s)
			mu.Unlock()
		},
	})
	if err != nil {
		return nil, fmt.Errorf("perf: soak: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	rep.Total = total
	rep.Verdict = Judge(rep.Samples, total.Errors, cfg.Settle, cfg.Interval, cfg.MaxP99Ratio, cfg.MaxHeapSlope)
	return rep, nil
}

func (c *SoakConfig) defaults() {
	if c.Duration <= 0 {
		c.Duration = DefaultSoakDuration
	}
	if c.Interval <= 0 {
		c.Interval = DefaultSoakInterval
	}
	if c.Settle < 0 {
		c.Settle = 0
	} else if c.Settle == 0 {
		c.Settle = DefaultSoakSettle
	}
	if c.Conns <= 0 {
		c.Conns = DefaultConns
	}
	if c.Warmup == 0 {
		c.Warmup = DefaultWarmup
	}
	if c.MaxP99Ratio <= 0 {
		c.MaxP99Ratio = DefaultMaxP99Ratio
	}
	if c.MaxHeapSlope <= 0 {
		c.MaxHeapSlope = DefaultMaxHeapSlope
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// heap returns the live heap and the memory the Go runtime holds. The live
// heap is the least of three forced collections 50ms apart: what the
// requests in flight hold at the moment of one collection (a searchset
// being encoded, a bundle being read) is noise on top of what the process
// retains, and the least of three removes most of it.
func heap() (live, held uint64) {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	u := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	live = math.MaxUint64
	for i := range 3 {
		if i > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		runtime.GC()
		metrics.Read(s)
		live = min(live, u(0))
	}
	return live, u(1) - u(2)
}

// Judge gives the verdict on samples: no errors in the whole run
// (totalErrors); the p99 of the last sample at most maxP99 times the p99 of
// the first steady one; and the least-squares slope of the live heap over
// the steady samples at most maxSlope bytes per minute. Steady samples are
// those of intervals that began at or after settle; at least three are
// needed.
func Judge(samples []SoakSample, totalErrors int64, settle, interval time.Duration, maxP99, maxSlope float64) SoakVerdict {
	v := SoakVerdict{Errors: totalErrors, ErrorsOK: totalErrors == 0, MaxP99: maxP99, MaxSlope: maxSlope, SettleAt: settle, Interval: interval}
	var steady []SoakSample
	for _, s := range samples {
		// An interval began at At minus its length (interval, or less for
		// a last remnant); a tenth of an interval of slack absorbs timer
		// jitter.
		if s.At+interval/10 >= settle+interval {
			steady = append(steady, s)
		}
	}
	v.Steady = len(steady)
	if len(steady) < 3 {
		v.Problem = fmt.Sprintf("%d steady samples, want at least 3: run longer than the settle time (%v) plus three intervals (%v each)", len(steady), settle, interval)
		return v
	}
	v.FirstP99, v.LastP99 = steady[0].P99, steady[len(steady)-1].P99
	for _, s := range steady {
		if s.P99 > v.WorstP99 {
			v.WorstP99, v.WorstAt = s.P99, s.At
		}
	}
	if v.FirstP99 > 0 {
		v.P99Ratio = float64(v.LastP99) / float64(v.FirstP99)
	}
	v.P99OK = v.FirstP99 > 0 && v.P99Ratio <= maxP99
	xs := make([]float64, len(steady))
	ys := make([]float64, len(steady))
	for i, s := range steady {
		xs[i], ys[i] = s.At.Minutes(), float64(s.HeapLive)
	}
	v.HeapSlope = Slope(xs, ys)
	v.HeapOK = v.HeapSlope <= maxSlope
	v.Pass = v.ErrorsOK && v.P99OK && v.HeapOK
	return v
}

// Slope is the slope of the least-squares line through (xs[i], ys[i]); 0
// with fewer than two distinct xs.
func Slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

// String renders the samples and the verdict.
func (r *SoakReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: hub with %s, %d connections, %s; %v measured, %d requests, %.0f req/s overall\n",
		r.Setup, r.Conns, r.Scenario, r.Total.Duration.Round(time.Millisecond), r.Total.Requests, r.Total.RPS)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t\treq/s\terrors\tp50\tp99\tlive heap\tGo memory\t")
	for _, s := range r.Samples {
		fmt.Fprintf(tw, "%v\t%s\t%d\t%v\t%v\t%s\t%s\t\n", s.At.Round(100*time.Millisecond), rate(s.Rate), s.Errors, short(s.P50), short(s.P99), size(int64(s.HeapLive)), size(int64(s.GoMemory)))
	}
	tw.Flush()
	v := r.Verdict
	verdict := func(ok bool) string {
		if ok {
			return Pass
		}
		return Fail
	}
	fmt.Fprintf(&b, "\nverdict (samples of intervals that began at or after %v: %d)\n", v.SettleAt, v.Steady)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  errors\t%d in %d requests (want 0)\t%s\n", v.Errors, r.Total.Requests, verdict(v.ErrorsOK))
	if v.Problem != "" {
		fmt.Fprintf(tw, "  p99, heap\t%s\t%s\n", v.Problem, Fail)
	} else {
		fmt.Fprintf(tw, "  p99 bounded\tlast interval %v / first steady interval %v = %.2f× (want ≤ %g×; worst steady interval %v at %v)\t%s\n",
			short(v.LastP99), short(v.FirstP99), v.P99Ratio, v.MaxP99, short(v.WorstP99), v.WorstAt.Round(100*time.Millisecond), verdict(v.P99OK))
		perRequest := ""
		if r.Total.RPS > 0 {
			perRequest = fmt.Sprintf(", %+.1f bytes per request", v.HeapSlope/(r.Total.RPS*60))
		}
		fmt.Fprintf(tw, "  heap not growing\tlive heap slope %+.2f MiB/min%s, least squares over %d samples (want ≤ %.2f MiB/min)\t%s\n",
			v.HeapSlope/(1<<20), perRequest, v.Steady, v.MaxSlope/(1<<20), verdict(v.HeapOK))
	}
	tw.Flush()
	fmt.Fprintf(&b, "soak: %s\n", verdict(v.Pass))
	if len(r.Total.ErrorSamples) > 0 {
		b.WriteString("error samples:\n")
		for _, s := range r.Total.ErrorSamples {
			b.WriteString("  " + s + "\n")
		}
	}
	return b.String()
}
