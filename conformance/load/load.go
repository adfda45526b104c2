package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scenarios, the values of Config.Scenario.
const (
	ScenarioRead   = "read"   // GET Patient/{id} of a random seeded Patient
	ScenarioSearch = "search" // GET Patient?identifier=system|value of a random seeded Patient
	ScenarioCreate = "create" // POST Patient
	ScenarioMixed  = "mixed"  // 70% read, 20% search, 10% create
)

// Defaults applied by Run to zero Config fields.
const (
	DefaultConns    = 16
	DefaultDuration = 10 * time.Second
	DefaultSeed     = 200
	DefaultWarmup   = time.Second
)

// IdentifierSystem is the system of the identifier carried by every Patient
// the generator creates; the value is "<run-id>-<n>" for seeded Patients and
// "<run-id>-created" for those of the create requests.
const IdentifierSystem = "urn:parcours:load"

const (
	fhirJSON     = "application/fhir+json"
	userAgent    = "parcours-load"
	maxSamples   = 5   // distinct error descriptions kept in a Report
	sampleBytes  = 200 // bytes of an error response body kept in a description
	maxSeedReply = 1 << 20
)

// Config says which server to drive and how. Zero fields take the defaults
// above; only URL is required.
type Config struct {
	URL      string        // FHIR base, e.g. http://127.0.0.1:8080/fhir
	Token    string        // optional bearer token (Authorization: Bearer)
	Purpose  string        // optional X-Purpose-Of-Use header value
	Conns    int           // concurrent workers, each its own keep-alive connection (default 16)
	Duration time.Duration // measured phase length (default 10s)
	Scenario string        // ScenarioRead, ScenarioSearch, ScenarioCreate or ScenarioMixed (default read)
	Seed     int           // Patients created before measuring (default 200), each with a distinct identifier
	// SeedToken and SeedPurpose, if set, are used to create the seed
	// Patients (e.g. a writer identity that differs from the reader's).
	SeedToken, SeedPurpose string
	Warmup                 time.Duration // uncounted phase before measuring (default 1s; negative: none)

	// Client is optional. The default has a Transport with
	// MaxIdleConnsPerHost = Conns, HTTP/1.1 only, no compression and no
	// proxy; Run closes its idle connections when it returns.
	Client *http.Client
}

// Run seeds the server, warms up, then measures for cfg.Duration and reports.
// A seeding failure (transport error, non-2xx status, or no id in the reply)
// ends the run with an error carrying the status and body. If ctx ends during
// the measured phase, Run returns the report of the time measured so far
// together with ctx's error.
func Run(ctx context.Context, cfg Config) (Report, error) {
	r, err := newRunner(cfg)
	if err != nil {
		return Report{}, err
	}
	if cfg.Client == nil {
		defer r.client.CloseIdleConnections()
	}

	ids, err := r.seed(ctx)
	if err != nil {
		return Report{}, err
	}
	r.target(ids)

	workers := make([]*worker, r.cfg.Conns)
	for i := range workers {
		workers[i] = r.newWorker()
	}
	if r.cfg.Warmup > 0 {
		r.phase(ctx, workers, r.cfg.Warmup)
		if err := ctx.Err(); err != nil {
			return Report{}, fmt.Errorf("load: warm-up: %w", err)
		}
		for _, w := range workers {
			w.reset()
		}
	}
	elapsed := r.phase(ctx, workers, r.cfg.Duration)
	return r.report(workers, elapsed), ctx.Err()
}

type kind int

const (
	kindRead kind = iota
	kindSearch
	kindCreate
	numKinds
)

var kindNames = [numKinds]string{"read", "search", "create"}

// runner is the state of one Run shared read-only by its workers.
type runner struct {
	cfg    Config
	client *http.Client
	runID  string
	fixed  kind // the kind of every request, unless mixed
	mixed  bool

	create  *url.URL   // .../Patient
	reads   []*url.URL // .../Patient/{id}, one per seeded Patient
	search  []*url.URL // .../Patient?identifier=..., one per seeded Patient
	body    []byte     // the Patient of every create request
	getHdr  http.Header
	postHdr http.Header
	seedHdr http.Header
}

