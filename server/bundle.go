package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/fhirpath"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/store"
)

// entry is one bundle entry turned into an interaction.
type entry struct {
	index   int
	fullURL string
	req     *request
	res     result
	err     error
}

// bundle answers POST /fhir with a batch or transaction Bundle.
func (s *Server) bundle(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	cl := callerOf(c)
	if kind, _ := body["type"].(string); cl != nil && (kind == "batch" || kind == "transaction") {
		// The request is the bundle, not its first entry's decision: each
		// entry's is on its policy span.
		cl.described = true
		if cl.span != nil && cl.span.IsRecording() {
			cl.span.SetAttributes(attrInteraction.String(kind))
		}
	}
	kind, entries, err := s.processBundle(c, body)
	s.recordUndecided(c, cl, entries)
	if err != nil {
		return err
	}
	s.labelEntries(cl, entries)
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(s.responseBundle(c, kind, entries)))
}

// recordUndecided gives each entry refused before any decision (an
// unknown type, an invalid resource, an unsupported URL) a record of its
// own, as a request refused so gets one: every entry of a batch or
// transaction is in the log (once only the decided ones: black-box
// review).
func (s *Server) recordUndecided(c echo.Context, cl *caller, entries []*entry) {
	if cl == nil || s.cfg.NoAudit {
		return
	}
	recorded := map[string]bool{}
	for _, r := range cl.records {
		recorded[r.Labels[audit.LabelEntry]] = true
	}
	sc := trace.SpanFromContext(c.Request().Context()).SpanContext()
	for _, e := range entries {
		if e.err != nil && !recorded[strconv.Itoa(e.index)] {
			cl.entry = e.index + 1
			s.denyRecord(cl, sc, reasonUndecided)
			cl.entry = 0
		}
	}
}

// deciding makes the decisions taken until the returned function runs
// those of entry e (their records carry its index).
func (e *entry) deciding(cl *caller) func() {
	if cl == nil {
		return func() {}
	}
	cl.entry = e.index + 1
	return func() { cl.entry = 0 }
}

// labelEntries labels, in one pass over the request's records, those of
// each bundle entry with the status the entry answered (the request's own
// status is the Bundle's) and, for a create, the resource it made.
func (s *Server) labelEntries(cl *caller, entries []*entry) {
	if cl == nil || len(cl.records) == 0 {
		return
	}
	_ = s.db.View(func(tx *store.Tx) error {
		for i := range cl.records {
			rec := &cl.records[i]
			n, err := strconv.Atoi(rec.Labels[audit.LabelEntry])
			if err != nil || n < 0 || n >= len(entries) || entries[n].index != n {
				continue
			}
			e := entries[n]
			status := e.res.status
			if e.err != nil {
				status = outcome.StatusOf(e.err)
			}
			if status != 0 {
				rec.Labels[audit.LabelEntryStatus] = strconv.Itoa(status)
			}
			if e.err == nil && e.res.created {
				s.nameCreated(tx, rec, e.res.version.Type, e.res.version.ID)
			}
		}
		return nil
	})
}

