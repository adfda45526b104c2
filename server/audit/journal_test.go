package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/store"
)

// never keeps acknowledged records in the journal until Flush or Close
// (the state a crash leaves).
const never = time.Hour

// openJournaled opens a store and its journal in a temporary directory,
// both closed at the end of the test.
func openJournaled(t *testing.T, opt Options) (*store.DB, *Log, string) {
	t.Helper()
	db, path := openDB(t)
	jpath := filepath.Join(filepath.Dir(path), "audit.wal")
	l, err := Open(db, jpath, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return db, l, jpath
}

// appendAll appends recs from 16 goroutines, one Append each (the first
// of every 10 with two more records, as a batch does), and returns every
// record appended.
func appendAll(t *testing.T, l *Log, n int) []Record {
	t.Helper()
	var mu sync.Mutex
	var out []Record
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				recs := []Record{sample(i)}
				if i%10 == 0 {
					recs = append(recs, sample(i+n), sample(i+2*n))
				}
				if err := l.Append(context.Background(), recs...); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				out = append(out, recs...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// checkChain verifies the chain and finds every record of recs in it,
// once, with the bytes it was appended with.
func checkChain(t *testing.T, db *store.DB, recs []Record) {
	t.Helper()
	res := view(t, db, Verify)
	if !res.OK || res.Records != len(recs) {
		t.Fatalf("Verify: %+v, want OK with %d records", res, len(recs))
	}
	seqs := map[uint64]bool{}
	for _, want := range recs {
		got, ok := view(t, db, func(tx *store.Tx) Record { r, _ := Find(tx, want.DecisionID); return r }), true
		ok = got.DecisionID == want.DecisionID
		if !ok {
			t.Errorf("decision %s not in the chain", want.DecisionID)
			continue
		}
		if seqs[got.Seq] {
			t.Errorf("two decisions at seq %d", got.Seq)
		}
		seqs[got.Seq] = true
		got.Seq, got.Prev, got.Hash = 0, "", ""
		want.Seq, want.Prev, want.Hash = 0, "", ""
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("decision %s (-appended +in the chain):\n%s", want.DecisionID, diff)
		}
	}
}

func TestJournalAppend(t *testing.T) {
	tests := []struct {
		name string
		opt  Options
		n    int
	}{
		{"default", Options{}, 200},
		// A ring of 256 KiB holds about 140 records: it comes round and
		// grows to 1 MiB, then comes round again.
		{"small ring", Options{Size: minJournal, MaxSize: 4 * minJournal, ApplyEvery: time.Millisecond}, 3000},
		{"lazy applier", Options{ApplyEvery: never}, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, l, jpath := openJournaled(t, tt.opt)
			recs := appendAll(t, l, tt.n)
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			checkChain(t, db, recs)
			if tt.name == "small ring" {
				if st, err := os.Stat(jpath); err != nil || st.Size() != int64(4*minJournal) {
					t.Errorf("journal size %v (%v), want grown to %d", st.Size(), err, 4*minJournal)
				}
			}
		})
	}
}

// TestJournalRecover copies the store and the journal while records wait
// in the journal (a crash, minus the process dying), opens the copies and
// finds the records in the chain.
func TestJournalRecover(t *testing.T) {
	tests := []struct {
		name string
		// damage changes the copied journal; it returns how many of the
		// appended groups (one record each) must survive, or damaged for
		// a journal that recovery must refuse.
		damage func(t *testing.T, jpath string, groups []int64) int
	}{
		{"intact", func(*testing.T, string, []int64) int { return -1 }},
		{"torn last group", func(t *testing.T, jpath string, groups []int64) int {
			flip(t, jpath, groups[len(groups)-1]+groupHeader+10)
			return len(groups) - 1
		}},
		{"torn group before the last", func(t *testing.T, jpath string, groups []int64) int {
			// Two syncs in flight at the crash: the first group torn, the
			// second whole but never acknowledged (a group is acknowledged
			// once every group before it is durable).
			flip(t, jpath, groups[8]+groupHeader+10)
			return 8
		}},
		{"damaged group in the middle", func(t *testing.T, jpath string, groups []int64) int {
			// Whole groups after the bad one were written after a sync
			// that made it durable: it was acknowledged, then altered.
			flip(t, jpath, groups[3]+groupHeader+10)
			return damaged
		}},
		{"damaged header in the middle", func(t *testing.T, jpath string, groups []int64) int {
			zero(t, jpath, groups[6], groupHeader)
			return damaged
		}},
		{"zeroed tail", func(t *testing.T, jpath string, groups []int64) int {
			st, err := os.Stat(jpath)
			if err != nil {
				t.Fatal(err)
			}
			zero(t, jpath, groups[5], st.Size()-groups[5])
			return 5
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, l, jpath := openJournaled(t, Options{ApplyEvery: never})
			// Some records in the chain already, then 10 in the journal
			// only, one group each.
			old := fill(t, l, 3)
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			var recs []Record
			var groups []int64
			for i := range 10 {
				groups = append(groups, int64(l.j.file.off))
				r := []Record{sample(100 + i)}
				if err := l.Append(context.Background(), r...); err != nil {
					t.Fatal(err)
				}
				recs = append(recs, r[0])
			}
			if n := view(t, db, Len); n != 3 {
				t.Fatalf("%d records in the chain before recovery, want the 3 flushed", n)
			}
			dir := t.TempDir()
			copyFile(t, filepath.Join(filepath.Dir(jpath), "parcours.db"), filepath.Join(dir, "parcours.db"))
			copyFile(t, jpath, filepath.Join(dir, "audit.wal"))
			keep := tt.damage(t, filepath.Join(dir, "audit.wal"), groups)
			if keep == -1 {
				keep = len(recs)
			}

			db2, err := store.Open(filepath.Join(dir, "parcours.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			pending, perr := viewErr(db2, func(tx *store.Tx) (int, error) { return Pending(tx, filepath.Join(dir, "audit.wal")) })
			l2, err := Open(db2, filepath.Join(dir, "audit.wal"), Options{})
			if keep == damaged {
				// Refused, offline and online, and nothing of it appended.
				if !errors.Is(perr, ErrJournalDamaged) || !errors.Is(err, ErrJournalDamaged) {
					t.Fatalf("Pending: %d, %v; Open: %v; want %v from both", pending, perr, err, ErrJournalDamaged)
				}
				checkChain(t, db2, old)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if perr != nil || pending != keep {
				t.Errorf("Pending before recovery: %d, %v; want %d", pending, perr, keep)
			}
			checkChain(t, db2, append(old, recs[:keep]...))
			// The recovered log goes on, and a second recovery (the copy
			// reopened) adds nothing twice.
			more := fill(t, l2, 2)
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			l3, err := Open(db2, filepath.Join(dir, "audit.wal"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer l3.Close()
			checkChain(t, db2, append(append(old, recs[:keep]...), more...))
		})
	}
}

// damaged is what a TestJournalRecover case's damage returns for a
// journal that recovery must refuse with ErrJournalDamaged.
const damaged = -2

func viewErr[T any](db *store.DB, fn func(*store.Tx) (T, error)) (T, error) {
	var v T
	err := db.View(func(tx *store.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v, err
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func zero(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

// TestJournalOrder: records acknowledged by Append before a data write
// come before the data write's own records (AppendTx) in the chain, even
// when the applier has not run yet.
func TestJournalOrder(t *testing.T) {
	db, l, _ := openJournaled(t, Options{ApplyEvery: never})
	first := fill(t, l, 4)
	inTx := []Record{sample(10), sample(11)}
	if err := db.Update(context.Background(), func(tx *store.Tx) error { return l.AppendTx(tx, inTx...) }); err != nil {
		t.Fatal(err)
	}
	var got []string
	view(t, db, func(tx *store.Tx) bool {
		tx.Scan(logName, 1, func(_ uint64, v []byte) bool {
			r, _ := decode(v)
			got = append(got, r.DecisionID)
			return true
		})
		return true
	})
	var want []string
	for _, r := range append(first, inTx...) {
		want = append(want, r.DecisionID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chain order (-want +got):\n%s", diff)
	}
	// Flushing afterwards adds nothing twice.
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	checkChain(t, db, append(first, inTx...))
}

// TestJournalLargeRequest: a request whose records do not fit in the ring
// is appended straight to the chain.
func TestJournalLargeRequest(t *testing.T) {
	db, l, _ := openJournaled(t, Options{Size: minJournal, MaxSize: minJournal})
	recs := make([]Record, 200) // about 360 KB
	for i := range recs {
		recs[i] = sample(i)
	}
	if err := l.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	if n := view(t, db, Len); n != uint64(len(recs)) {
		t.Errorf("%d records in the chain right after Append, want %d", n, len(recs))
	}
	small := fill(t, l, 3)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	checkChain(t, db, append(recs, small...))
}

// TestJournalReplaced: a journal replaced by an empty file (or removed)
// holds nothing of the chain's; the log starts a later generation, so that
// the old groups are never taken for new ones.
func TestJournalReplaced(t *testing.T) {
	db, l, jpath := openJournaled(t, Options{})
	recs := fill(t, l, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var mark jpos
	view(t, db, func(tx *store.Tx) bool { mark = readMark(tx); return true })
	if err := os.Remove(jpath); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(db, jpath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.j.file.gen <= mark.gen {
		t.Errorf("new journal at generation %d, the chain has applied generation %d", l2.j.file.gen, mark.gen)
	}
	more := fill(t, l2, 2)
	if err := l2.Flush(); err != nil {
		t.Fatal(err)
	}
	checkChain(t, db, append(recs, more...))
}

func TestJournalClosed(t *testing.T) {
	db, l, _ := openJournaled(t, Options{ApplyEvery: never})
	recs := fill(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Close moved the journal's records into the chain.
	checkChain(t, db, recs)
	if err := l.Append(context.Background(), sample(9)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestJournalNotAJournal(t *testing.T) {
	db, path := openDB(t)
	jpath := filepath.Join(filepath.Dir(path), "audit.wal")
	bad := make([]byte, block)
	binary.LittleEndian.PutUint64(bad, 42)
	if err := os.WriteFile(jpath, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(db, jpath, Options{}); err == nil {
		l.Close()
		t.Error("Open took a file that is not a journal")
	}
}

// TestJournalOnGroup: OnGroup is told every group a sync made durable,
// and the groups add up to the records appended (the hub's metric of
// group-commit sizes).
func TestJournalOnGroup(t *testing.T) {
	var mu sync.Mutex
	groups, records := 0, 0
	_, l, _ := openJournaled(t, Options{OnGroup: func(n int) {
		mu.Lock()
		defer mu.Unlock()
		groups++
		records += n
	}})
	recs := appendAll(t, l, 300)
	mu.Lock()
	defer mu.Unlock()
	if records != len(recs) || groups == 0 || groups > len(recs) {
		t.Errorf("OnGroup saw %d records in %d groups, want the %d appended", records, groups, len(recs))
	}
}
