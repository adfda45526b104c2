package mappings

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/parcours-sante/parcours/server/outcome"
)

// Mapper maps one native source format to a FHIR transaction Bundle.
type Mapper interface {
	// Source is the name of the format (the $ingest source parameter).
	Source() string
	// Map reads a whole file. The error is for I/O only (and, with
	// Options.Chunks, what Chunks returned); bad content is reported in
	// Result.Issues.
	Map(r io.Reader, opt Options) (*Result, error)
}

// Options are the caller's choices for one upload.
type Options struct {
	// Partial stores the good rows of a file that has bad ones.
	Partial bool
	// Actor is the uploader's actor type and Org its organisation
	// ("system|value", as in the token's org claim): the Provenance agent.
	// The server stamps meta.source from the same token.
	Actor, Org string
	// Now is the time of the upload (Provenance.recorded, and dates after
	// it are rejected). Zero means time.Now().
	Now time.Time
	// Chunks, when set, streams the file (the server's $ingest): Map's
	// reader must then be an io.ReadSeeker; it is read once to check every
	// row and, when something is to be stored, once more to deliver the
	// Bundle to Chunks in parts, in file order, instead of Result.Bundle:
	// a part closes at the first row that starts once it holds
	// ChunkEntries entries (DefaultChunkEntries when 0). An error from
	// Chunks stops the reading and is Map's error. See Chunk.
	Chunks       func(Chunk) error
	ChunkEntries int
	// RecordKey, when set, keys the source-record identifiers of the
	// facts (HMAC-SHA256): a row's key may hold the patient's INS, and an
	// unkeyed, name-based identifier lets anyone who sees a fact test
	// candidate INS against it. The hub passes a key of its own; without
	// one (tests, offline tools) the identifiers are name-based UUIDv5.
	// Re-ingesting a file is idempotent under one key.
	RecordKey []byte
	// Prior, when set, is what the hub already stores about the patient
	// of an INS-NIR (nil when nothing): the stage of a fact depends on the
	// patient's conditions, results and drugs (brief §3.4), not only on
	// the other rows of the file. The mappers merge it, dated before each
	// fact, into the context they build from the file (Batch.Prior). It is
	// called while the good rows are built (the second reading, one
	// goroutine), for a linked patient's fact or stay whose codes have
	// such rules (vocab.UsesHistory), so again and again for one patient:
	// the caller caches. Without it (tests, offline tools) the file is its
	// only context.
	Prior func(ins string) *History
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now().UTC()
	}
	return o.Now.UTC()
}

// Result is what a Mapper made of a file.
type Result struct {
	// Bundle is a FHIR transaction Bundle ready for the hub, or nil when
	// nothing is to be stored (see the package documentation).
	Bundle map[string]any
	// Rows is the number of data rows read (the header is not a row) and
	// Good the number without issues.
	Rows, Good int
	// Issues lists every problem, sorted by line and column.
	Issues []outcome.Issue
	// Chunks is the number of non-empty Bundles made: 1 for Bundle, or
	// the number of chunks given to Options.Chunks.
	Chunks int
}

// Err is nil when the file is (at least partly) stored; otherwise an
// *outcome.Error with status 422 and every issue (or 400 for an empty or
// unreadable file that has no issue of its own).
func (r *Result) Err() error {
	if r.Bundle != nil || r.Chunks > 0 {
		return nil
	}
	if len(r.Issues) == 0 { // as an empty file: 422, the file is what is wrong
		return outcome.New(http.StatusUnprocessableEntity, outcome.CodeRequired, "", "the file holds no data row")
	}
	return &outcome.Error{Status: http.StatusUnprocessableEntity, Issues: slices.Clone(r.Issues)}
}

var registry = struct {
	sync.RWMutex
	m map[string]Mapper
}{m: map[string]Mapper{}}

// Register makes a mapper available under its Source name. It panics on an
// empty or duplicate name: registration happens in init, so that fails at
// start-up.
func Register(m Mapper) {
	name := m.Source()
	registry.Lock()
	defer registry.Unlock()
	if name == "" {
		panic("mappings: Register with an empty source name")
	}
	if _, dup := registry.m[name]; dup {
		panic(fmt.Sprintf("mappings: source %q registered twice", name))
	}
	registry.m[name] = m
}

// Lookup returns the mapper registered for a source name.
func Lookup(source string) (Mapper, bool) {
	registry.RLock()
	defer registry.RUnlock()
	m, ok := registry.m[source]
	return m, ok
}

// Sources lists the registered source names, sorted.
func Sources() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.m))
	for name := range registry.m {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
