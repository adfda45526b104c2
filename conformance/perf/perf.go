package perf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parcours-sante/parcours/conformance/load"
)

// Defaults applied to zero Config fields.
const (
	DefaultConns          = 16
	DefaultDuration       = 5 * time.Second
	DefaultWarmup         = time.Second
	DefaultIngestRows     = 10_000
	DefaultMedplumVersion = "5.2.13"
)

// Setup is one configuration of the hub under test.
type Setup struct {
	Policy bool // JWT verification and the policy; false: the hub's Insecure mode
	Audit  bool // a durable decision record per decision (with Policy)
	// TraceEndpoint, when set, turns tracing on: every request traced and
	// its spans exported over OTLP/HTTP to this URL (…/v1/traces).
	TraceEndpoint string
	// SyncBound (with Policy, without Audit) makes every answer wait for a
	// GroupSync write of the data directory first: the audit's durable
	// sync with none of its CPU, the ceiling of the audited rate.
	SyncBound bool
}

func (s Setup) String() string {
	switch {
	case !s.Policy:
		return "policy off"
	case !s.Audit && s.SyncBound:
		return "policy on, no audit, one group-committed fdatasync before each answer"
	case !s.Audit:
		return "policy on, no audit"
	case s.TraceEndpoint == "":
		return "policy + audit"
	default:
		return "policy + audit + tracing"
	}
}

// Identity is a bearer token and the purpose of use it is sent with.
type Identity struct{ Token, Purpose string }

// A Hub is a running hub under test, listening on 127.0.0.1.
type Hub struct {
	URL string // FHIR base: http://127.0.0.1:PORT/fhir
	// Who does what when the policy is on (zero identities otherwise):
	Reader   Identity // reads and searches (a hospital clinician, for treatment)
	Writer   Identity // creates and transactions (hospital IT, for operations)
	Ingester Identity // $ingest of city-activity (a GP, for treatment)
	// PolicyInput returns the policy input of the decision recorded under
	// id (the X-Decision-Id of an answer); nil without an audit log.
	PolicyInput func(id string) (json.RawMessage, error)
	// Close stops the listener and closes the hub (flushing its traces).
	Close func() error
}

// Config says what Run measures and how. StartHub is required.
type Config struct {
	Conns    int           // connections per target (default 16)
	Duration time.Duration // measured time per target (default 5s)
	Warmup   time.Duration // uncounted time before each target (default 1s)
	// DataDir holds the hubs' data directories and the fsync probe: put it
	// on the disk to measure (default: a new temporary directory).
	DataDir string

	// StartHub starts a hub with a fresh data directory dir.
	StartHub func(ctx context.Context, dir string, s Setup) (*Hub, error)
	// Decide takes one decision in process with the hub's policy engine
	// (memo included); nil leaves the in-process decision rows out.
	Decide func(ctx context.Context, input any) (allow bool, err error)
	// StoreFloor, if set, returns a handler that stores each POSTed
	// resource with the hub's store and nothing else (no parsing beyond
	// JSON, no validation, index or policy), in data directory dir: the
	// most durable creates over HTTP can reach with that store.
	StoreFloor func(dir string) (h http.Handler, close func() error, err error)
	// Policies are the policy files the OPA sidecar loads (*.rego but
	// *_test.rego, and *.json).
	Policies fs.FS

	SkipOPA, SkipNode bool
	// ModuleDir is the directory of the go.mod whose OPA version the
	// sidecar is built from (default: the current directory).
	ModuleDir      string
	MedplumVersion string // exact version of @medplum/fhir-router and @medplum/core (default DefaultMedplumVersion)

	IngestRows int // rows of the generated city-activity file (default 10 000)
	// IngestFile returns a city-activity CSV of rows rows (mappings/gen);
	// nil leaves the ingest row out.
	IngestFile func(rows int) ([]byte, error)

	Corpus   string // the shared corpus root (Synthea bundles under synthea/); absent: Fallback
	Fallback string // directory of FHIR JSON files to search when the corpus is absent (testdata/fhir)
	// SyntheaFallback is a directory of Synthea patient bundles for the
	// transactions step when the corpus is absent (testdata/demo/synthea).
	SyntheaFallback string

	// Only, if set, limits the run to these steps: floor, get, medplum,
	// decisions (in process and OPA; needs get), creates, transactions,
	// ingest, search.
	Only []string

	Log io.Writer // progress, one line per step (default: none)
}

