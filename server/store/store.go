package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	mrand "math/rand/v2"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
)

var (
	bucketCurrent  = []byte("current")  // type\x00id -> record of the current version
	bucketHistory  = []byte("history")  // type\x00id\x00version(8) -> record of a past version
	bucketLog      = []byte("log")      // seq(8) -> logEntry (system history)
	bucketTypeLog  = []byte("typelog")  // type\x00seq(8) -> logEntry (type history)
	bucketIndex    = []byte("index")    // type\x00param\x00value\x00id -> nil
	bucketIndexOf  = []byte("indexof")  // type\x00id -> the entries indexed for the current version
	bucketIndexLog = []byte("indexlog") // sequence -> a commit's index writes not yet in index (overlay.go)
	bucketMeta     = []byte("meta")
	allBuckets     = [][]byte{bucketCurrent, bucketHistory, bucketLog, bucketTypeLog, bucketIndex, bucketIndexOf, bucketIndexLog, bucketMeta, bucketJobs, bucketSST}
)

// Op is the interaction that produced a version.
type Op byte

const (
	OpCreate Op = 'C' // created by POST
	OpUpsert Op = 'P' // created by PUT (update-as-create, client id)
	OpUpdate Op = 'U'
	OpDelete Op = 'D'
)

// Created reports whether this version brought the resource into existence.
func (r Resource) Created() bool { return r.Op == OpCreate || r.Op == OpUpsert }

// Resource is one stored version of a resource.
type Resource struct {
	Type        string
	ID          string
	Version     uint64
	LastUpdated time.Time
	Op          Op
	// JSON is the resource with id and meta set; nil for a deletion.
	JSON []byte
}

// Deleted reports whether this version is a deletion (tombstone).
func (r Resource) Deleted() bool { return r.Op == OpDelete }

// IndexEntry is one token a resource is findable by: Param=Value.
type IndexEntry struct{ Param, Value string }

// Indexer extracts the index entries of a resource at write time, inside the
// write transaction.
type Indexer func(typ string, res map[string]any) []IndexEntry

// Options tune Open.
type Options struct {
	Indexer Indexer
	// CreateIndexer, if set, is what PrepareCreate uses instead: for a
	// resource created under an id just drawn (NewID), which nothing
	// stored can reference yet.
	CreateIndexer Indexer
	// Removed, if set, is called when a resource's current version goes
	// — deleted (Delete), or purged by a job's rollback (RollbackJob, or
	// Open undoing a job a crash left open) — with the index entries it
	// had, so that what was derived from it can be found and refreshed. It
	// is called inside the write transaction, which may still fail (as
	// the Indexer is): a reader that must see the removal committed waits
	// for a Barrier first.
	Removed func(typ, id string, entries []IndexEntry)
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// MaxBatch caps the number of write functions sharing one commit.
	MaxBatch int
	// Stamp returns the index entries of a version's meta.lastUpdated at
	// now (the search parameter _lastUpdated): the Indexer's would be,
	// for a resource prepared before its commit time (PrepareCreate).
	Stamp func(typ string, now time.Time) []IndexEntry
	// IndexOverlay is how many index writes the overlay holds before they
	// are flushed into an index segment (overlay.go, sst.go); default 262 144
	// (~25 MiB).
	IndexOverlay int
}

// DB is the resource store.
type DB struct {
	bolt      *bbolt.DB
	indexer   Indexer
	cindexer  Indexer // Options.CreateIndexer, else indexer
	removed   func(typ, id string, entries []IndexEntry)
	now       func() time.Time
	queue     chan *write
	done      chan struct{}
	mu        sync.RWMutex // guards closed against sends on a closed queue
	closed    bool
	readOnly  bool          // OpenReadOnly: no committer
	commits   atomic.Uint64 // bbolt transactions committed by the committer
	writes    atomic.Uint64 // write functions acknowledged by those commits
	onCommit  atomic.Pointer[func(writes int)]
	gen       atomic.Pointer[genAt] // the last Snapshot read (Tx.Snapshot)
	max       int
	allocs    reflect.Value             // bbolt's allocs map (allocs.go), settable; invalid if not found
	last      time.Time                 // committer goroutine only
	views     atomic.Pointer[[]*ixView] // the index overlay as of recent commits (overlay.go)
	ix        *ixView                   // the newest view (committer goroutine only)
	ixMax     int                       // Options.IndexOverlay
	ixFlushed time.Time                 // when the overlay was last flushed (committer goroutine only)
	segs      []segment                 // the index segments, oldest first (sst.go; committer goroutine only)
	// flushed, when set, is what segs becomes if the transaction in
	// progress commits (committer goroutine only).
	flushed *flushState
	stamp   func(typ string, now time.Time) []IndexEntry
	// lastRetry is the latest time given to a batch run again after a
	// failing writer (committer goroutine only).
	lastRetry time.Time
}

type write struct {
	fn   func(*Tx) error
	errc chan error
}

