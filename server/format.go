package server

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
)

const (
	mimeFHIRJSON = "application/fhir+json"
	ctFHIRJSON   = "application/fhir+json; charset=utf-8"
)

// negotiate checks Accept and _format: JSON is served, XML and anything
// else answer 406. It returns the content type to answer with.
func negotiate(r *http.Request) (string, error) {
	if strings.Contains(r.URL.RawQuery, "_format") {
		if f := r.URL.Query().Get("_format"); f != "" {
			return negotiateFormat(f)
		}
	}
	return negotiateAccept(r.Header.Get("Accept"))
}

func negotiateFormat(f string) (string, error) {
	switch strings.ToLower(f) {
	case "json", mimeFHIRJSON, "application/json", "application/json+fhir":
		return ctFHIRJSON, nil
	case "xml", "application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir":
		return "", outcome.New(http.StatusNotAcceptable, outcome.CodeNotSupported, "", "XML is not supported: this server speaks FHIR JSON only")
	default:
		return "", outcome.New(http.StatusNotAcceptable, outcome.CodeNotSupported, "", "unsupported _format: use json")
	}
}

func negotiateAccept(accept string) (string, error) {
	switch accept {
	case "", mimeFHIRJSON, "*/*":
		return ctFHIRJSON, nil
	}
	xml := false
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["q"] == "0" {
			continue
		}
		switch mt {
		case mimeFHIRJSON, "application/json+fhir", "*/*", "application/*":
			return ctFHIRJSON, nil
		case "application/json":
			return "application/json; charset=utf-8", nil
		case "application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir":
			xml = true
		}
	}
	if xml {
		return "", outcome.New(http.StatusNotAcceptable, outcome.CodeNotSupported, "", "XML is not supported: this server speaks FHIR JSON only")
	}
	return "", outcome.New(http.StatusNotAcceptable, outcome.CodeNotSupported, "", "no acceptable media type: this server answers application/fhir+json")
}

// readBody reads a JSON request body within the size limit and decodes it.
func (s *Server) readBody(c echo.Context) (map[string]any, error) {
	b, err := s.readRaw(c)
	if err != nil {
		return nil, err
	}
	return fhirjson.Decode(b)
}

func (s *Server) readRaw(c echo.Context) ([]byte, error) {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !isJSONType(mt) {
			return nil, outcome.New(http.StatusUnsupportedMediaType, outcome.CodeNotSupported, "", "unsupported Content-Type: send application/fhir+json")
		}
	}
	if r.ContentLength > s.cfg.MaxBody {
		return nil, tooLarge(s.cfg.MaxBody)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBody+1))
	if err != nil {
		return nil, outcome.New(http.StatusBadRequest, outcome.CodeStructure, "", "could not read the request body")
	}
	if int64(len(b)) > s.cfg.MaxBody {
		return nil, tooLarge(s.cfg.MaxBody)
	}
	return b, nil
}

func tooLarge(limit int64) error {
	return outcome.New(http.StatusRequestEntityTooLarge, outcome.CodeTooLong, "", "request body larger than %d bytes", limit)
}

func isJSONType(mt string) bool {
	switch mt {
	case mimeFHIRJSON, "application/json", "application/json+fhir":
		return true
	}
	return false
}

// writeJSON writes JSON bytes with the negotiated content type, indented
// when _pretty=true.
func writeJSON(c echo.Context, status int, b []byte) error {
	ct, _ := c.Get(ctxContentType).(string)
	if ct == "" {
		ct = ctFHIRJSON
	}
	if c.Request().URL.RawQuery != "" && c.QueryParam("_pretty") == "true" {
		b = fhirjson.Indent(b)
	}
	return c.Blob(status, ct, b)
}

// shape applies _summary and _elements to a stored resource for output. It
// returns the bytes unchanged when neither is asked (the fast path).
func shape(q map[string][]string, b []byte) ([]byte, error) {
	summary, elements := first(q, "_summary"), first(q, "_elements")
	if (summary == "" || summary == "false") && elements == "" {
		return b, nil
	}
	if err := checkShape(q); err != nil {
		return nil, err
	}
	res, err := fhirjson.Decode(b)
	if err != nil {
		return nil, err
	}
	if summary != "" && summary != "false" {
		res, _ = conformance.Summary(res, summary)
	}
	if elements != "" {
		res = conformance.Elements(res, strings.Split(elements, ","))
	}
	return fhirjson.Marshal(res), nil
}

// checkShape refuses a _summary that shape cannot apply to one resource:
// writes call it before they run, so that an answer refused for it is
// not one whose interaction happened.
func checkShape(q map[string][]string) error {
	switch first(q, "_summary") {
	case "", "true", "text", "data", "false":
		return nil
	}
	return outcome.Invalid("_summary", "unsupported _summary value: use true, text, data, false (count applies to searches)")
}

// checkQuery refuses a query string that does not parse whole: Go's
// parser drops a pair with a bad %-escape or a ';' and keeps the rest, so
// a criterion sent would silently not apply (a conditional delete would
// then remove more than asked).
func checkQuery(raw, expression string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, outcome.New(http.StatusBadRequest, outcome.CodeInvalid, expression,
			"malformed query string: every parameter must be name=value, separated by '&', with valid %%-escapes (%v)", err)
	}
	return q, nil
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}
