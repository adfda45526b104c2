package audit

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/parcours-sante/parcours/server/store"
)

// Where the audit log lives in the store file: an append-only log and four
// blob namespaces, all written in the same transactions.
const (
	logName       = "audit"            // seq → canonical record
	nsHead        = "audit"            // "head" → seq(8) | hash of the last record
	nsIDs         = "audit-id"         // decision_id → seq(8) of its first record
	nsRevisions   = "audit-policy"     // policy revision → JSON {file: content}
	nsCheckpoints = "audit-checkpoint" // %020d seq → hash, every CheckpointEvery records
	headKey       = "head"
	markKey       = "journal" // in nsHead: gen(8) | offset(8), the journal's groups in the chain
)

// CheckpointEvery is how often (in records) AppendTx writes a checkpoint:
// the hash of that record, from which VerifySince can start.
const CheckpointEvery = 1 << 16

var checkpointEvery uint64 = CheckpointEvery // tests lower it

// ErrOutOfStep is returned by AppendTx when the log's next position is not
// the one after the chain's head: the file was edited outside Parcours.
// Appending fails closed rather than write records the chain cannot hold.
var ErrOutOfStep = errors.New("audit: the log and its head are out of step (edited outside Parcours? run parcours audit verify)")

// Log appends decision records to the store's audit log.
type Log struct {
	db *store.DB
	j  *journal // nil: Append writes through the store (New)
}

// New returns the audit log of db without a journal: Append appends to
// the chain through the store's group commit (a bbolt commit per group).
// Open is the faster one.
func New(db *store.DB) *Log { return &Log{db: db} }

// Close writes the records still queued, appends every journaled record
// to the chain and closes the journal (nothing to do without one). Close
// the log before the store.
func (l *Log) Close() error {
	if l.j == nil {
		return nil
	}
	return l.j.close()
}

// Flush returns once every record acknowledged before the call is in the
// chain (at once without a journal). Readers of the chain that must see
// the latest records (auditors' searches, verification) flush first.
func (l *Log) Flush() error {
	if l.j == nil {
		return nil
	}
	l.j.state.Lock()
	n, err := len(l.j.pending), l.j.err
	l.j.state.Unlock()
	if n == 0 || err != nil {
		return err
	}
	return l.j.applyNow()
}

// Checkpoint is a position of the chain and the hash of the record there.
type Checkpoint struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// AppendTx appends recs in order inside the caller's write transaction, so
// that a data write and its decision records commit together. It sets each
// record's Seq, Prev and Hash from the chain's head (and an empty Timestamp
// to the commit time, an empty Path to DecisionPath, nil Labels to empty):
// the records of recs are modified in place. Every record needs a
// DecisionID.
//
// It keeps no state outside tx, so the store may run it again in a retried
// group commit.
func (l *Log) AppendTx(tx *store.Tx, recs ...Record) error {
	now := tx.Now()
	if now.IsZero() {
		now = time.Now()
	}
	bodies := make([][]byte, len(recs))
	for i := range recs {
		var err error
		if bodies[i], err = prepare(&recs[i], now); err != nil {
			return err
		}
	}
	if l.j != nil {
		// Records acknowledged before this write come first in the chain.
		if err := l.j.applyPending(tx); err != nil {
			return err
		}
	}
	return appendBodies(tx, recs, bodies, idsOf(recs))
}

// Append appends recs and returns once they are durable. With a journal
// (Open) the records are written to it, sharing one fdatasync with every
// Append waiting at the time, and join the chain shortly after: Seq, Prev
// and Hash stay empty. Without (New), they are appended through the
// store's group commit and sealed in recs as by AppendTx. Either way an
// empty Timestamp becomes the time of the call, and the records are
// encoded before the commit, so the committer only seals and writes them.
func (l *Log) Append(ctx context.Context, recs ...Record) error {
	now := time.Now()
	bodies := make([][]byte, len(recs))
	for i := range recs {
		var err error
		if bodies[i], err = prepare(&recs[i], now); err != nil {
			return err
		}
	}
	if len(recs) == 0 {
		return nil
	}
	if l.j != nil {
		return l.j.append(ctx, bodies, idsOf(recs))
	}
	return l.db.Update(ctx, func(tx *store.Tx) error { return appendBodies(tx, recs, bodies, idsOf(recs)) })
}

func idsOf(recs []Record) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.DecisionID
	}
	return ids
}

