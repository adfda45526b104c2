package fhirpath

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

type vkind uint8

const (
	vkNone vkind = iota
	vkBool
	vkString
	vkNumber
	vkTemporal
	vkQuantity // a System.Quantity
	vkObject
)

func kindOf(it item) vkind {
	switch it.v.(type) {
	case bool:
		return vkBool
	case string:
		if it.t != nil {
			switch it.t.sys {
			case sysDate, sysDateTime, sysTime:
				return vkTemporal
			}
		}
		return vkString
	case int64, int, decimal, json.Number, float64:
		return vkNumber
	case Date, DateTime, Time:
		return vkTemporal
	case quantity:
		return vkQuantity
	case map[string]any:
		return vkObject
	}
	return vkNone
}

func isNumber(it item) bool { return kindOf(it) == vkNumber }

// isIntegerItem reports whether a number is an Integer (not a Decimal).
func isIntegerItem(it item) bool {
	if it.t != nil {
		switch it.t.sys {
		case sysInteger:
			return true
		case sysDecimal:
			return false
		}
	}
	switch v := it.v.(type) {
	case int64, int:
		return true
	case json.Number:
		return isIntegerText(string(v))
	case float64:
		return v == math.Trunc(v) && math.Abs(v) < 1<<53
	}
	return false
}

func toInteger(it item) (int64, bool) {
	switch v := it.v.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case json.Number:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			f, err := v.Float64()
			if err != nil || f != math.Trunc(f) {
				return 0, false
			}
			return int64(f), true
		}
		return n, true
	case float64:
		if v != math.Trunc(v) {
			return 0, false
		}
		return int64(v), true
	case decimal:
		if v.f != math.Trunc(v.f) {
			return 0, false
		}
		return int64(v.f), true
	}
	return 0, false
}

func toDecimal(it item) (decimal, bool) {
	switch v := it.v.(type) {
	case decimal:
		return v, true
	case int64:
		return decimal{f: float64(v)}, true
	case int:
		return decimal{f: float64(v)}, true
	case json.Number:
		return parseDecimal(string(v))
	case float64:
		return parseDecimal(strconv.FormatFloat(v, 'f', -1, 64))
	}
	return decimal{}, false
}

// toTemporal reads a date, date-time or time value: a System value or a
// FHIR date, dateTime, instant or time string.
func toTemporal(it item) (temporal, bool) {
	switch v := it.v.(type) {
	case Date:
		return v.t, true
	case DateTime:
		return v.t, true
	case Time:
		return v.t, true
	case string:
		if it.t != nil {
			switch it.t.sys {
			case sysDate:
				return parseTemporal(v, kindDate)
			case sysDateTime:
				return parseTemporal(v, kindDateTime)
			case sysTime:
				return parseTemporal(v, kindTime)
			}
		}
	}
	return temporal{}, false
}

// temporalLike reads a string as a temporal value of the kind of other, for
// comparing untyped strings with dates (a date is promoted to date-time).
func temporalLike(s string, other temporal) (temporal, bool) {
	switch other.kind {
	case kindTime:
		return parseTemporal(s, kindTime)
	case kindDate:
		if t, ok := parseTemporal(s, kindDate); ok {
			return t, true
		}
	}
	return parseTemporal(s, kindDateTime)
}

// temporalPair converts two items for a date/time comparison.
func temporalPair(a, b item) (temporal, temporal, bool) {
	ta, oka := toTemporal(a)
	tb, okb := toTemporal(b)
	switch {
	case oka && okb:
		return ta, tb, true
	case oka:
		if s, ok := b.v.(string); ok {
			tb, okb = temporalLike(s, ta)
			return ta, tb, okb
		}
	case okb:
		if s, ok := a.v.(string); ok {
			ta, oka = temporalLike(s, tb)
			return ta, tb, oka
		}
	}
	return ta, tb, false
}

