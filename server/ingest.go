package server

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/mappings"
	_ "github.com/parcours-sante/parcours/mappings/all" // the four native formats
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/store"
)

// ingest answers POST /fhir/$ingest?source=NAME[&mode=partial]: a native
// file (text/csv or application/x-ndjson) is mapped to a FHIR transaction
// bundle (patients linked on their INS) and stored through the same path
// as any transaction — validated, decided entry by entry, all or nothing.
// The answer is an OperationOutcome with the counts and every issue.
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
	if r.ContentLength > s.cfg.MaxBody {
		return tooLarge(s.cfg.MaxBody)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBody+1))
	if err != nil {
		return outcome.New(http.StatusBadRequest, outcome.CodeStructure, "", "could not read the request body")
	}
	if int64(len(body)) > s.cfg.MaxBody {
		return tooLarge(s.cfg.MaxBody)
	}
	cl := callerOf(c)
	opt := mappings.Options{Partial: partial, Now: time.Now().UTC()}
	if cl != nil {
		opt.Actor, opt.Org = cl.claims.ActorType, cl.claims.Org
		err := s.db.View(func(tx *store.Tx) error {
			_, err := s.decide(r.Context(), cl, tx, question{interaction: "operation", operation: "$ingest", ingestSource: source})
			return err
		})
		if err != nil {
			return err
		}
	}
	res, err := s.mapNative(r.Context(), m, source, bytes.NewReader(body), opt)
	if err != nil {
		return outcome.New(http.StatusBadRequest, outcome.CodeStructure, "", "could not read the file")
	}
	if err := res.Err(); err != nil {
		return err
	}
	_, entries, err := s.processBundle(c, res.Bundle, source)
	if err != nil {
		return err
	}
	stored := 0
	for _, e := range entries {
		if e.err == nil && e.res.created {
			stored++
		}
	}
	summary := outcome.Issue{Severity: outcome.SeverityInformation, Code: outcome.CodeInformational,
		Diagnostics: fmt.Sprintf("source %s: %d rows read, %d stored, %d with issues; %d resources created, %d matched existing ones",
			source, res.Rows, res.Good, res.Rows-res.Good, stored, len(entries)-stored)}
	issues := append([]outcome.Issue{summary}, res.Issues...)
	for i := range issues[1:] {
		issues[i+1].Severity = outcome.SeverityWarning // partial mode: the row was skipped
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(outcome.Resource(issues)))
}