// Errors the store returns; they are *outcome.Error so they answer with the
// right status wherever they surface.
var (
	ErrNotFound = outcome.New(http.StatusNotFound, outcome.CodeNotFound, "", "resource not found")
	ErrGone     = outcome.New(http.StatusGone, outcome.CodeDeleted, "", "resource deleted")
	ErrClosed   = errors.New("store closed")
)

// Open opens (creating if needed) the bbolt file at path.
func Open(path string, opt Options) (*DB, error) {
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         2 * time.Second,
		FreelistType:    bbolt.FreelistMapType,
		NoFreelistSync:  true,
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var last time.Time
	if err := b.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		// Commit times stay increasing across restarts, even if the clock
		// went back meanwhile: start after the newest logged version.
		if _, v := tx.Bucket(bucketLog).Cursor().Last(); v != nil {
			last = time.UnixMicro(int64(binary.BigEndian.Uint64(v))).UTC()
		}
		return nil
	}); err != nil {
		b.Close()
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	db := &DB{bolt: b, indexer: opt.Indexer, removed: opt.Removed, now: opt.Now, queue: make(chan *write, 4096), done: make(chan struct{}), max: opt.MaxBatch, last: last, ixMax: opt.IndexOverlay, stamp: opt.Stamp}
	if db.now == nil {
		db.now = time.Now
	}
	if db.cindexer = opt.CreateIndexer; db.cindexer == nil {
		db.cindexer = db.indexer
	}
	if db.ixMax <= 0 {
		db.ixMax = 1 << 18
	}
	if err := b.View(func(btx *bbolt.Tx) (err error) {
		if db.ix, err = loadOverlay(btx); err != nil {
			return err
		}
		db.segs, err = loadSegments(btx)
		return err
	}); err != nil {
		b.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.publish(db.ix)
	db.ixFlushed = time.Now()
	db.allocs, _ = allocsOf(b)
	if db.max <= 0 {
		db.max = 2048
	}
	go db.commitLoop()
	if err := db.recoverJobs(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, nil
}

// Close stops the committer after pending writes and closes the file.
// Writes submitted after Close fail with ErrClosed.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.readOnly {
		db.readOnly = false
		db.mu.Unlock()
		return db.bolt.Close()
	}
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.queue)
	db.mu.Unlock()
	<-db.done
	return db.bolt.Close()
}

// enqueue hands writes to the committer unless the store is closed.
func (db *DB) enqueue(ctx context.Context, ws ...*write) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	for i, w := range ws {
		select {
		case db.queue <- w:
		case <-ctx.Done():
			for _, rest := range ws[i:] {
				rest.errc <- ctx.Err()
			}
			return nil
		}
	}
	return nil
}

// Bolt exposes the underlying bbolt handle to sibling stores (audit) that
// keep their own buckets in the same file.
func (db *DB) Bolt() *bbolt.DB { return db.bolt }

// Update runs fn in a write transaction, possibly shared with other waiting
// writers (group commit), and returns once the transaction is durable or fn
// failed. fn may run more than once (if a writer batched with it fails) and
// must keep no state outside the transaction except its result variables.
func (db *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	w := &write{fn: fn, errc: make(chan error, 1)}
	if err := db.enqueue(ctx, w); err != nil {
		return err
	}
	// Once queued, the write happens: wait for its outcome whatever ctx says.
	return <-w.errc
}

// Barrier returns once every write function that began before the call
// has committed or failed: a View begun after it sees what they committed.
// (A hook called inside a write function or its prepare, such as the
// Indexer, can note what to read again; a reader that waits for the
// Barrier first reads it committed.) It writes nothing.
func (db *DB) Barrier(ctx context.Context) error {
	w := &write{errc: make(chan error, 1)} // no fn: acknowledged after its batch
	if err := db.enqueue(ctx, w); err != nil {
		return err
	}
	return <-w.errc
}

// UpdateEach runs each fn as its own all-or-nothing unit, all of them
// sharing commits: the errors are per fn (batch bundles).
func (db *DB) UpdateEach(ctx context.Context, fns []func(*Tx) error) []error {
	ws := make([]*write, len(fns))
	errs := make([]error, len(fns))
	for i, fn := range fns {
		ws[i] = &write{fn: fn, errc: make(chan error, 1)}
	}
	if err := db.enqueue(ctx, ws...); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for i, w := range ws {
		errs[i] = <-w.errc
	}
	return errs
}

func (db *DB) commitLoop() {
	defer close(db.done)
	batch := make([]*write, 0, db.max)
	for {
		w, ok := <-db.queue
		if !ok {
			return
		}
		// Writers acknowledged by the previous commit are often runnable
		// but not yet queued again: let them queue before the batch closes.
		runtime.Gosched()
		batch = db.drain(append(batch[:0], w))
		db.commit(batch, db.tick())
		clear(batch)
	}
}

// drain appends the writes queued now to batch, up to the batch size.
func (db *DB) drain(batch []*write) []*write {
	for len(batch) < db.max {
		select {
		case w, ok := <-db.queue:
			if !ok {
				return batch
			}
			batch = append(batch, w)
		default:
			return batch
		}
	}
	return batch
}

var errAbort = errors.New("abort batch")

