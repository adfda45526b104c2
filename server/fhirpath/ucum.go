package fhirpath

import (
	"math"
	"strconv"
	"strings"
	"sync"
)

// A small UCUM reader: enough units to compare and convert the quantities
// found in clinical data (mass, length, volume, time, amount of substance,
// pressure, common customary units), with prefixes, exponents, products,
// quotients and annotations. Units it does not know are incomparable.

// dims is a dimension vector: m, g, s, rad, K, C, cd, mol, calendar month,
// international unit.
type dims [10]int8

const (
	dLength = iota
	dMass
	dTime
	dAngle
	dTemp
	dCharge
	dLum
	dAmount
	dCalMonth
	dIU
)

func dim(pairs ...int) dims {
	var d dims
	for i := 0; i+1 < len(pairs); i += 2 {
		d[pairs[i]] = int8(pairs[i+1])
	}
	return d
}

type ucumAtom struct {
	f      float64
	d      dims
	metric bool
}

var ucumAtoms = map[string]ucumAtom{
	"m": {1, dim(dLength, 1), true}, "g": {1, dim(dMass, 1), true}, "s": {1, dim(dTime, 1), true},
	"rad": {1, dim(dAngle, 1), true}, "K": {1, dim(dTemp, 1), true}, "C": {1, dim(dCharge, 1), true},
	"cd": {1, dim(dLum, 1), true}, "mol": {1, dim(dAmount, 1), true},
	"min": {60, dim(dTime, 1), false}, "h": {3600, dim(dTime, 1), false}, "d": {86400, dim(dTime, 1), false},
	"wk": {604800, dim(dTime, 1), false}, "mo": {2629800, dim(dTime, 1), false}, "a": {31557600, dim(dTime, 1), false},
	"L": {1e-3, dim(dLength, 3), true}, "l": {1e-3, dim(dLength, 3), true},
	"Hz":  {1, dim(dTime, -1), true},
	"N":   {1000, dim(dMass, 1, dLength, 1, dTime, -2), true},
	"Pa":  {1000, dim(dMass, 1, dLength, -1, dTime, -2), true},
	"bar": {1e8, dim(dMass, 1, dLength, -1, dTime, -2), true},
	"J":   {1000, dim(dMass, 1, dLength, 2, dTime, -2), true},
	"W":   {1000, dim(dMass, 1, dLength, 2, dTime, -3), true},
	"cal": {4184, dim(dMass, 1, dLength, 2, dTime, -2), true}, "[Cal]": {4184000, dim(dMass, 1, dLength, 2, dTime, -2), false},
	"m[Hg]": {133322000, dim(dMass, 1, dLength, -1, dTime, -2), true}, "m[H2O]": {9806650, dim(dMass, 1, dLength, -1, dTime, -2), true},
	"eq": {1, dim(dAmount, 1), true}, "osm": {1, dim(dAmount, 1), true}, "kat": {1, dim(dAmount, 1, dTime, -1), true},
	"U": {1e-6 / 60, dim(dAmount, 1, dTime, -1), true},
	"t": {1e6, dim(dMass, 1), true}, "deg": {math.Pi / 180, dim(dAngle, 1), false},
	"%": {0.01, dims{}, false}, "[ppth]": {1e-3, dims{}, false}, "[ppm]": {1e-6, dims{}, false}, "[ppb]": {1e-9, dims{}, false},
	"[pi]":   {math.Pi, dims{}, false},
	"[in_i]": {0.0254, dim(dLength, 1), false}, "[ft_i]": {0.3048, dim(dLength, 1), false},
	"[yd_i]": {0.9144, dim(dLength, 1), false}, "[mi_i]": {1609.344, dim(dLength, 1), false},
	"[lb_av]": {453.59237, dim(dMass, 1), false}, "[oz_av]": {28.349523125, dim(dMass, 1), false},
	"[gr]": {0.06479891, dim(dMass, 1), false}, "[stone_av]": {6350.29318, dim(dMass, 1), false},
	"[iU]": {1, dim(dIU, 1), true}, "[IU]": {1, dim(dIU, 1), true},
	"Cel": {1, dim(dTemp, 1), false}, "[degF]": {5.0 / 9, dim(dTemp, 1), false},
	"[drp]": {5e-8, dim(dLength, 3), false}, "[foz_us]": {2.95735295625e-5, dim(dLength, 3), false},
	"[gal_us]": {3.785411784e-3, dim(dLength, 3), false}, "[pt_us]": {4.73176473e-4, dim(dLength, 3), false},
	"[tsp_us]": {4.92892159375e-6, dim(dLength, 3), false}, "[tbs_us]": {1.478676478125e-5, dim(dLength, 3), false},
	"[cup_us]": {2.365882365e-4, dim(dLength, 3), false},
	// calendar durations written as FHIRPath keywords
	"year": {12, dim(dCalMonth, 1), false}, "years": {12, dim(dCalMonth, 1), false},
	"month": {1, dim(dCalMonth, 1), false}, "months": {1, dim(dCalMonth, 1), false},
	"week": {604800, dim(dTime, 1), false}, "weeks": {604800, dim(dTime, 1), false},
	"day": {86400, dim(dTime, 1), false}, "days": {86400, dim(dTime, 1), false},
	"hour": {3600, dim(dTime, 1), false}, "hours": {3600, dim(dTime, 1), false},
	"minute": {60, dim(dTime, 1), false}, "minutes": {60, dim(dTime, 1), false},
	"second": {1, dim(dTime, 1), false}, "seconds": {1, dim(dTime, 1), false},
	"millisecond": {1e-3, dim(dTime, 1), false}, "milliseconds": {1e-3, dim(dTime, 1), false},
}