// toQuantity reads a System.Quantity, or a FHIR Quantity (code when the
// system is UCUM or absent, else unit).
func toQuantity(it item) (quantity, bool) {
	switch v := it.v.(type) {
	case quantity:
		return v, true
	case map[string]any:
		if it.t != nil && it.t.sys != sysQuantity {
			return quantity{}, false
		}
		val, ok := v["value"]
		if !ok {
			return quantity{}, false
		}
		d, ok := toDecimal(item{v: val})
		if !ok {
			return quantity{}, false
		}
		unit, _ := v["unit"].(string)
		if code, ok := v["code"].(string); ok {
			if sys, _ := v["system"].(string); sys == "" || sys == "http://unitsofmeasure.org" {
				unit = code
			}
		}
		if unit == "" {
			unit = "1"
		}
		return quantity{v: d, unit: unit}, true
	}
	return quantity{}, false
}

func compareNumbers(a, b item) int {
	if isIntegerItem(a) && isIntegerItem(b) {
		x, okx := toInteger(a)
		y, oky := toInteger(b)
		if okx && oky {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	x, _ := toDecimal(a)
	y, _ := toDecimal(b)
	switch {
	case x.f < y.f:
		return -1
	case x.f > y.f:
		return 1
	}
	return 0
}

// itemEqual implements = on single items; ok is false when the result is
// unknown (dates of different precisions, quantities of incomparable
// units).
func itemEqual(a, b item) (eq, ok bool) {
	ka, kb := kindOf(a), kindOf(b)
	switch {
	case ka == vkNumber && kb == vkNumber:
		return compareNumbers(a, b) == 0, true
	case ka == vkTemporal || kb == vkTemporal:
		ta, tb, ok := temporalPair(a, b)
		if !ok {
			return false, true
		}
		cmp, known, comparable := compareTemporal(ta, tb)
		if !comparable {
			return false, true
		}
		if !known {
			return false, false
		}
		return cmp == 0, true
	case ka == vkQuantity || kb == vkQuantity:
		qa, oka := toQuantity(a)
		qb, okb := toQuantity(b)
		if !oka || !okb {
			return false, true
		}
		cmp, known := compareQuantities(qa, qb)
		return known && cmp == 0, known
	case ka == vkString && kb == vkString:
		return a.v.(string) == b.v.(string), true
	case ka == vkBool && kb == vkBool:
		return a.v.(bool) == b.v.(bool), true
	case ka == vkObject && kb == vkObject:
		ma, mb := a.v.(map[string]any), b.v.(map[string]any)
		return mapID(ma) == mapID(mb) || jsonEqual(ma, mb, false), true
	case ka == vkNone && kb == vkNone:
		return jsonEqual(a.ext, b.ext, false), true
	}
	return false, true
}

// itemEquivalent implements ~ on single items.
func itemEquivalent(a, b item) bool {
	ka, kb := kindOf(a), kindOf(b)
	switch {
	case ka == vkNumber && kb == vkNumber:
		x, _ := toDecimal(a)
		y, _ := toDecimal(b)
		s := min(x.scale, y.scale)
		return roundTo(x.f, s) == roundTo(y.f, s)
	case ka == vkTemporal || kb == vkTemporal:
		ta, tb, ok := temporalPair(a, b)
		if !ok {
			return false
		}
		cmp, known, _ := compareTemporal(ta, tb)
		return known && cmp == 0
	case ka == vkQuantity || kb == vkQuantity:
		qa, oka := toQuantity(a)
		qb, okb := toQuantity(b)
		return oka && okb && equivalentQuantities(qa, qb)
	case ka == vkString && kb == vkString:
		return normalizeSpace(a.v.(string)) == normalizeSpace(b.v.(string))
	case ka == vkBool && kb == vkBool:
		return a.v.(bool) == b.v.(bool)
	case ka == vkObject && kb == vkObject:
		return jsonEqual(a.v, b.v, true)
	case ka == vkNone && kb == vkNone:
		return true
	}
	return false
}

func normalizeSpace(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// jsonEqual compares two JSON values; equivalent compares strings
// ignoring case and white space.
func jsonEqual(a, b any, equivalent bool) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if equivalent && k == "id" {
				continue
			}
			w, ok := y[k]
			if !ok || !jsonEqual(v, w, equivalent) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i], equivalent) {
				return false
			}
		}
		return true
	case string:
		y, ok := b.(string)
		if equivalent && ok {
			return normalizeSpace(x) == normalizeSpace(y)
		}
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case json.Number, float64:
		if a == b {
			return true
		}
		switch b.(type) {
		case json.Number, float64:
			return compareNumbers(item{v: a}, item{v: b}) == 0
		}
		return false
	case nil:
		return b == nil
	}
	return false
}