// Steps are the names Config.Only accepts, in the order they run.
var Steps = []string{"floor", "get", "medplum", "decisions", "creates", "transactions", "ingest", "search"}

// Row is one measured target.
type Row struct {
	Key      string // stable name the ratios refer to (RowFloor, RowGetOff…)
	Name     string
	Unit     string  // "req/s", "rows/s", "fsync/s", "decisions/s"
	Rate     float64 // per second, in Unit
	P50, P99 time.Duration
	Requests int64
	Errors   int64
	Note     string // what else to know (matches, versions, error samples)
	Skipped  string // why the target was not measured; empty when it was
}

// Measured reports whether the row holds a measurement.
func (r Row) Measured() bool { return r.Skipped == "" && r.Rate > 0 }

// Row keys.
const (
	RowFloor        = "floor"
	RowFloorSync    = "floor-sync"
	RowGetSync      = "get-sync"
	RowGetOff       = "get-off"
	RowGetPolicy    = "get-policy"
	RowGetAudit     = "get-audit"
	RowGetTrace     = "get-trace"
	RowMedplum      = "medplum-get"
	RowOPA          = "opa-sidecar"
	RowDecideMemo   = "decide-memo"
	RowDecideEval   = "decide-eval"
	RowCreateOff    = "create-off"
	RowCreateOn     = "create-on"
	RowFsync        = "fsync"
	RowStoreFloor   = "store-floor"
	RowIngest       = "ingest"
	RowTransactions = "transactions"
	RowSearch       = "search-" // prefix, then the query's number
)

// Report is the outcome of Run.
type Report struct {
	Started  time.Time
	Machine  string
	Load     string // how every target was driven
	Peers    []string
	Rows     []Row
	Ratios   []Ratio
	Goals    []Goal
	Notes    []string
	Duration time.Duration // wall time of the whole run
}

// Row returns the row of key.
func (r *Report) Row(key string) (Row, bool) {
	for _, row := range r.Rows {
		if row.Key == key {
			return row, true
		}
	}
	return Row{}, false
}

// Run measures every target and returns the report. A target that cannot
// be measured is a row with Skipped set; Run fails only when the hub cannot
// be started or ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.StartHub == nil {
		return nil, errors.New("perf: Config.StartHub is required")
	}
	cfg.defaults()
	cleanup, err := cfg.dataDir("parcours-perf-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	rep := &Report{Started: time.Now().UTC(), Machine: Machine(cfg.DataDir)}
	rep.Load = fmt.Sprintf("%d connections, %v warm-up then %v measured per target, closed loop, generator in this process (conformance/load)",
		cfg.Conns, cfg.Warmup, cfg.Duration)
	r := &runner{cfg: cfg, rep: rep}
	steps := []func(context.Context) error{r.floor, r.gets, r.medplum, r.decisions, r.creates, r.transactions, r.ingest, r.searches}
	for _, name := range cfg.Only {
		if !slices.Contains(Steps, name) {
			return nil, fmt.Errorf("perf: step %q: want one of %s", name, strings.Join(Steps, ", "))
		}
	}
	for i, step := range steps {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, Steps[i]) {
			continue
		}
		if err := step(ctx); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	rep.Ratios, rep.Goals = ratios(rep)
	rep.Duration = time.Since(rep.Started).Round(time.Second)
	return rep, nil
}

