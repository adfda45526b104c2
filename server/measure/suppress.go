package measure

import (
	"math"
	"slices"
)

// The suppression: doc.go explains the rules and why they are enough. In a
// stratifier graph, vertex R1(s) = 2s is the relation IP = DX + D of stratum
// s, R2(s) = 2s+1 its relation D = N + M, and the four column sums follow;
// edge id s*nCols+c is cell c of stratum s. A step walks an edge forwards
// (inc: the cell gains one) or backwards (the cell loses one).

// vertex ids of a stratifier graph with n strata.
func r1(s int) int32 { return int32(2 * s) }
func r2(s int) int32 { return int32(2*s + 1) }
func colVertex(n int, c col) int32 {
	switch c {
	case colDX:
		return int32(2 * n)
	case colIP:
		return int32(2*n + 1)
	case colN:
		return int32(2*n + 2)
	case colM:
		return int32(2*n + 3)
	}
	panic("measure: column without a column vertex")
}

// ends returns the tail and head of the edge of cell c of stratum s.
func ends(n, s int, c col) (tail, head int32) {
	switch c {
	case colDX:
		return colVertex(n, colDX), r1(s)
	case colD:
		return r2(s), r1(s)
	case colIP:
		return r1(s), colVertex(n, colIP)
	case colN:
		return colVertex(n, colN), r2(s)
	default: // colM
		return colVertex(n, colM), r2(s)
	}
}

// gStep changes one group cell by +1 (inc) or −1.
type gStep struct {
	c   col
	inc bool
}

// gCycle is a change of the group's cells that keeps IP = DX + D and
// D = N + M. It meets the column sums through two of its cells: in each
// stratifier the lift is a path from the column vertex of in to that of out.
type gCycle struct {
	steps   []gStep
	in, out col
}

var gCycles = []gCycle{
	{[]gStep{{colDX, true}, {colIP, true}}, colDX, colIP},
	{[]gStep{{colDX, false}, {colIP, false}}, colIP, colDX},
	{[]gStep{{colN, true}, {colM, false}}, colN, colM},
	{[]gStep{{colN, false}, {colM, true}}, colM, colN},
	{[]gStep{{colD, true}, {colN, true}, {colIP, true}}, colN, colIP},
	{[]gStep{{colD, false}, {colN, false}, {colIP, false}}, colIP, colN},
	{[]gStep{{colD, true}, {colM, true}, {colIP, true}}, colM, colIP},
	{[]gStep{{colD, false}, {colM, false}, {colIP, false}}, colIP, colM},
	{[]gStep{{colD, true}, {colN, true}, {colDX, false}}, colN, colDX},
	{[]gStep{{colD, false}, {colN, false}, {colDX, true}}, colDX, colN},
	{[]gStep{{colD, true}, {colM, true}, {colDX, false}}, colM, colDX},
	{[]gStep{{colD, false}, {colM, false}, {colDX, true}}, colDX, colM},
}

// ref names a cell: strat −1 is the group.
type ref struct {
	strat, stratum int
	c              col
}

// change is one ±1 move of a witness.
type change struct {
	ref
	inc bool
}

// suppressOpts are for tests.
type suppressOpts struct {
	naive   bool             // primary suppression only (to show that the attacker works)
	witness map[ref][]change // filled with the change that protects each cell
}

const inf = math.MaxInt64 / 4

// Masking priorities: the cheaper column is suppressed first. IP is mostly
// redundant (IP = D + DX), the rate needs D and N.
var priority = [nCols]int64{colIP: 1, colDX: 2, colD: 3, colN: 3}

// groupFactor makes a group cell far dearer than any stratum cell.
const groupFactor = 64

type engine struct {
	a      *agg
	k      int
	scale  int64 // larger than any count: priority dominates, the count breaks ties
	adj    [][][]int32
	lifts  [][nCols][]int64 // per stratifier and start column: distances to the column vertices
	liftOK bool
}

// suppress marks every cell, score and cost that may not be released.
func suppress(a *agg, k int, o *suppressOpts) {
	if o == nil {
		o = &suppressOpts{}
	}
	for c := range nCols {
		if a.g.cells[c].patients < k {
			a.g.cells[c].masked = true
		}
	}
	if a.g.cells[colIP].patients < k {
		// Below k as a whole: everything is masked and no stratum is listed.
		for c := range nCols {
			a.g.cells[c].masked = true
		}
		a.g.costMasked = true
		for _, s := range a.strats {
			s.strata = nil
		}
		return
	}
	for _, s := range a.strats {
		for _, t := range s.strata {
			for c := range nCols {
				t.cells[c].masked = t.cells[c].patients < k
			}
		}
	}
	if !o.naive {
		e := newEngine(a, k)
		e.run(o.witness)
	}
	if a.withCost {
		suppressCost(a, k)
	}
}

