package audit

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/parcours-sante/parcours/server/store"
)

// Problems Verify names.
const (
	ProblemEdited    = "edited"        // a record's bytes no longer match its hash, or the next record's prev
	ProblemDeleted   = "deleted"       // a position is missing, or the tail was cut
	ProblemInserted  = "inserted"      // a record was added inside or after the chain
	ProblemReordered = "reordered"     // a record sits at another record's position
	ProblemHead      = "head-mismatch" // the head blob is missing
	ProblemIndex     = "index"         // a record is missing from the decision-id index (replay, AuditEvent/<id> cannot find it)
)

// VerifyResult is the outcome of a verification.
type VerifyResult struct {
	Records  int    `json:"records"`  // records examined
	OK       bool   `json:"ok"`       // the chain holds from the start to the head
	FirstBad uint64 `json:"firstBad"` // the first position that is not what was appended (0 when OK)
	Problem  string `json:"problem,omitempty"`
	Detail   string `json:"detail,omitempty"`
	// Head is the last record's position and hash (when OK): write it down
	// to detect a later rewrite of the whole chain.
	Head Checkpoint `json:"head"`
	From uint64     `json:"from"` // the first position verified
}

// Verify checks the whole chain: every record's hash over its stored
// bytes, its position, its link to the previous record, the checkpoints
// and the head blob. It names the first bad position and what happened
// there.
//
// It detects any change made without recomputing the chain. Someone able
// to write the file can recompute every hash after the change (SHA-256 is
// not keyed): compare the head or checkpoints with copies kept outside the
// hub to detect that (see Checkpoints).
func Verify(tx *store.Tx) VerifyResult { return VerifySince(tx, 0) }

// VerifySince verifies from the newest checkpoint at or before position
// from (from the start when there is none) to the head: the cost of an
// incremental verification is the records since that checkpoint. The
// checkpoint's record must still have the checkpointed hash.
func VerifySince(tx *store.Tx, from uint64) VerifyResult {
	cps := map[uint64]string{}
	var start Checkpoint
	for _, c := range Checkpoints(tx) {
		cps[c.Seq] = c.Hash
		if from > 0 && c.Seq <= from && c.Seq > start.Seq {
			start = c
		}
	}
	v := verifier{tx: tx, cps: cps, expect: max(start.Seq, 1)}
	v.res.From, v.last = v.expect, v.expect-1
	tx.Scan(logName, v.expect, v.record)
	if v.res.Problem == "" {
		v.checkHead()
	}
	if v.res.Problem == "" && v.unindexed != 0 {
		v.fail(v.unindexed, ProblemIndex, "record %d (decision %s) is missing from the decision-id index", v.unindexed, v.unindexedID)
	}
	v.res.OK = v.res.Problem == ""
	if v.res.OK {
		v.res.Head = Checkpoint{Seq: v.last, Hash: v.prev}
	}
	return v.res
}

type verifier struct {
	tx          *store.Tx
	cps         map[uint64]string
	expect      uint64 // the next position
	last        uint64 // the last position seen
	prev, prev2 string // hashes of the last two records
	res         VerifyResult
	// unindexed is the first record the decision-id index does not find.
	unindexed   uint64
	unindexedID string
}

func (v *verifier) fail(seq uint64, problem, format string, args ...any) {
	v.res.FirstBad, v.res.Problem, v.res.Detail = seq, problem, fmt.Sprintf(format, args...)
}