// appendFill is how full bbolt fills the pages of a bucket written in key
// order before it splits them (its default, 0.5, suits random inserts):
// the change logs append, and the current versions and their index lists
// are keyed by type and time-ordered id, so new keys land at the end of
// their type's range. Denser pages make a smaller file and fewer pages to
// write per commit. The index bucket, written at random places, keeps the
// default.
const appendFill = 0.9

// fill sets the fill of the buckets written mostly in key order (a
// bucket's FillPercent lasts one transaction).
func fill(btx *bbolt.Tx) {
	for _, name := range [][]byte{bucketCurrent, bucketIndexOf, bucketLog, bucketTypeLog, bucketHistory} {
		if b := btx.Bucket(name); b != nil {
			b.FillPercent = appendFill
		}
	}
}

// commit runs the batch in one bbolt transaction. When a function fails, the
// transaction is rolled back, the functions before it are committed on their
// own, the failing one gets its error and the rest go on: each function still
// sees exactly the writes of those queued before it.
func (db *DB) commit(batch []*write, now time.Time) {
	var next *ixView // published by commitIndex for this commit
	n := 0
	var barriers []*write
	for _, w := range batch {
		if w.fn == nil {
			barriers = append(barriers, w)
		} else {
			batch[n] = w
			n++
		}
	}
	batch = batch[:n]
	defer func() {
		for _, w := range barriers {
			w.errc <- nil
		}
	}()
	for first := true; len(batch) > 0; first = false {
		failed := -1
		next = nil
		db.flushed = nil
		var ferr error
		if !first {
			now = db.tick()
			db.lastRetry = now
		}
		err := db.bolt.Update(func(btx *bbolt.Tx) error {
			db.trimAllocs()
			fill(btx)
			st := &txState{}
			for i, w := range batch {
				// Each function gets its own Tx (its job, if it sets one,
				// stays its own); they share the bbolt transaction and the
				// pending index writes.
				tx := &Tx{btx: btx, db: db, ix: db.ix, now: now, st: st}
				// Its index writes stay pending: sorted once, at the commit,
				// or earlier if a later function reads where they may be.
				err := run(w.fn, tx)
				if err != nil {
					failed, ferr = i, err
					return errAbort
				}
			}
			if st.data {
				if err := bumpGeneration(btx); err != nil {
					return err
				}
			}
			var err error
			next, err = db.commitIndex(btx, st)
			return err
		})
		if failed < 0 {
			if next != nil {
				if err == nil {
					db.ix = next
				} else {
					db.retract(next.txid)
				}
				next = nil
			}
			if f := db.flushed; f != nil {
				if err == nil {
					db.segs = f.segs
				}
				db.flushed = nil
			}
			if err == nil {
				db.commits.Add(1)
				db.writes.Add(uint64(len(batch)))
				if f := db.onCommit.Load(); f != nil {
					(*f)(len(batch))
				}
			}
			for _, w := range batch {
				w.errc <- err
			}
			return
		}
		if failed > 0 {
			t := db.tick()
			db.lastRetry = t
			db.commit(batch[:failed], t)
		}
		batch[failed].errc <- ferr
		batch = batch[failed+1:]
	}
}

// Stats counts group commits: Writes/Commits is the mean batch size.
type Stats struct{ Commits, Writes uint64 }

// OnCommit registers a function told the size of every group commit
// (metrics). It runs on the committer: it must be quick.
func (db *DB) OnCommit(f func(writes int)) { db.onCommit.Store(&f) }

// Stats returns the commit counters since Open.
func (db *DB) Stats() Stats { return Stats{Commits: db.commits.Load(), Writes: db.writes.Load()} }

// ErrPanic is what a write function that panicked returns; the panic is
// contained to its own write.
var ErrPanic = errors.New("store: write function panicked")

func run(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, p)
		}
	}()
	return fn(tx)
}

// tick returns a commit time strictly after the previous one (microsecond
// resolution, as stored), so lastUpdated orders versions.
func (db *DB) tick() time.Time {
	t := db.now().UTC().Truncate(time.Microsecond)
	if !t.After(db.last) {
		t = db.last.Add(time.Microsecond)
	}
	db.last = t
	return t
}

// View runs fn in a read-only snapshot.
func (db *DB) View(fn func(*Tx) error) error {
	for {
		err := db.bolt.View(func(btx *bbolt.Tx) error {
			ix := db.viewAt(uint64(btx.ID()))
			if ix == nil {
				return errStaleView
			}
			return fn(&Tx{btx: btx, db: db, ix: ix})
		})
		if err != errStaleView {
			return err
		}
	}
}

// Read returns the current version: ErrNotFound if it never existed, and the
// tombstone with ErrGone if it was deleted.
func (db *DB) Read(typ, id string) (r Resource, err error) {
	err = db.View(func(tx *Tx) error {
		r, err = tx.Get(typ, id)
		return err
	})
	if err == nil && r.Deleted() {
		err = ErrGone
	}
	return r, err
}

// VRead returns one version (a deleted version is returned with ErrGone).
func (db *DB) VRead(typ, id string, version uint64) (r Resource, err error) {
	err = db.View(func(tx *Tx) (err error) {
		r, err = tx.Version(typ, id, version)
		return err
	})
	if err == nil && r.Deleted() {
		err = ErrGone
	}
	return r, err
}

