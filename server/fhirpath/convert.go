package fhirpath

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// Conversion functions: toX() and convertsToX().

// convertInput converts the single input item to the System type k;
// ok is false when it does not convert.
func (c *evalCtx) convertInput(s *scope, in []item, n *callNode, k string) (item, bool, error) {
	if len(in) == 0 {
		return item{}, false, nil
	}
	if len(in) > 1 {
		return item{}, false, c.errorf(n.pos, "%s() on a collection of %d items", n.fn.name, len(in))
	}
	if len(n.args) > 0 && k != "Quantity" {
		return item{}, false, c.errorf(n.pos, "%s() takes no argument", n.fn.name)
	}
	it, ok := convert(in[0], k)
	if ok && k == "Quantity" && len(n.args) > 0 {
		unit, uok, err := c.stringArg(s, n, 0)
		if err != nil || !uok {
			return item{}, false, err
		}
		q := it.v.(quantity)
		f1, d1, ok1 := unitCanon(q.unit)
		f2, d2, ok2 := unitCanon(unit)
		if !ok1 || !ok2 || d1 != d2 {
			return item{}, false, nil
		}
		it = item{v: quantity{v: newDecimal(q.v.f*f1/f2, maxScale), unit: unit}, t: tQuantity}
	}
	return it, ok, nil
}

var (
	reInteger  = regexp.MustCompile(`^[+-]?[0-9]+$`)
	reDecimal  = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)
	reQuantity = regexp.MustCompile(`^([+-]?[0-9]+(?:\.[0-9]+)?)\s*(?:'([^']+)'|([a-zA-Z]+))?$`)
)

func convert(it item, k string) (item, bool) {
	switch k {
	case "Boolean":
		switch v := it.v.(type) {
		case bool:
			return item{v: v, t: tBoolean}, true
		case string:
			switch strings.ToLower(v) {
			case "true", "t", "yes", "y", "1", "1.0":
				return item{v: true, t: tBoolean}, true
			case "false", "f", "no", "n", "0", "0.0":
				return item{v: false, t: tBoolean}, true
			}
		default:
			if isNumber(it) {
				d, _ := toDecimal(it)
				switch d.f {
				case 1:
					return item{v: true, t: tBoolean}, true
				case 0:
					return item{v: false, t: tBoolean}, true
				}
			}
		}
	case "Integer":
		switch v := it.v.(type) {
		case bool:
			return item{v: map[bool]int64{false: 0, true: 1}[v], t: tInteger}, true
		case string:
			if reInteger.MatchString(v) {
				if i, err := strconv.ParseInt(v, 10, 64); err == nil {
					return item{v: i, t: tInteger}, true
				}
			}
		default:
			if isNumber(it) && isIntegerItem(it) {
				i, ok := toInteger(it)
				return item{v: i, t: tInteger}, ok
			}
		}
	case "Decimal":
		switch v := it.v.(type) {
		case bool:
			return item{v: decimal{f: map[bool]float64{false: 0, true: 1}[v], scale: 1}, t: tDecimal}, true
		case string:
			if reDecimal.MatchString(v) {
				d, ok := parseDecimal(v)
				return item{v: d, t: tDecimal}, ok
			}
		default:
			if isNumber(it) {
				d, ok := toDecimal(it)
				return item{v: d, t: tDecimal}, ok
			}
		}
	case "String":
		if str, ok := stringValue(it); ok {
			return item{v: str, t: tString}, true
		}
	case "Date", "DateTime", "Time":
		kind := map[string]tkind{"Date": kindDate, "DateTime": kindDateTime, "Time": kindTime}[k]
		t, ok := toTemporal(it)
		if !ok {
			str, isStr := it.v.(string)
			if !isStr {
				return item{}, false
			}
			if t, ok = parseTemporal(str, kind); !ok && kind == kindDate {
				t, ok = parseTemporal(str, kindDateTime)
			}
			if !ok {
				return item{}, false
			}
		}
		switch {
		case t.kind == kind:
		case kind == kindDate && t.kind == kindDateTime:
			t.kind = kindDate
			t.prec = min(t.prec, Day)
			t.truncate()
		case kind == kindDateTime && t.kind == kindDate:
			t.kind = kindDateTime
		default:
			return item{}, false
		}
		return item{v: t.value(), t: temporalType(t.kind)}, true
	case "Quantity":
		switch v := it.v.(type) {
		case bool:
			return item{v: quantity{v: decimal{f: map[bool]float64{false: 0, true: 1}[v], scale: 1}, unit: "1"}, t: tQuantity}, true
		case string:
			m := reQuantity.FindStringSubmatch(v)
			if m == nil {
				return item{}, false
			}
			d, _ := parseDecimal(m[1])
			unit := "1"
			switch {
			case m[2] != "":
				unit = m[2]
			case m[3] != "":
				if !isCalendarKeyword(m[3]) {
					return item{}, false
				}
				unit = m[3]
			}
			return item{v: quantity{v: d, unit: unit}, t: tQuantity}, true
		default:
			if isNumber(it) {
				d, _ := toDecimal(it)
				return item{v: quantity{v: d, unit: "1"}, t: tQuantity}, true
			}
			if q, ok := toQuantity(it); ok {
				return item{v: q, t: tQuantity}, true
			}
		}
	}
	return item{}, false
}

// stringValue is the toString() of a primitive value.
func stringValue(it item) (string, bool) {
	switch v := it.v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case decimal:
		return v.String(), true
	case json.Number:
		return string(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case quantity:
		return v.String(), true
	case Date:
		return v.String(), true
	case DateTime:
		return v.String(), true
	case Time:
		return v.String(), true
	}
	return "", false
}
