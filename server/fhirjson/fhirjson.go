// Package fhirjson decodes and encodes FHIR JSON resources as generic maps.
//
// Resources travel through Parcours as map[string]any decoded with
// json.Number, so decimals keep their exact lexical form (1.50 stays 1.50).
// Encoding writes resourceType, id and meta first, as FHIR servers usually do,
// and does not HTML-escape narrative. It is a leaf: it imports only
// server/outcome from the project.
package fhirjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"sync"

	"github.com/parcours-sante/parcours/server/outcome"
)

// Decode reads exactly one JSON object. Syntax errors become a 400
// OperationOutcome naming the line and column.
func Decode(b []byte) (map[string]any, error) {
	v, err := parse(b)
	if err != nil {
		var se *errSyntax
		if !errors.As(err, &se) {
			return nil, err
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, outcome.New(http.StatusBadRequest, outcome.CodeStructure, "", "empty body: a FHIR resource was expected")
		}
		line, col := position(b, int64(se.off))
		e := outcome.New(http.StatusBadRequest, outcome.CodeStructure, "", "malformed JSON: %s (line %d, column %d)", se.msg, line, col)
		e.Issues[0].Line, e.Issues[0].Column = line, col
		return nil, e
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, outcome.New(http.StatusBadRequest, outcome.CodeStructure, "", "the body must be a JSON object (a FHIR resource)")
	}
	return m, nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Marshal encodes a resource with resourceType, id and meta first.
func Marshal(res map[string]any) []byte {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	encodeResource(buf, res)
	return bytes.Clone(buf.Bytes())
}

// MarshalIndent is Marshal with two-space indentation (for _pretty=true).
func MarshalIndent(res map[string]any) []byte {
	return Indent(Marshal(res))
}

// Indent re-indents encoded JSON with two spaces, keeping key order.
func Indent(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return b
	}
	return out.Bytes()
}

var leading = []string{"resourceType", "id", "meta"}

func encodeResource(buf *bytes.Buffer, res map[string]any) {
	buf.WriteByte('{')
	first := true
	for _, k := range leading {
		if v, ok := res[k]; ok {
			writeKV(buf, &first, k, v)
		}
	}
	keys := make([]string, 0, len(res))
	for k := range res {
		if k != "resourceType" && k != "id" && k != "meta" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		writeKV(buf, &first, k, res[k])
	}
	buf.WriteByte('}')
}

func writeKV(buf *bytes.Buffer, first *bool, k string, v any) {
	if !*first {
		buf.WriteByte(',')
	}
	*first = false
	writeString(buf, k)
	buf.WriteByte(':')
	encodeValue(buf, v)
}

func encodeValue(buf *bytes.Buffer, v any) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["resourceType"]; ok {
			encodeResource(buf, x) // contained and bundled resources
			return
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		first := true
		for _, k := range keys {
			writeKV(buf, &first, k, x[k])
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			encodeValue(buf, e)
		}
		buf.WriteByte(']')
	case string:
		writeString(buf, x)
	case json.Number:
		buf.WriteString(string(x))
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	case json.RawMessage:
		buf.Write(x)
	default:
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(x)
		buf.Truncate(buf.Len() - 1) // Encode appends a newline
	}
}

const hex = "0123456789abcdef"

// writeString writes s as a JSON string without HTML escaping.
func writeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf.WriteString(s[start:i])
		switch c {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case '\t':
			buf.WriteString(`\t`)
		default:
			buf.WriteString(`\u00`)
			buf.WriteByte(hex[c>>4])
			buf.WriteByte(hex[c&0xf])
		}
		start = i + 1
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}

// Clone deep-copies a decoded JSON value.
func Clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = Clone(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = Clone(e)
		}
		return s
	default:
		return v
	}
}

// position turns a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	line, col = 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
