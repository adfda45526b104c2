package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parcours-sante/parcours/server/policy"
)

// The canonical JSON of a record is encoding/json of Record (see Record).
// It is written here by hand, without reflection: the same bytes, in a
// fraction of the time (TestBodyEncodingJSON compares the two over random
// records, TestBodyFields fails when Record gains a field appendBody does
// not write).

// appendBody appends the canonical JSON of r up to its chain fields: what
// encoding/json writes for r before `,"seq":`. It fails when Input or
// Result is not valid JSON, as encoding/json does.
func appendBody(b []byte, r *Record) ([]byte, error) {
	var arr [24]label
	labels, size := sortedLabels(r.Labels, arr[:0])
	b = slices.Grow(b, size+192+len(r.DecisionID)+len(r.Timestamp)+len(r.Path)+len(r.Input)+len(r.Result)+
		len(r.Revision)+len(r.TraceID)+len(r.SpanID)+len(r.RequestID)+(len(r.Bundles)+len(r.Metrics))*96)
	b = append(b, `{"decision_id":`...)
	b = AppendString(b, r.DecisionID)
	b = append(b, `,"timestamp":`...)
	b = AppendString(b, r.Timestamp)
	b = append(b, `,"path":`...)
	b = AppendString(b, r.Path)
	var err error
	if len(r.Input) > 0 {
		b = append(b, `,"input":`...)
		if b, err = appendRaw(b, r.Input); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
	}
	if len(r.Result) > 0 {
		b = append(b, `,"result":`...)
		if b, err = appendRaw(b, r.Result); err != nil {
			return nil, fmt.Errorf("result: %w", err)
		}
	}
	b = append(b, `,"revision":`...)
	b = AppendString(b, r.Revision)
	if len(r.Bundles) > 0 {
		b = append(b, `,"bundles":{`...)
		var arr [4]string
		for i, k := range sortedKeys(r.Bundles, arr[:0]) {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, k)
			b = append(b, `:{"revision":`...)
			b = AppendString(b, r.Bundles[k].Revision)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	if r.TraceID != "" {
		b = append(b, `,"trace_id":`...)
		b = AppendString(b, r.TraceID)
	}
	if r.SpanID != "" {
		b = append(b, `,"span_id":`...)
		b = AppendString(b, r.SpanID)
	}
	if r.RequestID != "" {
		b = append(b, `,"req_id":`...)
		b = AppendString(b, r.RequestID)
	}
	b = append(b, `,"labels":`...)
	if r.Labels == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		for i, l := range labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, l.k)
			b = append(b, ':')
			b = AppendString(b, l.v)
		}
		b = append(b, '}')
	}
	if len(r.Metrics) > 0 {
		b = append(b, `,"metrics":{`...)
		var arr [4]string
		for i, k := range sortedKeys(r.Metrics, arr[:0]) {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, k)
			b = append(b, ':')
			b = strconv.AppendInt(b, r.Metrics[k], 10)
		}
		b = append(b, '}')
	}
	return b, nil
}

// label is one entry of Record.Labels.
type label struct{ k, v string }