// Tx is a store transaction (read-only under View).
type Tx struct {
	btx *bbolt.Tx
	db  *DB
	ix  *ixView // the index overlay this transaction reads over the index bucket
	now time.Time
	st  *txState // nil in a View
	job []byte   // the ingest job this function's creates belong to (SetJob)
	// segs are the index segments (sst.go), read once: a write function
	// runs before its commit flushes the overlay.
	segs []sstLevel
}

// txState is what the functions sharing one bbolt write transaction share.
type txState struct {
	// data is set by every write of resources, versions, the change logs,
	// index entries and jobs: the commit then bumps the generation.
	data bool
	// index holds the index writes not sorted yet: they become a run
	// (flushIndex) before the index is read and at the end of each write
	// function.
	index []indexOp
	// runs are the sorted index writes of the transaction so far, read
	// over the overlay and published with the commit (commitIndex). (The
	// bucket gets them later, in key order: bbolt splits nodes only when
	// it commits, so keys inserted in random order moved a growing node's
	// tail at each insert.)
	runs []*ixRun
	// changed are the indexof keys of the resources whose index entries
	// the transaction changed (indexlog, overlay.go).
	changed [][]byte
	// values holds the digests of the value prefixes (type, param, value)
	// of the pending writes: an exact lookup of a value none of them has
	// reads the bucket without applying them first (a write transaction
	// that creates Patients checks each INS).
	values map[uint64]struct{}
}

type indexOp struct {
	key []byte
	put bool
	seq int // position among the pending writes (newRun)
}

var valueSeed = maphash.MakeSeed()

// valueDigest is the digest of the value prefix of an index key (up to
// and with the NUL before the id; ids hold no NUL).
func valueDigest(key []byte) uint64 {
	return maphash.Bytes(valueSeed, key[:bytes.LastIndexByte(key, 0)+1])
}

// pend adds an index write.
func (tx *Tx) pend(key []byte, put bool) {
	st := tx.st
	st.data = true
	st.index = append(st.index, indexOp{key: key, put: put})
	if st.values == nil {
		st.values = map[uint64]struct{}{}
	}
	st.values[valueDigest(key)] = struct{}{}
}

// valueIter is an iterator over the index for reading the keys of one
// value prefix: the pending writes are sorted in first only if one of
// them may have that prefix.
func (tx *Tx) valueIter(prefix []byte) *ixIter {
	d := maphash.Bytes(valueSeed, prefix)
	if tx.st != nil && len(tx.st.index) > 0 {
		if _, ok := tx.st.values[d]; ok {
			tx.st.flushIndex()
		}
	}
	var bd uint64 // computed once, and only if there are segments
	return tx.iterOf(func(l sstLevel) bool {
		if bd == 0 {
			bd = bloomDigest(prefix)
		}
		return bloomHas(l.bloom, bd)
	})
}

// flushIndex turns the pending index writes into a sorted run of the
// transaction (a delete and a put of the same key keep their order: the
// last one wins).
func (st *txState) flushIndex() {
	if st == nil || len(st.index) == 0 {
		return
	}
	st.runs = append(st.runs, newRun(st.index))
	st.index = nil
	clear(st.values)
	if len(st.runs) > 8 {
		st.runs = []*ixRun{mergeRuns(st.runs)}
	}
}

// indexIter is an iterator over the index, up to date with the pending
// writes.
func (tx *Tx) indexIter() *ixIter {
	tx.st.flushIndex()
	return tx.iter()
}

// iter is an iterator over the index bucket under the overlay and the
// transaction's sorted runs.
func (tx *Tx) iter() *ixIter { return tx.iterOf(nil) }

// iterOf is iter over the segments that pass keep (nil: all).
func (tx *Tx) iterOf(keep func(sstLevel) bool) *ixIter {
	var runs []*ixRun
	if tx.ix != nil {
		runs = tx.ix.runs
	}
	if tx.st != nil && len(tx.st.runs) > 0 {
		runs = append(slices.Clip(runs), tx.st.runs...)
	}
	if tx.segs == nil {
		tx.segs = append([]sstLevel{}, sstLevels(tx.btx)...)
	}
	var segs []*sstIter
	for _, l := range tx.segs {
		if keep == nil || keep(l) {
			segs = append(segs, newSSTIter(l.b))
		}
	}
	return newIxIter(runs, tx.btx.Bucket(bucketIndex).Cursor(), segs)
}

// Besides its size limit (Options.IndexOverlay), the overlay is flushed
// once it holds overlayMin writes and overlayAge has passed since the last
// flush: its memory follows the write rate over a few seconds, not only
// the limit (a hub writing slowly would hold ~25 MiB for minutes).
const (
	overlayMin = 4096
	overlayAge = 2 * time.Second
)

