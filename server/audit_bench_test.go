package server

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkReadAuditedRatio is GET /fhir/Observation/{id} from 16
// goroutines on two hubs with the same data and policy, one recording its
// decisions (the default) and one not (NoAudit), run in alternating
// slices of 250 ms so that the noise of a shared machine falls on both.
// It reports each hub's reads/s, their ratio, and the process CPU time
// per read on each (user + system, and system alone; the audit log's
// goroutines included).
//
//	go test ./server/ -run '^$' -bench ReadAuditedRatio -benchtime 8x
//
// b.N is the number of slice pairs.
func BenchmarkReadAuditedRatio(b *testing.B) {
	type side struct {
		name    string
		h       *secureHub
		ids     []string
		tok     string
		reads   int64
		elapsed time.Duration
		cpu     time.Duration
		sys     time.Duration
	}
	sides := []*side{{name: "unaudited"}, {name: "audited"}}
	for _, s := range sides {
		s.h = newSecureHubWith(b, func(c *Config) { c.NoAudit = s.name == "unaudited" })
		s.ids = seedCareTeam(b, s.h, 20, 5)
		s.tok = s.h.token("hospital-clinician")
	}
	const conns, slice = 16, 250 * time.Millisecond
	run := func(s *side) {
		handler := s.h.s.Handler()
		var next, done atomic.Int64
		var failed atomic.Int32
		stop := time.Now().Add(slice)
		cpu0, sys0 := auditBenchCPU()
		start := time.Now()
		var wg sync.WaitGroup
		for range conns {
			wg.Go(func() {
				for time.Now().Before(stop) {
					req := httptest.NewRequest(http.MethodGet, "/fhir/Observation/"+s.ids[int(next.Add(1))%len(s.ids)], nil)
					req.Header.Set("Authorization", "Bearer "+s.tok)
					req.Header.Set("X-Purpose-Of-Use", "TREAT")
					w := httptest.NewRecorder()
					handler.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						failed.Store(int32(w.Code))
						return
					}
					done.Add(1)
				}
			})
		}
		wg.Wait()
		s.elapsed += time.Since(start)
		cpu1, sys1 := auditBenchCPU()
		s.cpu += cpu1 - cpu0
		s.sys += sys1 - sys0
		s.reads += done.Load()
		if code := failed.Load(); code != 0 {
			b.Fatalf("%s: status %d", s.name, code)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// Alternate which side goes first, so that neither always follows
		// the other's background work.
		run(sides[i%2])
		run(sides[1-i%2])
	}
	b.StopTimer()
	rate := func(s *side) float64 { return float64(s.reads) / s.elapsed.Seconds() }
	for _, s := range sides {
		b.ReportMetric(rate(s), s.name+"-reads/s")
		b.ReportMetric(float64(s.cpu.Microseconds())/float64(s.reads), s.name+"-cpu-µs/read")
		b.ReportMetric(float64(s.sys.Microseconds())/float64(s.reads), s.name+"-sys-µs/read")
	}
	b.ReportMetric(rate(sides[1])/rate(sides[0]), "audited/unaudited")
	b.ReportMetric(0, "ns/op")
}

// auditBenchCPU is the process's CPU time so far: user + system, and
// system.
func auditBenchCPU() (all, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Stime.Nano())
}
