package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peer is the generator's test peer: a tiny in-memory Patient endpoint under
// /fhir with knobs to misbehave. It is not a stand-in for the hub.
type peer struct {
	token, purpose string // required header values when set
	createStatus   int    // answer every POST with this status and an OperationOutcome, when set
	omitLocation   bool   // answer POST without a Location header
	failReadEvery  int64  // answer 500 to every nth read, when set
	dropReadEvery  int64  // close the connection without answering every nth read, when set
	onRead         func(n int64)

	mu      sync.RWMutex
	byID    map[string][]byte
	byIdent map[string]string

	reads, searches, creates, updates atomic.Int64 // requests received, by kind
	conns                             atomic.Int64 // connections accepted
	failed, misses, refused           atomic.Int64 // 500s sent, ids or identifiers not found, bad headers
}

func (p *peer) start(t *testing.T) string {
	t.Helper()
	p.byID, p.byIdent = map[string][]byte{}, map[string]string{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /fhir/Patient", p.create)
	mux.HandleFunc("GET /fhir/Patient/{id}", p.read)
	mux.HandleFunc("PUT /fhir/Patient/{id}", p.update)
	mux.HandleFunc("GET /fhir/Patient", p.search)
	srv := httptest.NewUnstartedServer(p.headers(mux))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			p.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/fhir"
}

func (p *peer) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bad := r.Header.Get("Accept") != fhirJSON ||
			(r.Method == http.MethodPost && r.Header.Get("Content-Type") != fhirJSON) ||
			(p.token != "" && r.Header.Get("Authorization") != "Bearer "+p.token) ||
			(p.purpose != "" && r.Header.Get("X-Purpose-Of-Use") != p.purpose)
		if bad {
			p.refused.Add(1)
			outcome(w, http.StatusUnauthorized, "security", "bad headers")
			return
		}
		w.Header().Set("Content-Type", fhirJSON)
		next.ServeHTTP(w, r)
	})
}

func outcome(w http.ResponseWriter, status int, code, diagnostics string) {
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":%q,"diagnostics":%q}]}`,
		code, diagnostics)
}

func (p *peer) create(w http.ResponseWriter, r *http.Request) {
	p.creates.Add(1)
	if p.createStatus != 0 {
		outcome(w, p.createStatus, "invalid", "seed refused by peer")
		return
	}
	var res map[string]any
	if err := json.NewDecoder(r.Body).Decode(&res); err != nil || res["resourceType"] != "Patient" {
		outcome(w, http.StatusBadRequest, "invalid", "not a Patient")
		return
	}
	var ident struct {
		Identifier []struct{ System, Value string } `json:"identifier"`
	}
	b, _ := json.Marshal(res)
	_ = json.Unmarshal(b, &ident)

	p.mu.Lock()
	id := "p" + strconv.Itoa(len(p.byID)+1)
	res["id"] = id
	body, _ := json.Marshal(res)
	p.byID[id] = body
	for _, i := range ident.Identifier {
		p.byIdent[i.System+"|"+i.Value] = id
	}
	p.mu.Unlock()

	if !p.omitLocation {
		w.Header().Set("Location", "http://"+r.Host+"/fhir/Patient/"+id+"/_history/1")
	}
	w.WriteHeader(http.StatusCreated)
	w.Write(body)
}

func (p *peer) update(w http.ResponseWriter, r *http.Request) {
	p.updates.Add(1)
	var res struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	body, err := io.ReadAll(r.Body)
	if err != nil || json.Unmarshal(body, &res) != nil || res.ResourceType != "Patient" || res.ID != r.PathValue("id") {
		outcome(w, http.StatusBadRequest, "invalid", "not this Patient")
		return
	}
	p.mu.Lock()
	_, ok := p.byID[res.ID]
	if ok {
		p.byID[res.ID] = body
	}
	p.mu.Unlock()
	if !ok {
		p.misses.Add(1)
		outcome(w, http.StatusNotFound, "not-found", "no such Patient")
		return
	}
	w.Write(body)
}

func (p *peer) read(w http.ResponseWriter, r *http.Request) {
	n := p.reads.Add(1)
	if p.onRead != nil {
		p.onRead(n)
	}
	if p.dropReadEvery > 0 && n%p.dropReadEvery == 0 {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
			return
		}
	}
	if p.failReadEvery > 0 && n%p.failReadEvery == 0 {
		p.failed.Add(1)
		outcome(w, http.StatusInternalServerError, "exception", "peer failure "+strconv.FormatInt(n%2, 10))
		return
	}
	p.mu.RLock()
	body, ok := p.byID[r.PathValue("id")]
	p.mu.RUnlock()
	if !ok {
		p.misses.Add(1)
		outcome(w, http.StatusNotFound, "not-found", "no such Patient")
		return
	}
	w.Write(body)
}

