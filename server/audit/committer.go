package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parcours-sante/parcours/server/store"
)

// Options tune Open.
type Options struct {
	// Size is the journal's initial size in bytes (default 1 MiB). The
	// ring doubles, up to MaxSize (default 64 MiB), when it comes round in
	// less than a second.
	Size, MaxSize uint64
	// ApplyEvery is how long acknowledged records may wait in the journal
	// before they are appended to the chain (default 10 ms): applying
	// fewer, larger batches leaves the disk to the journal's syncs. Flush,
	// AppendTx and a full ring apply at once.
	ApplyEvery time.Duration
	// OnGroup, if set, is told the number of records of every group made
	// durable by one journal fdatasync (metrics). It runs on the journal's
	// sync goroutine: it must be quick.
	OnGroup func(records int)
}

// ErrClosed is returned by Append on a closed log.
var ErrClosed = errors.New("audit: log closed")

// request is one Append waiting for its group's sync.
type request struct {
	bodies [][]byte
	ids    []string
	done   chan error
}

// journal is what a Log opened with Open adds to the store: the ring
// file, its writer and the applier that moves its groups into the chain.
type journal struct {
	db     *store.DB
	file   *journalFile
	opt    Options
	queue  chan *request
	kick   chan struct{}   // a group was synced
	slots  chan struct{}   // syncs in flight (syncDepth)
	flush  chan chan error // apply now, answer when done
	stop   chan struct{}   // closed by Close once the writer is done
	mu     sync.RWMutex    // guards closed against sends on a closed queue
	state  sync.Mutex      // guards pending, inflight and err
	closed bool
	// pending are the synced groups not known to be in the chain, oldest
	// first (the chain's journal marker says which are).
	pending  []group
	inflight []inflight // written, not known durable yet, oldest first
	err      error      // the first failure: the log takes no more records
	wdone    chan struct{}
	adone    chan struct{}
	rotated  time.Time // writer only
	synced   atomic.Uint64
}

// syncs counts the journal's syncs since Open (benchmarks).
func (l *Log) syncs() uint64 {
	if l.j == nil {
		return 0
	}
	return l.j.synced.Load()
}

// Open returns the audit log of db with a journal at path (created if
// needed): Append then returns as soon as its records are durable in the
// journal, whose groups join the chain in db shortly after (Flush waits
// for that). Records that a crash left in the journal and not in the
// chain are appended to the chain before Open returns. Close the log
// before the store.
func Open(db *store.DB, path string, opt Options) (*Log, error) {
	if opt.Size == 0 {
		opt.Size = 1 << 20
	}
	if opt.MaxSize < opt.Size {
		opt.MaxSize = max(opt.Size, 64<<20)
	}
	if opt.ApplyEvery <= 0 {
		opt.ApplyEvery = 10 * time.Millisecond
	}
	f, err := openJournal(path, opt.Size)
	if err != nil {
		return nil, fmt.Errorf("audit: open journal %s: %w", path, err)
	}
	j := &journal{db: db, file: f, opt: opt, queue: make(chan *request, 4096), kick: make(chan struct{}, 1), slots: make(chan struct{}, syncDepth),
		flush: make(chan chan error), stop: make(chan struct{}), wdone: make(chan struct{}), adone: make(chan struct{})}
	if err := j.recover(); err != nil {
		f.f.Close()
		return nil, fmt.Errorf("audit: recover journal %s: %w", path, err)
	}
	j.rotated = time.Now()
	go j.writer()
	go j.applier()
	return &Log{db: db, j: j}, nil
}

// recover appends to the chain the groups of the journal's generation
// that the chain's marker does not cover, then starts a new generation.
func (j *journal) recover() error {
	var mark jpos
	if err := j.db.View(func(tx *store.Tx) error { mark = readMark(tx); return nil }); err != nil {
		return err
	}
	groups, err := j.file.unapplied(mark)
	if err != nil {
		return err
	}
	if len(groups) > 0 {
		if err := j.db.Update(context.Background(), func(tx *store.Tx) error { _, err := applyGroups(tx, groups); return err }); err != nil {
			return err
		}
	}
	return j.file.writeHeader(max(mark.gen, j.file.gen) + 1)
}

// Pending counts the records that the journal at path holds and the
// chain of tx does not: after a crash, those the hub appends to the chain
// when it next opens the log. Offline tools report them; it only reads.
// A missing journal holds none.
func Pending(tx *store.Tx, path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	j := &journalFile{f: f, size: uint64(st.Size()) / block * block}
	if j.size < block {
		return 0, nil
	}
	if j.gen, err = j.readHeader(); err != nil {
		return 0, err
	}
	groups, err := j.unapplied(readMark(tx))
	n := 0
	for _, g := range groups {
		n += len(g.bodies)
	}
	return n, err
}