func newRunner(cfg Config) (*runner, error) {
	if cfg.Conns == 0 {
		cfg.Conns = DefaultConns
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Seed == 0 {
		cfg.Seed = DefaultSeed
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = DefaultWarmup
	}
	if cfg.Scenario == "" {
		cfg.Scenario = ScenarioRead
	}
	switch {
	case cfg.Conns < 0:
		return nil, fmt.Errorf("load: conns %d: want at least 1", cfg.Conns)
	case cfg.Duration < 0:
		return nil, fmt.Errorf("load: duration %v: want a positive duration", cfg.Duration)
	case cfg.Seed < 0:
		return nil, fmt.Errorf("load: seed %d: want at least 1", cfg.Seed)
	}
	base, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("load: URL %q: want an absolute http or https FHIR base", cfg.URL)
	}
	base.RawQuery, base.Fragment = "", ""

	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("load: run id: %w", err)
	}
	r := &runner{cfg: cfg, client: cfg.Client, runID: hex.EncodeToString(id), create: base.JoinPath("Patient")}
	switch cfg.Scenario {
	case ScenarioRead:
		r.fixed = kindRead
	case ScenarioSearch:
		r.fixed = kindSearch
	case ScenarioCreate:
		r.fixed = kindCreate
	case ScenarioMixed:
		r.mixed = true
	default:
		return nil, fmt.Errorf("load: scenario %q: want %s, %s, %s or %s",
			cfg.Scenario, ScenarioRead, ScenarioSearch, ScenarioCreate, ScenarioMixed)
	}
	if r.client == nil {
		r.client = &http.Client{Transport: newTransport(cfg.Conns)}
	}

	r.getHdr = http.Header{"Accept": {fhirJSON}, "User-Agent": {userAgent}}
	if cfg.Token != "" {
		r.getHdr.Set("Authorization", "Bearer "+cfg.Token)
	}
	if cfg.Purpose != "" {
		r.getHdr.Set("X-Purpose-Of-Use", cfg.Purpose)
	}
	r.postHdr = r.getHdr.Clone()
	r.postHdr.Set("Content-Type", fhirJSON)
	r.seedHdr = r.postHdr.Clone()
	if cfg.SeedToken != "" {
		r.seedHdr.Set("Authorization", "Bearer "+cfg.SeedToken)
	}
	if cfg.SeedPurpose != "" {
		r.seedHdr.Set("X-Purpose-Of-Use", cfg.SeedPurpose)
	}
	r.body = patient(r.runID+"-created", 0)
	return r, nil
}

func newTransport(conns int) *http.Transport {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
		Protocols:           protocols,
	}
}

// patient returns a minimal valid FHIR R4 Patient with one identifier.
func patient(value string, n int) []byte {
	return fmt.Appendf(nil,
		`{"resourceType":"Patient","identifier":[{"system":%q,"value":%q}],`+
			`"name":[{"family":"Load","given":["Seed %d"]}],"birthDate":"%04d-%02d-%02d"}`,
		IdentifierSystem, value, n, 1940+n%70, 1+n%12, 1+n%28)
}

// seed creates cfg.Seed Patients over cfg.Conns connections and returns
// their ids in order; the first failure stops it.
func (r *runner) seed(parent context.Context) ([]string, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	ids := make([]string, r.cfg.Seed)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(r.cfg.Conns, r.cfg.Seed) {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := int(next.Add(1)) - 1
				if n >= len(ids) {
					return
				}
				id, err := r.seedOne(ctx, n)
				if err != nil {
					cancel(err)
					return
				}
				ids[n] = id
			}
		})
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("load: seeding: %w", err)
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return ids, nil
}

func (r *runner) seedOne(ctx context.Context, n int) (string, error) {
	body := patient(r.identifier(n), n)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.create.String(), bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("load: seed Patient %d: %w", n, err)
	}
	req.Header = r.seedHdr.Clone()
	resp, err := r.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("load: seed Patient %d: %w", n, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxSeedReply))
	if err != nil {
		return "", fmt.Errorf("load: seed Patient %d: %s: reading body: %w", n, resp.Status, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("load: seed Patient %d: %s: %s", n, resp.Status, clip(reply))
	}
	id := patientID(resp.Header.Get("Location"), reply)
	if id == "" {
		return "", fmt.Errorf("load: seed Patient %d: %s: no id in Location %q or body: %s",
			n, resp.Status, resp.Header.Get("Location"), clip(reply))
	}
	return id, nil
}

func (r *runner) identifier(n int) string { return r.runID + "-" + strconv.Itoa(n) }

