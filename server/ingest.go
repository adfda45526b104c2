package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/mappings"
	_ "github.com/parcours-sante/parcours/mappings/all" // the four native formats
	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/store"
)

// ingestChunkEntries is about the number of resources $ingest stores per
// transaction (a chunk closes at the first row after it; a test lowers it).
var ingestChunkEntries = mappings.DefaultChunkEntries

// ingest answers POST /fhir/$ingest?source=NAME[&mode=partial]: a native
// file (text/csv or application/x-ndjson) is mapped to FHIR (patients
// linked on their INS) and stored with the rules of a transaction —
// decided entry by entry, all or nothing. The answer is an
// OperationOutcome with the counts and every issue.
//
// The file streams, so memory does not follow its size:
//
//  1. The body is spooled to a temporary file under the data directory.
//  2. The first reading checks every row (mappings.Run). Any bad row
//     without mode=partial: 422 with every issue, nothing stored.
//  3. The second reading maps the good rows a chunk at a time
//     (ingestChunkEntries resources: the patients and reference data the
//     file needs for the first time, the facts, a Provenance), the stage
//     of each fact in the context of the file's other rows and of what
//     the hub already stores about its patient (priorCache). A
//     pipeline overlaps the mapping of a chunk, the decisions of the next
//     one (each write entry decided as in a transaction, on a snapshot,
//     one audit record per decision) and the commit of the previous one.
//  4. Each chunk is one store transaction of an ingest job (store.SetJob).
//     The job ends in the transaction of the last chunk: a file of one
//     chunk is one transaction, exactly like a transaction Bundle. If a
//     later chunk fails (a denied entry, a conflict, the client gone, an
//     audit record that cannot be written), the job is rolled back: every
//     resource the file created is purged. A crash in between leaves an
//     open job that the next start rolls back. So a file is stored whole
//     or not at all; what a large file (more than one chunk) does not
//     have is isolation: until it ends, readers may see its first chunks.
//
// The mapper's output is not validated against the R4 JSON schema entry by
// entry (transaction Bundles sent by clients are): TestIngestSchemaValid
// checks every mapper's output for generated files against it, and the
// golden tests the edge cases.
func (s *Server) ingest(c echo.Context) error {
	source := c.QueryParam("source")
	m, ok := mappings.Lookup(source)
	if !ok {
		return outcome.Invalid("source", "unknown source %q: use one of %v", source, mappings.Sources())
	}
	partial := false
	switch mode := c.QueryParam("mode"); mode {
	case "", "all":
	case "partial":
		partial = true
	default:
		return outcome.Invalid("mode", "mode must be partial (or absent)")
	}
	r := c.Request()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "text/csv" && mt != "application/x-ndjson" && mt != "application/ndjson") {
		return outcome.New(http.StatusUnsupportedMediaType, outcome.CodeNotSupported, "", "send the native file as text/csv or application/x-ndjson")
	}
	if r.ContentLength > s.cfg.MaxIngest {
		return tooLarge(s.cfg.MaxIngest)
	}
	cl := callerOf(c)
	opt := mappings.Options{Partial: partial, Now: time.Now().UTC(), ChunkEntries: ingestChunkEntries, RecordKey: s.keys.key("source-record")}
	if cl != nil {
		opt.Actor, opt.Org = cl.claims.ActorType, cl.claims.Org
		err := s.view(r.Context(), func(tx *store.Tx) error {
			_, err := s.decide(r.Context(), cl, tx, question{interaction: "operation", operation: "$ingest", ingestSource: source})
			return err
		})
		if err != nil {
			return err
		}
	}
	file, err := s.spool(r.Body)
	if err != nil {
		return err
	}
	defer func() {
		file.Close()
		os.Remove(file.Name())
	}()

	run := s.newIngestRun(c, cl, source)
	run.partial = partial
	opt.Chunks = run.add
	// The stage context of a row: the file's other rows (the mappers) and
	// what the hub already stores about the patient (the stage rules'
	// dependsOn, brief §3.4).
	opt.Prior = newPriorCache(s.db).get
	res, merr := s.mapNative(r.Context(), m, source, file, opt)
	if err := run.finish(merr); err != nil {
		return withCounts(err, source, res)
	}
	if err := res.Err(); err != nil {
		return withCounts(err, source, res)
	}
	if len(run.skipped) > 0 {
		// Partial mode: the rows refused at commit (their record stored
		// with other content) are bad rows too.
		res.Good -= len(run.skippedLines)
		res.Issues = append(res.Issues, run.skipped...)
		slices.SortStableFunc(res.Issues, func(a, b outcome.Issue) int { return cmp.Compare(a.Line, b.Line) })
	}
	summary := outcome.Issue{Severity: outcome.SeverityInformation, Code: outcome.CodeInformational,
		Diagnostics: fmt.Sprintf("source %s: %d rows read, %d stored, %d with issues; %d resources created, %d matched existing ones",
			source, res.Rows, res.Good, res.Rows-res.Good, run.created, run.matched)}
	issues := append([]outcome.Issue{summary}, res.Issues...)
	for i := range issues[1:] {
		issues[i+1].Severity = outcome.SeverityWarning // partial mode: the row was skipped
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(outcome.Resource(issues)))
}

