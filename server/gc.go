package server

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target the hub runs with unless
// GOGC is set: the hub allocates short-lived JSON trees, and a less eager
// collector buys throughput for memory (GOMEMLIMIT still caps the heap;
// README, Configuration, has the measurements).
const GCPercent = 200

// TuneGC sets GCPercent unless the GOGC environment variable is set. The
// command calls it at start-up, and the server package's tests and
// benchmarks (TestMain) too, so that benchmarks measure the hub as it runs.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}
