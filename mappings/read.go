package mappings

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parcours-sante/parcours/server/outcome"
)

// table reads the rows of a file as a stream. With columns, the file is a
// CSV with that header (or flat NDJSON with those keys); without, it is
// NDJSON whose nested objects and arrays are flattened to paths. fn is
// called for every row that could be split into fields (fields with a
// structural problem carry their issue already, and further checks skip
// them); the issues of lines that could not be split, and of the header,
// are returned, with the number of data rows seen. The Row given to fn is
// reused for the next row: fn must not keep it. err is a read error of in
// (the content's problems are issues).
func table(in io.Reader, columns []string, today string, fn func(*Row)) (rows int, issues []outcome.Issue, err error) {
	br := bufio.NewReaderSize(in, 64<<10)
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\uFEFF")) {
		_, _ = br.Discard(3)
	}
	ndjson, err := looksLikeNDJSON(br)
	if err != nil {
		return 0, nil, err
	}
	if columns != nil && !ndjson {
		return readCSV(br, columns, today, fn)
	}
	return readNDJSON(br, columns, today, fn)
}

// looksLikeNDJSON reports whether the first character after white space is
// '{' (looking at most a buffer ahead).
func looksLikeNDJSON(br *bufio.Reader) (bool, error) {
	for n := 1; n <= br.Size(); n *= 2 {
		b, err := br.Peek(n)
		if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 {
			return t[0] == '{', nil
		}
		if err != nil {
			if err == io.EOF || err == bufio.ErrBufferFull {
				return false, nil
			}
			return false, err
		}
	}
	return false, nil
}

func fileIssue(line, col int, code, expr, format string, args ...any) outcome.Issue {
	is := outcome.Issue{Severity: outcome.SeverityError, Code: code, Diagnostics: fmt.Sprintf(format, args...), Line: line, Column: col}
	if expr != "" {
		is.Expression = []string{expr}
	}
	return is
}

// readError is a failure to read the input (not a problem of its content).
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// source wraps the input so that read errors stand out from the csv
// package's syntax errors, and bounds a CSV row: the csv package holds a
// whole row in memory, and a line of gigabytes without a separator held
// five times its size (black-box review). More than maxLine bytes (and
// the csv reader's read-ahead) since the last row ends the input.
type source struct {
	r     io.Reader
	since int // bytes handed out since the last row was read (reset)
	line  int // the line of the last byte handed out, from 1
	long  int // the line where a row grew over the bound, or 0
}

// csvSlack is what the csv reader may read ahead of the row it returns.
const csvSlack = 64 << 10