// withCounts adds to a refused file's OperationOutcome what was read of it
// (an answer lists the counts and every issue, DESIGN §11).
func withCounts(err error, source string, res *mappings.Result) error {
	e, ok := outcome.As(err)
	if !ok || res == nil {
		return err
	}
	// Rows refused at commit (a conflict) were good rows for the mapping.
	bad, refused := map[int]bool{}, map[int]bool{}
	for _, is := range res.Issues {
		bad[is.Line] = true
	}
	for _, is := range e.Issues {
		if is.Line > 0 && !bad[is.Line] {
			refused[is.Line] = true
		}
	}
	counts := outcome.Issue{Severity: outcome.SeverityInformation, Code: outcome.CodeInformational,
		Diagnostics: fmt.Sprintf("source %s: %d rows read, %d with issues: nothing is stored", source, res.Rows, res.Rows-res.Good+len(refused))}
	return &outcome.Error{Status: e.Status, Issues: append([]outcome.Issue{counts}, e.Issues...)}
}

// spool copies an upload to a temporary file of the data directory (not
// the system's temporary directory, which may be memory), within
// MaxIngest.
func (s *Server) spool(body io.Reader) (*os.File, error) {
	dir := filepath.Join(s.cfg.DataDir, "ingest")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "upload-*")
	if err != nil {
		return nil, err
	}
	in := &bodyReader{r: io.LimitReader(body, s.cfg.MaxIngest+1)}
	n, err := io.Copy(f, in)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil || n > s.cfg.MaxIngest {
		f.Close()
		os.Remove(f.Name())
		switch {
		case in.err != nil:
			return nil, outcome.New(http.StatusBadRequest, outcome.CodeStructure, "", "could not read the request body")
		case err != nil:
			return nil, fmt.Errorf("spool the upload: %w", err) // the disk: a 500
		}
		return nil, tooLarge(s.cfg.MaxIngest)
	}
	return f, nil
}

// bodyReader remembers a read error of the request body (as opposed to a
// write error of the spool file).
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// ingestRun stores the chunks of one upload: a pipeline of three stages —
// the mapping (the handler's goroutine, calling add), the decisions
// (prepare) and the commits (commit) — each working on another chunk.
type ingestRun struct {
	s      *Server
	c      echo.Context
	ctx    context.Context
	cl     *caller
	source string
	job    string

	toPrepare chan mappings.Chunk
	toCommit  chan *chunkWork
	done      chan struct{}

	// partial: rows refused at commit are skipped and reported (skipped,
	// skippedLines) instead of failing the file.
	partial      bool
	skipped      []outcome.Issue
	skippedLines map[int]bool

	mu      sync.Mutex
	err     error // the first failure: the file is not stored
	begun   bool  // a chunk was committed: the job must end or be rolled back
	ended   bool  // the job ended with the last chunk
	reviews []breakGlassWindow

	// Commit stage only.
	refs             sharedRefs // the shared entries committed so far
	created, matched int
	audits           sync.WaitGroup
	auditErr         error
}

// chunkWork is a chunk decided and ready to commit.
type chunkWork struct {
	chunk   mappings.Chunk
	entries []*entry
	// applied are the entries the last run of apply wrote (partial mode
	// leaves conflicting rows out), skipped the issues of those left out.
	applied []*entry
	skipped []outcome.Issue
	refs    []refSite
	caller  *caller // the chunk's own caller: its decision records
	decided int     // records of the decisions taken before the commit
}

