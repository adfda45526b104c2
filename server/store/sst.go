package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"go.etcd.io/bbolt"
)

// Index segments (sorted string tables). A full overlay (overlay.go) is no
// longer merged into the index B+tree: its keys land all over it, so that
// each merge rewrote nearly every page of the index, one write(2) per page,
// and cost more as the index grew (five merges of 270 000 keys took 0.33 s,
// then 0.7 s each, in a Synthea load of eight seconds). It is written
// instead as a segment: its keys in order, prefix-compressed into blocks of
// about segBlock bytes, each block one bbolt value keyed by its first key,
// in a bucket of its own under indexsst, so that a flush writes a few
// hundred large values, sequentially. Segments merge like a binary counter
// (the newest two while the older is at most as large: sequential again),
// so that a key is rewritten O(log n) times and a reader walks O(log n)
// segments, up to segMax entries a segment; past drainAbove segments the
// oldest drains into the index bucket below them, a contiguous key range
// at a time (drainOldest). A Bloom filter of each segment's values lets an
// exact lookup skip the segments without its value.
//
// A segment entry is written or removed (a removal hides the key in the
// older levels). The index bucket (all that earlier versions wrote) is
// the oldest level, written only by drains: a removal of one of its keys
// stays in the oldest segment until drained. Readers merge the index bucket, the segments (oldest
// first) and the overlay's runs, as of their bbolt snapshot; a segment's
// bucket is written once and then only read, until a merge deletes it or
// a drain removes its first blocks.

var bucketSST = []byte("indexsst") // sequence(8) -> nested bucket: a segment (first key of a block -> block)

// Reserved keys of a segment bucket (index keys begin with a type name).
var (
	sstBloom = []byte("\x00bloom")
)

const (
	segBlock   = 16 << 10 // target bytes of a block
	segRestart = 16       // entries between two restart points of a block
	bloomBits  = 10       // Bloom filter bits per value
	bloomK     = 7        // probes per value
)

// Block layout: entries, then the offsets (uint32) of the restart entries,
// then their number (uint32). An entry is uvarint shared, uvarint unshared,
// a flag byte (1 written, 0 removed) and the unshared bytes of its key; a
// restart entry shares nothing.

// sstWriter writes a segment in key order.
type sstWriter struct {
	b        *bbolt.Bucket
	block    []byte
	restarts []uint32
	first    []byte
	last     []byte
	n        int // entries in the block
	count    int // entries in the segment
	digests  []uint64
}

func newSSTWriter(b *bbolt.Bucket) *sstWriter {
	b.FillPercent = 1 // written in key order
	return &sstWriter{b: b}
}

// add appends an entry; keys come in increasing order.
func (w *sstWriter) add(key []byte, put bool) error {
	shared := 0
	if w.n%segRestart == 0 {
		w.restarts = append(w.restarts, uint32(len(w.block)))
	} else {
		for shared < len(key) && shared < len(w.last) && key[shared] == w.last[shared] {
			shared++
		}
	}
	if w.n == 0 {
		w.first = append(w.first[:0], key...)
	}
	w.block = binary.AppendUvarint(w.block, uint64(shared))
	w.block = binary.AppendUvarint(w.block, uint64(len(key)-shared))
	flag := byte(0)
	if put {
		flag = 1
	}
	w.block = append(w.block, flag)
	w.block = append(w.block, key[shared:]...)
	w.last = append(w.last[:0], key...)
	w.n++
	w.count++
	if d := bloomDigest(key[:bytes.LastIndexByte(key, 0)+1]); len(w.digests) == 0 || w.digests[len(w.digests)-1] != d {
		w.digests = append(w.digests, d)
	}
	if len(w.block) >= segBlock {
		return w.flush()
	}
	return nil
}

// flush ends the block.
func (w *sstWriter) flush() error {
	if w.n == 0 {
		return nil
	}
	for _, r := range w.restarts {
		w.block = binary.BigEndian.AppendUint32(w.block, r)
	}
	w.block = binary.BigEndian.AppendUint32(w.block, uint32(len(w.restarts)))
	// bbolt keeps a reference to the value until the commit: a new slice.
	if err := w.b.Put(bytes.Clone(w.first), w.block); err != nil {
		return err
	}
	w.block, w.restarts, w.n = make([]byte, 0, segBlock+segBlock/4), w.restarts[:0], 0
	return nil
}