// commitIndex ends a write transaction's index writes: they join the
// overlay as one run, logged in indexlog, or, once the overlay is full
// (ixMax writes, or overlayMin after overlayAge), the whole overlay is
// written as an index segment in key order (sst.go) and indexlog emptied.
// It publishes the view of the commit and returns it (nil: the index did
// not change).
func (db *DB) commitIndex(btx *bbolt.Tx, st *txState) (*ixView, error) {
	st.flushIndex()
	run := mergeRuns(st.runs)
	if run == nil || len(run.keys) == 0 {
		return nil, nil
	}
	txid := uint64(btx.ID())
	var next *ixView
	if ops := db.ix.ops + len(run.keys); ops < db.ixMax && (ops < overlayMin || time.Since(db.ixFlushed) < overlayAge) {
		lb := btx.Bucket(bucketIndexLog)
		seq, err := lb.NextSequence()
		if err != nil {
			return nil, err
		}
		if err := lb.Put(u64(seq), encodeLogEntry(run, st.changed)); err != nil {
			return nil, err
		}
		next = db.ix.with(txid, run)
	} else {
		all := mergeRuns(append(slices.Clip(db.ix.runs), run))
		segs, err := db.flushOverlay(btx, all)
		if err != nil {
			return nil, err
		}
		db.flushed = &flushState{segs: segs}
		if err := btx.DeleteBucket(bucketIndexLog); err != nil {
			return nil, err
		}
		if _, err := btx.CreateBucket(bucketIndexLog); err != nil {
			return nil, err
		}
		next = &ixView{txid: txid}
		db.ixFlushed = time.Now()
	}
	if err := db.drainSegments(btx, len(run.keys)); err != nil {
		return nil, err
	}
	db.publish(next)
	return next, nil
}

// Now is the commit time every version written in this transaction gets.
func (tx *Tx) Now() time.Time { return tx.now }

// Snapshot identifies the resources a read transaction sees: two read
// transactions with the same Snapshot see the same resources, versions,
// history and index entries, and it grows with every commit that writes
// any of them. Logs and blobs (the audit log) are left out: a commit that
// only appends to them keeps the Snapshot, so that what is memoised per
// Snapshot outlives the decision log's own commits. A write transaction
// has none (0).
func (tx *Tx) Snapshot() uint64 {
	if tx.btx.Writable() {
		return 0
	}
	// Read transactions of one bbolt transaction id see the same data: the
	// generation read for the last id seen is kept (decisions ask for it
	// several times per request).
	id := uint64(tx.btx.ID())
	if c := tx.db.gen.Load(); c != nil && c.txid == id {
		return c.gen
	}
	g := generation(tx.btx) + 1
	tx.db.gen.Store(&genAt{txid: id, gen: g})
	return g
}

// genAt is the generation (Snapshot) read at one bbolt transaction id.
type genAt struct{ txid, gen uint64 }

// keyGeneration (bucketMeta) counts the commits that wrote resources.
var keyGeneration = []byte("generation")

