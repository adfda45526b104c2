package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/search"
	"github.com/parcours-sante/parcours/server/store"
)

// request is one FHIR interaction, from an HTTP request or a bundle entry.
type request struct {
	method  string // GET, POST, PUT, DELETE
	typ, id string
	vid     string
	query   url.Values // search or conditional criteria
	body    map[string]any

	ifMatch, ifNoneMatch, ifNoneExist, ifModifiedSince string
	// linked maps the fullUrls of a bundle's conditional creates that
	// match one resource to it, for the decisions (authorizeEntries).
	linked map[string]string

	// newID is the id a create will use (chosen before the transaction, so
	// that a re-run of the write function gives the same answer).
	newID string
	// resolved: a bundle already evaluated If-None-Exist; matched is the
	// existing resource it found ("" = create).
	resolved bool
	matched  string

	// caller is who asks (nil in insecure mode). A write was decided on a
	// snapshot: the transaction checks that the resource decided on
	// (expectID at expectVersion, 0 = absent) is still the one it writes.
	caller        *caller
	ingestSource  string // the $ingest upload this write belongs to
	checked       bool
	expectID      string
	expectVersion uint64
	decision      policy.Decision
}

// result is what an interaction produced.
type result struct {
	status  int
	version store.Resource // the version concerned (ETag, Last-Modified, Location)
	body    []byte         // resource to return, nil for none
	info    string         // informational message for return=OperationOutcome
	created bool           // a new resource (Location header)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func checkType(typ string) error {
	if !conformance.IsResourceType(typ) {
		return outcome.New(http.StatusNotFound, outcome.CodeNotSupported, "", "unknown resource type %q", typ)
	}
	return nil
}

func checkID(id string) error {
	if !idPattern.MatchString(id) {
		return outcome.Invalid("id", "invalid resource id: 1 to 64 of A-Z a-z 0-9 - .")
	}
	return nil
}

// checkResource validates a resource sent for typ (and id, for updates):
// URL/body agreement plus the R4 JSON schema, every issue at once.
func (s *Server) checkResource(body map[string]any, typ, id string) error {
	var issues []outcome.Issue
	bad := func(code, expr, msg string) {
		issues = append(issues, outcome.Issue{Severity: outcome.SeverityError, Code: code, Expression: []string{expr}, Diagnostics: msg})
	}
	rt, _ := body["resourceType"].(string)
	if rt != "" && rt != typ {
		bad(outcome.CodeInvalid, "resourceType", "resourceType "+strconv.Quote(rt)+" does not match the URL type "+strconv.Quote(typ))
	}
	if id != "" {
		bodyID, _ := body["id"].(string)
		switch {
		case bodyID == "":
			bad(outcome.CodeRequired, typ+".id", "the resource id is required in an update and must match the URL")
		case bodyID != id:
			bad(outcome.CodeInvalid, typ+".id", "the resource id does not match the id in the URL")
		}
	}
	if err := s.validator.Validate(body); err != nil {
		e, ok := outcome.As(err)
		if !ok {
			return err
		}
		issues = append(issues, e.Issues...)
	}
	if typ == "Patient" {
		// The hub links patients on the INS-NIR: one that is not an
		// INS-NIR, or is written otherwise than the native files' (2A and
		// 2B upper case), would make a second patient of the same person.
		for i, x := range asList(body["identifier"]) {
			idf, _ := x.(map[string]any)
			v, _ := idf["value"].(string)
			if sys, _ := idf["system"].(string); sys != insSystem || v == "" {
				continue
			}
			at := fmt.Sprintf("Patient.identifier[%d].value", i)
			switch mappings.INSProblem(v) {
			case "":
			case "key":
				bad(outcome.CodeValue, at, "the INS-NIR key does not match the NIR (key = 97 - NIR mod 97)")
			default:
				if mappings.ValidINS(strings.ToUpper(v)) {
					bad(outcome.CodeValue, at, "the INS-NIR is written in upper case (2A, 2B)")
				} else {
					bad(outcome.CodeValue, at, "the INS-NIR has 15 characters: a 13-character NIR and a 2-digit key")
				}
			}
		}
	}
	if len(issues) > 0 {
		return &outcome.Error{Status: http.StatusBadRequest, Issues: issues}
	}
	if typ == "Library" {
		return checkRuleLibrary(body) // a rupture rule must parse
	}
	return nil
}

