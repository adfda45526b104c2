package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/conformance/load"
	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/store"
)

// seedCareTeam stores patients with a hospital stay and observations each,
// written by the dev hospital, straight through the handler.
func seedCareTeam(b *testing.B, h *secureHub, patients, obsEach int) (obsIDs []string) {
	b.Helper()
	handler := h.s.Handler()
	tok := h.token("hospital-it")
	post := func(typ string, body map[string]any) string {
		req := httptest.NewRequest(http.MethodPost, "/fhir/"+typ, jsonBody(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Purpose-Of-Use", "HOPERAT")
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			b.Fatalf("seed %s: %d %s", typ, w.Code, w.Body.String())
		}
		loc := w.Header().Get("Location")
		var id string
		fmt.Sscanf(loc[len("http://example.com/fhir/"+typ+"/"):], "%36s", &id)
		return id
	}
	for i := 0; i < patients; i++ {
		pid := post("Patient", patient(fmt.Sprintf("P%d", i)))
		post("Encounter", map[string]any{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"code": "IMP"}, "subject": map[string]any{"reference": "Patient/" + pid}})
		for j := 0; j < obsEach; j++ {
			obsIDs = append(obsIDs, post("Observation", map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "HbA1c"},
				"subject": map[string]any{"reference": "Patient/" + pid}, "valueQuantity": map[string]any{"value": 7.1, "unit": "%"}}))
		}
	}
	return obsIDs
}