func generation(btx *bbolt.Tx) uint64 {
	if v := btx.Bucket(bucketMeta).Get(keyGeneration); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func bumpGeneration(btx *bbolt.Tx) error {
	return btx.Bucket(bucketMeta).Put(keyGeneration, u64(generation(btx)+1))
}

// touch marks the bbolt transaction as one that writes resources (see
// Snapshot).
func (tx *Tx) touch() { tx.st.data = true }

// Get returns the current version, including a tombstone; ErrNotFound if the
// resource never existed.
func (tx *Tx) Get(typ, id string) (Resource, error) {
	v := tx.btx.Bucket(bucketCurrent).Get(currentKey(typ, id))
	if v == nil {
		return Resource{}, ErrNotFound
	}
	return decodeRecord(typ, id, v), nil
}

// Put stores res as the next version of typ/id (version 1 if new), setting
// id, meta.versionId and meta.lastUpdated in res, and updating the indexes.
// A new resource is recorded as created by POST.
func (tx *Tx) Put(typ, id string, res map[string]any) (Resource, error) {
	return tx.put(typ, id, res, OpCreate, true)
}

// Upsert is Put for a PUT interaction: a new resource is recorded as created
// by PUT (history shows PUT Type/id).
func (tx *Tx) Upsert(typ, id string, res map[string]any) (Resource, error) {
	return tx.put(typ, id, res, OpUpsert, true)
}

// PutBuiltin stores a resource that is part of the hub's own definition
// (its vocabulary): versioned and readable like any other, but not a change
// of the data, so it stays out of type and system history.
func (tx *Tx) PutBuiltin(typ, id string, res map[string]any) (Resource, error) {
	return tx.put(typ, id, res, OpUpsert, false)
}

func (tx *Tx) put(typ, id string, res map[string]any, create Op, logged bool) (Resource, error) {
	cur, err := tx.Get(typ, id)
	op := OpUpdate
	switch {
	case errors.Is(err, ErrNotFound):
		op = create
	case err != nil:
		return Resource{}, err
	case cur.Deleted():
		op = create
	}
	r := Resource{Type: typ, ID: id, Version: cur.Version + 1, LastUpdated: tx.now, Op: op}
	res["id"] = id
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	meta["versionId"] = strconv.FormatUint(r.Version, 10)
	meta["lastUpdated"] = FormatInstant(r.LastUpdated)
	res["meta"] = meta
	r.JSON = fhirjson.Marshal(res)
	if err := tx.write(r, logged); err != nil {
		return Resource{}, err
	}
	var entries []IndexEntry
	if tx.db.indexer != nil {
		entries = tx.db.indexer(typ, res)
	}
	return r, tx.reindex(typ, id, entries)
}

// Prepared is the first version of a resource made ready ahead of its
// write (PrepareCreate): encoded, with its index entries, but for its
// commit time. Encoding and indexing are most of the CPU of a create: a
// writer prepares its creates on its own goroutines, before it queues the
// write, and the committer only stamps and stores them.
type Prepared struct {
	r    Resource
	meta map[string]any // the resource's meta, stamped by PutPrepared
	at   int            // offset of the placeholder lastUpdated in r.JSON
	list []byte         // the index keys but the commit time's (Options.Stamp)
}

// placeholder is the meta.lastUpdated a prepared resource is encoded with
// until PutPrepared writes the commit time over it: as wide as
// FormatInstant's, and drawn at start so that no client can put it in a
// resource first.
var placeholder = fmt.Sprintf("0%03d-01-01T00:00:00.%06dZ", mrand.IntN(1000), mrand.IntN(1_000_000))

// PrepareCreate makes res the first version of typ/id, id drawn by NewID
// for it: it sets id and meta.versionId in res, computes its index entries
// with the store's CreateIndexer (meta.lastUpdated left out: Options.Stamp
// adds its entries at the commit) and encodes it with a placeholder
// lastUpdated. It touches no transaction and may run on any goroutine.
func (db *DB) PrepareCreate(typ, id string, res map[string]any) *Prepared {
	r := Resource{Type: typ, ID: id, Version: 1, Op: OpCreate}
	res["id"] = id
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	meta["versionId"] = "1"
	delete(meta, "lastUpdated")
	res["meta"] = meta
	p := &Prepared{meta: meta}
	if db.cindexer != nil {
		p.list = indexList(typ, id, db.cindexer(typ, res))
	}
	meta["lastUpdated"] = placeholder
	r.JSON = fhirjson.Marshal(res)
	p.at = bytes.Index(r.JSON, []byte(`"lastUpdated":"`+placeholder+`"`)) + len(`"lastUpdated":"`)
	p.r = r
	return p
}

// PutPrepared stores a prepared first version at the transaction's time,
// as Put would have: typ/id must not exist.
func (tx *Tx) PutPrepared(p *Prepared) (Resource, error) {
	if _, err := tx.Get(p.r.Type, p.r.ID); !errors.Is(err, ErrNotFound) {
		if err == nil {
			err = fmt.Errorf("store: %s/%s exists", p.r.Type, p.r.ID)
		}
		return Resource{}, err
	}
	stamp := FormatInstant(tx.now)
	if p.at < len(`"lastUpdated":"`) || len(stamp) != len(placeholder) {
		return Resource{}, errors.New("store: a prepared resource without its placeholder time")
	}
	copy(p.r.JSON[p.at:], stamp) // again if the transaction runs again
	p.meta["lastUpdated"] = stamp
	r := p.r
	r.LastUpdated = tx.now
	if err := tx.write(r, true); err != nil {
		return Resource{}, err
	}
	list := p.list
	if tx.db.stamp != nil {
		list = slices.Concat(list, indexList(r.Type, r.ID, tx.db.stamp(r.Type, tx.now)))
	}
	return r, tx.reindexList(r.Type, r.ID, list)
}

// indexList is the indexof value of entries: each one's param, NUL and
// escaped value (its index key without the type before and the id after),
// length-prefixed.
func indexList(typ, id string, entries []IndexEntry) []byte {
	var list []byte
	for _, e := range entries {
		v := escape(e.Value)
		list = binary.BigEndian.AppendUint32(list, uint32(len(e.Param)+1+len(v)))
		list = append(list, e.Param...)
		list = append(list, 0)
		list = append(list, v...)
	}
	return list
}

// listBodies calls fn with the body (param, NUL, escaped value) of each
// entry of an indexof list of typ/id. Lists written before the bodies
// were stored alone hold whole index keys (typ, NUL, body, NUL, id):
// their type and id are cut.
func listBodies(typ, id string, list []byte, fn func(body []byte)) {
	head, tail := len(typ)+1, len(id)+1
	for len(list) >= 4 {
		n := binary.BigEndian.Uint32(list)
		b := list[4 : 4+n : 4+n]
		list = list[4+n:]
		// A body's value has NULs only before 0xff (escape), and ids have
		// no 0xff: a body never ends with NUL and the id.
		if len(b) >= head+tail && string(b[:head-1]) == typ && b[head-1] == 0 &&
			b[len(b)-tail] == 0 && string(b[len(b)-tail+1:]) == id {
			b = b[head : len(b)-tail]
		}
		fn(b)
	}
}

// bodyKey is the index key of an entry body of typ/id.
func bodyKey(typ, id string, body []byte) []byte {
	k := make([]byte, 0, len(typ)+len(body)+len(id)+2)
	k = append(k, typ...)
	k = append(k, 0)
	k = append(k, body...)
	k = append(k, 0)
	return append(k, id...)
}

// NewID returns a fresh server-assigned logical id: a UUID version 7 (time
// ordered, then a per-process counter, then random bits). Successive ids sort
// after each other, so creates append to the same B+tree pages instead of
// dirtying a random page each.
func NewID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	seq := idSeq.Add(1)
	// The counter's low 26 bits: 12 in rand_a, 14 under the variant bits.
	binary.BigEndian.PutUint64(b[0:8], ms<<16|(seq>>14)&0x0fff)
	b[6] = b[6]&0x0f | 0x70 // version 7
	binary.BigEndian.PutUint16(b[8:10], uint16(seq)&0x3fff)
	_, _ = rand.Read(b[10:])
	b[8] = b[8]&0x3f | 0x80 // variant
	return FormatUUID(b)
}