// refSite is a reference of an entry to rewrite at commit time.
type refSite struct {
	m     map[string]any
	ref   string // the reference as the mapper wrote it
	entry int
}

func (s *Server) newIngestRun(c echo.Context, cl *caller, source string) *ingestRun {
	run := &ingestRun{
		s: s, c: c, ctx: c.Request().Context(), cl: cl, source: source, job: store.NewID(),
		toPrepare: make(chan mappings.Chunk), toCommit: make(chan *chunkWork), done: make(chan struct{}),
		refs: sharedRefs{byUUID: map[[16]byte]storedAt{}, other: map[string]string{}},
	}
	go run.prepare()
	go run.commit()
	return run
}

// add hands a mapped chunk to the pipeline (mappings.Options.Chunks).
func (run *ingestRun) add(ch mappings.Chunk) error {
	if err := run.failure(); err != nil {
		return err
	}
	if err := run.ctx.Err(); err != nil {
		run.fail(err)
		return err
	}
	run.toPrepare <- ch
	return nil
}

func (run *ingestRun) fail(err error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.err == nil {
		run.err = err
	}
}

func (run *ingestRun) failure() error {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.err
}

// finish waits for the pipeline and, if anything failed (the pipeline, or
// the mapping with mapErr), rolls the job back. It returns the answer to
// give instead of the counts, or nil when the file is stored (or was
// rejected whole by its checks: Result.Err says).
func (run *ingestRun) finish(mapErr error) error {
	close(run.toPrepare)
	<-run.done
	run.audits.Wait()
	if run.cl != nil && len(run.reviews) > 0 {
		run.cl.reviews = append(run.cl.reviews, run.reviews...)
	}
	if run.failure() == nil && mapErr == nil && run.begun && !run.ended {
		// No chunk said it was the last (a mapper whose last rows made
		// nothing): the job ends on its own, once the records are durable.
		if run.auditErr != nil {
			run.fail(run.auditErr)
		} else if err := run.s.commit(context.WithoutCancel(run.ctx), func(tx *store.Tx) error { return tx.EndJob(run.job) }); err != nil {
			run.fail(err)
		}
	}
	err := run.failure()
	if err == nil && mapErr == nil {
		return nil
	}
	if run.begun {
		if _, rerr := run.s.db.RollbackJob(context.WithoutCancel(run.ctx), run.job); rerr != nil {
			// The job stays open: the next start rolls it back.
			run.s.log.ErrorContext(run.ctx, "ingest: roll back failed", "error", rerr.Error())
			return outcome.New(http.StatusInternalServerError, outcome.CodeException, "", "the upload failed and is not undone yet: it will be when the hub restarts")
		}
	}
	switch {
	case err == nil: // the mapping failed: the spooled file could not be read again
		run.s.log.ErrorContext(run.ctx, "ingest: reading the upload failed", "error", mapErr.Error())
		return outcome.New(http.StatusInternalServerError, outcome.CodeException, "", "the file could not be read: nothing is stored")
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return outcome.New(http.StatusBadRequest, outcome.CodeProcessing, "", "the upload was interrupted: nothing is stored")
	}
	return err
}

// prepare turns each chunk into requests and decides every entry on a
// snapshot (authorizeWrite, as a transaction does), with a caller of its
// own so that its decision records can be written with the chunk.
func (run *ingestRun) prepare() {
	defer close(run.toCommit)
	for ch := range run.toPrepare {
		if run.failure() != nil {
			continue
		}
		w, err := run.decide(ch)
		if err != nil {
			run.fail(err)
			if w != nil {
				run.record(w) // the decisions were taken
			}
			continue
		}
		run.toCommit <- w
	}
}

func (run *ingestRun) decide(ch mappings.Chunk) (*chunkWork, error) {
	s := run.s
	raw, _ := ch.Bundle["entry"].([]any)
	w := &chunkWork{chunk: ch, entries: make([]*entry, len(raw))}
	if run.cl != nil {
		w.caller = run.cl.fork()
	}
	for i, x := range raw {
		e, _ := x.(map[string]any)
		en := &entry{index: i}
		en.fullURL, _ = e["fullUrl"].(string)
		en.req, en.err = s.entryRequest(run.c, e, i)
		if en.req != nil {
			en.req.ingestSource = run.source
		}
		w.entries[i] = en
	}
	s.authorizeEntries(run.ctx, w.caller, w.entries)
	var issues []outcome.Issue
	for _, e := range w.entries {
		if e.err != nil {
			issues = append(issues, prefixIssues(e.err, e.index)...)
		}
	}
	if len(issues) > 0 {
		return w, run.chunkError(ch, &outcome.Error{Status: statusOfIssues(w.entries), Issues: issues})
	}
	for _, e := range w.entries {
		if e.req.body != nil {
			w.refs = refSites(e.req.body, e.index, w.refs)
		}
	}
	if w.caller != nil {
		w.decided = len(w.caller.records)
	}
	return w, nil
}