// create stores a new resource, or with If-None-Exist returns the one match.
func (s *Server) create(tx *store.Tx, req *request) (result, error) {
	if req.resolved {
		if req.matched != "" {
			return s.existing(tx, req, req.matched)
		}
	} else if req.ifNoneExist != "" {
		q, err := url.ParseQuery(strings.TrimPrefix(req.ifNoneExist, "?"))
		if err != nil {
			return result{}, outcome.Invalid("If-None-Exist", "malformed If-None-Exist criteria")
		}
		ids, err := s.conditionalMatches(tx, req, q)
		if err != nil {
			return result{}, err
		}
		switch len(ids) {
		case 0:
		case 1:
			return s.existing(tx, req, ids[0])
		default:
			return result{}, errManyMatches("If-None-Exist criteria")
		}
	}
	if err := uniqueINS(tx, req.typ, req.newID, req.body); err != nil {
		return result{}, err
	}
	r, err := tx.Put(req.typ, req.newID, req.body)
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusCreated, version: r, body: r.JSON, created: true, info: "created"}, nil
}

// conditionalMatches are the matches of conditional criteria q (create,
// update, delete).
// Criteria other than business identifiers (a code, a date) count only the
// matches the caller may read or wrote itself: else 200 or 201 told whether
// a patient who objected has that diagnosis (black-box review). A writer
// linking on an identifier it sent (an INS, a source record) still finds
// what it may not read.
func (s *Server) conditionalMatches(tx *store.Tx, req *request, q url.Values) ([]string, error) {
	ids, err := s.match(tx, req.caller, req.typ, q)
	if err != nil || req.caller == nil || identifiersOnly(q) {
		return ids, err
	}
	return slices.DeleteFunc(ids, func(id string) bool {
		r, err := tx.Get(req.typ, id)
		if err != nil {
			return true
		}
		// The caller's own writes (same actor type and organisation)
		// count whatever it may read: a writer that may not read back
		// (hospital IT) must not create duplicates (black-box review).
		if a := storedAccess(tx, req.typ, id); a.sourceActor == req.caller.claims.ActorType && a.sourceOrg == req.caller.claims.Org {
			return false
		}
		_, err = s.decideOn(context.Background(), req.caller, tx, "read", r)
		return err != nil
	}), nil
}

// identifiersOnly reports whether conditional criteria are business
// identifiers (or ids) only.
func identifiersOnly(q url.Values) bool {
	for k := range q {
		if name, _, _ := strings.Cut(k, ":"); name != "identifier" && name != "_id" {
			return false
		}
	}
	return len(q) > 0
}

// existing answers a conditional create that matched typ/id: the answer
// shows that resource, so the caller must be allowed to read it.
func (s *Server) existing(tx *store.Tx, req *request, id string) (result, error) {
	r, err := tx.Get(req.typ, id)
	if err != nil {
		return result{}, err
	}
	if _, err := s.decideOn(context.Background(), req.caller, tx, "read", r); err != nil {
		// A writer linking to an existing resource (an uploader matching a
		// patient on the INS it sent) learns that it exists, not its content.
		return result{status: http.StatusOK, version: r, info: "a matching resource exists: nothing created (its content is not yours to read)"}, nil
	}
	return result{status: http.StatusOK, version: r, body: r.JSON, info: "a matching resource exists: nothing created"}, nil
}

// update replaces typ/id (creating it with the client's id if absent), or
// resolves conditional criteria when no id is given.
func (s *Server) update(tx *store.Tx, req *request) (result, error) {
	id := req.id
	if id == "" {
		ids, err := s.conditionalMatches(tx, req, req.query)
		if err != nil {
			return result{}, err
		}
		bodyID, _ := req.body["id"].(string)
		switch len(ids) {
		case 0:
			if bodyID != "" && tx.Exists(req.typ, bodyID) {
				// R4 conditional update, no match, an id in the body:
				// that resource exists, and the criteria did not match it.
				return result{}, outcome.New(http.StatusConflict, outcome.CodeConflict, req.typ+".id",
					"no resource matches the criteria, and the body's id names an existing resource: a conditional update does not overwrite a resource its criteria do not match")
			}
			id = bodyID
			if id == "" {
				id = req.newID
			}
		case 1:
			if bodyID != "" && bodyID != ids[0] {
				return result{}, outcome.Invalid(req.typ+".id", "the resource id does not match the resource found by the criteria")
			}
			id = ids[0]
		default:
			return result{}, errManyMatches("conditional update criteria")
		}
	}
	cur, err := tx.Get(req.typ, id)
	exists := err == nil && !cur.Deleted()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return result{}, err
	}
	if err := req.unchanged(id, cur, exists); err != nil {
		return result{}, err
	}
	if err := preconditions(req, cur, exists); err != nil {
		return result{}, err
	}
	if err := uniqueINS(tx, req.typ, id, req.body); err != nil {
		return result{}, err
	}
	r, err := tx.Upsert(req.typ, id, req.body)
	if err != nil {
		return result{}, err
	}
	if !exists {
		return result{status: http.StatusCreated, version: r, body: r.JSON, created: true, info: "created"}, nil
	}
	return result{status: http.StatusOK, version: r, body: r.JSON, info: "updated"}, nil
}

