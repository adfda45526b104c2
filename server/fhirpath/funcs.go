package fhirpath

import (
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

type funcImpl func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error)

// funcDef describes a function: its arity, whether its first argument is a
// type name, and its implementation, which evaluates the arguments itself
// (once, or per input item for where, select, all, exists, repeat...).
type funcDef struct {
	name     string
	min, max int
	typeArg  bool
	impl     funcImpl
	prepare  func(n *callNode) error
}

var functions map[string]*funcDef

func init() {
	functions = map[string]*funcDef{}
	def := func(name string, min, max int, impl funcImpl) *funcDef {
		f := &funcDef{name: name, min: min, max: max, impl: impl}
		functions[name] = f
		return f
	}
	// Existence
	def("empty", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return boolean(len(in) == 0), nil
	})
	def("exists", 0, 1, fnExists)
	def("all", 1, 1, fnAll)
	def("allTrue", 0, 0, boolsFunc(func(t, f int, n int) bool { return f == 0 }))
	def("anyTrue", 0, 0, boolsFunc(func(t, f int, n int) bool { return t > 0 }))
	def("allFalse", 0, 0, boolsFunc(func(t, f int, n int) bool { return t == 0 }))
	def("anyFalse", 0, 0, boolsFunc(func(t, f int, n int) bool { return f > 0 }))
	def("subsetOf", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		other, err := n.arg(c, s, 0)
		return boolean(subset(in, other)), err
	})
	def("supersetOf", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		other, err := n.arg(c, s, 0)
		return boolean(subset(other, in)), err
	})
	def("count", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return []item{{v: int64(len(in)), t: tInteger}}, nil
	})
	def("distinct", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		if len(in) <= 1 {
			return in, nil
		}
		return appendDistinct(nil, in), nil
	})
	def("isDistinct", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return boolean(len(appendDistinct(nil, in)) == len(in)), nil
	})
	// Filtering and projection
	def("where", 1, 1, fnWhere)
	def("select", 1, 1, fnSelect)
	def("repeat", 1, 1, fnRepeat)
	def("ofType", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return asType(c, in, n.spec, n.pos)
	}).typeArg = true
	// Subsetting
	def("single", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		if len(in) > 1 {
			return nil, c.errorf(n.pos, "single() on a collection of %d items", len(in))
		}
		return in, nil
	})
	def("first", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		if len(in) == 0 {
			return nil, nil
		}
		return in[:1:1], nil
	})
	def("last", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		if len(in) == 0 {
			return nil, nil
		}
		return in[len(in)-1:], nil
	})
	def("tail", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		if len(in) <= 1 {
			return nil, nil
		}
		return in[1:len(in):len(in)], nil
	})
	def("skip", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		k, ok, err := c.intArg(s, n, 0)
		if err != nil || !ok {
			return nil, err
		}
		if k <= 0 {
			return in, nil
		}
		if k >= int64(len(in)) {
			return nil, nil
		}
		return in[k:len(in):len(in)], nil
	})
	def("take", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		k, ok, err := c.intArg(s, n, 0)
		if err != nil || !ok || k <= 0 {
			return nil, err
		}
		if k >= int64(len(in)) {
			return in, nil
		}
		return in[:k:k], nil
	})
	def("intersect", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		other, err := n.arg(c, s, 0)
		if err != nil {
			return nil, err
		}
		var out []item
		for _, it := range in {
			if containsItem(other, it) && !containsItem(out, it) {
				out = append(out, it)
			}
		}
		return out, nil
	})
	def("exclude", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		other, err := n.arg(c, s, 0)
		if err != nil {
			return nil, err
		}
		var out []item
		for _, it := range in {
			if !containsItem(other, it) {
				out = append(out, it)
			}
		}
		return out, nil
	})
	// Combining
	def("union", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		other, err := n.arg(c, s, 0)
		return union(in, other), err
	})
	def("combine", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		other, err := n.arg(c, s, 0)
		if err != nil || len(other) == 0 {
			return in, err
		}
		if len(in) == 0 {
			return other, nil
		}
		out := make([]item, 0, len(in)+len(other))
		return append(append(out, in...), other...), nil
	})
	// Conversion
	def("iif", 2, 3, fnIif)
	for _, k := range []string{"Boolean", "Integer", "Decimal", "String", "Date", "DateTime", "Time", "Quantity"} {
		k := k
		def("to"+k, 0, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
			it, ok, err := c.convertInput(s, in, n, k)
			if err != nil || !ok {
				return nil, err
			}
			return []item{it}, nil
		})
		def("convertsTo"+k, 0, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
			if len(in) == 0 {
				return nil, nil
			}
			_, ok, err := c.convertInput(s, in, n, k)
			if err != nil {
				return nil, err
			}
			return boolean(ok), nil
		})
	}
	// Strings
	def("indexOf", 1, 1, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		i := strings.Index(str, args[0])
		if i > 0 {
			i = utf8.RuneCountInString(str[:i])
		}
		return []item{{v: int64(i), t: tInteger}}, nil
	}))
	def("lastIndexOf", 1, 1, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		i := strings.LastIndex(str, args[0])
		if i > 0 {
			i = utf8.RuneCountInString(str[:i])
		}
		return []item{{v: int64(i), t: tInteger}}, nil
	}))
	def("substring", 1, 2, fnSubstring)
	def("startsWith", 1, 1, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		return boolean(strings.HasPrefix(str, args[0])), nil
	}))
	def("endsWith", 1, 1, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		return boolean(strings.HasSuffix(str, args[0])), nil
	}))
	def("contains", 1, 1, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		return boolean(strings.Contains(str, args[0])), nil
	}))
	def("upper", 0, 0, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		return []item{{v: strings.ToUpper(str), t: tString}}, nil
	}))
	def("lower", 0, 0, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		return []item{{v: strings.ToLower(str), t: tString}}, nil
	}))
	def("replace", 2, 2, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		if n := strings.Count(str, args[0]); n*len(args[1]) > maxString {
			return nil, errTooLong
		}
		return []item{{v: strings.ReplaceAll(str, args[0], args[1]), t: tString}}, nil
	}))
	def("matches", 1, 1, regexFunc(func(re *regexp.Regexp, str string, args []string) []item {
		return boolean(re.MatchString(str))
	}, false)).prepare = prepareRegex(false)
	def("matchesFull", 1, 1, regexFunc(func(re *regexp.Regexp, str string, args []string) []item {
		return boolean(re.MatchString(str))
	}, true)).prepare = prepareRegex(true)
	def("replaceMatches", 2, 2, regexFunc(func(re *regexp.Regexp, str string, args []string) []item {
		if args[0] == "" {
			return []item{{v: str, t: tString}}
		}
		return []item{{v: re.ReplaceAllString(str, args[1]), t: tString}}
	}, false)).prepare = prepareRegex(false)
	def("length", 0, 0, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		return []item{{v: int64(utf8.RuneCountInString(str)), t: tInteger}}, nil
	}))
	def("toChars", 0, 0, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		out := make([]item, 0, len(str))
		for _, r := range str {
			out = append(out, item{v: string(r), t: tString})
		}
		return out, nil
	}))
	def("trim", 0, 0, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		return []item{{v: strings.TrimSpace(str), t: tString}}, nil
	}))
	def("split", 1, 1, stringFunc(func(c *evalCtx, str string, args []string) ([]item, error) {
		parts := strings.Split(str, args[0])
		out := make([]item, len(parts))
		for i, p := range parts {
			out[i] = item{v: p, t: tString}
		}
		return out, nil
	}))
	def("join", 0, 1, fnJoin)
	def("encode", 1, 1, stringFunc(fnEncode))
	def("decode", 1, 1, stringFunc(fnDecode))
	def("escape", 1, 1, stringFunc(fnEscape))
	def("unescape", 1, 1, stringFunc(fnUnescape))
	// Math
	def("abs", 0, 0, mathFunc(func(x float64) float64 { return math.Abs(x) }, false))
	def("ceiling", 0, 0, mathFunc(math.Ceil, true))
	def("floor", 0, 0, mathFunc(math.Floor, true))
	def("truncate", 0, 0, mathFunc(math.Trunc, true))
	def("exp", 0, 0, mathFunc(math.Exp, false))
	def("ln", 0, 0, mathFunc(math.Log, false))
	def("sqrt", 0, 0, mathFunc(math.Sqrt, false))
	def("log", 1, 1, fnLog)
	def("power", 1, 1, fnPower)
	def("round", 0, 1, fnRound)
	// Tree navigation
	def("children", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		var out []item
		for _, it := range in {
			out = children(out, it, c.track)
		}
		return out, nil
	})
	def("descendants", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return descendants(in, c.track), nil
	})
	// Utility
	def("trace", 1, 2, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		if c.cfg != nil && c.cfg.trace != nil {
			name, _, err := c.stringArg(s, n, 0)
			if err != nil {
				return nil, err
			}
			out := in
			if len(n.args) > 1 {
				out = nil
				err := c.iterate(s, in, n.args[1], func(_ int, res []item) (bool, error) {
					out = append(out, res...)
					return false, nil
				})
				if err != nil {
					return nil, err
				}
			}
			c.cfg.trace(name, outputs(out))
		}
		return in, nil
	})
	def("now", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return []item{{v: DateTime{fromTime(c.clock(), kindDateTime, Millisecond, true)}, t: tDateTime}}, nil
	})
	def("today", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return []item{{v: Date{fromTime(c.clock(), kindDate, Day, false)}, t: tDate}}, nil
	})
	def("timeOfDay", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return []item{{v: Time{fromTime(c.clock(), kindTime, Millisecond, false)}, t: tTime}}, nil
	})
	def("aggregate", 1, 2, fnAggregate)
	def("sort", 0, 8, fnSort).prepare = prepareSort
	// Types
	def("is", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		if len(in) == 0 {
			return nil, nil
		}
		if len(in) > 1 {
			return nil, c.errorf(n.pos, "is() on a collection of %d items", len(in))
		}
		return boolean(n.spec.is(in[0], false)), nil
	}).typeArg = true
	def("as", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return asType(c, in, n.spec, n.pos)
	}).typeArg = true
	def("type", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		out := make([]item, 0, len(in))
		for _, it := range in {
			ns, name := "System", "Any"
			if it.t != nil {
				ns, name = it.t.ns, it.t.name
			}
			out = append(out, item{v: map[string]any{"namespace": ns, "name": name}, t: tAny})
		}
		return out, nil
	})
	// Boolean
	def("not", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		b, ok, err := singletonBool(in)
		if err != nil {
			return nil, c.errorf(n.pos, "not(): %v", err)
		}
		if !ok {
			return nil, nil
		}
		return boolean(!b), nil
	})
	// FHIR
	def("extension", 1, 1, fnExtension)
	def("hasValue", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		if len(in) != 1 {
			return boolean(false), nil
		}
		_, isMap := in[0].v.(map[string]any)
		return boolean(in[0].v != nil && !isMap), nil
	})
	def("getValue", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		if len(in) != 1 {
			return nil, nil
		}
		if _, isMap := in[0].v.(map[string]any); isMap || in[0].v == nil {
			return nil, nil
		}
		return in, nil
	})
	def("resolve", 0, 0, fnResolve)
	def("memberOf", 1, 1, fnMemberOf)
	def("subsumes", 1, 1, func(*evalCtx, *scope, []item, *callNode) ([]item, error) { return nil, nil })
	def("subsumedBy", 1, 1, func(*evalCtx, *scope, []item, *callNode) ([]item, error) { return nil, nil })
	def("conformsTo", 1, 1, fnConformsTo)
	def("htmlChecks", 0, 0, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return boolean(true), nil
	})
	def("checkModifiers", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		return in, nil
	})
	// Boundaries and precision
	def("lowBoundary", 0, 1, boundaryFunc(false))
	def("highBoundary", 0, 1, boundaryFunc(true))
	def("precision", 0, 0, fnPrecision)
	def("comparable", 1, 1, func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		other, err := n.arg(c, s, 0)
		if err != nil || len(in) != 1 || len(other) != 1 {
			return nil, err
		}
		a, oka := toQuantity(in[0])
		b, okb := toQuantity(other[0])
		if !oka || !okb {
			return nil, c.errorf(n.pos, "comparable() needs quantities")
		}
		_, da, ok1 := unitCanon(a.unit)
		_, db, ok2 := unitCanon(b.unit)
		return boolean(ok1 && ok2 && da == db), nil
	})
}