// chunkError says which rows of the file an entry's error is about.
func (run *ingestRun) chunkError(ch mappings.Chunk, err error) error {
	e, ok := outcome.As(err)
	if !ok {
		return err
	}
	where := outcome.Issue{Severity: outcome.SeverityInformation, Code: outcome.CodeInformational,
		Diagnostics: fmt.Sprintf("the entries above come from the rows of lines %d to %d (part %d of the file, mapped to a transaction Bundle): nothing of the file is stored", ch.FirstLine, ch.LastLine, ch.Index+1)}
	return &outcome.Error{Status: e.Status, Issues: append(append([]outcome.Issue(nil), e.Issues...), where)}
}

// refSites lists the references of a resource to resolve at commit
// time: bundle fullUrls (urn:uuid:…) and conditional references.
func refSites(v any, index int, out []refSite) []refSite {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if ref, ok := c.(string); ok && k == "reference" {
				if strings.HasPrefix(ref, "urn:") || strings.Contains(ref, "?") {
					out = append(out, refSite{m: x, ref: ref, entry: index})
				}
				continue
			}
			switch c.(type) {
			case map[string]any, []any:
				out = refSites(c, index, out)
			}
		}
	case []any:
		for _, c := range x {
			out = refSites(c, index, out)
		}
	}
	return out
}

// commit stores the decided chunks in order, one transaction each; the
// last one ends the job.
func (run *ingestRun) commit() {
	defer close(run.done)
	for w := range run.toCommit {
		run.store(w, w.chunk.Last)
	}
}

// store commits one chunk. Its decision records are appended after the
// commit (sharing later commits), except for the last chunk, whose records
// are written in its transaction once every earlier append is durable: an
// upload answered 200 has every record of its decisions.
func (run *ingestRun) store(w *chunkWork, last bool) {
	s := run.s
	if run.failure() == nil && run.ctx.Err() != nil {
		run.fail(run.ctx.Err())
	}
	if run.failure() == nil && last {
		run.audits.Wait()
		if run.auditErr != nil {
			run.fail(run.auditErr)
		}
	}
	if run.failure() != nil {
		run.record(w)
		return
	}
	local := map[string]string{}
	inTx := false
	err := s.commit(context.WithoutCancel(run.ctx), func(tx *store.Tx) error {
		inTx = false
		if w.caller != nil {
			w.caller.records = w.caller.records[:w.decided] // a retried commit decides its reads again
		}
		if err := tx.SetJob(run.job); err != nil {
			return err
		}
		if err := run.apply(tx, w, local); err != nil {
			return err
		}
		if !last {
			return nil
		}
		if w.caller != nil && len(w.caller.records) > 0 && s.audit != nil {
			if err := s.audit.AppendTx(tx, w.caller.records...); err != nil {
				return err
			}
			inTx = true
		}
		return tx.EndJob(run.job)
	})
	run.mu.Lock()
	run.begun = true // even a failed commit may follow committed ones
	if w.caller != nil {
		run.reviews = append(run.reviews, w.caller.reviews...)
	}
	run.mu.Unlock()
	if err != nil {
		run.fail(run.chunkError(w.chunk, err))
		run.record(w)
		return
	}
	run.ended = last
	if len(w.skipped) > 0 {
		if run.skippedLines == nil {
			run.skippedLines = map[int]bool{}
		}
		for _, is := range w.skipped {
			run.skippedLines[is.Line] = true
		}
		run.skipped = append(run.skipped, w.skipped...)
	}
	for i, e := range w.applied {
		if i < w.chunk.Shared && e.fullURL != "" {
			run.refs.put(e.fullURL, local[e.fullURL])
		}
		if e.res.created {
			run.created++
		} else {
			run.matched++
		}
	}
	if !inTx {
		run.record(w)
	}
}

