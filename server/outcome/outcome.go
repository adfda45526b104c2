// Package outcome is Parcours' one error vocabulary: an Error carries FHIR
// OperationOutcome issues (IssueType code, FHIRPath expression, line and
// column for native files) and the HTTP status it answers with.
//
// It is a leaf: every package that reports a client-visible problem (store,
// validation, mappings, policy) returns an *Error, and exactly one place in
// package server turns errors into HTTP responses. Any other error reaching
// that place is an internal failure and answers 500 without details.
package outcome

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Issue types used by Parcours (http://hl7.org/fhir/issue-type).
const (
	CodeInvalid       = "invalid"
	CodeStructure     = "structure"
	CodeRequired      = "required"
	CodeValue         = "value"
	CodeInvariant     = "invariant"
	CodeSecurity      = "security"
	CodeLogin         = "login"
	CodeForbidden     = "forbidden"
	CodeProcessing    = "processing"
	CodeNotSupported  = "not-supported"
	CodeDuplicate     = "duplicate"
	CodeMultipleMatch = "multiple-matches"
	CodeNotFound      = "not-found"
	CodeDeleted       = "deleted"
	CodeTooLong       = "too-long"
	CodeConflict      = "conflict"
	CodeException     = "exception"
	CodeTooCostly     = "too-costly"
	CodeInformational = "informational"
)

// Severities (http://hl7.org/fhir/issue-severity).
const (
	SeverityFatal       = "fatal"
	SeverityError       = "error"
	SeverityWarning     = "warning"
	SeverityInformation = "information"
)

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
	// Line and Column locate the issue in a native (CSV/NDJSON) file; they are
	// rendered as the standard operationoutcome-issue-line/col extensions.
	Line   int `json:"-"`
	Column int `json:"-"`
}

// Error is a client-visible failure: an HTTP status and at least one issue.
type Error struct {
	Status int
	Issues []Issue
}

func (e *Error) Error() string {
	parts := make([]string, 0, len(e.Issues))
	for _, is := range e.Issues {
		s := is.Code + ": " + is.Diagnostics
		if len(is.Expression) > 0 {
			s += " @ " + strings.Join(is.Expression, ",")
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("%d %s", e.Status, strings.Join(parts, "; "))
}

// New returns an Error with one issue of severity error.
func New(status int, code, expression, format string, args ...any) *Error {
	is := Issue{Severity: SeverityError, Code: code, Diagnostics: fmt.Sprintf(format, args...)}
	if expression != "" {
		is.Expression = []string{expression}
	}
	return &Error{Status: status, Issues: []Issue{is}}
}

// Invalid is a 400 with issue code invalid at the given FHIRPath expression.
func Invalid(expression, format string, args ...any) *Error {
	return New(http.StatusBadRequest, CodeInvalid, expression, format, args...)
}

// NotFound is a 404 with issue code not-found.
func NotFound(format string, args ...any) *Error {
	return New(http.StatusNotFound, CodeNotFound, "", format, args...)
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// StatusOf returns the HTTP status err answers with: the Error's status, or 500.
func StatusOf(err error) int {
	if e, ok := As(err); ok && e.Status != 0 {
		return e.Status
	}
	return http.StatusInternalServerError
}

// Resource renders issues as an OperationOutcome resource.
func Resource(issues []Issue) map[string]any {
	list := make([]any, 0, len(issues))
	for _, is := range issues {
		m := map[string]any{"severity": is.Severity, "code": is.Code}
		if is.Diagnostics != "" {
			m["diagnostics"] = is.Diagnostics
		}
		if len(is.Expression) > 0 {
			m["expression"] = is.Expression
		}
		var ext []any
		if is.Line > 0 {
			ext = append(ext, map[string]any{"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line", "valueInteger": is.Line})
		}
		if is.Column > 0 {
			ext = append(ext, map[string]any{"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col", "valueInteger": is.Column})
		}
		if ext != nil {
			m["extension"] = ext
		}
		list = append(list, m)
	}
	return map[string]any{"resourceType": "OperationOutcome", "issue": list}
}

// Info is an OperationOutcome with one informational issue (for
// Prefer: return=OperationOutcome and successful operations).
func Info(format string, args ...any) map[string]any {
	return Resource([]Issue{{Severity: SeverityInformation, Code: CodeInformational, Diagnostics: fmt.Sprintf(format, args...)}})
}

// JSON is the OperationOutcome of err as JSON bytes; errors that are not
// *Error are rendered as a generic exception without internal details.
func JSON(err error) []byte {
	var issues []Issue
	if e, ok := As(err); ok {
		issues = e.Issues
	} else {
		issues = []Issue{{Severity: SeverityFatal, Code: CodeException, Diagnostics: "internal error"}}
	}
	b, _ := json.Marshal(Resource(issues))
	return b
}
