package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
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

// BenchmarkPolicyGET measures GET by id at 16 connections over HTTP, in one
// run, on a hub without security, with JWT + OPA but no audit log, and with
// both, and reports the ratios. Run it with -benchtime 1x.
func BenchmarkPolicyGET(b *testing.B) {
	run := func(url string, cfg load.Config) float64 {
		cfg.URL, cfg.Conns, cfg.Duration, cfg.Scenario, cfg.Seed = url, 16, 4*time.Second, load.ScenarioRead, 200
		rep, err := load.Run(context.Background(), cfg)
		if err != nil || rep.Errors > 0 {
			b.Fatalf("load: %v, %d errors %v", err, rep.Errors, rep.ErrorSamples)
		}
		return rep.RPS
	}
	for b.Loop() {
		off := newHub(b)
		on := newSecureHub(b)
		unaudited := newSecureHubWith(b, func(c *Config) { c.NoAudit = true })
		offRPS := run(off.url, load.Config{})
		onRPS := run(on.url, load.Config{Token: on.token("hospital-clinician"), Purpose: "TREAT", SeedToken: on.token("hospital-it"), SeedPurpose: "HOPERAT"})
		noAuditRPS := run(unaudited.url, load.Config{Token: unaudited.token("hospital-clinician"), Purpose: "TREAT", SeedToken: unaudited.token("hospital-it"), SeedPurpose: "HOPERAT"})
		b.ReportMetric(offRPS, "off-req/s")
		b.ReportMetric(noAuditRPS, "policy-req/s")
		b.ReportMetric(onRPS, "policy+audit-req/s")
		b.ReportMetric(noAuditRPS/offRPS, "policy/off")
		b.ReportMetric(onRPS/noAuditRPS, "audited/unaudited")
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
