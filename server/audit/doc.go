// Package audit is Parcours' decision log: one record per policy decision
// (allow and deny), shaped like Open Policy Agent's decision-log event,
// made durable in a journal file and stored append-only and hash-chained
// in the store's bbolt file, and
// exposed to auditors as NDJSON (Export), as FHIR AuditEvents in the IHE
// BALP shape (Record.AuditEvent, Search), and through Verify and Replay.
//
// It sits under package server and imports store, policy and outcome from
// the project; bbolt stays behind store.
//
// # Chain
//
// Each record carries Seq (its position, from 1), Prev (the Hash of record
// Seq-1) and Hash: the hex SHA-256 of its canonical JSON (encoding/json of
// Record, map keys sorted, hash last) with Hash empty. The stored bytes are
// that canonical JSON with the hash filled in, so an exported line is
// checked by hashing the line with its hash value blanked. A head blob (the
// last Seq and Hash) is rewritten by every append, in the same transaction,
// so that cutting the tail shows; a checkpoint (Seq and Hash) is kept every
// CheckpointEvery records. Verify names the first bad position and whether
// a record was edited, deleted, inserted or reordered. The hash is not
// keyed: someone able to write the file can recompute the chain after a
// change, which only copies of the head or of checkpoints kept outside the
// hub reveal (parcours audit verify --anchor). Appending to a log whose
// positions and head disagree fails closed (ErrOutOfStep).
//
// # Durability
//
// AppendTx writes records inside a caller's store transaction (a data
// write and its decisions commit together). Append returns only once its
// records are durable, in one of two ways.
//
// A log opened with New appends through the store's group commit (every
// writer waiting when a commit starts shares its bbolt transaction). A
// bbolt commit costs two fdatasyncs and newly allocated pages: about
// 2.5 ms per group on the 2-core VM, reads waiting for it ran at a
// quarter of their unaudited rate.
//
// A log opened with Open (the hub: DATA/audit.wal beside parcours.db)
// writes the encoded records to a journal first: a ring file written
// with zeros beforehand, where every Append waiting at the time shares
// one group, one write and one fdatasync (no block allocated, so no
// file-system journal commit), two groups syncing at once. Append returns
// when its group is durable. An applier then appends the journal's
// groups to the chain in the store, in one store transaction every
// ApplyEvery (10 ms), sealing them there (position, prev, hash), with a
// marker (generation, offset) of the journal groups applied, in the same
// transaction. So a record is durable before the answer leaves, and
// joins the chain some milliseconds later; after a crash, Open appends
// what the marker does not cover before it returns (Pending counts them
// for offline tools). Readers that must see the latest records call
// Flush first (the auditors' API does). AppendTx appends the journal's
// pending groups before its own records, so a decision acknowledged
// before a data write precedes it in the chain. Groups are checksummed
// (CRC-32C) and carry the ring's generation: a group torn by a crash was
// not acknowledged, and recovery stops there. A group is written only
// once a sync made all but the last group before it durable, so a bad
// group followed by syncDepth whole ones was acknowledged and then
// altered: recovery fails with ErrJournalDamaged instead of dropping it. The ring comes round once
// every group in it is in the chain, and doubles (up to 64 MiB) when it
// comes round within a second.
//
// The chain format did not change: records are sealed and hashed as
// before, so logs written before the journal verify as they did. A data
// directory without audit.wal gets one when the hub starts.
//
// # Replay
//
// SaveRevision keeps the files of every policy revision the hub loaded,
// by revision hash. Replay evaluates a record's input again with the files
// of its revision (policy.FromSources) and compares allow, reasons,
// obligations and legal basis with the record.
//
// # Scale note
//
// Measured with BenchmarkAppend on a 2-core VM (a gp read whose input
// carries one consent summary, the usual shape): 1.8 KB of canonical JSON
// per record and 2.2 KB of file with the B+tree pages and the decision-id
// index, i.e. about 450,000 records per GB. Through the store (New),
// sixteen concurrent writers share each commit about 10 to 1, for 6,000
// to 11,000 durable records/s (300 to 1,900/s for a lone writer, one
// commit each; the disk is shared and its sync time varies tenfold);
// through the journal (Open) see BenchmarkAppend's journal rows. Verify reads
// 250,000–380,000 records/s on one core; Search filters about 650,000
// records/s (labels matched in place, only the page decoded).
//
// At 100 M records one file would hold about 220 GB: bbolt maps, backs
// up and compacts the whole file, and a full verification would take
// 5 minutes. Plan: segments. Seal the active log every 10 M records
// (about 22 GB) or every month, whichever comes first; the next segment
// continues the chain (its first record's Prev is the sealed segment's
// last Hash, Seq goes on), so verification crosses segments unchanged.
// A sealed segment is verified once, written to WORM storage (object
// lock) as the bbolt file or its NDJSON export (gzip shrinks the
// repetitive JSON about tenfold), and its manifest (first and last Seq,
// last Hash) is published outside the hub (signed, or an RFC 3161
// timestamp). Checkpoints keep verification fast: AppendTx stores the
// hash of every CheckpointEvery-th record (65,536), VerifySince starts
// from the newest checkpoint a previous run reached, so the nightly check
// of a million new records takes about 3 seconds, and a full audit
// verifies the sealed segments in parallel from their manifests. Search
// scans the whole log (about 1.5 s per million records); beyond a few
// million records the auditor console needs per-label indexes (patient,
// agent, purpose, outcome, day) kept in blob namespaces in the same
// transactions, and scans bounded to the segments of the period asked.
package audit
