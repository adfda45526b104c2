package mappings

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parcours-sante/parcours/server/outcome"
)

// table reads the rows of a file. With columns, the file is a CSV with that
// header (or flat NDJSON with those keys); without, it is NDJSON whose
// nested objects and arrays are flattened to paths. fn is called for every
// row that could be split into fields (fields with a structural problem
// carry their issue already, and further checks skip them); the issues of
// lines that could not be split, and of the header, are returned, with the
// number of data rows seen.
func table(data []byte, columns []string, today string, fn func(*Row)) (rows int, issues []outcome.Issue) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if columns != nil && !looksLikeNDJSON(data) {
		return readCSV(data, columns, today, fn)
	}
	return readNDJSON(data, columns, today, fn)
}

func looksLikeNDJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func fileIssue(line, col int, code, expr, format string, args ...any) outcome.Issue {
	is := outcome.Issue{Severity: outcome.SeverityError, Code: code, Diagnostics: fmt.Sprintf(format, args...), Line: line, Column: col}
	if expr != "" {
		is.Expression = []string{expr}
	}
	return is
}

func readCSV(data []byte, columns []string, today string, fn func(*Row)) (rows int, issues []outcome.Issue) {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = ';'
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return 0, []outcome.Issue{fileIssue(1, 0, outcome.CodeRequired, "", "the file is empty: a header row is expected")}
	}
	if err != nil {
		return 0, []outcome.Issue{csvIssue(err, 1)}
	}
	want := map[string]bool{}
	for _, c := range columns {
		want[c] = true
	}
	pos := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch {
		case !want[h]:
			issues = append(issues, fileIssue(1, i+1, outcome.CodeStructure, "", "unknown column %d in the header (expected: %s)", i+1, strings.Join(columns, ";")))
		case pos[h] != 0:
			issues = append(issues, fileIssue(1, i+1, outcome.CodeStructure, h, "column %s appears twice in the header", h))
		default:
			pos[h] = i + 1
		}
	}
	for _, c := range columns {
		if pos[c] == 0 {
			issues = append(issues, fileIssue(1, 0, outcome.CodeRequired, c, "the header has no column %s", c))
		}
	}
	if len(issues) > 0 {
		return 0, issues
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			rows++
			issues = append(issues, csvIssue(err, line))
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		rows++
		r := &Row{Line: line, fields: make(map[string]Field, len(header)), today: today}
		if len(rec) != len(header) {
			r.failRow(outcome.CodeStructure, "the row has %d fields, the header %d", len(rec), len(header))
			issues = append(issues, r.Issues...)
			continue
		}
		for i, v := range rec {
			v = strings.TrimSpace(v)
			r.fields[header[i]] = Field{Value: v, Kind: KindString, Column: i + 1}
			checkText(r, header[i], v)
		}
		fn(r) // the row's checks run even after a structural issue, for a complete report
	}
	return rows, issues
}

// checkText rejects values FHIR strings cannot hold: invalid UTF-8 and
// control characters.
func checkText(r *Row, name, v string) {
	if !utf8.ValidString(v) {
		r.breakField(name, outcome.CodeStructure, "%s is not valid UTF-8", name)
		return
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		r.breakField(name, outcome.CodeStructure, "%s contains a control character", name)
	}
}

func csvIssue(err error, line int) outcome.Issue {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		// csv errors name the problem (bare quote…), never the value.
		return fileIssue(pe.Line, 0, outcome.CodeStructure, "", "malformed CSV: %v", pe.Err)
	}
	return fileIssue(line, 0, outcome.CodeStructure, "", "malformed CSV")
}