// processBundle validates, decides and runs a batch or transaction Bundle.
func (s *Server) processBundle(c echo.Context, body map[string]any) (string, []*entry, error) {
	var err error
	if rt, _ := body["resourceType"].(string); rt != "Bundle" {
		return "", nil, outcome.Invalid("resourceType", "POST to the base accepts a Bundle of type batch or transaction")
	}
	kind, _ := body["type"].(string)
	if kind != "batch" && kind != "transaction" {
		return "", nil, outcome.Invalid("Bundle.type", "Bundle.type must be batch or transaction")
	}
	raw, _ := body["entry"].([]any)
	entries := make([]*entry, len(raw))
	var issues []outcome.Issue
	seen := map[string]int{} // fullUrl → entry
	for i, x := range raw {
		entries[i] = &entry{index: i}
		e, _ := x.(map[string]any)
		entries[i].fullURL, _ = e["fullUrl"].(string)
		// bdl-7: a fullUrl names one entry; a reference to a repeated
		// one would go to either resource.
		if first, dup := seen[entries[i].fullURL]; dup && entries[i].fullURL != "" {
			issues = append(issues, outcome.Issue{Severity: outcome.SeverityError, Code: outcome.CodeInvalid,
				Expression:  []string{fmt.Sprintf("Bundle.entry[%d].fullUrl", i)},
				Diagnostics: fmt.Sprintf("fullUrl %q is also the fullUrl of entry %d: fullUrls must be unique in a bundle (bdl-7)", entries[i].fullURL, first)})
		} else {
			seen[entries[i].fullURL] = i
		}
		entries[i].req, entries[i].err = s.entryRequest(c, e, i)
	}
	if len(issues) > 0 {
		return "", nil, &outcome.Error{Status: http.StatusBadRequest, Issues: issues}
	}
	s.checkEntries(entries)
	s.authorizeEntries(c.Request().Context(), callerOf(c), entries)
	for _, e := range entries {
		if e.err != nil {
			if kind == "transaction" {
				issues = append(issues, prefixIssues(e.err, e.index)...)
			}
		}
	}
	if len(issues) > 0 {
		return "", entries, &outcome.Error{Status: statusOfIssues(entries), Issues: issues}
	}
	ctx := c.Request().Context()
	if kind == "transaction" {
		if err = s.transaction(ctx, entries); err != nil {
			return "", entries, err
		}
	} else {
		s.batch(ctx, entries)
	}
	return kind, entries, nil
}

// entryRequest reads entry.request and entry.resource.
func (s *Server) entryRequest(c echo.Context, e map[string]any, i int) (*request, error) {
	at := fmt.Sprintf("Bundle.entry[%d].request", i)
	r, _ := e["request"].(map[string]any)
	if r == nil {
		return nil, outcome.New(http.StatusBadRequest, outcome.CodeRequired, at, "entry.request is required in a batch or transaction")
	}
	method, _ := r["method"].(string)
	rawURL, _ := r["url"].(string)
	base := s.base(c)
	rawURL = strings.TrimPrefix(strings.TrimPrefix(rawURL, base), "/")
	u, err := url.Parse(rawURL)
	if err != nil || rawURL == "" || u.IsAbs() {
		return nil, outcome.Invalid(at+".url", "entry.request.url must be a relative FHIR URL such as Patient/123 or Patient?identifier=…")
	}
	query, err := checkQuery(u.RawQuery, at+".url")
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	req := &request{method: method, typ: parts[0], query: query}
	req.ifMatch, _ = r["ifMatch"].(string)
	req.ifNoneMatch, _ = r["ifNoneMatch"].(string)
	req.ifNoneExist, _ = r["ifNoneExist"].(string)
	req.ifModifiedSince, _ = r["ifModifiedSince"].(string)
	if err := checkType(req.typ); err != nil {
		return nil, outcome.Invalid(at+".url", "unknown resource type %q", req.typ)
	}
	switch {
	case len(parts) == 1:
	case len(parts) == 2:
		req.id = parts[1]
	case len(parts) == 4 && parts[2] == "_history" && method == http.MethodGet:
		req.id, req.vid = parts[1], parts[3]
	default:
		return nil, outcome.Invalid(at+".url", "unsupported entry.request.url")
	}
	if req.id != "" {
		if err := checkID(req.id); err != nil {
			return nil, outcome.Invalid(at+".url", "invalid resource id in entry.request.url")
		}
	}
	switch method {
	case http.MethodPost:
		if req.id != "" {
			return nil, outcome.Invalid(at+".url", "POST entries create: the url is the type only")
		}
		req.newID = store.NewID()
	case http.MethodPut:
		if req.id == "" {
			if len(u.RawQuery) == 0 {
				return nil, outcome.Invalid(at+".url", "PUT entries need an id or conditional criteria")
			}
			req.newID = store.NewID()
		}
	case http.MethodDelete:
		if req.id == "" && len(u.RawQuery) == 0 {
			return nil, outcome.Invalid(at+".url", "DELETE entries need an id or conditional criteria")
		}
	case http.MethodGet:
	default:
		return nil, outcome.New(http.StatusMethodNotAllowed, outcome.CodeNotSupported, at+".method", "entry method %q is not supported (GET, POST, PUT, DELETE)", method)
	}
	if method == http.MethodPost || method == http.MethodPut {
		res, _ := e["resource"].(map[string]any)
		if res == nil {
			return nil, outcome.New(http.StatusBadRequest, outcome.CodeRequired, fmt.Sprintf("Bundle.entry[%d].resource", i), "POST and PUT entries need a resource")
		}
		req.body = res
	}
	return req, nil
}

