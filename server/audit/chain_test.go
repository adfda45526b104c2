package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"

	"github.com/parcours-sante/parcours/server/store"
)

func TestAppendVerify(t *testing.T) {
	db, _ := openDB(t)
	l := New(db)
	if got := view(t, db, Verify); !got.OK || got.Records != 0 {
		t.Errorf("empty log: %+v, want OK with 0 records", got)
	}
	recs := fill(t, l, 20)
	// Several records in one transaction chain in order too.
	more := []Record{sample(20), sample(21), sample(22)}
	if err := l.Append(context.Background(), more...); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, more...)
	for i, r := range recs {
		prev := ""
		if i > 0 {
			prev = recs[i-1].Hash
		}
		if r.Seq != uint64(i+1) || r.Prev != prev || !isHash(r.Hash) {
			t.Errorf("record %d: seq %d prev %.8s hash %.8s; want seq %d prev %.8s", i, r.Seq, r.Prev, r.Hash, i+1, prev)
		}
	}
	got := view(t, db, Verify)
	want := VerifyResult{Records: 23, OK: true, From: 1, Head: Checkpoint{Seq: 23, Hash: recs[22].Hash}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify (-want +got):\n%s", diff)
	}
	for _, r := range recs {
		found := view(t, db, func(tx *store.Tx) Record { f, _ := Find(tx, r.DecisionID); return f })
		if diff := cmp.Diff(r, found); diff != "" {
			t.Errorf("Find(%s) (-want +got):\n%s", r.DecisionID, diff)
		}
	}
	if view(t, db, func(tx *store.Tx) bool { _, ok := Find(tx, "nope"); return ok }) {
		t.Error("Find of an unknown decision found one")
	}
	if err := l.Append(context.Background(), Record{}); err == nil {
		t.Error("a record without decision_id was appended")
	}
	if err := l.Append(context.Background(), Record{DecisionID: "x", Timestamp: "yesterday"}); err == nil {
		t.Error("a record with a malformed timestamp was appended")
	}
	if n := view(t, db, Len); n != 23 {
		t.Errorf("failed appends left records: Len %d, want 23", n)
	}
}

// TestCanonical: the stored bytes are the canonical JSON, and the hash is
// the SHA-256 of those bytes with the hash value blanked.
func TestCanonical(t *testing.T) {
	r := sample(1)
	r.Seq, r.Prev = 2, hexOf(1)
	stored, err := encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	canonical, _ := json.Marshal(func() Record { c := r; c.Hash = ""; return c }())
	if got := bytes.Replace(stored, []byte(`"hash":"`+r.Hash+`"`), []byte(`"hash":""`), 1); !bytes.Equal(got, canonical) {
		t.Errorf("stored bytes with the hash blanked are not the canonical JSON:\n%s\n%s", got, canonical)
	}
	c, err := parseChain(stored)
	if err != nil || c.seq != 2 || c.prev != r.Prev || c.hash != r.Hash || c.actual != r.Hash {
		t.Errorf("parseChain = %+v, %v", c, err)
	}
	back, err := decode(stored)
	if diff := cmp.Diff(r, back); err != nil || diff != "" {
		t.Errorf("decode (-want +got):\n%s %v", diff, err)
	}
	// Keys named like the chain fields inside the input do not confuse it.
	r.Input = json.RawMessage(`{"seq":7,"prev":"x","hash":"y"}`)
	stored, _ = encode(&r)
	if c, err := parseChain(stored); err != nil || c.seq != 2 || c.actual != r.Hash {
		t.Errorf("parseChain with chain-like keys in input = %+v, %v", c, err)
	}
}

func hexOf(n byte) string { return string(bytes.Repeat([]byte{"0123456789abcdef"[n%16]}, 64)) }

