package fhirpath

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// decimal is a System.Decimal: a float64 with the number of decimal digits
// it carries (1.10 has scale 2). Arithmetic results are rounded to their
// scale, which keeps 1.8 - 1.2 = 0.6 exact in practice; the scale also
// drives equivalence (~), toString() and precision().
type decimal struct {
	f     float64
	scale int32
}

// maxScale bounds the scale of computed decimals (divisions, products).
const maxScale = 8

var pow10tab = func() [24]float64 {
	var t [24]float64
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 10
	}
	return t
}()

func pow10(n int32) float64 {
	if n >= 0 && int(n) < len(pow10tab) {
		return pow10tab[n]
	}
	return math.Pow(10, float64(n))
}

// roundTo rounds f half away from zero to scale decimal digits, when that
// can be done exactly in a float64.
func roundTo(f float64, scale int32) float64 {
	if scale < 0 {
		scale = 0
	}
	p := pow10(scale)
	x := f * p
	if math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) >= 1<<52 {
		return f
	}
	return math.Round(x) / p
}

func newDecimal(f float64, scale int32) decimal {
	if scale > maxScale {
		scale = maxScale
	}
	return decimal{f: roundTo(f, scale), scale: scale}
}

// parseDecimal parses a FHIR or FHIRPath decimal text, keeping its scale.
func parseDecimal(s string) (decimal, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return decimal{}, false
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		exp, _ = strconv.Atoi(s[i+1:])
	}
	scale := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		scale = len(mant) - i - 1
	}
	scale = min(max(scale-exp, 0), 32)
	return decimal{f: f, scale: int32(scale)}, true
}

func (d decimal) String() string {
	return strconv.FormatFloat(d.f, 'f', int(d.scale), 64)
}

// isIntegerText reports whether a JSON number text has no fraction or
// exponent, the sign of a FHIR integer.
func isIntegerText(s string) bool {
	return !strings.ContainsAny(s, ".eE")
}

// Precision is the precision of a Date, DateTime or Time.
type Precision uint8

// The precisions of temporal values, coarsest first.
const (
	Year Precision = iota + 1
	Month
	Day
	Hour
	Minute
	Second
	Millisecond
)

type tkind uint8

const (
	kindDate tkind = iota + 1
	kindDateTime
	kindTime
)

// temporal is the common representation of dates, date-times and times.
type temporal struct {
	kind                                tkind
	prec                                Precision
	year, month, day, hour, minute, sec int
	nano                                int
	zoned                               bool
	offset                              int // seconds east of UTC, when zoned
}

// Date is a FHIRPath System.Date value (year, month or day precision).
type Date struct{ t temporal }

// DateTime is a FHIRPath System.DateTime value, with an optional zone.
type DateTime struct{ t temporal }

// Time is a FHIRPath System.Time value (a time of day without zone).
type Time struct{ t temporal }

// String returns the FHIR form of the date: 2014, 2014-05 or 2014-05-21.
func (d Date) String() string { return d.t.String() }

// Precision returns the precision of the date.
func (d Date) Precision() Precision { return d.t.prec }

// Time returns the start of the date, at midnight UTC.
func (d Date) Time() time.Time { return d.t.time() }

// String returns the FHIR form of the date-time, e.g. 2014-05-21T10:30:00+02:00.
func (d DateTime) String() string { return d.t.String() }

// Precision returns the precision of the date-time.
func (d DateTime) Precision() Precision { return d.t.prec }

// Time returns the start of the date-time; UTC when it has no zone.
func (d DateTime) Time() time.Time { return d.t.time() }

// Zoned reports whether the date-time carries a zone offset.
func (d DateTime) Zoned() bool { return d.t.zoned }

// String returns the FHIR form of the time, e.g. 10:30:00.
func (t Time) String() string { return t.t.String() }

// Precision returns the precision of the time.
func (t Time) Precision() Precision { return t.t.prec }