// authorizeEntries decides every write entry for cl on one snapshot (GET
// entries are decided when they run).
func (s *Server) authorizeEntries(ctx context.Context, cl *caller, entries []*entry) {
	for _, e := range entries {
		if e.req != nil {
			e.req.caller = cl
		}
	}
	if cl == nil {
		return
	}
	_ = s.view(ctx, func(tx *store.Tx) error {
		// A reference to an entry that is a conditional create matching
		// one resource names that resource: the decisions of the entries
		// citing it see the patient (an existing one's care team; its
		// stays declaring a care relationship are flagged).
		linked := map[string]string{}
		for _, e := range entries {
			if e.err == nil && e.req.method == http.MethodPost && e.req.ifNoneExist != "" && e.fullURL != "" {
				if q, err := url.ParseQuery(strings.TrimPrefix(e.req.ifNoneExist, "?")); err == nil {
					if ids, err := s.match(tx, nil, e.req.typ, q); err == nil && len(ids) == 1 {
						linked[e.fullURL] = e.req.typ + "/" + ids[0]
					}
				}
			}
		}
		for _, e := range entries {
			if e.err == nil && e.req.method != http.MethodGet {
				e.req.linked = linked
				done := e.deciding(cl)
				e.err = s.authorizeWrite(ctx, tx, e.req)
				done()
			}
		}
		return nil
	})
}

// checkEntries validates every entry resource, in parallel.
func (s *Server) checkEntries(entries []*entry) {
	work := make(chan *entry)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range work {
				id := ""
				if e.req.method == http.MethodPut {
					id = e.req.id
				}
				e.err = s.checkResource(e.req.body, e.req.typ, id)
			}
		}()
	}
	for _, e := range entries {
		if e.err == nil && e.req.body != nil {
			work <- e
		}
	}
	close(work)
	wg.Wait()
}

// prefixIssues rewrites the FHIRPath expressions of an entry's issues to
// start at Bundle.entry[i].
func prefixIssues(err error, i int) []outcome.Issue {
	e, ok := outcome.As(err)
	if !ok {
		return []outcome.Issue{{Severity: outcome.SeverityError, Code: outcome.CodeException, Expression: []string{fmt.Sprintf("Bundle.entry[%d]", i)}, Diagnostics: "internal error"}}
	}
	out := make([]outcome.Issue, len(e.Issues))
	for k, is := range e.Issues {
		is.Expression = append([]string(nil), is.Expression...)
		for j, x := range is.Expression {
			if !strings.HasPrefix(x, "Bundle.entry[") {
				is.Expression[j] = fmt.Sprintf("Bundle.entry[%d].resource.%s", i, trimType(x))
			}
		}
		if len(is.Expression) == 0 {
			is.Expression = []string{fmt.Sprintf("Bundle.entry[%d]", i)}
		}
		out[k] = is
	}
	return out
}

// trimType drops the leading resource type of a FHIRPath expression.
func trimType(x string) string {
	if i := strings.IndexAny(x, ".["); i > 0 && x[0] >= 'A' && x[0] <= 'Z' {
		return strings.TrimPrefix(x[i:], ".")
	}
	if x != "" && x[0] >= 'A' && x[0] <= 'Z' {
		return "" // the resource itself
	}
	return x
}

func statusOfIssues(entries []*entry) int {
	for _, e := range entries {
		if e.err != nil {
			if st := outcome.StatusOf(e.err); st != http.StatusBadRequest {
				return st
			}
		}
	}
	return http.StatusBadRequest
}

// order is the processing order of the spec: DELETE, POST, PUT, GET.
func order(entries []*entry) []*entry {
	rank := map[string]int{http.MethodDelete: 0, http.MethodPost: 1, http.MethodPut: 2, http.MethodGet: 3}
	of := func(e *entry) int {
		if e.req == nil {
			return 4 // refused before it was read (a batch's other entries go on)
		}
		return rank[e.req.method]
	}
	out := append([]*entry(nil), entries...)
	sort.SliceStable(out, func(i, j int) bool { return of(out[i]) < of(out[j]) })
	return out
}