// patientID returns the id in a Location header (".../Patient/{id}" or
// ".../Patient/{id}/_history/{v}", absolute or relative) or else the id of
// the returned resource.
func patientID(location string, body []byte) string {
	if i := strings.LastIndex("/"+location, "/Patient/"); i >= 0 {
		rest := ("/" + location)[i+len("/Patient/"):]
		rest, _, _ = strings.Cut(rest, "/")
		rest, _, _ = strings.Cut(rest, "?")
		if id, err := url.PathUnescape(rest); err == nil && id != "" {
			return id
		}
	}
	var res struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	if json.Unmarshal(body, &res) == nil && res.ResourceType == "Patient" {
		return res.ID
	}
	return ""
}

// clip returns the first sampleBytes of b with runs of white space folded.
func clip(b []byte) string {
	if len(b) > sampleBytes {
		b = b[:sampleBytes]
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// target builds the request URLs of the seeded Patients.
func (r *runner) target(ids []string) {
	r.reads = make([]*url.URL, len(ids))
	r.search = make([]*url.URL, len(ids))
	for n, id := range ids {
		r.reads[n] = r.create.JoinPath(id)
		s := *r.create
		s.RawQuery = "identifier=" + url.QueryEscape(IdentifierSystem+"|"+r.identifier(n))
		r.search[n] = &s
	}
}

// phase runs every worker until d has passed or ctx ends and returns the wall
// time until the last one stopped.
func (r *runner) phase(ctx context.Context, workers []*worker, d time.Duration) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
	return time.Since(start)
}

// A worker issues requests back to back on one connection and records them
// in its own stats; nothing it touches per request is shared.
type worker struct {
	r       *runner
	rng     *mrand.Rand
	stats   [numKinds]kindRecord
	samples []sample
	buf     [sampleBytes]byte
}

type kindRecord struct {
	requests, errors int64
	max              time.Duration
	hist             histogram
}

type sample struct {
	at   time.Time
	desc string
}

func (r *runner) newWorker() *worker {
	return &worker{r: r, rng: mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))}
}

func (w *worker) reset() {
	w.stats = [numKinds]kindRecord{}
	w.samples = w.samples[:0]
}

func (w *worker) run(ctx context.Context) {
	r := w.r
	base := &http.Request{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	get := *base.WithContext(ctx)
	get.Method, get.Header = http.MethodGet, r.getHdr
	post := *base.WithContext(ctx)
	post.Method, post.Header, post.URL = http.MethodPost, r.postHdr, r.create
	post.ContentLength = int64(len(r.body))
	post.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(r.body)), nil }

	done := ctx.Done()
	for {
		select {
		case <-done:
			return
		default:
		}
		k := w.pick()
		req := new(http.Request)
		switch k {
		case kindRead:
			*req = get
			req.URL = r.reads[w.rng.IntN(len(r.reads))]
		case kindSearch:
			*req = get
			req.URL = r.search[w.rng.IntN(len(r.search))]
		case kindCreate:
			*req = post
			req.Body = io.NopCloser(bytes.NewReader(r.body))
		}
		w.do(ctx, k, req)
	}
}

func (w *worker) pick() kind {
	if !w.r.mixed {
		return w.r.fixed
	}
	switch p := w.rng.IntN(100); {
	case p < 70:
		return kindRead
	case p < 90:
		return kindSearch
	default:
		return kindCreate
	}
}

// do sends req and records it. A request cut short because ctx ended (the
// phase is over) is dropped: it says nothing about the server.
func (w *worker) do(ctx context.Context, k kind, req *http.Request) {
	start := time.Now()
	resp, err := w.r.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		rec := &w.stats[k]
		rec.requests++
		rec.errors++
		w.sample(func() string { return kindNames[k] + ": transport: " + err.Error() })
		return
	}
	ok := resp.StatusCode/100 == 2
	var head []byte
	if !ok && len(w.samples) < maxSamples {
		n, _ := io.ReadFull(resp.Body, w.buf[:])
		head = w.buf[:n]
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil && ctx.Err() != nil {
		return
	}

	rec := &w.stats[k]
	rec.requests++
	rec.hist.record(elapsed)
	rec.max = max(rec.max, elapsed)
	switch {
	case !ok:
		rec.errors++
		w.sample(func() string { return kindNames[k] + ": " + resp.Status + ": " + clip(head) })
	case err != nil:
		rec.errors++
		w.sample(func() string { return kindNames[k] + ": " + resp.Status + ": reading body: " + err.Error() })
	}
}

// sample keeps the description of an error if there is room and it is new.
func (w *worker) sample(desc func() string) {
	if len(w.samples) >= maxSamples {
		return
	}
	d := desc()
	for _, s := range w.samples {
		if s.desc == d {
			return
		}
	}
	w.samples = append(w.samples, sample{at: time.Now(), desc: d})
}