// uniqueINS keeps one Patient per person: a Patient whose INS-NIR another
// Patient already carries is refused (409); linking goes through a
// conditional create or update on the INS.
func uniqueINS(tx *store.Tx, typ, id string, res map[string]any) error {
	if typ != "Patient" {
		return nil
	}
	list, _ := res["identifier"].([]any)
	for i, x := range list {
		ident, _ := x.(map[string]any)
		if sys, _ := ident["system"].(string); sys != insSystem {
			continue
		}
		value, _ := ident["value"].(string)
		for _, other := range tx.Lookup("Patient", "identifier", insSystem+"|"+value) {
			if other != id {
				return outcome.New(http.StatusConflict, outcome.CodeDuplicate, fmt.Sprintf("Patient.identifier[%d]", i),
					"a Patient with this INS-NIR exists: link to it with a conditional create (If-None-Exist: identifier=%s|…) or update it", insSystem)
			}
		}
	}
	return nil
}

// unchanged checks that the write touches the resource version its
// decision was taken on (a concurrent write in between answers 409).
func (req *request) unchanged(id string, cur store.Resource, exists bool) error {
	if !req.checked {
		return nil
	}
	var v uint64
	if exists {
		v = cur.Version
	}
	if v != req.expectVersion || (req.expectID != "" && id != req.expectID) {
		return outcome.New(http.StatusConflict, outcome.CodeConflict, "",
			"the resource this write was authorised for is not the one it would now write: a concurrent write changed it (retry), or an earlier entry of the same transaction did")
	}
	return nil
}

// authorizeWrite decides a create, update or delete on a snapshot of the
// store, stamps meta.source with the writer, and records what the write
// transaction must find unchanged.
func (s *Server) authorizeWrite(ctx context.Context, tx *store.Tx, req *request) error {
	conditional := req.method != http.MethodPost && req.id == ""
	err := s.authorizeWriteOf(ctx, tx, req)
	if conditional && outcome.StatusOf(err) == http.StatusForbidden {
		// The reasons of a refusal describe the resource decided on (not
		// in the care team, another organisation's…): for conditional
		// criteria, that would tell whether they matched a resource the
		// caller may not see. The reasons stay in the decision's record.
		return errConditionalDenied
	}
	return err
}

// errConditionalDenied is the one refusal of a conditional update or
// delete.
var errConditionalDenied = outcome.New(http.StatusForbidden, outcome.CodeForbidden, "", "access denied by policy for this conditional request (the reasons are in the decision record)")

func (s *Server) authorizeWriteOf(ctx context.Context, tx *store.Tx, req *request) error {
	cl := req.caller
	if cl == nil {
		return nil
	}
	if req.body != nil {
		stampSource(cl, req.body)
		addStage(tx, req.typ, req.body, cl.claims.ActorType)
	}
	interaction := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodDelete: "delete"}[req.method]
	id := req.id
	if req.method == http.MethodPost {
		id = ""
	} else if id == "" {
		ids, err := s.conditionalMatches(tx, req, req.query)
		if err != nil {
			return err
		}
		if len(ids) > 1 {
			// Several matches: refused as a single one would be if the
			// caller may not write the first two, so that "several" tells
			// nothing to a caller that may touch none of them.
			for _, mid := range ids[:2] {
				a := storedAccess(tx, req.typ, mid)
				if _, err := s.decide(ctx, cl, tx, question{interaction: interaction, typ: req.typ, target: &target{typ: req.typ, id: mid, access: a}}); err != nil {
					return err
				}
			}
			return errManyMatches("conditional criteria")
		}
		if len(ids) == 1 {
			id = ids[0]
		}
	}
	var a accessInfo
	var version uint64
	if id != "" {
		if r, err := tx.Get(req.typ, id); err == nil && !r.Deleted() {
			a, version = storedAccess(tx, req.typ, id), r.Version
		}
	}
	if req.body != nil {
		n := accessOf(req.typ, id, s.withResolvedRefs(tx, req.body, req.linked), s.cfg.BaseURL)
		a.patients = union(a.patients, n.patients)
		a.labels = union(a.labels, n.labels)
	}
	d, err := s.decide(ctx, cl, tx, question{interaction: interaction, typ: req.typ, target: &target{typ: req.typ, id: id, access: a}, ingestSource: req.ingestSource})
	if err != nil {
		return err
	}
	req.checked, req.expectID, req.expectVersion, req.decision = true, id, version, d
	return nil
}