var idSeq atomic.Uint64

// Delete writes a tombstone version. Deleting a deleted resource changes
// nothing and returns the existing tombstone; ErrNotFound if it never existed.
func (tx *Tx) Delete(typ, id string) (Resource, error) {
	cur, err := tx.Get(typ, id)
	if err != nil {
		return Resource{}, err
	}
	if cur.Deleted() {
		return cur, nil
	}
	if tx.db.removed != nil {
		tx.db.removed(typ, id, tx.Entries(typ, id))
	}
	r := Resource{Type: typ, ID: id, Version: cur.Version + 1, LastUpdated: tx.now, Op: OpDelete}
	if err := tx.write(r, true); err != nil {
		return Resource{}, err
	}
	return r, tx.reindex(typ, id, nil)
}

// write makes r the current version; the previous current version, if any,
// moves to the history bucket (a create writes one record, not two).
func (tx *Tx) write(r Resource, logged bool) error {
	tx.touch()
	cb := tx.btx.Bucket(bucketCurrent)
	key := currentKey(r.Type, r.ID)
	prev := cb.Get(key)
	if tx.job != nil && (prev != nil || !logged) {
		return ErrJobWrite
	}
	if prev != nil {
		ver := binary.BigEndian.Uint64(prev)
		if err := tx.btx.Bucket(bucketHistory).Put(versionKey(r.Type, r.ID, ver), prev); err != nil {
			return err
		}
	}
	if err := cb.Put(key, encodeRecord(r)); err != nil {
		return err
	}
	if !logged {
		return nil
	}
	lb := tx.btx.Bucket(bucketLog)
	seq, err := lb.NextSequence()
	if err != nil {
		return err
	}
	le := encodeLog(r)
	if err := lb.Put(u64(seq), le); err != nil {
		return err
	}
	if err := tx.btx.Bucket(bucketTypeLog).Put(append([]byte(r.Type+"\x00"), u64(seq)...), le); err != nil {
		return err
	}
	if tx.job != nil {
		return tx.track(r, seq)
	}
	return nil
}

func (tx *Tx) reindex(typ, id string, entries []IndexEntry) error {
	return tx.reindexList(typ, id, indexList(typ, id, entries))
}

// reindexList replaces the index entries of typ/id with those of list (an
// indexList).
func (tx *Tx) reindexList(typ, id string, list []byte) error {
	extra := len(typ) + len(id) + 2
	for rest := list; len(rest) >= 4; {
		// The index writes are applied later: check now what Put would.
		n := binary.BigEndian.Uint32(rest)
		if int(n)+extra > bbolt.MaxKeySize {
			return berrors.ErrKeyTooLarge
		}
		rest = rest[4+n:]
	}
	ob := tx.btx.Bucket(bucketIndexOf)
	ok := currentKey(typ, id)
	old := ob.Get(ok)
	if bytes.Equal(old, list) && (old != nil) == (list != nil) {
		return nil // an update that changes no index entry
	}
	tx.touch()
	tx.st.changed = append(tx.st.changed, ok)
	// Only the keys that differ are written: an update changes a few of
	// a resource's entries, not all of them.
	var kept map[string]bool
	if len(old) > 0 && len(list) > 0 {
		kept = map[string]bool{}
		listBodies(typ, id, list, func(b []byte) { kept[string(b)] = false })
	}
	// old is bbolt memory, valid until the next write: bodyKey copies.
	listBodies(typ, id, old, func(b []byte) {
		if _, ok := kept[string(b)]; ok {
			kept[string(b)] = true // already indexed
			return
		}
		tx.pend(bodyKey(typ, id, b), false)
	})
	if len(list) == 0 {
		return ob.Delete(ok)
	}
	listBodies(typ, id, list, func(b []byte) {
		if !kept[string(b)] {
			tx.pend(bodyKey(typ, id, b), true)
		}
	})
	return ob.Put(ok, list)
}