// iterate evaluates body once per input item, with $this and $index set.
// The result passed to f is only valid during the call.
func (c *evalCtx) iterate(s *scope, in []item, body node, f func(i int, res []item) (bool, error)) error {
	sub := &scope{total: s.total}
	for i := range in {
		sub.one[0] = in[i]
		sub.this = sub.one[:]
		sub.index = i
		res, err := body.eval(c, sub, sub.this)
		if err != nil {
			return err
		}
		if stop, err := f(i, res); err != nil || stop {
			return err
		}
	}
	return nil
}

func (c *evalCtx) criterion(n *callNode, res []item) (bool, error) {
	b, ok, err := singletonBool(res)
	if err != nil {
		return false, c.errorf(n.pos, "%s(): %v", n.fn.name, err)
	}
	return ok && b, nil
}

func fnWhere(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	if len(in) == 0 {
		return nil, nil
	}
	var out []item
	err := c.iterate(s, in, n.args[0], func(i int, res []item) (bool, error) {
		ok, err := c.criterion(n, res)
		if ok {
			if out == nil {
				out = make([]item, 0, len(in)-i)
			}
			out = append(out, in[i])
		}
		return false, err
	})
	return out, err
}

func fnSelect(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	if len(in) == 0 {
		return nil, nil
	}
	var out []item
	err := c.iterate(s, in, n.args[0], func(i int, res []item) (bool, error) {
		out = append(out, res...)
		return false, nil
	})
	return out, err
}