// append queues recs' bodies for the next group and waits for its sync.
func (j *journal) append(ctx context.Context, bodies [][]byte, ids []string) error {
	r := &request{bodies: bodies, ids: ids, done: make(chan error, 1)}
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		return ErrClosed
	}
	if err := j.failure(); err != nil {
		j.mu.RUnlock()
		return err
	}
	select {
	case j.queue <- r:
	case <-ctx.Done():
		j.mu.RUnlock()
		return ctx.Err()
	}
	j.mu.RUnlock()
	// Once queued, the records are written: wait whatever ctx says.
	return <-r.done
}

func (j *journal) failure() error {
	j.state.Lock()
	defer j.state.Unlock()
	return j.err
}

func (j *journal) fail(err error) {
	j.state.Lock()
	if j.err == nil {
		j.err = err
	}
	j.state.Unlock()
}

// syncDepth is how many group syncs may be in flight: while one group
// syncs, the next is written and synced too (a virtual disk serves two
// syncs at once faster than one after the other).
const syncDepth = 2

// writer gathers every request waiting into one group, writes it and
// hands it to a sync; a group is acknowledged when a sync that started
// after it was written returns (fdatasync covers every page written
// before it).
func (j *journal) writer() {
	defer close(j.wdone)
	var batch []*request
	var buf []byte
	for r := range j.queue {
		batch = append(batch[:0], r)
		// Writers acknowledged by the previous sync are often runnable but
		// not yet queued again: let them queue before the group closes.
		runtime.Gosched()
		j.slots <- struct{}{} // a sync slot; requests gather meanwhile
		batch = j.drain(batch)
		buf = j.writeGroup(batch, buf[:0])
	}
	for range syncDepth { // the syncs in flight end before Close goes on
		j.slots <- struct{}{}
	}
}

// drain adds the queued requests to batch, up to 1 MiB of bodies.
func (j *journal) drain(batch []*request) []*request {
	size := 0
	for size < 1<<20 {
		select {
		case r, ok := <-j.queue:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			for _, b := range r.bodies {
				size += 4 + len(b)
			}
		default:
			return batch
		}
	}
	return batch
}

// quiesce waits for the syncs in flight, the writer holding one slot (it
// holds every slot on return).
func (j *journal) quiesce() {
	for range syncDepth - 1 {
		j.slots <- struct{}{}
	}
}

// release gives the slots back after quiesce.
func (j *journal) release() {
	for range syncDepth - 1 {
		<-j.slots
	}
}

// writeGroup writes batch as one group and starts its sync, holding a
// slot that the sync gives back.
func (j *journal) writeGroup(batch []*request, buf []byte) []byte {
	batch = slices.Clone(batch)
	var bodies [][]byte
	var ids []string
	for _, r := range batch {
		bodies = append(bodies, r.bodies...)
		ids = append(ids, r.ids...)
	}
	answer := func(err error) {
		for _, r := range batch {
			r.done <- err
		}
		<-j.slots
	}
	if err := j.failure(); err != nil {
		answer(err)
		return buf
	}
	payload := 0
	for _, b := range bodies {
		payload += 4 + len(b)
	}
	n := groupLen(payload)
	if n > j.file.capacity() {
		// Larger than the ring: straight into the chain, through the
		// store's group commit.
		err := j.db.Update(context.Background(), func(tx *store.Tx) error {
			return appendBodies(tx, make([]Record, len(bodies)), bodies, ids)
		})
		answer(err)
		return buf
	}
	if !j.file.fits(n) {
		j.quiesce()
		err := j.rotate(n)
		j.release()
		if err != nil {
			j.fail(err)
			answer(err)
			return buf
		}
	}
	buf = encodeGroup(buf, j.file.gen, bodies)
	if err := j.file.write(buf); err != nil {
		j.fail(err)
		answer(err)
		return buf
	}
	end := jpos{j.file.gen, j.file.off}
	j.state.Lock()
	j.inflight = append(j.inflight, inflight{group: group{end: end, bodies: bodies, ids: ids}, reqs: batch})
	j.state.Unlock()
	go j.sync(end)
	return buf
}

// inflight is a group written, its sync not returned yet.
type inflight struct {
	group
	reqs []*request
}

