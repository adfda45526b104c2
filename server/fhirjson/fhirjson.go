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
	"slices"
	"strings"
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

// Marshal encodes a resource with resourceType, id and meta first.
func Marshal(res map[string]any) []byte {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	e.b = e.resource(e.b[:0], res)
	return bytes.Clone(e.b)
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

// encoder appends JSON to b. The members of the objects being written
// wait, sorted, on the stack kvs: one pass over each map gives the keys
// and their values, and whether it is a resource.
type encoder struct {
	b   []byte
	kvs []member
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

// members pushes the members of m on e.kvs, sorted by key, and returns
// where they start.
func (e *encoder) members(m map[string]any) int {
	base := len(e.kvs)
	for k, v := range m {
		e.kvs = append(e.kvs, member{k, v})
	}
	slices.SortFunc(e.kvs[base:], func(a, b member) int { return strings.Compare(a.k, b.k) })
	return base
}

// pop drops the members pushed from base (and the references they hold).
func (e *encoder) pop(base int) {
	clear(e.kvs[base:])
	e.kvs = e.kvs[:base]
}

// resource writes an object with resourceType, id and meta first.
func (e *encoder) resource(b []byte, res map[string]any) []byte {
	return e.object(b, e.members(res), true)
}

// object writes the members pushed from base, resourceType, id and meta
// first if lead, and pops them.
func (e *encoder) object(b []byte, base int, lead bool) []byte {
	b = append(b, '{')
	first := true
	if lead {
		for _, name := range [...]string{"resourceType", "id", "meta"} {
			for _, kv := range e.kvs[base:] {
				if kv.k == name {
					b = e.member(b, &first, kv)
					break
				}
			}
		}
	}
	for i := base; i < len(e.kvs); i++ {
		if kv := e.kvs[i]; !lead || kv.k != "resourceType" && kv.k != "id" && kv.k != "meta" {
			b = e.member(b, &first, kv)
		}
	}
	e.pop(base)
	return append(b, '}')
}

func (e *encoder) member(b []byte, first *bool, kv member) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	b = appendString(b, kv.k)
	b = append(b, ':')
	return e.value(b, kv.v)
}

func (e *encoder) value(b []byte, v any) []byte {
	switch x := v.(type) {
	case map[string]any:
		base := e.members(x)
		lead := false // contained and bundled resources
		for _, kv := range e.kvs[base:] {
			if kv.k == "resourceType" {
				lead = true
				break
			}
		}
		return e.object(b, base, lead)
	case []any:
		b = append(b, '[')
		for i, el := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.value(b, el)
		}
		return append(b, ']')
	case string:
		return appendString(b, x)
	case json.Number:
		return append(b, x...)
	case bool:
		if x {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case nil:
		return append(b, "null"...)
	case json.RawMessage:
		return append(b, x...)
	default:
		buf := bytes.NewBuffer(b)
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(x)
		b = buf.Bytes()
		return b[:len(b)-1] // Encode appends a newline
	}
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string without HTML escaping.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, `\"`...)
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, `\u00`...)
			b = append(b, hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