func (p *peer) search(w http.ResponseWriter, r *http.Request) {
	p.searches.Add(1)
	p.mu.RLock()
	id, ok := p.byIdent[r.URL.Query().Get("identifier")]
	body := p.byID[id]
	p.mu.RUnlock()
	if !ok {
		p.misses.Add(1)
		fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset","total":0}`)
		return
	}
	fmt.Fprintf(w, `{"resourceType":"Bundle","type":"searchset","total":1,"entry":[{"resource":%s}]}`, body)
}

// checkReport asserts what holds of every report: the kinds add up to the
// totals and the percentiles are ordered.
func checkReport(t *testing.T, rep Report, cfg Config) {
	t.Helper()
	if rep.Scenario != cfg.Scenario || rep.Conns != cfg.Conns || rep.Seeded != cfg.Seed {
		t.Errorf("report scenario %q conns %d seeded %d, want %q %d %d",
			rep.Scenario, rep.Conns, rep.Seeded, cfg.Scenario, cfg.Conns, cfg.Seed)
	}
	if rep.Requests <= 0 || rep.RPS <= 0 || rep.Duration <= 0 {
		t.Errorf("requests %d, rps %v, duration %v: want all positive", rep.Requests, rep.RPS, rep.Duration)
	}
	var requests, errs int64
	for name, s := range rep.ByKind {
		requests += s.Requests
		errs += s.Errors
		if !(0 < s.P50 && s.P50 <= s.P90 && s.P90 <= s.P99 && s.P99 <= s.Max) {
			t.Errorf("%s: p50 %v p90 %v p99 %v max %v: want 0 < p50 ≤ p90 ≤ p99 ≤ max", name, s.P50, s.P90, s.P99, s.Max)
		}
		if s.Errors > s.Requests {
			t.Errorf("%s: %d errors in %d requests", name, s.Errors, s.Requests)
		}
	}
	if requests != rep.Requests || errs != rep.Errors {
		t.Errorf("kinds add up to %d requests, %d errors; totals say %d, %d", requests, errs, rep.Requests, rep.Errors)
	}
	if !(0 < rep.P50 && rep.P50 <= rep.P90 && rep.P90 <= rep.P99 && rep.P99 <= rep.Max) {
		t.Errorf("p50 %v p90 %v p99 %v max %v: want 0 < p50 ≤ p90 ≤ p99 ≤ max", rep.P50, rep.P90, rep.P99, rep.Max)
	}
	if (rep.Errors > 0) != (len(rep.ErrorSamples) > 0) || len(rep.ErrorSamples) > maxSamples {
		t.Errorf("%d errors with %d samples", rep.Errors, len(rep.ErrorSamples))
	}
	if s := rep.String(); !strings.Contains(s, "scenario "+cfg.Scenario) || !strings.Contains(s, "all") {
		t.Errorf("String() = %q: want the scenario and an all row", s)
	}
}

// checkReused asserts that the workers kept their connections alive rather
// than dialing per request. The Transport may dial a spare connection when
// one frees up while another is being dialed, hence the slack.
func checkReused(t *testing.T, p *peer, rep Report) {
	t.Helper()
	if n := p.conns.Load(); n > 2*int64(rep.Conns) {
		t.Errorf("peer accepted %d connections for %d requests on %d conns: want keep-alive reuse", n, rep.Requests, rep.Conns)
	}
}

// checkServed asserts that the client counted what the server received,
// less at most one interrupted request per connection at the end.
func checkServed(t *testing.T, name string, client, server int64, conns int) {
	t.Helper()
	if client > server || server-client > int64(conns) {
		t.Errorf("%s: client counted %d, server received %d: want 0 ≤ difference ≤ %d conns", name, client, server, conns)
	}
}

