package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/parcours-sante/parcours/server/store"
)

// BenchmarkAppend appends one decision record per Append (one request's
// decision), from 1 and 16 goroutines, each Append waiting for
// durability, through the store's group commit (New) and through the
// journal (Open). It reports records/s, records per commit or journal
// sync (group commit), the canonical JSON size and the space the log and
// its index take in the file per record.
//
//	go test ./server/audit/ -run '^$' -bench Append -benchtime 20000x
func BenchmarkAppend(b *testing.B) {
	base := make([]Record, 64)
	for i := range base {
		base[i] = sample(i)
	}
	for _, journal := range []bool{false, true} {
		for _, g := range []int{1, 16} {
			b.Run(fmt.Sprintf("journal=%v/goroutines=%d", journal, g), func(b *testing.B) {
				db, path := openDB(b)
				l := New(db)
				if journal {
					var err error
					if l, err = Open(db, filepath.Join(filepath.Dir(path), "audit.wal"), Options{}); err != nil {
						b.Fatal(err)
					}
					defer l.Close()
				}
				before, syncs := db.Stats(), l.syncs()
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for range g {
					wg.Go(func() {
						for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
							r := base[i%int64(len(base))]
							r.DecisionID = store.NewID()
							if err := l.Append(context.Background(), r); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				after := db.Stats()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
				if journal {
					b.ReportMetric(float64(b.N)/float64(l.syncs()-syncs), "records/sync")
				} else {
					b.ReportMetric(float64(after.Writes-before.Writes)/float64(after.Commits-before.Commits), "records/commit")
				}
				if err := l.Flush(); err != nil {
					b.Fatal(err)
				}
				reportSize(b, db)
			})
		}
	}
}

// reportSize reports the mean canonical record and the bytes the log and
// the decision-id index occupy in the file (pages allocated, B+tree
// overhead and fill factor included) per record.
func reportSize(b *testing.B, db *store.DB) {
	if err := db.Bolt().View(func(tx *bbolt.Tx) error {
		log := tx.Bucket([]byte("log:" + logName))
		var n, raw int
		_ = log.ForEach(func(_, v []byte) error { n++; raw += len(v); return nil })
		if n == 0 {
			return nil
		}
		alloc := 0
		for _, name := range []string{"log:" + logName, "blob:" + nsIDs} {
			s := tx.Bucket([]byte(name)).Stats()
			alloc += s.BranchAlloc + s.LeafAlloc
		}
		b.ReportMetric(float64(raw)/float64(n), "json-B/record")
		b.ReportMetric(float64(alloc)/float64(n), "file-B/record")
		return nil
	}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkVerify measures a full verification (records/s).
func BenchmarkVerify(b *testing.B) {
	db, _ := openDB(b)
	l := New(db)
	const n = 20000
	batch := make([]Record, 0, 500)
	for i := range n {
		batch = append(batch, sample(i))
		if len(batch) == cap(batch) {
			if err := l.Append(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if res := view(b, db, Verify); !res.OK || res.Records != n {
			b.Fatal(res)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