func fnExists(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	if len(n.args) == 0 || len(in) == 0 {
		return boolean(len(in) > 0), nil
	}
	found := false
	err := c.iterate(s, in, n.args[0], func(i int, res []item) (bool, error) {
		ok, err := c.criterion(n, res)
		found = found || ok
		return found, err
	})
	return boolean(found), err
}

func fnAll(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	if len(in) == 0 {
		return boolean(true), nil
	}
	all := true
	err := c.iterate(s, in, n.args[0], func(i int, res []item) (bool, error) {
		ok, err := c.criterion(n, res)
		all = all && ok
		return !all, err
	})
	return boolean(all), err
}

func boolsFunc(test func(t, f, n int) bool) funcImpl {
	return func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		t, f := 0, 0
		for _, it := range in {
			b, ok := it.v.(bool)
			if !ok {
				return nil, c.errorf(n.pos, "%s() needs booleans, got %s", n.fn.name, typeName(it))
			}
			if b {
				t++
			} else {
				f++
			}
		}
		return boolean(test(t, f, len(in))), nil
	}
}

func subset(a, b []item) bool {
	for _, it := range a {
		if !containsItem(b, it) {
			return false
		}
	}
	return true
}

func fnRepeat(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	if len(in) == 0 {
		return nil, nil
	}
	var out []item
	seen := map[uintptr]bool{}
	isNew := func(it item) bool {
		if m, ok := it.v.(map[string]any); ok {
			id := mapID(m)
			if seen[id] {
				return false
			}
			seen[id] = true
			return true
		}
		return !containsItem(out, it)
	}
	frontier := in
	for len(frontier) > 0 {
		var next []item
		err := c.iterate(s, frontier, n.args[0], func(_ int, res []item) (bool, error) {
			for _, it := range res {
				if isNew(it) {
					out = append(out, it)
					next = append(next, it)
				}
			}
			if len(out) > maxRepeat {
				return true, c.errorf(n.pos, "repeat() collected more than %d items", maxRepeat)
			}
			return false, nil
		})
		if err != nil {
			return nil, err
		}
		frontier = next
	}
	return out, nil
}