func TestRunScenarios(t *testing.T) {
	tests := []struct {
		scenario string
		kinds    []string
	}{
		{ScenarioRead, []string{"read"}},
		{ScenarioSearch, []string{"search"}},
		{ScenarioCreate, []string{"create"}},
		{ScenarioUpdate, []string{"update"}},
		{ScenarioMixed, []string{"create", "read", "search", "update"}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			p := &peer{}
			cfg := Config{URL: p.start(t), Conns: 4, Duration: 200 * time.Millisecond, Scenario: tt.scenario, Seed: 20, Warmup: -1}
			rep, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			checkReport(t, rep, cfg)
			kinds := make([]string, 0, len(rep.ByKind))
			for k := range rep.ByKind {
				kinds = append(kinds, k)
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, tt.kinds) {
				t.Errorf("kinds %v, want %v", kinds, tt.kinds)
			}
			if rep.Errors != 0 || p.misses.Load() != 0 || p.refused.Load() != 0 {
				t.Errorf("errors %d (%v), peer misses %d, refused %d: want none",
					rep.Errors, rep.ErrorSamples, p.misses.Load(), p.refused.Load())
			}
			checkServed(t, "read", rep.ByKind["read"].Requests, p.reads.Load(), cfg.Conns)
			checkServed(t, "search", rep.ByKind["search"].Requests, p.searches.Load(), cfg.Conns)
			checkServed(t, "create", rep.ByKind["create"].Requests, p.creates.Load()-int64(cfg.Seed), cfg.Conns)
			checkServed(t, "update", rep.ByKind["update"].Requests, p.updates.Load(), cfg.Conns)
			checkReused(t, p, rep)
		})
	}
}

func TestRunHeadersWarmupAndBodyIDs(t *testing.T) {
	p := &peer{token: "s3cret", purpose: "TREAT", omitLocation: true}
	cfg := Config{
		URL: p.start(t) + "/", Token: "s3cret", Purpose: "TREAT",
		Conns: 2, Duration: 100 * time.Millisecond, Scenario: ScenarioMixed, Seed: 5, Warmup: 100 * time.Millisecond,
	}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkReport(t, rep, cfg)
	if rep.Errors != 0 || p.misses.Load() != 0 || p.refused.Load() != 0 {
		t.Errorf("errors %d (%v), peer misses %d, refused %d: want none",
			rep.Errors, rep.ErrorSamples, p.misses.Load(), p.refused.Load())
	}
	// The warm-up's requests reached the peer but are not in the report.
	received := p.reads.Load() + p.searches.Load() + p.creates.Load() + p.updates.Load() - int64(cfg.Seed)
	if received <= rep.Requests+int64(cfg.Conns) {
		t.Errorf("peer received %d requests, report counts %d: want the warm-up's on top", received, rep.Requests)
	}
}

func TestRunCountsErrors(t *testing.T) {
	p := &peer{failReadEvery: 3}
	cfg := Config{URL: p.start(t), Conns: 4, Duration: 200 * time.Millisecond, Scenario: ScenarioRead, Seed: 10, Warmup: -1}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkReport(t, rep, cfg)
	if rep.Errors == 0 || rep.Errors == rep.Requests {
		t.Errorf("%d errors in %d requests: want some but not all", rep.Errors, rep.Requests)
	}
	checkServed(t, "read", rep.Requests, p.reads.Load(), cfg.Conns)
	checkServed(t, "500s", rep.Errors, p.failed.Load(), cfg.Conns)
	checkReused(t, p, rep) // error bodies are drained too
	for _, s := range rep.ErrorSamples {
		if !strings.HasPrefix(s, "read: 500 Internal Server Error: ") || !strings.Contains(s, "peer failure") {
			t.Errorf("error sample %q: want the kind, status and body", s)
		}
	}
	if len(rep.ErrorSamples) != 2 {
		t.Errorf("error samples %q: want the 2 distinct ones", rep.ErrorSamples)
	}
}

func TestRunCountsTransportErrors(t *testing.T) {
	p := &peer{dropReadEvery: 5}
	cfg := Config{URL: p.start(t), Conns: 4, Duration: 200 * time.Millisecond, Scenario: ScenarioRead, Seed: 10, Warmup: -1}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkReport(t, rep, cfg)
	if rep.Errors == 0 || rep.Errors == rep.Requests {
		t.Errorf("%d errors in %d requests: want some but not all", rep.Errors, rep.Requests)
	}
	for _, s := range rep.ErrorSamples {
		if !strings.HasPrefix(s, "read: transport: ") {
			t.Errorf("error sample %q: want a transport error", s)
		}
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	p := &peer{onRead: func(n int64) {
		if n == 200 {
			cancel()
		}
	}}
	cfg := Config{URL: p.start(t), Conns: 4, Duration: time.Hour, Scenario: ScenarioRead, Seed: 10, Warmup: -1}
	rep, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error %v, want context.Canceled", err)
	}
	if rep.Duration >= cfg.Duration {
		t.Errorf("measured %v of %v: want an early stop", rep.Duration, cfg.Duration)
	}
	checkReport(t, rep, cfg)
	if rep.Errors != 0 {
		t.Errorf("errors %d (%v): interrupted requests must not count", rep.Errors, rep.ErrorSamples)
	}
	checkServed(t, "read", rep.Requests, p.reads.Load(), cfg.Conns)
}

