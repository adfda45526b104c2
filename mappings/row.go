package mappings

import (
	"fmt"
	"slices"

	"github.com/parcours-sante/parcours/server/outcome"
)

// Kind is the JSON kind of a field (CSV fields are all KindString).
type Kind uint8

// Field kinds.
const (
	KindString Kind = iota
	KindNumber
	KindBool
	KindNull
	KindObject
	KindArray
)

// Field is one value of a row.
type Field struct {
	Value  string // the text; numbers keep their literal, booleans are "true"/"false"
	Kind   Kind
	Column int
}

// Row is one data row (a CSV record or an NDJSON line). Its fields are
// named by column (CSV, flat NDJSON) or by JSON path (nested NDJSON:
// "consents.programme", "events[2].date"). Checks add issues to the row; a
// row with no issue is good.
type Row struct {
	Line   int
	fields map[string]Field
	// base is the column reported for a field the row does not have.
	base int
	// today is the last date a past event may have (YYYY-MM-DD).
	today string
	// broken fields already have a structural issue: checks skip them.
	broken map[string]bool
	Issues []outcome.Issue
}

// NewRow makes a row by hand (tests, or a mapper that reads its own format).
func NewRow(line int, today string, fields map[string]Field) *Row {
	return &Row{Line: line, fields: fields, today: today}
}

// reset makes r the next row of a reader (its fields map is kept, emptied).
func (r *Row) reset(line, base int, today string) {
	r.Line, r.base, r.today = line, base, today
	if r.fields == nil {
		r.fields = map[string]Field{}
	}
	clear(r.fields)
	r.broken = nil
	r.Issues = r.Issues[:0]
}

// OK reports whether the row has no issue.
func (r *Row) OK() bool { return len(r.Issues) == 0 }

// Has reports whether the row has the field (even empty).
func (r *Row) Has(name string) bool {
	_, ok := r.fields[name]
	return ok
}

// Field returns a field.
func (r *Row) Field(name string) (Field, bool) {
	f, ok := r.fields[name]
	return f, ok
}

// Text is the value of a field ("" when absent or null).
func (r *Row) Text(name string) string { return r.fields[name].Value }

// Kind is the JSON kind of a field (KindNull when absent).
func (r *Row) Kind(name string) Kind {
	f, ok := r.fields[name]
	if !ok {
		return KindNull
	}
	return f.Kind
}

// Column is the column of a field, or the row's base column when absent.
func (r *Row) Column(name string) int {
	if f, ok := r.fields[name]; ok {
		return f.Column
	}
	return r.base
}

// Names lists the row's field names, sorted.
func (r *Row) Names() []string {
	out := make([]string, 0, len(r.fields))
	for k := range r.fields {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Fail records an issue at a field. The diagnostics must not contain the
// field's value.
func (r *Row) Fail(name, code, format string, args ...any) {
	if r.broken[name] {
		return
	}
	r.Issues = append(r.Issues, outcome.Issue{
		Severity:    outcome.SeverityError,
		Code:        code,
		Diagnostics: fmt.Sprintf(format, args...),
		Expression:  []string{name},
		Line:        r.Line,
		Column:      r.Column(name),
	})
}

// failRow records an issue about the whole row.
func (r *Row) failRow(code, format string, args ...any) {
	r.Issues = append(r.Issues, outcome.Issue{
		Severity:    outcome.SeverityError,
		Code:        code,
		Diagnostics: fmt.Sprintf(format, args...),
		Line:        r.Line,
		Column:      0,
	})
}

// breakField records a structural issue at a field and silences the
// checks that would complain about the same value again.
func (r *Row) breakField(name, code, format string, args ...any) {
	r.Fail(name, code, format, args...)
	if r.broken == nil {
		r.broken = map[string]bool{}
	}
	r.broken[name] = true
}
