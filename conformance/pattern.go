package conformance

import (
	"regexp"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Matching the schema's patterns with package regexp is about a third of a
// validation: string, markdown, code, uri, url, canonical and id are checked
// on almost every value. Their patterns only test for a few ASCII bytes, so
// they get plain loops here, equal to regexp's answer on every input
// (FuzzFastPatterns). The other patterns (dateTime, date, instant…) use regexp.
//
// In Go's regexp \s is [\t\n\f\r ] and \S everything else, including \v,
// U+00A0 and the U+FFFD that invalid UTF-8 decodes to; all five are single
// bytes, so scanning bytes is scanning runes.
var fastPatterns = map[string]func(string) bool{
	// string, markdown: one or more characters, any but \f.
	`^[ \r\n\t\S]+$`: func(s string) bool {
		if s == "" {
			return false
		}
		for i := 0; i < len(s); i++ {
			if s[i] == '\f' {
				return false
			}
		}
		return true
	},
	// uri, url, canonical: no whitespace at all.
	`^\S*$`: func(s string) bool {
		for i := 0; i < len(s); i++ {
			if isSpace(s[i]) {
				return false
			}
		}
		return true
	},
	// code: non-empty, no leading or trailing whitespace, single whitespace between words.
	`^[^\s]+(\s[^\s]+)*$`: func(s string) bool {
		if s == "" || isSpace(s[0]) || isSpace(s[len(s)-1]) {
			return false
		}
		for i := 1; i < len(s); i++ {
			if isSpace(s[i]) && isSpace(s[i-1]) {
				return false
			}
		}
		return true
	},
	// id: 1 to 64 of A-Z a-z 0-9 - .
	`^[A-Za-z0-9\-\.]{1,64}$`: func(s string) bool {
		if s == "" || len(s) > 64 {
			return false
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				return false
			}
		}
		return true
	},
}

// isSpace is regexp's \s.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

// patterns is the compiler's RegexpEngine. It compiles each distinct pattern
// once (the 2,573 inlined primitives share 18 patterns) and matches the
// patterns of fastPatterns with a loop. Used only under Validator.mu.
type patterns map[string]jsonschema.Regexp

func (ps patterns) compile(expr string) (jsonschema.Regexp, error) {
	if re, ok := ps[expr]; ok {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	var p jsonschema.Regexp = re
	if match, ok := fastPatterns[expr]; ok {
		p = fastPattern{re, match}
	}
	ps[expr] = p
	return p, nil
}

// fastPattern keeps the compiled regexp for its String (error output).
type fastPattern struct {
	re    *regexp.Regexp
	match func(string) bool
}

func (p fastPattern) String() string { return p.re.String() }

func (p fastPattern) MatchString(s string) bool { return p.match(s) }