// sortedLabels returns the labels in the order encoding/json writes them
// (keys in byte order), appended to list, and their size in JSON unless
// they need escaping.
func sortedLabels(m map[string]string, list []label) ([]label, int) {
	size := 0
	for k, v := range m {
		list = append(list, label{k, v})
		size += len(k) + len(v) + 6
	}
	if len(list) > 16 {
		slices.SortFunc(list, func(a, b label) int { return strings.Compare(a.k, b.k) })
		return list, size
	}
	for i := 1; i < len(list); i++ { // insertion sort: a dozen labels
		for j := i; j > 0 && list[j].k < list[j-1].k; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
	return list, size
}

// sortedKeys returns the keys of m in the order encoding/json writes them
// (byte order), appended to keys.
func sortedKeys[V any](m map[string]V, keys []string) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// AppendString appends s as a JSON string exactly as encoding/json.Marshal
// writes it: HTML characters escaped (\u003c, \u003e, \u0026), \b \f \n \r
// \t, other control characters as \u00XX, invalid UTF-8 as \ufffd, U+2028
// and U+2029 escaped.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default: // other control characters, <, >, &
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// plainASCII is true for the ASCII bytes written as they are in a JSON
// string (encoding/json's htmlSafeSet).
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendRaw appends a RawMessage as encoding/json writes it: compacted,
// with HTML characters and U+2028/U+2029 escaped, or an error when it is
// not valid JSON. JSON that is already compact and has nothing to escape,
// such as the server's own inputs and results, is checked in one pass
// (plainJSON) and copied.
func appendRaw(b, raw []byte) ([]byte, error) {
	if plainJSON(raw) {
		return append(b, raw...), nil
	}
	return appendCompact(b, raw)
}

// plainJSON reports whether s is valid JSON (as encoding/json accepts it)
// that encoding/json copies as it is: no whitespace outside strings, no
// <, >, & and no U+2028 or U+2029. False sends s to the slow path, which
// decides on the rest: it is false for values nested deeper than 64
// levels too.
func plainJSON(s []byte) bool {
	var stack [64]byte // the open containers, '{' or '['
	depth, i, n := 0, 0, len(s)
	const (
		value = iota // a value is expected at i
		key          // an object key is expected at i
		after        // a value ended before i
	)
	state := value
	for {
		switch state {
		case key:
			if i >= n || s[i] != '"' {
				return false
			}
			if i = plainString(s, i+1); i < 0 || i >= n || s[i] != ':' {
				return false
			}
			i++
			state = value
		case value:
			if i >= n {
				return false
			}
			state = after
			switch c := s[i]; c {
			case '{', '[':
				i++
				if i < n && s[i] == c+2 { // {} or []
					i++
					break
				}
				if depth == len(stack) {
					return false
				}
				stack[depth] = c
				depth++
				if c == '{' {
					state = key
				} else {
					state = value
				}
			case '"':
				if i = plainString(s, i+1); i < 0 {
					return false
				}
			case 't':
				if !hasAt(s, i, "true") {
					return false
				}
				i += 4
			case 'f':
				if !hasAt(s, i, "false") {
					return false
				}
				i += 5
			case 'n':
				if !hasAt(s, i, "null") {
					return false
				}
				i += 4
			default:
				if i = plainNumber(s, i); i < 0 {
					return false
				}
			}
		case after:
			if depth == 0 {
				return i == n
			}
			if i >= n {
				return false
			}
			open := stack[depth-1]
			switch s[i] {
			case ',':
				state = value
				if open == '{' {
					state = key
				}
			case open + 2: // } or ]
				depth--
			default:
				return false
			}
			i++
		}
	}
}

func hasAt(s []byte, i int, lit string) bool {
	return len(s)-i >= len(lit) && string(s[i:i+len(lit)]) == lit
}

// plainString returns the index after the string whose opening quote is
// before s[i], or -1 if it is invalid or has something encoding/json
// rewrites.
func plainString(s []byte, i int) int {
	for i < len(s) {
		c := s[i]
		if plainInString[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(s) {
				return -1
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(s)-i < 6 || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) || !isHex(s[i+5]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		case c == 0xE2:
			if i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xA8 { // U+2028, U+2029
				return -1
			}
			i++
		default: // control characters, <, >, &
			return -1
		}
	}
	return -1
}

// plainInString is true for the bytes copied as they are inside a plain
// string: not the quote, the backslash, control characters, <, >, & and
// 0xE2 (which starts U+2028 and U+2029); bytes of invalid UTF-8 are copied
// by encoding/json too.
var plainInString = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c != 0xE2
	}
	return t
}()

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// plainNumber returns the index after the JSON number at s[i], or -1.
func plainNumber(s []byte, i int) int {
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digits(s, i)
	default:
		return -1
	}
	if i < len(s) && s[i] == '.' {
		if j := digits(s, i+1); j > i+1 {
			i = j
		} else {
			return -1
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(s []byte, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// appendCompact is the slow path of appendRaw: encoding/json's own
// compaction and HTML escaping.
func appendCompact(b, raw []byte) ([]byte, error) {
	var c, h bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		return nil, err
	}
	h.Grow(c.Len() + 16)
	json.HTMLEscape(&h, c.Bytes())
	return append(b, h.Bytes()...), nil
}

// appendResult appends the JSON of ResultOf(d), as encoding/json writes it.
func appendResult(b []byte, d *policy.Decision) []byte {
	b = append(b, `{"allow":`...)
	b = strconv.AppendBool(b, d.Allow)
	b = append(b, `,"reasons":`...)
	b = appendStrings(b, d.Reasons)
	b = append(b, `,"obligations":[`...)
	for i := range d.Obligations {
		o := &d.Obligations[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":`...)
		b = AppendString(b, o.Type)
		if o.K != 0 {
			b = append(b, `,"k":`...)
			b = strconv.AppendInt(b, int64(o.K), 10)
		}
		if o.Domain != "" {
			b = append(b, `,"domain":`...)
			b = AppendString(b, o.Domain)
		}
		if o.Target != "" {
			b = append(b, `,"target":`...)
			b = AppendString(b, o.Target)
		}
		if len(o.Paths) > 0 {
			b = append(b, `,"paths":`...)
			b = appendStrings(b, o.Paths)
		}
		b = append(b, '}')
	}
	b = append(b, `],"legal_basis":`...)
	b = appendStrings(b, d.LegalBasis)
	return append(b, '}')
}

// appendStrings appends a list of strings, nil as the empty list (as
// ResultOf makes it).
func appendStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, s)
	}
	return append(b, ']')
}

// resultSize is a capacity for the result of d that is rarely exceeded.
func resultSize(d *policy.Decision) int {
	n := 64
	for _, s := range d.Reasons {
		n += len(s) + 3
	}
	for _, s := range d.LegalBasis {
		n += len(s) + 3
	}
	for _, o := range d.Obligations {
		n += 48 + len(o.Type) + len(o.Domain) + len(o.Target)
		for _, p := range o.Paths {
			n += len(p) + 3
		}
	}
	return n
}
