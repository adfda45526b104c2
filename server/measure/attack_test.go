package measure

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"testing"
)

// This file is the attacker: it reads only the published report (as JSON on
// the wire) and tries to recover every masked value.

// published is what a reader sees of one table.
type pubTable struct {
	value    string
	count    [nCols]*int64 // colM is never published
	patients [nCols]*int64
	score    *float64
	cost     *float64
	mean     *float64
	dar      int // data-absent-reason extensions seen on this table's values
}

type pubReport struct {
	g      pubTable
	strats [][]pubTable
	attrs  []string
}

var popCol = map[string]col{
	"initial-population": colIP, "denominator-exclusion": colDX, "denominator": colD, "numerator": colN,
}

func isMasked(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	ext, _ := m["extension"].([]any)
	for _, e := range ext {
		em, _ := e.(map[string]any)
		if em["url"] == DataAbsentReasonURL && em["valueCode"] == "masked" {
			return true
		}
	}
	return false
}

func num(t testing.TB, v any) float64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("not a JSON number: %#v", v)
	}
	f, err := n.Float64()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func parseTable(t testing.TB, m map[string]any) pubTable {
	t.Helper()
	var pt pubTable
	if v, ok := m["value"].(map[string]any); ok {
		pt.value, _ = v["text"].(string)
	}
	for _, p := range m["population"].([]any) {
		pm := p.(map[string]any)
		code := pm["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"].(string)
		c := popCol[code]
		if cnt, ok := pm["count"]; ok {
			v := int64(num(t, cnt))
			pt.count[c] = &v
			for _, e := range pm["extension"].([]any) {
				em := e.(map[string]any)
				if em["url"] == PatientCountExtensionURL {
					pv := int64(num(t, em["valueInteger"]))
					pt.patients[c] = &pv
				}
			}
		} else if isMasked(pm["_count"]) {
			pt.dar++
		} else {
			t.Errorf("population %s has neither a count nor data-absent-reason masked", code)
		}
	}
	score := m["measureScore"].(map[string]any)
	if v, ok := score["value"]; ok {
		f := num(t, v)
		pt.score = &f
	} else if isMasked(score["_value"]) {
		pt.dar++
	} else {
		t.Errorf("measureScore has neither a value nor data-absent-reason masked")
	}
	ext, _ := m["extension"].([]any)
	for _, e := range ext {
		em := e.(map[string]any)
		if em["url"] != CostExtensionURL {
			continue
		}
		for _, sub := range em["extension"].([]any) {
			sm := sub.(map[string]any)
			money, ok := sm["valueMoney"].(map[string]any)
			if !ok {
				continue
			}
			var dst **float64
			switch sm["url"] {
			case "total":
				dst = &pt.cost
			case "mean":
				dst = &pt.mean
			default:
				continue
			}
			if v, ok := money["value"]; ok {
				f := num(t, v)
				*dst = &f
			} else if isMasked(money["_value"]) {
				pt.dar++
			} else {
				t.Errorf("cost %v has neither a value nor data-absent-reason masked", sm["url"])
			}
		}
	}
	return pt
}

func parseReport(t testing.TB, report map[string]any) pubReport {
	t.Helper()
	group := report["group"].([]any)[0].(map[string]any)
	pr := pubReport{g: parseTable(t, group)}
	sts, _ := group["stratifier"].([]any)
	for _, s := range sts {
		sm := s.(map[string]any)
		pr.attrs = append(pr.attrs, sm["code"].([]any)[0].(map[string]any)["text"].(string))
		var strata []pubTable
		list, _ := sm["stratum"].([]any)
		for _, x := range list {
			strata = append(strata, parseTable(t, x.(map[string]any)))
		}
		pr.strats = append(pr.strats, strata)
	}
	return pr
}

// --- the linear system a reader can write down

