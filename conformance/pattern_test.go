package conformance

import (
	"regexp"
	"strings"
	"testing"
)

// patternSamples are the edge cases of the fast patterns: empty, each
// whitespace byte at each end and doubled, \v and U+00A0 (not \s in Go),
// invalid UTF-8, and the 64-character limit of id.
var patternSamples = []string{
	"", " ", "a", "a b", "a  b", " a", "a ", "\ta", "a\t", "a\tb", "a\nb", "a\r\nb", "a\fb", "\f", "a\f",
	"a\vb", "\v", "a\u00a0b", "\u00a0", "a\xffb", "\xff", "\xe2\x82", "héllo wörld", "日本語 テキスト",
	"http://loinc.org", "urn:uuid:1b2c", "8302-2", "example.1-a", "ex_ample", "a/b", "a:b",
	strings.Repeat("a", 64), strings.Repeat("a", 65), strings.Repeat("é", 32),
	"<div xmlns=\"http://www.w3.org/1999/xhtml\">\n\t<p>x</p>\n</div>",
}

func TestFastPatterns(t *testing.T) {
	for expr, match := range fastPatterns {
		re := regexp.MustCompile(expr)
		for _, s := range patternSamples {
			if got, want := match(s), re.MatchString(s); got != want {
				t.Errorf("%s on %q = %v, regexp says %v", expr, s, got, want)
			}
		}
	}
}

func TestFastPatternsAreSchemaPatterns(t *testing.T) {
	v := sharedValidator(t)
	used := map[string]bool{}
	for _, p := range v.primitives {
		used[p] = true
	}
	for expr := range fastPatterns {
		if !used[expr] {
			t.Errorf("fast pattern %s is not the pattern of any primitive type of the schema", expr)
		}
	}
}

func FuzzFastPatterns(f *testing.F) {
	for _, s := range patternSamples {
		f.Add(s)
	}
	type pattern struct {
		expr  string
		re    *regexp.Regexp
		match func(string) bool
	}
	var patterns []pattern
	for expr, match := range fastPatterns {
		patterns = append(patterns, pattern{expr, regexp.MustCompile(expr), match})
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range patterns {
			if got, want := p.match(s), p.re.MatchString(s); got != want {
				t.Errorf("%s on %q = %v, regexp says %v", p.expr, s, got, want)
			}
		}
	})
}
