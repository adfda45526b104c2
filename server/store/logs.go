package store

import (
	"bytes"
	"encoding/binary"
	"errors"

	"go.etcd.io/bbolt"
)

// Append-only logs and blobs live in their own buckets ("log:<name>",
// "blob:<name>") of the same file, so that they share the group commit and
// the durability of resource writes (the audit log uses them).

// ErrReadOnly is returned by writes attempted in a View.
var ErrReadOnly = errors.New("store: write in a read-only transaction")

func (tx *Tx) bucket(name string, create bool) (*bbolt.Bucket, error) {
	b := tx.btx.Bucket([]byte(name))
	if b == nil && create {
		if !tx.btx.Writable() {
			return nil, ErrReadOnly
		}
		var err error
		if b, err = tx.btx.CreateBucket([]byte(name)); err != nil {
			return nil, err
		}
	}
	if b != nil && tx.btx.Writable() {
		b.FillPercent = appendFill // logs append; blobs are few or keyed by time-ordered ids
	}
	return b, nil
}

// Append adds value at the end of log name and returns its sequence number
// (1 for the first record).
func (tx *Tx) Append(name string, value []byte) (uint64, error) {
	b, err := tx.bucket("log:"+name, true)
	if err != nil {
		return 0, err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	return seq, b.Put(u64(seq), value)
}

// Last returns the last record of log name (seq 0 when empty). The value is
// a copy.
func (tx *Tx) Last(name string) (uint64, []byte) {
	b, _ := tx.bucket("log:"+name, false)
	if b == nil {
		return 0, nil
	}
	k, v := b.Cursor().Last()
	if k == nil {
		return 0, nil
	}
	return binary.BigEndian.Uint64(k), bytes.Clone(v)
}

// Scan calls fn for the records of log name with seq ≥ from, in order,
// until fn returns false. Values are valid only during the call.
func (tx *Tx) Scan(name string, from uint64, fn func(seq uint64, value []byte) bool) {
	b, _ := tx.bucket("log:"+name, false)
	if b == nil {
		return
	}
	c := b.Cursor()
	for k, v := c.Seek(u64(from)); k != nil; k, v = c.Next() {
		if !fn(binary.BigEndian.Uint64(k), v) {
			return
		}
	}
}

// ScanBack is Scan from the last record backwards (seq ≤ before; 0: from
// the end).
func (tx *Tx) ScanBack(name string, before uint64, fn func(seq uint64, value []byte) bool) {
	b, _ := tx.bucket("log:"+name, false)
	if b == nil {
		return
	}
	c := b.Cursor()
	var k, v []byte
	if before == 0 {
		k, v = c.Last()
	} else if k, v = c.Seek(u64(before)); k == nil || binary.BigEndian.Uint64(k) > before {
		k, v = c.Prev()
	}
	for ; k != nil; k, v = c.Prev() {
		if !fn(binary.BigEndian.Uint64(k), v) {
			return
		}
	}
}

// PutBlob stores value under key in namespace ns (idempotent for equal
// values).
func (tx *Tx) PutBlob(ns, key string, value []byte) error {
	b, err := tx.bucket("blob:"+ns, true)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), value)
}

// Blob returns a copy of the value of key in namespace ns, or nil.
func (tx *Tx) Blob(ns, key string) []byte {
	b, _ := tx.bucket("blob:"+ns, false)
	if b == nil {
		return nil
	}
	return bytes.Clone(b.Get([]byte(key)))
}

// Blobs lists the keys of namespace ns.
func (tx *Tx) Blobs(ns string) []string {
	b, _ := tx.bucket("blob:"+ns, false)
	if b == nil {
		return nil
	}
	var keys []string
	_ = b.ForEach(func(k, _ []byte) error {
		keys = append(keys, string(k))
		return nil
	})
	return keys
}

// OpenReadOnly opens a store file without the committer, for offline tools
// (audit verify, export, replay) on a stopped hub.
func OpenReadOnly(path string) (*DB, error) {
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 2e9})
	if err != nil {
		return nil, err
	}
	db := &DB{bolt: b, queue: make(chan *write), done: make(chan struct{}), closed: true, readOnly: true}
	close(db.done)
	if err := b.View(func(btx *bbolt.Tx) (err error) {
		db.ix, err = loadOverlay(btx)
		return err
	}); err != nil {
		b.Close()
		return nil, err
	}
	db.publish(db.ix)
	return db, nil
}
