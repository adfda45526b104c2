package fhirjson

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf16"
	"unicode/utf8"
)

// errSyntax carries the byte offset of a syntax error.
type errSyntax struct {
	msg string
	off int
}

func (e *errSyntax) Error() string { return e.msg }

// parser is a single-pass JSON decoder into map[string]any, []any, string,
// json.Number, bool and nil: the shape encoding/json gives with UseNumber,
// without its separate validation pass and reflection (about 3× faster on
// FHIR resources). Invalid UTF-8 and a key repeated in an object are
// errors (encoding/json replaces the one and keeps the last of the other).
//
// An object's members and an array's elements are gathered on stacks the
// parser keeps, so that each map and slice is made once at its final size;
// object keys, the few hundred FHIR element names, are interned (keys).
type parser struct {
	b     []byte
	i     int
	buf   []byte
	kvs   []member // the members of the objects being read
	elems []any    // the elements of the arrays being read
	fresh []string // keys not interned yet
}

type member struct {
	k string
	v any
}

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 512

var parsers = sync.Pool{New: func() any { return new(parser) }}

func parse(b []byte) (any, error) {
	p := parsers.Get().(*parser)
	p.b, p.i = b, 0
	defer func() {
		keys.learn(p.fresh)
		// Drop the references to the decoded values before pooling.
		clear(p.kvs[:cap(p.kvs)])
		clear(p.elems[:cap(p.elems)])
		p.b, p.kvs, p.elems, p.fresh = nil, p.kvs[:0], p.elems[:0], p.fresh[:0]
		parsers.Put(p)
	}()
	p.ws()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, &errSyntax{"unexpected data after the JSON value", p.i}
	}
	return v, nil
}

// keyTable interns object keys: a map that is never changed once
// published (lookups take no lock), replaced by a larger copy when a
// parse has met new keys, up to maxKeys keys of at most maxKeyLen bytes.
type keyTable struct {
	mu  sync.Mutex
	set atomic.Pointer[map[string]string]
}

const (
	maxKeys   = 4096
	maxKeyLen = 64
)

var keys keyTable

// get returns the interned copy of b, if any.
func (t *keyTable) get(b []byte) (string, bool) {
	m := t.set.Load()
	if m == nil {
		return "", false
	}
	s, ok := (*m)[string(b)]
	return s, ok
}

// learn adds keys met by a parse.
func (t *keyTable) learn(fresh []string) {
	if len(fresh) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var old map[string]string
	if m := t.set.Load(); m != nil {
		old = *m
	}
	if len(old) >= maxKeys {
		return
	}
	m := make(map[string]string, len(old)+len(fresh))
	for k := range old {
		m[k] = k
	}
	for _, k := range fresh {
		if len(m) < maxKeys {
			m[k] = k
		}
	}
	t.set.Store(&m)
}

func (p *parser) fail(msg string) error { return &errSyntax{msg, p.i} }

func (p *parser) ws() {
	b, i := p.b, p.i
	for i < len(b) {
		c := b[i]
		if c > ' ' {
			break
		}
		if c == ' ' {
			// Indentation: eight spaces at a time.
			for i+8 <= len(b) && binary.LittleEndian.Uint64(b[i:]) == 0x2020202020202020 {
				i += 8
			}
			if i < len(b) && b[i] == ' ' {
				i++
			}
			continue
		}
		if c != '\t' && c != '\n' && c != '\r' {
			break
		}
		i++
	}
	p.i = i
}

func (p *parser) value(depth int) (any, error) {
	if p.i >= len(p.b) {
		return nil, p.fail("unexpected end of JSON input")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return true, p.lit("true")
	case c == 'f':
		return false, p.lit("false")
	case c == 'n':
		return nil, p.lit("null")
	default:
		return nil, p.fail("invalid character " + strconv.QuoteRune(rune(c)) + " looking for beginning of value")
	}
}

func (p *parser) lit(s string) error {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return p.fail("invalid literal, expected " + s)
	}
	p.i += len(s)
	return nil
}

