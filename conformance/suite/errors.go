package suite

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

type errorChecks struct{ *runner }

func (r *runner) errorChecks() []check {
	s := errorChecks{r}
	return []check{
		{"unknown resource type: 4xx OperationOutcome", s.unknownType},
		{"invalid resource: 400/422 OperationOutcome", s.invalid},
		{"malformed JSON: 400", s.malformed},
		{"wrong Content-Type: 415 (or 400)", s.contentType},
		{"XML Accept: 406 or XML", s.xml},
		{"malformed id: 400/404", s.badID},
		{"update, body id differs from URL: 400", s.idMismatch},
	}
}

// refused wants a 4xx among codes with an OperationOutcome; a 2xx is also a
// resource to clean up.
func (s errorChecks) refused(x *response, typ, what string, codes ...int) error {
	if x.status/100 == 2 {
		s.track(typ, writtenBy(typ, x).id)
	}
	return x.wantOutcome(what, codes...)
}

func (s errorChecks) unknownType(ctx context.Context) (string, error) {
	x, err := s.do(ctx, http.MethodGet, "NotAResourceType", nil)
	if err != nil {
		return "", err
	}
	if x.status/100 != 4 {
		return "", fmt.Errorf("GET NotAResourceType: got %s, want 4xx with an OperationOutcome", x.brief())
	}
	return x.brief(), x.outcome("GET NotAResourceType")
}

func (s errorChecks) invalid(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "create"); err != nil {
		return "", err
	}
	res := with(s.patient("invalid", "Invalid"), "birthDate", badDate)
	x, err := s.do(ctx, http.MethodPost, "Patient", res)
	if err != nil {
		return "", err
	}
	err = s.refused(x, "Patient", "POST Patient with birthDate "+badDate, http.StatusBadRequest, http.StatusUnprocessableEntity)
	return x.brief(), err
}

func (s errorChecks) malformed(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "create"); err != nil {
		return "", err
	}
	x, err := s.do(ctx, http.MethodPost, "Patient", `{"resourceType":"Patient","name":[{"family":"Broken"`)
	if err != nil {
		return "", err
	}
	err = s.refused(x, "Patient", "POST Patient with truncated JSON", http.StatusBadRequest)
	return x.brief(), err
}

func (s errorChecks) contentType(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "create"); err != nil {
		return "", err
	}
	x, err := s.do(ctx, http.MethodPost, "Patient", s.patient("content-type", "ContentType"), "Content-Type", "text/plain")
	if err != nil {
		return "", err
	}
	err = s.refused(x, "Patient", "POST Patient as text/plain", http.StatusUnsupportedMediaType, http.StatusBadRequest)
	return x.brief(), err
}

func (s errorChecks) xml(ctx context.Context) (string, error) {
	x, err := s.do(ctx, http.MethodGet, "metadata", nil, "Accept", "application/fhir+xml")
	if err != nil {
		return "", err
	}
	ct := x.header.Get("Content-Type")
	if x.status == http.StatusOK && strings.Contains(ct, "xml") {
		return "200 " + ct, nil
	}
	if x.status != http.StatusNotAcceptable {
		return "", fmt.Errorf("GET metadata, Accept: application/fhir+xml: got %s (Content-Type %q), want 406 or XML", x.brief(), ct)
	}
	// The server speaks no XML: its OperationOutcome comes in JSON.
	return x.brief(), x.outcome("GET metadata, Accept: application/fhir+xml")
}

func (s errorChecks) badID(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "read"); err != nil {
		return "", err
	}
	x, err := s.do(ctx, http.MethodGet, "Patient/bad_id_"+s.runID+"!", nil)
	if err != nil {
		return "", err
	}
	return x.brief(), x.wantOutcome("GET Patient/bad_id_…!", http.StatusBadRequest, http.StatusNotFound)
}

func (s errorChecks) idMismatch(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "update"); err != nil {
		return "", err
	}
	urlID, bodyID := "cnf-"+s.runID+"-url", "cnf-"+s.runID+"-body"
	x, err := s.do(ctx, http.MethodPut, "Patient/"+urlID, with(s.patient("mismatch", "Mismatch"), "id", bodyID))
	if err != nil {
		return "", err
	}
	if x.status/100 == 2 {
		s.track("Patient", urlID)
		s.track("Patient", bodyID)
	}
	return x.brief(), x.wantOutcome("PUT Patient/"+urlID+" with body id "+bodyID, http.StatusBadRequest)
}