// transaction runs all entries in one store transaction: all or nothing.
// DELETEs run first, so that the conditional criteria of the other entries
// see their effect; then the identity of every POST and PUT is fixed, so
// that references between entries are rewritten before anything is stored;
// then POSTs, PUTs and finally GETs run.
func (s *Server) transaction(ctx context.Context, entries []*entry) error {
	ordered := order(entries)
	// What does not need the store runs before the write function, outside
	// the committer that every writer waits for: the check for
	// conditional references, and for a bundle of plain creates (POST
	// without If-None-Exist, and reads) the rewriting of its references,
	// whose targets are the ids chosen for its entries.
	plain := !hasConditionalRefs(ordered)
	rewritten := plain && onlyPlainCreates(ordered)
	if rewritten {
		refs := map[string]string{}
		for _, e := range ordered {
			if e.req.method == http.MethodPost && e.fullURL != "" {
				refs[e.fullURL] = e.req.typ + "/" + e.req.newID
			}
		}
		er := linkTargets{refs: refs}
		for _, e := range ordered {
			if e.req.body != nil {
				if err := s.rewriteRefs(nil, e.req.body, er.of(e.fullURL), e.index); err != nil {
					return err
				}
			}
		}
	}
	// A bundle of plain creates is also encoded and indexed here, on
	// every core, outside the write function every writer waits for.
	var early []*store.Prepared
	if rewritten {
		early = s.prepareSome(ordered, isPlainCreate)
	}
	return s.commit(ctx, func(tx *store.Tx) error {
		for _, e := range ordered {
			if e.req.method == http.MethodDelete {
				done := e.deciding(e.req.caller)
				res, err := s.execute(tx, e.req)
				done()
				if err != nil {
					return entryError(err, e.index)
				}
				e.res = res
			}
		}
		refs, conds, seen := map[string]string{}, map[string]string{}, map[string]int{}
		for _, e := range ordered {
			if err := s.resolveTarget(tx, e, refs, conds); err != nil {
				return entryError(err, e.index)
			}
			if err := overlap(e, seen); err != nil {
				return err
			}
		}
		// Without conditional references (which could match what earlier
		// entries create), every reference is rewritten first and the
		// creates are encoded and indexed on every core; then the entries
		// run in order.
		var preps []*store.Prepared
		er := linkTargets{refs: refs}
		if plain {
			for _, e := range ordered {
				if !rewritten && e.req.method != http.MethodDelete && e.req.body != nil {
					if err := s.rewriteRefs(tx, e.req.body, er.of(e.fullURL), e.index); err != nil {
						return err
					}
				}
			}
			if early != nil {
				preps = early
			} else {
				preps = s.prepareCreates(ordered)
			}
		}
		for i, e := range ordered {
			if e.req.method == http.MethodDelete {
				continue
			}
			if preps == nil && e.req.body != nil {
				if err := s.rewriteRefs(tx, e.req.body, er.of(e.fullURL), e.index); err != nil {
					return err
				}
			}
			var res result
			var err error
			done := e.deciding(e.req.caller)
			if preps != nil && preps[i] != nil {
				res, err = s.createPrepared(tx, e.req, preps[i])
			} else {
				res, err = s.execute(tx, e.req)
			}
			done()
			if err != nil {
				return entryError(err, e.index)
			}
			e.res = res
		}
		return nil
	})
}

// onlyPlainCreates reports whether every entry is a POST without
// If-None-Exist or a GET: each POST then creates its resource under the id
// chosen for it (resolveTarget), whatever the store holds.
func onlyPlainCreates(entries []*entry) bool {
	for _, e := range entries {
		switch {
		case e.req.method == http.MethodGet:
		case e.req.method == http.MethodPost && e.req.ifNoneExist == "":
		default:
			return false
		}
	}
	return true
}