func (p *parser) object(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.fail("JSON nested too deeply")
	}
	p.i++ // {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return map[string]any{}, nil
	}
	base := len(p.kvs)
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, p.fail("expected a string for an object key")
		}
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, p.fail("expected ':' after object key")
		}
		p.i++
		p.ws()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		p.kvs = append(p.kvs, member{k, v})
		p.ws()
		if p.i >= len(p.b) {
			return nil, p.fail("unexpected end of JSON input")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			kvs := p.kvs[base:]
			m := make(map[string]any, len(kvs))
			for _, kv := range kvs {
				m[kv.k] = kv.v
			}
			if len(m) < len(kvs) {
				// Which one is repeated, for the message (rare: no map
				// until then).
				seen := make(map[string]bool, len(kvs))
				for _, kv := range kvs {
					if seen[kv.k] {
						p.i--
						return nil, p.fail("the key " + strconv.Quote(kv.k) + " appears twice in an object (FHIR JSON names each property once)")
					}
					seen[kv.k] = true
				}
			}
			clear(kvs)
			p.kvs = p.kvs[:base]
			return m, nil
		default:
			return nil, p.fail("expected ',' or '}' after object value")
		}
	}
}

func (p *parser) array(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.fail("JSON nested too deeply")
	}
	p.i++ // [
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return []any{}, nil
	}
	base := len(p.elems)
	for {
		p.ws()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		p.elems = append(p.elems, v)
		p.ws()
		if p.i >= len(p.b) {
			return nil, p.fail("unexpected end of JSON input")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			a := slices.Clone(p.elems[base:])
			clear(p.elems[base:])
			p.elems = p.elems[:base]
			return a, nil
		default:
			return nil, p.fail("expected ',' or ']' after array element")
		}
	}
}

func (p *parser) number() (any, error) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return nil, p.fail("invalid number")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return nil, p.fail("invalid number: digits expected after '.'")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return nil, p.fail("invalid number: digits expected in exponent")
		}
	}
	return json.Number(p.b[start:p.i]), nil
}

func (p *parser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// key reads an object key at p.i (which is '"'): str, interned.
func (p *parser) key() (string, error) {
	// A key without escapes is looked up in place.
	if end := bytes.IndexByte(p.b[p.i+1:], '"'); end >= 0 {
		raw := p.b[p.i+1 : p.i+1+end]
		if k, ok := keys.get(raw); ok {
			p.i += end + 2
			return k, nil
		}
	}
	k, err := p.str()
	if err == nil && len(k) <= maxKeyLen && len(p.fresh) < maxKeys && plain(k) {
		p.fresh = append(p.fresh, k)
	}
	return k, err
}

// plain reports whether s is written in JSON as it is (no escape, no
// control character): only such keys are interned, so that finding the
// raw bytes of a key in the table proves them a valid key.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.ValidString(s)
}

// str reads a string at p.i (which is '"').
func (p *parser) str() (string, error) {
	p.i++
	start := p.i
	// Fast path: no escapes, ASCII or valid UTF-8.
	b, i := p.b, p.i
	for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 {
		i++
	}
	p.i = i
	if i < len(b) && b[i] == '"' {
		s := b[start:i]
		if !utf8.Valid(s) {
			p.i = start + invalidUTF8(s)
			return "", p.fail("invalid UTF-8 in string (FHIR JSON is UTF-8)")
		}
		p.i++
		return string(s), nil
	}
	if i < len(b) && b[i] < 0x20 {
		return "", p.fail("invalid control character in string")
	}
	p.buf = append(p.buf[:0], p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			if !utf8.Valid(p.b[start:p.i]) {
				p.i = start + invalidUTF8(p.b[start:p.i])
				return "", p.fail("invalid UTF-8 in string (FHIR JSON is UTF-8)")
			}
			p.i++
			return string(p.buf), nil
		case c < 0x20:
			return "", p.fail("invalid control character in string")
		case c != '\\':
			p.buf = append(p.buf, c)
			p.i++
			continue
		}
		p.i++ // backslash
		if p.i >= len(p.b) {
			break
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			p.buf = append(p.buf, e)
		case 'b':
			p.buf = append(p.buf, '\b')
		case 'f':
			p.buf = append(p.buf, '\f')
		case 'n':
			p.buf = append(p.buf, '\n')
		case 'r':
			p.buf = append(p.buf, '\r')
		case 't':
			p.buf = append(p.buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail("invalid \\u escape in string")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					if lo, ok := p.hex4(); ok && utf16.DecodeRune(r, lo) != utf8.RuneError {
						r2 = utf16.DecodeRune(r, lo)
					} else {
						p.i = save
					}
				}
				r = r2
			}
			p.buf = utf8.AppendRune(p.buf, r)
		default:
			p.i--
			return "", p.fail("invalid escape in string")
		}
	}
	return "", p.fail("unexpected end of JSON input in string")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}

// invalidUTF8 is the offset of the first invalid UTF-8 sequence in b.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}
