package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"sort"

	"go.etcd.io/bbolt"
)

// The index overlay. A search index key lands wherever its value sorts
// (dates, quantities, codes): written into the B+tree at each commit, the
// keys of a commit dirty one page each once the index is larger than the
// commit, so that a commit of 1 000 resources wrote ~4 000 index pages.
// Instead, each commit's index writes become a sorted run kept in memory
// and appended, in one piece, to the bucket indexlog (sequential pages,
// and the record that rebuilds the overlay at Open); the runs are flushed,
// merged in key order, into an index segment (sst.go) only when they hold
// Options.IndexOverlay writes. Readers see the index bucket, the segments
// and the overlay merged.
//
// The overlay is versioned like bbolt's pages: each commit publishes an
// immutable ixView tagged with the bbolt transaction id it commits, before
// committing, and a reader takes the newest view at or before the id of
// its bbolt transaction, so that it sees the index exactly as of its
// snapshot.

// ixRun is an immutable run of index writes, sorted by key, each key once:
// put[i] says whether keys[i] is written or removed.
type ixRun struct {
	keys [][]byte
	put  []bool
}

// newRun sorts ops by key; of the writes of one key the last one wins.
func newRun(ops []indexOp) *ixRun {
	for i := range ops {
		ops[i].seq = i
	}
	slices.SortFunc(ops, func(a, b indexOp) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	r := &ixRun{keys: make([][]byte, 0, len(ops)), put: make([]bool, 0, len(ops))}
	for i, op := range ops {
		if i+1 < len(ops) && bytes.Equal(op.key, ops[i+1].key) {
			continue
		}
		r.keys = append(r.keys, op.key)
		r.put = append(r.put, op.put)
	}
	return r
}

// mergeRuns merges runs, oldest first, into one: of the writes of one key
// the newest wins. Removals are kept: they hide keys of the bucket.
func mergeRuns(runs []*ixRun) *ixRun {
	switch len(runs) {
	case 0:
		return nil
	case 1:
		return runs[0]
	case 2:
		return merge2(runs[0], runs[1])
	}
	// Pairs, then pairs of pairs: each write copied log2(len(runs)) times.
	half := len(runs) / 2
	return merge2(mergeRuns(runs[:half]), mergeRuns(runs[half:]))
}

// merge2 is mergeRuns of an older and a newer run.
func merge2(old, new *ixRun) *ixRun {
	n := len(old.keys) + len(new.keys)
	out := &ixRun{keys: make([][]byte, 0, n), put: make([]bool, 0, n)}
	i, j := 0, 0
	for i < len(old.keys) && j < len(new.keys) {
		switch c := bytes.Compare(old.keys[i], new.keys[j]); {
		case c < 0:
			out.keys, out.put = append(out.keys, old.keys[i]), append(out.put, old.put[i])
			i++
		default:
			if c == 0 {
				i++
			}
			out.keys, out.put = append(out.keys, new.keys[j]), append(out.put, new.put[j])
			j++
		}
	}
	out.keys, out.put = append(out.keys, old.keys[i:]...), append(out.put, old.put[i:]...)
	out.keys, out.put = append(out.keys, new.keys[j:]...), append(out.put, new.put[j:]...)
	return out
}

// ixView is the overlay as of one commit.
type ixView struct {
	txid uint64
	runs []*ixRun // oldest first
	ops  int      // writes in runs
}

// runRatio is how much larger than the run after it a run stays apart. At
// 1 the runs merge like a binary counter: a key is copied log2 of the
// overlay's commits times (at 4, a merge grew a run by as little as a
// quarter, and a key was copied up to ~35 times: 4.5 % of the CPU of
// durable creates), for up to log2 runs that a reader seeks.
const runRatio = 1

// with returns the view that adds run, at txid. Runs are merged while the
// older of the last two is at most runRatio times the newer, so that a
// view holds O(log ops) runs (a reader seeks each) and a key is copied
// O(log ops) times.
func (v *ixView) with(txid uint64, run *ixRun) *ixView {
	runs := append(slices.Clip(v.runs), run)
	for len(runs) >= 2 && len(runs[len(runs)-2].keys) <= runRatio*len(runs[len(runs)-1].keys) {
		m := mergeRuns(runs[len(runs)-2:])
		runs = append(runs[:len(runs)-2], m)
	}
	ops := 0
	for _, r := range runs {
		ops += len(r.keys)
	}
	return &ixView{txid: txid, runs: runs, ops: ops}
}

// keptViews is how many published views readers can still pick from. A
// reader picks its view right after its bbolt transaction begins, so that
// it misses only if that many commits end in between (it then begins
// again); each view kept holds its runs, and after a flush the views
// before it hold the whole flushed overlay: 64 views of large ingest
// commits kept ~7 flushed overlays alive, ~400 MiB over a million rows.
const keptViews = 4

// publish makes v the view of readers at v.txid and after; views of the
// same or later ids (a commit that failed) go.
func (db *DB) publish(v *ixView) {
	old := db.views.Load()
	var list []*ixView
	if old != nil {
		for _, o := range *old {
			if o.txid < v.txid {
				list = append(list, o)
			}
		}
	}
	list = append(list, v)
	if len(list) > keptViews {
		list = list[len(list)-keptViews:]
	}
	db.views.Store(&list)
}

// retract removes the views published for txid and after (a failed commit).
func (db *DB) retract(txid uint64) {
	old := db.views.Load()
	if old == nil {
		return
	}
	var list []*ixView
	for _, o := range *old {
		if o.txid < txid {
			list = append(list, o)
		}
	}
	db.views.Store(&list)
}

// viewAt is the view of a reader at bbolt transaction txid; nil if the
// reader is older than every view kept (it begins again).
func (db *DB) viewAt(txid uint64) *ixView {
	list := db.views.Load()
	if list == nil {
		return &ixView{}
	}
	for i := len(*list) - 1; i >= 0; i-- {
		if v := (*list)[i]; v.txid <= txid {
			return v
		}
	}
	return nil
}

var errStaleView = errors.New("store: index view no longer kept")

// loadOverlay rebuilds the overlay from indexlog (a View of the file as
// opened): each entry is one commit's, replayed in commit order.
func loadOverlay(btx *bbolt.Tx) (*ixView, error) {
	v := &ixView{txid: uint64(btx.ID())}
	b := btx.Bucket(bucketIndexLog)
	if b == nil {
		return v, nil
	}
	lists := btx.Bucket(bucketIndexOf)
	err := b.ForEach(func(_, val []byte) error {
		ops, err := decodeLogEntry(val, lists)
		if err != nil {
			return err
		}
		if len(ops) > 0 {
			v = v.with(v.txid, newRun(ops))
		}
		return nil
	})
	return v, err
}

// encodeLogEntry is the indexlog entry of a commit: the keys it removed
// from the index (a count, then each key), then the resources whose index
// entries it changed (their indexof keys). Their current entries are not
// copied: at Open, indexof has the newest (a later commit that changed
// them again is a later entry, replayed after this one), and what it
// removed is listed: replayed in order, the entries rebuild the overlay.
func encodeLogEntry(run *ixRun, changed [][]byte) []byte {
	var out []byte
	n := 0
	for _, put := range run.put {
		if !put {
			n++
		}
	}
	out = binary.AppendUvarint(out, uint64(n))
	for i, k := range run.keys {
		if !run.put[i] {
			out = binary.AppendUvarint(out, uint64(len(k)))
			out = append(out, k...)
		}
	}
	for _, k := range changed {
		out = binary.AppendUvarint(out, uint64(len(k)))
		out = append(out, k...)
	}
	return out
}

// decodeLogEntry is the writes an indexlog entry stands for, in order:
// its removals, then the current entries of the resources it changed.
func decodeLogEntry(b []byte, lists *bbolt.Bucket) ([]indexOp, error) {
	next := func() ([]byte, error) {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return nil, errors.New("store: indexlog entry truncated")
		}
		k := b[w : w+int(n)]
		b = b[w+int(n):]
		return k, nil
	}
	removed, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, errors.New("store: indexlog entry truncated")
	}
	b = b[w:]
	var ops []indexOp
	for range removed {
		k, err := next()
		if err != nil {
			return nil, err
		}
		ops = append(ops, indexOp{key: bytes.Clone(k)})
	}
	for len(b) > 0 {
		k, err := next()
		if err != nil {
			return nil, err
		}
		typ, id, _ := bytes.Cut(k, []byte{0})
		listBodies(string(typ), string(id), lists.Get(k), func(b []byte) {
			ops = append(ops, indexOp{key: bodyKey(string(typ), string(id), b), put: true})
		})
	}
	return ops, nil
}

