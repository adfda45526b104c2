package fhirpath

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tokEOF     tokKind = iota
	tokIdent           // name, or `delimited name` (quoted set)
	tokString          // 'text', unescaped in text
	tokNumber          // 12 or 12.5
	tokDate            // @2014-01-01T10:00 or @T10:00 (without the @)
	tokEnv             // %name, %`name` or %'name' (name in text)
	tokSpecial         // $this, $index, $total (name in text, without $)
	tokOp              // punctuation and symbolic operators (in text)
)

type token struct {
	kind   tokKind
	text   string
	pos    int  // byte offset in the source
	quoted bool // a `delimited` identifier: never a keyword
}

// lexer splits an expression into tokens; comments and white space are
// skipped.
type lexer struct {
	src  string
	pos  int
	toks []token
}

func lex(src string) ([]token, error) {
	l := &lexer{src: src}
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		l.toks = append(l.toks, t)
		if t.kind == tokEOF {
			return l.toks, nil
		}
	}
}

func (l *lexer) errorf(pos int, format string, args ...any) error {
	return newCompileError(l.src, pos, format, args...)
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (l *lexer) skipSpace() error {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f':
			l.pos++
		case c == '/' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '/':
			end := strings.IndexByte(l.src[l.pos:], '\n')
			if end < 0 {
				l.pos = len(l.src)
			} else {
				l.pos += end + 1
			}
		case c == '/' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '*':
			end := strings.Index(l.src[l.pos+2:], "*/")
			if end < 0 {
				return l.errorf(l.pos, "unterminated comment")
			}
			l.pos += end + 4
		default:
			return nil
		}
	}
	return nil
}

func (l *lexer) next() (token, error) {
	if err := l.skipSpace(); err != nil {
		return token{}, err
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	switch {
	case isIdentStart(c):
		l.pos++
		for l.pos < len(l.src) && (isIdentStart(l.src[l.pos]) || isDigit(l.src[l.pos])) {
			l.pos++
		}
		return token{kind: tokIdent, text: l.src[start:l.pos], pos: start}, nil
	case isDigit(c):
		for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.pos++
		}
		if l.pos+1 < len(l.src) && l.src[l.pos] == '.' && isDigit(l.src[l.pos+1]) {
			l.pos++
			for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
				l.pos++
			}
		}
		return token{kind: tokNumber, text: l.src[start:l.pos], pos: start}, nil
	case c == '\'':
		s, err := l.quoted('\'')
		return token{kind: tokString, text: s, pos: start}, err
	case c == '`':
		s, err := l.quoted('`')
		return token{kind: tokIdent, text: s, pos: start, quoted: true}, err
	case c == '@':
		l.pos++
		text, err := l.dateTime()
		return token{kind: tokDate, text: text, pos: start}, err
	case c == '%':
		l.pos++
		if l.pos < len(l.src) {
			switch d := l.src[l.pos]; {
			case d == '`' || d == '\'':
				s, err := l.quoted(d)
				return token{kind: tokEnv, text: s, pos: start}, err
			case isIdentStart(d):
				b := l.pos
				for l.pos < len(l.src) && (isIdentStart(l.src[l.pos]) || isDigit(l.src[l.pos])) {
					l.pos++
				}
				return token{kind: tokEnv, text: l.src[b:l.pos], pos: start}, nil
			}
		}
		return token{}, l.errorf(start, "expected a name after %%")
	case c == '$':
		l.pos++
		b := l.pos
		for l.pos < len(l.src) && isIdentStart(l.src[l.pos]) {
			l.pos++
		}
		name := l.src[b:l.pos]
		if name != "this" && name != "index" && name != "total" {
			return token{}, l.errorf(start, "unknown special variable $%s", name)
		}
		return token{kind: tokSpecial, text: name, pos: start}, nil
	}
	two := ""
	if l.pos+1 < len(l.src) {
		two = l.src[l.pos : l.pos+2]
	}
	switch two {
	case "<=", ">=", "!=", "!~":
		l.pos += 2
		return token{kind: tokOp, text: two, pos: start}, nil
	}
	switch c {
	case '.', '(', ')', '[', ']', '{', '}', ',', '+', '-', '*', '/', '&', '|', '=', '~', '<', '>':
		l.pos++
		return token{kind: tokOp, text: l.src[start:l.pos], pos: start}, nil
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	return token{}, l.errorf(start, "unexpected character %q", r)
}

// quoted reads a string or delimited identifier, handling the FHIRPath
// escapes \' \" \` \\ \/ \f \n \r \t and \uXXXX.
func (l *lexer) quoted(q byte) (string, error) {
	start := l.pos
	l.pos++
	var b strings.Builder
	plain := true
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == q {
			l.pos++
			if plain {
				return l.src[start+1 : l.pos-1], nil
			}
			return b.String(), nil
		}
		if c != '\\' {
			if !plain {
				b.WriteByte(c)
			}
			l.pos++
			continue
		}
		if plain {
			plain = false
			b.WriteString(l.src[start+1 : l.pos])
		}
		if l.pos+1 >= len(l.src) {
			break
		}
		e := l.src[l.pos+1]
		l.pos += 2
		switch e {
		case '\'', '"', '`', '\\', '/':
			b.WriteByte(e)
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			if l.pos+4 > len(l.src) {
				return "", l.errorf(l.pos-2, "bad \\u escape")
			}
			n, err := strconv.ParseUint(l.src[l.pos:l.pos+4], 16, 32)
			if err != nil {
				return "", l.errorf(l.pos-2, "bad \\u escape")
			}
			b.WriteRune(rune(n))
			l.pos += 4
		default:
			return "", l.errorf(l.pos-2, "unknown escape \\%c", e)
		}
	}
	return "", l.errorf(start, "unterminated %c", q)
}

// dateTime reads the text of a date, dateTime or time literal after the @.
// Its validity is checked when the literal is parsed.
func (l *lexer) dateTime() (string, error) {
	start := l.pos
	digits := func(n int) bool {
		if l.pos+n > len(l.src) {
			return false
		}
		for i := 0; i < n; i++ {
			if !isDigit(l.src[l.pos+i]) {
				return false
			}
		}
		l.pos += n
		return true
	}
	at := func(c byte) bool { return l.pos < len(l.src) && l.src[l.pos] == c }
	timePart := func() {
		if !digits(2) {
			return
		}
		if at(':') && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1]) {
			l.pos++
			digits(2)
			if at(':') && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1]) {
				l.pos++
				digits(2)
				if at('.') && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1]) {
					l.pos++
					for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
						l.pos++
					}
				}
			}
		}
	}
	zone := func() {
		switch {
		case at('Z'):
			l.pos++
		case (at('+') || at('-')) && l.pos+3 < len(l.src) && isDigit(l.src[l.pos+1]):
			l.pos++
			digits(2)
			if at(':') {
				l.pos++
				digits(2)
			}
		}
	}
	if at('T') {
		l.pos++
		timePart()
		zone() // rejected when parsed: a time has no zone
		return l.src[start:l.pos], nil
	}
	if !digits(4) {
		return "", l.errorf(start-1, "malformed date/time literal")
	}
	if at('-') && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1]) {
		l.pos++
		digits(2)
		if at('-') && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1]) {
			l.pos++
			digits(2)
		}
	}
	if at('T') {
		l.pos++
		timePart()
		zone()
	}
	return l.src[start:l.pos], nil
}