// close ends the segment: its last block, its Bloom filter and its count
// (the bucket's sequence).
func (w *sstWriter) close() (int, error) {
	if err := w.flush(); err != nil {
		return 0, err
	}
	bits := max(64, len(w.digests)*bloomBits)
	filter := make([]byte, (bits+7)/8)
	for _, d := range w.digests {
		bloomSet(filter, d)
	}
	if err := w.b.Put(sstBloom, filter); err != nil {
		return 0, err
	}
	return w.count, w.b.SetSequence(uint64(w.count))
}

// bloomDigest is the digest of a value prefix (type, param, value and the
// NUL before the id) in a segment's Bloom filter: FNV-1a, the same in
// every process (valueDigest's seed is not).
func bloomDigest(prefix []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range prefix {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// bloomSet and bloomHas use double hashing of a 64-bit digest.
func bloomSet(f []byte, d uint64) {
	n := uint64(len(f)) * 8
	h1, h2 := d, d>>33|d<<31|1
	for i := range uint64(bloomK) {
		b := (h1 + i*h2) % n
		f[b/8] |= 1 << (b % 8)
	}
}

func bloomHas(f []byte, d uint64) bool {
	n := uint64(len(f)) * 8
	if n == 0 {
		return true
	}
	h1, h2 := d, d>>33|d<<31|1
	for i := range uint64(bloomK) {
		b := (h1 + i*h2) % n
		if f[b/8]&(1<<(b%8)) == 0 {
			return false
		}
	}
	return true
}

// segMax caps the entries of a segment that a merge writes: a merge holds
// what it writes in memory until its commit (~32 bytes an entry, blocks
// and pages), so that this bounds the memory of a flush whatever the size
// of the index; larger indexes keep more segments. (A variable for tests.)
var segMax = 1 << 21

var errBadBlock = errors.New("store: index segment block malformed")

// sstIter walks one segment. Keys it returns are its own copies.
type sstIter struct {
	c     *bbolt.Cursor
	block []byte // entries of the current block (restarts cut off)
	rs    []byte // the restart offsets
	off   int    // next entry's offset in block
	key   []byte
}

func newSSTIter(b *bbolt.Bucket) *sstIter { return &sstIter{c: b.Cursor()} }

// load makes v the current block (nil: none).
func (it *sstIter) load(v []byte) {
	it.block, it.rs, it.off = nil, nil, 0
	if v == nil {
		return
	}
	if len(v) < 4 {
		panic(errBadBlock)
	}
	n := int(binary.BigEndian.Uint32(v[len(v)-4:]))
	end := len(v) - 4 - 4*n
	if n == 0 || end < 0 {
		panic(errBadBlock) // a damaged file: fail loudly, never answer from part of the index
	}
	it.block, it.rs = v[:end], v[end:len(v)-4]
}

// blockKey is a block key of the cursor (the reserved keys are skipped).
func blockKey(k, v []byte) bool { return k != nil && k[0] != 0 && v != nil }

// enter loads the block at the cursor's position (k, v), past the
// reserved keys; false at the end.
func (it *sstIter) enter(k, v []byte) bool {
	for k != nil && !blockKey(k, v) {
		k, v = it.c.Next()
	}
	it.load(v)
	it.key = nil
	return k != nil
}

// first positions at the segment's first entry.
func (it *sstIter) first() ([]byte, bool) {
	if !it.enter(it.c.First()) {
		return nil, false
	}
	return it.next()
}

// seek positions at the first entry at or after k.
func (it *sstIter) seek(k []byte) ([]byte, bool) {
	if k == nil {
		return it.first()
	}
	bk, v := it.c.Seek(k)
	if bk == nil || !bytes.Equal(bk, k) {
		// The block before holds the keys below its successor's first.
		var pk, pv []byte
		if bk == nil {
			pk, pv = it.c.Last()
		} else {
			pk, pv = it.c.Prev()
		}
		switch {
		case blockKey(pk, pv):
			bk, v = pk, pv
		case bk == nil:
			it.load(nil)
			return nil, false
		default:
			bk, v = it.c.Seek(k) // every key is at or after k: the first block
		}
	}
	if !it.enter(bk, v) {
		return nil, false
	}
	// The last restart whose key is below k, then entry by entry.
	nr := len(it.rs) / 4
	i := sort.Search(nr, func(i int) bool {
		off := int(binary.BigEndian.Uint32(it.rs[4*i:]))
		rk, ok := restartKey(it.block, off)
		return !ok || bytes.Compare(rk, k) >= 0
	})
	if i > 0 {
		i--
	}
	it.off, it.key = int(binary.BigEndian.Uint32(it.rs[4*i:])), nil
	for {
		key, put := it.next()
		if key == nil || bytes.Compare(key, k) >= 0 {
			return key, put
		}
	}
}

// restartKey is the key of the restart entry at off (its bytes, in block).
func restartKey(block []byte, off int) ([]byte, bool) {
	shared, w1 := binary.Uvarint(block[off:])
	if w1 <= 0 || shared != 0 {
		return nil, false
	}
	n, w2 := binary.Uvarint(block[off+w1:])
	p := off + w1 + w2
	if w2 <= 0 || p+1+int(n) > len(block) {
		return nil, false
	}
	return block[p+1 : p+1+int(n)], true
}

// next returns the next entry (nil at the end).
func (it *sstIter) next() ([]byte, bool) {
	for it.off >= len(it.block) {
		if !it.enter(it.c.Next()) {
			return nil, false
		}
	}
	return it.entry()
}

// entry decodes the entry at off in the current block and moves past it.
func (it *sstIter) entry() ([]byte, bool) {
	shared, w1 := binary.Uvarint(it.block[it.off:])
	n, w2 := binary.Uvarint(it.block[it.off+max(w1, 0):])
	p := it.off + w1 + w2
	if w1 <= 0 || w2 <= 0 || int(shared) > len(it.key) || p+1+int(n) > len(it.block) {
		panic(errBadBlock)
	}
	key := make([]byte, int(shared)+int(n))
	copy(key, it.key[:shared])
	copy(key[shared:], it.block[p+1:p+1+int(n)])
	put := it.block[p] == 1
	it.off, it.key = p+1+int(n), key
	return key, put
}

// segment is a segment as the committer knows it.
type segment struct {
	name []byte
	n    int // entries
}

// flushState is what the committer's segments become if the transaction
// that flushed the overlay commits.
type flushState struct{ segs []segment }

// sstLevel is a segment as a reader sees it.
type sstLevel struct {
	b     *bbolt.Bucket
	bloom []byte // its Bloom filter of value prefixes
}

// sstLevels are the segments of btx, oldest first.
func sstLevels(btx *bbolt.Tx) []sstLevel {
	root := btx.Bucket(bucketSST)
	if root == nil {
		return nil // a file of an earlier version opened read-only
	}
	var out []sstLevel
	c := root.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			b := root.Bucket(k)
			out = append(out, sstLevel{b: b, bloom: b.Get(sstBloom)})
		}
	}
	return out
}