func (s *source) Read(p []byte) (int, error) {
	if s.long != 0 {
		return 0, errRowTooLong
	}
	if room := maxLine + csvSlack - s.since; len(p) > room {
		p = p[:max(room, 1)]
	}
	n, err := s.r.Read(p)
	s.since += n
	s.line += bytes.Count(p[:n], []byte{'\n'})
	if s.since > maxLine+csvSlack {
		s.long = s.line + 1
		return n, errRowTooLong
	}
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// reset starts the count of a new row.
func (s *source) reset() { s.since = 0 }

var errRowTooLong = errors.New("row too long")

func readCSV(in io.Reader, columns []string, today string, fn func(*Row)) (rows int, issues []outcome.Issue, err error) {
	src := &source{r: in}
	cr := csv.NewReader(src)
	// tooLong is the issue that ends a file whose row outgrew maxLine.
	tooLong := func() outcome.Issue {
		return fileIssue(src.long, 1, outcome.CodeTooLong, "", "the row running to line %d is longer than %d bytes: the file is not read further", src.long, maxLine)
	}
	cr.Comma = ';'
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	src.reset()
	if src.long != 0 {
		return 0, []outcome.Issue{tooLong()}, nil
	}
	if err == io.EOF {
		return 0, []outcome.Issue{fileIssue(1, 0, outcome.CodeRequired, "", "the file is empty: a header row is expected")}, nil
	}
	var rerr *readError
	if errors.As(err, &rerr) {
		return 0, nil, rerr.err
	}
	if err != nil {
		return 0, []outcome.Issue{csvIssue(err, 1)}, nil
	}
	header = slices.Clone(header)
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
		return 0, issues, nil
	}
	r := &Row{fields: make(map[string]Field, len(header))}
	for {
		rec, err := cr.Read()
		src.reset()
		if src.long != 0 {
			rows++
			return rows, append(issues, tooLong()), nil
		}
		if err == io.EOF {
			break
		}
		if errors.As(err, &rerr) {
			return rows, issues, rerr.err
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
		r.reset(line, 0, today)
		if len(rec) != len(header) {
			// At the first field missing (named) or the first one too many.
			r.failRow(outcome.CodeStructure, "the row has %d fields, the header %d", len(rec), len(header))
			is := &r.Issues[len(r.Issues)-1]
			is.Column = min(len(rec), len(header)) + 1
			if len(rec) < len(header) {
				is.Expression = []string{header[len(rec)]}
			}
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
	return rows, issues, nil
}

// checkText rejects values FHIR strings cannot hold: invalid UTF-8 and
// control characters.
func checkText(r *Row, name, v string) {
	ascii := true // printable ASCII, the usual case, needs no more look
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return
	}
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
		// csv errors name the problem (bare quote…), never the value. The
		// issue is on the row's first line; an unclosed quote is found
		// lines later, where the reader gave up.
		if pe.Line != pe.StartLine {
			return fileIssue(pe.StartLine, 0, outcome.CodeStructure, "", "malformed CSV: %v (the row starting here runs to line %d)", pe.Err, pe.Line)
		}
		return fileIssue(pe.StartLine, 0, outcome.CodeStructure, "", "malformed CSV: %v", pe.Err) // a CSV column is a field, not a character
	}
	return fileIssue(line, 0, outcome.CodeStructure, "", "malformed CSV")
}

// maxLine bounds an NDJSON line (a member with a long list of events is a
// few kilobytes): a longer line is an issue, and the reader skips to the
// next one without holding it.
const maxLine = 4 << 20

func readNDJSON(br *bufio.Reader, columns []string, today string, fn func(*Row)) (rows int, issues []outcome.Issue, err error) {
	var allowed map[string]bool
	if columns != nil {
		allowed = map[string]bool{}
		for _, c := range columns {
			allowed[c] = true
		}
	}
	line := 0
	var buf []byte
	r := &Row{}
	for {
		raw, long, eof, err := readLine(br, &buf)
		if err != nil {
			return rows, issues, err
		}
		if eof && len(raw) == 0 && !long {
			break
		}
		line++
		raw = bytes.TrimRight(raw, "\r")
		if !long && len(bytes.TrimSpace(raw)) == 0 {
			if eof {
				break
			}
			continue
		}
		rows++
		r.reset(line, 1, today)
		switch {
		case long:
			r.failRow(outcome.CodeStructure, "the line is longer than %d bytes", maxLine)
			issues = append(issues, r.Issues...)
		case !utf8.Valid(raw):
			r.failRow(outcome.CodeStructure, "the line is not valid UTF-8")
			issues = append(issues, r.Issues...)
		default:
			fields, col, err := flatten(raw, columns == nil)
			if err != nil {
				r.Issues = append(r.Issues, fileIssue(line, col, outcome.CodeStructure, "", "%s", err))
				issues = append(issues, r.Issues...)
				break
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
		if eof {
			break
		}
	}
	return rows, issues, nil
}

// readLine reads one line without its '\n' into *buf (reused). long
// reports a line over maxLine (its content is dropped); eof that the input
// ended with this line.
func readLine(br *bufio.Reader, buf *[]byte) (line []byte, long, eof bool, err error) {
	*buf = (*buf)[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		if !long {
			if len(*buf)+len(chunk) > maxLine+1 {
				long, *buf = true, (*buf)[:0]
			} else {
				*buf = append(*buf, chunk...)
			}
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(*buf, []byte("\n")), long, false, nil
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			return *buf, long, true, nil
		default:
			return nil, false, false, err
		}
	}
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