// apply runs a chunk's entries in tx as transaction does, with the
// references to earlier chunks' entries resolved from run.refs. It may run
// more than once (group commit): it writes only to tx, local and the
// entries' results.
func (run *ingestRun) apply(tx *store.Tx, w *chunkWork, local map[string]string) error {
	s := run.s
	clear(local)
	conds := map[string]string{}
	for _, e := range w.entries {
		if err := s.resolveTarget(tx, e, local, conds); err != nil {
			return entryError(err, e.index)
		}
	}
	for _, r := range w.refs {
		to, ok := local[r.ref]
		if !ok {
			to, ok = run.refs.get(r.ref)
		}
		if !ok {
			resolved, err := s.resolveRef(tx, r.ref, local)
			if err != nil {
				e, _ := outcome.As(err)
				e.Issues[0].Expression = []string{fmt.Sprintf("Bundle.entry[%d].resource", r.entry)}
				return e
			}
			to = resolved
		}
		r.m["reference"] = to
	}
	// Every row whose record is stored with other content, by its line.
	var conflicts []outcome.Issue
	lines := map[int]bool{}
	for i, e := range w.entries[min(w.chunk.Shared, len(w.entries)):] {
		if err := sameRecord(tx, e); err != nil {
			oe, ok := outcome.As(err)
			if !ok {
				return entryError(err, w.chunk.Shared+i)
			}
			line := w.chunk.LineOf(w.chunk.Shared + i)
			for _, is := range oe.Issues {
				is.Expression, is.Line, is.Column = nil, line, 1
				conflicts = append(conflicts, is)
			}
			lines[line] = true
		}
	}
	w.applied, w.skipped = w.entries, nil
	if conflicts != nil {
		if !run.partial {
			return &outcome.Error{Status: http.StatusConflict, Issues: conflicts}
		}
		// Partial mode: the rows in conflict are left out, like the rows
		// with issues (black-box review: one such row refused the file).
		w.applied, w.skipped = withoutLines(w, lines), conflicts
	}
	preps := s.prepareCreates(w.applied)
	for i, e := range w.applied {
		var res result
		var err error
		if preps[i] != nil {
			res, err = s.createPrepared(tx, e.req, preps[i])
		} else {
			res, err = s.execute(tx, e.req)
		}
		if err != nil {
			return entryError(err, e.index)
		}
		e.res = res
	}
	return nil
}

// withoutLines is the chunk's entries without those of the rows at lines,
// and without their references in the chunk's Provenance (left out too if
// it then has no target).
func withoutLines(w *chunkWork, lines map[int]bool) []*entry {
	out := make([]*entry, 0, len(w.entries))
	gone := map[string]bool{}
	for i, e := range w.entries {
		if i >= w.chunk.Shared && lines[w.chunk.LineOf(i)] {
			gone[e.fullURL] = true
			continue
		}
		out = append(out, e)
	}
	kept := out[:0]
	for i, e := range out {
		if i >= w.chunk.Shared && e.req.typ == "Provenance" && e.req.body != nil {
			var targets []any
			for _, t := range asList(e.req.body["target"]) {
				if m, ok := t.(map[string]any); !ok || !gone[fmt.Sprint(m["reference"])] {
					targets = append(targets, t)
				}
			}
			if len(targets) == 0 {
				continue
			}
			e.req.body["target"] = targets
		}
		kept = append(kept, e)
	}
	return kept
}

// sameRecord refuses a row whose source record is already stored with
// other content. A fact or record entry is a conditional create on its
// source-record identifier, so that uploading a file again stores nothing
// twice; a row sent again with other content (a correction, or a key that
// a source reused for another stay or another patient) would otherwise be
// dropped while the rest of the row was stored, pointing at the resource
// of the first upload: another patient's Encounter, say. Corrections are
// not applied from native files (send them through the FHIR API): the
// row is refused with a conflict naming the stored resource.
func sameRecord(tx *store.Tx, e *entry) error {
	req := e.req
	if req.method != http.MethodPost || req.ifNoneExist == "" || req.matched == "" || req.body == nil {
		return nil
	}
	stored, err := tx.Get(req.typ, req.matched)
	if err != nil || stored.Deleted() {
		return nil // nothing to compare: the create answers as usual
	}
	if sameContentAs(stored.JSON, req.body) || sameButStage(stored.JSON, req.body) {
		return nil
	}
	return outcome.New(http.StatusConflict, outcome.CodeConflict, "",
		"the row's source record %s is already stored as %s/%s with other content: a native file does not correct what it stored (correct it through the FHIR API, or delete it first)",
		strings.TrimPrefix(req.ifNoneExist, "identifier="), req.typ, req.matched)
}