// variable v = table*nCols + col; table 0 is the group, then the strata.
type system struct {
	known  []*int64 // per variable: published value or nil
	lower  []int64
	eqs    [][]term // each Σ coef·x = 0
	tables []string // names, for messages
}

type term struct {
	v    int
	coef int64
}

func buildSystem(pr pubReport) system {
	var s system
	addTable := func(pt pubTable, name string, listed bool) int {
		base := len(s.known)
		for c := range nCols {
			s.known = append(s.known, pt.count[c])
			lb := int64(0)
			if c == colIP && listed {
				lb = 1 // a listed stratum (or a group with strata) has a row
			}
			s.lower = append(s.lower, lb)
		}
		s.tables = append(s.tables, name)
		s.eqs = append(s.eqs,
			[]term{{base + int(colIP), 1}, {base + int(colDX), -1}, {base + int(colD), -1}},
			[]term{{base + int(colD), 1}, {base + int(colN), -1}, {base + int(colM), -1}})
		return base
	}
	hasStrata := false
	for _, st := range pr.strats {
		hasStrata = hasStrata || len(st) > 0
	}
	g := addTable(pr.g, "group", hasStrata)
	for j, st := range pr.strats {
		var bases []int
		for _, pt := range st {
			bases = append(bases, addTable(pt, pr.attrs[j]+"="+pt.value, true))
		}
		if len(bases) == 0 {
			continue
		}
		for c := range nCols {
			eq := []term{{g + int(c), -1}}
			for _, b := range bases {
				eq = append(eq, term{b + int(c), 1})
			}
			s.eqs = append(s.eqs, eq)
		}
	}
	return s
}

func (s system) name(v int) string {
	return fmt.Sprintf("%s %s", s.tables[v/int(nCols)], col(v%int(nCols)))
}

// recovery is a value the attacker pinned down, and how.
type recovery struct {
	v      int
	value  int64
	method string
}

// differencing: solve every relation with exactly one unknown, again and
// again with what it learnt (stratum totals, IP = D + DX, D = N + M…).
func (s system) differencing() []recovery {
	val := map[int]int64{}
	get := func(v int) (int64, bool) {
		if s.known[v] != nil {
			return *s.known[v], true
		}
		x, ok := val[v]
		return x, ok
	}
	var out []recovery
	for progress := true; progress; {
		progress = false
		for _, eq := range s.eqs {
			var sum int64
			unk := -1
			n := 0
			for _, tm := range eq {
				if x, ok := get(tm.v); ok {
					sum += tm.coef * x
				} else {
					unk = tm.v
					n++
				}
			}
			if n != 1 {
				continue
			}
			var coef int64
			for _, tm := range eq {
				if tm.v == unk {
					coef = tm.coef
				}
			}
			val[unk] = -sum / coef
			out = append(out, recovery{unk, val[unk], "differencing"})
			progress = true
		}
	}
	return out
}

