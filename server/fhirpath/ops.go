package fhirpath

import (
	"errors"
	"fmt"
	"math"
)

// Limits that keep an expression from a client (a FHIRPath Patch) from
// exhausting memory: the longest string built by + and &, the most items
// repeat() collects.
const (
	maxString = 1 << 20
	maxRepeat = 100000
)

var errTooLong = errors.New("string longer than 1 MiB")

// arithmetic implements + - * / div mod on single items.
func arithmetic(op opKind, a, b item) ([]item, error) {
	ka, kb := kindOf(a), kindOf(b)
	switch {
	case ka == vkNumber && kb == vkNumber:
		return numberOp(op, a, b)
	case op == opAdd && ka == vkString && kb == vkString:
		x, y := a.v.(string), b.v.(string)
		if len(x)+len(y) > maxString {
			return nil, errTooLong
		}
		return []item{{v: x + y, t: tString}}, nil
	case (op == opAdd || op == opSub) && ka == vkTemporal:
		t, ok := toTemporal(a)
		q, okq := toQuantity(b)
		if !ok || !okq {
			break
		}
		sign := 1
		if op == opSub {
			sign = -1
		}
		r, err := addQuantity(t, q, sign)
		if err != nil {
			return nil, err
		}
		return []item{{v: r.value(), t: temporalType(r.kind)}}, nil
	case ka == vkQuantity || kb == vkQuantity || (ka == vkObject && kb == vkNumber) || (ka == vkNumber && kb == vkObject):
		return quantityOp(op, a, b)
	}
	return nil, fmt.Errorf("cannot apply '%s' to %s and %s", opNames[op], typeName(a), typeName(b))
}

func temporalType(k tkind) *typeDef {
	switch k {
	case kindDate:
		return tDate
	case kindTime:
		return tTime
	}
	return tDateTime
}

func numberOp(op opKind, a, b item) ([]item, error) {
	if isIntegerItem(a) && isIntegerItem(b) && op != opDiv {
		x, _ := toInteger(a)
		y, _ := toInteger(b)
		var r int64
		switch op {
		case opAdd:
			r = x + y
		case opSub:
			r = x - y
		case opMul:
			r = x * y
		case opIntDiv:
			if y == 0 {
				return nil, nil
			}
			r = x / y
		case opMod:
			if y == 0 {
				return nil, nil
			}
			r = x % y
		}
		return []item{{v: r, t: tInteger}}, nil
	}
	x, _ := toDecimal(a)
	y, _ := toDecimal(b)
	var r decimal
	switch op {
	case opAdd:
		r = newDecimal(x.f+y.f, max(x.scale, y.scale))
	case opSub:
		r = newDecimal(x.f-y.f, max(x.scale, y.scale))
	case opMul:
		r = newDecimal(x.f*y.f, x.scale+y.scale)
	case opDiv:
		if y.f == 0 {
			return nil, nil
		}
		r = quotient(x, y)
	case opIntDiv:
		if y.f == 0 {
			return nil, nil
		}
		return []item{{v: int64(math.Trunc(x.f / y.f)), t: tInteger}}, nil
	case opMod:
		if y.f == 0 {
			return nil, nil
		}
		r = newDecimal(math.Mod(x.f, y.f), max(x.scale, y.scale))
	}
	return []item{{v: r, t: tDecimal}}, nil
}

// quotient divides at maxScale digits, then drops trailing zeros down to
// the larger scale of the operands.
func quotient(x, y decimal) decimal {
	r := newDecimal(x.f/y.f, maxScale)
	floor := max(x.scale, y.scale)
	for r.scale > floor && roundTo(r.f, r.scale-1) == r.f {
		r.scale--
	}
	return r
}

func quantityOp(op opKind, a, b item) ([]item, error) {
	qa, oka := toQuantity(a)
	qb, okb := toQuantity(b)
	na, nb := isNumber(a), isNumber(b)
	if na {
		d, _ := toDecimal(a)
		qa, oka = quantity{v: d, unit: "1"}, true
	}
	if nb {
		d, _ := toDecimal(b)
		qb, okb = quantity{v: d, unit: "1"}, true
	}
	if !oka || !okb {
		return nil, fmt.Errorf("cannot apply '%s' to %s and %s", opNames[op], typeName(a), typeName(b))
	}
	switch op {
	case opAdd, opSub:
		fa, da, ok1 := unitCanon(qa.unit)
		fb, db, ok2 := unitCanon(qb.unit)
		if !ok1 || !ok2 || da != db {
			return nil, nil
		}
		y := qb.v.f * fb / fa
		if op == opSub {
			y = -y
		}
		return []item{{v: quantity{v: newDecimal(qa.v.f+y, max(qa.v.scale, qb.v.scale)), unit: qa.unit}, t: tQuantity}}, nil
	case opMul:
		unit := qa.unit + "." + qb.unit
		switch {
		case qa.unit == "1":
			unit = qb.unit
		case qb.unit == "1":
			unit = qa.unit
		}
		return []item{{v: quantity{v: newDecimal(qa.v.f*qb.v.f, qa.v.scale+qb.v.scale), unit: unit}, t: tQuantity}}, nil
	case opDiv:
		if qb.v.f == 0 {
			return nil, nil
		}
		unit := qa.unit + "/(" + qb.unit + ")"
		switch {
		case qa.unit == qb.unit:
			unit = "1"
		case qb.unit == "1":
			unit = qa.unit
		}
		return []item{{v: quantity{v: quotient(qa.v, qb.v), unit: unit}, t: tQuantity}}, nil
	}
	return nil, fmt.Errorf("cannot apply '%s' to quantities", opNames[op])
}

// concat implements &: strings joined, empty operands read as ”.
func concat(c *evalCtx, pos int, l, r []item) ([]item, error) {
	if len(l) > 1 || len(r) > 1 {
		return nil, c.errorf(pos, "operator '&' needs single items, got %d and %d", len(l), len(r))
	}
	var s string
	for _, in := range [][]item{l, r} {
		if len(in) == 0 {
			continue
		}
		v, ok := in[0].v.(string)
		if !ok {
			return nil, c.errorf(pos, "operator '&' needs strings, got %s", typeName(in[0]))
		}
		if len(s)+len(v) > maxString {
			return nil, c.errorf(pos, "%v", errTooLong)
		}
		s += v
	}
	return []item{{v: s, t: tString}}, nil
}