// sameButStage reports whether a stored record and a row's resource
// differ in their pathway stages only. The stage is the hub's, not the
// source's: it depends on what the hub stores about the patient before the
// fact (the stage context), which later uploads can add to. A row sent
// again is the same record: it matches the stored one, which keeps the
// stage it was given.
func sameButStage(stored []byte, res map[string]any) bool {
	old := decodeStored(stored)
	if old == nil {
		return false
	}
	a, _ := withoutStage(old).(map[string]any)
	b, _ := withoutStage(res).(map[string]any)
	for _, k := range []string{"meta", "id"} { // as sameContentAs
		delete(a, k)
		delete(b, k)
	}
	return string(fhirjson.Marshal(a)) == string(fhirjson.Marshal(b))
}

// withoutStage is a copy of v without its pathway-stage extensions, at
// any depth (a CarePlan's activities carry theirs).
func withoutStage(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if k == "extension" {
				var kept []any
				for _, ext := range asList(e) {
					if m, _ := ext.(map[string]any); m != nil && m["url"] == vocab.StageExtensionURL {
						continue
					}
					kept = append(kept, withoutStage(ext))
				}
				if kept != nil {
					out[k] = kept
				}
				continue
			}
			out[k] = withoutStage(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutStage(e)
		}
		return out
	}
	return v
}

// sharedRefs maps the fullUrls of the shared entries (patients, reference
// resources) of a file's committed chunks to the Type/id they resolved to:
// one entry per distinct patient of the file, about 50 bytes when both are
// UUIDs (the mapper's urn:uuid fullUrls, the hub's ids).
type sharedRefs struct {
	types  []string
	byUUID map[[16]byte]storedAt
	other  map[string]string
}

type storedAt struct {
	typ uint16
	id  [16]byte
}

func (m *sharedRefs) put(fullURL, target string) {
	typ, id, _ := strings.Cut(target, "/")
	k, ok1 := store.ParseUUID(strings.TrimPrefix(fullURL, "urn:uuid:"))
	v, ok2 := store.ParseUUID(id)
	if !ok1 || !ok2 || !strings.HasPrefix(fullURL, "urn:uuid:") {
		m.other[fullURL] = target
		return
	}
	t := slices.Index(m.types, typ)
	if t < 0 {
		t = len(m.types)
		m.types = append(m.types, typ)
	}
	m.byUUID[k] = storedAt{typ: uint16(t), id: v}
}

func (m *sharedRefs) get(fullURL string) (string, bool) {
	if to, ok := m.other[fullURL]; ok {
		return to, true
	}
	k, ok := store.ParseUUID(strings.TrimPrefix(fullURL, "urn:uuid:"))
	if !ok {
		return "", false
	}
	at, ok := m.byUUID[k]
	if !ok {
		return "", false
	}
	return m.types[at.typ] + "/" + store.FormatUUID(at.id), true
}

// record appends a chunk's decision records to the audit log in the
// background (finish waits for them).
func (run *ingestRun) record(w *chunkWork) {
	if w.caller == nil || len(w.caller.records) == 0 || run.s.audit == nil {
		return
	}
	recs := w.caller.records
	w.caller.records = nil
	run.audits.Add(1)
	go func() {
		defer run.audits.Done()
		if err := run.s.audit.Append(context.Background(), recs...); err != nil {
			run.mu.Lock()
			if run.auditErr == nil {
				run.auditErr = err
			}
			run.mu.Unlock()
			run.fail(errAuditWrite)
		}
	}()
}

var errAuditWrite = outcome.New(http.StatusInternalServerError, outcome.CodeException, "", "the decisions could not be recorded: nothing is stored")

// fork is a caller for the decisions of one chunk of an upload: the
// request's identity and purpose, its own decision records (the first with
// a decision id of its own, not the request's) and break-the-glass windows.
func (cl *caller) fork() *caller {
	f := *cl
	f.decisionID = store.NewID()
	f.records, f.reviews, f.contexts = nil, nil, nil
	f.filtering, f.kept, f.hidden = false, 0, 0
	f.disclosed, f.consents, f.entry = nil, nil, 0
	return &f
}
