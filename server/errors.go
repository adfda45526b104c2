package server

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/server/outcome"
)

// errorHandler is the one place where errors become HTTP responses: an
// OperationOutcome with the status of the *outcome.Error, or a 500 that says
// nothing about internals (and is logged, without request content).
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		err = fromEcho(he)
	}
	status := outcome.StatusOf(err)
	if status == http.StatusInternalServerError {
		s.log.ErrorContext(c.Request().Context(), "internal error", "method", c.Request().Method, "route", c.Path(), "error", err.Error())
	}
	if status == http.StatusNotModified {
		c.NoContent(status)
		return
	}
	if status == http.StatusMethodNotAllowed {
		// What the route serves (RFC 9110 §15.5.6), not the methods it
		// answers with a 405 of ours (PATCH, OPTIONS…), which echo's own
		// header listed.
		if m := s.allowed(c.Request().URL.Path); len(m) > 0 {
			c.Response().Header().Set("Allow", strings.Join(m, ", "))
		} else {
			c.Response().Header().Del("Allow")
		}
	}
	writeJSON(c, status, outcome.JSON(err))
}

// recoverPanics turns a panic in the handlers after it into an error
// (answered 500 with a bare OperationOutcome by errorHandler): the client
// gets an answer instead of a reset connection, and the hub goes on. The
// log has the panic's type and the stack, not its value, which may hold
// request content. http.ErrAbortHandler keeps its meaning.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(c.Request().Context(), "handler panicked", "method", c.Request().Method, "route", c.Path(),
				"panic_type", fmt.Sprintf("%T", p), "stack", string(debug.Stack()))
			err = errPanic
		}()
		return next(c)
	}
}

// errPanic is what a panicking handler returns (an internal error).
var errPanic = errors.New("handler panicked")

// fromEcho maps the router's own errors (no route, wrong method, body too
// large) to OperationOutcome errors.
func fromEcho(he *echo.HTTPError) error {
	switch he.Code {
	case http.StatusNotFound:
		return outcome.New(http.StatusNotFound, outcome.CodeNotSupported, "", "unknown endpoint")
	case http.StatusMethodNotAllowed:
		return outcome.New(http.StatusMethodNotAllowed, outcome.CodeNotSupported, "", "method not allowed on this endpoint")
	case http.StatusRequestEntityTooLarge:
		return outcome.New(http.StatusRequestEntityTooLarge, outcome.CodeTooLong, "", "request body too large")
	case http.StatusUnsupportedMediaType:
		return outcome.New(http.StatusUnsupportedMediaType, outcome.CodeNotSupported, "", "unsupported media type")
	}
	if he.Code >= 400 && he.Code < 500 {
		return outcome.New(he.Code, outcome.CodeProcessing, "", "%s", http.StatusText(he.Code))
	}
	return errors.New("router error")
}

// allowed lists the methods the route matching path serves, asking the
// router for each.
func (s *Server) allowed(path string) []string {
	var out []string
	c := s.echo.NewContext(nil, nil)
	for _, m := range []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut} {
		s.echo.Router().Find(m, path, c)
		if !slices.Contains(s.allow[c.Path()], m) {
			continue
		}
		// A route of /:type that the path's segment is no type of (PUT
		// /fhir/metadata reaches /fhir/:type, and answers 404).
		if typ := c.Param("type"); typ != "" && checkType(typ) != nil {
			continue
		}
		out = append(out, m)
	}
	return out
}