// equalCollections implements = on collections: ordered, item by item.
func equalCollections(l, r []item) (eq, ok bool) {
	if len(l) == 0 || len(r) == 0 {
		return false, false
	}
	if len(l) != len(r) {
		return false, true
	}
	known := true
	for i := range l {
		e, ok := itemEqual(l[i], r[i])
		if ok && !e {
			return false, true
		}
		if !ok {
			known = false
		}
	}
	return known, known
}

// equivalentCollections implements ~ on collections, in any order.
func equivalentCollections(l, r []item) bool {
	if len(l) != len(r) {
		return false
	}
	if len(l) == 1 {
		return itemEquivalent(l[0], r[0])
	}
	used := make([]bool, len(r))
outer:
	for _, a := range l {
		for j, b := range r {
			if !used[j] && itemEquivalent(a, b) {
				used[j] = true
				continue outer
			}
		}
		return false
	}
	return true
}

// compareItems orders two single items: numbers, strings, dates and times,
// quantities. ok is false when the order is unknown.
func compareItems(a, b item) (cmp int, ok bool, err error) {
	ka, kb := kindOf(a), kindOf(b)
	switch {
	case ka == vkNumber && kb == vkNumber:
		return compareNumbers(a, b), true, nil
	case ka == vkTemporal || kb == vkTemporal:
		ta, tb, ok := temporalPair(a, b)
		if ok {
			cmp, known, comparable := compareTemporal(ta, tb)
			if comparable {
				return cmp, known, nil
			}
		}
	case ka == vkQuantity || kb == vkQuantity:
		qa, oka := toQuantity(a)
		qb, okb := toQuantity(b)
		if oka && okb {
			cmp, known := compareQuantities(qa, qb)
			return cmp, known, nil
		}
	case ka == vkString && kb == vkString:
		return strings.Compare(a.v.(string), b.v.(string)), true, nil
	}
	return 0, false, fmt.Errorf("cannot compare %s with %s", typeName(a), typeName(b))
}

// compareQuantities orders two quantities whose units are comparable.
func compareQuantities(a, b quantity) (int, bool) {
	fa, da, oka := unitCanon(a.unit)
	fb, db, okb := unitCanon(b.unit)
	if !oka || !okb || da != db {
		return 0, false
	}
	x, y := a.v.f*fa, b.v.f*fb
	if approxEqual(x, y) {
		return 0, true
	}
	if x < y {
		return -1, true
	}
	return 1, true
}

func approxEqual(x, y float64) bool {
	if x == y {
		return true
	}
	return math.Abs(x-y) <= 1e-12*math.Max(math.Abs(x), math.Abs(y))
}

// equivalentQuantities compares in the unit of a, at the precision of the
// less precise operand.
func equivalentQuantities(a, b quantity) bool {
	fa, da, oka := unitCanon(a.unit)
	fb, db, okb := unitCanon(b.unit)
	if !oka || !okb || da != db {
		return false
	}
	y := b.v.f * fb / fa
	s := min(a.v.scale, b.v.scale)
	return roundTo(a.v.f, s) == roundTo(y, s)
}

// union merges collections, removing duplicates.
func union(l, r []item) []item {
	if len(r) == 0 && len(l) <= 1 {
		return l
	}
	if len(l) == 0 && len(r) <= 1 {
		return r
	}
	out := make([]item, 0, len(l)+len(r))
	out = appendDistinct(out, l)
	return appendDistinct(out, r)
}

func appendDistinct(out, in []item) []item {
	for _, it := range in {
		if !containsItem(out, it) {
			out = append(out, it)
		}
	}
	return out
}

func containsItem(coll []item, x item) bool {
	for _, it := range coll {
		if eq, ok := itemEqual(it, x); ok && eq {
			return true
		}
	}
	return false
}