// BenchmarkDecision is one policy decision as a read takes it (input built
// from the indexes, care team and consents included, then OPA or its
// memo) over 1 000 observations of 100 patients; it reports the median and
// the 99th percentile.
func BenchmarkDecision(b *testing.B) {
	h := newSecureHub(b)
	ids := seedCareTeam(b, h, 100, 10)
	cl := &caller{claims: &devClaims(b, "hospital-clinician").Claims, purpose: "TREAT", now: time.Now().UTC().Format(time.RFC3339)}
	var times []time.Duration
	ctx := context.Background()
	i := 0
	for b.Loop() {
		err := h.s.db.View(func(tx *store.Tx) error {
			r, err := tx.Get("Observation", ids[i%len(ids)])
			if err != nil {
				return err
			}
			start := time.Now()
			_, err = h.s.decideOn(ctx, cl, tx, "read", r)
			times = append(times, time.Since(start))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
		if i%1000 == 0 { // decisions carry their second: a new second, new evaluations
			cl.now = time.Now().UTC().Format(time.RFC3339)
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkSearchFiltered is a 1 000-entry searchset decided per resource.
func BenchmarkSearchFiltered(b *testing.B) {
	h := newSecureHub(b)
	seedCareTeam(b, h, 100, 10)
	handler := h.s.Handler()
	tok := h.token("hospital-clinician")
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/fhir/Observation?_count=1000", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Purpose-Of-Use", "TREAT")
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("search: %d", w.Code)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/searchset")
}

// BenchmarkPolicyGET measures GET by id at 16 connections over HTTP on a
// hub without security (off), with JWT + OPA but no audit log (policy),
// and with both (policy+audit), and reports their rates and ratios. The
// three are measured in turns, round after round (each round seeds its
// own Patients), so that a shared machine's changing load weighs on each
// alike: the rates pool the rounds; policy/off-p50 is the median of the
// rounds' own ratios. The CPU time the process spends per request (hub and
// load client, seeding and warm-up included) is reported too: its ratio,
// policy/off-cpu, is what the rates' ratio tends to when the cores are the
// limit, and it hardly moves with the load of other processes on a shared
// machine. Run it with -benchtime 1x.
//
// Each hub's goroutines carry the profiler label hub=off, policy or
// policy+audit: a -cpuprofile can be cut per hub (pprof -tagfocus
// 'hub=^policy$').
func BenchmarkPolicyGET(b *testing.B) {
	const rounds, slice = 8, 500 * time.Millisecond // 4 s measured per hub
	type mode struct {
		name string
		url  string
		cfg  load.Config
		reqs int64
		time time.Duration
		cpu  time.Duration // of the whole process: hub and load client
	}
	run := func(m *mode) float64 {
		cfg := m.cfg
		cfg.URL, cfg.Conns, cfg.Duration, cfg.Warmup, cfg.Scenario, cfg.Seed = m.url, 16, slice, 200*time.Millisecond, load.ScenarioRead, 100
		cpu := processCPU() // seeding and warm-up included: both hubs alike
		rep, err := load.Run(context.Background(), cfg)
		if err != nil || rep.Errors > 0 {
			b.Fatalf("load %s: %v, %d errors %v", m.name, err, rep.Errors, rep.ErrorSamples)
		}
		m.reqs += rep.Requests
		m.time += rep.Duration
		m.cpu += processCPU() - cpu
		return rep.RPS
	}
	labelled := func(name string, start func()) {
		pprof.Do(context.Background(), pprof.Labels("hub", name), func(context.Context) { start() })
	}
	for b.Loop() {
		var off *hub
		var on, unaudited *secureHub
		labelled("off", func() { off = newHub(b) })
		labelled("policy", func() { unaudited = newSecureHubWith(b, func(c *Config) { c.NoAudit = true }) })
		labelled("policy+audit", func() { on = newSecureHub(b) })
		modes := []*mode{
			{name: "off", url: off.url},
			{name: "policy", url: unaudited.url, cfg: load.Config{Token: unaudited.token("hospital-clinician"), Purpose: "TREAT", SeedToken: unaudited.token("hospital-it"), SeedPurpose: "HOPERAT"}},
			{name: "policy+audit", url: on.url, cfg: load.Config{Token: on.token("hospital-clinician"), Purpose: "TREAT", SeedToken: on.token("hospital-it"), SeedPurpose: "HOPERAT"}},
		}
		var ratios []float64
		for range rounds {
			offRPS := run(modes[0])
			ratios = append(ratios, run(modes[1])/offRPS)
			run(modes[2])
		}
		rate := func(m *mode) float64 { return float64(m.reqs) / m.time.Seconds() }
		offRPS, policyRPS, auditedRPS := rate(modes[0]), rate(modes[1]), rate(modes[2])
		slices.Sort(ratios)
		b.ReportMetric(offRPS, "off-req/s")
		b.ReportMetric(policyRPS, "policy-req/s")
		b.ReportMetric(auditedRPS, "policy+audit-req/s")
		b.ReportMetric(policyRPS/offRPS, "policy/off")
		b.ReportMetric((ratios[rounds/2-1]+ratios[rounds/2])/2, "policy/off-p50")
		b.ReportMetric(auditedRPS/policyRPS, "audited/unaudited")
		if cpu := func(m *mode) float64 { return float64(m.cpu.Microseconds()) / float64(m.reqs) }; cpu(modes[0]) > 0 {
			b.ReportMetric(cpu(modes[0]), "off-cpu-µs/req")
			b.ReportMetric(cpu(modes[1]), "policy-cpu-µs/req")
			b.ReportMetric(cpu(modes[0])/cpu(modes[1]), "policy/off-cpu")
		}
	}
}

func jsonBody(v any) *bytes.Reader {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return bytes.NewReader(b)
}

// devClaims is the dev identity of an actor type.
func devClaims(tb testing.TB, actor string) *auth.DevUser {
	tb.Helper()
	for _, c := range auth.DevUsers() {
		if c.ActorType == actor {
			return &auth.DevUser{Claims: c}
		}
	}
	tb.Fatalf("no dev user %s", actor)
	return nil
}

// BenchmarkReadSecure is BenchmarkRead with a bearer token and the policy:
// their ratio is the in-process cost of security on a read.
func BenchmarkReadSecure(b *testing.B) {
	h := newSecureHub(b)
	ids := seedCareTeam(b, h, 20, 5)
	handler := h.s.Handler()
	tok := h.token("hospital-clinician")
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/fhir/Observation/"+ids[int(next.Add(1))%len(ids)], nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("X-Purpose-Of-Use", "TREAT")
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

// BenchmarkReadAudited is BenchmarkReadSecure with its decision records
// written (the default) and without (NoAudit): their ratio is the
// in-process cost of the audit log on a read, 16 goroutines.
func BenchmarkReadAudited(b *testing.B) {
	for _, audited := range []bool{false, true} {
		b.Run(fmt.Sprintf("audited=%v", audited), func(b *testing.B) {
			h := newSecureHubWith(b, func(c *Config) { c.NoAudit = !audited })
			ids := seedCareTeam(b, h, 20, 5)
			handler := h.s.Handler()
			tok := h.token("hospital-clinician")
			var next atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, "/fhir/Observation/"+ids[int(next.Add(1))%len(ids)], nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					req.Header.Set("X-Purpose-Of-Use", "TREAT")
					w := httptest.NewRecorder()
					handler.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
}

// BenchmarkPolicyRead is GET /fhir/Patient/{id} in process, one request at
// a time, on a hub without security (off) and with JWT + OPA but no audit
// log (policy): the hub's own cost per read and its allocations, without
// the network and the load client of BenchmarkPolicyGET. cpu-ns/op is the
// process's CPU time per read (garbage collection included), steadier
// than ns/op on a shared machine.
func BenchmarkPolicyRead(b *testing.B) {
	for _, mode := range []string{"off", "policy"} {
		b.Run(mode, func(b *testing.B) {
			var h *hub
			var seed, read []string // request headers
			if mode == "off" {
				h = newHub(b)
			} else {
				sh := newSecureHubWith(b, func(c *Config) { c.NoAudit = true })
				h = sh.hub
				seed = []string{"Authorization", "Bearer " + sh.token("hospital-it"), "X-Purpose-Of-Use", "HOPERAT"}
				read = []string{"Authorization", "Bearer " + sh.token("hospital-clinician"), "X-Purpose-Of-Use", "TREAT"}
			}
			ids := make([]string, 100)
			for i := range ids {
				r := h.do(http.MethodPost, "/Patient", patient(fmt.Sprintf("P%d", i)), seed...)
				if r.status != http.StatusCreated {
					b.Fatalf("seed: %d %s", r.status, r.raw)
				}
				// The answer may omit the content (hospital-it): the id is
				// in Location, …/Patient/<id>/_history/1.
				loc := strings.Split(r.header.Get("Location"), "/")
				if len(loc) < 4 {
					b.Fatalf("seed: Location %q", r.header.Get("Location"))
				}
				ids[i] = loc[len(loc)-3]
			}
			handler := h.s.Handler()
			b.ReportAllocs()
			cpu := processCPU()
			for i := 0; b.Loop(); i++ {
				req := httptest.NewRequest(http.MethodGet, "/fhir/Patient/"+ids[i%len(ids)], nil)
				for j := 0; j+1 < len(read); j += 2 {
					req.Header.Set(read[j], read[j+1])
				}
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body.String())
				}
			}
			if cpu = processCPU() - cpu; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkPolicyOnOffRatio is GET by id from 16 goroutines on two hubs
// with the same data and no audit log (NoAudit), one without security
// (off) and one with JWT + OPA (policy), run in alternating slices of
// 250 ms so that the noise of a shared machine falls on both. It reports
// each hub's reads/s, their ratio (policy/off, the in-process analogue of
// issue 4's HTTP ratio) and the process CPU time per read on each. Patient
// reads the patients themselves (as the load command's read scenario
// does), Observation their observations (a patient context per read).
//
//	go test ./server/ -run '^$' -bench PolicyOnOffRatio -benchtime 8x
//
// b.N is the number of slice pairs.
func BenchmarkPolicyOnOffRatio(b *testing.B) {
	for _, typ := range []string{"Patient", "Observation"} {
		b.Run(typ, func(b *testing.B) { policyOnOffRatio(b, typ) })
	}
}

func policyOnOffRatio(b *testing.B, typ string) {
	off := newHubWith(b, func(c *Config) { c.NoAudit = true })
	on := newSecureHubWith(b, func(c *Config) { c.NoAudit = true })
	seed := []string{"Authorization", "Bearer " + on.token("hospital-it"), "X-Purpose-Of-Use", "HOPERAT"}
	read := []string{"Authorization", "Bearer " + on.token("hospital-clinician"), "X-Purpose-Of-Use", "TREAT"}
	sides := [2]*ratioSide{{name: "off", handler: off.s.Handler()}, {name: "policy", handler: on.s.Handler(), headers: read}}
	for _, s := range sides {
		for _, id := range seedReads(b, s.handler, seed, typ, 20, 5) {
			s.paths = append(s.paths, "/fhir/"+typ+"/"+id)
		}
	}
	readRatio(b, sides, "policy/off")
}

// seedReads stores patients with a hospital stay and observations each
// through handler (with the request headers seed) and returns the ids of
// the patients (typ Patient) or of the observations.
func seedReads(b *testing.B, handler http.Handler, seed []string, typ string, patients, obsEach int) []string {
	b.Helper()
	post := func(t string, body map[string]any) string {
		req := httptest.NewRequest(http.MethodPost, "/fhir/"+t, jsonBody(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		for j := 0; j+1 < len(seed); j += 2 {
			req.Header.Set(seed[j], seed[j+1])
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		// The answer may omit the content (hospital-it): the id is in
		// Location, …/<type>/<id>/_history/1.
		loc := strings.Split(w.Header().Get("Location"), "/")
		if w.Code != http.StatusCreated || len(loc) < 4 {
			b.Fatalf("seed %s: %d %s", t, w.Code, w.Body.String())
		}
		return loc[len(loc)-3]
	}
	var pids, obs []string
	for i := range patients {
		pid := post("Patient", patient(fmt.Sprintf("P%d", i)))
		pids = append(pids, pid)
		post("Encounter", map[string]any{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"code": "IMP"}, "subject": map[string]any{"reference": "Patient/" + pid}})
		for range obsEach {
			obs = append(obs, post("Observation", map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "HbA1c"},
				"subject": map[string]any{"reference": "Patient/" + pid}, "valueQuantity": map[string]any{"value": 7.1, "unit": "%"}}))
		}
	}
	if typ == "Patient" {
		return pids
	}
	return obs
}
