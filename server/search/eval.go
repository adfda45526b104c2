package search

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/server/store"
)

// IDs returns the sorted ids of the current resources of q.Type that match
// every clause (every current resource without clauses).
func (q *Query) IDs(tx *store.Tx) ([]string, error) {
	if q.restricted && len(q.Clauses) == 0 {
		return q.only, nil
	}
	ids, err := q.match(tx, q.Type, q.Clauses)
	if q.restricted {
		ids = intersect(ids, q.only)
	}
	return ids, err
}

// checkLimit is the number of candidates under which a range criterion
// (dates, numbers, strings...) is checked on each candidate's index entries
// rather than by scanning its index (a wide date range after a selective
// code); exact lookups are cheap: they are checked under a tenth of it.
var checkLimit = 5000

func (q *Query) match(tx *store.Tx, typ string, clauses []*Clause) ([]string, error) {
	if len(clauses) == 0 {
		return tx.IDs(typ), nil
	}
	// The exact lookups first, the scans later, the reverse ones last.
	ordered := slices.Clone(clauses)
	slices.SortStableFunc(ordered, func(a, b *Clause) int { return rank(a) - rank(b) })
	var out []string
	for i, c := range ordered {
		limit := checkLimit
		if rank(c) <= 1 {
			limit /= 10
		}
		if i > 0 && len(out) <= limit && checkable(c) {
			keep := out[:0:0]
			for _, id := range out {
				if q.check(tx, typ, id, c) {
					keep = append(keep, id)
				}
			}
			out = keep
		} else {
			ids, err := q.clause(tx, typ, c)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				out = ids
			} else {
				out = intersect(out, ids)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
	}
	return out, nil
}

// rank orders the evaluation of criteria: cheap and selective first.
func rank(c *Clause) int {
	switch {
	case c.Has != nil || c.Chain != nil:
		return 4
	case c.Modifier == "missing" || c.Modifier == "not":
		return 5
	case c.Param.Code == "_id":
		return 0
	}
	switch c.Param.Type {
	case TypeToken, TypeReference, TypeURI:
		return 1
	case TypeString:
		return 2
	}
	return 3
}

// checkable reports whether check can decide c on one resource.
func checkable(c *Clause) bool {
	return c.Has == nil && c.Chain == nil && c.Modifier == "" && c.Param.Code != "_id"
}

// check decides a criterion on one resource from its index entries: the
// same rules as the scans, value by value.
func (q *Query) check(tx *store.Tx, typ, id string, c *Clause) bool {
	p := c.Param
	parts := []*Param{p}
	if p.Union != nil {
		parts = p.Union
	}
	for _, part := range parts {
		stored := tx.Values(typ, id, part.indexName())
		for _, v := range c.Values {
			for _, s := range stored {
				if q.valueMatches(part, v, s) {
					return true
				}
			}
		}
	}
	return false
}

// valueMatches applies one search value to one index value of p.
func (q *Query) valueMatches(p *Param, v Value, s string) bool {
	switch p.Type {
	case TypeToken:
		var code, sys string
		if p.Code == "identifier" {
			sys, code, _ = strings.Cut(s, "|")
		} else {
			code, sys = splitToken(s)
		}
		switch {
		case !v.HasSystem:
			return code == v.Code
		case v.Code == "":
			return sys == v.System
		}
		return code == v.Code && sys == v.System
	case TypeString:
		return strings.HasPrefix(s, Normalize(v.Code))
	case TypeURI:
		return s == v.Code
	case TypeReference:
		raw := v.Code
		if !strings.Contains(raw, "/") && !strings.Contains(raw, ":") {
			if len(p.Targets) == 0 {
				return strings.HasSuffix(s, "/"+raw)
			}
			for _, t := range p.Targets {
				if s == t+"/"+raw {
					return true
				}
			}
			return false
		}
		return slices.Contains(NormalizeReference(raw, q.base), s)
	case TypeDate:
		tl, th := splitRange(s)
		return dateMatches(v, tl, th)
	case TypeNumber, TypeQuantity:
		if len(s) < numberWidth {
			return false
		}
		f, ok := DecodeNumber(s[:numberWidth])
		if !ok || !numberMatches(v, f) {
			return false
		}
		if p.Type == TypeQuantity && v.HasSystem {
			code, system, _ := strings.Cut(strings.TrimPrefix(s[numberWidth:], "|"), "|")
			return code == v.Code && (v.System == "" || system == v.System)
		}
		return true
	case TypeComposite:
		stored := strings.Split(s, compositeSep)
		if len(stored) != len(v.parts) {
			return false
		}
		for i, part := range v.parts {
			if !componentMatches(p.Components[i].Type, part, stored[i]) {
				return false
			}
		}
		return true
	}
	return false
}

func (q *Query) clause(tx *store.Tx, typ string, c *Clause) ([]string, error) {
	if c.Param != nil && c.Param.Union != nil && c.Has == nil {
		// A union parameter: its parts' answers together; :not and
		// :missing=true hold when they hold for every part.
		all := c.Modifier == "not" || (c.Modifier == "missing" && len(c.Values) > 0 && c.Values[0].Raw == "true")
		var out []string
		for i, part := range c.Param.Union {
			cc := *c
			cc.Param = part
			ids, err := q.clause(tx, typ, &cc)
			if err != nil {
				return nil, err
			}
			switch {
			case i == 0:
				out = ids
			case all:
				out = intersect(out, ids)
			default:
				out = union(out, ids)
			}
		}
		return out, nil
	}
	switch {
	case c.Has != nil:
		return q.has(tx, typ, c.Has)
	case c.Chain != nil:
		return q.chain(tx, typ, c)
	case c.Modifier == "missing":
		present := q.present(tx, typ, c.Param)
		var out []string
		for _, v := range c.Values {
			if v.Raw == "true" {
				out = union(out, minus(tx.IDs(typ), present))
			} else {
				out = union(out, present)
			}
		}
		return out, nil
	case c.Param.Code == "_id":
		var ids []string
		for _, v := range c.Values {
			if tx.Exists(typ, v.Raw) {
				ids = append(ids, v.Raw)
			}
		}
		ids = sortedSet(ids)
		if c.Modifier == "not" {
			return minus(tx.IDs(typ), ids), nil
		}
		return ids, nil
	}
	var out []string
	for _, v := range c.Values {
		ids, err := q.value(tx, typ, c.Param, c.Modifier, v)
		if err != nil {
			return nil, err
		}
		out = union(out, ids)
	}
	if c.Modifier == "not" {
		return minus(tx.IDs(typ), out), nil
	}
	return out, nil
}

// present is the set of resources with a value for p.
func (q *Query) present(tx *store.Tx, typ string, p *Param) []string {
	if p.Code == "_id" {
		return tx.IDs(typ)
	}
	name := p.indexName()
	names := []string{name}
	switch p.Type {
	case TypeToken:
		names = append(names, name+":text")
	case TypeReference:
		names = append(names, name+":identifier")
	}
	var ids []string
	for _, n := range names {
		tx.IndexScan(typ, n, "", func(_, id string) bool {
			ids = append(ids, id)
			return true
		})
	}
	return sortedSet(ids)
}

// scan collects the ids of the entries of param from a starting value
// while keep says so: keep returns (match, go on).
func scan(tx *store.Tx, typ, param, from string, keep func(value string) (bool, bool)) []string {
	var ids []string
	tx.IndexFrom(typ, param, from, func(value, id string) bool {
		m, more := keep(value)
		if m {
			ids = append(ids, id)
		}
		return more
	})
	return sortedSet(ids)
}

func prefixScan(tx *store.Tx, typ, param, prefix string, keep func(value string) bool) []string {
	var ids []string
	tx.IndexScan(typ, param, prefix, func(value, id string) bool {
		if keep == nil || keep(value) {
			ids = append(ids, id)
		}
		return true
	})
	return sortedSet(ids)
}

func lookup(tx *store.Tx, typ, param, value string) []string {
	return tx.Lookup(typ, param, value) // sorted: one value, ids in key order
}

// value evaluates one value of a criterion.
func (q *Query) value(tx *store.Tx, typ string, p *Param, mod string, v Value) ([]string, error) {
	name := p.indexName()
	switch p.Type {
	case TypeToken:
		return tokenIDs(tx, typ, p, mod, v), nil
	case TypeString:
		n := Normalize(v.Code)
		switch mod {
		case "contains":
			return prefixScan(tx, typ, name, "", func(s string) bool { return strings.Contains(s, n) }), nil
		case "exact":
			return q.exact(tx, typ, p, v.Code, lookup(tx, typ, name, n))
		}
		return prefixScan(tx, typ, name, n, nil), nil
	case TypeURI:
		switch mod {
		case "below":
			return prefixScan(tx, typ, name, v.Code, nil), nil
		case "above":
			var out []string
			for _, u := range above(v.Code) {
				out = union(out, lookup(tx, typ, name, u))
			}
			return out, nil
		}
		return lookup(tx, typ, name, v.Code), nil
	case TypeReference:
		return q.referenceIDs(tx, typ, p, mod, v), nil
	case TypeDate:
		return dateIDs(tx, typ, name, v), nil
	case TypeNumber:
		return numberIDs(tx, typ, name, v, nil), nil
	case TypeQuantity:
		if !v.HasSystem {
			return numberIDs(tx, typ, name, v, nil), nil
		}
		return numberIDs(tx, typ, name, v, func(rest string) bool {
			code, system, _ := strings.Cut(strings.TrimPrefix(rest, "|"), "|")
			return code == v.Code && (v.System == "" || system == v.System)
		}), nil
	case TypeComposite:
		return compositeIDs(tx, typ, p, v), nil
	}
	return nil, nil
}

// tokenIDs finds a token: code first ("code|system") in general, system
// first ("system|value", and :code) for identifiers.
func tokenIDs(tx *store.Tx, typ string, p *Param, mod string, v Value) []string {
	name := p.indexName()
	switch {
	case mod == "text":
		return prefixScan(tx, typ, name+":text", v.Code, nil)
	case mod == "of-type":
		return lookup(tx, typ, name+":of-type", v.Raw)
	case p.Code == "identifier":
		switch {
		case !v.HasSystem:
			return lookup(tx, typ, name+":code", v.Code)
		case v.Code == "":
			return prefixScan(tx, typ, name, v.System+"|", nil)
		}
		return lookup(tx, typ, name, v.System+"|"+v.Code)
	case !v.HasSystem:
		return prefixScan(tx, typ, name, v.Code+"|", nil)
	case v.Code == "":
		return prefixScan(tx, typ, name, "", func(s string) bool {
			_, sys := splitToken(s)
			return sys == v.System
		})
	}
	return lookup(tx, typ, name, v.Code+"|"+v.System)
}

// splitToken reads a code-first token entry "code|system".
func splitToken(s string) (code, system string) {
	i := strings.LastIndexByte(s, '|')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// above lists the URLs a uri:above search matches: the value and each of
// its parents (http://a/b/c, http://a/b, http://a).
func above(u string) []string {
	out := []string{u}
	for {
		i := strings.LastIndexByte(strings.TrimSuffix(u, "/"), '/')
		if i <= strings.Index(u, "//")+1 || i < 0 {
			return out
		}
		u = u[:i]
		out = append(out, u)
	}
}

// exact keeps the candidates (found by the normalised value) that have a
// value of p written exactly s.
func (q *Query) exact(tx *store.Tx, typ string, p *Param, s string, candidates []string) ([]string, error) {
	var out []string
	for _, id := range candidates {
		res, err := current(tx, typ, id)
		if err != nil || res == nil {
			continue
		}
		vals, err := p.expr.EvaluateTyped(res)
		if err != nil {
			continue
		}
	values:
		for _, v := range vals {
			for _, x := range stringsOf(v) {
				if x == s {
					out = append(out, id)
					break values
				}
			}
		}
	}
	return out, nil
}

// current decodes the current version of a resource (nil if deleted).
func current(tx *store.Tx, typ, id string) (map[string]any, error) {
	r, err := tx.Get(typ, id)
	if err != nil || r.Deleted() {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(r.JSON))
	d.UseNumber()
	var m map[string]any
	return m, d.Decode(&m)
}

// referenceIDs finds the resources referring to the value: an id (of any
// target type, or of the :Type), Type/id, an absolute URL (this server's
// made relative), a canonical, or with :identifier a logical identifier.
func (q *Query) referenceIDs(tx *store.Tx, typ string, p *Param, mod string, v Value) []string {
	name := p.indexName()
	if mod == "identifier" {
		if v.HasSystem {
			return lookup(tx, typ, name+":identifier", v.System+"|"+v.Code)
		}
		return prefixScan(tx, typ, name+":identifier", "", func(s string) bool {
			_, code, _ := strings.Cut(s, "|")
			return code == v.Code
		})
	}
	raw := v.Code
	var out []string
	if !strings.Contains(raw, "/") && !strings.Contains(raw, ":") {
		targets := p.Targets
		if mod != "" {
			targets = []string{mod}
		}
		if len(targets) == 0 {
			return prefixScan(tx, typ, name, "", func(s string) bool { return strings.HasSuffix(s, "/"+raw) })
		}
		for _, t := range targets {
			out = union(out, lookup(tx, typ, name, t+"/"+raw))
		}
		return out
	}
	for _, ref := range NormalizeReference(raw, q.base) {
		if mod != "" && !strings.HasPrefix(ref, mod+"/") {
			continue
		}
		out = union(out, lookup(tx, typ, name, ref))
	}
	return out
}

// A date entry is "lo/hi" (main) or "hi/lo" (:hi), fixed width.
const instantWidth = len(dateLayout)

func splitRange(s string) (a, b string) {
	if len(s) != 2*instantWidth+1 {
		return s, s
	}
	return s[:instantWidth], s[instantWidth+1:]
}

// dateIDs applies the R4 date prefixes to the ranges [tl, th] of the
// resources and [sl, sh] of the value. Every range has a main entry "tl/th"
// in tl order; only wide ranges (over narrowSpan) also have a "th/tl" entry
// in th order. A narrow range ending after t starts after t - narrowSpan,
// so the th conditions scan the main entries from there, and the :hi
// entries for the wide ranges.
func dateIDs(tx *store.Tx, typ, name string, v Value) []string {
	sl, sh := v.lo, v.hi
	all := func(string) (bool, bool) { return true, true }
	// byHigh finds the ranges whose th satisfies keep, th >= from.
	byHigh := func(from string, keep func(tl, th string) (bool, bool)) []string {
		narrow := scan(tx, typ, name, earlier(from), func(s string) (bool, bool) {
			tl, th := splitRange(s)
			return keep(tl, th)
		})
		wide := scan(tx, typ, name+":hi", from, func(s string) (bool, bool) {
			th, tl := splitRange(s)
			m, _ := keep(tl, th) // in th order, tl says nothing of what follows
			return m, true
		})
		return union(narrow, wide)
	}
	contained := func() []string { // eq: sl <= tl and th <= sh
		return scan(tx, typ, name, sl, func(s string) (bool, bool) {
			tl, th := splitRange(s)
			return th <= sh, tl <= sh
		})
	}
	after := func() []string { // gt: th > sh
		return byHigh(sh, func(_, th string) (bool, bool) { return th > sh, true })
	}
	before := func() []string { // lt: tl < sl
		return scan(tx, typ, name, "", func(s string) (bool, bool) {
			tl, _ := splitRange(s)
			return tl < sl, tl < sl
		})
	}
	switch v.Prefix {
	case "eq":
		return contained()
	case "ne":
		return scan(tx, typ, name, "", func(s string) (bool, bool) {
			tl, th := splitRange(s)
			return !(sl <= tl && th <= sh), true
		})
	case "gt":
		return after()
	case "lt":
		return before()
	case "ge":
		return union(after(), contained())
	case "le":
		return union(before(), contained())
	case "sa": // tl > sh
		return scan(tx, typ, name, sh+"/\xff", all)
	case "eb": // th < sl: narrow ones start before sl
		narrow := scan(tx, typ, name, "", func(s string) (bool, bool) {
			tl, th := splitRange(s)
			return th < sl, tl < sl
		})
		wide := scan(tx, typ, name+":hi", "", func(s string) (bool, bool) {
			th, _ := splitRange(s)
			return th < sl, th < sl
		})
		return union(narrow, wide)
	case "ap": // the widened ranges overlap: th >= sl and tl <= sh
		return byHigh(sl, func(tl, th string) (bool, bool) { return th >= sl && tl <= sh, tl <= sh })
	}
	return nil
}

// earlier is an encoded instant narrowSpan before s.
func earlier(s string) string {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		return ""
	}
	if t.Year() < 2 {
		return minInstant
	}
	return encodeInstant(t.Add(-narrowSpan))
}

// numberIDs applies the prefixes to numbers (points) indexed under param
// as EncodeNumber(value), followed for quantities by "|code|system": unit,
// when set, checks that rest.
func numberIDs(tx *store.Tx, typ, param string, v Value, unit func(rest string) bool) []string {
	decode := func(s string) (float64, bool) {
		if len(s) < numberWidth {
			return 0, false
		}
		return DecodeNumber(s[:numberWidth])
	}
	ok := func(s string, f float64) bool {
		return numberMatches(v, f) && (unit == nil || unit(s[numberWidth:]))
	}
	// from scans the numbers from f on, while f <= to.
	from := func(lo, to float64) []string {
		start := ""
		if !isInf(lo) {
			start = EncodeNumber(lo)
		}
		return scan(tx, typ, param, start, func(s string) (bool, bool) {
			f, good := decode(s)
			if !good || f > to {
				return false, false
			}
			return ok(s, f), true
		})
	}
	switch v.Prefix {
	case "eq", "ap":
		return from(v.nlo, v.nhi)
	case "gt", "sa", "ge":
		return from(v.num, inf)
	case "lt", "eb", "le":
		return from(-inf, v.num)
	}
	return from(-inf, inf) // ne
}

var inf = math.Inf(1)

func isInf(f float64) bool { return math.IsInf(f, 0) }

// compositeIDs finds the entries whose first component is the value's
// (by prefix scan when it is a token) and whose components all match.
func compositeIDs(tx *store.Tx, typ string, p *Param, v Value) []string {
	prefix := ""
	if first := v.parts[0]; p.Components[0].Type == TypeToken && first.Code != "" {
		switch {
		case !first.HasSystem:
			prefix = first.Code + "|"
		default:
			prefix = first.Code + "|" + first.System + compositeSep
		}
	}
	return prefixScan(tx, typ, p.indexName(), prefix, func(s string) bool {
		stored := strings.Split(s, compositeSep)
		if len(stored) != len(v.parts) {
			return false
		}
		for i, part := range v.parts {
			if !componentMatches(p.Components[i].Type, part, stored[i]) {
				return false
			}
		}
		return true
	})
}

// componentMatches checks one composite component value.
func componentMatches(typ string, v Value, stored string) bool {
	switch typ {
	case TypeToken:
		code, sys := splitToken(stored)
		switch {
		case !v.HasSystem:
			return code == v.Code
		case v.Code == "":
			return sys == v.System
		}
		return sys == v.System && code == v.Code
	case TypeString:
		return strings.HasPrefix(stored, Normalize(v.Code))
	case TypeURI, TypeReference:
		return stored == v.Code
	case TypeDate:
		tl, th := splitRange(stored)
		return dateMatches(v, tl, th)
	case TypeNumber:
		f, ok := DecodeNumber(stored)
		return ok && numberMatches(v, f)
	case TypeQuantity:
		parts := strings.SplitN(stored, "|", 3)
		if len(parts) != 3 {
			return false
		}
		f, ok := DecodeNumber(parts[0])
		if !ok || !numberMatches(v, f) {
			return false
		}
		if v.HasSystem {
			return parts[2] == v.Code && (v.System == "" || parts[1] == v.System)
		}
		return true
	}
	return false
}

// dateMatches is the date prefix semantics on one range.
func dateMatches(v Value, tl, th string) bool {
	sl, sh := v.lo, v.hi
	in := sl <= tl && th <= sh
	switch v.Prefix {
	case "eq":
		return in
	case "ne":
		return !in
	case "gt":
		return th > sh
	case "lt":
		return tl < sl
	case "ge":
		return th > sh || in
	case "le":
		return tl < sl || in
	case "sa":
		return tl > sh
	case "eb":
		return th < sl
	case "ap":
		return th >= sl && tl <= sh
	}
	return false
}

// numberMatches is the number prefix semantics on one value.
func numberMatches(v Value, f float64) bool {
	switch v.Prefix {
	case "eq":
		return f >= v.nlo && f < v.nhi
	case "ap":
		return f >= v.nlo && f <= v.nhi
	case "ne":
		return f < v.nlo || f >= v.nhi
	case "gt", "sa":
		return f > v.num
	case "lt", "eb":
		return f < v.num
	case "ge":
		return f >= v.num
	case "le":
		return f <= v.num
	}
	return false
}

// chain finds the resources whose reference parameter points to a
// resource matching the chained criterion.
func (q *Query) chain(tx *store.Tx, typ string, c *Clause) ([]string, error) {
	name := c.Param.indexName()
	var out []string
	for target, inner := range c.Chain {
		ids, err := q.clause(tx, target, inner)
		if err != nil {
			return nil, err
		}
		for _, id := range q.visible(target, ids) {
			out = union(out, lookup(tx, typ, name, target+"/"+id))
		}
	}
	return out, nil
}

// has finds the resources of typ that resources matching the _has
// criterion refer to.
func (q *Query) has(tx *store.Tx, typ string, h *Has) ([]string, error) {
	ids, err := q.clause(tx, h.Type, h.Clause)
	if err != nil {
		return nil, err
	}
	name, prefix := h.Ref.indexName(), typ+"/"
	var out []string
	for _, id := range q.visible(h.Type, ids) {
		for _, v := range tx.Values(h.Type, id, name) {
			if strings.HasPrefix(v, prefix) {
				out = append(out, v[len(prefix):])
			}
		}
	}
	// Only resources that exist.
	keep := out[:0]
	for _, id := range sortedSet(out) {
		if tx.Exists(typ, id) {
			keep = append(keep, id)
		}
	}
	return keep, nil
}

// visible keeps the ids the caller may see (all without Query.Visible).
func (q *Query) visible(typ string, ids []string) []string {
	if q.Visible == nil {
		return ids
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if q.Visible(typ, id) {
			out = append(out, id)
		}
	}
	return out
}