var ucumPrefixes = map[string]float64{
	"Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3, "h": 1e2, "da": 1e1,
	"d": 1e-1, "c": 1e-2, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15, "a": 1e-18, "z": 1e-21, "y": 1e-24,
}

type unitInfo struct {
	f  float64
	d  dims
	ok bool
}

var unitCache sync.Map // string → unitInfo

// unitCanon returns the factor to the base units and the dimensions of a
// UCUM unit or calendar keyword.
func unitCanon(u string) (float64, dims, bool) {
	if v, ok := unitCache.Load(u); ok {
		ui := v.(unitInfo)
		return ui.f, ui.d, ui.ok
	}
	var ui unitInfo
	if a, ok := ucumAtoms[u]; ok {
		ui = unitInfo{a.f, a.d, true}
	} else {
		p := &unitParser{s: u}
		f, d, err := p.term()
		ui = unitInfo{f, d, err == nil && p.i == len(p.s)}
	}
	unitCache.Store(u, ui)
	return ui.f, ui.d, ui.ok
}

type unitParser struct {
	s string
	i int
}

type unitError struct{}

func (unitError) Error() string { return "bad unit" }

func (p *unitParser) term() (float64, dims, error) {
	f, d := 1.0, dims{}
	div := false
	if p.i < len(p.s) && p.s[p.i] == '/' {
		div = true
		p.i++
	}
	for {
		cf, cd, err := p.component()
		if err != nil {
			return 0, d, err
		}
		if div {
			f /= cf
			for k := range d {
				d[k] -= cd[k]
			}
		} else {
			f *= cf
			for k := range d {
				d[k] += cd[k]
			}
		}
		if p.i >= len(p.s) || (p.s[p.i] != '.' && p.s[p.i] != '/') {
			return f, d, nil
		}
		div = p.s[p.i] == '/'
		p.i++
	}
}

func (p *unitParser) component() (float64, dims, error) {
	if p.i >= len(p.s) {
		return 0, dims{}, unitError{}
	}
	switch c := p.s[p.i]; {
	case c == '(':
		p.i++
		f, d, err := p.term()
		if err != nil || p.i >= len(p.s) || p.s[p.i] != ')' {
			return 0, d, unitError{}
		}
		p.i++
		e := p.exponent()
		return math.Pow(f, float64(e)), scaleDims(d, e), nil
	case c == '{':
		if err := p.annotation(); err != nil {
			return 0, dims{}, err
		}
		return 1, dims{}, nil
	case isDigit(c):
		start := p.i
		for p.i < len(p.s) && isDigit(p.s[p.i]) {
			p.i++
		}
		n, _ := strconv.ParseFloat(p.s[start:p.i], 64)
		if p.i < len(p.s) && (p.s[p.i] == '*' || p.s[p.i] == '^') {
			p.i++
			e := p.exponent()
			n = math.Pow(n, float64(e))
		}
		if p.i < len(p.s) && p.s[p.i] == '{' {
			if err := p.annotation(); err != nil {
				return 0, dims{}, err
			}
		}
		return n, dims{}, nil
	}
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '[' {
			end := strings.IndexByte(p.s[p.i:], ']')
			if end < 0 {
				return 0, dims{}, unitError{}
			}
			p.i += end + 1
			continue
		}
		if c == '.' || c == '/' || c == '(' || c == ')' || c == '{' || c == '+' || c == '-' || isDigit(c) {
			break
		}
		p.i++
	}
	sym := p.s[start:p.i]
	f, d, ok := atom(sym)
	if !ok {
		return 0, d, unitError{}
	}
	e := p.exponent()
	if p.i < len(p.s) && p.s[p.i] == '{' {
		if err := p.annotation(); err != nil {
			return 0, dims{}, err
		}
	}
	return math.Pow(f, float64(e)), scaleDims(d, e), nil
}

func (p *unitParser) annotation() error {
	end := strings.IndexByte(p.s[p.i:], '}')
	if end < 0 {
		return unitError{}
	}
	p.i += end + 1
	return nil
}

func (p *unitParser) exponent() int {
	start := p.i
	if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
		p.i++
	}
	d := p.i
	for p.i < len(p.s) && isDigit(p.s[p.i]) {
		p.i++
	}
	if p.i == d {
		p.i = start
		return 1
	}
	e, _ := strconv.Atoi(p.s[start:p.i])
	return e
}

func scaleDims(d dims, e int) dims {
	for k := range d {
		d[k] *= int8(e)
	}
	return d
}

func atom(sym string) (float64, dims, bool) {
	if a, ok := ucumAtoms[sym]; ok {
		return a.f, a.d, true
	}
	for _, n := range []int{2, 1} {
		if len(sym) <= n {
			continue
		}
		pf, ok := ucumPrefixes[sym[:n]]
		if !ok {
			continue
		}
		if a, ok := ucumAtoms[sym[n:]]; ok && a.metric {
			return pf * a.f, a.d, true
		}
	}
	return 0, dims{}, false
}