func TestRunSeedFailure(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		url  func(t *testing.T) string
		want []string
	}{
		{"status and body", (&peer{createStatus: http.StatusBadRequest}).start, []string{"seed Patient", "400 Bad Request", "seed refused by peer"}},
		{"transport", func(*testing.T) string { return closed.URL + "/fhir" }, []string{"seed Patient", "connect"}},
		{"no id", func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusCreated)
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}, []string{"seed Patient", "201 Created", "no id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(t.Context(), Config{URL: tt.url(t), Conns: 2, Duration: time.Hour, Seed: 3})
			if err == nil {
				t.Fatal("Run succeeded, want a seed error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q: want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestRunRejectsConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no URL", Config{}, "URL"},
		{"relative URL", Config{URL: "/fhir"}, "URL"},
		{"ftp URL", Config{URL: "ftp://h/fhir"}, "URL"},
		{"scenario", Config{URL: "http://127.0.0.1:1/fhir", Scenario: "delete"}, "scenario"},
		{"conns", Config{URL: "http://127.0.0.1:1/fhir", Conns: -1}, "conns"},
		{"duration", Config{URL: "http://127.0.0.1:1/fhir", Duration: -time.Second}, "duration"},
		{"seed", Config{URL: "http://127.0.0.1:1/fhir", Seed: -1}, "seed"},
		{"interval", Config{URL: "http://127.0.0.1:1/fhir", Interval: -time.Second}, "interval"},
		{"custom without requests", Config{URL: "http://127.0.0.1:1/fhir", Scenario: ScenarioCustom}, "requests"},
		{"requests with a scenario", Config{URL: "http://127.0.0.1:1/fhir", Scenario: ScenarioRead, Requests: []Request{{}}}, "requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error %v, want one about %s", err, tt.want)
			}
		})
	}
}

func TestPatientID(t *testing.T) {
	tests := []struct {
		name, location, body, want string
	}{
		{"absolute with history", "http://h/fhir/Patient/abc-1/_history/2", "", "abc-1"},
		{"relative with history", "Patient/42/_history/1", "", "42"},
		{"without history", "http://h/fhir/Patient/7", "", "7"},
		{"escaped", "/fhir/Patient/a%2Eb/_history/1", "", "a.b"},
		{"from body", "", `{"resourceType":"Patient","id":"b9"}`, "b9"},
		{"other resource in body", "", `{"resourceType":"OperationOutcome","id":"x"}`, ""},
		{"nothing", "http://h/fhir/Observation/1", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := patientID(tt.location, []byte(tt.body)); got != tt.want {
				t.Errorf("patientID(%q, %q) = %q, want %q", tt.location, tt.body, got, tt.want)
			}
		})
	}
}

func TestSeedPatientIsFHIR(t *testing.T) {
	for _, n := range []int{0, 11, 27, 199} {
		var p struct {
			ResourceType string `json:"resourceType"`
			Identifier   []struct{ System, Value string }
			Name         []struct{ Family string }
			BirthDate    string `json:"birthDate"`
		}
		if err := json.Unmarshal(patient("run-"+strconv.Itoa(n), n), &p); err != nil {
			t.Fatalf("patient %d: %v", n, err)
		}
		if _, err := time.Parse(time.DateOnly, p.BirthDate); err != nil {
			t.Errorf("patient %d birthDate %q: %v", n, p.BirthDate, err)
		}
		if p.ResourceType != "Patient" || len(p.Identifier) != 1 || p.Identifier[0].System != IdentifierSystem ||
			p.Identifier[0].Value != "run-"+strconv.Itoa(n) || len(p.Name) != 1 {
			t.Errorf("patient %d = %+v", n, p)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	values := make([]time.Duration, 100_000)
	h := new(histogram)
	for i := range values {
		// Log-uniform from 100ns to 10s.
		values[i] = time.Duration(math.Exp(math.Log(100) + rng.Float64()*(math.Log(1e10)-math.Log(100))))
		h.record(values[i])
	}
	slices.Sort(values)
	hi := values[len(values)-1]
	for _, q := range []float64{0.001, 0.5, 0.9, 0.99, 0.999, 1} {
		want := values[int(math.Ceil(q*float64(len(values))))-1]
		got := h.quantile(q, hi)
		if e := math.Abs(float64(got-want)) / float64(want); e > 0.01 {
			t.Errorf("q%v = %v, want %v ±1%% (error %.3f%%)", q, got, want, 100*e)
		}
	}
	if got := h.quantile(1, hi); got > hi {
		t.Errorf("q1 = %v, above the max %v", got, hi)
	}
}

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1 << 20, 1<<20 + 1, maxValue, maxValue + 1, math.MaxUint64} {
		i := bucketOf(v)
		if i < prev || i >= nBuckets {
			t.Errorf("bucketOf(%d) = %d: want ≥ %d and < %d", v, i, prev, nBuckets)
		}
		prev = i
		if mid, c := bucketValue(i), min(v, maxValue); bucketOf(mid) != i || math.Abs(float64(mid)-float64(c)) > float64(c)/256+1 {
			t.Errorf("bucket %d of %d has midpoint %d", i, v, mid)
		}
	}
}

