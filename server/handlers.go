package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/store"
)

func (s *Server) metadata(c echo.Context) error {
	return writeJSON(c, http.StatusOK, s.capJSON)
}

// newRequest reads the parts of an HTTP request common to all interactions.
func newRequest(c echo.Context, method string) (*request, error) {
	h := c.Request().Header
	req := &request{
		method:          method,
		typ:             c.Param("type"),
		id:              c.Param("id"),
		vid:             c.Param("vid"),
		ifMatch:         h.Get("If-Match"),
		ifNoneMatch:     h.Get("If-None-Match"),
		ifNoneExist:     h.Get("If-None-Exist"),
		ifModifiedSince: h.Get("If-Modified-Since"),
	}
	if err := checkType(req.typ); err != nil {
		return nil, err
	}
	if req.id != "" {
		if err := checkID(req.id); err != nil {
			return nil, err
		}
	}
	return req, nil
}

func (s *Server) readHandler(c echo.Context) error {
	return s.readVersion(c, 0)
}

func (s *Server) vreadHandler(c echo.Context) error {
	v, err := strconv.ParseUint(c.Param("vid"), 10, 64)
	if err != nil || v == 0 {
		v = ^uint64(0) // no such version, decided like any other miss
	}
	return s.readVersion(c, v)
}

// readVersion answers read (version 0) and vread.
func (s *Server) readVersion(c echo.Context, version uint64) error {
	req, err := newRequest(c, http.MethodGet)
	if err != nil {
		return err
	}
	req.caller = callerOf(c)
	var r store.Resource
	err = s.view(c.Request().Context(), func(tx *store.Tx) error {
		r, err = s.readResource(c.Request().Context(), req.caller, tx, req.typ, req.id, version)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrGone) && r.Version != 0 {
			setVersionHeaders(c, r)
		}
		return err
	}
	return s.respondRead(c, req, r)
}

// readResource reads typ/id at version (0: the current one) for cl, as a
// read or a batch's GET entry does: id may be a pseudonym cl was shown
// (resolvePseudonym), the policy decides on the resource, and its
// obligations transform what is returned. A missing or deleted resource is
// decided at request level, so that a caller who may not read the type
// learns nothing from 404 or 410; and 410 or a vread's 404 tell that the
// resource exists (and when it was deleted), so only a caller who may read
// it learns that: that decision is on its last content (a deletion's
// deleted version), as history decides each version. On ErrGone the
// deletion is returned, for its version headers.
func (s *Server) readResource(ctx context.Context, cl *caller, tx *store.Tx, typ, id string, version uint64) (store.Resource, error) {
	interaction := "read"
	if version != 0 {
		interaction = "vread"
	}
	id, shownIn := s.resolvePseudonym(tx, typ, id)
	var r store.Resource
	var err error
	if version == 0 {
		r, err = tx.Get(typ, id)
	} else {
		r, err = tx.Version(typ, id, version)
	}
	if err == nil && r.Deleted() {
		err = store.ErrGone
	}
	if err != nil {
		basis, ok := lastContent(tx, typ, id)
		if !ok {
			if _, derr := s.decide(ctx, cl, tx, question{interaction: interaction, typ: typ}); derr != nil {
				return store.Resource{}, derr
			}
			return store.Resource{}, err
		}
		d, derr := s.decideOn(ctx, cl, tx, interaction, basis)
		if derr = asNamed(d, derr, shownIn); derr != nil {
			return store.Resource{}, derr
		}
		if d.Has("pseudonymise") {
			r.LastUpdated = monthStart(r.LastUpdated)
		}
		return r, err
	}
	decideVersion := s.decideVersion
	if version == 0 {
		decideVersion = s.decideCurrent // r is the current version: no second lookup
	}
	d, err := decideVersion(ctx, cl, tx, interaction, r)
	if err = asNamed(d, err, shownIn); err != nil {
		return store.Resource{}, err
	}
	if r.JSON, err = s.obligations(ctx, tx, d, r.JSON); err != nil {
		return store.Resource{}, err
	}
	if p, ok := d.Obligation("pseudonymise"); ok {
		r.LastUpdated = monthStart(r.LastUpdated)                  // Last-Modified, like the content's dates
		r.ID = s.shownID(tx, pseudoDomain(p.Domain), r.Type, r.ID) // a batch entry's fullUrl and location
	}
	return r, nil
}

// shownID is the id a pseudonymised caller of domain sees for typ/id.
func (s *Server) shownID(tx *store.Tx, domain, typ, id string) string {
	if typ == "Patient" {
		return s.patientPseudonym(tx, domain, "Patient/"+id)
	}
	return s.resourcePseudonym(domain, typ+"/"+id)
}

// lastContent is the latest version of typ/id that has content: the
// current one, or the one a deletion deleted (false if it never existed).
func lastContent(tx *store.Tx, typ, id string) (store.Resource, bool) {
	r, err := tx.Get(typ, id)
	if err != nil {
		return store.Resource{}, false
	}
	if !r.Deleted() {
		return r, true
	}
	if r.Version < 2 {
		return store.Resource{}, false
	}
	prev, err := tx.Version(typ, id, r.Version-1)
	return prev, err == nil
}

