package store

import (
	"bytes"
	"encoding/binary"
	"time"

	"go.etcd.io/bbolt"
)

// HistoryQuery selects versions, newest first. Type and ID empty: system
// history; ID empty: type history; both set: instance history.
type HistoryQuery struct {
	Type, ID string
	// Since keeps versions with lastUpdated ≥ Since (zero: all).
	Since time.Time
	// Before is the paging cursor of a previous page (0: from the newest).
	// Pages are stable while writes happen: a cursor only moves backwards.
	Before uint64
	// Count is the page size; 0 returns only the total.
	Count int
	// Keep, if set, filters versions before they are counted and paged
	// (access control: totals and cursors only see kept versions).
	Keep func(tx *Tx, r Resource) bool
}

// HistoryPage is one page of versions.
type HistoryPage struct {
	Versions []Resource
	// Next is the cursor of the next page, 0 when this is the last one.
	Next uint64
	// Total is the number of versions matching the query (all pages).
	Total int
}

// History lists versions newest first.
func (db *DB) History(q HistoryQuery) (p HistoryPage, err error) {
	if q.Count < 0 {
		q.Count = 0
	}
	err = db.View(func(tx *Tx) error {
		if q.ID != "" {
			p = tx.instanceHistory(q)
		} else {
			p = tx.logHistory(q)
		}
		return nil
	})
	return p, err
}

// instanceHistory pages by version number: the current version, then the
// past ones from the history bucket.
func (tx *Tx) instanceHistory(q HistoryQuery) HistoryPage {
	var p HistoryPage
	visit := func(v []byte) bool {
		r := decodeHeader(v)
		if !q.Since.IsZero() && r.LastUpdated.Before(q.Since) {
			return false
		}
		if q.Keep != nil && !q.Keep(tx, decodeRecord(q.Type, q.ID, v)) {
			return true
		}
		p.Total++
		if q.Before != 0 && r.Version >= q.Before {
			return true
		}
		if len(p.Versions) == q.Count {
			if p.Next == 0 && q.Count > 0 {
				p.Next = p.Versions[len(p.Versions)-1].Version
			}
			return true
		}
		p.Versions = append(p.Versions, decodeRecord(q.Type, q.ID, v))
		return true
	}
	cur := tx.btx.Bucket(bucketCurrent).Get(currentKey(q.Type, q.ID))
	if cur == nil || !visit(cur) {
		return p
	}
	prefix := []byte(q.Type + "\x00" + q.ID + "\x00")
	c := tx.btx.Bucket(bucketHistory).Cursor()
	for k, v := seekLast(c, prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		if !visit(v) {
			break
		}
	}
	return p
}

// logHistory pages by log sequence, over the system or one type's log.
func (tx *Tx) logHistory(q HistoryQuery) HistoryPage {
	var p HistoryPage
	bucket, prefix := bucketLog, []byte(nil)
	if q.Type != "" {
		bucket, prefix = bucketTypeLog, []byte(q.Type+"\x00")
	}
	c := tx.btx.Bucket(bucket).Cursor()
	k, v := seekLast(c, prefix)
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		at := time.UnixMicro(int64(binary.BigEndian.Uint64(v[0:]))).UTC()
		if !q.Since.IsZero() && at.Before(q.Since) {
			break
		}
		ver := binary.BigEndian.Uint64(v[8:])
		typ, id, _ := bytes.Cut(v[16:], []byte{0})
		load := func() (Resource, bool) {
			rec := tx.record(string(typ), string(id), ver)
			if rec == nil {
				return Resource{}, false
			}
			return decodeRecord(string(typ), string(id), rec), true
		}
		var r Resource
		loaded := false
		if q.Keep != nil {
			var ok bool
			if r, ok = load(); !ok || !q.Keep(tx, r) {
				continue
			}
			loaded = true
		}
		p.Total++
		seq := binary.BigEndian.Uint64(k[len(prefix):])
		if q.Before != 0 && seq >= q.Before {
			continue
		}
		if len(p.Versions) == q.Count {
			if p.Next == 0 && q.Count > 0 {
				p.Next = seq + 1
			}
			continue
		}
		if !loaded {
			var ok bool
			if r, ok = load(); !ok {
				continue
			}
		}
		p.Versions = append(p.Versions, r)
	}
	return p
}

// seekLast positions c on the last key with prefix (nil prefix: last key).
func seekLast(c *bbolt.Cursor, prefix []byte) ([]byte, []byte) {
	if len(prefix) == 0 {
		return c.Last()
	}
	end := append(bytes.Clone(prefix[:len(prefix)-1]), prefix[len(prefix)-1]+1)
	if k, _ := c.Seek(end); k == nil {
		return c.Last()
	}
	return c.Prev()
}

func decodeHeader(v []byte) Resource {
	return Resource{
		Version:     binary.BigEndian.Uint64(v[0:]),
		LastUpdated: time.UnixMicro(int64(binary.BigEndian.Uint64(v[8:]))).UTC(),
		Op:          Op(v[16]),
	}
}