func (c *Config) defaults() {
	if c.Conns <= 0 {
		c.Conns = DefaultConns
	}
	if c.Duration <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Warmup == 0 {
		c.Warmup = DefaultWarmup
	}
	if c.IngestRows <= 0 {
		c.IngestRows = DefaultIngestRows
	}
	if c.MedplumVersion == "" {
		c.MedplumVersion = DefaultMedplumVersion
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// dataDir makes c.DataDir a new directory (inside the given one, if any)
// and returns what removes it.
func (c *Config) dataDir(prefix string) (func(), error) {
	if c.DataDir != "" {
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("perf: data directory: %w", err)
		}
	}
	dir, err := os.MkdirTemp(c.DataDir, prefix)
	if err != nil {
		return nil, fmt.Errorf("perf: data directory: %w", err)
	}
	c.DataDir = dir
	return func() { os.RemoveAll(dir) }, nil
}

// runner is the state of one Run.
type runner struct {
	cfg Config
	rep *Report
	// input is the policy input the audited hub recorded for a GET.
	input json.RawMessage
	// allow is the audited hub's decision on input.
	allow bool
	hubs  int
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, format+"\n", args...)
}

func (r *runner) add(row Row) {
	r.rep.Rows = append(r.rep.Rows, row)
	switch {
	case row.Skipped != "":
		r.logf("  %-48s skipped: %s", row.Name, row.Skipped)
	default:
		r.logf("  %-48s %s %s, p50 %v, p99 %v, %d errors", row.Name, rate(row.Rate), row.Unit, short(row.P50), short(row.P99), row.Errors)
	}
}

// startHub starts a hub in a new directory of the data directory.
func (r *runner) startHub(ctx context.Context, s Setup) (*Hub, error) {
	r.hubs++
	dir := fmt.Sprintf("%s/hub-%d", r.cfg.DataDir, r.hubs)
	h, err := r.cfg.StartHub(ctx, dir, s)
	if err != nil {
		return nil, fmt.Errorf("perf: start a hub (%s): %w", s, err)
	}
	return h, nil
}

// drive runs the load loop against one target and makes its row.
func (r *runner) drive(ctx context.Context, key, name string, lc load.Config) (Row, load.Report) {
	lc.Conns, lc.Duration, lc.Warmup = r.cfg.Conns, r.cfg.Duration, r.cfg.Warmup
	rep, err := load.Run(ctx, lc)
	row := Row{Key: key, Name: name, Unit: "req/s"}
	if err != nil {
		row.Skipped = err.Error()
		return row, rep
	}
	row.Rate, row.P50, row.P99, row.Requests, row.Errors = rep.RPS, rep.P50, rep.P99, rep.Requests, rep.Errors
	if rep.Errors > 0 {
		row.Note = fmt.Sprintf("%d errors, e.g. %s", rep.Errors, strings.Join(rep.ErrorSamples[:min(2, len(rep.ErrorSamples))], "; "))
	}
	return row, rep
}

// floor measures a trivial Go handler: the most this machine, this
// generator and net/http allow.
func (r *runner) floor(ctx context.Context) error {
	r.logf("floor: net/http")
	body := []byte(`{"resourceType":"Patient","id":"floor","name":[{"family":"Floor"}],"birthDate":"1970-01-01"}`)
	srv, err := listen(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"application/fhir+json"}
		w.Write(body)
	}))
	if err != nil {
		return err
	}
	defer srv.Close()
	row, _ := r.drive(ctx, RowFloor, "floor: net/http handler, fixed JSON", load.Config{
		URL: srv.URL, Requests: []load.Request{{Path: "Patient/floor"}},
	})
	r.add(row)

	r.logf("floor: net/http behind a group-committed fdatasync")
	g, err := NewGroupSync(r.cfg.DataDir)
	if err != nil {
		r.add(Row{Key: RowFloorSync, Name: "durable floor", Skipped: err.Error()})
		return nil
	}
	durable, err := listen(g.Handler(srv.hs.Handler))
	if err != nil {
		g.Close()
		return err
	}
	row, _ = r.drive(ctx, RowFloorSync, "durable floor: the same handler after a group-committed fdatasync", load.Config{
		URL: durable.URL, Requests: []load.Request{{Path: "Patient/floor"}},
	})
	row.Note = "1 KiB per request written in place, one write + fdatasync per group of waiting requests; no record built"
	durable.Close()
	r.add(row)
	return g.Close()
}

