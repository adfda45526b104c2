package measure

import (
	"fmt"
	"math"
	"slices"
)

// col names the cells of one table (the group or one stratum). IP, DX, D and
// N are published populations; M = D − N (denominator rows outside the
// numerator) is never published but is a cell all the same: "all of them had
// a rupture" is a disclosure (see doc.go).
type col int8

const (
	colIP col = iota // initial-population = D + DX
	colDX            // denominator-exclusion
	colD             // denominator = N + M
	colN             // numerator
	colM             // denominator minus numerator (virtual)
	nCols
)

var colNames = [nCols]string{"initial-population", "denominator-exclusion", "denominator", "numerator", "not-numerator"}

func (c col) String() string { return colNames[c] }

// atom bits: each row is in exactly one atom.
const (
	atomX uint8 = 1 << iota // excluded
	atomN                   // numerator
	atomM                   // denominator, not numerator
)

type cell struct {
	rows     int  // events (rows) counted in the cell
	patients int  // distinct patients behind them
	masked   bool // suppressed; colM is never published whatever this says
}

// table is the group or one stratum.
type table struct {
	value      string
	cells      [nCols]cell
	cost       float64 // sum of Row.Cost over numerator rows
	costMasked bool
	// numPatients lists the distinct numerator patients (interned ids) of a
	// stratum, for the rule on the union behind a suppressed cost.
	numPatients []int32
}

// strat is one stratifier: its strata partition the group's rows.
type strat struct {
	attr   string
	strata []*table
}

// agg is what the suppression works on.
type agg struct {
	g        table
	strats   []*strat
	withCost bool
}

func atomOf(r *Row) uint8 {
	switch {
	case r.Excluded:
		return atomX
	case r.InNumerator:
		return atomN
	default:
		return atomM
	}
}

func (t *table) addRow(atom uint8, cost float64) {
	t.cells[colIP].rows++
	switch atom {
	case atomX:
		t.cells[colDX].rows++
	case atomN:
		t.cells[colD].rows++
		t.cells[colN].rows++
		t.cost += cost
	case atomM:
		t.cells[colD].rows++
		t.cells[colM].rows++
	}
}

func (t *table) addPatient(bits uint8) {
	t.cells[colIP].patients++
	if bits&atomX != 0 {
		t.cells[colDX].patients++
	}
	if bits&(atomN|atomM) != 0 {
		t.cells[colD].patients++
	}
	if bits&atomN != 0 {
		t.cells[colN].patients++
	}
	if bits&atomM != 0 {
		t.cells[colM].patients++
	}
}

// aggregate checks the rows and counts them into the group and the strata.
func aggregate(rows []Row, p Params) (*agg, error) {
	a := &agg{withCost: p.CostPerspective != ""}
	ids := make(map[string]int32, len(rows)/2+1)
	pid := make([]int32, len(rows))
	atoms := make([]uint8, len(rows))
	for i := range rows {
		r := &rows[i]
		switch {
		case r.Patient == "":
			return nil, fmt.Errorf("%w: row %d has no patient key", ErrInvalid, i)
		case !r.Excluded && !r.InDenominator:
			return nil, fmt.Errorf("%w: row %d is neither in the denominator nor excluded", ErrInvalid, i)
		case math.IsNaN(r.Cost) || math.IsInf(r.Cost, 0) || r.Cost < 0:
			return nil, fmt.Errorf("%w: row %d has a cost that is not a finite amount ≥ 0", ErrInvalid, i)
		}
		id, ok := ids[r.Patient]
		if !ok {
			if len(ids) == math.MaxInt32 {
				return nil, fmt.Errorf("%w: too many patients", ErrInvalid)
			}
			id = int32(len(ids))
			ids[r.Patient] = id
		}
		pid[i] = id
		atoms[i] = atomOf(r)
		a.g.addRow(atoms[i], r.Cost)
	}
	bits := make([]uint8, len(ids))
	for i, id := range pid {
		bits[id] |= atoms[i]
	}
	for _, b := range bits {
		a.g.addPatient(b)
	}

	// Rows in patient order (a counting sort: ids are dense), so that the
	// distinct patients of every stratum come from one pass per stratifier.
	start := make([]int, len(ids)+1)
	for _, id := range pid {
		start[id+1]++
	}
	for i := range len(ids) {
		start[i+1] += start[i]
	}
	order := make([]int, len(rows))
	next := slices.Clone(start[:len(ids)])
	for i, id := range pid {
		order[next[id]] = i
		next[id]++
	}

	type seen struct {
		stratum int
		bits    uint8
	}
	var local []seen
	stratumOf := make([]int, len(rows))
	for _, attr := range p.Stratifiers {
		s := &strat{attr: attr}
		index := map[string]int{}
		var values []string
		first := make([]int32, len(rows)) // row → first-seen index of its value
		for i := range rows {
			v := rows[i].Strata[attr]
			if v == "" {
				v = Unknown
			}
			x, ok := index[v]
			if !ok {
				x = len(values)
				index[v] = x
				values = append(values, v)
			}
			first[i] = int32(x)
		}
		sorted := slices.Clone(values)
		slices.Sort(sorted)
		rank := make([]int, len(values)) // first-seen index → sorted position
		for i, v := range sorted {
			rank[index[v]] = i
			s.strata = append(s.strata, &table{value: v})
		}
		for i := range rows {
			stratumOf[i] = rank[first[i]]
			s.strata[stratumOf[i]].addRow(atoms[i], rows[i].Cost)
		}
		for id := range len(ids) {
			local = local[:0]
			for _, i := range order[start[id]:start[id+1]] {
				k := slices.IndexFunc(local, func(x seen) bool { return x.stratum == stratumOf[i] })
				if k < 0 {
					local = append(local, seen{stratumOf[i], 0})
					k = len(local) - 1
				}
				local[k].bits |= atoms[i]
			}
			for _, x := range local {
				t := s.strata[x.stratum]
				t.addPatient(x.bits)
				if x.bits&atomN != 0 {
					t.numPatients = append(t.numPatients, int32(id))
				}
			}
		}
		a.strats = append(a.strats, s)
	}
	return a, nil
}