// hasConditionalRefs reports whether an entry's resource has a conditional
// reference (Type?criteria).
func hasConditionalRefs(entries []*entry) bool {
	var walk func(v any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if ref, ok := c.(string); ok && k == "reference" && strings.Contains(ref, "?") {
					return true
				}
				if walk(c) {
					return true
				}
			}
		case []any:
			for _, c := range x {
				if walk(c) {
					return true
				}
			}
		}
		return false
	}
	for _, e := range entries {
		if e.req.body != nil && walk(e.req.body) {
			return true
		}
	}
	return false
}

// prepareCreates encodes and indexes, on every core, the resources of the
// POST entries that resolveTarget left to create (no If-None-Exist match):
// the CPU of a create, outside the sequential writes. The result is
// indexed like entries (nil: not a create).
func (s *Server) prepareCreates(entries []*entry) []*store.Prepared {
	return s.prepareSome(entries, isResolvedCreate)
}

// prepareSome is prepareCreates for the entries create selects.
func (s *Server) prepareSome(entries []*entry, create func(*request) bool) []*store.Prepared {
	preps := make([]*store.Prepared, len(entries))
	next := make(chan int, len(entries))
	for i, e := range entries {
		if create(e.req) {
			next <- i
		}
	}
	close(next)
	if len(next) == 0 {
		return preps
	}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(next)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				e := entries[i]
				preps[i] = s.db.PrepareCreate(e.req.typ, e.req.newID, e.req.body)
			}
		}()
	}
	wg.Wait()
	return preps
}

// isResolvedCreate: a POST entry that resolveTarget left to create.
func isResolvedCreate(r *request) bool {
	return r.method == http.MethodPost && r.resolved && r.matched == "" && r.body != nil
}

// isPlainCreate: a POST entry without If-None-Exist, which resolveTarget
// always leaves to create.
func isPlainCreate(r *request) bool {
	return r.method == http.MethodPost && r.ifNoneExist == "" && r.body != nil
}

// createPrepared stores a prepared create as create does.
func (s *Server) createPrepared(tx *store.Tx, req *request, p *store.Prepared) (result, error) {
	if err := uniqueINS(tx, req.typ, req.newID, req.body); err != nil {
		return result{}, err
	}
	r, err := tx.PutPrepared(p)
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusCreated, version: r, body: r.JSON, created: true, info: "created"}, nil
}

// overlap fails the transaction when two writes resolve to the same
// resource (R4 transaction rules: identities must not overlap).
func overlap(e *entry, seen map[string]int) error {
	if e.req.method == http.MethodGet || e.req.id == "" {
		return nil
	}
	key := e.req.typ + "/" + e.req.id
	if first, ok := seen[key]; ok {
		return outcome.New(http.StatusConflict, outcome.CodeConflict, fmt.Sprintf("Bundle.entry[%d].request", e.index),
			"entries %d and %d of the transaction both write %s", first, e.index, e.req.typ)
	}
	seen[key] = e.index
	return nil
}

// resolveTarget fixes the logical id a POST or PUT entry will write and
// records fullUrl → Type/id for reference rewriting. conds remembers the
// outcome of each If-None-Exist criteria within one transaction, so that two
// conditional creates of the same resource create it once.
func (s *Server) resolveTarget(tx *store.Tx, e *entry, refs, conds map[string]string) error {
	req := e.req
	switch req.method {
	case http.MethodPost:
		req.resolved, req.matched = true, ""
		target := req.newID
		if req.ifNoneExist != "" {
			q, err := url.ParseQuery(strings.TrimPrefix(req.ifNoneExist, "?"))
			if err != nil {
				return outcome.Invalid("ifNoneExist", "malformed ifNoneExist criteria")
			}
			key := req.typ + "?" + q.Encode()
			if earlier, ok := conds[key]; ok {
				req.matched = earlier
			} else {
				ids, err := s.conditionalMatches(tx, req, q)
				if err != nil {
					return err
				}
				if len(ids) > 1 {
					return errManyMatches("ifNoneExist criteria")
				}
				if len(ids) == 1 {
					req.matched = ids[0]
				}
				conds[key] = target
				if req.matched != "" {
					conds[key] = req.matched
				}
			}
			if req.matched != "" {
				target = req.matched
			}
		}
		if e.fullURL != "" {
			refs[e.fullURL] = req.typ + "/" + target
		}
	case http.MethodPut:
		if req.id == "" {
			ids, err := s.conditionalMatches(tx, req, req.query)
			if err != nil {
				return err
			}
			bodyID, _ := req.body["id"].(string)
			switch len(ids) {
			case 0:
				req.id = bodyID
				if req.id == "" {
					req.id = req.newID
				}
			case 1:
				if bodyID != "" && bodyID != ids[0] {
					return outcome.Invalid(req.typ+".id", "the resource id does not match the resource found by the criteria")
				}
				req.id = ids[0]
			default:
				return errManyMatches("conditional update criteria")
			}
			req.query = nil
			req.body["id"] = req.id
		}
		if e.fullURL != "" {
			refs[e.fullURL] = req.typ + "/" + req.id
		}
	}
	return nil
}

