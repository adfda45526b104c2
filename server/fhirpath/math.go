package fhirpath

import (
	"math"
)

// Math functions, and lowBoundary, highBoundary and precision.

func singleNumber(c *evalCtx, in []item, n *callNode) (item, bool, error) {
	if len(in) == 0 {
		return item{}, false, nil
	}
	if len(in) > 1 {
		return item{}, false, c.errorf(n.pos, "%s() on a collection of %d items", n.fn.name, len(in))
	}
	return in[0], true, nil
}

func mathFunc(f func(float64) float64, toInt bool) funcImpl {
	return func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		it, ok, err := singleNumber(c, in, n)
		if err != nil || !ok {
			return nil, err
		}
		if q, ok := it.v.(quantity); ok && n.fn.name == "abs" {
			q.v.f = math.Abs(q.v.f)
			return []item{{v: q, t: tQuantity}}, nil
		}
		if !isNumber(it) {
			return nil, c.errorf(n.pos, "%s() on %s, not a number", n.fn.name, typeName(it))
		}
		if isIntegerItem(it) && (toInt || n.fn.name == "abs") {
			i, _ := toInteger(it)
			if n.fn.name == "abs" && i < 0 {
				i = -i
			}
			return []item{{v: i, t: tInteger}}, nil
		}
		d, _ := toDecimal(it)
		r := f(d.f)
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return nil, nil
		}
		if toInt {
			return []item{{v: int64(r), t: tInteger}}, nil
		}
		scale := int32(maxScale)
		if n.fn.name == "abs" {
			scale = d.scale
		}
		return []item{{v: trimDecimal(newDecimal(r, scale)), t: tDecimal}}, nil
	}
}

// trimDecimal drops trailing zero digits of a computed decimal.
func trimDecimal(d decimal) decimal {
	for d.scale > 0 && roundTo(d.f, d.scale-1) == d.f {
		d.scale--
	}
	return d
}

func fnLog(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	it, ok, err := singleNumber(c, in, n)
	if err != nil || !ok {
		return nil, err
	}
	b, err := n.arg(c, s, 0)
	if err != nil || len(b) != 1 || !isNumber(b[0]) || !isNumber(it) {
		return nil, err
	}
	x, _ := toDecimal(it)
	base, _ := toDecimal(b[0])
	r := math.Log(x.f) / math.Log(base.f)
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return nil, nil
	}
	return []item{{v: trimDecimal(newDecimal(r, maxScale)), t: tDecimal}}, nil
}

func fnPower(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	it, ok, err := singleNumber(c, in, n)
	if err != nil || !ok {
		return nil, err
	}
	e, err := n.arg(c, s, 0)
	if err != nil || len(e) != 1 || !isNumber(e[0]) || !isNumber(it) {
		return nil, err
	}
	x, _ := toDecimal(it)
	y, _ := toDecimal(e[0])
	r := math.Pow(x.f, y.f)
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return nil, nil
	}
	if isIntegerItem(it) && isIntegerItem(e[0]) && y.f >= 0 {
		return []item{{v: int64(r), t: tInteger}}, nil
	}
	return []item{{v: trimDecimal(newDecimal(r, maxScale)), t: tDecimal}}, nil
}

func fnRound(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	it, ok, err := singleNumber(c, in, n)
	if err != nil || !ok {
		return nil, err
	}
	if !isNumber(it) {
		return nil, c.errorf(n.pos, "round() on %s, not a number", typeName(it))
	}
	var p int64
	if len(n.args) > 0 {
		if p, _, err = c.intArg(s, n, 0); err != nil {
			return nil, err
		}
		if p < 0 || p > 28 {
			return nil, c.errorf(n.pos, "round(): precision %d out of 0..28", p)
		}
	}
	d, _ := toDecimal(it)
	return []item{{v: decimal{f: roundTo(d.f, int32(p)), scale: int32(p)}, t: tDecimal}}, nil
}

func boundaryFunc(high bool) funcImpl {
	return func(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
		it, ok, err := singleNumber(c, in, n)
		if err != nil || !ok {
			return nil, err
		}
		digits, hasDigits := int64(-1), false
		if len(n.args) > 0 {
			if digits, hasDigits, err = c.intArg(s, n, 0); err != nil {
				return nil, err
			}
		}
		if t, ok := toTemporal(it); ok {
			if !hasDigits {
				digits = map[tkind]int64{kindDate: 8, kindDateTime: 17, kindTime: 9}[t.kind]
			}
			r, ok := t.boundary(high, int(digits))
			if !ok {
				return nil, nil
			}
			return []item{{v: r.value(), t: temporalType(r.kind)}}, nil
		}
		var q *quantity
		if v, ok := it.v.(quantity); ok {
			q = &v
			it = item{v: v.v, t: tDecimal}
		}
		if !isNumber(it) {
			return nil, c.errorf(n.pos, "%s() on %s", n.fn.name, typeName(it))
		}
		if !hasDigits {
			digits = 8
		}
		d, _ := toDecimal(it)
		r, ok := decimalBoundary(d.String(), d.scale, high, int(digits))
		if !ok {
			return nil, nil
		}
		if q != nil {
			return []item{{v: quantity{v: r, unit: q.unit}, t: tQuantity}}, nil
		}
		return []item{{v: r, t: tDecimal}}, nil
	}
}

func fnPrecision(c *evalCtx, s *scope, in []item, n *callNode) ([]item, error) {
	it, ok, err := singleNumber(c, in, n)
	if err != nil || !ok {
		return nil, err
	}
	if t, ok := toTemporal(it); ok {
		return []item{{v: int64(t.digitsPrecision()), t: tInteger}}, nil
	}
	if isNumber(it) {
		d, _ := toDecimal(it)
		return []item{{v: int64(d.scale), t: tInteger}}, nil
	}
	return nil, c.errorf(n.pos, "precision() on %s", typeName(it))
}