// respondRead answers a read or vread, honouring If-None-Match,
// If-Modified-Since, _summary and _elements.
func (s *Server) respondRead(c echo.Context, req *request, r store.Resource) error {
	setVersionHeaders(c, r)
	if notModified(req, r) {
		return c.NoContent(http.StatusNotModified)
	}
	b := r.JSON
	if c.Request().URL.RawQuery != "" {
		var err error
		if b, err = shape(c.QueryParams(), r.JSON); err != nil {
			return err
		}
	}
	return writeJSON(c, http.StatusOK, b)
}

func notModified(req *request, r store.Resource) bool {
	if req.ifNoneMatch != "" {
		for _, t := range strings.Split(req.ifNoneMatch, ",") {
			if v, ok := parseETag(t); ok && v == r.Version {
				return true
			}
		}
		return false // If-None-Match takes precedence over If-Modified-Since
	}
	if req.ifModifiedSince != "" {
		// An HTTP date in a header, a FHIR instant in a bundle entry.
		t, err := http.ParseTime(req.ifModifiedSince)
		if err != nil {
			t, err = time.Parse(time.RFC3339Nano, req.ifModifiedSince)
		}
		if err == nil {
			return !r.LastUpdated.Truncate(time.Second).After(t)
		}
	}
	return false
}

func setVersionHeaders(c echo.Context, r store.Resource) {
	h := c.Response().Header()
	h["Etag"] = []string{etag(r.Version)}
	h["Last-Modified"] = []string{r.LastUpdated.UTC().Format(http.TimeFormat)}
}

func (s *Server) createHandler(c echo.Context) error {
	return s.write(c, http.MethodPost)
}

func (s *Server) updateHandler(c echo.Context) error {
	return s.write(c, http.MethodPut)
}

func (s *Server) deleteHandler(c echo.Context) error {
	return s.write(c, http.MethodDelete)
}

// write runs create, update and delete: read and validate the body, decide
// on a snapshot, then run the interaction in a group-committed transaction
// that checks the snapshot still holds.
func (s *Server) write(c echo.Context, method string) error {
	req, err := newRequest(c, method)
	if err != nil {
		return err
	}
	if err := checkShape(c.QueryParams()); err != nil {
		return err
	}
	req.caller = callerOf(c)
	switch {
	case method == http.MethodPost:
		req.newID = store.NewID()
	case req.id == "":
		req.query = c.QueryParams()
		req.newID = store.NewID()
	}
	if method != http.MethodDelete {
		if req.body, err = s.readBody(c); err != nil {
			return err
		}
		id := req.id
		if method == http.MethodPost {
			id = ""
		}
		if err := s.checkResource(req.body, req.typ, id); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	if err := s.view(ctx, func(tx *store.Tx) error { return s.authorizeWrite(ctx, tx, req) }); err != nil {
		return err
	}
	var res result
	if method == http.MethodPost && req.ifNoneExist == "" {
		// A plain create is encoded and indexed here, by its own request,
		// not in the write function that every writer waits for.
		early := s.db.PrepareCreate(req.typ, req.newID, req.body)
		err = s.commit(ctx, func(tx *store.Tx) (err error) {
			res, err = s.createPrepared(tx, req, early)
			return err
		})
	} else {
		err = s.commit(ctx, func(tx *store.Tx) (err error) {
			res, err = s.execute(tx, req)
			return err
		})
	}
	if err != nil {
		return err
	}
	if res.created {
		s.noteCreated(req.caller, res.version.Type, res.version.ID)
	}
	return s.respondWrite(c, req, res)
}

// respondWrite answers a create, update or delete per Prefer: return=.
func (s *Server) respondWrite(c echo.Context, req *request, res result) error {
	if res.version.Version != 0 {
		setVersionHeaders(c, res.version)
	}
	if res.version.Version != 0 && res.version.Op != store.OpDelete {
		c.Response().Header().Set("Location", s.base(c)+"/"+res.version.Type+"/"+res.version.ID+"/_history/"+strconv.FormatUint(res.version.Version, 10))
	}
	prefer := preferReturn(c.Request().Header.Get("Prefer"))
	if req.decision.Has("omit-content") && prefer != "minimal" {
		// The writer may not read clinical content back.
		prefer = "OperationOutcome"
	}
	switch prefer {
	case "minimal":
		if req.method == http.MethodDelete {
			return c.NoContent(http.StatusNoContent)
		}
		return c.NoContent(res.status)
	case "OperationOutcome":
		return writeJSON(c, res.status, fhirjson.Marshal(outcome.Info("%s", res.info)))
	}
	if res.body == nil {
		return writeJSON(c, res.status, fhirjson.Marshal(outcome.Info("%s", res.info)))
	}
	b, err := shape(c.QueryParams(), res.body)
	if err != nil {
		return err
	}
	return writeJSON(c, res.status, b)
}

// preferReturn reads the return preference of a Prefer header.
func preferReturn(h string) string {
	for _, part := range strings.Split(h, ",") {
		for _, kv := range strings.Split(part, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			if strings.EqualFold(k, "return") {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}
