package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/parcours-sante/parcours/conformance/perf"
	"github.com/parcours-sante/parcours/mappings/gen"
	"github.com/parcours-sante/parcours/policies"
	"github.com/parcours-sante/parcours/server"
	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
)

func runPerf(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := perf.Config{StartHub: startPerfHub, Policies: policies.FS, Log: stderr}
	var (
		out, testdata, cpuProfile string
		memProfile                string
		soak, interval, settle    time.Duration
		maxHeapSlope, maxP99Ratio float64
		quiet                     bool
	)
	fs := newFlags("perf [--duration 5s] [--conns 16] [--out FILE] [--skip-node] [--skip-opa] | perf --soak 60s",
		"Measure the hub next to a trivial Go handler, Medplum's FHIR router and an OPA sidecar, and print one table\n"+
			"with req/s, p50, p99, the ratios and the goals. With --soak, run the soak instead: a mix of reads, searches,\n"+
			"creates and updates on a hub with policy and audit, sampled every --interval, and a verdict.\n"+
			"Run it from the repository root (testdata, and go.mod for building OPA).", stderr)
	fs.DurationVar(&cfg.Duration, "duration", perf.DefaultDuration, "measured time per target")
	fs.IntVar(&cfg.Conns, "conns", perf.DefaultConns, "concurrent connections")
	fs.DurationVar(&cfg.Warmup, "warmup", perf.DefaultWarmup, "uncounted warm-up per target")
	fs.StringVar(&out, "out", "", "also write the report as Markdown to FILE (for the README)")
	fs.BoolVar(&cfg.SkipNode, "skip-node", false, "leave Medplum's FHIR router out (no npm install)")
	fs.BoolVar(&cfg.SkipOPA, "skip-opa", false, "leave the OPA sidecar out (no go build)")
	fs.StringVar(&cfg.DataDir, "data", "", "where the hubs' data and the fsync probe go (default: the system's temporary directory)")
	fs.StringVar(&cfg.Corpus, "corpus", "../shared/corpus", "shared corpus root with the Synthea bundles (absent: testdata/fhir is searched)")
	fs.StringVar(&testdata, "testdata", "testdata", "the repository's testdata directory (its fhir/ is searched without the corpus)")
	fs.IntVar(&cfg.IngestRows, "ingest-rows", perf.DefaultIngestRows, "rows of the generated city-activity file for $ingest")
	fs.StringVar(&cfg.MedplumVersion, "medplum", perf.DefaultMedplumVersion, "exact npm version of @medplum/fhir-router and @medplum/core")
	fs.DurationVar(&soak, "soak", 0, "run the soak for this long instead of the report (e.g. 60s)")
	fs.DurationVar(&interval, "interval", perf.DefaultSoakInterval, "soak: sampling period")
	fs.DurationVar(&settle, "settle", perf.DefaultSoakSettle, "soak: start of the run the verdict leaves out")
	fs.Float64Var(&maxHeapSlope, "max-heap-slope", perf.DefaultMaxHeapSlope/(1<<20), "soak: largest live-heap growth, MiB per minute")
	fs.Float64Var(&maxP99Ratio, "max-p99-ratio", perf.DefaultMaxP99Ratio, "soak: largest last / first steady interval p99")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (hubs and load generator) to FILE (go tool pprof)")
	fs.StringVar(&memProfile, "memprofile", "", "soak: write heap profiles to FILE.start (once the settle time is over) and FILE (a second before the end), to compare with go tool pprof -base")
	fs.Func("only", "run only these comma-separated steps: "+strings.Join(perf.Steps, ", "), func(v string) error {
		cfg.Only = strings.Split(v, ",")
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	if quiet {
		cfg.Log = io.Discard
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if soak > 0 {
		if memProfile != "" {
			writeHeap := func(path string) {
				runtime.GC()
				if f, err := os.Create(path); err == nil {
					_ = pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			first := time.AfterFunc(cfg.Warmup+settle, func() { writeHeap(memProfile + ".start") })
			last := time.AfterFunc(cfg.Warmup+soak-time.Second, func() { writeHeap(memProfile) }) // the hub still runs
			defer first.Stop()
			defer last.Stop()
		}
		rep, err := perf.Soak(ctx, perf.SoakConfig{
			Duration: soak, Interval: interval, Settle: settle, Conns: cfg.Conns, Warmup: cfg.Warmup,
			DataDir: cfg.DataDir, StartHub: startPerfHub, Log: cfg.Log,
			MaxHeapSlope: maxHeapSlope * (1 << 20), MaxP99Ratio: maxP99Ratio,
		})
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, rep)
		if !rep.Verdict.Pass {
			return exitError(1)
		}
		return nil
	}
	cfg.Fallback = filepath.Join(testdata, "fhir")
	cfg.SyntheaFallback = filepath.Join(testdata, "demo", "synthea")
	cfg.IngestFile = cityActivity
	cfg.Decide = inProcessDecider()
	cfg.StoreFloor = storeFloor
	rep, err := perf.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep)
	if out != "" {
		reproduce := "go run ./cmd/parcours perf " + strings.Join(args, " ")
		if err := os.WriteFile(out, []byte(rep.Markdown(strings.TrimSpace(reproduce))), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cityActivity is a generated city-activity file of rows rows (the
// generator's large-file mode, seed 1).
func cityActivity(rows int) ([]byte, error) {
	var b bytes.Buffer
	_, err := gen.Generate(gen.Config{Source: gen.SourceCity, Rows: rows, Seed: 1}, gen.Writers{CityActivity: &b})
	return b.Bytes(), err
}

// inProcessDecider decides with an engine of the embedded policies, as the
// hub does (memo included), prepared on first use.
func inProcessDecider() func(ctx context.Context, input any) (bool, error) {
	var once sync.Once
	var engine *policy.Engine
	var err error
	return func(ctx context.Context, input any) (bool, error) {
		once.Do(func() { engine, err = policy.New(ctx, policies.FS) })
		if err != nil {
			return false, err
		}
		d, err := engine.Decide(ctx, input)
		return d.Allow, err
	}
}

// The OpenTelemetry variables a traced hub is started with (the standard
// names, read by server/telemetry and the OTLP exporter).
const (
	envTracesExporter = "OTEL_TRACES_EXPORTER"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// hubEnv serialises the hubs' starts: tracing is configured through the
// process environment, read when a hub is made.
var hubEnv sync.Mutex

// startPerfHub starts a hub in dir on 127.0.0.1:0, in process, with
// developer tokens for the identities perf drives it with.
func startPerfHub(ctx context.Context, dir string, s perf.Setup) (*perf.Hub, error) {
	hubEnv.Lock()
	env := map[string]string{envTracesExporter: "none"} // untraced, whatever the caller's environment says
	if s.TraceEndpoint != "" {
		env = map[string]string{envTracesExporter: "otlp", envTracesEndpoint: s.TraceEndpoint, envTracesProtocol: "http/protobuf"}
	}
	restore := setenv(env)
	srv, err := server.New(server.Config{
		DataDir: dir, Dev: s.Policy, Insecure: !s.Policy, NoAudit: s.Policy && !s.Audit,
		Version: version, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	restore()
	hubEnv.Unlock()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, err
	}
	handler, stopSync := srv.Handler(), func() error { return nil }
	if s.SyncBound {
		g, err := perf.NewGroupSync(dir)
		if err != nil {
			srv.Close()
			ln.Close()
			return nil, err
		}
		handler, stopSync = g.Handler(handler), g.Close
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	h := &perf.Hub{
		URL: "http://" + ln.Addr().String() + "/fhir",
		Close: func() error {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := hs.Shutdown(sctx)
			return errors.Join(err, stopSync(), srv.Close())
		},
	}
	if !s.Policy {
		return h, nil
	}
	secret, err := auth.DevSecret(dir, false)
	if err != nil {
		h.Close()
		return nil, err
	}
	for _, id := range []struct {
		who            *perf.Identity
		actor, purpose string
	}{
		{&h.Reader, "hospital-clinician", "TREAT"},
		{&h.Writer, "hospital-it", "HOPERAT"},
		{&h.Ingester, "gp", "TREAT"},
	} {
		if id.who.Token, err = devToken(secret, id.actor); err != nil {
			h.Close()
			return nil, err
		}
		id.who.Purpose = id.purpose
	}
	if s.Audit {
		h.PolicyInput = func(decision string) (json.RawMessage, error) { return recordedInput(srv.DB(), decision) }
	}
	return h, nil
}

// devToken mints a day's token for the developer identity of an actor type.
func devToken(secret []byte, actor string) (string, error) {
	for _, c := range auth.DevUsers() {
		if c.ActorType == actor {
			return auth.Mint(secret, c, 24*time.Hour)
		}
	}
	return "", fmt.Errorf("no developer identity for %s", actor)
}

// recordedInput is the policy input of a decision in the audit log (the
// record may reach the log a moment after the answer).
func recordedInput(db *store.DB, decision string) (json.RawMessage, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var rec audit.Record
		var found bool
		if err := db.View(func(tx *store.Tx) error {
			rec, found = audit.Find(tx, decision)
			return nil
		}); err != nil {
			return nil, err
		}
		if found && len(rec.Input) > 0 {
			return rec.Input, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("decision %s: not in the audit log", decision)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setenv sets the variables and returns what puts them back.
func setenv(vars map[string]string) (restore func()) {
	type old struct {
		value string
		set   bool
	}
	saved := map[string]old{}
	for k, v := range vars {
		prev, set := os.LookupEnv(k)
		saved[k] = old{prev, set}
		os.Setenv(k, v)
	}
	return func() {
		for k, o := range saved {
			if o.set {
				os.Setenv(k, o.value)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}

// storeFloor is a handler that creates each POSTed resource in a store of
// its own in dir, as the hub's store does (one write function per request,
// group commit) and nothing else: the ceiling of durable creates over HTTP.
func storeFloor(dir string) (http.Handler, func() error, error) {
	db, err := store.Open(filepath.Join(dir, "parcours.db"), store.Options{})
	if err != nil {
		return nil, nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res map[string]any
		if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		typ, _ := res["resourceType"].(string)
		id := store.NewID()
		if err := db.Update(r.Context(), func(tx *store.Tx) error {
			_, err := tx.Put(typ, id, res)
			return err
		}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Location", "/fhir/"+typ+"/"+id+"/_history/1")
		w.WriteHeader(http.StatusCreated)
	})
	return h, db.Close, nil
}
