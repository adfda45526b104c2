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
	ScenarioUpdate = "update" // PUT Patient/{id} of one of the worker's share of the seeded Patients (a new version)
	ScenarioMixed  = "mixed"  // 70% read, 20% search, 5% create, 5% update
	ScenarioCustom = "custom" // the Config.Requests, chosen at random; nothing seeded
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

	// Requests, if set, are what the measured phase sends instead of a
	// scenario's Patients (Scenario is then ScenarioCustom and nothing is
	// seeded): each request is one of them chosen at random, reported as
	// the kind "request".
	Requests []Request

	// Interval, if positive, cuts the measured phase into intervals of
	// that length: OnInterval receives the report of each one as it ends
	// (Duration its length, At its end) while the workers go on. A last
	// remnant shorter than a tenth of Interval is not reported on its own;
	// every request counts in the Report that Run returns.
	Interval   time.Duration
	OnInterval func(Report)

	// Client is optional. The default has a Transport with
	// MaxIdleConnsPerHost = Conns, HTTP/1.1 only, no compression and no
	// proxy; Run closes its idle connections when it returns.
	Client *http.Client
}

// A Request is one request of a custom run (Config.Requests). The run's
// headers (Accept, Authorization, X-Purpose-Of-Use, and Content-Type
// application/fhir+json when there is a body) are sent unless Header
// overrides them.
type Request struct {
	Method string // default GET (POST when Body is set)
	Path   string // relative to Config.URL, with its query; empty: Config.URL itself
	Body   []byte
	Header http.Header
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

	if !r.custom {
		ids, err := r.seed(ctx)
		if err != nil {
			return Report{}, err
		}
		r.target(ids)
	}

	workers := make([]*worker, r.cfg.Conns)
	for i := range workers {
		workers[i] = r.newWorker(i)
	}
	if r.cfg.Warmup > 0 {
		r.phase(ctx, workers, r.cfg.Warmup, 0)
		if err := ctx.Err(); err != nil {
			return Report{}, fmt.Errorf("load: warm-up: %w", err)
		}
		for _, w := range workers {
			w.reset()
		}
	}
	elapsed := r.phase(ctx, workers, r.cfg.Duration, r.cfg.Interval)
	totals := make([]*stats, len(workers))
	for i, w := range workers {
		totals[i] = &w.total
	}
	return r.report(totals, elapsed), ctx.Err()
}

type kind int

const (
	kindRead kind = iota
	kindSearch
	kindCreate
	kindUpdate
	kindCustom
	numKinds
)

var kindNames = [numKinds]string{"read", "search", "create", "update", "request"}

// runner is the state of one Run shared read-only by its workers.
type runner struct {
	cfg    Config
	client *http.Client
	runID  string
	fixed  kind // the kind of every request, unless mixed
	mixed  bool
	custom bool

	create   *url.URL   // .../Patient
	reads    []*url.URL // .../Patient/{id}, one per seeded Patient
	search   []*url.URL // .../Patient?identifier=..., one per seeded Patient
	updates  [][]byte   // the Patient of each update, with its id, one per seeded Patient
	body     []byte     // the Patient of every create request
	requests []custom   // the requests of a custom run
	getHdr   http.Header
	postHdr  http.Header
	seedHdr  http.Header
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
		if len(cfg.Requests) > 0 {
			cfg.Scenario = ScenarioCustom
		}
	}
	switch {
	case cfg.Conns < 0:
		return nil, fmt.Errorf("load: conns %d: want at least 1", cfg.Conns)
	case cfg.Duration < 0:
		return nil, fmt.Errorf("load: duration %v: want a positive duration", cfg.Duration)
	case cfg.Seed < 0:
		return nil, fmt.Errorf("load: seed %d: want at least 1", cfg.Seed)
	case cfg.Interval < 0:
		return nil, fmt.Errorf("load: interval %v: want a positive duration", cfg.Interval)
	case (cfg.Scenario == ScenarioCustom) != (len(cfg.Requests) > 0):
		return nil, fmt.Errorf("load: scenario %q with %d requests: custom runs, and only they, have Requests", cfg.Scenario, len(cfg.Requests))
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
	case ScenarioUpdate:
		r.fixed = kindUpdate
	case ScenarioMixed:
		r.mixed = true
	case ScenarioCustom:
		r.fixed, r.custom = kindCustom, true
	default:
		return nil, fmt.Errorf("load: scenario %q: want %s, %s, %s, %s or %s",
			cfg.Scenario, ScenarioRead, ScenarioSearch, ScenarioCreate, ScenarioUpdate, ScenarioMixed)
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
	for i, q := range cfg.Requests {
		c, err := r.customRequest(base, q)
		if err != nil {
			return nil, fmt.Errorf("load: request %d: %w", i, err)
		}
		r.requests = append(r.requests, c)
	}
	return r, nil
}

// custom is a prepared Request.
type custom struct {
	method string
	url    *url.URL
	header http.Header
	body   []byte
}