// ixIter walks the index as its persistent levels (the index bucket, then
// the segments, oldest first: sst.go) under runs
// (oldest first) show it: of the entries of one key the newest wins.
type ixIter struct {
	runs []*ixRun
	pos  []int
	c    *bbolt.Cursor // the index bucket: every key written; may be nil
	ck   []byte        // the cursor's key; nil at its end
	segs []*sstIter
	sk   [][]byte // each segment's key; nil at its end
	sput []bool   // whether sk[i] is written (false: removed)
}

func newIxIter(runs []*ixRun, c *bbolt.Cursor, segs []*sstIter) *ixIter {
	return &ixIter{runs: runs, pos: make([]int, len(runs)), c: c, segs: segs, sk: make([][]byte, len(segs)), sput: make([]bool, len(segs))}
}

// Seek returns the first key written at or after k (nil: none).
func (it *ixIter) Seek(k []byte) []byte {
	key, put := it.seekOp(k)
	for key != nil && !put {
		key, put = it.nextOp()
	}
	return key
}

// Next returns the next key written (nil: none).
func (it *ixIter) Next() []byte {
	key, put := it.nextOp()
	for key != nil && !put {
		key, put = it.nextOp()
	}
	return key
}

// seekOp positions every source at k and returns the first entry.
func (it *ixIter) seekOp(k []byte) ([]byte, bool) {
	for i, r := range it.runs {
		it.pos[i] = sort.Search(len(r.keys), func(j int) bool { return bytes.Compare(r.keys[j], k) >= 0 })
	}
	if it.c != nil {
		if k == nil {
			it.ck, _ = it.c.First()
		} else {
			it.ck, _ = it.c.Seek(k)
		}
	}
	for i, s := range it.segs {
		it.sk[i], it.sput[i] = s.seek(k)
	}
	return it.nextOp()
}