func newEngine(a *agg, k int) *engine {
	e := &engine{a: a, k: k, scale: int64(a.g.cells[colIP].rows) + 1}
	for _, s := range a.strats {
		n := len(s.strata)
		adj := make([][]int32, 2*n+4)
		for i := range n {
			for c := range nCols {
				t, h := ends(n, i, c)
				id := int32(i*int(nCols) + int(c))
				adj[t] = append(adj[t], id)
				adj[h] = append(adj[h], id)
			}
		}
		e.adj = append(e.adj, adj)
	}
	e.lifts = make([][nCols][]int64, len(a.strats))
	return e
}

func (e *engine) cell(r ref) *cell {
	if r.strat < 0 {
		return &e.a.g.cells[r.c]
	}
	return &e.a.strats[r.strat].strata[r.stratum].cells[r.c]
}

func unknown(c col, x *cell) bool { return c == colM || x.masked }

// lower is what a reader knows a cell to be at least: a listed stratum has
// at least one row, and so has a group with strata.
func lower(c col) int {
	if c == colIP {
		return 1
	}
	return 0
}

func decreasable(c col, x *cell) bool { return x.rows >= lower(c)+1 }

func (e *engine) protected(r ref) bool {
	x := e.cell(r)
	if r.c == colM {
		return x.patients < e.k
	}
	return x.masked
}

// weight is the price of using a cell in a change: nothing if it is unknown
// already, else what masking it costs.
func (e *engine) weight(r ref) int64 { return e.weightOf(r, e.cell(r)) }

func (e *engine) weightOf(r ref, x *cell) int64 {
	if unknown(r.c, x) {
		return 0
	}
	w := priority[r.c]*e.scale + int64(x.rows)
	if r.strat < 0 {
		w *= groupFactor
	}
	return w
}

// step is one edge of a path in a stratifier graph.
type step struct {
	edge int32
	inc  bool
}

// search runs Dijkstra in stratifier j from vertex from, never using edge
// excl (−1 for none). Forward, dist[v] is the price of a path from → v; with
// reverse, the price of a path v → from, and prev[v] is the first step of it.
func (e *engine) search(j int, from int32, excl int32, reverse bool) ([]int64, []step) {
	return e.searchTo(j, from, excl, reverse, -1)
}

// searchTo is search stopping once the distance to target (≥ 0) is final.
func (e *engine) searchTo(j int, from int32, excl int32, reverse bool, target int32) ([]int64, []step) {
	adj := e.adj[j]
	n := len(e.a.strats[j].strata)
	dist := make([]int64, len(adj))
	prev := make([]step, len(adj))
	for i := range dist {
		dist[i] = inf
		prev[i] = step{edge: -1}
	}
	dist[from] = 0
	h := heap{{from, 0}}
	for len(h) > 0 {
		it := h.pop()
		v := it.v
		if it.d != dist[v] {
			continue
		}
		if v == target {
			break
		}
		for _, ed := range adj[v] {
			if ed == excl {
				continue
			}
			s, c := int(ed)/int(nCols), col(int(ed)%int(nCols))
			t, hd := ends(n, s, c)
			r := ref{j, s, c}
			x := e.cell(r)
			var u int32
			var inc bool
			// Forward: arcs leaving v. Reverse: arcs entering v.
			switch {
			case (v == t) != reverse:
				u, inc = hd, true
				if reverse {
					u = t
				}
			default:
				if !decreasable(c, x) {
					continue
				}
				u, inc = t, false
				if reverse {
					u = hd
				}
			}
			nd := dist[v] + e.weightOf(r, x)
			if nd < dist[u] {
				dist[u] = nd
				prev[u] = step{ed, inc}
				h.push(hitem{u, nd})
			}
		}
	}
	return dist, prev
}

// path follows prev from to back to the start of a forward search.
func (e *engine) path(j int, prev []step, to int32) []step {
	n := len(e.a.strats[j].strata)
	var out []step
	for v := to; prev[v].edge >= 0; {
		st := prev[v]
		out = append(out, st)
		s, c := int(st.edge)/int(nCols), col(int(st.edge)%int(nCols))
		t, h := ends(n, s, c)
		if st.inc {
			v = t
		} else {
			v = h
		}
	}
	slices.Reverse(out)
	return out
}