// gets measures GET Patient/{id} on the hub in its four setups, and keeps
// the policy input of one audited GET for the OPA sidecar.
func (r *runner) gets(ctx context.Context) error {
	sink, err := newTraceSink()
	if err != nil {
		return err
	}
	defer sink.Close()
	setups := []struct {
		key   string
		setup Setup
	}{
		{RowGetOff, Setup{}},
		{RowGetPolicy, Setup{Policy: true}},
		{RowGetSync, Setup{Policy: true, SyncBound: true}},
		{RowGetAudit, Setup{Policy: true, Audit: true}},
		{RowGetTrace, Setup{Policy: true, Audit: true, TraceEndpoint: sink.URL + "/v1/traces"}},
	}
	for _, s := range setups {
		r.logf("Parcours GET, %s", s.setup)
		h, err := r.startHub(ctx, s.setup)
		if err != nil {
			return err
		}
		row, _ := r.drive(ctx, s.key, "Parcours GET Patient/{id}, "+s.setup.String(), load.Config{
			URL: h.URL, Scenario: load.ScenarioRead,
			Token: h.Reader.Token, Purpose: h.Reader.Purpose,
			SeedToken: h.Writer.Token, SeedPurpose: h.Writer.Purpose,
		})
		if s.key == RowGetAudit && row.Skipped == "" {
			if err := r.keepInput(ctx, h); err != nil {
				r.logf("  no policy input for the OPA sidecar: %v", err)
			}
		}
		err = h.Close()
		if s.key == RowGetTrace && row.Skipped == "" {
			exports, bytes := sink.Received()
			if exports == 0 {
				row.Skipped = "tracing not available: no span reached the OTLP sink (this build ignores OTEL_TRACES_EXPORTER)"
			} else {
				row.Note = fmt.Sprintf("every request traced (parentbased_always_on), %d OTLP/HTTP exports, %s of spans", exports, size(bytes))
			}
		}
		r.add(row)
		if err != nil {
			return fmt.Errorf("perf: close the hub (%s): %w", s.setup, err)
		}
	}
	return nil
}

// keepInput reads one seeded Patient as the reader and keeps the policy
// input the hub recorded for that decision.
func (r *runner) keepInput(ctx context.Context, h *Hub) error {
	if h.PolicyInput == nil {
		return errors.New("the hub gives no access to its decision records")
	}
	id, err := createPatient(ctx, h)
	if err != nil {
		return err
	}
	resp, err := do(ctx, http.MethodGet, h.URL+"/Patient/"+id, h.Reader, "", nil)
	if err != nil {
		return err
	}
	decision := resp.header.Get("X-Decision-Id")
	if resp.status != http.StatusOK || decision == "" {
		return fmt.Errorf("GET Patient: status %d, decision %q", resp.status, decision)
	}
	in, err := h.PolicyInput(decision)
	if err != nil {
		return err
	}
	r.input, r.allow = in, true
	return nil
}

// createPatient creates a small Patient as the hub's writer and returns its id.
func createPatient(ctx context.Context, h *Hub) (string, error) {
	resp, err := do(ctx, http.MethodPost, h.URL+"/Patient", h.Writer, "application/fhir+json",
		[]byte(`{"resourceType":"Patient","name":[{"family":"Perf"}],"birthDate":"1970-01-01"}`))
	if err != nil {
		return "", err
	}
	loc := resp.header.Get("Location")
	i := strings.LastIndex(loc, "/Patient/")
	if resp.status != http.StatusCreated || i < 0 {
		return "", fmt.Errorf("create Patient: status %d, Location %q: %s", resp.status, loc, clip(resp.body))
	}
	id, _, _ := strings.Cut(loc[i+len("/Patient/"):], "/")
	return id, nil
}