// nextOp returns the smallest key of the sources with its newest entry and
// moves every source past it.
func (it *ixIter) nextOp() ([]byte, bool) {
	var min []byte
	put := false
	// Sources from the oldest: on a tie the newer wins.
	if it.ck != nil {
		min, put = it.ck, true
	}
	for i, k := range it.sk {
		if k != nil && (min == nil || bytes.Compare(k, min) <= 0) {
			min, put = k, it.sput[i]
		}
	}
	for i, r := range it.runs {
		if p := it.pos[i]; p < len(r.keys) {
			if min == nil || bytes.Compare(r.keys[p], min) <= 0 {
				min, put = r.keys[p], r.put[p]
			}
		}
	}
	if min == nil {
		return nil, false
	}
	// min is a run's key, a segment's copy or the cursor's (bbolt's
	// memory, valid for the transaction): moving a source leaves it.
	for i, r := range it.runs {
		if p := it.pos[i]; p < len(r.keys) && bytes.Equal(r.keys[p], min) {
			it.pos[i]++
		}
	}
	for i, k := range it.sk {
		if k != nil && bytes.Equal(k, min) {
			it.sk[i], it.sput[i] = it.segs[i].next()
		}
	}
	if it.ck != nil && bytes.Equal(it.ck, min) {
		it.ck, _ = it.c.Next()
	}
	return min, put
}