func TestRunCustomRequests(t *testing.T) {
	var gets, posts, other atomic.Int64
	var bad atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/base/Patient" && r.URL.RawQuery == "family=Durand&_count=2":
			gets.Add(1)
			if r.Header.Get("Accept") != fhirJSON || r.Header.Get("Authorization") != "Bearer t" {
				bad.Store("GET headers " + fmt.Sprint(r.Header))
			}
		case r.Method == http.MethodPost && r.URL.Path == "/base":
			posts.Add(1)
			b, _ := io.ReadAll(r.Body)
			if string(b) != `{"input":{}}` || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Purpose-Of-Use") != "P" {
				bad.Store("POST " + string(b) + " " + fmt.Sprint(r.Header))
			}
		default:
			other.Add(1)
		}
		fmt.Fprint(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	cfg := Config{
		URL: srv.URL + "/base/", Token: "t", Purpose: "P", Conns: 3, Duration: 200 * time.Millisecond, Warmup: -1,
		Requests: []Request{
			{Path: "Patient?family=Durand&_count=2"},
			{Body: []byte(`{"input":{}}`), Header: http.Header{"content-type": {"application/json"}}},
		},
	}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	cfg.Scenario = ScenarioCustom
	checkReport(t, rep, cfg)
	if got := slices.Collect(maps.Keys(rep.ByKind)); !slices.Equal(got, []string{"request"}) {
		t.Errorf("kinds %v, want [request]", got)
	}
	if v := bad.Load(); v != nil {
		t.Errorf("a request was not what was asked: %v", v)
	}
	if rep.Errors != 0 || other.Load() != 0 || gets.Load() == 0 || posts.Load() == 0 {
		t.Errorf("errors %d %v; server got %d GETs, %d POSTs, %d others: want both kinds and nothing else",
			rep.Errors, rep.ErrorSamples, gets.Load(), posts.Load(), other.Load())
	}
	checkServed(t, "requests", rep.Requests, gets.Load()+posts.Load(), cfg.Conns)
}

func TestRunIntervals(t *testing.T) {
	p := &peer{failReadEvery: 50}
	var mu sync.Mutex
	var got []Report
	cfg := Config{
		URL: p.start(t), Conns: 4, Duration: 500 * time.Millisecond, Scenario: ScenarioMixed, Seed: 10, Warmup: 50 * time.Millisecond,
		Interval: 100 * time.Millisecond,
		OnInterval: func(r Report) {
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		},
	}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkReport(t, rep, cfg)
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 4 || len(got) > 6 {
		t.Fatalf("%d interval reports of a 500ms run cut every 100ms, want 4 to 6", len(got))
	}
	var requests, errs int64
	var prev time.Duration
	for i, r := range got {
		if r.At <= prev || r.Duration <= 0 || r.At > rep.Duration {
			t.Errorf("interval %d: at %v lasting %v after %v: want increasing ends within the run (%v)", i, r.At, r.Duration, prev, rep.Duration)
		}
		prev = r.At
		requests += r.Requests
		errs += r.Errors
	}
	// The run's totals are the sum of the intervals, but for a remnant
	// shorter than a tenth of the interval.
	if requests > rep.Requests || float64(requests) < 0.8*float64(rep.Requests) || errs > rep.Errors {
		t.Errorf("intervals add up to %d requests, %d errors; the run counts %d, %d", requests, errs, rep.Requests, rep.Errors)
	}
	if rep.Errors == 0 {
		t.Error("the peer failed every 50th read: want errors in the report")
	}
}