// withResolvedRefs returns res, or when it holds conditional references
// ("Patient?identifier=…") or references to linked bundle entries (a
// conditional create's fullUrl, matched) a copy where each one that names
// exactly one current resource is replaced by it: the decision on a write
// must know the patient a reference names, as the stored resource will
// (the references themselves are rewritten when the write runs).
func (s *Server) withResolvedRefs(tx *store.Tx, res map[string]any, linked map[string]string) map[string]any {
	if len(linked) == 0 && !hasConditionalRef(res) {
		return res
	}
	var resolve func(v any) (any, bool)
	resolve = func(v any) (any, bool) {
		switch x := v.(type) {
		case map[string]any:
			changed := false
			out := make(map[string]any, len(x))
			for k, e := range x {
				if ref, ok := e.(string); ok && k == "reference" {
					if to, ok := linked[ref]; ok {
						out[k], changed = to, true
						continue
					}
					if typ, query, found := strings.Cut(ref, "?"); found && conformance.IsResourceType(typ) {
						if q, err := url.ParseQuery(query); err == nil {
							if ids, err := s.match(tx, nil, typ, q); err == nil && len(ids) == 1 {
								out[k], changed = typ+"/"+ids[0], true
								continue
							}
						}
					}
				}
				ne, ch := resolve(e)
				out[k], changed = ne, changed || ch
			}
			if !changed {
				return x, false
			}
			return out, true
		case []any:
			changed := false
			out := make([]any, len(x))
			for i, e := range x {
				ne, ch := resolve(e)
				out[i], changed = ne, changed || ch
			}
			if !changed {
				return x, false
			}
			return out, true
		}
		return v, false
	}
	out, _ := resolve(res)
	return out.(map[string]any)
}

// hasConditionalRef reports whether v holds a reference with a query.
func hasConditionalRef(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if ref, ok := e.(string); ok && k == "reference" && strings.Contains(ref, "?") {
				return true
			}
			if hasConditionalRef(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasConditionalRef(e) {
				return true
			}
		}
	}
	return false
}

// stampSource sets meta.source to the writing actor and organisation.
func stampSource(cl *caller, res map[string]any) {
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		res["meta"] = meta
	}
	meta["source"] = sourcePrefix + cl.claims.ActorType + ":" + cl.claims.Org
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// preconditions checks If-Match and If-None-Match on writes.
func preconditions(req *request, cur store.Resource, exists bool) error {
	if req.ifMatch != "" {
		v, ok := parseETag(req.ifMatch)
		if !ok {
			return outcome.Invalid("If-Match", `malformed If-Match: expected W/"<versionId>"`)
		}
		if !exists || cur.Version != v {
			return outcome.New(http.StatusPreconditionFailed, outcome.CodeConflict, "", "version conflict: If-Match does not match the current version")
		}
	}
	if inm := strings.TrimSpace(req.ifNoneMatch); inm != "" && exists {
		if inm == "*" {
			return outcome.New(http.StatusPreconditionFailed, outcome.CodeDuplicate, "", "If-None-Match: * but the resource exists")
		}
		// A list of entity tags: one matching the current version fails a
		// write (RFC 9110 §13.1.2, weak comparison).
		for _, t := range strings.Split(inm, ",") {
			if v, ok := parseETag(t); ok && v == cur.Version {
				return outcome.New(http.StatusPreconditionFailed, outcome.CodeConflict, "", "If-None-Match matches the current version")
			}
		}
	}
	return nil
}