func (t temporal) time() time.Time {
	loc := time.UTC
	if t.zoned && t.offset != 0 {
		loc = time.FixedZone("", t.offset)
	}
	y, m, d := t.year, t.month, t.day
	if t.kind == kindTime {
		y, m, d = 0, 1, 1
	}
	if m == 0 {
		m = 1
	}
	if d == 0 {
		d = 1
	}
	return time.Date(y, time.Month(m), d, t.hour, t.minute, t.sec, t.nano, loc)
}

func (t temporal) value() any {
	switch t.kind {
	case kindDate:
		return Date{t}
	case kindTime:
		return Time{t}
	}
	return DateTime{t}
}

func (t temporal) String() string {
	var b strings.Builder
	if t.kind != kindTime {
		fmt.Fprintf(&b, "%04d", t.year)
		if t.prec >= Month {
			fmt.Fprintf(&b, "-%02d", t.month)
		}
		if t.prec >= Day {
			fmt.Fprintf(&b, "-%02d", t.day)
		}
		if t.kind == kindDate || t.prec < Hour {
			return b.String()
		}
		b.WriteByte('T')
	}
	fmt.Fprintf(&b, "%02d", t.hour)
	if t.prec >= Minute {
		fmt.Fprintf(&b, ":%02d", t.minute)
	}
	if t.prec >= Second {
		fmt.Fprintf(&b, ":%02d", t.sec)
	}
	if t.prec >= Millisecond {
		fmt.Fprintf(&b, ".%03d", t.nano/1e6)
	}
	if t.kind == kindDateTime && t.zoned {
		if t.offset == 0 {
			b.WriteByte('Z')
		} else {
			off, sign := t.offset, '+'
			if off < 0 {
				off, sign = -off, '-'
			}
			fmt.Fprintf(&b, "%c%02d:%02d", sign, off/3600, off/60%60)
		}
	}
	return b.String()
}

