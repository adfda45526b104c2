package fhirpath

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// String functions (indexOf, substring, matches, replaceMatches, encode...).

// stringFunc adapts a function of a string and string arguments; an empty
// input or argument gives an empty result.
func stringFunc(f func(c *evalCtx, str string, args []string) ([]item, error)) funcImpl {
	return func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		str, ok, err := c.stringInput(in, n)
		if err != nil || !ok {
			return nil, err
		}
		var buf [2]string
		args := buf[:len(n.args)]
		for i := range n.args {
			a, ok, err := c.stringArg(s, n, i)
			if err != nil || !ok {
				return nil, err
			}
			args[i] = a
		}
		res, err := f(c, str, args)
		if err != nil {
			return nil, c.errorf(n.pos, "%s(): %v", n.fn.name, err)
		}
		return res, nil
	}
}

var regexCache sync.Map // pattern → *regexp.Regexp

func compileRegex(pattern string, full bool) (*regexp.Regexp, error) {
	key := pattern
	if full {
		key = "\x00" + pattern
	}
	if re, ok := regexCache.Load(key); ok {
		return re.(*regexp.Regexp), nil
	}
	src := "(?s)" + pattern
	if full {
		src = "(?s)^(?:" + pattern + ")$"
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, err
	}
	regexCache.Store(key, re)
	return re, nil
}

// prepareRegex compiles a literal pattern once, at compile time.
func prepareRegex(full bool) func(n *callNode) error {
	return func(n *callNode) error {
		if lit, ok := n.args[0].(*literalNode); ok && len(lit.items) == 1 {
			if p, ok := lit.items[0].v.(string); ok {
				re, err := compileRegex(p, full)
				if err != nil {
					return err
				}
				n.data = re
			}
		}
		return nil
	}
}

func regexFunc(f func(re *regexp.Regexp, str string, args []string) []item, full bool) funcImpl {
	return stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		re, err := compileRegex(args[0], full)
		if err != nil {
			return nil, err
		}
		return f(re, str, args), nil
	})
}

func fnSubstring(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	str, ok, err := c.stringInput(in, n)
	if err != nil || !ok {
		return nil, err
	}
	start, ok, err := c.intArg(s, n, 0)
	if err != nil || !ok {
		return nil, err
	}
	runes := []rune(str)
	if start < 0 || start >= int64(len(runes)) {
		return nil, nil
	}
	end := int64(len(runes))
	if len(n.args) > 1 {
		l, ok, err := c.intArg(s, n, 1)
		if err != nil {
			return nil, err
		}
		if ok {
			if l < 0 {
				l = 0
			}
			if l < end-start {
				end = start + l
			}
		}
	}
	return []item{{v: string(runes[start:end]), t: tString}}, nil
}

func fnJoin(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	sep := ""
	if len(n.args) > 0 {
		var err error
		if sep, _, err = c.stringArg(s, n, 0); err != nil {
			return nil, err
		}
	}
	if len(in) == 0 {
		return nil, nil
	}
	parts := make([]string, len(in))
	for i, it := range in {
		str, ok := it.v.(string)
		if !ok {
			return nil, c.errorf(n.pos, "join() on %s, not a string", typeName(it))
		}
		parts[i] = str
	}
	j := strings.Join(parts, sep)
	if len(j) > maxString {
		return nil, c.errorf(n.pos, "%v", errTooLong)
	}
	return []item{{v: j, t: tString}}, nil
}

func fnEncode(c *evalCtx, str string, args []string) ([]item, error) {
	var out string
	switch args[0] {
	case "base64":
		out = base64.StdEncoding.EncodeToString([]byte(str))
	case "urlbase64":
		out = base64.URLEncoding.EncodeToString([]byte(str))
	case "hex":
		out = hex.EncodeToString([]byte(str))
	default:
		return nil, fmt.Errorf("unknown encoding %q", args[0])
	}
	return []item{{v: out, t: tString}}, nil
}

func fnDecode(c *evalCtx, str string, args []string) ([]item, error) {
	var out []byte
	var err error
	switch args[0] {
	case "base64":
		out, err = base64.StdEncoding.DecodeString(str)
	case "urlbase64":
		out, err = base64.URLEncoding.DecodeString(str)
	case "hex":
		out, err = hex.DecodeString(str)
	default:
		return nil, fmt.Errorf("unknown encoding %q", args[0])
	}
	if err != nil {
		return nil, nil
	}
	return []item{{v: string(out), t: tString}}, nil
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")

func fnEscape(c *evalCtx, str string, args []string) ([]item, error) {
	switch args[0] {
	case "html":
		return []item{{v: htmlEscaper.Replace(str), t: tString}}, nil
	case "json":
		q := strconv.Quote(str)
		return []item{{v: q[1 : len(q)-1], t: tString}}, nil
	}
	return nil, fmt.Errorf("unknown escape %q", args[0])
}

func fnUnescape(c *evalCtx, str string, args []string) ([]item, error) {
	switch args[0] {
	case "html":
		return []item{{v: html.UnescapeString(str), t: tString}}, nil
	case "json":
		return []item{{v: unescapeJSON(str), t: tString}}, nil
	}
	return nil, fmt.Errorf("unknown escape %q", args[0])
}

// unescapeJSON undoes the escapes of a JSON string body, leaving anything
// else as it is.
func unescapeJSON(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+4 < len(s) {
				if n, err := strconv.ParseUint(s[i+1:i+5], 16, 32); err == nil {
					b.WriteRune(rune(n))
					i += 4
					continue
				}
			}
			b.WriteString(`\u`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