// elimination: Gaussian elimination over every relation at once (modulo a
// 61-bit prime: exact, and a determined value is small, so it reads back).
func (s system) elimination() []recovery {
	const p = 1<<61 - 1
	mod := func(x int64) uint64 {
		x %= p
		if x < 0 {
			x += p
		}
		return uint64(x)
	}
	mul := func(a, b uint64) uint64 {
		hi, lo := bits.Mul64(a, b)
		_, r := bits.Div64(hi, lo, p)
		return r
	}
	pow := func(a, e uint64) uint64 {
		r := uint64(1)
		for ; e > 0; e >>= 1 {
			if e&1 == 1 {
				r = mul(r, a)
			}
			a = mul(a, a)
		}
		return r
	}
	var unknowns []int
	col := map[int]int{}
	for v, k := range s.known {
		if k == nil {
			col[v] = len(unknowns)
			unknowns = append(unknowns, v)
		}
	}
	nu := len(unknowns)
	var m [][]uint64 // rows: coefficients of the unknowns, then the right-hand side
	for _, eq := range s.eqs {
		row := make([]uint64, nu+1)
		var rhs int64
		any := false
		for _, tm := range eq {
			if s.known[tm.v] != nil {
				rhs -= tm.coef * *s.known[tm.v]
			} else {
				row[col[tm.v]] = (row[col[tm.v]] + mod(tm.coef)) % p
				any = true
			}
		}
		if any {
			row[nu] = mod(rhs)
			m = append(m, row)
		}
	}
	r := 0
	pivots := make([]int, 0, nu)
	for c := 0; c < nu && r < len(m); c++ {
		piv := -1
		for i := r; i < len(m); i++ {
			if m[i][c] != 0 {
				piv = i
				break
			}
		}
		if piv < 0 {
			continue
		}
		m[r], m[piv] = m[piv], m[r]
		inv := pow(m[r][c], p-2)
		for x := c; x <= nu; x++ {
			m[r][x] = mul(m[r][x], inv)
		}
		for i := range m {
			if i == r || m[i][c] == 0 {
				continue
			}
			f := m[i][c]
			for x := c; x <= nu; x++ {
				m[i][x] = (m[i][x] + p - mul(f, m[r][x])) % p
			}
		}
		pivots = append(pivots, c)
		r++
	}
	var out []recovery
	for i, c := range pivots {
		single := true
		for x := 0; x < nu; x++ {
			if x != c && m[i][x] != 0 {
				single = false
				break
			}
		}
		if single {
			v := int64(m[i][nu])
			if m[i][nu] > p/2 {
				v = -int64(p - m[i][nu])
			}
			out = append(out, recovery{unknowns[c], v, "elimination"})
		}
	}
	return out
}

// bounds: interval propagation with non-negativity (counts ≥ 0, a listed
// stratum ≥ 1): a masked cell whose lowest and highest possible values meet
// is recovered (a residual of zero pins every masked cell of a sum to zero).
func (s system) bounds() []recovery {
	lo := make([]float64, len(s.known))
	hi := make([]float64, len(s.known))
	for v, k := range s.known {
		if k != nil {
			lo[v], hi[v] = float64(*k), float64(*k)
		} else {
			lo[v], hi[v] = float64(s.lower[v]), math.Inf(1)
		}
	}
	for round := 0; round < 500; round++ {
		changed := false
		for _, eq := range s.eqs {
			for _, t := range eq {
				if s.known[t.v] != nil {
					continue
				}
				// coef·x = −Σ others
				var smin, smax float64
				for _, o := range eq {
					if o.v == t.v {
						continue
					}
					c := float64(o.coef)
					a, b := c*lo[o.v], c*hi[o.v]
					if c < 0 {
						a, b = b, a
					}
					smin += a
					smax += b
				}
				c := float64(t.coef)
				nlo, nhi := -smax/c, -smin/c
				if c < 0 {
					nlo, nhi = nhi, nlo
				}
				if !math.IsNaN(nlo) && nlo > lo[t.v]+1e-9 {
					lo[t.v] = nlo
					changed = true
				}
				if !math.IsNaN(nhi) && nhi < hi[t.v]-1e-9 {
					hi[t.v] = nhi
					changed = true
				}
			}
		}
		if !changed {
			break
		}
	}
	var out []recovery
	for v, k := range s.known {
		if k == nil && hi[v]-lo[v] < 1e-9 {
			out = append(out, recovery{v, int64(math.Round(lo[v])), "bounds"})
		}
	}
	return out
}

// attack runs every method; it returns what was recovered.
func attack(pr pubReport) []recovery {
	s := buildSystem(pr)
	var out []recovery
	out = append(out, s.differencing()...)
	out = append(out, s.elimination()...)
	out = append(out, s.bounds()...)
	return out
}

