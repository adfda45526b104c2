package measure

import (
	"math"
	"testing"
)

const randomSeeds = 400

// truthOf returns the true rows and patients of the variable v of the system.
func truthOf(tr truth, s system, v int) (rows, patients int) {
	ti, c := v/int(nCols), col(v%int(nCols))
	tt := tr.g
	if ti > 0 {
		i := ti - 1
		for _, st := range tr.strata {
			if i < len(st) {
				tt = st[i]
				break
			}
			i -= len(st)
		}
	}
	return tt.rows[c], len(tt.patients[c])
}

// TestAttackerNeverRecovers runs the attacker over many randomised reports:
// no masked count, no masked M = D − N below k and no masked cost comes back,
// every published count and patient count is ≥ k, and what is published is
// true.
func TestAttackerNeverRecovers(t *testing.T) {
	for seed := range uint64(randomSeeds) {
		sc := genScenario(seed)
		report, err := Evaluate(sc.rows, sc.params)
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		pr := parseReport(t, wire(t, report))
		tr := countTruth(sc.rows, sc.params)
		k := sc.params.K
		s := buildSystem(pr)
		for _, rec := range attack(pr) {
			rows, patients := truthOf(tr, s, rec.v)
			if col(rec.v%int(nCols)) == colM && patients >= k {
				continue // a large "not in the numerator" cell may be derived
			}
			t.Errorf("%s: %s recovered %s = %d (true %d, %d patients)", sc.name, rec.method, s.name(rec.v), rec.value, rows, patients)
		}
		for _, msg := range costRecovery(pr) {
			t.Errorf("%s: cost recovered: %s", sc.name, msg)
		}
		checkPublished(t, sc, pr, tr)
	}
}

// checkPublished: published values are true and above the threshold, and
// derived values are masked with what they derive from.
func checkPublished(t *testing.T, sc scenario, pr pubReport, tr truth) {
	t.Helper()
	k := sc.params.K
	check := func(name string, pt pubTable, tt *truthTable) {
		for _, c := range []col{colIP, colDX, colD, colN} {
			if pt.count[c] == nil {
				continue
			}
			if got, want := *pt.count[c], int64(tt.rows[c]); got != want {
				t.Errorf("%s: %s %s = %d, want %d", sc.name, name, c, got, want)
			}
			if *pt.count[c] < int64(k) || pt.patients[c] == nil || *pt.patients[c] < int64(k) {
				t.Errorf("%s: %s %s published below k=%d", sc.name, name, c, k)
			}
			if pt.patients[c] != nil && *pt.patients[c] != int64(len(tt.patients[c])) {
				t.Errorf("%s: %s %s patients = %d, want %d", sc.name, name, c, *pt.patients[c], len(tt.patients[c]))
			}
		}
		n, d := pt.count[colN], pt.count[colD]
		switch {
		case pt.score != nil && (n == nil || d == nil):
			t.Errorf("%s: %s score published with its numerator or denominator masked", sc.name, name)
		case pt.score != nil && math.Abs(*pt.score-float64(*n)/float64(*d)) > 5e-5:
			t.Errorf("%s: %s score %v, want %v", sc.name, name, *pt.score, float64(*n)/float64(*d))
		case pt.score == nil && n != nil && d != nil:
			t.Errorf("%s: %s score masked without reason", sc.name, name)
		}
		if pt.cost != nil {
			if n == nil || len(tt.patients[colN]) < k {
				t.Errorf("%s: %s cost published over fewer than k patients", sc.name, name)
			}
			if math.Abs(*pt.cost-tt.cost) > 0.006 {
				t.Errorf("%s: %s cost %v, want %v", sc.name, name, *pt.cost, tt.cost)
			}
		}
		if (pt.cost == nil) != (pt.mean == nil) {
			t.Errorf("%s: %s total and mean cost not masked together", sc.name, name)
		}
	}
	check("group", pr.g, tr.g)
	if len(tr.g.patients[colIP]) < k {
		for j, st := range pr.strats {
			if len(st) > 0 {
				t.Errorf("%s: %s lists strata of a group below k", sc.name, pr.attrs[j])
			}
		}
		return
	}
	for j, st := range pr.strats {
		if len(st) != len(tr.strata[j]) {
			t.Fatalf("%s: %s has %d strata, want %d", sc.name, pr.attrs[j], len(st), len(tr.strata[j]))
		}
		union := map[string]bool{}
		var sum float64
		for i, pt := range st {
			if pt.value != tr.values[j][i] {
				t.Errorf("%s: stratum %d is %q, want %q", sc.name, i, pt.value, tr.values[j][i])
			}
			check(pr.attrs[j]+"="+pt.value, pt, tr.strata[j][i])
			if pt.cost == nil {
				for p := range tr.strata[j][i].patients[colN] {
					union[p] = true
				}
				sum += tr.strata[j][i].cost
			}
		}
		// A published total minus the published strata is a cost too: it
		// must be over ≥ k patients and not zero.
		if pr.g.cost != nil && len(union) > 0 && (len(union) < k || sum <= 0) {
			t.Errorf("%s: %s: the masked costs add up to %v over %d patients", sc.name, pr.attrs[j], sum, len(union))
		}
	}
}