// execute runs one entry's interaction inside tx.
func (s *Server) execute(tx *store.Tx, req *request) (result, error) {
	switch req.method {
	case http.MethodPost:
		return s.create(tx, req)
	case http.MethodPut:
		return s.update(tx, req)
	case http.MethodDelete:
		return s.remove(tx, req)
	default:
		return s.get(tx, req)
	}
}

// get answers a GET entry: read or vread (search entries are answered by
// the search engine once it lands).
func (s *Server) get(tx *store.Tx, req *request) (result, error) {
	if req.id == "" {
		return result{}, outcome.New(http.StatusNotImplemented, outcome.CodeNotSupported, "", "searches inside a bundle are not supported yet")
	}
	var v uint64
	if req.vid != "" {
		var err error
		if v, err = strconv.ParseUint(req.vid, 10, 64); err != nil || v == 0 {
			v = ^uint64(0) // no such version, decided like any other miss
		}
	}
	r, err := s.readResource(context.Background(), req.caller, tx, req.typ, req.id, v)
	if err != nil {
		return result{version: r}, err
	}
	// As a read would: the entry's ifNoneMatch and ifModifiedSince, the
	// url's _summary and _elements.
	if notModified(req, r) {
		return result{status: http.StatusNotModified, version: r}, nil
	}
	body, err := shape(req.query, r.JSON)
	if err != nil {
		return result{version: r}, err
	}
	return result{status: http.StatusOK, version: r, body: body}, nil
}

// rewriteRefs replaces references to bundle fullUrls with the stored
// Type/id, and resolves conditional references (Type?criteria). The element
// path is only spelled out when a reference fails.
func (s *Server) rewriteRefs(tx *store.Tx, v any, refs map[string]string, index int) error {
	var path []any // string keys and int indexes
	// typ is the FHIR type of v (the model's key): the spec's rule is for
	// every link to an entry, so elements of type uri, url and canonical
	// and the narrative's links are rewritten too, but not a string that
	// happens to hold a fullUrl (an Identifier.value).
	var walk func(v any, typ string) error
	walk = func(v any, typ string) error {
		x, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if rt, ok := x["resourceType"].(string); ok {
			typ = rt // the resource, or a contained one
		}
		for k, c := range x {
			if ref, ok := c.(string); ok && k == "reference" {
				resolved, err := s.resolveRef(tx, ref, refs)
				if err != nil {
					e, _ := outcome.As(err)
					e.Issues[0].Expression = []string{fmt.Sprintf("Bundle.entry[%d].resource%s.reference", index, pathString(path))}
					return e
				}
				x[k] = resolved
				continue
			}
			switch c := c.(type) {
			case string:
				if k == "div" && fhirpath.ChildType(typ, k) == "xhtml" {
					x[k] = rewriteLinks(c, refs)
				} else if to, ok := refs[c]; ok && isURIType(fhirpath.ChildType(typ, k)) {
					x[k] = to
				}
			case []any:
				child := fhirpath.ChildType(typ, k)
				path = append(path, k)
				for i, e := range c {
					if str, ok := e.(string); ok {
						if to, ok := refs[str]; ok && isURIType(child) {
							c[i] = to
						}
						continue
					}
					path = append(path, i)
					if err := walk(e, child); err != nil {
						return err
					}
					path = path[:len(path)-1]
				}
				path = path[:len(path)-1]
			case map[string]any:
				path = append(path, k)
				if err := walk(c, fhirpath.ChildType(typ, k)); err != nil {
					return err
				}
				path = path[:len(path)-1]
			}
		}
		return nil
	}
	return walk(v, "")
}