func descendants(in []item, track bool) []item {
	var out []item
	frontier := in
	for len(frontier) > 0 {
		var next []item
		for _, it := range frontier {
			next = children(next, it, track)
		}
		out = append(out, next...)
		frontier = next
	}
	return out
}

func fnIif(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	if len(in) > 1 {
		return nil, c.errorf(n.pos, "iif() on a collection of %d items", len(in))
	}
	sub := s
	if n.target != nil && len(in) == 1 {
		sub = &scope{total: s.total}
		sub.one[0] = in[0]
		sub.this = sub.one[:]
	}
	cond, err := n.args[0].eval(c, sub, sub.this)
	if err != nil {
		return nil, err
	}
	var b bool
	switch len(cond) {
	case 0:
	case 1:
		v, ok := cond[0].v.(bool)
		if !ok {
			return nil, c.errorf(n.pos, "iif() criterion is %s, not a boolean", typeName(cond[0]))
		}
		b = v
	default:
		return nil, c.errorf(n.pos, "iif() criterion is a collection of %d items", len(cond))
	}
	switch {
	case b:
		return n.args[1].eval(c, sub, sub.this)
	case len(n.args) > 2:
		return n.args[2].eval(c, sub, sub.this)
	}
	return nil, nil
}

func fnAggregate(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	var total []item
	if len(n.args) > 1 {
		var err error
		if total, err = n.arg(c, s, 1); err != nil {
			return nil, err
		}
	}
	sub := &scope{}
	for i := range in {
		sub.one[0] = in[i]
		sub.this = sub.one[:]
		sub.index = i
		sub.total = total
		res, err := n.args[0].eval(c, sub, sub.this)
		if err != nil {
			return nil, err
		}
		total = append([]item(nil), res...)
	}
	return total, nil
}

