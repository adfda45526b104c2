package server

import (
	"os"
	"testing"
)

// TestMain runs the tests and benchmarks with the collector the hub runs
// with (TuneGC).
func TestMain(m *testing.M) {
	TuneGC()
	os.Exit(m.Run())
}