// linkTargets gives each entry the links it resolves to other entries: the
// bundle's fullUrls (refs), and for an entry whose fullUrl is an absolute
// RESTful URL (base/Type/id), the relative Type/id of the entries under
// the same base: a relative reference resolves against the base of its
// entry's fullUrl (R4 bundle.html, resolving references in bundles).
type linkTargets struct {
	refs   map[string]string
	byBase map[string]map[string]string
}

func (er *linkTargets) of(fullURL string) map[string]string {
	base := restBase(fullURL)
	if base == "" {
		return er.refs
	}
	if m, ok := er.byBase[base]; ok {
		return m
	}
	m, cloned := er.refs, false
	for k, to := range er.refs {
		if restBase(k) != base {
			continue
		}
		rel := k[len(base)+1:]
		if _, taken := er.refs[rel]; !taken {
			if !cloned {
				m, cloned = maps.Clone(er.refs), true
			}
			m[rel] = to
		}
	}
	if er.byBase == nil {
		er.byBase = map[string]map[string]string{}
	}
	er.byBase[base] = m
	return m
}

// restBase is the base of an absolute RESTful URL (http(s)://…/Type/id),
// or "" for any other fullUrl (urn:uuid:…).
func restBase(u string) string {
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return ""
	}
	i := strings.LastIndexByte(u, '/')
	if i < 0 {
		return ""
	}
	j := strings.LastIndexByte(u[:i], '/')
	if j < len("https://") || checkType(u[j+1:i]) != nil {
		return ""
	}
	return u[:j]
}

// isURIType reports whether values of a FHIR type are links: uri, url,
// canonical.
func isURIType(typ string) bool { return typ == "uri" || typ == "url" || typ == "canonical" }

// rewriteLinks replaces, in a narrative, the href and src attributes that
// name a bundle entry by the entry's Type/id.
func rewriteLinks(div string, refs map[string]string) string {
	if len(refs) == 0 {
		return div
	}
	var b strings.Builder
	rest := div
	for {
		i := strings.Index(rest, `="`)
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+2:], '"')
		if j < 0 {
			break
		}
		attr := rest[:i]
		value := rest[i+2 : i+2+j]
		b.WriteString(rest[:i+2])
		name := attr[strings.LastIndexAny(attr, " \t\r\n")+1:]
		if to, ok := refs[value]; ok && (name == "href" || name == "src") {
			b.WriteString(to)
		} else {
			b.WriteString(value)
		}
		b.WriteByte('"')
		rest = rest[i+2+j+1:]
	}
	if b.Len() == 0 {
		return div
	}
	b.WriteString(rest)
	return b.String()
}

func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch x := p.(type) {
		case string:
			b.WriteString("." + x)
		case int:
			b.WriteString("[" + strconv.Itoa(x) + "]")
		}
	}
	return b.String()
}

func (s *Server) resolveRef(tx *store.Tx, ref string, refs map[string]string) (string, error) {
	if to, ok := refs[ref]; ok {
		return to, nil
	}
	if strings.HasPrefix(ref, "urn:uuid:") || strings.HasPrefix(ref, "urn:oid:") {
		return "", outcome.New(http.StatusUnprocessableEntity, outcome.CodeNotFound, "", "reference to %s matches no entry of the bundle", ref)
	}
	typ, query, ok := strings.Cut(ref, "?")
	if !ok || strings.Contains(typ, "/") {
		return ref, nil
	}
	if err := checkType(typ); err != nil {
		return "", outcome.Invalid("", "conditional reference to unknown type %q", typ)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", outcome.Invalid("", "malformed conditional reference")
	}
	ids, err := s.match(tx, nil, typ, q) // conditional references: the decision on the write sees the same (withResolvedRefs)
	if err != nil {
		return "", outcome.Invalid("", "conditional reference: %s", diagnostics(err))
	}
	switch len(ids) {
	case 1:
		return typ + "/" + ids[0], nil
	case 0:
		return "", outcome.New(http.StatusUnprocessableEntity, outcome.CodeNotFound, "", "conditional reference %s?… matches no resource", typ)
	default:
		return "", errManyMatches("conditional reference " + typ + "?…")
	}
}