// Lookup returns the ids of current resources of typ indexed with param=value.
func (tx *Tx) Lookup(typ, param, value string) []string {
	prefix := []byte(typ + "\x00" + param + "\x00" + escape(value) + "\x00")
	var ids []string
	it := tx.valueIter(prefix)
	for k := it.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k = it.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

// Exists reports whether typ/id exists and is not deleted.
func (tx *Tx) Exists(typ, id string) bool {
	r, err := tx.Get(typ, id)
	return err == nil && !r.Deleted()
}

// FormatInstant renders t as a FHIR instant in UTC with microseconds.
func FormatInstant(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}

func currentKey(typ, id string) []byte { return []byte(typ + "\x00" + id) }

func versionKey(typ, id string, v uint64) []byte {
	return append([]byte(typ+"\x00"+id+"\x00"), u64(v)...)
}

// escape makes a NUL inside an index value unambiguous (NUL → NUL 0xff), so
// that "value\x00" only prefixes the keys of exactly that value.
func escape(v string) string {
	if !strings.Contains(v, "\x00") {
		return v
	}
	return strings.ReplaceAll(v, "\x00", "\x00\xff")
}

// unescape undoes escape.
func unescape(v string) string {
	if !strings.Contains(v, "\x00") {
		return v
	}
	return strings.ReplaceAll(v, "\x00\xff", "\x00")
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// A record is version(8) | lastUpdated µs(8) | op(1) | JSON.
func encodeRecord(r Resource) []byte {
	b := make([]byte, 17, 17+len(r.JSON))
	binary.BigEndian.PutUint64(b[0:], r.Version)
	binary.BigEndian.PutUint64(b[8:], uint64(r.LastUpdated.UnixMicro()))
	b[16] = byte(r.Op)
	return append(b, r.JSON...)
}

// decodeRecord decodes a record, copying the JSON out of bbolt's memory
// (valid only inside the transaction).
func decodeRecord(typ, id string, v []byte) Resource {
	r := Resource{
		Type:        typ,
		ID:          id,
		Version:     binary.BigEndian.Uint64(v[0:]),
		LastUpdated: time.UnixMicro(int64(binary.BigEndian.Uint64(v[8:]))).UTC(),
		Op:          Op(v[16]),
	}
	if len(v) > 17 {
		r.JSON = bytes.Clone(v[17:])
	}
	return r
}

// A log entry is lastUpdated µs(8) | version(8) | type\x00id.
func encodeLog(r Resource) []byte {
	b := make([]byte, 16, 16+len(r.Type)+1+len(r.ID))
	binary.BigEndian.PutUint64(b[0:], uint64(r.LastUpdated.UnixMicro()))
	binary.BigEndian.PutUint64(b[8:], r.Version)
	return append(append(append(b, r.Type...), 0), r.ID...)
}

// IDs returns the ids of the current, non-deleted resources of typ, sorted.
func (tx *Tx) IDs(typ string) []string {
	prefix := []byte(typ + "\x00")
	var ids []string
	c := tx.btx.Bucket(bucketCurrent).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if Op(v[16]) != OpDelete {
			ids = append(ids, string(k[len(prefix):]))
		}
	}
	return ids
}

// Version returns one version of typ/id (tombstones included).
func (tx *Tx) Version(typ, id string, version uint64) (Resource, error) {
	v := tx.record(typ, id, version)
	if v == nil {
		return Resource{}, ErrNotFound
	}
	return decodeRecord(typ, id, v), nil
}

// record finds the raw record of a version, current or past.
func (tx *Tx) record(typ, id string, version uint64) []byte {
	if cur := tx.btx.Bucket(bucketCurrent).Get(currentKey(typ, id)); cur != nil && binary.BigEndian.Uint64(cur) == version {
		return cur
	}
	return tx.btx.Bucket(bucketHistory).Get(versionKey(typ, id, version))
}

// Entries returns the index entries of the current version of typ/id.
func (tx *Tx) Entries(typ, id string) []IndexEntry { return tx.EntriesOf(typ, id, "") }

// EntriesOf returns the index entries of the current version of typ/id
// whose param starts with prefix (the policy reads only its "_" params:
// the others are skipped without being decoded).
func (tx *Tx) EntriesOf(typ, id, prefix string) []IndexEntry {
	var out []IndexEntry
	listBodies(typ, id, tx.btx.Bucket(bucketIndexOf).Get(currentKey(typ, id)), func(body []byte) {
		if len(prefix) > 0 && (len(body) < len(prefix) || string(body[:len(prefix)]) != prefix) {
			return
		}
		param, value, ok := bytes.Cut(body, []byte{0})
		if !ok {
			return
		}
		out = append(out, IndexEntry{Param: string(param), Value: unescape(string(value))})
	})
	return out
}

// Has reports whether any current resource of typ is indexed with
// param=value.
func (tx *Tx) Has(typ, param, value string) bool {
	prefix := []byte(typ + "\x00" + param + "\x00" + escape(value) + "\x00")
	k := tx.valueIter(prefix).Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// IndexScan calls fn for every index entry of typ and param whose value
// starts with prefix, in value order, until fn returns false (range and
// starts-with searches).
func (tx *Tx) IndexScan(typ, param, prefix string, fn func(value, id string) bool) {
	head := []byte(typ + "\x00" + param + "\x00")
	start := append(bytes.Clone(head), escape(prefix)...)
	tx.scan(head, start, start, fn)
}
