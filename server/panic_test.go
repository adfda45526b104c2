package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/store"
)

// TestPanicAnswers500: a handler that panics (behind the public FHIR
// middleware, and behind authentication, after a decision was recorded)
// answers 500 with an OperationOutcome that says nothing of the panic, the
// decision's record is written with status 500, the log has the panic's
// type but not its value, and the hub goes on serving.
func TestPanicAnswers500(t *testing.T) {
	var logs bytes.Buffer
	h := newSecureHubWith(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	const secret = "Jeanne Martin, diabète de type 2"
	boom := func(c echo.Context) error { panic("mapping of " + secret + " failed") }
	h.s.echo.Add(http.MethodGet, "/fhir/zz-public-panic", boom, h.s.fhirHeaders)
	h.s.echo.Add(http.MethodGet, "/fhir/zz-panic", func(c echo.Context) error {
		var err error
		_ = h.s.db.View(func(tx *store.Tx) error {
			_, err = h.s.decide(c.Request().Context(), callerOf(c), tx, question{interaction: "search-type", typ: "Patient"})
			return nil
		})
		if err != nil {
			return err
		}
		return boom(c)
	}, h.s.fhirHeaders, h.s.authenticate)

	public := h.do(http.MethodGet, "/zz-public-panic", nil)
	authed := h.as("hospital-clinician", "TREAT", http.MethodGet, "/zz-panic", nil)
	for name, r := range map[string]reply{"public": public, "authenticated": authed} {
		if r.status != http.StatusInternalServerError || str(r.body, "resourceType") != "OperationOutcome" {
			t.Errorf("%s panic: %d %s, want 500 with an OperationOutcome", name, r.status, r.raw)
		}
		if strings.Contains(string(r.raw), "Jeanne") || strings.Contains(string(r.raw), "panic") {
			t.Errorf("%s panic: the answer tells what panicked: %s", name, r.raw)
		}
	}
	if strings.Contains(logs.String(), "Jeanne") || !strings.Contains(logs.String(), `"panic_type":"string"`) {
		t.Errorf("log: want the panic's type and not its value:\n%s", logs.String())
	}
	id := authed.header.Get("X-Decision-Id")
	if err := h.s.audit.Flush(); err != nil {
		t.Fatal(err)
	}
	var rec audit.Record
	var found bool
	h.s.db.View(func(tx *store.Tx) error { rec, found = audit.Find(tx, id); return nil })
	if !found || rec.Labels[audit.LabelHTTPStatus] != "500" {
		t.Errorf("the decision before the panic: record %v found, labels %v; want it with http_status 500", found, rec.Labels)
	}
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/metadata", nil); r.status != http.StatusOK {
		t.Errorf("after the panics: %d", r.status)
	}
}