func diagnostics(err error) string {
	if e, ok := outcome.As(err); ok && len(e.Issues) > 0 {
		return e.Issues[0].Diagnostics
	}
	return "invalid"
}

// entryError places an entry's error at Bundle.entry[i].
func entryError(err error, i int) error {
	e, ok := outcome.As(err)
	if !ok {
		return err
	}
	return &outcome.Error{Status: e.Status, Issues: prefixIssues(e, i)}
}

// batch runs each entry on its own; writes share commits.
func (s *Server) batch(ctx context.Context, entries []*entry) {
	var writes []*entry
	var fns []func(*store.Tx) error
	for _, e := range order(entries) {
		if e.err != nil {
			continue
		}
		if e.req.method == http.MethodGet {
			continue
		}
		e := e
		writes = append(writes, e)
		fns = append(fns, func(tx *store.Tx) error {
			defer e.deciding(e.req.caller)()
			if err := s.resolveTarget(tx, e, map[string]string{}, map[string]string{}); err != nil {
				return err
			}
			if e.req.body != nil {
				if err := s.rewriteRefs(tx, e.req.body, nil, e.index); err != nil {
					return err
				}
			}
			res, err := s.execute(tx, e.req)
			e.res = res
			return err
		})
	}
	_, span := s.storeSpan(ctx, "write")
	errs := s.db.UpdateEach(ctx, fns)
	end(span, nil) // each entry answers its own error
	for i, e := range writes {
		e.err = errs[i]
	}
	for _, e := range entries {
		if e.err == nil && e.req.method == http.MethodGet {
			e.err = s.view(ctx, func(tx *store.Tx) error {
				defer e.deciding(e.req.caller)()
				var err error
				e.res, err = s.get(tx, e.req)
				return err
			})
		}
	}
}

// responseBundle builds the batch-response or transaction-response.
func (s *Server) responseBundle(c echo.Context, kind string, entries []*entry) map[string]any {
	base := s.base(c)
	withResource := preferReturn(c.Request().Header.Get("Prefer")) == "representation"
	out := make([]any, len(entries))
	for i, e := range entries {
		resp := map[string]any{}
		entry := map[string]any{"response": resp}
		if e.err != nil {
			st := outcome.StatusOf(e.err)
			resp["status"] = statusLine(st)
			var oe *outcome.Error
			if errors.As(e.err, &oe) {
				resp["outcome"] = outcome.Resource(oe.Issues)
			} else {
				resp["outcome"] = outcome.Resource([]outcome.Issue{{Severity: outcome.SeverityFatal, Code: outcome.CodeException, Diagnostics: "internal error"}})
				s.log.ErrorContext(c.Request().Context(), "internal error in batch entry", "index", e.index, "error", e.err.Error())
			}
			out[i] = entry
			continue
		}
		r := e.res
		resp["status"] = statusLine(r.status)
		if r.version.Version != 0 {
			resp["etag"] = etag(r.version.Version)
			resp["lastModified"] = store.FormatInstant(r.version.LastUpdated)
			if r.version.Op != store.OpDelete {
				resp["location"] = r.version.Type + "/" + r.version.ID + "/_history/" + strconv.FormatUint(r.version.Version, 10)
				entry["fullUrl"] = base + "/" + r.version.Type + "/" + r.version.ID
			}
		}
		if r.body != nil && (withResource || e.req.method == http.MethodGet) && !e.req.decision.Has("omit-content") {
			entry["resource"] = decodeStored(r.body)
		}
		out[i] = entry
	}
	bundle := map[string]any{
		"resourceType": "Bundle",
		"id":           store.NewID(),
		"meta":         map[string]any{"lastUpdated": store.FormatInstant(time.Now())},
		"type":         kind + "-response",
	}
	if len(out) > 0 { // FHIR JSON has no empty arrays
		bundle["entry"] = out
	}
	return bundle
}

func statusLine(code int) string { return strconv.Itoa(code) + " " + http.StatusText(code) }