// Sort

type sortKey struct {
	x    node
	desc bool
}

func prepareSort(n *callNode) error {
	keys := make([]sortKey, len(n.args))
	for i, a := range n.args {
		keys[i] = sortKey{x: a}
		if u, ok := a.(*unaryNode); ok && u.neg {
			keys[i] = sortKey{x: u.x, desc: true}
		}
		if l, ok := a.(*literalNode); ok && len(l.items) == 1 && l.number {
			// a folded negative literal: a constant key, order unchanged
			keys[i] = sortKey{x: l}
		}
	}
	n.data = keys
	return nil
}

func fnSort(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	if len(in) <= 1 {
		return in, nil
	}
	keys := n.data.([]sortKey)
	type row struct {
		it   item
		vals [][]item
	}
	rows := make([]row, len(in))
	for i := range in {
		rows[i].it = in[i]
	}
	if len(keys) == 0 {
		for i := range rows {
			rows[i].vals = [][]item{{rows[i].it}}
		}
		keys = []sortKey{{}}
	} else {
		for k, key := range keys {
			err := c.iterate(s, in, key.x, func(i int, res []item) (bool, error) {
				if k == 0 {
					rows[i].vals = make([][]item, len(keys))
				}
				rows[i].vals[k] = append([]item(nil), res...)
				return false, nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	var sortErr error
	sort.SliceStable(rows, func(i, j int) bool {
		for k, key := range keys {
			a, b := rows[i].vals[k], rows[j].vals[k]
			var cmp int
			switch {
			case len(a) == 0 && len(b) == 0:
				continue
			case len(a) == 0:
				cmp = 1 // empty sorts last
			case len(b) == 0:
				cmp = -1
			default:
				var err error
				cmp, _, err = compareItems(a[0], b[0])
				if err != nil && sortErr == nil {
					sortErr = err
				}
			}
			if key.desc {
				cmp = -cmp
			}
			if cmp != 0 {
				return cmp < 0
			}
		}
		return false
	})
	if sortErr != nil {
		return nil, c.errorf(n.pos, "sort(): %v", sortErr)
	}
	out := make([]item, len(rows))
	for i := range rows {
		out[i] = rows[i].it
	}
	return out, nil
}

// Arguments

// stringArg evaluates argument i as a single string; ok is false when it
// is empty.
func (c *evalCtx) stringArg(s *scope, n *callNode, i int) (string, bool, error) {
	v, err := n.arg(c, s, i)
	if err != nil || len(v) == 0 {
		return "", false, err
	}
	if len(v) > 1 {
		return "", false, c.errorf(n.pos, "%s(): argument %d is a collection of %d items", n.fn.name, i+1, len(v))
	}
	str, ok := v[0].v.(string)
	if !ok {
		return "", false, c.errorf(n.pos, "%s(): argument %d is %s, not a string", n.fn.name, i+1, typeName(v[0]))
	}
	return str, true, nil
}

func (c *evalCtx) intArg(s *scope, n *callNode, i int) (int64, bool, error) {
	v, err := n.arg(c, s, i)
	if err != nil {
		return 0, false, err
	}
	return c.integerArg(v, n.pos)
}

func (c *evalCtx) integerArg(v []item, pos int) (int64, bool, error) {
	if len(v) == 0 {
		return 0, false, nil
	}
	if len(v) > 1 || !isNumber(v[0]) || !isIntegerItem(v[0]) {
		return 0, false, c.errorf(pos, "expected an integer")
	}
	k, _ := toInteger(v[0])
	return k, true, nil
}

// stringInput reads the input of a string function: ok is false when it
// is empty.
func (c *evalCtx) stringInput(in []item, n *callNode) (string, bool, error) {
	if len(in) == 0 {
		return "", false, nil
	}
	if len(in) > 1 {
		return "", false, c.errorf(n.pos, "%s() on a collection of %d items", n.fn.name, len(in))
	}
	str, ok := in[0].v.(string)
	if !ok {
		return "", false, c.errorf(n.pos, "%s() on %s, not a string", n.fn.name, typeName(in[0]))
	}
	return str, true, nil
}

// outputs converts a collection to caller values.
func outputs(in []item) []any {
	if len(in) == 0 {
		return nil
	}
	out := make([]any, len(in))
	for i, it := range in {
		out[i] = output(it)
	}
	return out
}