// costRecovery tries the costs: per stratifier the strata add up to the
// group; a total is the mean times the (published) numerator; non-negative
// costs whose published residual is zero are all zero.
func costRecovery(pr pubReport) []string {
	var out []string
	tables := append([]pubTable{pr.g}, nil...)
	for _, st := range pr.strats {
		tables = append(tables, st...)
	}
	for _, t := range tables {
		if t.cost == nil && t.mean != nil && t.count[colN] != nil {
			out = append(out, fmt.Sprintf("%q total from its mean", t.value))
		}
	}
	for j, st := range pr.strats {
		if len(st) == 0 {
			continue
		}
		var unknown []string
		var published float64
		for _, t := range st {
			if t.cost == nil {
				unknown = append(unknown, t.value)
			} else {
				published += *t.cost
			}
		}
		switch {
		case pr.g.cost == nil && len(unknown) == 0:
			out = append(out, fmt.Sprintf("%s: the group cost from its strata", pr.attrs[j]))
		case pr.g.cost != nil && len(unknown) == 1:
			out = append(out, fmt.Sprintf("%s=%s: cost by differencing", pr.attrs[j], unknown[0]))
		case pr.g.cost != nil && len(unknown) > 1 && *pr.g.cost-published < 0.005*float64(len(st)+1):
			out = append(out, fmt.Sprintf("%s: masked costs %v add up to zero", pr.attrs[j], unknown))
		}
	}
	return out
}

// TestAttackerMethods checks each method on a system built by hand: a 4×4
// table with margins where no relation has a single unknown, yet the
// relations together pin one cell, and a sum of two unknowns equal to zero.
func TestAttackerMethods(t *testing.T) {
	// Cells x[r][c] = 10·r + c + 1; unknown: two 2×2 blocks and (1,2) joining them.
	var s system
	v := func(r, c int) int { return 4*r + c }
	unknown := map[int]bool{v(0, 0): true, v(0, 1): true, v(1, 0): true, v(1, 1): true,
		v(2, 2): true, v(2, 3): true, v(3, 2): true, v(3, 3): true, v(1, 2): true}
	val := func(r, c int) int64 { return int64(10*r + c + 1) }
	for r := range 4 {
		for c := range 4 {
			x := val(r, c)
			if unknown[v(r, c)] {
				s.known = append(s.known, nil)
			} else {
				s.known = append(s.known, &x)
			}
			s.lower = append(s.lower, 0)
		}
	}
	s.tables = []string{"r0", "r1", "r2", "r3"}
	total := func(vars []int) {
		var sum int64
		eq := []term{}
		for _, x := range vars {
			sum += val(x/4, x%4)
			eq = append(eq, term{x, 1})
		}
		s.known = append(s.known, &sum)
		s.lower = append(s.lower, 0)
		s.eqs = append(s.eqs, append(eq, term{len(s.known) - 1, -1}))
	}
	for r := range 4 {
		total([]int{v(r, 0), v(r, 1), v(r, 2), v(r, 3)})
	}
	for c := range 4 {
		total([]int{v(0, c), v(1, c), v(2, c), v(3, c)})
	}
	if got := s.differencing(); len(got) != 0 {
		t.Errorf("differencing recovered %v: every relation has two unknowns or more", got)
	}
	got := s.elimination()
	if len(got) != 1 || got[0].v != v(1, 2) || got[0].value != val(1, 2) {
		t.Errorf("elimination recovered %v, want only cell (1,2) = %d", got, val(1, 2))
	}

	// a + b = 0 with a, b ≥ 0: both are zero, which no elimination sees.
	zero := int64(0)
	z := system{known: []*int64{nil, nil, &zero}, lower: []int64{0, 0, 0},
		eqs: [][]term{{{0, 1}, {1, 1}, {2, -1}}}, tables: []string{"t"}}
	if got := z.elimination(); len(got) != 0 {
		t.Errorf("elimination recovered %v from one relation of two unknowns", got)
	}
	if got := z.bounds(); len(got) != 2 || got[0].value != 0 || got[1].value != 0 {
		t.Errorf("bounds recovered %v, want both cells = 0", got)
	}
}