// record checks one stored record; after the first problem it only counts.
func (v *verifier) record(key uint64, val []byte) bool {
	v.res.Records++
	if v.res.Problem != "" {
		return true
	}
	first := key == v.res.From
	if key > v.expect {
		v.fail(v.expect, ProblemDeleted, "records %d to %d are missing", v.expect, key-1)
		return true
	}
	c, err := parseChain(val)
	if err != nil {
		v.fail(key, ProblemEdited, "record %d is not a canonical record: %v", key, err)
		return true
	}
	if c.actual != c.hash {
		v.fail(key, ProblemEdited, "record %d does not match its hash", key)
		return true
	}
	if cp, ok := v.cps[key]; ok && cp != c.hash {
		v.fail(key, ProblemEdited, "record %d does not match its checkpoint", key)
		return true
	}
	switch {
	case c.seq > key:
		// The record of a later position: moved here (reordered), or the
		// records after a deleted one shifted down.
		if v.later(key) {
			v.fail(key, ProblemReordered, "position %d holds record %d; record %d comes later", key, c.seq, key)
		} else {
			v.fail(key, ProblemDeleted, "position %d holds record %d: records %d to %d are missing", key, c.seq, key, c.seq-1)
		}
		return true
	case c.seq < key:
		// A copy of an earlier record sits here: inserted (the records
		// after it shifted up, the next position holds this one's) or
		// written over this position's record. Either way this position is
		// the first bad one (once the copied record's position was named,
		// and every position in between called inserted: black-box review).
		if _, h, ok := v.at(c.seq); !ok || h != c.hash {
			// Position c.seq holds another record claiming it: that one
			// was inserted there, and the records from it shifted up.
			v.fail(c.seq, ProblemInserted, "record %d sits at position %d: %d record(s) inserted from position %d", c.seq, key, key-c.seq, c.seq)
		} else if next, _, ok := v.at(key + 1); ok && next == key {
			v.fail(key, ProblemInserted, "position %d holds a copy of record %d, and the records after it shifted: it was inserted", key, c.seq)
		} else {
			v.fail(key, ProblemEdited, "position %d holds a copy of record %d: record %d was overwritten", key, c.seq, key)
		}
		return true
	}
	if first && v.res.From > 1 {
		// Starting at a checkpoint: its record was checked above.
	} else if c.prev != v.prev {
		switch {
		case key > v.res.From+1 && c.prev == v.prev2:
			v.fail(key-1, ProblemInserted, "record %d links to record %d: record %d was inserted", key, key-2, key-1)
		case key == v.res.From && key == 1:
			v.fail(key, ProblemEdited, "the first record links to a previous one")
		default:
			v.fail(key-1, ProblemEdited, "record %d does not link to record %d: record %d was changed", key, key-1, key-1)
		}
		return true
	}
	// The decision-id index finds the record (replay, AuditEvent/<id>):
	// an entry removed from it hid a record the chain still holds
	// (black-box review).
	// Reported only when the chain holds (a forged record is not in the
	// index either: its problem is the insertion).
	if id, ok := storedDecisionID(val); ok && v.unindexed == 0 {
		if at := v.tx.Blob(nsIDs, id); len(at) != 8 || binary.BigEndian.Uint64(at) > key {
			v.unindexed, v.unindexedID = key, id
		}
	}
	v.prev2, v.prev = v.prev, c.hash
	v.last, v.expect = key, key+1
	return true
}

// at is the position the record stored at pos claims and its hash (false
// when pos holds none, or no canonical record).
func (v *verifier) at(pos uint64) (seq uint64, hash string, found bool) {
	v.tx.Scan(logName, pos, func(key uint64, val []byte) bool {
		if key == pos {
			if c, err := parseChain(val); err == nil {
				seq, hash, found = c.seq, c.hash, true
			}
		}
		return false
	})
	return seq, hash, found
}

// later reports whether the record of position seq sits further on.
func (v *verifier) later(seq uint64) bool {
	found := false
	v.tx.Scan(logName, seq+1, func(_ uint64, val []byte) bool {
		if c, err := parseChain(val); err == nil && c.seq == seq {
			found = true
		}
		return !found
	})
	return found
}

// checkHead compares the last record with the head blob: a cut tail or
// records appended behind the hub's back show there.
func (v *verifier) checkHead() {
	head, ok := readHead(v.tx)
	switch {
	case !ok && v.last == 0:
		// An empty log.
	case !ok:
		v.fail(v.last, ProblemHead, "the head is missing (%d records)", v.last)
	case head.Seq > v.last:
		v.fail(v.last+1, ProblemDeleted, "the log ends at record %d, the head says %d: the tail was cut", v.last, head.Seq)
	case head.Seq < v.last:
		v.fail(head.Seq+1, ProblemInserted, "records %d to %d were appended after the head", head.Seq+1, v.last)
	case head.Hash != v.prev:
		v.fail(v.last, ProblemEdited, "record %d does not match the head: it was changed", v.last)
	}
}

// storedDecisionID reads the decision_id of a stored record: its first
// field (canonical form).
func storedDecisionID(v []byte) (string, bool) {
	const head = `{"decision_id":"`
	if !bytes.HasPrefix(v, []byte(head)) {
		return "", false
	}
	rest := v[len(head):]
	i := bytes.IndexByte(rest, '"')
	if i <= 0 {
		return "", false
	}
	return string(rest[:i]), true
}
