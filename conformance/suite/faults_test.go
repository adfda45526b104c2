package suite_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/conformance/suite"
)

// faulty is a fault-injecting proxy in front of a server: it lets the
// server answer, then rewrites the answer with fault before sending it.
type faulty struct {
	next  http.Handler
	fault func(r *http.Request, rec *httptest.ResponseRecorder)
}

func (f faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	f.next.ServeHTTP(rec, r)
	f.fault(r, rec)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(rec.Body.Len()))
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// notFoundAsOK turns a 404 into 200 with a made-up resource: the one the
// request named (Type/id[/_history/vid]), as a server that invents what it
// does not hold would.
func notFoundAsOK(r *http.Request, rec *httptest.ResponseRecorder) {
	if rec.Code != http.StatusNotFound {
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/fhir/"), "/")
	typ, id, vid := parts[0], "made-up", "1"
	if len(parts) >= 2 {
		id = parts[1]
	}
	if len(parts) == 4 && parts[2] == "_history" {
		vid = parts[3]
	}
	rec.Code = http.StatusOK
	rec.Header().Set("Content-Type", "application/fhir+json")
	rec.Header().Set("ETag", `W/"`+vid+`"`)
	rec.Body.Reset()
	fmt.Fprintf(rec.Body, `{"resourceType":%q,"id":%q,"meta":{"versionId":%q}}`, typ, id, vid)
}

// plainErrors answers every 4xx with the text/plain body "error" instead
// of the server's OperationOutcome.
func plainErrors(_ *http.Request, rec *httptest.ResponseRecorder) {
	if rec.Code/100 != 4 {
		return
	}
	rec.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rec.Body.Reset()
	rec.Body.WriteString("error")
}

// failed is the sorted "group/check" of the failed rows of a report.
func failed(rep suite.Report) []string {
	var out []string
	for _, res := range rep.Results {
		if res.Status() == "FAIL" {
			out = append(out, res.Group+"/"+res.Name)
		}
	}
	slices.Sort(out)
	return out
}

// TestNotFoundAnsweredOK runs the suite against the hub behind a proxy
// that answers 200 with a made-up resource instead of 404: the reads of a
// never-created id and of a version beyond the current fail (and the
// unknown resource type, the other 404 of the run); every other check
// passes, as it did before those two rows existed.
func TestNotFoundAnsweredOK(t *testing.T) {
	cfg := serve(t, faulty{next: hub(t), fault: notFoundAsOK})
	rep, err := suite.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.Table())
	for _, row := range []struct{ group, name, detail string }{
		{"crud", "read unknown id: 404", "GET Patient/{never-created id}: got 200 Patient, want 404"},
		{"history", "vread unknown version: 404", "(current version 3): got 200 Patient, want 404"},
	} {
		res := result(t, rep, row.group, row.name)
		if res.Status() != "FAIL" || !strings.Contains(res.Detail, row.detail) {
			t.Errorf("%s/%s: %s %q, want FAIL with %q", row.group, row.name, res.Status(), res.Detail, row.detail)
		}
	}
	want := []string{"crud/read unknown id: 404", "errors/unknown resource type: 4xx OperationOutcome", "history/vread unknown version: 404"}
	if got := failed(rep); !slices.Equal(got, want) {
		t.Errorf("failed rows %q, want %q", got, want)
	}
}

// errorRows are the checks that expect an error status from the server:
// each must see an OperationOutcome in its body.
var errorRows = []string{
	"bundles/transaction is all or nothing",
	"conditional/create If-None-Exist, two matches: 412",
	"conditional/delete by criteria, one match", // reads the deleted Patient: 410/404
	"conditional/delete by criteria, two matches: 412",
	"conditional/update by criteria, two matches: 412",
	"crud/read after delete",
	"crud/read unknown id: 404",
	"errors/XML Accept: 406 or XML",
	"errors/invalid resource: 400/422 OperationOutcome",
	"errors/malformed JSON: 400",
	"errors/malformed id: 400/404",
	"errors/unknown resource type: 4xx OperationOutcome",
	"errors/update, body id differs from URL: 400",
	"errors/wrong Content-Type: 415 (or 400)",
	"etag/If-Match stale version: 412",
	"history/vread unknown version: 404",
}

// plainErrorDetail is the failure of a row whose error answer is the
// text/plain "error": the status, and that the body is no OperationOutcome.
var plainErrorDetail = regexp.MustCompile(`answered 4\d\d, but the body is not an OperationOutcome \(text/plain; charset=utf-8 "error"\)`)

// TestErrorsWithoutOutcome runs the suite against the hub behind a proxy
// that replaces the body of every 4xx with text/plain "error" (behind the
// declaring peer of TestDeclaredChecks, so that the etag checks run too):
// every row expecting an error status fails and says why; every other row
// passes.
func TestErrorsWithoutOutcome(t *testing.T) {
	cfg := serve(t, faulty{next: &declaring{t: t, search: true, hub: hub(t)}, fault: plainErrors})
	rep, err := suite.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.Table())
	for _, res := range rep.Results {
		row := res.Group + "/" + res.Name
		switch {
		case slices.Contains(errorRows, row):
			if res.Status() != "FAIL" || !plainErrorDetail.MatchString(res.Detail) {
				t.Errorf("%s: %s %q, want FAIL matching %q", row, res.Status(), res.Detail, plainErrorDetail)
			}
		case res.Group == "validity":
			if !res.Skipped {
				t.Errorf("%s without a validator: %s %q, want SKIP", row, res.Status(), res.Detail)
			}
		case !res.Pass:
			t.Errorf("%s: %s %q, want PASS (it expects no error status)", row, res.Status(), res.Detail)
		}
	}
	for _, row := range errorRows {
		group, name, _ := strings.Cut(row, "/")
		result(t, rep, group, name)
	}
}
