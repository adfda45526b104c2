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
// Index writes do not go into a B+tree: a commit's writes become a sorted
// run in memory, logged in one piece (indexlog), and the runs are written,
// once they hold Options.IndexOverlay writes or a few seconds' worth, as
// an index segment: sorted, prefix-compressed blocks written sequentially,
// merged with the other segments like a binary counter (sst.go). Readers
// see the segments and the overlay merged, each as of its own snapshot
// (overlay.go). Index keys land where their values sort, so written into
// one B+tree they dirtied a page each, at each commit or at each merge.
// PrepareCreate lets a writer encode and index its creates on its own
// goroutines before it queues the write; PutPrepared stamps them with the
// commit time.
//
// It sits under package server and imports only server/outcome and
// server/fhirjson from the project; bbolt stops here.
package store
