package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/server/fhirjson"
)

// benchDir is where the benchmarks put their files: PARCOURS_BENCH_DIR (to
// measure the disk the data will live on) or a temporary directory. The
// store and the fsync benchmarks use the same one, so that
//
//	go test -run XXX -bench 'Create|Fsync' ./server/store
//
// shows durable creates next to the rate of fsync the disk sustains.
func benchDir(b *testing.B) string {
	if d := os.Getenv("PARCOURS_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

func openBench(b *testing.B) *DB {
	b.Helper()
	db, err := Open(filepath.Join(benchDir(b), "parcours.db"), Options{Indexer: identifierIndexer})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// benchPatient is a Patient of about 1 KB with two identifiers.
func benchPatient(n int) map[string]any {
	mrn := fmt.Sprintf("MRN-%08d", n)
	return map[string]any{
		"resourceType": "Patient",
		"active":       true,
		"identifier": []any{
			map[string]any{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": fmt.Sprintf("2%012d", n)},
			map[string]any{"system": "https://hopital.example.org/mrn", "value": mrn},
		},
		"name": []any{map[string]any{
			"use": "official", "family": "Martin-Lefebvre", "given": []any{"Jeanne", "Marie"},
		}},
		"telecom": []any{
			map[string]any{"system": "phone", "value": "+33 6 12 34 56 78", "use": "mobile"},
			map[string]any{"system": "email", "value": "jeanne.martin@example.org"},
		},
		"gender":    "female",
		"birthDate": "1957-03-14",
		"address": []any{map[string]any{
			"use": "home", "line": []any{"12 rue des Lilas", "Bâtiment B"},
			"city": "Lyon", "postalCode": "69003", "country": "FR",
		}},
		"generalPractitioner": []any{map[string]any{"reference": "Practitioner/gp-0042", "display": "Dr Paul Durand"}},
		"text": map[string]any{
			"status": "generated",
			"div":    `<div xmlns="http://www.w3.org/1999/xhtml"><p>` + mrn + " " + strings.Repeat("Jeanne Martin-Lefebvre, née le 14/03/1957. ", 8) + `</p></div>`,
		},
	}
}

func create(db *DB, res map[string]any) error {
	id := NewID()
	return db.Update(context.Background(), func(tx *Tx) error {
		_, err := tx.Put("Patient", id, res)
		return err
	})
}

// BenchmarkCreate measures durable creates (each one DB.Update, acknowledged
// once fsynced) from 1 client and from 16 concurrent clients, which group
// commit lets share fsyncs: creates/s at 16 clients should exceed the
// fsyncs/s of BenchmarkFsync.
func BenchmarkCreate(b *testing.B) {
	if n := len(fhirjson.Marshal(benchPatient(0))); n < 900 || n > 1300 {
		b.Fatalf("benchmark Patient is %d bytes, want about 1 KB", n)
	}
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			db := openBench(b)
			if clients == 1 {
				res := benchPatient(0)
				for b.Loop() {
					if err := create(db, res); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				procs := runtime.GOMAXPROCS(0)
				b.SetParallelism((clients + procs - 1) / procs) // at least clients goroutines
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					// Update runs the function in the committer while this
					// goroutine waits, so one body per goroutine is safe.
					res := benchPatient(rand.IntN(1 << 20))
					for pb.Next() {
						if err := create(db, res); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			if st := db.Stats(); st.Commits > 0 {
				b.ReportMetric(float64(st.Writes)/float64(st.Commits), "writes/commit")
			}
		})
	}
}

// BenchmarkFsync measures the raw rate of fsync in the benchmark directory:
// 4 KiB written in place, then f.Sync, as a commit does (bbolt calls
// fdatasync twice per commit: pages, then meta page).
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(benchDir(b), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const pages = 256
	buf := make([]byte, 4096)
	if err := f.Truncate(pages * int64(len(buf))); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		buf[0] = byte(i)
		if _, err := f.WriteAt(buf, int64(i%pages)*int64(len(buf))); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// BenchmarkRead measures DB.Read of random existing Patients from parallel
// readers.
func BenchmarkRead(b *testing.B) {
	db := openBench(b)
	const n = 10000
	ids := make([]string, n)
	fns := make([]func(*Tx) error, n)
	for i := range ids {
		ids[i] = NewID()
		res := benchPatient(i)
		fns[i] = func(tx *Tx) error { _, err := tx.Put("Patient", ids[i], res); return err }
	}
	for i, err := range db.UpdateEach(context.Background(), fns) {
		if err != nil {
			b.Fatalf("load %d: %v", i, err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[rand.IntN(n)]
			r, err := db.Read("Patient", id)
			if err != nil || r.ID != id {
				b.Errorf("Read %s: %v (got %s)", id, err, r.ID)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}