func readNDJSON(data []byte, columns []string, today string, fn func(*Row)) (rows int, issues []outcome.Issue) {
	var allowed map[string]bool
	if columns != nil {
		allowed = map[string]bool{}
		for _, c := range columns {
			allowed[c] = true
		}
	}
	line := 0
	for len(data) > 0 {
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		line++
		raw = bytes.TrimRight(raw, "\r")
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		rows++
		r := &Row{Line: line, base: 1, today: today}
		if !utf8.Valid(raw) {
			r.failRow(outcome.CodeStructure, "the line is not valid UTF-8")
			issues = append(issues, r.Issues...)
			continue
		}
		fields, col, err := flatten(raw, columns == nil)
		if err != nil {
			r.Issues = append(r.Issues, fileIssue(line, col, outcome.CodeStructure, "", "%s", err))
			issues = append(issues, r.Issues...)
			continue
		}
		r.fields = fields
		for _, name := range r.Names() {
			f := fields[name]
			if allowed != nil && !allowed[name] {
				r.breakField(name, outcome.CodeStructure, "unknown field %s (expected: %s)", name, strings.Join(columns, ", "))
				continue
			}
			if f.Kind == KindString {
				checkText(r, name, f.Value)
			}
		}
		fn(r) // the row's checks run even after a structural issue, for a complete report
	}
	return rows, issues
}

// flatten decodes one NDJSON line into fields named by path, each with the
// character column where its value starts. nested=false rejects objects
// and arrays below the top level. The error column is 0 or the position of
// the problem.
func flatten(line []byte, nested bool) (map[string]Field, int, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	out := map[string]Field{}
	column := func(off int64) int {
		// skip the separators before the value
		for off < int64(len(line)) && strings.IndexByte(" \t\r\n:,", line[off]) >= 0 {
			off++
		}
		return utf8.RuneCount(line[:off]) + 1
	}
	var walk func(path string, depth int) error
	walk = func(path string, depth int) error {
		col := column(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			if depth > maxDepth {
				return &posError{col, "the JSON nests too deep"}
			}
			if depth > 0 && !nested {
				return &posError{col, fmt.Sprintf("field %s must be a string, number, boolean or null", path)}
			}
			if t == '{' {
				if path != "" {
					out[path] = Field{Kind: KindObject, Column: col}
				}
				for dec.More() {
					kcol := column(dec.InputOffset())
					ktok, err := dec.Token()
					if err != nil {
						return err
					}
					key, _ := ktok.(string)
					if key == "" || strings.ContainsAny(key, ".[]") {
						return &posError{kcol, "a key is empty or contains '.', '[' or ']'"}
					}
					p := key
					if path != "" {
						p = path + "." + key
					}
					if _, dup := out[p]; dup {
						return &posError{kcol, "key " + p + " appears twice"}
					}
					if err := walk(p, depth+1); err != nil {
						return err
					}
				}
			} else {
				out[path] = Field{Kind: KindArray, Column: col}
				for i := 0; dec.More(); i++ {
					if err := walk(path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
						return err
					}
				}
			}
			_, err := dec.Token() // the closing delimiter
			return err
		case string:
			out[path] = Field{Value: t, Kind: KindString, Column: col}
		case json.Number:
			out[path] = Field{Value: t.String(), Kind: KindNumber, Column: col}
		case bool:
			out[path] = Field{Value: strconv.FormatBool(t), Kind: KindBool, Column: col}
		case nil:
			out[path] = Field{Kind: KindNull, Column: col}
		}
		return nil
	}
	if t := bytes.TrimLeft(line, " \t"); len(t) == 0 || t[0] != '{' {
		return nil, 1, errors.New("the line must be a JSON object")
	}
	if err := walk("", 0); err != nil {
		var pe *posError
		if errors.As(err, &pe) {
			return nil, pe.col, errors.New(pe.msg)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			// The decoder's message may quote a character of the line: not repeated.
			return nil, utf8.RuneCount(line[:min(int(se.Offset), len(line))]) + 1, errors.New("malformed JSON")
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, utf8.RuneCount(line) + 1, errors.New("malformed JSON: unexpected end of line")
		}
		return nil, 0, errors.New("malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, column(dec.InputOffset()), errors.New("malformed JSON: more than one value on the line")
	}
	return out, 0, nil
}

// maxDepth bounds the nesting of an NDJSON line (the formats need 3).
const maxDepth = 16

type posError struct {
	col int
	msg string
}

func (e *posError) Error() string { return e.msg }
