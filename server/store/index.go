package store

import (
	"bytes"
	"context"
	"fmt"

	"github.com/parcours-sante/parcours/server/fhirjson"
)

// IndexFrom calls fn for every index entry of typ and param whose value is
// at or after from (byte order), in value order, until fn returns false:
// the range searches of dates, numbers and quantities seek to their lower
// bound and stop at their upper bound.
func (tx *Tx) IndexFrom(typ, param, from string, fn func(value, id string) bool) {
	head := []byte(typ + "\x00" + param + "\x00")
	tx.scan(head, append(bytes.Clone(head), escape(from)...), head, fn)
}

// scan calls fn for the index entries from start on while their keys start
// with within (head is typ, NUL, param, NUL), in key order, until fn
// returns false.
func (tx *Tx) scan(head, start, within []byte, fn func(value, id string) bool) {
	it := tx.indexIter()
	for k := it.Seek(start); k != nil && bytes.HasPrefix(k, within); k = it.Next() {
		rest := k[len(head):]
		i := bytes.LastIndexByte(rest, 0)
		if i < 0 {
			continue
		}
		if !fn(unescape(string(rest[:i])), string(rest[i+1:])) {
			return
		}
	}
}

// reindexBatch is the number of resources Reindex rewrites per commit.
const reindexBatch = 2000

// Reindex recomputes the index entries of every current resource with fn
// (the store's Indexer when nil), a batch of resources per commit, and
// returns the number of resources indexed. Entries that did not change are
// not rewritten, so a second run writes nothing. It goes through the
// committer like any write: the hub may keep serving meanwhile, each
// resource being indexed either the old or the new way.
func (db *DB) Reindex(ctx context.Context, fn Indexer) (int, error) {
	if fn == nil {
		fn = db.indexer
	}
	if fn == nil {
		return 0, fmt.Errorf("reindex: no indexer")
	}
	var after []byte // last current key done
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var last []byte
		var n, live int
		err := db.Update(ctx, func(tx *Tx) error {
			last, n, live = nil, 0, 0
			c := tx.btx.Bucket(bucketCurrent).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && n < reindexBatch; k, v = c.Next() {
				typ, id, ok := bytes.Cut(k, []byte{0})
				if !ok {
					continue
				}
				last = bytes.Clone(k)
				n++
				var entries []IndexEntry
				if Op(v[16]) != OpDelete && len(v) > 17 {
					res, err := fhirjson.Decode(v[17:])
					if err != nil {
						return fmt.Errorf("reindex %s/%s: %w", typ, id, err)
					}
					entries = fn(string(typ), res)
					live++
				}
				if err := tx.reindex(string(typ), string(id), entries); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += live
		if last == nil || n < reindexBatch {
			return total, nil
		}
		after = last
	}
}

// Values returns the values typ/id (its current version) is indexed with
// under param, without decoding its other entries (sorting, includes).
func (tx *Tx) Values(typ, id, param string) []string {
	var out []string
	for _, e := range tx.EntriesOf(typ, id, param+"\x00") {
		out = append(out, e.Value)
	}
	return out
}