// loadSegments reads the committer's list of segments.
func loadSegments(btx *bbolt.Tx) ([]segment, error) {
	root := btx.Bucket(bucketSST)
	var segs []segment
	c := root.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			return nil, fmt.Errorf("store: indexsst holds a value at %x", k)
		}
		segs = append(segs, segment{name: bytes.Clone(k), n: int(root.Bucket(k).Sequence())})
	}
	return segs, nil
}

// flushOverlay writes the overlay (all: its runs merged) as a new segment
// and merges the newest two segments while the older is at most as large,
// in the committer's transaction. It returns the segments as they are if
// the transaction commits.
func (db *DB) flushOverlay(btx *bbolt.Tx, all *ixRun) ([]segment, error) {
	root := btx.Bucket(bucketSST)
	s, err := writeSegment(root, newIxIter([]*ixRun{all}, nil, nil), nil)
	if err != nil {
		return nil, err
	}
	segs := append(slices.Clip(db.segs), s)
	for len(segs) >= 2 && segs[len(segs)-2].n <= segs[len(segs)-1].n && segs[len(segs)-2].n+segs[len(segs)-1].n <= segMax {
		pair := segs[len(segs)-2:]
		it := newIxIter(nil, nil, []*sstIter{newSSTIter(root.Bucket(pair[0].name)), newSSTIter(root.Bucket(pair[1].name))})
		// Into the oldest segment, a removal matters only if the index
		// bucket has the key.
		var keep func([]byte) bool
		if len(segs) == 2 {
			c := btx.Bucket(bucketIndex).Cursor()
			keep = func(k []byte) bool { bk, _ := c.Seek(k); return bytes.Equal(bk, k) }
		}
		m, err := writeSegment(root, it, keep)
		if err != nil {
			return nil, err
		}
		for _, p := range pair {
			if err := root.DeleteBucket(p.name); err != nil {
				return nil, err
			}
		}
		segs = segs[:len(segs)-2]
		if m.n > 0 {
			segs = append(segs, m)
		} else if err := root.DeleteBucket(m.name); err != nil {
			return nil, err
		}
	}
	return segs, nil
}

