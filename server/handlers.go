package server

import (
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
	req, err := newRequest(c, http.MethodGet)
	if err != nil {
		return err
	}
	r, err := s.db.Read(req.typ, req.id)
	if err != nil {
		if r.Deleted() {
			setVersionHeaders(c, r)
		}
		return err
	}
	return s.respondRead(c, req, r)
}

func (s *Server) vreadHandler(c echo.Context) error {
	req, err := newRequest(c, http.MethodGet)
	if err != nil {
		return err
	}
	v, err := strconv.ParseUint(req.vid, 10, 64)
	if err != nil || v == 0 {
		return outcome.NotFound("no such version")
	}
	r, err := s.db.VRead(req.typ, req.id, v)
	if err != nil {
		if r.Deleted() {
			setVersionHeaders(c, r)
		}
		return err
	}
	return s.respondRead(c, req, r)
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
		if t, err := http.ParseTime(req.ifModifiedSince); err == nil {
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
	req, err := newRequest(c, http.MethodPost)
	if err != nil {
		return err
	}
	if req.body, err = s.readBody(c); err != nil {
		return err
	}
	if err := s.checkResource(req.body, req.typ, ""); err != nil {
		return err
	}
	req.newID = store.NewID()
	var res result
	err = s.db.Update(c.Request().Context(), func(tx *store.Tx) (err error) {
		res, err = s.create(tx, req)
		return err
	})
	if err != nil {
		return err
	}
	return s.respondWrite(c, req, res)
}

func (s *Server) updateHandler(c echo.Context) error {
	req, err := newRequest(c, http.MethodPut)
	if err != nil {
		return err
	}
	if req.id == "" {
		req.query = c.QueryParams()
		req.newID = store.NewID()
	}
	if req.body, err = s.readBody(c); err != nil {
		return err
	}
	if err := s.checkResource(req.body, req.typ, req.id); err != nil {
		return err
	}
	var res result
	err = s.db.Update(c.Request().Context(), func(tx *store.Tx) (err error) {
		res, err = s.update(tx, req)
		return err
	})
	if err != nil {
		return err
	}
	return s.respondWrite(c, req, res)
}

func (s *Server) deleteHandler(c echo.Context) error {
	req, err := newRequest(c, http.MethodDelete)
	if err != nil {
		return err
	}
	if req.id == "" {
		req.query = c.QueryParams()
	}
	var res result
	err = s.db.Update(c.Request().Context(), func(tx *store.Tx) (err error) {
		res, err = s.remove(tx, req)
		return err
	})
	if err != nil {
		return err
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
	switch preferReturn(c.Request().Header.Get("Prefer")) {
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