// tamper copies the database at path, changes the copy with bbolt and
// returns the copy's path.
func tamper(t *testing.T, path string, fn func(t *testing.T, log, head *bbolt.Bucket)) string {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "tampered.db")
	copyFile(t, path, cp)
	b, err := bbolt.Open(cp, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Update(func(tx *bbolt.Tx) error {
		fn(t, tx.Bucket([]byte("log:"+logName)), tx.Bucket([]byte("blob:"+nsHead)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return cp
}

func key(seq uint64) []byte { return u64(seq) }

func get(t *testing.T, log *bbolt.Bucket, seq uint64) []byte {
	t.Helper()
	v := log.Get(key(seq))
	if v == nil {
		t.Fatalf("no record %d", seq)
	}
	return bytes.Clone(v)
}

func put(t *testing.T, b *bbolt.Bucket, k, v []byte) {
	t.Helper()
	if err := b.Put(k, v); err != nil {
		t.Fatal(err)
	}
}

// rewrite changes record seq and recomputes its hash, as a forger who
// knows the format would.
func rewrite(t *testing.T, log *bbolt.Bucket, seq uint64, change func(*Record)) string {
	t.Helper()
	r, err := decode(get(t, log, seq))
	if err != nil {
		t.Fatal(err)
	}
	change(&r)
	v, err := encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	put(t, log, key(seq), v)
	return r.Hash
}

func setHead(t *testing.T, head *bbolt.Bucket, seq uint64, hash string) {
	t.Helper()
	put(t, head, []byte(headKey), encodeHead(Checkpoint{Seq: seq, Hash: hash}))
}

func hashAt(t *testing.T, log *bbolt.Bucket, seq uint64) string {
	t.Helper()
	c, err := parseChain(get(t, log, seq))
	if err != nil {
		t.Fatal(err)
	}
	return c.hash
}

// TestTamper changes a copy of the file in every way the chain must show,
// and checks that Verify names the first bad record and the problem.
func TestTamper(t *testing.T) {
	const n = 20
	db, path := openDB(t)
	fill(t, New(db), n)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		change   func(t *testing.T, log, head *bbolt.Bucket)
		firstBad uint64
		problem  string
	}{
		{"edit a field of record 7", func(t *testing.T, log, _ *bbolt.Bucket) {
			v := get(t, log, 7)
			put(t, log, key(7), bytes.Replace(v, []byte(`"outcome":"allow"`), []byte(`"outcome":"deny"`), 1))
		}, 7, ProblemEdited},
		{"edit record 7 and recompute its hash", func(t *testing.T, log, _ *bbolt.Bucket) {
			rewrite(t, log, 7, func(r *Record) { r.Labels[LabelPatient] = "p-someone-else" })
		}, 7, ProblemEdited},
		{"edit the last record and recompute its hash", func(t *testing.T, log, _ *bbolt.Bucket) {
			rewrite(t, log, n, func(r *Record) { r.Labels[LabelPatient] = "p-someone-else" })
		}, n, ProblemEdited},
		{"break record 7's JSON", func(t *testing.T, log, _ *bbolt.Bucket) {
			put(t, log, key(7), get(t, log, 7)[:100])
		}, 7, ProblemEdited},
		{"delete record 7", func(t *testing.T, log, _ *bbolt.Bucket) {
			if err := log.Delete(key(7)); err != nil {
				t.Fatal(err)
			}
		}, 7, ProblemDeleted},
		{"delete the first record", func(t *testing.T, log, _ *bbolt.Bucket) {
			if err := log.Delete(key(1)); err != nil {
				t.Fatal(err)
			}
		}, 1, ProblemDeleted},
		{"cut the last two records", func(t *testing.T, log, _ *bbolt.Bucket) {
			_ = log.Delete(key(n))
			_ = log.Delete(key(n - 1))
		}, n - 1, ProblemDeleted},
		{"delete record 7, shift the rest down and fix the head", func(t *testing.T, log, head *bbolt.Bucket) {
			for s := uint64(7); s < n; s++ {
				put(t, log, key(s), get(t, log, s+1))
			}
			_ = log.Delete(key(n))
			setHead(t, head, n-1, hashAt(t, log, n-1))
		}, 7, ProblemDeleted},
		{"insert a forged record at 7, shifting the rest up", func(t *testing.T, log, head *bbolt.Bucket) {
			for s := uint64(n); s >= 7; s-- {
				put(t, log, key(s+1), get(t, log, s))
			}
			prev := hashAt(t, log, 6)
			rewrite(t, log, 7, func(r *Record) { r.DecisionID, r.Labels[LabelOutcome], r.Prev = store.NewID(), OutcomeAllow, prev })
			setHead(t, head, n+1, hashAt(t, log, n+1))
		}, 7, ProblemInserted},
		// A copy of an earlier record: the position it sits at is the first
		// bad one (once the copied record's own position was named, and
		// everything in between called inserted: black-box review).
		{"insert a copy of record 3 at 15, shifting the rest up", func(t *testing.T, log, head *bbolt.Bucket) {
			for s := uint64(n); s >= 15; s-- {
				put(t, log, key(s+1), get(t, log, s))
			}
			put(t, log, key(15), get(t, log, 3))
			setHead(t, head, n+1, hashAt(t, log, n+1))
		}, 15, ProblemInserted},
		{"overwrite record 12 with a copy of record 4", func(t *testing.T, log, _ *bbolt.Bucket) {
			put(t, log, key(12), get(t, log, 4))
		}, 12, ProblemEdited},
		{"append a forged record after the head", func(t *testing.T, log, _ *bbolt.Bucket) {
			put(t, log, key(n+1), get(t, log, n))
			prev := hashAt(t, log, n)
			rewrite(t, log, n+1, func(r *Record) { r.DecisionID, r.Seq, r.Prev = store.NewID(), n+1, prev })
		}, n + 1, ProblemInserted},
		{"swap records 7 and 8", func(t *testing.T, log, _ *bbolt.Bucket) {
			a, b := get(t, log, 7), get(t, log, 8)
			put(t, log, key(7), b)
			put(t, log, key(8), a)
		}, 7, ProblemReordered},
		{"swap records 5 and 15", func(t *testing.T, log, _ *bbolt.Bucket) {
			a, b := get(t, log, 5), get(t, log, 15)
			put(t, log, key(5), b)
			put(t, log, key(15), a)
		}, 5, ProblemReordered},
		{"delete the head", func(t *testing.T, _, head *bbolt.Bucket) {
			_ = head.Delete([]byte(headKey))
		}, n, ProblemHead},
		{"move the head on", func(t *testing.T, _, head *bbolt.Bucket) {
			v := head.Get([]byte(headKey))
			setHead(t, head, n+3, string(v[8:]))
		}, n + 1, ProblemDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := tamper(t, path, tt.change)
			ro, err := store.OpenReadOnly(cp)
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			got := view(t, ro, Verify)
			if got.OK || got.FirstBad != tt.firstBad || got.Problem != tt.problem {
				t.Errorf("Verify = %+v; want first bad %d, %s", got, tt.firstBad, tt.problem)
			}
			if got.Detail == "" {
				t.Error("no detail")
			}
		})
	}
	// The untouched original still verifies.
	ro, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := view(t, ro, Verify); !got.OK || got.Records != n {
		t.Errorf("original: %+v", got)
	}
}

// TestAppendAfterTamper: a hub keeps logging after its tail was cut (the
// head blob remembers), and Verify keeps reporting the cut; when the log's
// positions and the head disagree, appending fails closed.
func TestAppendAfterTamper(t *testing.T) {
	db, path := openDB(t)
	fill(t, New(db), 10)
	db.Close()
	cut := tamper(t, path, func(t *testing.T, log, _ *bbolt.Bucket) { _ = log.Delete(key(10)) })
	db2, err := store.Open(cut, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := New(db2).Append(context.Background(), sample(10)); err != nil {
		t.Fatal(err)
	}
	if got := view(t, db2, Verify); got.OK || got.FirstBad != 10 || got.Problem != ProblemDeleted {
		t.Errorf("after a cut and an append: %+v, want record 10 deleted", got)
	}

	back := tamper(t, path, func(t *testing.T, _, head *bbolt.Bucket) { setHead(t, head, 4, hexOf(4)) })
	db3, err := store.Open(back, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db3.Close()
	if err := New(db3).Append(context.Background(), sample(10)); err == nil {
		t.Error("append with a head moved back succeeded")
	}
}

// TestCheckpoints: checkpoints are written every checkpointEvery records,
// VerifySince starts at the newest one before its position, and a
// checkpoint that no longer matches its record is an edit.
func TestCheckpoints(t *testing.T) {
	defer func(n uint64) { checkpointEvery = n }(checkpointEvery)
	checkpointEvery = 10
	db, path := openDB(t)
	recs := fill(t, New(db), 35)
	cps := view(t, db, Checkpoints)
	want := []Checkpoint{{10, recs[9].Hash}, {20, recs[19].Hash}, {30, recs[29].Hash}}
	if diff := cmp.Diff(want, cps); diff != "" {
		t.Errorf("Checkpoints (-want +got):\n%s", diff)
	}
	got := view(t, db, func(tx *store.Tx) VerifyResult { return VerifySince(tx, 25) })
	if !got.OK || got.From != 20 || got.Records != 16 || got.Head.Seq != 35 {
		t.Errorf("VerifySince(25) = %+v, want OK from 20, 16 records", got)
	}
	db.Close()
	// Rewriting record 20 and everything after it, hashes recomputed,
	// still contradicts the checkpoint.
	cp := tamper(t, path, func(t *testing.T, log, head *bbolt.Bucket) {
		prev := hashAt(t, log, 19)
		for s := uint64(20); s <= 35; s++ {
			p := prev
			prev = rewrite(t, log, s, func(r *Record) { r.Labels[LabelPatient], r.Prev = "p-someone-else", p })
		}
		setHead(t, head, 35, prev)
	})
	ro, err := store.OpenReadOnly(cp)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := view(t, ro, Verify); got.OK || got.FirstBad != 20 || got.Problem != ProblemEdited {
		t.Errorf("chain rewritten from a checkpoint: %+v, want record 20 edited", got)
	}
}

// TestGroupCommit: concurrent Appends share commits, every one is
// durable and in the chain once.
func TestGroupCommit(t *testing.T) {
	db, path := openDB(t)
	l := New(db)
	const writers, each = 64, 40
	ids := make([][]string, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := sample(w*each + i)
				if err := l.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], r.DecisionID)
			}
		})
	}
	wg.Wait()
	st := db.Stats()
	t.Logf("%d writes in %d commits (%.1f per commit)", st.Writes, st.Commits, float64(st.Writes)/float64(st.Commits))
	if st.Commits >= st.Writes {
		t.Errorf("%d commits for %d writes: no group commit", st.Commits, st.Writes)
	}
	db.Close()
	ro, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := view(t, ro, Verify); !got.OK || got.Records != writers*each {
		t.Errorf("Verify = %+v, want OK with %d records", got, writers*each)
	}
	seen := map[uint64]bool{}
	for _, w := range ids {
		for _, id := range w {
			r := view(t, ro, func(tx *store.Tx) Record { r, _ := Find(tx, id); return r })
			if r.DecisionID != id || seen[r.Seq] {
				t.Errorf("decision %s: found %v at seq %d (seen before: %v)", id, r.DecisionID == id, r.Seq, seen[r.Seq])
			}
			seen[r.Seq] = true
		}
	}
}