// remove deletes typ/id, or the single match of conditional criteria.
func (s *Server) remove(tx *store.Tx, req *request) (result, error) {
	id := req.id
	if id == "" {
		ids, err := s.conditionalMatches(tx, req, req.query)
		if err != nil {
			return result{}, err
		}
		switch len(ids) {
		case 0:
			return result{status: http.StatusOK, info: "no resource matched the criteria: nothing deleted"}, nil
		case 1:
			id = ids[0]
		default:
			return result{}, errManyMatches("conditional delete criteria (only single matches are deleted)")
		}
	}
	cur, err := tx.Get(req.typ, id)
	if err != nil {
		return result{}, err
	}
	if err := req.unchanged(id, cur, !cur.Deleted()); err != nil {
		return result{}, err
	}
	if err := preconditions(req, cur, !cur.Deleted()); err != nil {
		return result{}, err
	}
	if cur.Deleted() {
		return result{status: http.StatusOK, version: cur, info: "already deleted"}, nil
	}
	r, err := tx.Delete(req.typ, id)
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusOK, version: r, info: "deleted"}, nil
}

// match resolves search criteria for conditional interactions and
// conditional references: any search criteria of the type (0, 1 or many
// ids, sorted). A parameter the engine does not support is refused, never
// ignored: ignoring one could update or delete the wrong resource.
// match returns the ids of typ that the conditional criteria q match. With
// a caller, chained parameters and _has go through the resources it may
// see only (as in a search): criteria on hidden resources must not tell
// whether they exist.
func (s *Server) match(tx *store.Tx, cl *caller, typ string, q url.Values) ([]string, error) {
	criteria := url.Values{}
	for name, values := range q {
		if !isResultParam(name) && !search.IsResultParam(name) {
			criteria[name] = values
		}
	}
	if len(criteria) == 0 {
		return nil, outcome.Invalid("", "conditional criteria are empty")
	}
	query, err := search.Default().Parse(typ, criteria, s.cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if len(query.Unknown) > 0 {
		u := query.Unknown[0]
		return nil, outcome.Invalid(u.Name, "search parameter %q is not supported in conditional criteria: %s", u.Name, u.Reason)
	}
	visible := s.visibleTo(cl, tx)
	query.Visible = visible
	ids, err := query.IDs(tx)
	if err != nil || visible == nil || identityCriteria(criteria) {
		// By identifier or id alone a writer links to what exists (a
		// patient by its INS, a record by its source identifier): it
		// learns that it exists, not its content.
		return ids, err
	}
	// Other criteria describe content: they match only what the caller
	// may see or its organisation supplied, or they would tell it (another
	// organisation's hidden diagnosis answering "a matching resource
	// exists": black-box review).
	keep := ids[:0]
	for _, id := range ids {
		if visible(typ, id) || ownSource(tx, cl, typ, id) {
			keep = append(keep, id)
		}
	}
	return keep, nil
}

// ownSource reports whether the caller's organisation supplied typ/id.
func ownSource(tx *store.Tx, cl *caller, typ, id string) bool {
	return cl.claims != nil && cl.claims.Org != "" && storedAccess(tx, typ, id).sourceOrg == cl.claims.Org
}

// identityCriteria reports whether conditional criteria name resources by
// identifier or id only.
func identityCriteria(criteria url.Values) bool {
	for name := range criteria {
		if base, _, _ := strings.Cut(name, ":"); base != "identifier" && base != "_id" {
			return false
		}
	}
	return true
}

// visibleTo says whether cl may see a current resource (nil without a
// caller: everything). Its checks are counted on the request's record, as
// a search's are.
func (s *Server) visibleTo(cl *caller, tx *store.Tx) func(typ, id string) bool {
	if cl == nil {
		return nil
	}
	return func(typ, id string) bool {
		filtering := cl.filtering
		cl.filtering = true
		defer func() { cl.filtering = filtering }()
		_, err := s.decideCurrent(context.Background(), cl, tx, "search-type", store.Resource{Type: typ, ID: id})
		return err == nil
	}
}

// errManyMatches is the answer to conditional criteria that match more
// than one resource. It does not say how many: the count would tell a
// caller about resources it may not see.
func errManyMatches(what string) error {
	return outcome.New(http.StatusPreconditionFailed, outcome.CodeMultipleMatch, "", "%s match more than one resource", what)
}

func isResultParam(name string) bool {
	switch name {
	case "_format", "_pretty", "_summary", "_elements", "_count":
		return true
	}
	return false
}

// parseETag reads W/"n" (or "n", or n).
func parseETag(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

func etag(v uint64) string { return `W/"` + strconv.FormatUint(v, 10) + `"` }

// decodeStored decodes a stored resource (for bundles and shaping).
func decodeStored(b []byte) map[string]any {
	m, err := fhirjson.Decode(b)
	if err != nil {
		return nil
	}
	return m
}