// sync makes the groups written up to end durable and acknowledges them.
func (j *journal) sync(end jpos) {
	err := j.file.sync()
	j.synced.Add(1)
	j.state.Lock()
	i := 0
	for i < len(j.inflight) && !j.inflight[i].end.after(end) {
		i++
	}
	done := slices.Clone(j.inflight[:i])
	j.inflight = slices.Delete(j.inflight, 0, i)
	if err != nil && j.err == nil {
		// The groups may or may not be on disk: take no more records
		// (they would follow groups of unknown fate).
		j.err = err
	}
	if j.err != nil {
		// A failure before this sync returned (an earlier group's sync
		// may have failed, and a later sync does not report it again):
		// these records are not acknowledged.
		err = j.err
	} else {
		for _, f := range done {
			j.pending = append(j.pending, f.group)
		}
	}
	j.state.Unlock()
	if err == nil && j.opt.OnGroup != nil {
		n := 0
		for _, f := range done {
			n += len(f.bodies)
		}
		if n > 0 {
			j.opt.OnGroup(n)
		}
	}
	for _, f := range done {
		for _, r := range f.reqs {
			r.done <- err
		}
	}
	<-j.slots
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// rotate starts the ring again once every group written is in the chain
// (growing it first if it came round quickly).
func (j *journal) rotate(need uint64) error {
	if err := j.applyNow(); err != nil {
		return err
	}
	if time.Since(j.rotated) < time.Second && j.file.size < j.opt.MaxSize {
		if err := j.file.grow(min(j.file.size*2, j.opt.MaxSize)); err != nil {
			return err
		}
		if j.file.fits(need) {
			return nil
		}
	}
	j.rotated = time.Now()
	return j.file.writeHeader(j.file.gen + 1)
}

// applyNow asks the applier to apply every pending group and waits.
func (j *journal) applyNow() error {
	done := make(chan error, 1)
	select {
	case j.flush <- done:
		return <-done
	case <-j.adone:
		return ErrClosed
	}
}

// applier appends the synced groups to the chain, at most every
// ApplyEvery unless asked to apply now.
func (j *journal) applier() {
	defer close(j.adone)
	var waiting []chan error
	last := time.Now()
	stopping := false
	for {
		if len(waiting) == 0 && !stopping {
			select {
			case <-j.kick:
			case c := <-j.flush:
				waiting = append(waiting, c)
			case <-j.stop:
				stopping = true
			}
		}
		// Let a batch gather, unless someone waits for it.
		if wait := j.opt.ApplyEvery - time.Since(last); len(waiting) == 0 && !stopping && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case c := <-j.flush:
				waiting = append(waiting, c)
			case <-j.stop:
				stopping = true
			}
			t.Stop()
		}
		last = time.Now()
		err := j.apply()
		for _, c := range waiting {
			c <- err
		}
		waiting = waiting[:0]
		if err != nil {
			j.fail(err)
		}
		if stopping {
			return
		}
	}
}

// apply appends the pending groups the chain does not have yet, in one
// store write, and forgets those the chain has.
func (j *journal) apply() error {
	j.state.Lock()
	groups := slices.Clone(j.pending)
	j.state.Unlock()
	if len(groups) == 0 {
		return nil
	}
	var mark jpos
	err := j.db.Update(context.Background(), func(tx *store.Tx) error {
		var err error
		mark, err = applyGroups(tx, groups)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit: apply journal: %w", err)
	}
	j.forget(mark)
	return nil
}

// applyPending appends, inside tx, the pending groups the chain does not
// have yet (AppendTx: records acknowledged before a data write come
// before its own in the chain). The pending list is pruned by the applier
// once a commit is known.
func (j *journal) applyPending(tx *store.Tx) error {
	j.state.Lock()
	groups := slices.Clone(j.pending)
	j.state.Unlock()
	if len(groups) == 0 {
		return nil
	}
	_, err := applyGroups(tx, groups)
	return err
}

// forget drops the pending groups up to mark (in the chain).
func (j *journal) forget(mark jpos) {
	j.state.Lock()
	defer j.state.Unlock()
	i := 0
	for i < len(j.pending) && !j.pending[i].end.after(mark) {
		i++
	}
	j.pending = slices.Delete(j.pending, 0, i)
}

// close stops taking records, writes those queued, applies every group
// and closes the file.
func (j *journal) close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.queue)
	j.mu.Unlock()
	<-j.wdone
	close(j.stop)
	<-j.adone
	err := j.apply() // groups synced after the applier's last run
	return errors.Join(err, j.file.f.Close())
}

// applyGroups appends the groups after the chain's journal marker and
// moves the marker; it returns the marker.
func applyGroups(tx *store.Tx, groups []group) (jpos, error) {
	mark := readMark(tx)
	moved := false
	for _, g := range groups {
		if !g.end.after(mark) {
			continue
		}
		if err := appendBodies(tx, make([]Record, len(g.bodies)), g.bodies, g.ids); err != nil {
			return mark, err
		}
		mark, moved = g.end, true
	}
	if moved {
		if err := tx.PutBlob(nsHead, markKey, append(u64(mark.gen), u64(mark.off)...)); err != nil {
			return mark, fmt.Errorf("audit: journal marker: %w", err)
		}
	}
	return mark, nil
}

// readMark is the journal position up to which the chain holds the
// journal's groups.
func readMark(tx *store.Tx) jpos {
	b := tx.Blob(nsHead, markKey)
	if len(b) != 16 {
		return jpos{}
	}
	return jpos{be64(b[:8]), be64(b[8:])}
}