// creates measures durable creates with the policy off and on, and the
// fsync rate of the disk they are written to.
func (r *runner) creates(ctx context.Context) error {
	for _, s := range []struct {
		key   string
		setup Setup
	}{{RowCreateOff, Setup{}}, {RowCreateOn, Setup{Policy: true, Audit: true}}} {
		r.logf("durable creates, %s", s.setup)
		h, err := r.startHub(ctx, s.setup)
		if err != nil {
			return err
		}
		row, _ := r.drive(ctx, s.key, "Parcours POST Patient (durable), "+s.setup.String(), load.Config{
			URL: h.URL, Scenario: load.ScenarioCreate, Seed: r.cfg.Conns,
			Token: h.Writer.Token, Purpose: h.Writer.Purpose,
		})
		r.add(row)
		if err := h.Close(); err != nil {
			return fmt.Errorf("perf: close the hub (%s): %w", s.setup, err)
		}
	}
	if r.cfg.StoreFloor != nil {
		r.logf("durable creates, store floor")
		r.add(r.storeFloor(ctx))
	}
	r.logf("fsync rate of %s", r.cfg.DataDir)
	r.add(fsyncRow(ctx, r.cfg.DataDir, min(r.cfg.Duration, 3*time.Second)))
	return nil
}

// storeFloor measures POST Patient against Config.StoreFloor.
func (r *runner) storeFloor(ctx context.Context) Row {
	name := "store floor: POST stored by the hub's store alone (group commit, no validation, index or policy)"
	dir, err := os.MkdirTemp(r.cfg.DataDir, "store-floor-")
	if err != nil {
		return Row{Key: RowStoreFloor, Name: name, Skipped: err.Error()}
	}
	defer os.RemoveAll(dir)
	h, closeStore, err := r.cfg.StoreFloor(dir)
	if err != nil {
		return Row{Key: RowStoreFloor, Name: name, Skipped: err.Error()}
	}
	srv, err := listen(h)
	if err != nil {
		closeStore()
		return Row{Key: RowStoreFloor, Name: name, Skipped: err.Error()}
	}
	row, _ := r.drive(ctx, RowStoreFloor, name, load.Config{URL: srv.URL + "/fhir", Scenario: load.ScenarioCreate, Seed: r.cfg.Conns})
	srv.Close()
	if err := closeStore(); err != nil && row.Skipped == "" {
		row.Skipped = err.Error()
	}
	return row
}

// measureFunc calls fn from conns goroutines, back to back, for warm-up
// then d, and returns the calls per second and latency percentiles of the
// measured part. fn gets a distinct sequence number per call.
func measureFunc(ctx context.Context, conns int, warmup, d time.Duration, fn func(n int) error) (rate float64, p50, p99 time.Duration, calls, errs int64) {
	var seq struct {
		sync.Mutex
		n int
	}
	next := func() int {
		seq.Lock()
		defer seq.Unlock()
		seq.n++
		return seq.n
	}
	phase := func(d time.Duration, record bool) ([][]time.Duration, []int64, time.Duration) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		lat := make([][]time.Duration, conns)
		fails := make([]int64, conns)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				for ctx.Err() == nil {
					t := time.Now()
					err := fn(next())
					if !record {
						continue
					}
					lat[i] = append(lat[i], time.Since(t))
					if err != nil {
						fails[i]++
					}
				}
			})
		}
		wg.Wait()
		return lat, fails, time.Since(start)
	}
	if warmup > 0 {
		phase(warmup, false)
	}
	lat, fails, elapsed := phase(d, true)
	all := slices.Concat(lat...)
	slices.Sort(all)
	for _, f := range fails {
		errs += f
	}
	calls = int64(len(all))
	if calls == 0 {
		return 0, 0, 0, 0, errs
	}
	return float64(calls) / elapsed.Seconds(), all[len(all)/2], all[min(len(all)-1, len(all)*99/100)], calls, errs
}

// Machine describes the machine: CPU model and count, memory, OS, Go.
func Machine(dataDir string) string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		for _, line := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs (GOMAXPROCS %d)%s, %s/%s, %s; data on %s",
		model, runtime.NumCPU(), runtime.GOMAXPROCS(0), mem, runtime.GOOS, runtime.GOARCH, runtime.Version(), filesystem(dataDir))
}