// prepare checks r, fills its defaults and returns its body.
func prepare(r *Record, now time.Time) ([]byte, error) {
	if r.DecisionID == "" {
		return nil, errors.New("audit: record without decision_id")
	}
	if r.Timestamp == "" {
		r.Timestamp = now.UTC().Format(time.RFC3339Nano)
	} else if _, err := time.Parse(time.RFC3339Nano, r.Timestamp); err != nil {
		return nil, fmt.Errorf("audit: record %s: timestamp %q is not RFC 3339", r.DecisionID, r.Timestamp)
	}
	if r.Path == "" {
		r.Path = DecisionPath
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	return body(r)
}

// appendBodies seals and appends prepared records (bodies, of decisions
// ids) after the chain's head, moves the head and sets the chain fields of
// recs.
func appendBodies(tx *store.Tx, recs []Record, bodies [][]byte, ids []string) error {
	if len(recs) == 0 {
		return nil
	}
	head, ok := readHead(tx)
	if !ok {
		// An empty log, or one whose head blob is missing: chain on from
		// the last record (Verify reports the missing head until then).
		if seq, v := tx.Last(logName); seq > 0 {
			c, err := parseChain(v)
			if err != nil {
				return fmt.Errorf("%w: last record %d: %v", ErrOutOfStep, seq, err)
			}
			head = Checkpoint{Seq: seq, Hash: c.hash}
		}
	}
	for i := range recs {
		r := &recs[i]
		v, hash := seal(bodies[i], head.Seq+1, head.Hash)
		seq, err := tx.Append(logName, v)
		if err != nil {
			return fmt.Errorf("audit: append: %w", err)
		}
		if seq != head.Seq+1 {
			return fmt.Errorf("%w: next position %d, chain head %d", ErrOutOfStep, seq, head.Seq)
		}
		r.Seq, r.Prev, r.Hash = seq, head.Hash, hash
		if tx.Blob(nsIDs, ids[i]) == nil {
			if err := tx.PutBlob(nsIDs, ids[i], u64(seq)); err != nil {
				return fmt.Errorf("audit: index: %w", err)
			}
		}
		if seq%checkpointEvery == 0 {
			if err := tx.PutBlob(nsCheckpoints, checkpointKey(seq), []byte(hash)); err != nil {
				return fmt.Errorf("audit: checkpoint: %w", err)
			}
		}
		head = Checkpoint{Seq: seq, Hash: hash}
	}
	if err := tx.PutBlob(nsHead, headKey, encodeHead(head)); err != nil {
		return fmt.Errorf("audit: head: %w", err)
	}
	return nil
}

// SaveRevision keeps the policy files of revision rev (by hash, every
// revision ever loaded), so that Replay can re-evaluate decisions taken
// with it. Saving a revision already saved writes nothing.
func (l *Log) SaveRevision(ctx context.Context, rev string, sources map[string]string) error {
	if rev == "" || len(sources) == 0 {
		return errors.New("audit: save revision: empty revision or no sources")
	}
	b, err := json.Marshal(sources) // keys sorted: equal sources, equal bytes
	if err != nil {
		return fmt.Errorf("audit: save revision: %w", err)
	}
	saved := false
	if err := l.db.View(func(tx *store.Tx) error {
		saved = string(tx.Blob(nsRevisions, rev)) == string(b)
		return nil
	}); err != nil || saved {
		return err
	}
	return l.db.Update(ctx, func(tx *store.Tx) error { return tx.PutBlob(nsRevisions, rev, b) })
}

// Revisions lists the saved policy revisions.
func Revisions(tx *store.Tx) []string {
	revs := tx.Blobs(nsRevisions)
	sort.Strings(revs)
	return revs
}

// Sources returns the policy files of a saved revision.
func Sources(tx *store.Tx, rev string) (map[string]string, bool) {
	b := tx.Blob(nsRevisions, rev)
	if b == nil {
		return nil, false
	}
	var src map[string]string
	if err := json.Unmarshal(b, &src); err != nil {
		return nil, false
	}
	return maps.Clone(src), true
}

// Head returns the chain's head as recorded by the last append (zero for an
// empty log).
func Head(tx *store.Tx) Checkpoint {
	h, _ := readHead(tx)
	return h
}

// Checkpoints lists the checkpoints, oldest first. Publishing them outside
// the hub (a ticket, a signed mail, a timestamping service) is what lets an
// auditor detect a rewrite of the whole chain later.
func Checkpoints(tx *store.Tx) []Checkpoint {
	keys := tx.Blobs(nsCheckpoints) // %020d: sorted by seq
	out := make([]Checkpoint, 0, len(keys))
	for _, k := range keys {
		var seq uint64
		if _, err := fmt.Sscanf(k, "%d", &seq); err == nil {
			out = append(out, Checkpoint{Seq: seq, Hash: string(tx.Blob(nsCheckpoints, k))})
		}
	}
	return out
}

// Find returns the first record of decisionID.
func Find(tx *store.Tx, decisionID string) (Record, bool) {
	if v := tx.Blob(nsIDs, decisionID); len(v) == 8 {
		if r, ok := At(tx, binary.BigEndian.Uint64(v)); ok && r.DecisionID == decisionID {
			return r, true
		}
	} else {
		return Record{}, false
	}
	// The index disagrees with the log (edited file): look the slow way.
	var found Record
	ok := false
	tx.Scan(logName, 1, func(_ uint64, v []byte) bool {
		if r, err := decode(v); err == nil && r.DecisionID == decisionID {
			found, ok = r, true
		}
		return !ok
	})
	return found, ok
}

// At returns the record stored at position seq.
func At(tx *store.Tx, seq uint64) (Record, bool) {
	var r Record
	ok := false
	tx.Scan(logName, seq, func(k uint64, v []byte) bool {
		if k == seq {
			var err error
			r, err = decode(v)
			ok = err == nil
		}
		return false
	})
	return r, ok
}

// Len is the number of records in the log (the position of the last one).
func Len(tx *store.Tx) uint64 {
	seq, _ := tx.Last(logName)
	return seq
}

func readHead(tx *store.Tx) (Checkpoint, bool) {
	b := tx.Blob(nsHead, headKey)
	if len(b) < 8 {
		return Checkpoint{}, false
	}
	return Checkpoint{Seq: binary.BigEndian.Uint64(b), Hash: string(b[8:])}, true
}

func encodeHead(h Checkpoint) []byte {
	return append(u64(h.Seq), h.Hash...)
}

func checkpointKey(seq uint64) string { return fmt.Sprintf("%020d", seq) }

func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}