// digitsPrecision is the precision() of a temporal value: the number of
// digits it carries (2014-01-05T10:30:00.000 has 17).
func (t temporal) digitsPrecision() int {
	if t.kind == kindTime {
		return [...]int{0, 0, 0, 0, 2, 4, 6, 9}[t.prec]
	}
	return [...]int{0, 4, 6, 8, 10, 12, 14, 17}[t.prec]
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func atoiN(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, len(s) > 0
}

// parseTemporal parses the FHIR/FHIRPath text of a date (kindDate), a
// date-time (kindDateTime; a date alone is a date-time of day precision)
// or a time (kindTime).
func parseTemporal(s string, kind tkind) (temporal, bool) {
	t := temporal{kind: kind}
	rest := s
	if kind != kindTime {
		if len(rest) < 4 {
			return t, false
		}
		var ok bool
		if t.year, ok = atoiN(rest[:4]); !ok {
			return t, false
		}
		t.prec, rest = Year, rest[4:]
		if len(rest) >= 3 && rest[0] == '-' {
			if t.month, ok = atoiN(rest[1:3]); !ok || t.month < 1 || t.month > 12 {
				return t, false
			}
			t.prec, rest = Month, rest[3:]
			if len(rest) >= 3 && rest[0] == '-' {
				if t.day, ok = atoiN(rest[1:3]); !ok || t.day < 1 || t.day > daysIn(t.year, t.month) {
					return t, false
				}
				t.prec, rest = Day, rest[3:]
			}
		}
		if rest == "" {
			return t, true
		}
		if kind == kindDate || rest[0] != 'T' {
			return t, false
		}
		rest = rest[1:]
		if rest == "" { // FHIRPath @2015T
			return t, true
		}
		if t.prec != Day {
			return t, false
		}
	}
	var ok bool
	if len(rest) < 2 {
		return t, false
	}
	if t.hour, ok = atoiN(rest[:2]); !ok || t.hour > 23 {
		return t, false
	}
	t.prec, rest = Hour, rest[2:]
	if len(rest) >= 3 && rest[0] == ':' {
		if t.minute, ok = atoiN(rest[1:3]); !ok || t.minute > 59 {
			return t, false
		}
		t.prec, rest = Minute, rest[3:]
		if len(rest) >= 3 && rest[0] == ':' {
			if t.sec, ok = atoiN(rest[1:3]); !ok || t.sec > 60 {
				return t, false
			}
			t.prec, rest = Second, rest[3:]
			if len(rest) >= 2 && rest[0] == '.' {
				i := 1
				for i < len(rest) && isDigit(rest[i]) {
					i++
				}
				if i == 1 {
					return t, false
				}
				frac := rest[1:i]
				if len(frac) > 9 {
					frac = frac[:9]
				}
				n, _ := atoiN(frac)
				t.nano = n * int(math.Pow10(9-len(frac)))
				t.prec, rest = Millisecond, rest[i:]
			}
		}
	}
	if rest == "" {
		return t, true
	}
	if kind == kindTime {
		return t, false
	}
	if rest == "Z" {
		t.zoned = true
		return t, true
	}
	if len(rest) != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':' {
		return t, false
	}
	h, ok1 := atoiN(rest[1:3])
	m, ok2 := atoiN(rest[4:6])
	if !ok1 || !ok2 || h > 14 || m > 59 {
		return t, false
	}
	t.zoned, t.offset = true, h*3600+m*60
	if rest[0] == '-' {
		t.offset = -t.offset
	}
	return t, true
}

// fromTime makes a temporal value of the given kind and precision.
func fromTime(tm time.Time, kind tkind, prec Precision, zoned bool) temporal {
	_, off := tm.Zone()
	t := temporal{kind: kind, prec: prec, year: tm.Year(), month: int(tm.Month()), day: tm.Day(),
		hour: tm.Hour(), minute: tm.Minute(), sec: tm.Second(), nano: tm.Nanosecond(), zoned: zoned, offset: off}
	t.truncate()
	return t
}

// truncate zeroes the fields below the precision.
func (t *temporal) truncate() {
	if t.prec < Millisecond {
		t.nano = 0
	} else {
		t.nano -= t.nano % 1e6
	}
	if t.prec < Second {
		t.sec = 0
	}
	if t.prec < Minute {
		t.minute = 0
	}
	if t.prec < Hour {
		t.hour = 0
	}
	if t.kind != kindTime {
		if t.prec < Day {
			t.day = 0
		}
		if t.prec < Month {
			t.month = 0
		}
	}
	if t.kind != kindDateTime {
		t.zoned, t.offset = false, 0
	}
}

// compareTemporal compares two temporal values following FHIRPath: field
// by field to the coarser precision (seconds and fractions count as one
// precision). ok is false when the result is unknown: different
// precisions with equal common fields, one side zoned and not the other,
// or kinds that do not compare (a time and a date). comparable is false in
// the last case only.
func compareTemporal(a, b temporal) (cmp int, ok, comparable bool) {
	if a.kind == kindDate && b.kind == kindDateTime {
		a.kind = kindDateTime
	}
	if b.kind == kindDate && a.kind == kindDateTime {
		b.kind = kindDateTime
	}
	if a.kind != b.kind {
		return 0, false, false
	}
	if a.kind == kindDateTime && a.prec >= Hour && b.prec >= Hour {
		if a.zoned != b.zoned {
			return 0, false, true
		}
		if a.zoned && a.offset != b.offset {
			a = a.utc()
			b = b.utc()
		}
	}
	pa, pb := a.prec, b.prec
	if pa == Millisecond {
		pa = Second
	}
	if pb == Millisecond {
		pb = Second
	}
	p := min(pa, pb)
	fa := [...]int{0, a.year, a.month, a.day, a.hour, a.minute, a.sec*1e9 + a.nano}
	fb := [...]int{0, b.year, b.month, b.day, b.hour, b.minute, b.sec*1e9 + b.nano}
	first := Year
	if a.kind == kindTime {
		first = Hour
	}
	for i := first; i <= p; i++ {
		if fa[i] != fb[i] {
			if fa[i] < fb[i] {
				return -1, true, true
			}
			return 1, true, true
		}
	}
	if pa != pb {
		return 0, false, true
	}
	return 0, true, true
}

// utc converts a zoned date-time of hour precision or finer to UTC.
func (t temporal) utc() temporal {
	u := t.time().UTC()
	r := fromTime(u, t.kind, t.prec, true)
	r.nano = t.nano
	r.offset = 0
	return r
}

// calendarUnit names the unit of a quantity usable in date arithmetic:
// year, month, week, day, hour, minute, second or millisecond. UCUM 'a'
// and 'mo' are not calendar durations and are refused.
func calendarUnit(unit string) (string, bool) {
	switch unit {
	case "year", "years":
		return "year", true
	case "month", "months":
		return "month", true
	case "week", "weeks", "wk":
		return "week", true
	case "day", "days", "d":
		return "day", true
	case "hour", "hours", "h":
		return "hour", true
	case "minute", "minutes", "min":
		return "minute", true
	case "second", "seconds", "s":
		return "second", true
	case "millisecond", "milliseconds", "ms":
		return "millisecond", true
	}
	return "", false
}

// addQuantity adds sign × q to a temporal value; the amount is truncated
// to a whole number of its unit and the result keeps the precision of t.
func addQuantity(t temporal, q quantity, sign int) (temporal, error) {
	unit, ok := calendarUnit(q.unit)
	if !ok {
		return t, fmt.Errorf("cannot add a quantity in '%s' to a date/time", q.unit)
	}
	n := int(math.Trunc(q.v.f)) * sign
	if t.kind == kindTime && (unit == "year" || unit == "month" || unit == "week" || unit == "day") {
		return t, fmt.Errorf("cannot add %s to a time", unit)
	}
	tm := t.time()
	switch unit {
	case "year", "month":
		y, m := tm.Year(), int(tm.Month())
		if unit == "year" {
			y += n
		} else {
			m += n
			y += (m - 1) / 12
			m = (m-1)%12 + 1
			if m <= 0 {
				m += 12
				y--
			}
		}
		d := min(tm.Day(), daysIn(y, m))
		tm = time.Date(y, time.Month(m), d, tm.Hour(), tm.Minute(), tm.Second(), tm.Nanosecond(), tm.Location())
	case "week":
		tm = tm.AddDate(0, 0, 7*n)
	case "day":
		tm = tm.AddDate(0, 0, n)
	case "hour":
		tm = tm.Add(time.Duration(n) * time.Hour)
	case "minute":
		tm = tm.Add(time.Duration(n) * time.Minute)
	case "second":
		tm = tm.Add(time.Duration(n) * time.Second)
	case "millisecond":
		tm = tm.Add(time.Duration(n) * time.Millisecond)
	}
	r := fromTime(tm, t.kind, t.prec, t.zoned)
	r.offset = t.offset
	return r, nil
}

// boundary returns the lowest or highest value a temporal value may stand
// for, to the given precision in digits (see digitsPrecision).
func (t temporal) boundary(high bool, digits int) (temporal, bool) {
	var prec Precision
	if t.kind == kindTime {
		switch digits {
		case 2:
			prec = Hour
		case 4:
			prec = Minute
		case 6:
			prec = Second
		case 9:
			prec = Millisecond
		default:
			return t, false
		}
	} else {
		switch digits {
		case 4:
			prec = Year
		case 6:
			prec = Month
		case 8:
			prec = Day
		case 10:
			prec = Hour
		case 12:
			prec = Minute
		case 14:
			prec = Second
		case 17:
			prec = Millisecond
		default:
			return t, false
		}
		if t.kind == kindDate && prec > Day {
			return t, false
		}
	}
	if t.kind == kindDateTime && t.prec == Hour {
		t.prec = Minute // an hour alone is not a FHIR time: read T08 as 08:00
	}
	r := t
	if prec < Hour && r.kind == kindDateTime {
		r.kind = kindDate
	}
	r.prec = prec
	if prec > t.prec {
		for p := t.prec + 1; p <= prec; p++ {
			switch p {
			case Month:
				r.month = map[bool]int{false: 1, true: 12}[high]
			case Day:
				r.day = 1
				if high {
					r.day = daysIn(r.year, r.month)
				}
			case Hour:
				r.hour = map[bool]int{false: 0, true: 23}[high]
			case Minute:
				r.minute = map[bool]int{false: 0, true: 59}[high]
			case Second:
				r.sec = map[bool]int{false: 0, true: 59}[high]
			case Millisecond:
				r.nano = map[bool]int{false: 0, true: 999e6}[high]
			}
		}
	}
	if r.kind == kindDateTime && !r.zoned {
		r.zoned, r.offset = true, 14*3600
		if high {
			r.offset = -12 * 3600
		}
	}
	r.truncate()
	return r, true
}

// decimalBoundary returns the low or high boundary of a decimal text at the
// given number of decimal digits: the value minus or plus half a unit of
// its last digit, truncated (low) or rounded (high); negative values use
// the opposite boundary of their magnitude.
func decimalBoundary(text string, scale int32, high bool, digits int) (decimal, bool) {
	if digits < 0 || digits > 28 {
		return decimal{}, false
	}
	neg := strings.HasPrefix(text, "-")
	text = strings.TrimPrefix(strings.TrimPrefix(text, "-"), "+")
	unscaled, ok := new(big.Int).SetString(strings.Replace(text, ".", "", 1), 10)
	if !ok {
		return decimal{}, false
	}
	// value = unscaled × 10^-scale; work at scale+1 with half a unit.
	v := new(big.Int).Mul(unscaled, big.NewInt(10))
	up := high != neg
	if up {
		v.Add(v, big.NewInt(5))
	} else {
		v.Sub(v, big.NewInt(5))
	}
	s := int(scale) + 1
	// rescale v × 10^-s to digits.
	var r *big.Int
	if digits >= s {
		r = new(big.Int).Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits-s)), nil))
	} else {
		div := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s-digits)), nil)
		q, m := new(big.Int).QuoRem(v, div, new(big.Int))
		if up {
			// round half up
			twice := new(big.Int).Mul(m.Abs(m), big.NewInt(2))
			if twice.Cmp(div) >= 0 {
				if v.Sign() < 0 {
					q.Sub(q, big.NewInt(1))
				} else {
					q.Add(q, big.NewInt(1))
				}
			}
		} else if v.Sign() < 0 && m.Sign() != 0 {
			q.Sub(q, big.NewInt(1)) // floor
		}
		r = q
	}
	str := r.String()
	sign := ""
	if strings.HasPrefix(str, "-") {
		sign, str = "-", str[1:]
	}
	if neg {
		if sign == "-" {
			sign = ""
		} else {
			sign = "-"
		}
	}
	if digits > 0 {
		for len(str) <= digits {
			str = "0" + str
		}
		str = str[:len(str)-digits] + "." + str[len(str)-digits:]
	}
	d, ok := parseDecimal(sign + str)
	if !ok {
		return decimal{}, false
	}
	if sign == "-" && d.f == 0 {
		d.f = math.Copysign(0, -1)
	}
	d.scale = int32(digits)
	return d, true
}

// quantity is a System.Quantity: a decimal and a unit that is a UCUM code
// or a calendar duration keyword (year, month, week, day, hour, minute,
// second, millisecond, or their plurals).
type quantity struct {
	v    decimal
	unit string
}

// Quantity is a FHIRPath System.Quantity value in an output collection.
// Unit is a UCUM code, or a calendar duration keyword (year, month, week,
// day, hour, minute, second, millisecond) written without quotes in the
// expression.
type Quantity struct {
	Value json.Number
	Unit  string
}

// String returns the FHIRPath form of the quantity: 4 'mg' or 1 week.
func (q Quantity) String() string {
	if isCalendarKeyword(q.Unit) {
		return string(q.Value) + " " + q.Unit
	}
	return string(q.Value) + " '" + q.Unit + "'"
}

func (q quantity) String() string {
	return Quantity{Value: json.Number(q.v.String()), Unit: q.unit}.String()
}

func isCalendarKeyword(u string) bool {
	switch u {
	case "year", "years", "month", "months", "week", "weeks", "day", "days",
		"hour", "hours", "minute", "minutes", "second", "seconds", "millisecond", "milliseconds":
		return true
	}
	return false
}