// pathTo follows prev of a reverse search from v to its target.
func (e *engine) pathTo(j int, prev []step, v int32) []step {
	n := len(e.a.strats[j].strata)
	var out []step
	for prev[v].edge >= 0 {
		st := prev[v]
		out = append(out, st)
		s, c := int(st.edge)/int(nCols), col(int(st.edge)%int(nCols))
		t, h := ends(n, s, c)
		if st.inc {
			v = h
		} else {
			v = t
		}
	}
	return out
}

func (e *engine) changes(j int, steps []step) []change {
	out := make([]change, len(steps))
	for i, st := range steps {
		out[i] = change{ref{j, int(st.edge) / int(nCols), col(int(st.edge) % int(nCols))}, st.inc}
	}
	return out
}

// gCost prices the group part of a cycle (inf when a cell cannot go down).
func (e *engine) gCost(cy gCycle) int64 {
	var w int64
	for _, st := range cy.steps {
		r := ref{-1, -1, st.c}
		if !st.inc && !decreasable(st.c, e.cell(r)) {
			return inf
		}
		w += e.weight(r)
	}
	return w
}

// lift returns the price of the path lifting cy into stratifier j.
func (e *engine) lift(j int, cy gCycle) int64 {
	if !e.liftOK {
		for i := range e.lifts {
			e.lifts[i] = [nCols][]int64{}
		}
		e.liftOK = true
	}
	n := len(e.a.strats[j].strata)
	if e.lifts[j][cy.in] == nil {
		e.lifts[j][cy.in], _ = e.search(j, colVertex(n, cy.in), -1, false)
	}
	return e.lifts[j][cy.in][colVertex(n, cy.out)]
}

func (e *engine) liftPath(j int, cy gCycle) []change {
	n := len(e.a.strats[j].strata)
	_, prev := e.search(j, colVertex(n, cy.in), -1, false)
	return e.changes(j, e.path(j, prev, colVertex(n, cy.out)))
}

func addCost(a, b int64) int64 {
	if a >= inf || b >= inf {
		return inf
	}
	return min(a+b, inf)
}

// witness finds the cheapest change that alters cell r; nil when none exists.
func (e *engine) witness(r ref) (int64, []change) {
	best, plan := int64(inf), []change(nil)
	if r.strat >= 0 {
		// (a) within the strata of one stratifier, the group unchanged.
		j := r.strat
		n := len(e.a.strats[j].strata)
		t, h := ends(n, r.stratum, r.c)
		id := int32(r.stratum*int(nCols) + int(r.c))
		dirs := []bool{true}
		if decreasable(r.c, e.cell(r)) {
			dirs = append(dirs, false)
		}
		for _, inc := range dirs {
			from, to := h, t // up: head back to tail
			if !inc {
				from, to = t, h
			}
			dist, prev := e.searchTo(j, from, id, false, to)
			if dist[to] < best {
				best = dist[to]
				plan = append([]change{{r, inc}}, e.changes(j, e.path(j, prev, to))...)
			}
			if best == 0 {
				break
			}
		}
		if best == 0 {
			return 0, plan
		}
		// (b) through a change of the group, lifted through r in its stratifier.
		var fwd, rev [nCols][]int64
		var fprev, rprev [nCols][]step
		for _, cy := range gCycles {
			w := e.gCost(cy)
			for jj := range e.a.strats {
				if jj != j {
					w = addCost(w, e.lift(jj, cy))
				}
			}
			if w >= best {
				continue
			}
			for _, inc := range dirs {
				a, b := t, h // r walked a → b
				if !inc {
					a, b = h, t
				}
				if fwd[cy.in] == nil {
					fwd[cy.in], fprev[cy.in] = e.search(j, colVertex(n, cy.in), id, false)
				}
				if rev[cy.out] == nil {
					rev[cy.out], rprev[cy.out] = e.search(j, colVertex(n, cy.out), id, true)
				}
				total := addCost(w, addCost(fwd[cy.in][a], rev[cy.out][b]))
				if total < best {
					best = total
					plan = e.gChanges(cy, j)
					plan = append(plan, e.changes(j, e.path(j, fprev[cy.in], a))...)
					plan = append(plan, change{r, inc})
					plan = append(plan, e.changes(j, e.pathTo(j, rprev[cy.out], b))...)
				}
			}
		}
		return best, plan
	}
	// A group cell: a group cycle through it, lifted into every stratifier.
	for _, cy := range gCycles {
		if !slices.ContainsFunc(cy.steps, func(s gStep) bool { return s.c == r.c }) {
			continue
		}
		w := e.gCost(cy)
		for j := range e.a.strats {
			w = addCost(w, e.lift(j, cy))
		}
		if w < best {
			best = w
			plan = e.gChanges(cy, -1)
		}
	}
	return best, plan
}