// TestAttackerFindsNaiveSuppression shows the attacker has teeth: with the
// primary suppression alone (no complementary cells) it recovers masked
// values in many reports, and each value it recovers is the true one.
func TestAttackerFindsNaiveSuppression(t *testing.T) {
	found := map[string]int{}
	for seed := range uint64(randomSeeds) {
		sc := genScenario(seed)
		p, err := sc.params.normalise()
		if err != nil {
			t.Fatal(err)
		}
		a, err := aggregate(sc.rows, p)
		if err != nil {
			t.Fatal(err)
		}
		suppress(a, p.K, &suppressOpts{naive: true})
		pr := parseReport(t, wire(t, render(a, p)))
		tr := countTruth(sc.rows, p)
		s := buildSystem(pr)
		for _, rec := range attack(pr) {
			rows, _ := truthOf(tr, s, rec.v)
			if rec.value != int64(rows) {
				t.Errorf("%s: %s claims %s = %d, true value %d", sc.name, rec.method, s.name(rec.v), rec.value, rows)
			}
			if col(rec.v%int(nCols)) != colM {
				found[rec.method]++
			}
		}
	}
	for _, m := range []string{"differencing", "elimination", "bounds"} {
		if found[m] == 0 {
			t.Errorf("%s recovered no masked cell of the naive reports", m)
		}
	}
	t.Logf("masked cells recovered from primary-only suppression: %v", found)
}

// TestWitness checks the proof object of the suppression: for every masked
// cell (and every M below k) the recorded change keeps every relation, moves
// only unknown cells, keeps them within what a reader knows (≥ 0, a listed
// stratum ≥ 1) and alters that cell.
func TestWitness(t *testing.T) {
	for seed := range uint64(randomSeeds) {
		sc := genScenario(seed)
		p, err := sc.params.normalise()
		if err != nil {
			t.Fatal(err)
		}
		a, err := aggregate(sc.rows, p)
		if err != nil {
			t.Fatal(err)
		}
		w := map[ref][]change{}
		suppress(a, p.K, &suppressOpts{witness: w})
		if a.g.cells[colIP].patients < p.K {
			continue // all masked, nothing listed
		}
		e := newEngine(a, p.K)
		for _, r := range e.refs() {
			plan, ok := w[r]
			if !ok {
				t.Errorf("%s: no witness for %v", sc.name, r)
				continue
			}
			delta := map[ref]int{}
			for _, ch := range plan {
				if ch.inc {
					delta[ch.ref]++
				} else {
					delta[ch.ref]--
				}
			}
			if delta[r] == 0 {
				t.Errorf("%s: witness of %v does not change it", sc.name, r)
			}
			for x, d := range delta {
				cl := e.cell(x)
				if d != 0 && !unknown(x.c, cl) {
					t.Errorf("%s: witness of %v changes published %v", sc.name, r, x)
				}
				if d < 0 && cl.rows <= lower(x.c) {
					t.Errorf("%s: witness of %v takes %v below %d", sc.name, r, x, lower(x.c))
				}
			}
			at := func(j, s int, c col) int { return delta[ref{j, s, c}] }
			checkTable := func(j, s int) {
				if at(j, s, colIP) != at(j, s, colDX)+at(j, s, colD) || at(j, s, colD) != at(j, s, colN)+at(j, s, colM) {
					t.Errorf("%s: witness of %v breaks the relations of table %d/%d", sc.name, r, j, s)
				}
			}
			checkTable(-1, -1)
			for j, st := range a.strats {
				var sum [nCols]int
				for i := range st.strata {
					checkTable(j, i)
					for c := range nCols {
						sum[c] += at(j, i, c)
					}
				}
				for c := range nCols {
					if sum[c] != at(-1, -1, c) {
						t.Errorf("%s: witness of %v breaks the %s sum of %s", sc.name, r, c, st.attr)
					}
				}
			}
		}
	}
}
