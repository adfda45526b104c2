package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ratioSide is one hub of an alternating comparison (readRatio): its
// handler, the paths it reads and the headers it reads them with, and
// what the slices measured.
type ratioSide struct {
	name    string
	handler http.Handler
	paths   []string
	headers []string // name, value, …
	reads   int64
	elapsed time.Duration
	cpu     time.Duration // user + system of the whole process
	sys     time.Duration
}

// readRatio runs GETs from 16 goroutines on two hubs in alternating slices
// of 250 ms (b.N pairs, which side goes first alternating too), so that a
// shared machine's noise falls on both. It reports each side's reads/s,
// CPU µs per read (and system µs), and name = second/first rate.
func readRatio(b *testing.B, sides [2]*ratioSide, name string) {
	const conns, slice = 16, 250 * time.Millisecond
	run := func(s *ratioSide) {
		var next, done atomic.Int64
		var failed atomic.Int32
		stop := time.Now().Add(slice)
		cpu0, sys0 := benchCPU()
		start := time.Now()
		var wg sync.WaitGroup
		for range conns {
			wg.Go(func() {
				// A -cpuprofile can be cut per hub: -tagfocus 'hub=^name$'.
				pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("hub", s.name)))
				for time.Now().Before(stop) {
					req := httptest.NewRequest(http.MethodGet, s.paths[int(next.Add(1))%len(s.paths)], nil)
					for j := 0; j+1 < len(s.headers); j += 2 {
						req.Header.Set(s.headers[j], s.headers[j+1])
					}
					w := httptest.NewRecorder()
					s.handler.ServeHTTP(w, req)
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
		cpu1, sys1 := benchCPU()
		s.cpu += cpu1 - cpu0
		s.sys += sys1 - sys0
		s.reads += done.Load()
		if code := failed.Load(); code != 0 {
			b.Fatalf("%s: status %d", s.name, code)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		run(sides[i%2])
		run(sides[1-i%2])
	}
	b.StopTimer()
	rate := func(s *ratioSide) float64 { return float64(s.reads) / s.elapsed.Seconds() }
	for _, s := range sides {
		b.ReportMetric(rate(s), s.name+"-reads/s")
		b.ReportMetric(float64(s.cpu.Nanoseconds())/1e3/float64(s.reads), s.name+"-cpu-µs/read")
		b.ReportMetric(float64(s.sys.Nanoseconds())/1e3/float64(s.reads), s.name+"-sys-µs/read")
	}
	b.ReportMetric(rate(sides[1])/rate(sides[0]), name)
	b.ReportMetric(0, "ns/op")
}

// benchCPU is the process's CPU time so far: user + system, and system.
func benchCPU() (all, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Stime.Nano())
}