// gChanges is the group part of cy and its lift into every stratifier but skip.
func (e *engine) gChanges(cy gCycle, skip int) []change {
	var out []change
	for _, st := range cy.steps {
		out = append(out, change{ref{-1, -1, st.c}, st.inc})
	}
	for j := range e.a.strats {
		if j != skip {
			out = append(out, e.liftPath(j, cy)...)
		}
	}
	return out
}

// apply masks every published cell that the change uses.
func (e *engine) apply(plan []change) {
	for _, ch := range plan {
		x := e.cell(ch.ref)
		if ch.c != colM && !x.masked {
			x.masked = true
			e.liftOK = false
		}
	}
}

// refs lists the protected cells, group first.
func (e *engine) refs() []ref {
	var out []ref
	for c := range nCols {
		if r := (ref{-1, -1, c}); e.protected(r) {
			out = append(out, r)
		}
	}
	for j, s := range e.a.strats {
		for i := range s.strata {
			for c := range nCols {
				if r := (ref{j, i, c}); e.protected(r) {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// run gives every protected cell a witness, masking what the cheapest one
// needs, until a whole pass masks nothing more.
func (e *engine) run(witness map[ref][]change) {
	for {
		changed := false
		for _, r := range e.refs() {
			if !e.protected(r) {
				continue
			}
			cost, plan := e.witness(r)
			if plan == nil {
				// Cannot happen (the all-increase cycles always exist once
				// enough is masked); fail closed all the same.
				e.maskAll()
				return
			}
			if cost > 0 {
				e.apply(plan)
				changed = true
			}
			if witness != nil {
				witness[r] = plan
			}
		}
		if !changed {
			return
		}
	}
}

func (e *engine) maskAll() {
	for c := range nCols {
		e.a.g.cells[c].masked = true
	}
	for _, s := range e.a.strats {
		for _, t := range s.strata {
			for c := range nCols {
				t.cells[c].masked = true
			}
		}
	}
}

// suppressCost applies the cost rules of doc.go once the counts are settled.
func suppressCost(a *agg, k int) {
	a.g.costMasked = a.g.cells[colN].masked
	for _, s := range a.strats {
		for _, t := range s.strata {
			t.costMasked = t.cells[colN].masked
		}
	}
	if a.g.costMasked {
		// The total is unknown: every stratifier needs one unknown stratum
		// cost (the numerator's protection gives one; this is a guard).
		for _, s := range a.strats {
			if !slices.ContainsFunc(s.strata, func(t *table) bool { return t.costMasked }) {
				maskCheapestCost(s, false)
			}
		}
		return
	}
	seen := make([]int32, a.g.cells[colIP].patients) // every patient is in IP
	stamp := int32(0)
	for _, s := range a.strats {
		for {
			var union int
			var sum float64
			var any bool
			stamp++
			for _, t := range s.strata {
				if !t.costMasked {
					continue
				}
				any = true
				sum += t.cost
				for _, p := range t.numPatients {
					if seen[p] != stamp {
						seen[p] = stamp
						union++
					}
				}
			}
			if !any || (union >= k && sum > 0) {
				break
			}
			if !maskCheapestCost(s, sum <= 0) {
				// Everything is masked and the costs still add up to zero: the
				// published total (zero) would give each of them away.
				maskAllCosts(a)
				return
			}
		}
	}
}

// maskCheapestCost masks the published stratum cost behind the fewest
// numerator patients (with positive only, one above zero); false if none.
func maskCheapestCost(s *strat, positive bool) bool {
	var pick *table
	for _, t := range s.strata {
		if t.costMasked || (positive && t.cost <= 0) {
			continue
		}
		if pick == nil || t.cells[colN].patients < pick.cells[colN].patients ||
			(t.cells[colN].patients == pick.cells[colN].patients && t.cost < pick.cost) {
			pick = t
		}
	}
	if pick == nil {
		return false
	}
	pick.costMasked = true
	return true
}

func maskAllCosts(a *agg) {
	a.g.costMasked = true
	for _, s := range a.strats {
		for _, t := range s.strata {
			t.costMasked = true
		}
	}
}

// heap is a small binary heap for search.
type hitem struct {
	v int32
	d int64
}

type heap []hitem

func (h *heap) push(x hitem) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].d <= s[i].d {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *heap) pop() hitem {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].d < s[m].d {
			m = l
		}
		if r < len(s) && s[r].d < s[m].d {
			m = r
		}
		if m == i {
			break
		}
		s[m], s[i] = s[i], s[m]
		i = m
	}
	*h = s
	return top
}
