package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// Jobs make a write too large for one transaction (the ingest of a large
// native file) all or nothing across several: its transactions each record
// the resources they create under the job, and either the job ends (EndJob,
// in the transaction of its last write or after it) or it is undone
// (RollbackJob): every resource it created is purged — current version,
// history, change-log entries and index entries — as if it had never been
// written. A job left open by a crash is undone by the next Open, before
// the store serves anything.
//
// What a job does not give: isolation. Between its first transaction and
// its end, readers see the resources it has created so far, and a job that
// is undone makes them disappear again (without tombstones). A job only
// creates: an update or a delete under a job fails (it could not be undone
// by a purge).

var bucketJobs = []byte("jobs") // job id → nested bucket: n(8) → logseq(8) | type \x00 id

// ErrJobWrite is returned by an update or delete attempted under a job.
var ErrJobWrite = errors.New("store: a job only creates resources")

// SetJob makes the creates of this write function belong to job id (the
// job begins with its first write). Other functions sharing the commit are
// not affected.
func (tx *Tx) SetJob(id string) error {
	if id == "" {
		return errors.New("store: empty job id")
	}
	if !tx.btx.Writable() {
		return ErrReadOnly
	}
	tx.job = []byte(id)
	tx.touch()
	_, err := tx.btx.Bucket(bucketJobs).CreateBucketIfNotExists(tx.job)
	return err
}

// track records a resource created under the job (r is its first version,
// logged at seq).
func (tx *Tx) track(r Resource, seq uint64) error {
	jb := tx.btx.Bucket(bucketJobs).Bucket(tx.job)
	if jb == nil {
		return fmt.Errorf("store: job %s is not open", tx.job)
	}
	n, err := jb.NextSequence()
	if err != nil {
		return err
	}
	v := make([]byte, 8, 8+len(r.Type)+1+len(r.ID))
	binary.BigEndian.PutUint64(v, seq)
	v = append(append(append(v, r.Type...), 0), r.ID...)
	return jb.Put(u64(n), v)
}

// EndJob ends job id: what it created stays. Ending a job that is not open
// is a no-op.
func (tx *Tx) EndJob(id string) error {
	tx.touch()
	err := tx.btx.Bucket(bucketJobs).DeleteBucket([]byte(id))
	if errors.Is(err, bbolt.ErrBucketNotFound) {
		return nil
	}
	return err
}

// JobOpen reports whether job id has begun and not ended.
func (tx *Tx) JobOpen(id string) bool {
	return tx.btx.Bucket(bucketJobs).Bucket([]byte(id)) != nil
}

// Jobs lists the open jobs.
func (tx *Tx) Jobs() []string {
	var out []string
	_ = tx.btx.Bucket(bucketJobs).ForEachBucket(func(k []byte) error {
		out = append(out, string(k))
		return nil
	})
	return out
}

// rollbackBatch is the number of resources purged per commit.
const rollbackBatch = 2000

// RollbackJob undoes job id: every resource it created is purged, a
// commit per rollbackBatch resources, and the job ends. It returns the
// number of resources purged. Interrupted, it can be run again (Open does).
func (db *DB) RollbackJob(ctx context.Context, id string) (int, error) {
	total := 0
	for {
		n, done := 0, false
		err := db.Update(ctx, func(tx *Tx) error {
			n, done = 0, false
			jb := tx.btx.Bucket(bucketJobs).Bucket([]byte(id))
			if jb == nil {
				done = true
				return nil
			}
			c := jb.Cursor()
			var keys [][]byte
			for k, v := c.First(); k != nil && n < rollbackBatch; k, v = c.Next() {
				if len(v) < 9 {
					return fmt.Errorf("store: job %s: malformed entry", id)
				}
				typ, rid, _ := bytes.Cut(v[8:], []byte{0})
				if db.removed != nil {
					db.removed(string(typ), string(rid), tx.Entries(string(typ), string(rid)))
				}
				if err := tx.purge(string(typ), string(rid), binary.BigEndian.Uint64(v)); err != nil {
					return err
				}
				keys = append(keys, bytes.Clone(k))
				n++
			}
			for _, k := range keys {
				if err := jb.Delete(k); err != nil {
					return err
				}
			}
			if n < rollbackBatch {
				done = true
				return tx.EndJob(id)
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("roll back job %s: %w", id, err)
		}
		total += n
		if done {
			return total, nil
		}
	}
}

// purge removes every trace of typ/id: its current and past versions, its
// index entries and the change-log entry of its creation at seq.
func (tx *Tx) purge(typ, id string, seq uint64) error {
	tx.touch()
	key := currentKey(typ, id)
	if list := tx.btx.Bucket(bucketIndexOf).Get(key); list != nil {
		tx.st.changed = append(tx.st.changed, key)
		listBodies(typ, id, list, func(b []byte) { tx.pend(bodyKey(typ, id, b), false) })
		if err := tx.btx.Bucket(bucketIndexOf).Delete(key); err != nil {
			return err
		}
	}
	if err := tx.btx.Bucket(bucketCurrent).Delete(key); err != nil {
		return err
	}
	hb := tx.btx.Bucket(bucketHistory)
	prefix := append(bytes.Clone(key), 0)
	var old [][]byte
	c := hb.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		old = append(old, bytes.Clone(k))
	}
	for _, k := range old {
		if err := hb.Delete(k); err != nil {
			return err
		}
	}
	if err := tx.btx.Bucket(bucketLog).Delete(u64(seq)); err != nil {
		return err
	}
	return tx.btx.Bucket(bucketTypeLog).Delete(append([]byte(typ+"\x00"), u64(seq)...))
}

// recoverJobs undoes the jobs a crash left open (Open, before serving).
func (db *DB) recoverJobs() error {
	var open []string
	if err := db.View(func(tx *Tx) error { open = tx.Jobs(); return nil }); err != nil {
		return err
	}
	for _, id := range open {
		if _, err := db.RollbackJob(context.Background(), id); err != nil {
			return err
		}
	}
	return nil
}