// TestIndexTampered: Find falls back to the log when the index points to
// the wrong record.
func TestIndexTampered(t *testing.T) {
	db, path := openDB(t)
	recs := fill(t, New(db), 5)
	db.Close()
	ro := editedCopy(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("blob:"+nsIDs)).Put([]byte(recs[2].DecisionID), binary.BigEndian.AppendUint64(nil, 1))
	})
	if r := view(t, ro, func(tx *store.Tx) Record { r, _ := Find(tx, recs[2].DecisionID); return r }); r.Seq != 3 {
		t.Errorf("Find with a wrong index entry: seq %d, want 3", r.Seq)
	}
}

// TestVerifyIndex: a record removed from the decision-id index (replay and
// AuditEvent/<id> no longer find it, the chain still holds it) fails
// verification at that record (it passed: black-box review).
func TestVerifyIndex(t *testing.T) {
	db, path := openDB(t)
	recs := fill(t, New(db), 10)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro := editedCopy(t, path, func(tx *bbolt.Tx) error { return tx.Bucket([]byte("blob:" + nsIDs)).Delete([]byte(recs[6].DecisionID)) })
	if got := view(t, ro, Verify); got.OK || got.FirstBad != 7 || got.Problem != ProblemIndex {
		t.Errorf("Verify = %+v; want first bad 7, %s", got, ProblemIndex)
	}
}

// editedCopy copies the store file at path, edits the copy with bbolt
// directly (outside Parcours) and opens it read-only, closed when the test
// ends.
func editedCopy(t *testing.T, path string, edit func(tx *bbolt.Tx) error) *store.DB {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "edited.db")
	copyFile(t, path, cp)
	b, err := bbolt.Open(cp, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(edit); err != nil {
		t.Fatal(err)
	}
	b.Close()
	ro, err := store.OpenReadOnly(cp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	return ro
}
