package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/server/store"
)

// BenchmarkTransactionSynthea posts Synthea patient bundles (transactions)
// in process and reports resources/s: one client at a time, and four
// concurrent clients (an ingest pipeline uploading in parallel). It also
// reports the CPU time of the process per resource (steadier than the
// rate on a shared machine; it includes the background work the writes
// cause meanwhile, such as the pathway episodes) and the bundles per group
// commit.
func BenchmarkTransactionSynthea(b *testing.B) {
	files := corpusFiles(b, "synthea/smart-on-fhir-generated-sample-data-r4/[A-Z]*_*.json")
	bodies := make([][]byte, len(files))
	for i, f := range files {
		var err error
		if bodies[i], err = os.ReadFile(f); err != nil {
			b.Fatal(err)
		}
	}
	post := func(b *testing.B, h *hub, body []byte) int64 {
		req := httptest.NewRequest(http.MethodPost, "/fhir", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		w := httptest.NewRecorder()
		h.s.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Errorf("status %d: %.300s", w.Code, w.Body.String())
		}
		return int64(bytes.Count(body, []byte(`"request"`)))
	}
	report := func(b *testing.B, h *hub, entries int64, cpu0 time.Duration, st0 store.Stats) {
		b.ReportMetric(float64(entries)/b.Elapsed().Seconds(), "resources/s")
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(entries), "cpu-µs/resource")
		if st := h.s.db.Stats(); st.Commits > st0.Commits {
			b.ReportMetric(float64(st.Writes-st0.Writes)/float64(st.Commits-st0.Commits), "writes/commit")
		}
	}
	b.Run("clients=1", func(b *testing.B) {
		h := newHub(b)
		var entries int64
		cpu0, st0 := cpuTime(), h.s.db.Stats()
		for i := 0; b.Loop(); i++ {
			entries += post(b, h, bodies[i%len(bodies)])
		}
		report(b, h, entries, cpu0, st0)
	})
	for _, par := range []int{2, 4, 8} {
		b.Run(fmt.Sprintf("clients=%d", 2*par), func(b *testing.B) {
			h := newHub(b)
			var entries, next atomic.Int64
			b.SetParallelism(par)
			b.ResetTimer() // the hub's start (vocabulary, policies) is not ingest
			cpu0, st0 := cpuTime(), h.s.db.Stats()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					entries.Add(post(b, h, bodies[int(next.Add(1))%len(bodies)]))
				}
			})
			report(b, h, entries.Load(), cpu0, st0)
		})
	}
}

// BenchmarkRead is GET /fhir/Patient/{id} in process (no network), the
// hub's own cost per read.
func BenchmarkRead(b *testing.B) {
	h := newHub(b)
	var ids []string
	for i := 0; i < 100; i++ {
		r := h.do(http.MethodPost, "/Patient", map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Durand", "given": []any{"Anne"}}}, "birthDate": "1970-01-01"})
		ids = append(ids, r.body["id"].(string))
	}
	handler := h.s.Handler()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/fhir/Patient/"+ids[int(next.Add(1))%len(ids)], nil)
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

// benchPatient is a small valid Patient body.
func benchPatient(id string) []byte {
	idPart := ""
	if id != "" {
		idPart = `"id":"` + id + `",`
	}
	// A local identifier: an INS-NIR would make every create after the
	// first a duplicate person (409).
	return []byte(`{"resourceType":"Patient",` + idPart + `"identifier":[{"system":"urn:parcours:bench","value":"180017512345690"}],"name":[{"family":"Durand","given":["Anne","Marie"]}],"gender":"female","birthDate":"1970-01-01","address":[{"line":["1 rue de la Paix"],"city":"Paris","postalCode":"75002","country":"FR"}]}`)
}

// BenchmarkWrite is create (POST) and update (PUT) in process with 16
// concurrent clients: validation, group commit and fsync included.
func BenchmarkWrite(b *testing.B) {
	for _, kind := range []string{"create", "update"} {
		b.Run(kind+"/clients=16", func(b *testing.B) {
			h := newHub(b)
			handler := h.s.Handler()
			var next atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				id := "bench-" + strconv.FormatInt(next.Add(1), 10)
				for pb.Next() {
					var req *http.Request
					if kind == "create" {
						req = httptest.NewRequest(http.MethodPost, "/fhir/Patient", bytes.NewReader(benchPatient("")))
					} else {
						req = httptest.NewRequest(http.MethodPut, "/fhir/Patient/"+id, bytes.NewReader(benchPatient(id)))
					}
					req.Header.Set("Content-Type", "application/fhir+json")
					w := httptest.NewRecorder()
					handler.ServeHTTP(w, req)
					if w.Code != http.StatusCreated && w.Code != http.StatusOK {
						b.Errorf("status %d: %.200s", w.Code, w.Body.String())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}