// drainSegments moves n entries (whole blocks, at least one) of the
// oldest segment into the index bucket if there are more than drainAbove
// segments, in the committer's transaction: segments stop merging at
// segMax, and draining as many entries as each commit writes keeps
// updates from piling up in segments that no longer merge. Each commit drains a little (a contiguous
// key range of the bucket): a drain of a whole flush at once held ~115 MiB
// more at the end of a large ingest (the bucket's nodes and pages it
// dirties).
func (db *DB) drainSegments(btx *bbolt.Tx, n int) error {
	segs := db.segs
	if db.flushed != nil {
		segs = db.flushed.segs
	}
	if len(segs) <= drainAbove {
		return nil
	}
	segs = slices.Clone(segs)
	root := btx.Bucket(bucketSST)
	moved, err := drainOldest(btx, root.Bucket(segs[0].name), n)
	if err != nil {
		return err
	}
	if segs[0].n -= moved; segs[0].n <= 0 || moved == 0 { // none left (moved is 0 only then)
		if err := root.DeleteBucket(segs[0].name); err != nil {
			return err
		}
		segs = segs[1:]
	}
	db.flushed = &flushState{segs: segs}
	return nil
}

// drainAbove is how many segments there may be before the oldest drains.
const drainAbove = 8

// drainOldest moves the first blocks of the oldest segment b, at least
// limit entries or all of them, into the index bucket (a removal deletes
// the key there) and returns how many entries it moved.
func drainOldest(btx *bbolt.Tx, b *bbolt.Bucket, limit int) (int, error) {
	ib := btx.Bucket(bucketIndex)
	var drained [][]byte
	moved := 0
	c := b.Cursor()
	for k, v := c.First(); k != nil && moved < limit; k, v = c.Next() {
		if !blockKey(k, v) {
			continue
		}
		it := &sstIter{}
		it.load(v)
		for it.off < len(it.block) {
			key, put := it.entry()
			var err error
			if put {
				err = ib.Put(key, nil)
			} else {
				err = ib.Delete(key)
			}
			if err != nil {
				return 0, err
			}
			moved++
		}
		drained = append(drained, bytes.Clone(k))
	}
	for _, k := range drained {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return moved, b.SetSequence(b.Sequence() - uint64(min(uint64(moved), b.Sequence())))
}

// writeSegment writes the entries of it (removals included), in key
// order, as a new segment; keepRemoval, if set, says which removals to
// write.
func writeSegment(root *bbolt.Bucket, it *ixIter, keepRemoval func([]byte) bool) (segment, error) {
	seq, err := root.NextSequence()
	if err != nil {
		return segment{}, err
	}
	name := u64(seq)
	b, err := root.CreateBucket(name)
	if err != nil {
		return segment{}, err
	}
	w := newSSTWriter(b)
	for k, put := it.seekOp(nil); k != nil; k, put = it.nextOp() {
		if !put && keepRemoval != nil && !keepRemoval(k) {
			continue
		}
		if err := w.add(k, put); err != nil {
			return segment{}, err
		}
	}
	n, err := w.close()
	return segment{name: name, n: n}, err
}
