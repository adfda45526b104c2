// Package store keeps FHIR resources in one embedded bbolt file: the current
// version of each resource, its full version history, a global change log for
// type and system history, and token indexes fed by a pluggable Indexer.
//
// Writes go through a group committer: every write request waiting when a
// commit starts shares that commit's bbolt transaction and its fsync, so
// acknowledged writes are durable (they survive kill -9) without paying one
// fsync each. A FHIR transaction bundle is one write function, hence one
// bbolt transaction: all or nothing. A write too large for one transaction
// (the ingest of a native file) is a job of several (SetJob, EndJob,
// RollbackJob): all or nothing too, but not isolated — see job.go.
//
// Large writes stay linear: a transaction's index writes are applied sorted
// by key when it is read or committed (bbolt splits nodes only at commit),
// and PrepareCreate lets a writer encode and index its creates on several
// goroutines before PutPrepared writes them. With UpdatePrepared that work
// is done for the time the write's transaction will have while the
// committer commits the batch before it, instead of in between.
//
// It sits under package server and imports only server/outcome and
// server/fhirjson from the project; bbolt stops here.
package store