func (r *runner) customRequest(base *url.URL, q Request) (custom, error) {
	c := custom{method: q.Method, url: base, body: q.Body}
	if c.method == "" {
		c.method = http.MethodGet
		if q.Body != nil {
			c.method = http.MethodPost
		}
	}
	if q.Path != "" {
		u, err := url.Parse(base.String() + "/" + strings.TrimLeft(q.Path, "/"))
		if err != nil {
			return custom{}, fmt.Errorf("path %q: %w", q.Path, err)
		}
		c.url = u
	}
	c.header = r.getHdr.Clone()
	if q.Body != nil {
		c.header.Set("Content-Type", fhirJSON)
	}
	for k, v := range q.Header {
		c.header[http.CanonicalHeaderKey(k)] = v
	}
	return c, nil
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

// target builds the requests about the seeded Patients.
func (r *runner) target(ids []string) {
	r.reads = make([]*url.URL, len(ids))
	r.search = make([]*url.URL, len(ids))
	r.updates = make([][]byte, len(ids))
	for n, id := range ids {
		r.reads[n] = r.create.JoinPath(id)
		s := *r.create
		s.RawQuery = "identifier=" + url.QueryEscape(IdentifierSystem+"|"+r.identifier(n))
		r.search[n] = &s
		body := patient(r.identifier(n), n)
		r.updates[n] = append(fmt.Appendf(nil, `{"resourceType":"Patient","id":%q,`, id), body[len(`{"resourceType":"Patient",`):]...)
	}
}

// phase runs every worker until d has passed or ctx ends and returns the wall
// time until the last one stopped. With every > 0 it reports each interval
// of that length to Config.OnInterval as it ends.
func (r *runner) phase(ctx context.Context, workers []*worker, d, every time.Duration) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(ctx) })
	}
	last := start
	if every > 0 {
		tick := time.NewTicker(every)
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-tick.C:
				now := time.Now()
				r.interval(workers, start, last, now)
				last = now
			}
		}
		tick.Stop()
	}
	wg.Wait()
	end := time.Now()
	if every > 0 && end.Sub(last) >= every/10 {
		r.interval(workers, start, last, end)
	}
	return end.Sub(start)
}

// interval takes the interval stats of every worker (giving it back a
// cleared set) and reports them to OnInterval as the interval from..now.
func (r *runner) interval(workers []*worker, start, from, now time.Time) {
	sets := make([]*stats, len(workers))
	for i, w := range workers {
		w.mu.Lock()
		sets[i], w.ival = w.ival, w.spare
		w.mu.Unlock()
	}
	rep := r.report(sets, now.Sub(from))
	rep.At = now.Sub(start)
	if r.cfg.OnInterval != nil {
		r.cfg.OnInterval(rep)
	}
	for i, w := range workers {
		sets[i].clear()
		w.spare = sets[i]
	}
}

// A worker issues requests back to back on one connection and records them
// in its own stats; nothing it touches per request is shared but its mutex,
// which only the end of an interval contends.
type worker struct {
	r    *runner
	rng  *mrand.Rand
	mine []int // the seeded Patients it updates
	buf  [sampleBytes]byte

	mu    sync.Mutex
	total stats
	ival  *stats // the current interval's, when the run has intervals
	spare *stats // the next interval's (touched by the interval collector only)
}

// stats are the records of some requests of one worker.
type stats struct {
	kinds   [numKinds]kindRecord
	samples []sample
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

func (s *stats) clear() {
	*s = stats{samples: s.samples[:0]}
}

// add records one request: timed when it got a response, failed when desc
// is not empty.
func (s *stats) add(k kind, elapsed time.Duration, timed bool, desc string) {
	rec := &s.kinds[k]
	rec.requests++
	if timed {
		rec.hist.record(elapsed)
		rec.max = max(rec.max, elapsed)
	}
	if desc == "" {
		return
	}
	rec.errors++
	if len(s.samples) >= maxSamples {
		return
	}
	for _, x := range s.samples {
		if x.desc == desc {
			return
		}
	}
	s.samples = append(s.samples, sample{at: time.Now(), desc: desc})
}

// newWorker makes the i-th worker. It updates the seeded Patients n with
// n ≡ i (mod Conns), so that no two updates of one Patient are ever in
// flight together (a FHIR server may answer 409 to the second); with fewer
// Patients than workers, any.
func (r *runner) newWorker(i int) *worker {
	w := &worker{r: r, rng: mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))}
	for n := i; n < len(r.reads); n += r.cfg.Conns {
		w.mine = append(w.mine, n)
	}
	if len(w.mine) == 0 {
		for n := range r.reads {
			w.mine = append(w.mine, n)
		}
	}
	if r.cfg.Interval > 0 {
		w.ival, w.spare = new(stats), new(stats)
	}
	return w
}

func (w *worker) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.total.clear()
	if w.ival != nil {
		w.ival.clear()
	}
}

func (w *worker) record(k kind, elapsed time.Duration, timed bool, desc string) {
	w.mu.Lock()
	w.total.add(k, elapsed, timed, desc)
	if w.ival != nil {
		w.ival.add(k, elapsed, timed, desc)
	}
	w.mu.Unlock()
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
		case kindUpdate:
			n := w.mine[w.rng.IntN(len(w.mine))]
			*req = post
			req.Method, req.URL = http.MethodPut, r.reads[n]
			withBody(req, r.updates[n])
		case kindCustom:
			c := &r.requests[w.rng.IntN(len(r.requests))]
			*req = get
			req.Method, req.URL, req.Header = c.method, c.url, c.header
			if c.body != nil {
				withBody(req, c.body)
			}
		}
		w.do(ctx, k, req)
	}
}

func withBody(req *http.Request, body []byte) {
	req.ContentLength = int64(len(body))
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
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
	case p < 95:
		return kindCreate
	default:
		return kindUpdate
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
		w.record(k, 0, false, kindNames[k]+": transport: "+err.Error())
		return
	}
	ok := resp.StatusCode/100 == 2
	var head []byte
	if !ok {
		n, _ := io.ReadFull(resp.Body, w.buf[:])
		head = w.buf[:n]
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil && ctx.Err() != nil {
		return
	}
	var desc string
	switch {
	case !ok:
		desc = kindNames[k] + ": " + resp.Status + ": " + clip(head)
	case err != nil:
		desc = kindNames[k] + ": " + resp.Status + ": reading body: " + err.Error()
	}
	w.record(k, elapsed, true, desc)
}
